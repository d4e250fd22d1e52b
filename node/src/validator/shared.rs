//! One copy of the replicated state for validators that provably hold the
//! same one.
//!
//! A committed batch applied to the same pre-state gives the same
//! post-state, receipts and notices: [`Ledger::apply_batch`] and the
//! marketplace are deterministic functions of the state, the batch and its
//! context, with no input from the node that runs them (signature checks
//! included: whether a signature verifies does not depend on who asks).
//! A driver that runs many validators in one process (the simulator) gives
//! them one [`StateSharing`], and then the first validator to apply a
//! commit to a state computes it and the others that hold that very state
//! take the result.
//!
//! "That very state" is object identity, not a digest: a validator's
//! [`Replica`] lives behind an [`Arc`], and the memo is keyed by the
//! commit (index, running commit digest, time) and the pre-state's
//! allocation. The memo holds the pre-state by a [`Weak`] reference, which
//! pins the allocation (so its address is never reused while the entry
//! lives) and, through [`Arc::make_mut`], forces any later writer of that
//! allocation to move or clone it first, so a remembered pre-state never
//! changes under its entry; it holds the post-state itself while anyone
//! holds the pre-state, so a validator several commits behind the first
//! still takes each result in turn (the first validator's next commit then
//! writes a copy, as it does whenever another validator took the state). A validator whose state diverged (a Byzantine one fed
//! another sequence, one recovered from its own disk or installed from a
//! snapshot) holds another allocation and computes for itself; it can
//! never take a result it did not compute from identical state.
//!
//! The consensus side is shared the same way: validators given one
//! [`StateSharing`] also share a [`HistoryMemo`], so each commit's history
//! is ordered once (keyed by the running commit digest, which binds
//! everything the order depends on).
//!
//! With [`StateSharing::off`] (the default, and the real node) every
//! validator owns its state and [`Arc::make_mut`] writes in place; the
//! simulator's `--no-sharing` check mode runs that way and must reach the
//! same run digest.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

use idlegrid_dag_ledger::ledger::{
    BatchContext, BatchResult, Host, Ledger, LedgerError, NoEvidence, SignatureCheck,
};
use idlegrid_primitives::{Digest, Timestamp};

use idlegrid_dag_ledger::consensus::{CommittedSubDag, HistoryMemo};

use super::Checkpoint;
use super::publish::CommitFacts;
use crate::market::{Apps, Notice};
use crate::snapshot::ServedSnapshot;

/// The replicated state of one validator: its ledger and the applications.
#[derive(Debug, Clone)]
pub(crate) struct Replica {
    pub(crate) ledger: Ledger,
    pub(crate) apps: Apps,
}

/// What applying one committed batch gave: the ledger's result and the
/// marketplace notices the batch raised.
#[derive(Debug)]
pub(crate) struct Applied {
    pub(crate) result: Result<BatchResult, LedgerError>,
    pub(crate) notices: Vec<Notice>,
    /// What the commit tells light nodes, built by the first validator to
    /// publish it (a function of the above and the post-state).
    pub(crate) facts: OnceLock<Arc<CommitFacts>>,
}

impl Replica {
    /// The whole replicated content, for a full comparison: the ledger
    /// and marketplace snapshots, and the rules and mechanism (which the
    /// marketplace snapshot leaves to the node's setup).
    fn content(&self) -> (Vec<u8>, Vec<u8>) {
        (self.ledger.snapshot(), self.apps.market.snapshot())
    }

    fn same_setup(&self, other: &Replica) -> bool {
        let (a, b) = (&self.apps.market, &other.apps.market);
        a.rules() == b.rules() && a.mechanism_name() == b.mechanism_name()
    }

    /// The checkpoint of this state after commit `index`, consensus resuming
    /// from `frontier`.
    pub(crate) fn checkpoint(&self, index: u64, frontier: Option<CommittedSubDag>) -> Checkpoint {
        Checkpoint {
            index,
            state_digest: self.ledger.state_digest(),
            ledger: self.ledger.snapshot(),
            app: Some(self.apps.market.snapshot()),
            frontier,
        }
    }

