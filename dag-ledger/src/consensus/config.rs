//! Configuration of a validator. Byzantine behaviours are not configured
//! here: they are wrappers around the honest validator (see
//! [`byzantine`](super::byzantine)). Nor is signature checking: block
//! signatures are always verified, through the
//! [`SignatureVerifier`](idlegrid_primitives::SignatureVerifier) the driver
//! gives the validator ([`Validator::with_signature_verifier`](super::Validator::with_signature_verifier)).

use idlegrid_primitives::{DEFAULT_MAX_DECODE_LEN, Duration};

use super::error::ConsensusError;

/// Parameters of a validator. Every limit bounds memory or work an outsider
/// can cause. All validators of a committee must agree on
/// `gc_depth`, `leaders_per_round` and the block limits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsensusConfig {
    /// After a quorum of round `r` arrives, how long to wait for the round's
    /// leader blocks before proposing round `r+1` anyway.
    pub leader_timeout: Duration,
    /// Wait for the leaders only about as long as they recently took to
    /// arrive after the quorum (twice the longest lateness of the last 16
    /// rounds or of the round's leaders' own last rounds, at least an
    /// eighth of `leader_timeout`: see `LeaderWait`), never more than
    /// `leader_timeout`; false (the default) waits `leader_timeout` every
    /// time. It makes rounds led by a crashed validator cheaper, but a
    /// leader later than the estimate is skipped, which costs tail latency
    /// in a healthy network (see the README's Throughput section).
    pub adaptive_leader_wait: bool,
    /// Least time between two of this validator's proposals (Mysticeti's
    /// `min_round_delay`). Zero proposes as soon as a round is ready —
    /// the simulator's setting; a real network on fast links sets it so the
    /// DAG does not advance faster than blocks fill, and so `gc_depth`
    /// rounds cover a useful span of time for a restarted validator.
    pub min_round_delay: Duration,
    /// Maximum transactions per block.
    pub max_block_transactions: usize,
    /// Maximum bytes per transaction.
    pub max_transaction_bytes: usize,
    /// Maximum encoded size of a block.
    pub max_block_bytes: usize,
    /// Maximum encoded size of any message (decode limit).
    pub max_message_bytes: usize,
    /// Capacity of the local pending-transaction queue.
    pub max_pending_transactions: usize,
    /// Rounds kept below the last committed leader round.
    pub gc_depth: u64,
    /// Blocks more than this many rounds above our highest accepted round
    /// are rejected.
    pub max_round_lead: u64,
    /// Maximum blocks per author waiting for missing ancestors.
    pub max_pending_blocks_per_author: usize,
    /// Maximum refs per fetch request and blocks per fetch response.
    pub max_fetch_items: usize,
    /// Maximum outstanding missing ancestors tracked for fetching.
    pub max_missing: usize,
    /// Retry period for fetching missing ancestors (rotating peers).
    pub sync_retry: Duration,
    /// How long a missing ancestor may take to arrive on its own before it
    /// is fetched, from the peer whose block named it. Without faults it is
    /// nearly always in flight: its author sent it to every validator about
    /// when it reached the peer that built on it. Zero fetches at once.
    pub fetch_grace: Duration,
    /// If we have not proposed for this long, re-send our latest block so
    /// that peers that missed it (lost messages, a healed partition) can
    /// catch up.
    pub rebroadcast_timeout: Duration,
    /// Leaders per round (1 = Mysticeti-C with a single leader).
    pub leaders_per_round: u32,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        Self {
            leader_timeout: Duration::from_millis(200),
            adaptive_leader_wait: false,
            min_round_delay: Duration::ZERO,
            max_block_transactions: 1_000,
            max_transaction_bytes: 64 * 1024,
            max_block_bytes: 1 << 20,
            max_message_bytes: DEFAULT_MAX_DECODE_LEN,
            max_pending_transactions: 100_000,
            gc_depth: 50,
            max_round_lead: 200,
            max_pending_blocks_per_author: 256,
            max_fetch_items: 256,
            max_missing: 4_096,
            sync_retry: Duration::from_millis(300),
            fetch_grace: Duration::from_millis(60),
            rebroadcast_timeout: Duration::from_millis(1_000),
            leaders_per_round: 1,
        }
    }
}

impl ConsensusConfig {
    /// Checks that the values are usable.
    pub fn validate(&self) -> Result<(), ConsensusError> {
        let bad = |m| Err(ConsensusError::InvalidConfig(m));
        if self.max_block_transactions == 0 || self.max_transaction_bytes == 0 {
            return bad("block and transaction limits must be positive");
        }
        if self.max_block_bytes > self.max_message_bytes {
            return bad("max_block_bytes must not exceed max_message_bytes");
        }
        if self.gc_depth < 3 {
            return bad("gc_depth must be at least 3 rounds");
        }
        if self.max_round_lead == 0 || self.max_pending_blocks_per_author == 0 {
            return bad("max_round_lead and max_pending_blocks_per_author must be positive");
        }
        if self.max_fetch_items == 0 || self.max_missing == 0 {
            return bad("fetch limits must be positive");
        }
        if self.leaders_per_round == 0 {
            return bad("leaders_per_round must be at least 1");
        }
        if self.sync_retry == Duration::ZERO || self.rebroadcast_timeout == Duration::ZERO {
            return bad("sync_retry and rebroadcast_timeout must be positive");
        }
        Ok(())
    }

    /// Sets the number of leaders per round (builder style).
    pub fn with_leaders_per_round(mut self, k: u32) -> Self {
        self.leaders_per_round = k;
        self
    }
    /// Sets the leader timeout (builder style).
    pub fn with_leader_timeout(mut self, d: Duration) -> Self {
        self.leader_timeout = d;
        self
    }
    /// Sets how long a missing ancestor may take before it is fetched
    /// (builder style).
    pub fn with_fetch_grace(mut self, d: Duration) -> Self {
        self.fetch_grace = d;
        self
    }
    /// Turns the adaptive leader wait on or off (builder style).
    pub fn with_adaptive_leader_wait(mut self, on: bool) -> Self {
        self.adaptive_leader_wait = on;
        self
    }
    /// Sets the garbage-collection depth (builder style).
    pub fn with_gc_depth(mut self, rounds: u64) -> Self {
        self.gc_depth = rounds;
        self
    }
}
