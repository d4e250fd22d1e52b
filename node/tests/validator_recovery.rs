//! Durable validator nodes: crashed with part of their un-synced writes
//! lost, restarted from their store, they never equivocate, lose no
//! committed transaction, and reach their peers' state digest.

use std::collections::{BTreeMap, VecDeque};

use idlegrid_dag_ledger::consensus::{Committee, ConsensusConfig, ConsensusEvent};
use idlegrid_dag_ledger::ledger::{Genesis, Ledger, Nonce, Params, Transaction, TxKind};
use idlegrid_market::KDouble;
use idlegrid_node::market::MarketRules;
use idlegrid_node::store::{MemoryStore, NodeStore, persist_step};
use idlegrid_node::validator::{ValidatorEvent, ValidatorNode, ValidatorSetup};
use idlegrid_primitives::{
    Amount, Destination, Digest, Duration, Keypair, Machine, NodeId, Seed, Timestamp, Transmit,
};

const CHECKPOINT_EVERY: u64 = 8;

struct Cluster {
    keys: Vec<Keypair>,
    ids: Vec<NodeId>,
    committee: Committee,
    setup: ValidatorSetup,
    nodes: Vec<Option<ValidatorNode>>,
    stores: Vec<MemoryStore>,
    wire: VecDeque<(Timestamp, usize, Transmit<idlegrid_node::wire::NodeMessage>)>,
    now: Timestamp,
    payer: Keypair,
    payee: Keypair,
    next_nonce: u64,
    applied: Vec<BTreeMap<u64, Digest>>,
    /// Audits run, by node.
    audits: Vec<u64>,
    equivocators: Vec<NodeId>,
}

impl Cluster {
    fn new() -> Self {
        let keys: Vec<Keypair> = (0..4)
            .map(|i| Keypair::from_seed(&Seed::from_u64(i)))
            .collect();
        let ids: Vec<NodeId> = keys.iter().map(Keypair::node_id).collect();
        let payer = Keypair::from_seed(&Seed::from_u64(50));
        let payee = Keypair::from_seed(&Seed::from_u64(51));
        let mut balances: Vec<_> = ids
            .iter()
            .map(|v| (v.account(), Amount::new(1_000_000)))
            .collect();
        balances.push((payer.account_id(), Amount::new(1_000_000_000)));
        let genesis = Genesis {
            balances,
            stakes: vec![(payer.account_id(), Amount::new(1_000_000))],
            params: Params::default(),
        };
        let setup = ValidatorSetup {
            ledger: Ledger::new(genesis).unwrap(),
            rules: MarketRules {
                stake_per_slot: Amount::new(1_000),
                slash_to_client_bps: 5_000,
                stage_deadline: Duration::from_secs(15),
                clearing_period: Duration::from_secs(1),
                committee_size: 3,
                referees: ids.clone(),
                book: Default::default(),
                reputation_epoch_secs: 10,
                global_trust: None,
            },
            consensus: ConsensusConfig::default(),
            mechanism: || Box::new(KDouble::new(5_000).unwrap()),
            epoch_secs: 1,
        };
        let committee = Committee::equal(ids.iter().copied()).unwrap();
        let nodes = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let seed = Seed::from_u64(1_000 + i as u64);
                let n = ValidatorNode::new(k.clone(), committee.clone(), &setup, seed, false)
                    .unwrap()
                    .with_persistence(CHECKPOINT_EVERY);
                Some(n)
            })
            .collect();
        Self {
            keys,
            ids,
            committee,
            setup,
            nodes,
            stores: (0..4).map(|_| MemoryStore::new()).collect(),
            wire: VecDeque::new(),
            now: Timestamp::ZERO,
            payer,
            payee,
            next_nonce: 0,
            applied: vec![BTreeMap::new(); 4],
            audits: vec![0; 4],
            equivocators: Vec::new(),
        }
    }

    fn drain(&mut self, i: usize) {
        let Some(n) = self.nodes[i].as_mut() else {
            return;
        };
        persist_step(n, &mut self.stores[i]).unwrap();
        while let Some(t) = n.poll_transmit() {
            self.wire
                .push_back((self.now + Duration::from_millis(10), i, t));
        }
        while let Some(ev) = n.poll_event() {
            match ev {
                ValidatorEvent::Applied { index, digest, .. } => {
                    let prev = self.applied[i].insert(index, digest);
                    assert!(
                        prev.is_none_or(|p| p == digest),
                        "node {i} re-applied {index} differently"
                    );
                }
                ValidatorEvent::Audit(a) => {
                    let index = a.index();
                    assert_eq!(index % 4, i as u64, "node {i} audits only its turns");
                    assert_eq!(
                        self.applied[i].get(&index),
                        Some(&a.digest()),
                        "an audit follows its commit, of the state reported"
                    );
                    a.run()
                        .unwrap_or_else(|v| panic!("node {i}, commit {index}: {v}"));
                    self.audits[i] += 1;
                }
                ValidatorEvent::Consensus(e) => {
                    if let ConsensusEvent::Equivocation(ev) = *e {
                        self.equivocators.push(self.ids[ev.author().as_usize()]);
                    }
                }
                _ => {}
            }
        }
    }

    fn submit(&mut self) {
        // Gateway: validator 3, never crashed here.
        let tx = Transaction {
            chain: self.setup.ledger.params().chain_id,
            sender: self.payer.account_id(),
            nonce: Nonce::new(self.next_nonce),
            kind: TxKind::Transfer {
                to: self.payee.account_id(),
                amount: Amount::new(1_000),
            },
        }
        .sign(&self.payer);
        if let Some(n) = self.nodes[3].as_mut()
            && n.submit(&tx).is_ok()
        {
            self.next_nonce += 1;
        }
    }

    fn run_for(&mut self, d: Duration, load: bool) {
        let end = self.now + d;
        while self.now < end {
            self.now = self.now + Duration::from_millis(5);
            if load && self.now.as_micros() % 50_000 == 0 {
                self.submit();
            }
            while self.wire.front().is_some_and(|(t, ..)| *t <= self.now) {
                let (_, from, t) = self.wire.pop_front().unwrap();
                for j in 0..self.nodes.len() {
                    let to_me = match t.to {
                        Destination::To(x) => x == self.ids[j],
                        Destination::Broadcast => j != from,
                    };
                    if let Some(n) = self.nodes[j].as_mut().filter(|_| to_me) {
                        n.handle_message(self.now, self.ids[from], t.msg.clone());
                        self.drain(j);
                    }
                }
            }
            for i in 0..self.nodes.len() {
                if let Some(n) = self.nodes[i].as_mut()
                    && n.poll_timeout().is_some_and(|t| t <= self.now)
                {
                    n.handle_timeout(self.now);
                    self.drain(i);
                }
            }
        }
    }

    fn crash(&mut self, i: usize, keep_unsynced: usize) {
        self.nodes[i] = None;
        self.stores[i].crash(keep_unsynced);
    }

    fn restart(&mut self, i: usize) {
        let stored = self.stores[i].load().unwrap();
        let n = ValidatorNode::recover(
            self.keys[i].clone(),
            self.committee.clone(),
            &self.setup,
            Seed::from_u64(1_000 + i as u64),
            false,
            stored,
            CHECKPOINT_EVERY,
        )
        .unwrap();
        self.nodes[i] = Some(n);
        self.drain(i);
    }

    fn ledger(&self, i: usize) -> &Ledger {
        self.nodes[i].as_ref().unwrap().ledger()
    }
}

