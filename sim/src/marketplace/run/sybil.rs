//! Sybil populations: whitewashing providers and honest newcomers.
//!
//! A **whitewasher** is a lazy cheater that, once slashed, abandons its
//! identity: it unbonds its free stake, transfers its free balance to a
//! fresh key (a ledger `Transfer`, so money is conserved and the new key
//! costs at least `min_new_account`), and the fresh key bonds a provider's
//! stake and offers the same machine again with a fresh ask — and keeps
//! cheating. When the old identity's unbonding matures it withdraws and
//! forwards that too. A slashed slot stays out of the market (the app has
//! no offer withdrawal), so with several slots an abandoned identity
//! prices its remaining slots out of the market instead.
//!
//! **Newcomers** are honest providers endowed at genesis that submit their
//! `Offer` at a time uniform in a window: the control group. Both groups
//! enter with a fresh ask drawn from the same range, so the comparison
//! isolates how the market treats a fresh identity.

use std::collections::BTreeMap;

use idlegrid_dag_ledger::ledger::{ChainId, Ledger, SignedTransaction, TxKind};
use idlegrid_executor::{Behaviour, SimulatedExecutor};
use idlegrid_primitives::{AccountId, Amount, Keypair, Seed, Timestamp};
use rand::Rng;

use super::super::agents::{
    Identity, MachineId, Outbox, Presence, ProviderAgent, Stage, Sweep, cost_model,
};
use super::dist;
use idlegrid_node::market::{MarketTx, MarketplaceApp};

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

/// What whitewashing needs from the run.
pub(super) struct Env<'a> {
    /// The run's root seed (fresh keys derive from it).
    pub root: &'a Seed,
    /// The ledger's chain.
    pub chain: ChainId,
    /// Stake a provider bonds (slot stakes + 1).
    pub provider_stake: Amount,
    /// Stake per slot (for the `Offer`).
    pub stake_per_slot: Amount,
    /// The ledger's smallest account-creating transfer.
    pub min_new_account: Amount,
    /// Keys per machine at most.
    pub max_identities: u32,
    /// End of the entry window (no re-entry after it).
    pub reenter_until: Timestamp,
    /// A fresh key's ask is drawn from `price_min..=price_max` (at least
    /// the machine's floor), like a newcomer's.
    pub price_min: u128,
    /// Upper end of the ask range.
    pub price_max: u128,
    /// An ask no client accepts (abandoned identities' remaining slots).
    pub out_of_market: Amount,
}

/// A provider's `Offer`.
pub(super) fn offer(p: &mut ProviderAgent, now: Timestamp, stake: Amount) -> SignedTransaction {
    let tx = MarketTx::Offer {
        price: p.price,
        capacity: p.capacity,
        stake_per_slot: stake,
        region: p.region as u8,
    };
    p.presence.joined_at = Some(now);
    p.stage = Stage::Active;
    p.outbox.sign(now, tx)
}

/// Counters of the whitewashing life cycle.
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Fresh keys funded.
    pub whitewashes: u64,
    /// Slashed whitewashers that stopped (key budget spent, clients done,
    /// or too poor to stake again).
    pub retired: u64,
    /// Leftover stake forwarded after unbonding.
    pub swept: u128,
}

