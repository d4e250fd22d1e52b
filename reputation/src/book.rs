//! [`ReputationBook`]: the replicated reputation state of a node.
//!
//! The book registers identities (with their bonded stake), accepts
//! feedback, decays it per epoch, and answers queries: per-role beta
//! [`score`](ReputationBook::score), Sarmenta
//! [`credibility`](ReputationBook::credibility), and EigenTrust
//! [`global_trust`](ReputationBook::global_trust) over the reporter → subject
//! graph it accumulates.
//!
//! ## Weight of a feedback item
//!
//! ```text
//! events   = min(1 + floor(log2(1 + value / value_unit)), max_weight_events)
//! evidence = events · severity · λ^(current_epoch - feedback.epoch)
//! ```
//!
//! The value at stake raises the weight only logarithmically, so one large
//! (possibly self-dealt) trade cannot buy a reputation, and the cap bounds any
//! single event. Severity is 1 for good outcomes,
//! [`BookParams::minor_severity`] for failures and timeouts, and
//! [`BookParams::major_severity`] for cheating, non-payment and framing.
//!
//! ## Determinism
//!
//! Queries never mutate; only [`apply_feedback`](ReputationBook::apply_feedback)
//! and epoch advances do, so the state is a function of the sequence of
//! inputs. Within one epoch, accepted feedback commutes: the decay applied to
//! a state on its first touch in an epoch depends only on the epoch it was
//! last touched in, and additions are integer sums. (Which of two conflicting
//! duplicates wins, and which items exceed a reporter's quota, does depend on
//! order, as it must: feed the book in ledger order.)
//!
//! ## Bounds
//!
//! Identities, edges, feedback per reporter per epoch, the value at stake and
//! the age of feedback (the deduplication window) are all bounded by
//! [`BookParams`]; exceeding a bound is a typed error and changes nothing.

use std::collections::{BTreeMap, BTreeSet};

use idlegrid_primitives::{Amount, Digest, Domain, Epoch, NodeId};
use serde::{Deserialize, Serialize};

use crate::beta::{BetaParams, BetaState, Evidence};
use crate::eigentrust::{EigenTrust, TrustGraph, TrustParams, TrustVector};
use crate::error::ReputationError;
use crate::feedback::{Feedback, JobId, Outcome, Role, Severity, SignedFeedback};
use crate::score::Score;

/// Domain of [`ReputationBook::state_digest`].
pub const STATE_DIGEST_DOMAIN: Domain = Domain::new("idlegrid/reputation/state");

/// Parameters and bounds of a [`ReputationBook`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BookParams {
    /// The beta model.
    pub beta: BetaParams,
    /// Value that counts as one unit in the weight formula (> 0).
    pub value_unit: Amount,
    /// Largest accepted value at stake.
    pub max_value: Amount,
    /// Cap on the weight of one event, in events (1..=128).
    pub max_weight_events: u32,
    /// Multiplier for failures and timeouts (>= 1).
    pub minor_severity: u32,
    /// Multiplier for cheating, non-payment and framing (>= minor).
    pub major_severity: u32,
    /// Largest number of identities.
    pub max_identities: usize,
    /// Largest number of reporter → subject edges.
    pub max_edges: usize,
    /// Feedback items accepted per reporter per epoch.
    pub max_feedback_per_reporter_per_epoch: u32,
    /// Epochs of feedback accepted, including the current one (1..=1024);
    /// also the deduplication window.
    pub window_epochs: u64,
}

impl Default for BookParams {
    fn default() -> Self {
        Self {
            beta: BetaParams::default(),
            value_unit: Amount::new(1),
            max_value: Amount::new(u128::from(u64::MAX)),
            max_weight_events: 16,
            minor_severity: 1,
            major_severity: 10,
            max_identities: 1 << 20,
            max_edges: 1 << 23,
            max_feedback_per_reporter_per_epoch: 4096,
            window_epochs: 8,
        }
    }
}

impl BookParams {
    /// Checks every bound.
    pub fn validate(&self) -> Result<(), ReputationError> {
        self.beta.validate()?;
        let bad = |m| Err(ReputationError::InvalidParams(m));
        if self.value_unit.is_zero() {
            return bad("value_unit must be positive");
        }
        if !(1..=128).contains(&self.max_weight_events) {
            return bad("max_weight_events must be in 1..=128");
        }
        if self.minor_severity == 0 || self.major_severity < self.minor_severity {
            return bad("severities must satisfy 1 <= minor <= major");
        }
        if !(1..=1024).contains(&self.window_epochs) {
            return bad("window_epochs must be in 1..=1024");
        }
        let heaviest = u64::from(self.max_weight_events) * u64::from(self.major_severity);
        if Evidence::from_events(heaviest).is_none() {
            return bad("max_weight_events * major_severity overflows evidence");
        }
        Ok(())
    }

