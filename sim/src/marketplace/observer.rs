//! Invariants checked after every committed batch on every validator.

use std::collections::{BTreeMap, BTreeSet};

use idlegrid_dag_ledger::consensus::{BlockRef, ConsensusEvent};
use idlegrid_primitives::{Digest, Timestamp};

use crate::metrics::Metrics;
use crate::node::NodeIndex;
use crate::observer::{Observer, Violation};
use idlegrid_node::validator::ValidatorEvent;

use super::nodes::MarketEvent;
use super::tally::MarketTally;

/// Bound on remembered proposal times and equivocations (memory stays flat
/// on long runs; older entries only lose a latency sample).
const MAX_REMEMBERED: usize = 100_000;

/// Compares the ledger digest of every validator at every commit index
/// (replicated state agreement), checks the settlement effects after every
/// batch on every validator, and records the ledger's `check_all` (supply =
/// initial − burned, no negative balance or escrow, accounting, incremental
/// digest) that the validator whose turn it is ran on that batch. It also records the
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
    /// The marketplace's measurements from light nodes' events.
    pub tally: MarketTally,
}

impl MarketObserver {
    /// An observer for `n` validators.
    pub fn new(tally: MarketTally) -> Self {
        Self {
            canonical: BTreeMap::new(),
            batches: 0,
            checked: 0,
            violations: 0,
            failure: None,
            proposed_at: BTreeMap::new(),
            equivocations: BTreeSet::new(),
            metrics: Metrics::default(),
            tally,
        }
    }
    /// Consensus metrics (`commits`, `committed_blocks`,
    /// `committed_transactions`, `leader_commit_latency_us`,
    /// `equivocations_detected`, `invalid_messages`), as recorded by the
    /// consensus-only scenarios, for [`crate::report::Summary::with_consensus`].
    pub fn consensus_metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn on_consensus(&mut self, now: Timestamp, event: &ConsensusEvent) {
        match event {
            ConsensusEvent::Proposed(r) => {
                self.proposed_at.entry(*r).or_insert(now);
                while self.proposed_at.len() > MAX_REMEMBERED {
                    self.proposed_at.pop_first();
                }
            }
            ConsensusEvent::Equivocation(ev) => {
                let key = (ev.first.header.round.get(), ev.first.header.author.get());
                if self.equivocations.len() < MAX_REMEMBERED && self.equivocations.insert(key) {
                    self.metrics.add("equivocations_detected", 1);
                }
            }
            ConsensusEvent::InvalidMessage { .. } => self.metrics.add("invalid_messages", 1),
            _ => {}
        }
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

    fn metrics(&self) -> Option<&Metrics> {
        Some(&self.metrics)
    }
}

impl MarketObserver {
    fn on_validator(
        &mut self,
        now: Timestamp,
        node: NodeIndex,
        event: &ValidatorEvent,
    ) -> Result<(), Violation> {
        let (index, digest, violation, effect_failures, checked) = match event {
            ValidatorEvent::Consensus(ev) => {
                self.on_consensus(now, ev);
                return Ok(());
            }
            ValidatorEvent::Applied {
                index,
                digest,
                violation,
                effect_failures,
                checked,
                leader,
                blocks,
                transactions,
                ..
            } => {
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
                (index, digest, violation, effect_failures, *checked)
            }
            _ => return Ok(()),
        };
        self.batches += 1;
        self.checked += u64::from(checked);
        if let Some(v) = violation {
            self.violations += 1;
            return Err(Violation::new(
                "money-conservation",
                format!("{node} after commit {index}: {v}"),
            ));
        }
        if *effect_failures > 0 {
            self.violations += 1;
            return Err(Violation::new(
                "settlement-effects",
                format!("{node}: {effect_failures} settlement effects refused"),
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
