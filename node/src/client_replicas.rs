//! The client's non-trap verification modes ([`crate::verification`]):
//! plain lots, and replicated pairs — a matched lot held until the
//! one-lot *replica job* carrying the same inputs is matched, both lots
//! planned with every slot a cross-check trap on the other, and both
//! verified against each other once both are delivered.

use std::collections::BTreeMap;

use idlegrid_entrap::{Outcome, TrapSource as EntrapSource, TrapSpec, Verdict};
use idlegrid_primitives::{Digest, Timestamp};

use super::{ClientEvent, ClientNode, JobSpec, LotRef, ProviderRecord};
use crate::market::{JobRequest, MarketTx, Settlement};
use crate::verification::{REPLICA_JOB_BASE, VerificationMode, cross_check};

/// A lot of a job: (job, lot).
type Key = (u64, u32);

/// Replica jobs and replicated pairs in flight. Every map is bounded by
/// the client's open jobs ([`super::MAX_OPEN_JOBS`]: a replica is a job)
/// and emptied as lots settle.
#[derive(Debug, Default)]
pub(super) struct Replicas {
    /// Replica jobs posted so far (the next id's offset).
    next: u64,
    /// A replica job not yet matched → the original lot it repeats.
    of: BTreeMap<u64, Key>,
    /// Original lots held until their replica is matched, or until the
    /// time they are planned plain anyway (halfway to their plan deadline,
    /// so the plan reaches the ledger before the lot lapses).
    held: BTreeMap<Key, (LotRef, Timestamp)>,
    /// Each planned lot of a pair → its partner (itself when the partner
    /// could not be planned: then it is checked against nobody).
    partner: BTreeMap<Key, Key>,
    /// Delivered outputs of pair lots waiting for their partner's.
    delivered: BTreeMap<Key, Vec<Digest>>,
}

impl ClientNode {
    /// A lot was matched: planned by the client's verification mode.
    pub(super) fn on_matched(&mut self, now: Timestamp, at: LotRef, record: ProviderRecord) {
        if let Some(orig) = self.replicas.of.remove(&at.job) {
            return self.plan_pair(now, orig, at);
        }
        // Jobs with data bytes are verified by traps whatever the mode.
        let replicable = self.jobs.get(&at.job).is_some_and(|j| j.bid.is_some());
        match self.verification {
            VerificationMode::None => self.plan_plain(now, at),
            VerificationMode::Replication if replicable => self.replicate(now, at),
            VerificationMode::AdaptiveReplication if replicable => {
                let mut rng = self
                    .seed
                    .derive_indexed("adaptive", at.job)
                    .derive_indexed("lot", u64::from(at.lot))
                    .rng();
                if self.adaptive.replicate(&at.provider, &mut rng) {
                    self.replicate(now, at);
                } else {
                    self.plan_plain(now, at);
                }
            }
            _ => self.plan(now, at, record),
        }
    }

    /// The lot's own inputs, no traps, no replica: accepted as delivered.
    fn plan_plain(&mut self, now: Timestamp, at: LotRef) {
        let Some(real) = self.lot_inputs((at.job, at.lot)) else {
            return;
        };
        self.commit_plan(now, at, real, Vec::new(), 0);
    }

    fn lot_inputs(&self, (job, lot): Key) -> Option<Vec<Digest>> {
        self.jobs.get(&job)?.inputs.get(lot as usize).cloned()
    }

    /// Posts the one-lot replica job of `at` and holds `at` until it is
    /// matched; a replica that cannot be posted leaves the lot plain.
    fn replicate(&mut self, now: Timestamp, at: LotRef) {
        let bid = self.jobs.get(&at.job).and_then(|j| j.bid.clone());
        let (Some((req, max_price, window)), Some(inputs)) =
            (bid, self.lot_inputs((at.job, at.lot)))
        else {
            return self.plan_plain(now, at);
        };
        let id = REPLICA_JOB_BASE | (self.replicas.next & (REPLICA_JOB_BASE - 1));
        self.replicas.next = self.replicas.next.wrapping_add(1);
        let request = JobRequest {
            job: id,
            lots: 1,
            deadline: now + window,
            ..req
        };
        let spec = JobSpec {
            request,
            max_price,
            inputs: vec![inputs],
            data: None,
        };
        match self.post(now, spec) {
            Ok(()) => {
                let wait = at.plan_by.saturating_since(now).as_micros() / 2;
                let release = now + idlegrid_primitives::Duration::from_micros(wait);
                self.replicas.of.insert(id, (at.job, at.lot));
                self.replicas.held.insert((at.job, at.lot), (at, release));
            }
            Err(_) => self.plan_plain(now, at),
        }
    }

    /// When the next held lot is released (see [`Replicas::held`]).
    pub(super) fn hold_due(&self) -> Option<Timestamp> {
        self.replicas.held.values().map(|&(_, t)| t).min()
    }

    /// Plans plain the held lots whose replica was not matched in time
    /// (their replica jobs, if matched later, are planned plain too).
    pub(super) fn release_holds(&mut self, now: Timestamp) {
        let due: Vec<Key> = (self.replicas.held.iter())
            .filter(|(_, (_, t))| *t <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            if let Some((at, _)) = self.replicas.held.remove(&k) {
                self.plan_plain(now, at);
            }
        }
    }

