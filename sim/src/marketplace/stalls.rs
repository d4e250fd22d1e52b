//! Where a lot that ended badly for an honest party stalled: each matched
//! lot's timeline (the ledger's match, the provider hearing of it, the
//! client's plan, the round opening on the ledger, the provider running
//! it, its delivery on the ledger), and for each lot settled as
//! `ProviderDefaulted` or `ClientAbandoned` with an honest provider, the
//! first step it never reached. A measurement only: it reads events every
//! node reported, never acts.

use std::collections::{BTreeMap, HashMap};

use idlegrid_node::market::Notice;
use idlegrid_node::provider::LotKey;
use idlegrid_primitives::Timestamp;

/// One matched lot's steps, as they happened.
#[derive(Debug, Default, Clone, Copy)]
struct Timeline {
    matched: Option<Timestamp>,
    heard: Option<Timestamp>,
    planned: Option<Timestamp>,
    opened: Option<Timestamp>,
    executed: Option<Timestamp>,
    delivered: Option<Timestamp>,
}

impl Timeline {
    /// The first step not reached, in protocol order.
    fn stalled_at(&self) -> &'static str {
        let steps = [
            (self.matched, "match_not_seen"),
            (self.heard, "provider_not_told_of_match"),
            (self.planned, "client_not_told_of_match"),
            (self.opened, "plan_not_applied"),
            (self.executed, "provider_did_not_run"),
            (self.delivered, "delivery_not_applied"),
        ];
        steps
            .iter()
            .find(|(t, _)| t.is_none())
            .map_or("delivered", |(_, name)| name)
    }
}

/// A step of a lot's timeline.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    /// The provider heard of the match.
    Heard,
    /// The client planned the lot.
    Planned,
    /// The provider started running it.
    Executed,
}

/// Timelines of matched lots not settled yet, and where the bad ones
/// stalled.
#[derive(Debug, Default)]
pub struct Stalls {
    open: HashMap<LotKey, Timeline>,
    /// `"<outcome>/<first step not reached>"` → lots.
    pub by_step: BTreeMap<String, u64>,
}

impl Stalls {
    /// A ledger notice (from the one validator that reports them).
    pub fn on_notice(&mut self, now: Timestamp, n: &Notice) {
        let (key, slot) = match n {
            Notice::Matched {
                client, job, lot, ..
            } => ((*client, *job, *lot), 0),
            Notice::RoundOpened {
                client, job, lot, ..
            } => ((*client, *job, *lot), 1),
            Notice::Delivered {
                client, job, lot, ..
            } => ((*client, *job, *lot), 2),
            _ => return,
        };
        let t = self.open.entry(key).or_default();
        let at = match slot {
            0 => &mut t.matched,
            1 => &mut t.opened,
            _ => &mut t.delivered,
        };
        at.get_or_insert(now);
    }

    /// A light node's step on lot `key`.
    pub fn on_step(&mut self, now: Timestamp, key: LotKey, step: Step) {
        let t = self.open.entry(key).or_default();
        let at = match step {
            Step::Heard => &mut t.heard,
            Step::Planned => &mut t.planned,
            Step::Executed => &mut t.executed,
        };
        at.get_or_insert(now);
    }

    /// Lot `key` settled as `outcome` (`bad`: a default or abandonment
    /// of an honest provider's lot, counted by where it stalled).
    pub fn settled(&mut self, key: LotKey, outcome: &str, bad: bool) {
        let Some(t) = self.open.remove(&key) else {
            return;
        };
        if bad {
            *self
                .by_step
                .entry(format!("{outcome}/{}", t.stalled_at()))
                .or_default() += 1;
        }
    }
}
