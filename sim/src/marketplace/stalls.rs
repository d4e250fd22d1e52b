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

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::{Amount, Duration, Keypair, Seed};

    fn key(lot: u32) -> LotKey {
        (Keypair::from_seed(&Seed::from_u64(1)).account_id(), 7, lot)
    }

    fn at(ms: u64) -> Timestamp {
        Timestamp::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn a_bad_lot_is_counted_by_its_first_missing_step_and_a_good_one_not() {
        let (client, job, _) = key(0);
        let provider = Keypair::from_seed(&Seed::from_u64(2)).account_id();
        let mut s = Stalls::default();
        for lot in 0..3 {
            let matched = Notice::Matched {
                client,
                job,
                lot,
                provider,
                price: Amount::new(1),
                credibility_ppm: 0,
                verified_lots: 0,
            };
            s.on_notice(at(10), &matched);
            s.on_step(at(20), key(lot), Step::Heard);
            s.on_step(at(30), key(lot), Step::Planned);
        }
        // Lot 1's round opened and it ran; lot 2's plan never applied.
        let opened = Notice::RoundOpened {
            client,
            job,
            lot: 1,
            provider,
            inputs: Vec::new(),
        };
        s.on_notice(at(40), &opened);
        s.on_step(at(50), key(1), Step::Executed);
        s.settled(key(0), "ClientAbandoned", false);
        s.settled(key(1), "ProviderDefaulted", true);
        s.settled(key(2), "ProviderDefaulted", true);
        // Settled twice, or never matched: nothing more.
        s.settled(key(2), "ProviderDefaulted", true);
        let got: Vec<_> = s.by_step.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        assert_eq!(
            got,
            [
                ("ProviderDefaulted/delivery_not_applied", 1),
                ("ProviderDefaulted/plan_not_applied", 1)
            ]
        );
        assert!(s.open.is_empty());
    }
}