#[test]
fn crashed_validators_restart_from_their_store() {
    let mut c = Cluster::new();
    c.run_for(Duration::from_millis(1_500), true);
    // (victim, un-synced writes that survive the crash)
    for (victim, keep) in [(1, 0), (2, 3), (0, 1), (1, 100)] {
        let committed_before = c.ledger(3).nonce(&c.payer.account_id()).get();
        let applied_before = c.applied[victim].keys().next_back().copied().unwrap_or(0);
        c.crash(victim, keep);
        c.run_for(Duration::from_millis(400), true);
        c.restart(victim);
        // The restarted ledger already holds what it applied before.
        assert!(
            c.ledger(victim).nonce(&c.payer.account_id()).get() + 50 >= committed_before,
            "restart lost committed transfers"
        );
        c.run_for(Duration::from_millis(1_500), true);
        assert!(
            c.applied[victim].keys().next_back().copied().unwrap_or(0) > applied_before + 5,
            "node {victim} did not rejoin"
        );
    }
    assert!(c.stores.iter().all(|s| s.image().checkpoint.is_some()));
    assert!(
        c.audits.iter().all(|&n| n > 5),
        "every node audits in turn: {:?}",
        c.audits
    );
    // Quiet period: everyone converges.
    c.run_for(Duration::from_millis(1_500), false);
    let d0 = c.ledger(0).state_digest();
    for i in 1..4 {
        assert_eq!(c.ledger(i).state_digest(), d0, "node {i} diverged");
    }
    for i in 0..4 {
        let l = c.ledger(i);
        assert_eq!(l.total_supply(), l.initial_supply());
    }
    // Every submitted transfer that validator 3 accepted is committed.
    assert_eq!(c.ledger(0).nonce(&c.payer.account_id()).get(), c.next_nonce);
    assert!(c.equivocators.is_empty());
    // The same commit index has the same digest everywhere.
    for i in 0..4 {
        for (k, d) in &c.applied[i] {
            for j in 0..4 {
                if let Some(e) = c.applied[j].get(k) {
                    assert_eq!(d, e, "nodes {i} and {j} differ at commit {k}");
                }
            }
        }
    }
}

#[test]
fn a_damaged_commit_log_is_a_typed_error() {
    let mut c = Cluster::new();
    c.run_for(Duration::from_millis(1_500), true);
    c.crash(1, 0);
    let mut stored = c.stores[1].load().unwrap();
    assert!(stored.checkpoint.is_some());
    // A gap in the commit log after the checkpoint (the commits at or
    // below it were pruned: the checkpoint stands in for them).
    let cp_index = stored.checkpoint.as_ref().unwrap().index;
    let mut after: Vec<u64> = stored.consensus.commits.iter().map(|x| x.index).collect();
    after.sort_unstable();
    assert_eq!(
        after.first().copied(),
        Some(cp_index + 1),
        "pruned up to the checkpoint"
    );
    assert!(
        after.len() >= 2,
        "two commits after the checkpoint: {after:?}"
    );
    stored.consensus.commits.retain(|x| x.index != cp_index + 1);
    let err = ValidatorNode::recover(
        c.keys[1].clone(),
        c.committee.clone(),
        &c.setup,
        Seed::from_u64(1),
        false,
        stored,
        CHECKPOINT_EVERY,
    )
    .unwrap_err();
    assert!(err.to_string().contains("gap"), "{err}");
    // A checkpoint that the replay does not reach.
    let mut stored = c.stores[1].load().unwrap();
    let mut cp = (**stored.checkpoint.as_ref().unwrap()).clone();
    cp.state_digest = Digest::from_bytes([7; 32]);
    stored.checkpoint = Some(cp.into());
    let err = ValidatorNode::recover(
        c.keys[1].clone(),
        c.committee.clone(),
        &c.setup,
        Seed::from_u64(1),
        false,
        stored,
        CHECKPOINT_EVERY,
    )
    .unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
}