    /// Applies one committed batch, checking every transaction's signature
    /// through the node's verifier (the one its gateway and the referee
    /// tickets use, so a memoizing one verifies each signature once).
    fn apply(&mut self, ctx: BatchContext, txs: &[&[u8]]) -> Applied {
        let verifier = self.apps.market.proof_verifier().clone();
        let mut host = Host {
            apps: &mut self.apps,
            evidence: &NoEvidence,
            signatures: SignatureCheck::Batch,
            verifier: &verifier,
        };
        let result = self.ledger.apply_batch(ctx, txs, &mut host);
        let notices = self.apps.market.drain_notices();
        Applied {
            result,
            notices,
            facts: OnceLock::new(),
        }
    }
}

/// Which commit a memo entry is for: index, running commit digest and
/// consensus time (the digest pins the sequence and the batch; the others
/// are cheap belt and braces).
pub(crate) type CommitKey = (u64, Digest, Timestamp);

/// Remembered commits (the newest this many behind the newest seen): a
/// validator lagging further recomputes, which is correct, only slower.
const WINDOW: u64 = 64;
/// Entries kept at most (several diverged states per commit).
const MAX_ENTRIES: usize = 4_096;

struct Entry {
    pre: Weak<Replica>,
    /// Held while some validator holds `pre`: one that fell commits behind
    /// the first can still take it (a weak one was moved by the first
    /// validator's next commit, and the laggard then computed on its own
    /// copy for good).
    post: Arc<Replica>,
    applied: Arc<Applied>,
}

/// The state the first validator started from, with its content.
struct Start {
    state: Weak<Replica>,
    content: (Vec<u8>, Vec<u8>),
}

#[derive(Default)]
struct Memo {
    start: Option<Start>,
    entries: BTreeMap<CommitKey, Vec<Entry>>,
    len: usize,
    /// Lookups answered from the memo, and batches computed.
    shared: u64,
    computed: u64,
    /// The latest checkpoints built from a shared state.
    checkpoints: VecDeque<CheckpointEntry>,
}

/// Checkpoints remembered (a validator lagging further builds its own).
const CHECKPOINT_ENTRIES: usize = 4;

/// A checkpoint built from `state` (pinned by the `Weak`: its allocation is
/// never written in place again, see the module docs) and what serving it
/// takes.
struct CheckpointEntry {
    state: Weak<Replica>,
    checkpoint: Arc<Checkpoint>,
    served: Arc<ServedSnapshot>,
}

/// Shares replicated state between validators run in one process (see the
/// module docs). Clones share one memo.
#[derive(Clone, Default)]
pub struct StateSharing {
    memo: Option<Arc<Mutex<Memo>>>,
    /// The consensus side: each commit's history ordered once.
    history: Option<Arc<HistoryMemo>>,
}

impl std::fmt::Debug for StateSharing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.memo {
            None => f.write_str("StateSharing::off"),
            Some(m) => {
                let m = lock(m);
                f.debug_struct("StateSharing::shared")
                    .field("entries", &m.len)
                    .field("shared", &m.shared)
                    .field("computed", &m.computed)
                    .finish()
            }
        }
    }
}

impl StateSharing {
    /// Every validator computes every batch on its own state.
    pub fn off() -> Self {
        Self::default()
    }

    /// A memo to give every validator of one process.
    pub fn shared() -> Self {
        Self {
            memo: Some(Arc::default()),
            history: Some(HistoryMemo::shared()),
        }
    }

    /// The memo of commit orders validators sharing state share too (none
    /// when off).
    pub fn history(&self) -> Option<&Arc<HistoryMemo>> {
        self.history.as_ref()
    }

    /// Batches taken from the memo and batches computed (0, 0 when off).
    pub fn counts(&self) -> (u64, u64) {
        self.memo.as_ref().map_or((0, 0), |m| {
            let m = lock(m);
            (m.shared, m.computed)
        })
    }

