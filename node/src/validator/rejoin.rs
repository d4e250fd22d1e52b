//! The validator node's side of state sync: routing sync messages and
//! timers to [`StateSync`] and [`Serving`], and rejoining consensus after
//! a snapshot is installed.
//!
//! Rejoining: the ledger, the marketplace and the commit frontier are
//! replaced by the checkpoint's ([`ValidatorNode::install`]), the
//! checkpoint is written to the store (which then prunes the commits it
//! stands in for), and consensus is rebuilt from the frontier with
//! [`Validator::recover`] as after a restart: it carries our latest signed
//! block over, so it never proposes at or below a round it signed, and if
//! it was still asking peers for its own latest block (a lost store) it
//! goes on asking before it proposes. Blocks above the frontier are then
//! fetched from peers as usual; blocks the frontier already ordered are
//! never fetched nor ordered again.

use std::sync::Arc;

use idlegrid_dag_ledger::consensus::{Recovered, Validator};
use idlegrid_primitives::{NodeId, Round, Timestamp, Transmit};

use super::state_sync::{Serving, SyncOutput};
use super::{Checkpoint, NodeStorageOp, SyncEvent, ValidatorEvent, ValidatorNode};
use crate::snapshot::SyncMessage;
use crate::wire::NodeMessage;

impl ValidatorNode {
    /// A sync message from `from`: served if it is a request, fed to the
    /// fetcher otherwise.
    pub(super) fn on_sync(&mut self, now: Timestamp, from: NodeId, msg: SyncMessage) {
        if self.validator.committee().index_of(&from).is_none() {
            self.rejected_submissions += 1;
            return;
        }
        if let Some(answer) = self.serving.answer(&msg) {
            self.out
                .push_back(Transmit::to(from, NodeMessage::Sync(answer)));
            return;
        }
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let ctx = (self.validator.committee(), self.frontier.round());
        let out = sync.handle(now, from, msg, ctx);
        self.sync_output(now, out);
    }

    /// The fetcher's timer.
    pub(super) fn sync_tick(&mut self, now: Timestamp) {
        let index = self.frontier.index();
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        if sync.deadline() > now {
            return;
        }
        let out = sync.tick(now, index, &self.peers);
        self.sync_output(now, out);
    }

    fn sync_output(&mut self, now: Timestamp, out: SyncOutput) {
        for (to, msg) in out.send {
            self.out.push_back(Transmit::to(to, NodeMessage::Sync(msg)));
        }
        if let Some(offer) = out.started {
            self.sync_event(SyncEvent::Started {
                index: offer.index,
                root: offer.root,
            });
        }
        for (peer, error) in out.dropped {
            self.sync_event(SyncEvent::PeerDropped { peer, error });
        }
        if let Some(error) = out.failed {
            self.sync_event(SyncEvent::Failed { error });
        }
        if let Some(cp) = out.done {
            self.rejoin(now, cp);
        }
    }

    fn sync_event(&mut self, e: SyncEvent) {
        self.events.push_back(ValidatorEvent::StateSync(e));
    }

    /// Installs a fetched checkpoint and rebuilds consensus from it.
    fn rejoin(&mut self, now: Timestamp, cp: Checkpoint) {
        if let Err(e) = self.install(&cp) {
            let error = super::state_sync::SyncError::Install(e.to_string());
            self.sync_event(SyncEvent::Failed { error });
            return;
        }
        let frontier = cp
            .frontier
            .clone()
            .expect("installed checkpoints are restorable");
        // Our latest signed block (none before our first proposal).
        let own = self.validator.last_own_block();
        let recovered = Recovered {
            blocks: (own.header.round > Round::ZERO)
                .then_some(own)
                .into_iter()
                .collect(),
            commits: vec![Arc::new(frontier)],
            lost: self.validator.syncing_own_block(),
        };
        // Writes the old consensus asked for stay in order before ours.
        self.forward_consensus_writes();
        self.durable.forget_forwarded();
        let rebuilt = Validator::recover(
            self.key.clone(),
            self.validator.committee().clone(),
            self.validator.config().clone(),
            self.seed.derive("validator"),
            recovered,
        );
        match rebuilt {
            Ok(v) => self.validator = v.with_capabilities_of(&self.validator),
            Err(e) => panic!("a checked frontier is always recoverable: {e}"),
        }
        self.validator.start(now);
        let (index, digest) = (cp.index, cp.state_digest);
        self.serving.offer(Arc::new(Serving::cut(&cp)));
        let cp = Arc::new(cp);
        if self.durable.enabled() {
            self.durable.push(NodeStorageOp::Checkpoint(cp));
        }
        self.pending_nonce = 0;
        self.sync_event(SyncEvent::Installed { index, digest });
    }
}