    /// The replica `rep` of the held lot `orig` was matched: both lots are
    /// planned, every slot a cross-check on the other's provider (the
    /// replica alone and plain if `orig` was released already).
    fn plan_pair(&mut self, now: Timestamp, orig: Key, rep: LotRef) {
        let Some((first, _)) = self.replicas.held.remove(&orig) else {
            return self.plan_plain(now, rep);
        };
        let Some(inputs) = self.lot_inputs(orig) else {
            return;
        };
        let traps = |partner| {
            inputs
                .iter()
                .map(|&input| TrapSpec {
                    input,
                    source: EntrapSource::CrossCheck { partner },
                })
                .collect::<Vec<_>>()
        };
        let n = inputs.len() as u32;
        let a = self.commit_plan(now, first, Vec::new(), traps(rep.provider), 0);
        let b = self.commit_plan(now, rep, Vec::new(), traps(first.provider), n);
        let r = (rep.job, rep.lot);
        match (a, b) {
            (true, true) => {
                self.replicas.partner.insert(orig, r);
                self.replicas.partner.insert(r, orig);
            }
            (true, false) => {
                self.replicas.partner.insert(orig, orig);
            }
            (false, true) => {
                self.replicas.partner.insert(r, r);
            }
            (false, false) => {}
        }
    }

    /// A pair lot's outputs: kept until the partner's are in, then both
    /// are verified. False if the lot is not part of a pair.
    pub(super) fn on_replica_delivered(
        &mut self,
        now: Timestamp,
        job: u64,
        lot: u32,
        outputs: &[Digest],
    ) -> bool {
        let key = (job, lot);
        let Some(&other) = self.replicas.partner.get(&key) else {
            return false;
        };
        self.replicas.delivered.insert(key, outputs.to_vec());
        if self.replicas.delivered.contains_key(&other) {
            self.verify_pair_lot(now, key, other);
            if other != key {
                self.verify_pair_lot(now, other, key);
            }
            self.replicas.delivered.remove(&key);
            self.replicas.delivered.remove(&other);
        }
        true
    }

    /// Reveals `me`'s cross-checks with `other`'s outputs and accuses every
    /// slot where they disagree (the referees decide who was wrong).
    fn verify_pair_lot(&mut self, now: Timestamp, me: Key, other: Key) {
        let (Some(mine), Some(theirs)) = (
            self.replicas.delivered.get(&me),
            self.replicas.delivered.get(&other),
        ) else {
            return;
        };
        let plan = |k: Key| self.jobs.get(&k.0).and_then(|j| j.plans.get(&k.1));
        let (Some(p), Some(q)) = (plan(me), plan(other)) else {
            return;
        };
        let Some((accuse, expected)) = cross_check(p, mine, &q.public().slot_inputs, theirs) else {
            return;
        };
        let reveal = p.trap_reveal(expected);
        let by_input: BTreeMap<&Digest, Digest> = p
            .public()
            .slot_inputs
            .iter()
            .zip(mine.iter().copied())
            .collect();
        let outputs = self
            .lot_inputs(me)
            .unwrap_or_default()
            .iter()
            .filter_map(|x| by_input.get(x).copied())
            .collect();
        let (job, lot) = me;
        let tx = MarketTx::Verify {
            job,
            lot,
            reveal,
            accuse: accuse.clone(),
        };
        let _ = self.core.submit_market(now, &tx);
        if job < REPLICA_JOB_BASE {
            self.events.push_back(ClientEvent::Results {
                job,
                lot,
                outputs,
                accused: accuse,
            });
        }
    }

    /// A lot settled: a replicated one updates the adaptive record (its
    /// provider's streak grows when nothing was proven against it and
    /// resets on a conviction or a default); a partner that settles
    /// without delivering leaves the other lot checked against nobody.
    pub(super) fn on_replica_settled(&mut self, now: Timestamp, s: &Settlement) {
        let key = (s.job, s.lot);
        if !self.replicas.partner.contains_key(&key) {
            return;
        }
        match replicated_result(s) {
            Some(true) => self.adaptive.valid(s.provider),
            Some(false) => self.adaptive.fault(s.provider),
            None => {}
        }
        self.on_replica_gone(now, key);
    }

    /// Lot `key` ended (settled, or lapsed unplanned): if it was part of
    /// a pair, its partner is checked against nobody.
    pub(super) fn on_replica_gone(&mut self, now: Timestamp, key: Key) {
        self.replicas.held.remove(&key);
        let Some(other) = self.replicas.partner.remove(&key) else {
            return;
        };
        self.replicas.delivered.remove(&key);
        if other != key && self.replicas.delivered.contains_key(&other) {
            // The partner delivered and waits for outputs that will not
            // come: it is checked against nobody.
            self.replicas.partner.insert(other, other);
            self.verify_pair_lot(now, other, other);
            self.replicas.delivered.remove(&other);
        } else if let Some(o) = self.replicas.partner.get_mut(&other) {
            *o = other;
        }
    }

    /// A replica job lapsed unmatched: its original lot is planned plain.
    pub(super) fn on_replica_lapsed(&mut self, now: Timestamp, job: u64) {
        if let Some(orig) = self.replicas.of.remove(&job)
            && let Some((at, _)) = self.replicas.held.remove(&orig)
        {
            self.plan_plain(now, at);
        }
    }
}

/// What a settled replicated lot says about its provider: `Some(true)` a
/// valid result (nothing proven against it), `Some(false)` a fault
/// (convicted, admitted or defaulted), `None` nothing (no-show, the client
/// abandoned).
fn replicated_result(s: &Settlement) -> Option<bool> {
    if !s.slashed.is_zero() {
        return Some(false);
    }
    match s.outcome {
        Outcome::Clean | Outcome::Judged(Verdict::NotProven | Verdict::ClientFramed) => Some(true),
        Outcome::Admitted
        | Outcome::ProviderDefaulted
        | Outcome::Judged(Verdict::ProviderCheated | Verdict::BothAtFault) => Some(false),
        _ => None,
    }
}
