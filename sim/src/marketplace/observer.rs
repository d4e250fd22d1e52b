//! Invariants checked after every committed batch on every validator.

use std::collections::{BTreeMap, BTreeSet};

use idlegrid_dag_ledger::consensus::{BlockRef, ConsensusEvent};
use idlegrid_primitives::{Digest, Timestamp};

use crate::audit::{AuditFailure, AuditLane};
use crate::metrics::Metrics;
use crate::node::NodeIndex;
use crate::observer::{Observer, Violation};
use idlegrid_node::validator::{SyncEvent, ValidatorEvent};

use crate::durable::{CATCH_UP_COMMITS, CATCH_UP_GRACE, Replicas};
use crate::fault::Fault;

use super::nodes::MarketEvent;
use super::tally::MarketTally;

/// Bound on remembered proposal times and equivocations (memory stays flat
/// on long runs; older entries only lose a latency sample).
const MAX_REMEMBERED: usize = 100_000;

/// Compares the ledger digest of every validator at every commit index
/// (replicated state agreement), checks the settlement effects after every
/// batch on every validator, and runs the audit (the ledger's `check_all`:
/// supply = initial − burned, no negative balance or escrow, accounting,
/// incremental digest) the validator whose turn it is hands over for that
/// batch, on the run's [`AuditLane`]. It also records the
/// consensus metrics of `summary.json` (`consensus` section) under the same
/// names as the consensus-only scenarios.
#[derive(Debug)]
pub struct MarketObserver {
    canonical: BTreeMap<u64, Digest>,
    batches: u64,
    checked: u64,
    violations: u64,
    failure: Option<String>,
    proposed_at: BTreeMap<BlockRef, Timestamp>,
    equivocations: BTreeSet<(u64, u32)>,
    metrics: Metrics,
    /// Honest validators, by node index.
    honest: Vec<bool>,
    /// Honest validators' commit streams across crashes (no commit lost,
    /// gap-free, catch-up after a restart).
    replicas: Replicas,
    /// The marketplace's measurements from light nodes' events.
    pub tally: MarketTally,
    /// Validators' audits of their turns' commits, in flight.
    audits: AuditLane,
}

impl MarketObserver {
    /// An observer of validators whose `honest` entry says which follow
    /// the protocol.
    /// `audits` runs the validators' audits ([`AuditLane::background`]
    /// or [`AuditLane::inline`]: the same outcome at the same event).
    pub fn new(tally: MarketTally, honest: Vec<bool>, audits: AuditLane) -> Self {
        Self {
            canonical: BTreeMap::new(),
            batches: 0,
            checked: 0,
            violations: 0,
            failure: None,
            proposed_at: BTreeMap::new(),
            equivocations: BTreeSet::new(),
            metrics: Metrics::default(),
            replicas: Replicas::new(honest.clone(), CATCH_UP_COMMITS, CATCH_UP_GRACE),
            honest,
            tally,
            audits,
        }
    }
    /// Consensus metrics (`commits`, `committed_blocks`,
    /// `committed_transactions`, `leader_commit_latency_us`,
    /// `equivocations_detected`, `invalid_messages`), as recorded by the
    /// consensus-only scenarios, for [`crate::report::Summary::with_consensus`].
    pub fn consensus_metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn on_consensus(
        &mut self,
        now: Timestamp,
        node: NodeIndex,
        event: &ConsensusEvent,
    ) -> Result<(), Violation> {
        match event {
            ConsensusEvent::Proposed(r) => {
                self.proposed_at.entry(*r).or_insert(now);
                while self.proposed_at.len() > MAX_REMEMBERED {
                    self.proposed_at.pop_first();
                }
            }
            ConsensusEvent::Equivocation(ev) => {
                let j = ev.author().as_usize();
                if self.honest.get(j).copied().unwrap_or(false) {
                    return Err(Violation::new(
                        "no-honest-equivocation",
                        format!(
                            "{node} holds evidence that honest validator {j} equivocated in round {}",
                            ev.first.header.round.get()
                        ),
                    ));
                }
                let key = (ev.first.header.round.get(), ev.first.header.author.get());
                if self.equivocations.len() < MAX_REMEMBERED && self.equivocations.insert(key) {
                    self.metrics.add("equivocations_detected", 1);
                }
            }
            ConsensusEvent::InvalidMessage { .. } => self.metrics.add("invalid_messages", 1),
            _ => {}
        }
        Ok(())
    }
    /// Batch applications seen (commits × validators), each compared.
    pub fn batches(&self) -> u64 {
        self.batches
    }
    /// Batches on which a validator ran the full `check_all`.
    pub fn checked(&self) -> u64 {
        self.checked
    }
    /// Violations seen.
    pub fn violations(&self) -> u64 {
        self.violations
    }
    /// The first violation, if any.
    pub fn failure(&self) -> Option<String> {
        self.failure.clone()
    }
}