/// Whitewasher `pi` was slashed: abandon its identity and, budget
/// permitting, fund a fresh key for the same machine.
#[allow(clippy::too_many_arguments)]
pub(super) fn abandon(
    providers: &mut Vec<ProviderAgent>,
    by_acct: &mut BTreeMap<AccountId, usize>,
    pi: usize,
    ledger: &Ledger,
    market: &MarketplaceApp,
    env: &Env<'_>,
    rng: &mut impl Rng,
    now: Timestamp,
    outgoing: &mut Vec<SignedTransaction>,
    counters: &mut Counters,
) {
    let p = &mut providers[pi];
    let Identity::Whitewash { generation } = p.identity else {
        return;
    };
    if p.stage != Stage::Active {
        return;
    }
    let me = p.outbox.account();
    p.presence.left_at = Some(now);
    let (balance, free_stake) = ledger
        .account(&me)
        .map_or((Amount::ZERO, Amount::ZERO), |a| {
            (a.balance, a.free_stake())
        });
    let free_slots = market
        .offering()
        .find(|(id, _)| **id == me)
        .map_or(0, |(_, n)| n);
    if free_slots > 0 {
        // No offer withdrawal exists: price the remaining slots out.
        outgoing.push(p.outbox.sign(
            now,
            MarketTx::Reprice {
                price: env.out_of_market,
            },
        ));
    }
    p.stage = Stage::Left(if free_stake.is_zero() {
        Sweep::Withdrawing
    } else {
        outgoing.push(
            p.outbox
                .sign_ledger(now, TxKind::Unbond { amount: free_stake }),
        );
        Sweep::Unbonding
    });
    let next = generation + 1;
    if next >= env.max_identities
        || now > env.reenter_until
        || balance < env.provider_stake.max(env.min_new_account)
    {
        counters.retired += 1;
        return;
    }
    let key = Keypair::from_seed(&env.root.derive_indexed(
        "whitewash",
        (u64::from(p.machine.0) << 32) | u64::from(next),
    ));
    outgoing.push(p.outbox.sign_ledger(
        now,
        TxKind::Transfer {
            to: key.account_id(),
            amount: balance,
        },
    ));
    // Same machine (speed, cost, region, behaviour), fresh key and ask.
    let price = rng
        .gen_range(env.price_min..=env.price_max)
        .max(p.floor.get());
    let exec = SimulatedExecutor::new(
        p.behaviour,
        *p.exec.cost_model(),
        env.root.derive_indexed(
            "whitewash-exec",
            (u64::from(p.machine.0) << 32) | u64::from(next),
        ),
    );
    let fresh = ProviderAgent {
        outbox: Outbox::new(key, env.chain),
        behaviour: p.behaviour,
        exec,
        price: Amount::new(price),
        cost_per_second: p.cost_per_second,
        region: p.region,
        capacity: p.capacity,
        spent_micros: 0,
        cheated_lots: 0,
        work: BTreeMap::new(),
        initial_wealth: Amount::ZERO,
        machine: p.machine,
        identity: Identity::Whitewash { generation: next },
        stage: Stage::Funding {
            need: env.provider_stake,
        },
        presence: Presence::default(),
        floor: p.floor,
        recent_matches: 0,
    };
    counters.whitewashes += 1;
    by_acct.insert(fresh.outbox.account(), providers.len());
    providers.push(fresh);
}