    /// Joins `state` to the copy a validator given this sharing started
    /// from if their replicated contents are equal, compared in full (not
    /// by digest): validators built from one setup start sharing at
    /// genesis. A state that differs (recovered from a disk, say) stays
    /// its own and becomes the start the next ones compare with if the
    /// old one is gone.
    pub(crate) fn adopt(&self, state: &mut Arc<Replica>) {
        let Some(memo) = &self.memo else {
            return;
        };
        let mut memo = lock(memo);
        if let Some(start) = &memo.start
            && let Some(other) = start.state.upgrade()
        {
            if !Arc::ptr_eq(&other, state)
                && other.same_setup(state)
                && start.content == state.content()
            {
                *state = other;
            }
            return;
        }
        memo.start = Some(Start {
            state: Arc::downgrade(state),
            content: state.content(),
        });
    }

    /// Applies commit `key` to `state`: takes the post-state from the memo
    /// if another validator computed it from this very state, else
    /// computes it (cloning the state first if others hold it) and
    /// remembers it.
    pub(crate) fn apply(
        &self,
        state: &mut Arc<Replica>,
        key: CommitKey,
        ctx: BatchContext,
        txs: &[&[u8]],
    ) -> Arc<Applied> {
        let Some(memo) = &self.memo else {
            return Arc::new(Arc::make_mut(state).apply(ctx, txs));
        };
        // Held while computing: a validator on another thread that holds
        // the same state waits and takes the result, as it would have in
        // one thread, instead of computing it again on a copy of its own.
        let mut memo = lock(memo);
        if let Some((post, applied)) = memo.take(state, &key) {
            *state = post;
            return applied;
        }
        let pre = Arc::downgrade(state);
        let applied = Arc::new(Arc::make_mut(state).apply(ctx, txs));
        debug_assert!(!Weak::ptr_eq(&pre, &Arc::downgrade(state)));
        memo.remember(key, pre, state, &applied);
        applied
    }
}

impl StateSharing {
    /// The checkpoint after commit `index` of `state` with `frontier`, and
    /// its served snapshot: another validator's if it built them from this
    /// very state with an equal frontier, else built by `build` (and
    /// remembered when sharing). Every validator used to keep its own
    /// encodings of the same state: at 100 validators and 5 500 light nodes
    /// a checkpoint added 785 MiB.
    pub(crate) fn checkpoint(
        &self,
        state: &Arc<Replica>,
        index: u64,
        frontier: Option<CommittedSubDag>,
        build: impl FnOnce(&Replica, Option<CommittedSubDag>) -> (Checkpoint, ServedSnapshot),
    ) -> (Arc<Checkpoint>, Arc<ServedSnapshot>) {
        let Some(memo) = &self.memo else {
            let (cp, served) = build(state, frontier);
            return (Arc::new(cp), Arc::new(served));
        };
        let mut memo = lock(memo);
        let found = memo.checkpoints.iter().find(|e| {
            e.state.as_ptr() == Arc::as_ptr(state)
                && e.checkpoint.index == index
                && e.checkpoint.frontier == frontier
        });
        if let Some(e) = found {
            return (Arc::clone(&e.checkpoint), Arc::clone(&e.served));
        }
        let (cp, served) = build(state, frontier);
        let entry = CheckpointEntry {
            state: Arc::downgrade(state),
            checkpoint: Arc::new(cp),
            served: Arc::new(served),
        };
        let shared = (Arc::clone(&entry.checkpoint), Arc::clone(&entry.served));
        if memo.checkpoints.len() >= CHECKPOINT_ENTRIES {
            memo.checkpoints.pop_front();
        }
        memo.checkpoints.push_back(entry);
        shared
    }
}

