//! Sybil populations: whitewashing providers and honest newcomers.
//!
//! A **whitewasher** is a lazy cheater that, once slashed, abandons its
//! identity: it unbonds its free stake, transfers its free balance to a
//! fresh key (a ledger `Transfer`, so money is conserved and the new key
//! costs at least `min_new_account`), and the fresh key bonds a provider's
//! stake and offers the same machine again with a fresh ask — and keeps
//! cheating. When the old identity's unbonding matures it withdraws and
//! forwards that too. Each key is a node of the simulated world (the
//! machine's later keys wait, subscribed, until their predecessor's
//! transfer arrives); the strategy is played by
//! [`SimProvider`](crate::marketplace::nodes::SimProvider). A slashed slot stays out of the market (the app has
//! no offer withdrawal), so with several slots an abandoned identity
//! prices its remaining slots out of the market instead.
//!
//! **Newcomers** are honest providers endowed at genesis that submit their
//! `Offer` at a time uniform in a window: the control group. Both groups
//! enter with a fresh ask drawn from the same range, so the comparison
//! isolates how the market treats a fresh identity.

use std::collections::BTreeMap;

use idlegrid_primitives::{AccountId, Timestamp};

use super::dist;
use crate::marketplace::agents::{Identity, MachineId, Presence};
use crate::marketplace::tally::{Counts, ProviderInfo};

/// Most keys one whitewashing machine may burn through.
pub const MAX_IDENTITIES: u32 = 64;

/// Whitewashers and newcomers (none by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SybilConfig {
    /// Whitewashing machines (lazy cheaters at `cheat_rate`), on top of
    /// `providers`.
    pub whitewashers: u32,
    /// Keys a whitewashing machine uses at most, its genesis key included
    /// (1 = never whitewashes).
    pub max_identities: u32,
    /// Honest providers that offer late, on top of `providers`.
    pub newcomers: u32,
    /// Newcomers offer at a time uniform in
    /// `join_from_secs..=join_until_secs`.
    pub join_from_secs: u64,
    /// End of the entry window: no newcomer joins and no whitewasher
    /// re-enters after it, so both groups have comparable time left to
    /// find work (must be before `active_secs`).
    pub join_until_secs: u64,
}

impl Default for SybilConfig {
    fn default() -> Self {
        Self {
            whitewashers: 0,
            max_identities: 8,
            newcomers: 0,
            join_from_secs: 0,
            join_until_secs: 0,
        }
    }
}

impl SybilConfig {
    /// Checks the values; `Err((field, reason))`.
    pub fn check(&self, active_secs: u64) -> Result<(), (&'static str, String)> {
        if self.whitewashers > 100_000 || self.newcomers > 100_000 {
            return Err((
                "sybil",
                "at most 100000 whitewashers and 100000 newcomers".into(),
            ));
        }
        if !(1..=MAX_IDENTITIES).contains(&self.max_identities) {
            return Err((
                "sybil.max_identities",
                format!("must be in 1..={MAX_IDENTITIES}"),
            ));
        }
        if (self.newcomers > 0 || self.whitewashers > 0)
            && (self.join_from_secs > self.join_until_secs
                || self.join_until_secs >= active_secs
                || self.join_until_secs == 0)
        {
            return Err((
                "sybil.join_until_secs",
                format!(
                    "newcomers join and whitewashers re-enter until it: need 0 < join_until_secs < active_secs ({active_secs}) and join_from_secs <= join_until_secs"
                ),
            ));
        }
        Ok(())
    }
}

