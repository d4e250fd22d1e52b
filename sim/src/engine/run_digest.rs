//! The run digest: one blake3 chain over every event of a run, hashed a
//! batch of events at a time.
//!
//! Each delivered message, fired timer and applied fault is written as a
//! fixed-size [`Record`] (kind, virtual time, two numbers, the message or
//! fault fingerprint). Records accumulate in a buffer of [`BATCH`] records;
//! a full buffer is sealed into the chain, `d ← H(RUN_DOMAIN, d ‖ batch)`
//! ([`Digest::chain`], which length-prefixes both parts). The digest at any
//! point is the chain sealed with whatever is buffered, so it is defined
//! after every event, and checkpoints and reports read it without changing
//! the chain.
//!
//! Two runs have equal digests after the same number of events exactly
//! when they recorded the same records (up to a blake3 collision): records
//! have one size, so batch boundaries fall at the same records in both,
//! and each batch is hashed whole. Per event this costs a 49-byte copy and
//! blake3 over a large buffer (SIMD over many chunks at once) instead of
//! setting up a keyed hasher and compressing three blocks.

use idlegrid_primitives::{Digest, Domain, Timestamp};

/// Records per sealed batch (49 KiB of records).
pub(super) const BATCH: usize = 1024;

/// The size of one event's record.
const RECORD: usize = 49;

/// One event's record: kind, time, two numbers, a fingerprint.
pub(super) struct Record<'a> {
    /// 1 delivery, 2 timer, 3 fault.
    pub(super) kind: u8,
    /// When it happened.
    pub(super) at: Timestamp,
    /// Sender, or the node whose timer fired.
    pub(super) a: u32,
    /// Recipient, or the node's incarnation.
    pub(super) b: u32,
    /// The message's or fault's fingerprint (zeros for a timer).
    pub(super) fingerprint: &'a [u8; 32],
}

/// The chain and the records not yet sealed into it.
pub(super) struct RunDigest {
    domain: Domain,
    sealed: Digest,
    pending: Vec<u8>,
}

impl RunDigest {
    /// A chain starting at `start` (the digest of the run's seed).
    pub(super) fn new(domain: Domain, start: Digest) -> Self {
        Self {
            domain,
            sealed: start,
            pending: Vec::with_capacity(BATCH * RECORD),
        }
    }

    /// Appends one event's record, sealing the batch when it is full.
    pub(super) fn record(&mut self, r: &Record<'_>) {
        self.pending.push(r.kind);
        self.pending
            .extend_from_slice(&r.at.as_micros().to_le_bytes());
        self.pending.extend_from_slice(&r.a.to_le_bytes());
        self.pending.extend_from_slice(&r.b.to_le_bytes());
        self.pending.extend_from_slice(r.fingerprint);
        debug_assert_eq!(self.pending.len() % RECORD, 0);
        if self.pending.len() == BATCH * RECORD {
            self.sealed = self.sealed.chain(self.domain, &self.pending);
            self.pending.clear();
        }
    }

    /// The digest of every record so far.
    pub(super) fn digest(&self) -> Digest {
        if self.pending.is_empty() {
            self.sealed
        } else {
            self.sealed.chain(self.domain, &self.pending)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Domain = Domain::new("idlegrid/sim/test-run");

    fn run(records: &[(u8, u64)]) -> Vec<Digest> {
        let mut d = RunDigest::new(D, Digest::hash(D, b"seed"));
        records
            .iter()
            .map(|&(kind, t)| {
                d.record(&Record {
                    kind,
                    at: Timestamp::from_micros(t),
                    a: 1,
                    b: 2,
                    fingerprint: &[kind; 32],
                });
                d.digest()
            })
            .collect()
    }

    #[test]
    fn equal_records_give_equal_digests_and_any_change_shows() {
        let records: Vec<(u8, u64)> = (0..3 * BATCH as u64 + 7).map(|i| (1, i)).collect();
        let a = run(&records);
        assert_eq!(a, run(&records));
        // Every prefix has its own digest, across batch boundaries too.
        let mut sorted = a.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), a.len());
        for i in [0, BATCH - 1, BATCH, 2 * BATCH + 3] {
            let mut changed = records.clone();
            changed[i].0 = 2;
            let b = run(&changed);
            assert_eq!(a[..i], b[..i]);
            assert!(a[i..].iter().zip(&b[i..]).all(|(x, y)| x != y));
        }
    }
}
