//! Signature checks started on the machine's other core while the
//! simulation runs on.
//!
//! A signature a simulated node will check is known when its sender
//! transmits it: a block or a transaction is sent milliseconds of virtual
//! time, and usually thousands of events, before anyone receives it.
//! [`SignaturePrefetch`] hands each block and each transaction submitted to
//! a gateway, as it is sent, to one worker thread, which checks it with the
//! very call its recipient will make ([`VerifiedBlock::verify_with`],
//! [`SignedTransaction::verify_with`]) through the run's shared
//! [`SignatureVerifier`]. A signature that verifies is remembered in the
//! shared memo, so the recipient's own check is a lookup; the engine thread
//! is left the work that cannot start before its turn (signing, applying,
//! consensus).
//!
//! Honest nodes sign through that memo ([`SignatureVerifier::sign`]), so
//! what they send is remembered before it leaves and the worker finds it
//! known: it is left what was not signed through the run's memo (an
//! adversary's blocks and forgeries), and the validators' audits (see
//! [`crate::audit`]). Signing through the memo is what serves the nearest
//! recipients: a block reaches its own region's validators a millisecond
//! of virtual time after it is sent, tens of microseconds of the engine's,
//! before a worker on another core could check it.
//!
//! **The run does not change.** The memo is a pure function cache (see
//! [`SignatureVerifier`]): whether the worker got there first changes how
//! long a check takes, never its answer, and nothing a node, the engine or
//! the report reads depends on the memo's content or counts. A run's digest
//! is the same with prefetching or without, however the two threads
//! interleave (tested: `sim/tests/prefetch.rs`).
//!
//! **Cheap for the engine.** Offering an item is a clone of an `Arc` (or
//! of a transaction) and an uncontended lock. The worker takes every
//! waiting item at once, and when the inbox is empty it polls a flag for a
//! few hundred microseconds before it sleeps: waking a sleeping thread is a
//! system call on the engine's thread, and items come every hundred
//! microseconds or so (the poll spends the other core's time, which the
//! engine does not use). A block goes to each peer and a transaction to a
//! few validators, one send each, back to back: repeats of the last few
//! items are skipped.
//!
//! **Bounded.** At most [`QUEUE`] items wait; when the worker falls behind
//! an item is dropped, and its recipient verifies it itself, as without
//! prefetching. Dropping the [`SignaturePrefetch`] closes the queue and
//! joins the worker.
//!
//! ```
//! use std::sync::Arc;
//! use idlegrid_dag_ledger::consensus::{Committee, ConsensusConfig};
//! use idlegrid_dag_ledger::ledger::{ChainId, Nonce, Transaction, TxKind};
//! use idlegrid_primitives::{AccountId, Amount, Keypair, Seed, SignatureMemo, SignatureVerifier};
//! use idlegrid_sim::prefetch::SignaturePrefetch;
//!
//! let memo = SignatureMemo::shared(&Seed::from_u64(1));
//! let verifier = SignatureVerifier::memoized(Arc::clone(&memo));
//! let key = Keypair::from_seed(&Seed::from_u64(2));
//! let committee = Committee::equal([key.node_id()]).unwrap();
//! let mut prefetch = SignaturePrefetch::start(verifier, committee, ConsensusConfig::default());
//! let tx = Transaction {
//!     chain: ChainId::new(0),
//!     sender: key.node_id().account(),
//!     nonce: Nonce::new(0),
//!     kind: TxKind::Transfer { to: AccountId::from_bytes([7; 32]), amount: Amount::new(5) },
//! }
//! .sign(&key);
//! prefetch.offer_transaction(&tx);
//! drop(prefetch); // waits for the worker: the signature is remembered
//! assert_eq!(memo.stats().misses, 1);
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use idlegrid_dag_ledger::consensus::{
    AuthorityIndex, Block, Committee, ConsensusConfig, ConsensusMessage, VerifiedBlock,
};
use idlegrid_dag_ledger::ledger::SignedTransaction;
use idlegrid_node::wire::{FactsVote, GatewayRequest, NodeMessage};
use idlegrid_primitives::{Signature, SignatureVerifier};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// Items waiting for the worker at most.
pub const QUEUE: usize = 4_096;
/// Times the worker looks for work again (a pause instruction apart, a
/// few hundred microseconds in all) before it sleeps: a wake-up is a system
/// call on the engine's thread.
const SPIN: usize = 4_000;
/// Signatures the worker verifies as one batch at most.
const CHUNK: usize = 16;
/// Offered signatures remembered to skip repeats.
const RECENT: usize = 16;