    /// The evidence of one fresh event of `outcome` with `value` at stake
    /// (before decay by age); see the module docs.
    pub fn weight(&self, outcome: Outcome, value: Amount) -> Result<Evidence, ReputationError> {
        if value.is_zero() || value > self.max_value {
            return Err(ReputationError::ValueOutOfRange {
                value,
                max: self.max_value,
            });
        }
        let units = value.get() / self.value_unit.get();
        let events = (1 + units.saturating_add(1).ilog2()).min(self.max_weight_events);
        let severity = match outcome.severity() {
            Severity::Positive => 1,
            Severity::Minor => self.minor_severity,
            Severity::Major => self.major_severity,
        };
        Evidence::from_events(u64::from(events) * u64::from(severity))
            .ok_or(ReputationError::EvidenceOverflow)
    }
}

/// What the book knows about one identity.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct IdentityRecord {
    /// Bonded stake (feeds EigenTrust's anchor distribution).
    pub stake: Amount,
    /// Epoch of registration.
    pub registered: Epoch,
    /// Evidence as a provider (not decayed to the current epoch).
    pub provider: BetaState,
    /// Evidence as a client (not decayed to the current epoch).
    pub client: BetaState,
}

impl IdentityRecord {
    fn role(&self, role: Role) -> &BetaState {
        match role {
            Role::Provider => &self.provider,
            Role::Client => &self.client,
        }
    }
    fn role_mut(&mut self, role: Role) -> &mut BetaState {
        match role {
            Role::Provider => &mut self.provider,
            Role::Client => &mut self.client,
        }
    }
}

type DedupKey = (JobId, NodeId, NodeId);

/// Reputation state: identities, per-role beta evidence, the feedback graph.
///
/// Serializable for digests and snapshots. Deserialize only bytes whose
/// digest a quorum attested (a state-sync snapshot): a book is otherwise
/// rebuilt by replaying inputs, so its bounds always hold.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReputationBook {
    params: BookParams,
    epoch: Epoch,
    identities: BTreeMap<NodeId, IdentityRecord>,
    edges: BTreeMap<(NodeId, NodeId), BetaState>,
    seen: BTreeMap<DedupKey, Epoch>,
    seen_by_epoch: BTreeMap<Epoch, BTreeSet<DedupKey>>,
    quota: BTreeMap<NodeId, u32>,
}

impl ReputationBook {
    /// An empty book at `epoch`.
    pub fn new(params: BookParams, epoch: Epoch) -> Result<Self, ReputationError> {
        params.validate()?;
        Ok(Self {
            params,
            epoch,
            identities: BTreeMap::new(),
            edges: BTreeMap::new(),
            seen: BTreeMap::new(),
            seen_by_epoch: BTreeMap::new(),
            quota: BTreeMap::new(),
        })
    }

    /// The parameters.
    pub fn params(&self) -> &BookParams {
        &self.params
    }
    /// The current epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }
    /// The oldest feedback epoch still accepted.
    pub fn oldest_accepted(&self) -> Epoch {
        self.epoch.saturating_minus(self.params.window_epochs - 1)
    }
    /// Number of registered identities.
    pub fn identity_count(&self) -> usize {
        self.identities.len()
    }
    /// Number of reporter → subject edges.
    pub fn edge_count(&self) -> usize {
        self.edges.len()
    }
    /// Registered identities with their records, in id order.
    pub fn identities(&self) -> impl Iterator<Item = (&NodeId, &IdentityRecord)> {
        self.identities.iter()
    }
    /// Feedback items accepted from `reporter` in the current epoch.
    pub fn quota_used(&self, reporter: &NodeId) -> u32 {
        self.quota.get(reporter).copied().unwrap_or(0)
    }

    /// Registers `id` with `stake`, or updates the stake of a known identity
    /// (its evidence is kept).
    pub fn register(&mut self, id: NodeId, stake: Amount) -> Result<(), ReputationError> {
        if let Some(rec) = self.identities.get_mut(&id) {
            rec.stake = stake;
            return Ok(());
        }
        if self.identities.len() >= self.params.max_identities {
            return Err(ReputationError::TooManyIdentities {
                limit: self.params.max_identities,
            });
        }
        let fresh = BetaState::fresh(self.epoch);
        self.identities.insert(
            id,
            IdentityRecord {
                stake,
                registered: self.epoch,
                provider: fresh,
                client: fresh,
            },
        );
        Ok(())
    }

    /// True if `id` is registered.
    pub fn is_registered(&self, id: &NodeId) -> bool {
        self.identities.contains_key(id)
    }

