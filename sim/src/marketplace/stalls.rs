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

/// A step of a lot's timeline, in protocol order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The ledger matched it (notice).
    Matched,
    /// The provider heard of the match.
    Heard,
    /// The client planned the lot.
    Planned,
    /// Its round opened on the ledger (notice).
    Opened,
    /// The provider started running it.
    Executed,
    /// Its outputs were delivered on the ledger (notice).
    Delivered,
}

impl Step {
    const ALL: [Step; 6] = [
        Step::Matched,
        Step::Heard,
        Step::Planned,
        Step::Opened,
        Step::Executed,
        Step::Delivered,
    ];

    /// How a lot that never reached this step is labelled.
    fn missing(self) -> &'static str {
        match self {
            Step::Matched => "match_not_seen",
            Step::Heard => "provider_not_told_of_match",
            Step::Planned => "client_not_told_of_match",
            Step::Opened => "plan_not_applied",
            Step::Executed => "provider_did_not_run",
            Step::Delivered => "delivery_not_applied",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Matched lots not settled yet with the steps they reached (one bit per
/// step), and where the bad ones stalled.
#[derive(Debug, Default)]
pub struct Stalls {
    open: HashMap<LotKey, u8>,
    /// `"<outcome>/<first step not reached>"` → lots.
    pub by_step: BTreeMap<String, u64>,
}

impl Stalls {
    /// A ledger notice (from the one validator that reports them).
    pub fn on_notice(&mut self, n: &Notice) {
        let (client, job, lot, step) = match n {
            Notice::Matched {
                client, job, lot, ..
            } => (client, job, lot, Step::Matched),
            Notice::RoundOpened {
                client, job, lot, ..
            } => (client, job, lot, Step::Opened),
            Notice::Delivered {
                client, job, lot, ..
            } => (client, job, lot, Step::Delivered),
            _ => return,
        };
        self.reached((*client, *job, *lot), step);
    }

    /// Lot `key` reached `step`.
    pub fn reached(&mut self, key: LotKey, step: Step) {
        *self.open.entry(key).or_default() |= step.bit();
    }

    /// Lot `key` settled as `outcome` (`bad`: a default or abandonment
    /// of an honest provider's lot, counted by the first step it never
    /// reached).
    pub fn settled(&mut self, key: LotKey, outcome: &str, bad: bool) {
        let Some(steps) = self.open.remove(&key) else {
            return;
        };
        if bad {
            let at = Step::ALL
                .iter()
                .find(|s| steps & s.bit() == 0)
                .map_or("delivered", |s| s.missing());
            *self.by_step.entry(format!("{outcome}/{at}")).or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::{Amount, Keypair, Seed};

    fn key(lot: u32) -> LotKey {
        (Keypair::from_seed(&Seed::from_u64(1)).account_id(), 7, lot)
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
                plan_by: idlegrid_primitives::Timestamp::ZERO,
            };
            s.on_notice(&matched);
            s.reached(key(lot), Step::Heard);
            s.reached(key(lot), Step::Planned);
        }
        // Lot 1's round opened and it ran; lot 2's plan never applied.
        let opened = Notice::RoundOpened {
            client,
            job,
            lot: 1,
            provider,
            inputs: Vec::new(),
        };
        s.on_notice(&opened);
        s.reached(key(1), Step::Executed);
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