/// One signature check to make ahead of its recipient.
enum Work {
    Block(Arc<Block>),
    Transaction(Box<SignedTransaction>),
    /// Votes on commits' facts riding on a block of their voter.
    Votes(AuthorityIndex, Arc<[FactsVote]>),
}

/// What the engine's thread and the worker share.
#[derive(Default)]
struct Inbox {
    items: Vec<Work>,
    /// The worker sleeps until woken.
    waiting: bool,
    /// No more items will come.
    closed: bool,
}

#[derive(Default)]
struct Shared {
    inbox: Mutex<Inbox>,
    wake: Condvar,
    /// The inbox has items (read without the lock while the worker spins).
    ready: AtomicBool,
}

impl Shared {
    /// The inbox, whatever a panicking holder left (every change to it is
    /// whole).
    fn lock(&self) -> MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A worker thread checking signatures ahead of their recipients (see the
/// module docs).
pub struct SignaturePrefetch {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
    /// The leading bytes of the last few offered signatures (see
    /// `first_time`).
    recent: [u64; RECENT],
    next_recent: usize,
}

impl std::fmt::Debug for SignaturePrefetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignaturePrefetch").finish_non_exhaustive()
    }
}

impl SignaturePrefetch {
    /// Starts the worker: it checks blocks of `committee` under `config`,
    /// and transactions, through `verifier` (the one the run's nodes
    /// share). If the thread cannot be spawned, nothing is prefetched.
    pub fn start(
        verifier: SignatureVerifier,
        committee: Committee,
        config: ConsensusConfig,
    ) -> Self {
        let shared = Arc::new(Shared::default());
        let inbox = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("signature-prefetch".into())
            .spawn(move || check_all(&inbox, &verifier, &committee, &config))
            .ok();
        shared.lock().closed = worker.is_none();
        Self {
            shared,
            worker,
            recent: [0; RECENT],
            next_recent: 0,
        }
    }

    /// Offers the signatures `msg` carries to the worker: a block, the
    /// blocks of a fetch response, a transaction submitted to a gateway,
    /// the votes on commits' facts riding on their voter's block.
    pub fn offer(&mut self, msg: &NodeMessage) {
        match msg {
            NodeMessage::Consensus(c) => self.offer_consensus(c),
            NodeMessage::Voted { consensus, votes } => {
                self.offer_consensus(consensus);
                if let ConsensusMessage::Block(b) = consensus
                    && let Some(first) = votes.first()
                    && self.first_time(tag(&first.signature))
                {
                    self.push(Work::Votes(b.header.author, Arc::clone(votes)));
                }
            }
            NodeMessage::Gateway(GatewayRequest::Submit(tx)) => self.offer_transaction(tx),
            _ => {}
        }
    }

    /// Offers the blocks of a consensus message.
    fn offer_consensus(&mut self, msg: &ConsensusMessage) {
        match msg {
            ConsensusMessage::Block(b) | ConsensusMessage::LatestOwnBlockResponse(Some(b)) => {
                self.offer_block(b);
            }
            ConsensusMessage::FetchResponse(blocks) => {
                blocks.iter().for_each(|b| self.offer_block(b))
            }
            _ => {}
        }
    }

    /// Offers one block (once: a repeat of one of the last few is skipped).
    fn offer_block(&mut self, b: &Arc<Block>) {
        if self.first_time(tag(&b.signature)) {
            self.push(Work::Block(Arc::clone(b)));
        }
    }

    /// Offers one signed transaction (a repeat of one of the last few is
    /// skipped, as for blocks).
    pub fn offer_transaction(&mut self, tx: &SignedTransaction) {
        if self.first_time(tag(&tx.signature)) {
            self.push(Work::Transaction(Box::new(tx.clone())));
        }
    }