impl Observer<MarketEvent> for MarketObserver {
    fn on_event(
        &mut self,
        now: Timestamp,
        node: NodeIndex,
        event: &MarketEvent,
    ) -> Result<(), Violation> {
        match event {
            MarketEvent::Validator(ev) => self.on_validator(now, node, ev),
            other => self.tally.on_event(now, other),
        }
    }

    fn on_fault(&mut self, now: Timestamp, fault: &Fault) -> Result<(), Violation> {
        self.replicas.on_fault(now, fault, |_, _| false);
        Ok(())
    }

    fn on_tick(&mut self, now: Timestamp) -> Result<(), Violation> {
        self.replicas.on_tick(now)
    }

    fn finish(&mut self, _now: Timestamp) -> Result<(), Violation> {
        let done = self.audits.finish();
        self.audited(done)?;
        match self.audits.ran() == self.checked {
            true => Ok(()),
            false => Err(Violation::new(
                "audits",
                format!(
                    "validators announced {} audits and handed over {}",
                    self.checked,
                    self.audits.ran()
                ),
            )),
        }
    }

    fn metrics(&self) -> Option<&Metrics> {
        Some(&self.metrics)
    }
}

impl MarketObserver {
    /// An audit's outcome, once joined (see [`AuditLane`]).
    fn audited(&mut self, done: Result<(), AuditFailure>) -> Result<(), Violation> {
        done.map_err(|f| {
            self.violations += 1;
            Violation::new(
                "money-conservation",
                format!("{} after commit {}: {}", f.node, f.index, f.violation),
            )
        })
    }

    fn on_validator(
        &mut self,
        now: Timestamp,
        node: NodeIndex,
        event: &ValidatorEvent,
    ) -> Result<(), Violation> {
        match event {
            ValidatorEvent::Consensus(ev) => self.on_consensus(now, node, ev),
            ValidatorEvent::Audit(a) => {
                let done = self.audits.submit(node, a);
                self.audited(done)
            }
            ValidatorEvent::StateSync(SyncEvent::Installed { index, .. }) => {
                self.replicas.on_installed(node.get(), *index)
            }
            ValidatorEvent::Applied { .. } => {
                self.record_commit(now, event);
                self.on_applied(node, event)
            }
            _ => Ok(()),
        }
    }

    /// A commit's consensus metrics (latency at every validator, sizes
    /// once).
    fn record_commit(&mut self, now: Timestamp, event: &ValidatorEvent) {
        let ValidatorEvent::Applied {
            index,
            leader,
            blocks,
            transactions,
            ..
        } = event
        else {
            return;
        };
        if let Some(p) = self.proposed_at.get(leader) {
            // Marketplace transactions are signed by light nodes, so
            // the commit latency reported here is the leader's
            // (proposal to commit at each validator), under both names.
            let us = (now - *p).as_micros();
            self.metrics.record("leader_commit_latency_us", us);
            self.metrics.record("commit_latency_us", us);
        }
        if !self.canonical.contains_key(index) {
            self.metrics.add("commits", 1);
            self.metrics.add("committed_blocks", u64::from(*blocks));
            self.metrics
                .add("committed_transactions", u64::from(*transactions));
        }
    }

    /// A validator applied a commit: its digest must agree with the
    /// others', its batch must have been accepted, its effects applied.
    fn on_applied(&mut self, node: NodeIndex, event: &ValidatorEvent) -> Result<(), Violation> {
        let ValidatorEvent::Applied {
            index,
            digest,
            violation,
            effect_failures,
            dropped_notices,
            checked,
            ..
        } = event
        else {
            return Ok(());
        };
        self.batches += 1;
        self.checked += u64::from(*checked);
        self.replicas.on_commit(node.get(), *index)?;
        if let Some(v) = violation {
            self.violations += 1;
            return Err(Violation::new(
                "batch-accepted",
                format!("{node} at commit {index}: {v}"),
            ));
        }
        if *effect_failures > 0 {
            self.violations += 1;
            return Err(Violation::new(
                "settlement-effects",
                format!("{node}: {effect_failures} settlement effects refused"),
            ));
        }
        if *dropped_notices > 0 {
            self.violations += 1;
            return Err(Violation::new(
                "notices-kept",
                format!("{node}: {dropped_notices} notices (facts) discarded undrained"),
            ));
        }
        match self.canonical.get(index) {
            Some(d) if d != digest => {
                self.violations += 1;
                Err(Violation::new(
                    "ledger-agreement",
                    format!(
                        "{node}'s ledger digest after commit {index} is {} but another validator has {}",
                        digest.short(),
                        d.short()
                    ),
                ))
            }
            Some(_) => Ok(()),
            None => {
                self.canonical.insert(*index, *digest);
                // Keep memory bounded.
                while self.canonical.len() > 100_000 {
                    self.canonical.pop_first();
                }
                Ok(())
            }
        }
    }
}