/// The memo, locked. A validator that panicked while holding it left no
/// half-made entry (entries are pushed whole), so a poisoned lock is
/// taken as is rather than turned into a second panic.
fn lock(memo: &Mutex<Memo>) -> MutexGuard<'_, Memo> {
    memo.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Memo {
    fn take(
        &mut self,
        state: &Arc<Replica>,
        key: &CommitKey,
    ) -> Option<(Arc<Replica>, Arc<Applied>)> {
        let found = self.entries.get(key)?.iter().find_map(|e| {
            (e.pre.as_ptr() == Arc::as_ptr(state))
                .then(|| (Arc::clone(&e.post), Arc::clone(&e.applied)))
        });
        self.shared += u64::from(found.is_some());
        found
    }

    fn remember(
        &mut self,
        key: CommitKey,
        pre: Weak<Replica>,
        post: &Arc<Replica>,
        applied: &Arc<Applied>,
    ) {
        self.computed += 1;
        let oldest = key.0.saturating_sub(WINDOW);
        if self
            .entries
            .first_key_value()
            .is_some_and(|(k, _)| k.0 < oldest)
        {
            self.entries =
                self.entries
                    .split_off(&(oldest, Digest::from_bytes([0; 32]), Timestamp::ZERO));
        }
        if self
            .start
            .as_ref()
            .is_some_and(|s| s.state.strong_count() == 0)
        {
            self.start = None;
        }
        // A pre-state nobody holds any more can never be looked up again.
        self.entries.retain(|_, v| {
            v.retain(|e| e.pre.strong_count() > 0);
            !v.is_empty()
        });
        self.len = self.entries.values().map(Vec::len).sum();
        if self.len >= MAX_ENTRIES {
            return;
        }
        self.entries.entry(key).or_default().push(Entry {
            pre,
            post: Arc::clone(post),
            applied: Arc::clone(applied),
        });
        self.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use idlegrid_dag_ledger::ledger::{Nonce, Transaction, TxKind};
    use idlegrid_primitives::{Amount, Keypair, Seed};

    use super::*;
    use crate::batch::batch_context;
    use crate::local::{testnet_keys, testnet_setup};
    use crate::market::MarketplaceApp;
    use crate::wire::{Fact, FactsMode};

    /// `n` copies of `genesis`, each adopted by one shared `StateSharing`.
    fn adopted(genesis: &Replica, n: usize) -> (StateSharing, Vec<Arc<Replica>>) {
        let sharing = StateSharing::shared();
        let mut states: Vec<Arc<Replica>> = (0..n).map(|_| Arc::new(genesis.clone())).collect();
        states.iter_mut().for_each(|s| sharing.adopt(s));
        (sharing, states)
    }

    fn genesis() -> (Replica, Vec<Keypair>) {
        let keys = testnet_keys(7, 4, 2, 1);
        let setup = testnet_setup(&keys);
        let market = MarketplaceApp::new(setup.rules.clone(), (setup.mechanism)(), true).unwrap();
        let replica = Replica {
            ledger: setup.ledger.clone(),
            apps: Apps { market },
        };
        let [_, providers, _] = keys;
        (replica, providers)
    }

    /// Commit `index`: a transfer of `amount` from the first provider.
    fn commit(
        r: &Replica,
        from: &Keypair,
        index: u64,
        amount: u128,
    ) -> (CommitKey, BatchContext, Vec<u8>) {
        let tx = Transaction {
            chain: r.ledger.params().chain_id,
            sender: from.account_id(),
            nonce: Nonce::new(index),
            kind: TxKind::Transfer {
                to: Keypair::from_seed(&Seed::from_u64(99)).account_id(),
                amount: Amount::new(amount),
            },
        }
        .sign(from);
        let at = Timestamp::ZERO + idlegrid_primitives::Duration::from_secs(index + 1);
        let digest = Digest::of(
            idlegrid_primitives::Domain::new("test/commit"),
            &(index, amount),
        );
        let ctx = batch_context(at, 60, r.ledger.epoch(), digest);
        ((index, digest, at), ctx, tx.to_bytes())
    }

    fn apply(
        sharing: &StateSharing,
        s: &mut Arc<Replica>,
        c: &(CommitKey, BatchContext, Vec<u8>),
    ) -> Digest {
        let applied = sharing.apply(s, c.0, c.1, &[c.2.as_slice()]);
        let r = applied.result.as_ref().expect("batch applies");
        assert!(r.receipts.iter().all(Result::is_ok), "{r:?}");
        r.state_digest
    }

    #[test]
    fn identical_states_share_and_match_an_unshared_run() {
        let (genesis, from) = genesis();
        let (sharing, mut states) = adopted(&genesis, 4);
        assert!(
            states.iter().all(|s| Arc::ptr_eq(s, &states[0])),
            "equal genesis is adopted"
        );
        let mut alone = Arc::new(genesis.clone());
        for i in 0..3 {
            let c = commit(&alone, &from[0], i, 10_000 + u128::from(i));
            let want = apply(&StateSharing::off(), &mut alone, &c);
            for s in &mut states {
                assert_eq!(apply(&sharing, s, &c), want);
                assert_eq!(s.ledger.state_digest(), want);
            }
            assert!(states.iter().all(|s| Arc::ptr_eq(s, &states[0])));
        }
        assert_eq!(
            sharing.counts(),
            (9, 3),
            "each commit computed once, taken three times"
        );
    }

    /// The facts of one commit: built by the first validator to publish it
    /// and read by the others that applied it together, equal to those of
    /// a validator that applied it alone.
    #[test]
    fn sharers_build_a_commit_s_facts_once_and_match_an_unshared_run() {
        let (genesis, from) = genesis();
        let (sharing, mut states) = adopted(&genesis, 2);
        let alone = Arc::new(genesis.clone());
        let c = commit(&alone, &from[0], 0, 10_000);
        let txs = [c.2.as_slice()];
        let facts = |applied: &Applied, state: &Replica| {
            let r = applied.result.as_ref().expect("applies");
            let f = applied.facts.get_or_init(|| {
                Arc::new(CommitFacts::build(
                    &txs,
                    &r.receipts,
                    &applied.notices,
                    &state.ledger,
                ))
            });
            let to = Keypair::from_seed(&Seed::from_u64(99)).account_id();
            [from[0].account_id(), to]
                .map(|a| f.batch(&a, false, FactsMode::Reported, &state.ledger))
        };
        let applied: Vec<Arc<Applied>> = states
            .iter_mut()
            .map(|s| sharing.apply(s, c.0, c.1, &txs))
            .collect();
        assert!(Arc::ptr_eq(&applied[0], &applied[1]), "applied once");
        let first = facts(&applied[0], &states[0]);
        let second = facts(&applied[1], &states[1]);
        for (a, b) in first.iter().zip(&second) {
            assert!(
                Arc::ptr_eq(a.as_ref().unwrap(), b.as_ref().unwrap()),
                "one slice"
            );
        }
        let own = sharing_off_facts(&alone, &c, &txs, facts);
        assert_eq!(own, first, "as built alone");
        // The sender hears its transaction's fate and holdings, the
        // recipient its holdings, both then the facts for everyone.
        let [sender, to] = first.map(|b| b.unwrap().to_vec());
        let everyone = |rest: &[Fact]| rest.iter().all(Fact::to_every_subscriber);
        assert!(
            matches!(&sender[..], [Fact::Applied { .. }, Fact::Balance(_), rest @ ..] if everyone(rest)),
            "{sender:?}"
        );
        assert!(
            matches!(&to[..], [Fact::Balance(_), rest @ ..] if everyone(rest)),
            "{to:?}"
        );
    }

    /// A commit's facts as leaves of its tree: the sender's and the
    /// recipient's own leaves (and the one for everyone, if any) prove
    /// against the root; certified and silent subscribers get nothing
    /// reported but the holdings they asked for.
    #[test]
    fn a_commit_s_leaves_prove_against_its_root_and_other_modes_report_holdings_only() {
        use crate::certified::leaf_digest;
        let (genesis, from) = genesis();
        let mut state = Arc::new(genesis.clone());
        let c = commit(&state, &from[0], 0, 10_000);
        let txs = [c.2.as_slice()];
        let applied = StateSharing::off().apply(&mut state, c.0, c.1, &txs);
        let r = applied.result.as_ref().expect("applies");
        let f = CommitFacts::build(&txs, &r.receipts, &applied.notices, &state.ledger);
        let root = f.root().expect("the commit has facts");
        let (sender, to) = (
            from[0].account_id(),
            Keypair::from_seed(&Seed::from_u64(99)).account_id(),
        );
        for acct in [sender, to] {
            let leaves = f.proven(&acct);
            let own: Vec<_> = leaves.iter().filter(|l| l.owner == Some(acct)).collect();
            assert_eq!(own.len(), 1, "one leaf of its own");
            for l in &leaves {
                let d = leaf_digest(l.owner.as_ref(), &l.facts);
                assert_eq!(l.proof.root(&d), Some(root));
            }
            assert!(matches!(own[0].facts.last(), Some(Fact::Balance(_))));
            for mode in [FactsMode::Certified, FactsMode::Silent] {
                assert_eq!(f.batch(&acct, false, mode, &state.ledger), None);
                let held = f.batch(&acct, true, mode, &state.ledger).expect("asked");
                assert!(matches!(&held[..], [Fact::Balance(b)] if b.account == acct));
            }
        }
        // An account the commit does not concern has no leaf of its own.
        let stranger = Keypair::from_seed(&Seed::from_u64(7)).account_id();
        assert!(f.proven(&stranger).iter().all(|l| l.owner.is_none()));
    }

    fn sharing_off_facts<F>(
        alone: &Arc<Replica>,
        c: &(CommitKey, BatchContext, Vec<u8>),
        txs: &[&[u8]],
        facts: F,
    ) -> [Option<Arc<[Fact]>>; 2]
    where
        F: Fn(&Applied, &Replica) -> [Option<Arc<[Fact]>>; 2],
    {
        let mut alone = Arc::clone(alone);
        let applied = StateSharing::off().apply(&mut alone, c.0, c.1, txs);
        facts(&applied, &alone)
    }

    #[test]
    fn a_diverged_state_is_its_own() {
        let (genesis, from) = genesis();
        let sharing = StateSharing::shared();
        let (mut a, mut b) = (Arc::new(genesis.clone()), Arc::new(genesis.clone()));
        sharing.adopt(&mut a);
        sharing.adopt(&mut b);
        // A Byzantine sequence: `b` commits another batch at index 0.
        let honest = commit(&a, &from[0], 0, 10_000);
        let other = commit(&b, &from[0], 0, 11_000);
        let da = apply(&sharing, &mut a, &honest);
        let db = apply(&sharing, &mut b, &other);
        assert_ne!(da, db);
        assert!(!Arc::ptr_eq(&a, &b));
        // An equal-content state that is not the same object (a validator
        // recovered from its disk, say) computes for itself.
        let mut c = Arc::new(genesis.clone());
        assert_eq!(apply(&sharing, &mut c, &honest), da);
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(sharing.counts(), (0, 3));
        // The diverged one's next commit never lands on the others' state.
        let next = commit(&b, &from[0], 1, 12_000);
        apply(&sharing, &mut b, &next);
        assert_eq!(a.ledger.state_digest(), da, "a is untouched by b's commits");
        let mut a2 = Arc::clone(&a);
        assert_ne!(apply(&sharing, &mut a2, &next), b.ledger.state_digest());
    }

    #[test]
    fn a_remembered_pre_state_never_changes_under_its_holders() {
        let (genesis, from) = genesis();
        let sharing = StateSharing::shared();
        let (mut a, mut b) = (Arc::new(genesis.clone()), Arc::new(genesis));
        sharing.adopt(&mut a);
        sharing.adopt(&mut b);
        let before = b.ledger.state_digest();
        let c = commit(&a, &from[0], 0, 10_000);
        apply(&sharing, &mut a, &c);
        assert_eq!(b.ledger.state_digest(), before, "a cloned before writing");
        drop(b);
        // Nobody holds the pre-state: the next commit prunes its entry.
        let c = commit(&a, &from[0], 1, 10_000);
        apply(&sharing, &mut a, &c);
        let memo = sharing.memo.as_ref().unwrap().lock().unwrap();
        assert_eq!(memo.len, 1, "only the newest commit is remembered");
    }

    /// A restorable frontier at commit `index` (its blocks do not matter
    /// here), its leader in `round`.
    fn frontier(index: u64, round: u64) -> Option<CommittedSubDag> {
        use idlegrid_dag_ledger::consensus::{AuthorityIndex, BlockRef};
        let leader = BlockRef {
            round: idlegrid_primitives::Round::new(round),
            author: AuthorityIndex::new(0),
            digest: Digest::from_bytes([round as u8; 32]),
        };
        Some(CommittedSubDag {
            index,
            leader,
            leader_node: Keypair::from_seed(&Seed::from_u64(1)).node_id(),
            round: leader.round,
            timestamp: Timestamp::ZERO,
            blocks: vec![leader],
            transactions: Vec::new(),
            digest: Digest::from_bytes([index as u8; 32]),
        })
    }

    /// A checkpoint of `r` after commit `index` (counting builds).
    fn checkpoint_of(
        sharing: &StateSharing,
        r: &Arc<Replica>,
        index: u64,
        frontier: Option<CommittedSubDag>,
        builds: &mut u32,
    ) -> (Arc<Checkpoint>, Arc<ServedSnapshot>) {
        sharing.checkpoint(r, index, frontier, |state, frontier| {
            *builds += 1;
            let cp = state.checkpoint(index, frontier);
            let served = crate::snapshot::ServedSnapshot::of(&cp, 1 << 16);
            (cp, served)
        })
    }

    #[test]
    fn checkpoints_of_one_state_are_built_once_and_only_for_it() {
        let (genesis, from) = genesis();
        let (sharing, mut states) = adopted(&genesis, 3);
        let c = commit(&states[0], &from[0], 0, 10_000);
        for s in &mut states {
            apply(&sharing, s, &c);
        }
        let mut builds = 0;
        let got: Vec<_> = states
            .iter()
            .map(|s| checkpoint_of(&sharing, s, 0, frontier(0, 5), &mut builds))
            .collect();
        assert_eq!(builds, 1, "one state, one checkpoint");
        assert!(
            got.iter()
                .all(|(cp, served)| Arc::ptr_eq(cp, &got[0].0) && Arc::ptr_eq(served, &got[0].1))
        );
        assert_eq!(got[0].0.state_digest, states[0].ledger.state_digest());
        // Another index, another state object with equal content, or
        // sharing off: built anew, with the same content where it must be.
        let other_index = checkpoint_of(&sharing, &states[0], 1, frontier(1, 6), &mut builds);
        let mut own = Arc::new(genesis.clone());
        apply(&StateSharing::off(), &mut own, &c);
        let equal_content = checkpoint_of(&sharing, &own, 0, frontier(0, 5), &mut builds);
        let off = checkpoint_of(
            &StateSharing::off(),
            &states[0],
            0,
            frontier(0, 5),
            &mut builds,
        );
        // A validator whose frontier differs (another block ordered above
        // the collection round) builds its own, served from its own body.
        let other_frontier = checkpoint_of(&sharing, &states[1], 0, frontier(0, 7), &mut builds);
        assert_ne!(other_frontier.1.body, got[0].1.body);
        assert_eq!(builds, 5);
        assert_eq!(other_index.0.index, 1);
        assert_eq!(equal_content.0.ledger, got[0].0.ledger);
        assert_eq!(off.0.ledger, got[0].0.ledger);
        assert_eq!(off.1.body, got[0].1.body);
        // The next commit moves the states on: their old checkpoint stays
        // what it was.
        let before = got[0].0.state_digest;
        let c = commit(&states[0], &from[0], 1, 10_000);
        for s in &mut states {
            apply(&sharing, s, &c);
        }
        assert_eq!(got[0].0.state_digest, before);
        assert_ne!(states[0].ledger.state_digest(), before);
        let moved = checkpoint_of(&sharing, &states[0], 0, frontier(0, 5), &mut builds);
        assert_eq!(builds, 6, "a moved state is another state");
        assert_eq!(moved.0.state_digest, states[0].ledger.state_digest());
    }
}