    /// False if `tag` is among the last few offered (a validator sends its
    /// block to each peer, a light node its transaction to each of a few
    /// validators, back to back: the worker needs each once).
    fn first_time(&mut self, tag: u64) -> bool {
        if self.recent.contains(&tag) {
            return false;
        }
        self.recent[self.next_recent] = tag;
        self.next_recent = (self.next_recent + 1) % RECENT;
        true
    }

    /// Queues `work` and wakes the worker if it sleeps; drops it if the
    /// worker is behind (or gone).
    fn push(&mut self, work: Work) {
        let mut inbox = self.shared.lock();
        if inbox.closed || inbox.items.len() >= QUEUE {
            return;
        }
        inbox.items.push(work);
        self.shared.ready.store(true, Ordering::Release);
        let wake = std::mem::take(&mut inbox.waiting);
        drop(inbox);
        if wake {
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for SignaturePrefetch {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.wake.notify_one();
        if let Some(w) = self.worker.take() {
            // A worker that panicked checked nothing more; the run is
            // unaffected (its nodes verify for themselves).
            let _ = w.join();
        }
    }
}

/// A signature's leading bytes: a name for what it signs (a repeat of
/// another's would cost one skipped prefetch, nothing more).
fn tag(sig: &Signature) -> u64 {
    let bytes = sig.to_bytes();
    u64::from_le_bytes(bytes[..8].try_into().expect("8 of 64 bytes"))
}

/// The worker: takes every waiting item at once and checks each with its
/// recipient's own call. Returns once the queue is closed and empty.
fn check_all(
    shared: &Shared,
    verifier: &SignatureVerifier,
    committee: &Committee,
    config: &ConsensusConfig,
) {
    let mut batch = Vec::new();
    // Batch verification's random coefficients: from the OS, as nothing in
    // the run depends on them (and a forger cannot predict them).
    let mut rng = ChaCha20Rng::from_entropy();
    loop {
        for _ in 0..SPIN {
            if shared.ready.load(Ordering::Acquire) {
                break;
            }
            std::hint::spin_loop();
        }
        {
            let mut inbox = shared.lock();
            while inbox.items.is_empty() && !inbox.closed {
                inbox.waiting = true;
                inbox = shared
                    .wake
                    .wait(inbox)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if inbox.items.is_empty() {
                break;
            }
            std::mem::swap(&mut batch, &mut inbox.items);
            shared.ready.store(false, Ordering::Release);
        }
        check_batch(&mut batch, verifier, committee, config, &mut rng);
    }
}

/// Checks `batch` (emptying it): blocks first (their first recipients are a
/// millisecond away), then transactions, each kind in chunks of [`CHUNK`]
/// signatures verified as one batch (a chunk's signatures are remembered
/// together once it verifies).
fn check_batch(
    batch: &mut Vec<Work>,
    verifier: &SignatureVerifier,
    committee: &Committee,
    config: &ConsensusConfig,
    rng: &mut ChaCha20Rng,
) {
    let mut blocks = Vec::new();
    let mut txs = Vec::new();
    let mut votes = Vec::new();
    for item in batch.drain(..) {
        match item {
            Work::Block(b) => blocks.push(b),
            Work::Transaction(tx) => txs.push(tx),
            Work::Votes(who, v) => votes.push((who, v)),
        }
    }
    // Only the memo's remembering matters, not the answers.
    for chunk in blocks.chunks(CHUNK) {
        let chunk = chunk.iter().map(Arc::clone);
        drop(VerifiedBlock::verify_all_with(
            chunk, committee, config, verifier, rng,
        ));
    }
    for chunk in txs.chunks(CHUNK) {
        let chunk: Vec<&SignedTransaction> = chunk.iter().map(|t| &**t).collect();
        drop(SignedTransaction::verify_all_with(&chunk, verifier, rng));
    }
    for (who, v) in votes {
        v.iter()
            .for_each(|v| drop(v.verify(committee, who, verifier)));
    }
}