/// Advances every Sybil identity: newcomers join at their time, funded
/// fresh keys bond and offer, abandoned keys sweep their matured stake to
/// the machine's newest key.
pub(super) fn step(
    providers: &mut [ProviderAgent],
    ledger: &Ledger,
    env: &Env<'_>,
    now: Timestamp,
    outgoing: &mut Vec<SignedTransaction>,
    counters: &mut Counters,
) {
    for i in 0..providers.len() {
        let p = &mut providers[i];
        match (p.stage, p.identity) {
            (Stage::Waiting, Identity::Newcomer { join_at }) if join_at <= now => {
                outgoing.push(offer(p, now, env.stake_per_slot));
            }
            (Stage::Funding { need }, _)
                if ledger
                    .account(&p.outbox.account())
                    .is_some_and(|a| a.balance >= need) =>
            {
                outgoing.push(p.outbox.sign_ledger(now, TxKind::Bond { amount: need }));
                outgoing.push(offer(p, now, env.stake_per_slot));
            }
            (Stage::Left(Sweep::Unbonding), _) if p.outbox.idle() => {
                let Some(acc) = ledger.account(&p.outbox.account()) else {
                    p.stage = Stage::Left(Sweep::Done);
                    continue;
                };
                if acc.unbonding.is_empty() {
                    p.stage = Stage::Left(Sweep::Withdrawing);
                } else if acc
                    .unbonding
                    .iter()
                    .all(|u| u.release_epoch <= ledger.epoch())
                {
                    outgoing.push(p.outbox.sign_ledger(now, TxKind::Withdraw));
                    p.stage = Stage::Left(Sweep::Withdrawing);
                }
            }
            (Stage::Left(Sweep::Withdrawing), Identity::Whitewash { generation })
                if p.outbox.idle() =>
            {
                let balance = ledger.balance(&p.outbox.account());
                let machine = p.machine;
                p.stage = Stage::Left(Sweep::Done);
                if balance.is_zero() {
                    continue;
                }
                // The machine's newest identity that exists on the ledger
                // (one this key funded); a key without successor keeps it.
                let heir = providers
                    .iter()
                    .filter(|q| q.machine == machine)
                    .filter_map(|q| match q.identity {
                        Identity::Whitewash { generation: g } if g > generation => {
                            Some((g, q.outbox.account()))
                        }
                        _ => None,
                    })
                    .filter(|(_, a)| ledger.account(a).is_some())
                    .max()
                    .map(|(_, a)| a);
                if let Some(to) = heir {
                    let p = &mut providers[i];
                    outgoing.push(p.outbox.sign_ledger(
                        now,
                        TxKind::Transfer {
                            to,
                            amount: balance,
                        },
                    ));
                    counters.swept += balance.get();
                }
            }
            _ => {}
        }
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
    providers: &[ProviderAgent],
    cfg: &SybilConfig,
    counters: &Counters,
    active_until: Timestamp,
) -> serde_json::Value {
    let (mut ww, mut first, mut fresh) = (Group::default(), Group::default(), Group::default());
    let mut downtime = Vec::new();
    // Predecessor's exit by (machine, generation).
    let left: BTreeMap<(MachineId, u32), Timestamp> = providers
        .iter()
        .filter_map(|p| match (p.identity, p.presence.left_at) {
            (Identity::Whitewash { generation }, Some(t)) => Some(((p.machine, generation), t)),
            _ => None,
        })
        .collect();
    for p in providers {
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
        "whitewashes": counters.whitewashes,
        "retired": counters.retired,
        "swept_after_unbonding": counters.swept.to_string(),
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

/// A machine: what stays the same when a whitewasher changes its key.
pub(super) struct MachineSpec {
    /// Its id (the index of its first identity).
    pub machine: MachineId,
    /// Behaviour.
    pub behaviour: Behaviour,
    /// Work units per second.
    pub speed: u64,
    /// Its first ask (its operating cost is half of it).
    pub price: Amount,
    /// Seed of its executor's decisions.
    pub exec_seed: Seed,
    /// Region index.
    pub region: u16,
    /// Parallel lots.
    pub capacity: u32,
}

/// A machine's first identity: `Active` from genesis, or a newcomer
/// `Waiting` to offer at `join_at`.
pub(super) fn first_identity(
    key: Keypair,
    chain: ChainId,
    m: MachineSpec,
    identity: Identity,
) -> ProviderAgent {
    let stage = match identity {
        Identity::Newcomer { .. } => Stage::Waiting,
        _ => Stage::Active,
    };
    ProviderAgent {
        outbox: Outbox::new(key, chain),
        behaviour: m.behaviour,
        exec: SimulatedExecutor::new(m.behaviour, cost_model(m.speed), m.exec_seed),
        cost_per_second: Amount::new(m.price.get() / 2),
        price: m.price,
        region: m.region,
        capacity: m.capacity,
        spent_micros: 0,
        cheated_lots: 0,
        work: BTreeMap::new(),
        initial_wealth: Amount::ZERO,
        machine: m.machine,
        identity,
        stage,
        presence: Presence {
            joined_at: (stage == Stage::Active).then_some(Timestamp::ZERO),
            ..Presence::default()
        },
        floor: Amount::new((m.price.get() / 2 * 11 / 10).max(1)),
        recent_matches: 0,
    }
}