    /// Verifies the reporter's signature, then applies the feedback. The
    /// cheap admission checks run before the signature check, so junk from
    /// unknown identities costs no curve arithmetic.
    pub fn record(&mut self, signed: &SignedFeedback) -> Result<(), ReputationError> {
        self.admit(&signed.feedback)?;
        signed.verify()?;
        self.apply_feedback(&signed.feedback)
    }

    /// Applies feedback whose authenticity the caller has established (a
    /// verdict from the ledger, or feedback [`record`](Self::record) verified).
    /// Every check runs before any state changes.
    pub fn apply_feedback(&mut self, fb: &Feedback) -> Result<(), ReputationError> {
        let key = self.admit(fb)?;
        let lambda = self.params.beta.forgetting;
        let age = self.epoch.get() - fb.epoch.get();
        let weight = self
            .params
            .weight(fb.outcome, fb.value)?
            .scale(lambda.pow(age));
        let positive = fb.outcome.is_positive();
        let role = fb.outcome.role();

        let subject = self.identities.get(&fb.subject).expect("admitted");
        let new_state = subject
            .role(role)
            .decayed_to(self.epoch, lambda)
            .add(positive, weight)?;
        let edge_key = (fb.reporter, fb.subject);
        let old_edge = match self.edges.get(&edge_key) {
            Some(e) => *e,
            None if self.edges.len() >= self.params.max_edges => {
                return Err(ReputationError::TooManyEdges {
                    limit: self.params.max_edges,
                });
            }
            None => BetaState::fresh(self.epoch),
        };
        let new_edge = old_edge
            .decayed_to(self.epoch, lambda)
            .add(positive, weight)?;

        // Commit: nothing below can fail.
        *self
            .identities
            .get_mut(&fb.subject)
            .expect("admitted")
            .role_mut(role) = new_state;
        self.edges.insert(edge_key, new_edge);
        self.seen.insert(key, fb.epoch);
        self.seen_by_epoch.entry(fb.epoch).or_default().insert(key);
        *self.quota.entry(fb.reporter).or_insert(0) += 1;
        Ok(())
    }

    /// All admission checks; returns the deduplication key.
    fn admit(&self, fb: &Feedback) -> Result<DedupKey, ReputationError> {
        if fb.reporter == fb.subject {
            return Err(ReputationError::SelfFeedback(fb.reporter));
        }
        if !self.is_registered(&fb.reporter) {
            return Err(ReputationError::UnknownReporter(fb.reporter));
        }
        if !self.is_registered(&fb.subject) {
            return Err(ReputationError::UnknownSubject(fb.subject));
        }
        self.params.weight(fb.outcome, fb.value)?;
        if fb.epoch > self.epoch {
            return Err(ReputationError::FutureEpoch {
                feedback: fb.epoch,
                current: self.epoch,
            });
        }
        if fb.epoch < self.oldest_accepted() {
            return Err(ReputationError::StaleFeedback {
                feedback: fb.epoch,
                oldest: self.oldest_accepted(),
            });
        }
        let key = (fb.job, fb.reporter, fb.subject);
        if self.seen.contains_key(&key) {
            return Err(ReputationError::DuplicateFeedback {
                job: fb.job,
                reporter: fb.reporter,
                subject: fb.subject,
            });
        }
        let limit = self.params.max_feedback_per_reporter_per_epoch;
        if self.quota_used(&fb.reporter) >= limit {
            return Err(ReputationError::ReporterQuotaExceeded {
                reporter: fb.reporter,
                epoch: self.epoch,
                limit,
            });
        }
        Ok(key)
    }

    /// Moves to the next epoch and returns it. Costs nothing per identity
    /// (decay is lazy); drops per-epoch quotas and deduplication entries that
    /// left the window. At `Epoch(u64::MAX)` this is a no-op.
    pub fn advance_epoch(&mut self) -> Epoch {
        let next = self.epoch.next();
        if next > self.epoch {
            self.advance_to(next)
                .expect("next epoch is after the current one");
        }
        self.epoch
    }

    /// Moves to `epoch`, which must be later than the current one.
    pub fn advance_to(&mut self, epoch: Epoch) -> Result<(), ReputationError> {
        if epoch <= self.epoch {
            return Err(ReputationError::EpochNotAfter {
                current: self.epoch,
                requested: epoch,
            });
        }
        self.epoch = epoch;
        self.quota.clear();
        let oldest = self.oldest_accepted();
        let keep = self.seen_by_epoch.split_off(&oldest);
        for key in core::mem::replace(&mut self.seen_by_epoch, keep)
            .into_values()
            .flatten()
        {
            self.seen.remove(&key);
        }
        Ok(())
    }

    /// The evidence of `id` in `role`, decayed to the current epoch; `None`
    /// for unknown identities.
    pub fn state(&self, id: &NodeId, role: Role) -> Option<BetaState> {
        self.identities.get(id).map(|r| {
            r.role(role)
                .decayed_to(self.epoch, self.params.beta.forgetting)
        })
    }