/// Seconds between two instants.
fn secs(from: Timestamp, to: Timestamp) -> f64 {
    to.saturating_since(from).as_secs_f64()
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

#[derive(Default)]
struct Group {
    identities: u64,
    to_first_match: Vec<f64>,
    never_matched: u64,
    matches: u64,
    presence_s: f64,
    traps: u64,
    real: u64,
    first_traps: u64,
    first_real: u64,
    convicted: u64,
    to_conviction: Vec<f64>,
    lots_to_conviction: Vec<f64>,
}

impl Group {
    fn add(&mut self, pr: &Presence, active_until: Timestamp) {
        let Some(join) = pr.joined_at else { return };
        self.identities += 1;
        match pr.first_match_at {
            Some(t) => self.to_first_match.push(secs(join, t)),
            None => self.never_matched += 1,
        }
        let end = pr.left_at.map_or(active_until, |l| l.min(active_until));
        self.presence_s += secs(join, end);
        self.matches += pr.matches_present;
        self.traps += pr.traps_faced;
        self.real += pr.real_faced;
        self.first_traps += pr.first_lot_traps;
        self.first_real += pr.first_lot_real;
        if let Some(c) = pr.convicted_at {
            self.convicted += 1;
            self.to_conviction.push(secs(join, c));
            self.lots_to_conviction.push(pr.lots_to_conviction as f64);
        }
    }

    fn work_rate(&self) -> f64 {
        if self.presence_s > 0.0 {
            self.matches as f64 / self.presence_s
        } else {
            0.0
        }
    }

    fn trap_ratio(&self) -> f64 {
        ratio(self.traps, self.real)
    }

    fn first_lot_trap_ratio(&self) -> f64 {
        ratio(self.first_traps, self.first_real)
    }

    fn json(&self) -> serde_json::Value {
        let ttfm = dist(self.to_first_match.clone());
        let caught = dist(self.to_conviction.clone());
        serde_json::json!({
            "identities": self.identities,
            "never_matched": self.never_matched,
            "time_to_first_match_s": {"mean": ttfm.mean, "p50": ttfm.p50, "p90": ttfm.p90},
            "matches_while_present": self.matches,
            "presence_s": self.presence_s,
            "work_rate": self.work_rate(),
            "trap_ratio": self.trap_ratio(),
            "first_lot_trap_ratio": self.first_lot_trap_ratio(),
            "convicted": self.convicted,
            "time_to_conviction_s": {"mean": caught.mean, "p50": caught.p50, "p90": caught.p90},
            "lots_to_conviction_mean": dist(self.lots_to_conviction.clone()).mean,
        })
    }
}

/// The `reputation.sybil` section: whitewashed identities against honest
/// newcomers (time to first match, lots matched per second of presence
/// while clients post jobs, traps faced, how fast they are caught again).
pub(super) fn summary(
    providers: &BTreeMap<AccountId, ProviderInfo>,
    cfg: &SybilConfig,
    counts: &Counts,
    active_until: Timestamp,
) -> serde_json::Value {
    let (mut ww, mut first, mut fresh) = (Group::default(), Group::default(), Group::default());
    let mut downtime = Vec::new();
    // Predecessor's exit by (machine, generation).
    let left: BTreeMap<(MachineId, u32), Timestamp> = providers
        .values()
        .filter_map(|p| match (p.identity, p.presence.left_at) {
            (Identity::Whitewash { generation }, Some(t)) => Some(((p.machine, generation), t)),
            _ => None,
        })
        .collect();
    for p in providers.values() {
        match p.identity {
            Identity::Whitewash { generation: 0 } => first.add(&p.presence, active_until),
            Identity::Whitewash { generation } => {
                ww.add(&p.presence, active_until);
                if let (Some(j), Some(l)) =
                    (p.presence.joined_at, left.get(&(p.machine, generation - 1)))
                {
                    downtime.push(secs(*l, j));
                }
            }
            Identity::Newcomer { .. } => fresh.add(&p.presence, active_until),
            Identity::Genesis => {}
        }
    }
    let wt = dist(ww.to_first_match.clone());
    let nt = dist(fresh.to_first_match.clone());
    serde_json::json!({
        "whitewashers": cfg.whitewashers,
        "newcomers": cfg.newcomers,
        "whitewashes": counts.whitewashes,
        "retired": counts.retired,
        "swept_after_unbonding": counts.swept.to_string(),
        "whitewash_downtime_s": dist(downtime).mean,
        "whitewashed_time_to_first_match_s": wt.mean,
        "newcomer_time_to_first_match_s": nt.mean,
        "whitewashed_work_rate": ww.work_rate(),
        "newcomer_work_rate": fresh.work_rate(),
        "whitewashed_trap_ratio": ww.trap_ratio(),
        "newcomer_trap_ratio": fresh.trap_ratio(),
        "whitewashed_first_lot_trap_ratio": ww.first_lot_trap_ratio(),
        "newcomer_first_lot_trap_ratio": fresh.first_lot_trap_ratio(),
        // Of the whitewashed keys that got a lot, the share convicted again.
        "whitewashed_caught_again": ratio(ww.convicted, ww.identities - ww.never_matched),
        "whitewashed_lots_to_caught": dist(ww.lots_to_conviction.clone()).mean,
        "whitewashed_time_to_caught_s": dist(ww.to_conviction.clone()).mean,
        "whitewashed": ww.json(),
        "first_identities": first.json(),
        "newcomer": fresh.json(),
    })
}
