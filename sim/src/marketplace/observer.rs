//! Invariants checked after every committed batch on every validator.

use std::collections::BTreeMap;

use idlegrid_primitives::{Digest, Timestamp};

use super::node::NodeEvent;
use crate::node::NodeIndex;
use crate::observer::{Observer, Violation};

/// Compares the ledger digest of every validator at every commit index
/// (replicated state agreement) and checks the ledger's `check_all`
/// (supply = initial − burned, no negative balance or escrow, accounting)
/// and the settlement effects after every batch.
#[derive(Debug)]
pub struct MarketObserver {
    canonical: BTreeMap<u64, Digest>,
    batches: u64,
    violations: u64,
    failure: Option<String>,
}

impl MarketObserver {
    /// An observer for `n` validators.
    pub fn new(_n: usize) -> Self {
        Self {
            canonical: BTreeMap::new(),
            batches: 0,
            violations: 0,
            failure: None,
        }
    }
    /// Batches checked.
    pub fn batches(&self) -> u64 {
        self.batches
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

impl Observer<NodeEvent> for MarketObserver {
    fn on_event(
        &mut self,
        _now: Timestamp,
        node: NodeIndex,
        event: &NodeEvent,
    ) -> Result<(), Violation> {
        let NodeEvent::Applied {
            index,
            digest,
            violation,
            effect_failures,
            ..
        } = event
        else {
            return Ok(());
        };
        self.batches += 1;
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