    /// The score a fresh identity has in any role (zero).
    pub fn fresh_score(&self) -> Score {
        BetaState::fresh(self.epoch).score(&self.params.beta)
    }

    /// The credibility a fresh identity has (`1 - f`).
    pub fn fresh_credibility(&self) -> Score {
        BetaState::fresh(self.epoch).credibility(&self.params.beta)
    }

    /// Beta reputation of `id` in `role`; the fresh score for unknown ids.
    /// This is the score for the market's minimum-reputation filter.
    pub fn score(&self, id: &NodeId, role: Role) -> Score {
        self.state(id, role)
            .map_or_else(|| self.fresh_score(), |s| s.score(&self.params.beta))
    }

    /// True if `id` has at least `min` in `role` (the market's filter).
    pub fn meets_minimum(&self, id: &NodeId, role: Role, min: Score) -> bool {
        self.score(id, role) >= min
    }

    /// Probability that `id`'s next result as a provider is correct, for the
    /// entrap optimizer; the fresh credibility for unknown ids.
    pub fn credibility(&self, id: &NodeId) -> Score {
        self.state(id, Role::Provider).map_or_else(
            || self.fresh_credibility(),
            |s| s.credibility(&self.params.beta),
        )
    }

    /// [`score`](Self::score) gated by global trust: the fresh score for an
    /// identity with zero global trust in `trust` (e.g. a Sybil ring that only
    /// rates itself). Use this for the market's filter when a trust vector is
    /// at hand; it is never above [`score`](Self::score).
    pub fn score_gated(&self, id: &NodeId, role: Role, trust: &TrustVector) -> Score {
        self.score_gated_at(id, role, trust, 0)
    }

    /// [`score`](Self::score) gated at a share of the mean global trust: the
    /// fresh score for an identity whose trust is zero or below
    /// `min_bps_of_mean` basis points of the mean entry of `trust` (see
    /// [`TrustVector::is_below_share_of_mean`]). Low trust only withholds a
    /// good record; it never lifts a bad one: the result is never above
    /// [`score`](Self::score).
    pub fn score_gated_at(
        &self,
        id: &NodeId,
        role: Role,
        trust: &TrustVector,
        min_bps_of_mean: u32,
    ) -> Score {
        let score = self.score(id, role);
        if trust.is_below_share_of_mean(id, min_bps_of_mean) {
            return score.min(self.fresh_score());
        }
        score
    }

    /// [`credibility`](Self::credibility) gated by global trust, like
    /// [`score_gated`](Self::score_gated).
    pub fn credibility_gated(&self, id: &NodeId, trust: &TrustVector) -> Score {
        self.credibility_gated_at(id, trust, 0)
    }

    /// [`credibility`](Self::credibility) gated at a share of the mean
    /// global trust, like [`score_gated_at`](Self::score_gated_at): never
    /// above the ungated credibility.
    pub fn credibility_gated_at(
        &self,
        id: &NodeId,
        trust: &TrustVector,
        min_bps_of_mean: u32,
    ) -> Score {
        let credibility = self.credibility(id);
        if trust.is_below_share_of_mean(id, min_bps_of_mean) {
            return credibility.min(self.fresh_credibility());
        }
        credibility
    }

    /// The feedback graph with local trust `s_ij = max(pos - neg, 0)` (decayed
    /// to the current epoch) and every identity's stake.
    pub fn trust_graph(&self, params: &TrustParams) -> Result<TrustGraph, ReputationError> {
        let lambda = self.params.beta.forgetting;
        let nodes: Vec<(NodeId, Amount)> = self
            .identities
            .iter()
            .map(|(id, r)| (*id, r.stake))
            .collect();
        let mut edges = Vec::with_capacity(self.edges.len());
        for ((from, to), e) in &self.edges {
            let e = e.decayed_to(self.epoch, lambda);
            let s = e.positive.micros().saturating_sub(e.negative.micros());
            if s > 0 {
                edges.push((*from, *to, s));
            }
        }
        TrustGraph::from_edges(nodes, &edges, params)
    }

    /// EigenTrust over [`trust_graph`](Self::trust_graph) anchored on
    /// `pretrusted` and stake.
    pub fn global_trust(
        &self,
        pretrusted: &[NodeId],
        params: &TrustParams,
    ) -> Result<TrustVector, ReputationError> {
        EigenTrust::compute(&self.trust_graph(params)?, pretrusted, params)
    }

    /// A digest of the whole state; equal on every node that applied the
    /// same inputs.
    pub fn state_digest(&self) -> Digest {
        Digest::of(STATE_DIGEST_DOMAIN, self)
    }
}
