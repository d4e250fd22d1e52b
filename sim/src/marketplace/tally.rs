//! What the marketplace run measures, from the nodes' events only: jobs,
//! matches, traps, cheating and its detection, settlements, framings,
//! referee work and each provider identity's presence.

use std::collections::{BTreeMap, BTreeSet};

use idlegrid_entrap::Outcome as RoundOutcome;
use idlegrid_executor::Behaviour;
use idlegrid_node::client::ClientEvent;
use idlegrid_node::market::{MarketTx, Notice, Settlement};
use idlegrid_node::provider::{LotKey, ProviderEvent};
use idlegrid_node::verification::REPLICA_JOB_BASE;
use idlegrid_primitives::{AccountId, Amount, Timestamp};

use super::agents::{Identity, MachineId, Presence};
use super::nodes::MarketEvent;
use super::run::detection::{self, CheatedLot, DetectionTallies};
use super::stalls::{Stalls, Step};
use super::verification::{Units, VerificationCost};
use super::welfare::WelfareBenchmark;
use crate::observer::Violation;

/// What the run knows of a provider identity from its configuration.
#[derive(Debug, Clone)]
pub struct ProviderInfo {
    /// The machine behind it.
    pub machine: MachineId,
    /// Behaviour.
    pub behaviour: Behaviour,
    /// Its identity kind.
    pub identity: Identity,
    /// Operating cost per compute-second.
    pub cost_per_second: Amount,
    /// Its first ask per compute-second.
    pub first_ask: Amount,
    /// Wealth at genesis (zero for a whitewashed key).
    pub initial_wealth: Amount,
    /// Entry, work and exit.
    pub presence: Presence,
    /// Compute microseconds spent.
    pub spent_micros: u64,
    /// Lots it cheated in.
    /// Lots with a cheated slot.
    pub cheated_lots: u64,
    /// Lots it ran.
    pub lots_run: u64,
    /// Paid − slashed − compute cost over the settled lots it ran from its
    /// first cheated lot on: what cheating earned it (the honest income it
    /// gave up by getting caught is not subtracted, so this flatters it).
    pub profit_after_first_cheat: f64,
}

impl ProviderInfo {
    /// The label it is reported under.
    pub fn label(&self) -> &'static str {
        match self.identity {
            Identity::Whitewash { .. } => "whitewashing",
            Identity::Newcomer { .. } => "newcomer",
            Identity::Genesis => super::agents::behaviour_name(&self.behaviour),
        }
    }

    /// The machine's first identity (the one holding its endowment).
    pub fn is_first_identity(&self) -> bool {
        !matches!(self.identity, Identity::Whitewash { generation } if generation > 0)
    }
}

#[derive(Debug, Clone)]
struct Run {
    cheated: Vec<bool>,
    is_trap: Vec<bool>,
    recognised: Vec<bool>,
    usage_micros: u64,
    /// Run at or after its provider's first cheated lot.
    after_first_cheat: bool,
}

/// Counters of the run.
#[derive(Debug, Default)]
pub struct Counts {
    /// Jobs posted.
    pub jobs_submitted: u64,
    /// Transactions of clients and providers the ledger refused, by
    /// reason (the marketplace error's variant, or the ledger's kind).
    pub rejections: BTreeMap<String, u64>,
    /// Jobs closed (every lot settled or lapsed).
    pub jobs_closed: u64,
    /// Jobs whose `PostJob` the ledger refused (never opened).
    pub jobs_refused: u64,
    /// Jobs closed without a single lot settled (every lot lapsed,
    /// unmatched or unplanned): counted in `jobs_closed`, but nothing ran.
    pub jobs_unrun: u64,
    /// Settled lots by their provider's behaviour (honest or cheating)
    /// and the round's outcome (`"honest/Clean"`, `"cheating/Admitted"`…).
    pub outcomes: BTreeMap<String, u64>,
    /// Lots matched.
    pub matches: u64,
    /// Paid to providers.
    pub volume: u128,
    /// Lots settled.
    pub lots_settled: u64,
    /// Lots that lapsed unmatched.
    pub lapsed_lots: u64,
    /// Matched lots that lapsed unplanned.
    pub unplanned_lots: u64,
    /// Of those, lots of clients that are not careless.
    pub unplanned_careful: u64,
    /// Lot bonds burned with them.
    pub unplanned_bonds: u128,
    /// Traps planted.
    pub traps_planted: u64,
    /// Of those, answers the client reused (no compute for it).
    pub reused_traps: u64,
    /// Real subtasks in matched lots.
    pub real_subtasks: u64,
    /// Lots with a cheated slot.
    pub cheated_lots: u64,
    /// Cheated lots whose provider was slashed.
    pub detected_lots: u64,
    /// Settlements that slashed an honest provider.
    pub honest_slashed: u64,
    /// Rounds the client never revealed (its bond went to the provider).
    pub client_abandoned: u64,
    /// Lots planned by framing clients.
    pub framing_attempts: u64,
    /// Framing clients' bonds forfeited.
    pub framings_caught: u64,
    /// Framed lots whose provider really cheated and admitted.
    pub framings_on_admitted_cheats: u64,
    /// Accusations disputed.
    pub disputes: u64,
    /// Price changes.
    pub reprices: u64,
    /// Sealed orders whose bond was burned (not revealed in time).
    pub seal_forfeits: u64,
    /// Bids re-sealed for unfilled lots.
    pub bid_reseals: u64,
    /// Disputes escalated to a larger committee.
    pub escalations: u64,
    /// Fees paid to majority referees.
    pub referee_fees: u128,
    /// Traps re-executed by referees.
    pub referee_reexecutions: u64,
    /// Gains from trade of clean lots.
    pub welfare: f64,
    /// Providers' share of `welfare`: Σ paid − compute cost.
    pub provider_surplus: f64,
    /// Clients' share of `welfare`: Σ limit price × compute − paid.
    pub client_surplus: f64,
    /// Fresh keys funded by whitewashers.
    pub whitewashes: u64,
    /// Slashed whitewashers that stopped.
    pub retired: u64,
    /// Stake forwarded after unbonding.
    pub swept: u128,
}

/// The run's measurements.
#[derive(Debug)]
pub struct MarketTally {
    /// Provider identities by account.
    pub providers: BTreeMap<AccountId, ProviderInfo>,
    /// Framing clients.
    pub framing: BTreeMap<AccountId, bool>,
    /// Careless clients (their lots repeat an input: never planned).
    pub careless: BTreeSet<AccountId>,
    /// Counters.
    pub c: Counts,
    /// Job latencies, seconds.
    pub latencies: Vec<f64>,
    /// Match prices.
    pub prices: Vec<f64>,
    /// Per-behaviour detection.
    pub detection: DetectionTallies,
    /// Declared vs optimal welfare.
    pub welfare: WelfareBenchmark,
    /// Providers slashed at least once.
    pub slashed: BTreeMap<AccountId, bool>,
    /// Matches and price sum since the last sample.
    pub second: (u64, f64, u64),
    /// All-in verification compute, per virtual second.
    pub verification: VerificationCost,
    /// Where honest providers' defaulted or abandoned lots stalled.
    pub stalls: Stalls,
    /// Open jobs: when each was posted, and whether a lot of it settled.
    posted: BTreeMap<(AccountId, u64), (Timestamp, bool)>,
    runs: BTreeMap<LotKey, Run>,
    /// Each client's limit price (its valuation of a compute-second).
    pub limits: BTreeMap<AccountId, u128>,
    active_until: Timestamp,
    no_framers: bool,
}

impl MarketTally {
    /// A tally over these identities (`clients`: which frame, which are
    /// careless).
    pub fn new(
        providers: BTreeMap<AccountId, ProviderInfo>,
        (framing, careless): (BTreeMap<AccountId, bool>, BTreeSet<AccountId>),
        limits: BTreeMap<AccountId, u128>,
        active_until: Timestamp,
    ) -> Self {
        let no_framers = !framing.values().any(|f| *f);
        Self {
            providers,
            framing,
            careless,
            c: Counts::default(),
            latencies: Vec::new(),
            prices: Vec::new(),
            detection: DetectionTallies::default(),
            welfare: WelfareBenchmark::default(),
            slashed: BTreeMap::new(),
            second: (0, 0.0, 0),
            verification: VerificationCost::default(),
            stalls: Stalls::default(),
            posted: BTreeMap::new(),
            runs: BTreeMap::new(),
            limits,
            active_until,
            no_framers,
        }
    }

    /// Records one event.
    pub fn on_event(&mut self, now: Timestamp, e: &MarketEvent) -> Result<(), Violation> {
        match e {
            MarketEvent::Posted(c, job) => {
                self.c.jobs_submitted += 1;
                self.posted.insert((*c, *job), (now, false));
            }
            MarketEvent::Client(c, ev) => return self.on_client(now, *c, ev),
            MarketEvent::Provider(p, ev) => self.on_provider(now, *p, ev),
            MarketEvent::Executed {
                provider,
                lot,
                cheated,
                is_trap,
                recognised,
                usage_micros,
            } => {
                self.stalls.reached(*lot, Step::Executed);
                let mut after_first_cheat = false;
                if let Some(p) = self.providers.get_mut(provider) {
                    p.spent_micros += usage_micros;
                    p.lots_run += 1;
                    p.cheated_lots += u64::from(cheated.iter().any(|c| *c));
                    if cheated.iter().any(|c| *c) {
                        p.presence.first_cheat_at.get_or_insert(now);
                    }
                    after_first_cheat = p.presence.first_cheat_at.is_some();
                }
                let run = Run {
                    cheated: cheated.clone(),
                    is_trap: is_trap.clone(),
                    recognised: recognised.clone(),
                    usage_micros: *usage_micros,
                    after_first_cheat,
                };
                self.runs.insert(*lot, run);
            }
            MarketEvent::Reexecuted(n) => {
                self.c.referee_reexecutions += n;
                let u = Units {
                    referee_reexecutions: *n,
                    ..Units::default()
                };
                self.verification.record(now, u);
            }
            MarketEvent::Repriced => self.c.reprices += 1,
            MarketEvent::Joined(a) => {
                if let Some(p) = self.providers.get_mut(a) {
                    p.presence.joined_at.get_or_insert(now);
                }
            }
            MarketEvent::Left { account, funded } => {
                if let Some(p) = self.providers.get_mut(account) {
                    p.presence.left_at = Some(now);
                }
                if *funded {
                    self.c.whitewashes += 1;
                } else {
                    self.c.retired += 1;
                }
            }
            MarketEvent::Swept(a) => self.c.swept += a,
            MarketEvent::Notice(n) => return self.on_notice(n),
            MarketEvent::Validator(_) => {}
        }
        Ok(())
    }

    fn on_notice(&mut self, n: &Notice) -> Result<(), Violation> {
        self.stalls.on_notice(n);
        match n {
            Notice::Cleared(record) => self.welfare.record(record),
            Notice::Lapsed { lots, .. } => self.c.lapsed_lots += u64::from(*lots),
            Notice::Unplanned {
                client,
                job,
                lot,
                bond,
                ..
            } => {
                self.stalls
                    .settled((*client, *job, *lot), "Unplanned", false);
                self.c.unplanned_lots += 1;
                self.c.unplanned_careful += u64::from(!self.careless.contains(client));
                self.c.unplanned_bonds += bond.get();
            }
            Notice::BondForfeited { .. } => self.c.seal_forfeits += 1,
            Notice::TicketWindow { level, .. } if *level > 0 => self.c.escalations += 1,
            Notice::EffectFailed { reason } => {
                return Err(Violation::new("settlement-effects", reason.clone()));
            }
            _ => {}
        }
        Ok(())
    }

    fn on_provider(&mut self, now: Timestamp, p: AccountId, ev: &ProviderEvent) {
        match ev {
            ProviderEvent::Answered {
                confessed: false, ..
            } => self.c.disputes += 1,
            ProviderEvent::Matched { lot, .. } => {
                self.stalls.reached(*lot, Step::Heard);
                let present = now < self.active_until;
                if let Some(i) = self.providers.get_mut(&p) {
                    i.presence.first_match_at.get_or_insert(now);
                    i.presence.matches_present +=
                        u64::from(present && i.presence.left_at.is_none());
                }
            }
            ProviderEvent::Rejected { tx, reason } => self.c.refused(tx, reason),
            _ => {}
        }
    }

    fn on_client(
        &mut self,
        now: Timestamp,
        c: AccountId,
        ev: &ClientEvent,
    ) -> Result<(), Violation> {
        match ev {
            ClientEvent::Planned {
                job,
                lot,
                provider,
                price,
                traps,
                slots,
                computed_answers,
                cross_checks,
                replicas,
                ..
            } => {
                self.stalls.reached((c, *job, *lot), Step::Planned);
                self.c.matches += 1;
                self.prices.push(price.get() as f64);
                self.second.0 += 1;
                self.second.1 += price.get() as f64;
                // Cross-checks of a replicated pair's first lot are useful
                // work; the replica lot's slots are verification.
                let real = u64::from(slots - traps + cross_checks - replicas);
                self.c.traps_planted += u64::from(*traps);
                self.c.reused_traps += u64::from(traps - computed_answers - cross_checks);
                self.c.real_subtasks += real;
                let u = Units {
                    real,
                    provider_traps: u64::from(traps - cross_checks),
                    trap_answers: u64::from(*computed_answers),
                    replicas: u64::from(*replicas),
                    ..Units::default()
                };
                self.verification.record(now, u);
                // A lot without traps (lifetime mode) frames nobody.
                if *traps > 0 && self.framing.get(&c).copied().unwrap_or(false) {
                    self.c.framing_attempts += 1;
                }
                if let Some(i) = self.providers.get_mut(provider) {
                    let pr = &mut i.presence;
                    if pr.first_lot_traps == 0 && pr.first_lot_real == 0 {
                        pr.first_lot_traps = u64::from(*traps);
                        pr.first_lot_real = real;
                    }
                    pr.traps_faced += u64::from(*traps);
                    pr.real_faced += real;
                }
            }
            ClientEvent::Settled(s) => return self.settled(now, s),
            ClientEvent::BidResealed { .. } => self.c.bid_reseals += 1,
            ClientEvent::Rejected { tx, reason } => {
                self.c.refused(tx, reason);
                if let MarketTx::PostJob(req) = &**tx
                    && self.posted.remove(&(c, req.job)).is_some()
                {
                    self.c.jobs_refused += 1;
                }
            }
            ClientEvent::LedgerRejected { tx, reason } => self.c.refused(tx, reason),
            // A client's replica jobs are verification, not jobs it was
            // asked to run.
            ClientEvent::JobClosed { job, .. } if *job >= REPLICA_JOB_BASE => {}
            ClientEvent::JobClosed { job, .. } => {
                self.c.jobs_closed += 1;
                self.second.2 += 1;
                if let Some((t, ran)) = self.posted.remove(&(c, *job)) {
                    self.c.jobs_unrun += u64::from(!ran);
                    self.latencies
                        .push(now.saturating_since(t).as_micros() as f64 / 1e6);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn settled(&mut self, now: Timestamp, s: &Settlement) -> Result<(), Violation> {
        self.c.lots_settled += 1;
        if let Some((_, ran)) = self.posted.get_mut(&(s.client, s.job)) {
            *ran = true;
        }
        self.c.client_abandoned += u64::from(matches!(s.outcome, RoundOutcome::ClientAbandoned));
        self.c.referee_fees += s.referee_fees.get();
        let run = self.runs.remove(&(s.client, s.job, s.lot));
        let cheated = run.as_ref().is_some_and(|r| r.cheated.iter().any(|c| *c));
        let caught = !s.slashed.is_zero();
        let framing = self.framing.get(&s.client).copied().unwrap_or(false);
        let Some(p) = self.providers.get_mut(&s.provider) else {
            return Ok(());
        };
        if cheated {
            self.c.cheated_lots += 1;
            self.c.detected_lots += u64::from(caught);
        }
        if let Some(r) = run.as_ref().filter(|r| r.after_first_cheat) {
            let cost = p.cost_per_second.get() as f64 * r.usage_micros as f64 / 1e6;
            p.profit_after_first_cheat += s.paid.get() as f64 - s.slashed.get() as f64 - cost;
        }
        if caught {
            self.slashed.insert(s.provider, true);
        }
        if !s.bond_forfeited.is_zero() && framing {
            self.c.framings_caught += 1;
        } else if framing && cheated && matches!(s.outcome, RoundOutcome::Admitted) {
            // The framed lot went to a provider that really cheated and
            // admitted: no referee ever saw the false trap answer.
            self.c.framings_on_admitted_cheats += 1;
        }
        let honest = p.behaviour == Behaviour::Honest;
        let outcome = format!("{:?}", s.outcome);
        let outcome = outcome.split(['(', ' ']).next().unwrap_or("");
        let side = if honest { "honest" } else { "cheating" };
        let bad = honest
            && matches!(
                s.outcome,
                RoundOutcome::ProviderDefaulted | RoundOutcome::ClientAbandoned
            );
        self.stalls.settled((s.client, s.job, s.lot), outcome, bad);
        *self
            .c
            .outcomes
            .entry(format!("{side}/{outcome}"))
            .or_default() += 1;
        if caught && honest {
            self.c.honest_slashed += 1;
            if self.no_framers {
                return Err(Violation::new(
                    "no-honest-slashed",
                    format!("honest provider slashed in job {} lot {}", s.job, s.lot),
                ));
            }
        }
        if matches!(s.outcome, RoundOutcome::Clean)
            && let Some(r) = &run
        {
            // Gains from trade, valuing useful compute at the limit price,
            // and how the payment splits them.
            let seconds = r.usage_micros as f64 / 1e6;
            let paid = s.paid.get() as f64;
            let limit = *self
                .limits
                .get(&s.client)
                .expect("every client has a limit") as f64;
            self.c.welfare += (limit - p.cost_per_second.get() as f64) * seconds;
            self.c.provider_surplus += paid - p.cost_per_second.get() as f64 * seconds;
            self.c.client_surplus += limit * seconds - paid;
        }
        if matches!(s.outcome, RoundOutcome::Clean) || s.paid > Amount::ZERO {
            self.c.volume += s.paid.get();
        }
        let guilty = detection::convicted(&s.outcome);
        if let Some(r) = run.filter(|_| cheated) {
            let count = |v: &[bool]| v.iter().filter(|x| **x).count() as u32;
            let lot = CheatedLot {
                slots: r.cheated.len() as u32,
                traps: count(&r.is_trap),
                recognised: count(&r.recognised),
                recognised_traps: r
                    .recognised
                    .iter()
                    .zip(&r.is_trap)
                    .filter(|(k, t)| **k && **t)
                    .count() as u32,
                corrupted: count(&r.cheated),
                trap_hit: r.cheated.iter().zip(&r.is_trap).any(|(c, t)| *c && *t),
                convicted: guilty,
                slashed: caught,
            };
            self.detection.record(p.label(), &p.behaviour, lot);
        }
        p.presence.lots_settled += 1;
        if guilty && p.presence.convicted_at.is_none() {
            p.presence.convicted_at = Some(now);
            p.presence.lots_to_conviction = p.presence.lots_settled;
        }
        Ok(())
    }
}

impl Counts {
    /// Counts one refused transaction under its label.
    fn refused(&mut self, tx: &impl std::fmt::Debug, reason: &idlegrid_node::wire::Rejection) {
        *self
            .rejections
            .entry(rejection_label(tx, reason))
            .or_default() += 1;
    }
}

/// A short label for a rejection: the transaction's kind and why, the
/// marketplace error's variant (with its inner variant: `Seal(Full)`) or
/// the ledger's kind, e.g. `"RevealAsk/Seal(Late)"`, `"SealAsk/Funds"`.
fn rejection_label(tx: &impl std::fmt::Debug, r: &idlegrid_node::wire::Rejection) -> String {
    fn head(d: &str) -> &str {
        d.split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .unwrap_or("")
    }
    let why = match &r.market {
        Some(e) => {
            let d = format!("{e:?}");
            let outer = head(&d);
            match d[outer.len()..].strip_prefix('(').map(head) {
                Some(inner) if inner.starts_with(char::is_uppercase) => format!("{outer}({inner})"),
                _ => outer.to_string(),
            }
        }
        None => format!("{:?}", r.kind),
    };
    format!("{}/{why}", head(&format!("{tx:?}")))
}

#[cfg(test)]
mod tests {
    use idlegrid_node::market::{MarketError, SealError};
    use idlegrid_node::wire::{Rejection, RejectionKind};
    use idlegrid_primitives::Salt;

    use super::*;

    #[test]
    fn a_rejection_is_labelled_by_its_transaction_and_reason() {
        let why = |kind, market| Rejection {
            kind,
            market,
            detail: String::new(),
            expected_nonce: None,
        };
        let reveal = MarketTx::RevealAsk {
            seq: 3,
            price: Amount::new(7),
            salt: Salt::from_bytes([1; 32]),
            next: None,
        };
        let full = Some(MarketError::Seal(SealError::Full(9)));
        assert_eq!(
            rejection_label(&reveal, &why(RejectionKind::Market, full)),
            "RevealAsk/Seal(Full)"
        );
        let busy = Some(MarketError::TooManyPendingBids);
        assert_eq!(
            rejection_label(&reveal, &why(RejectionKind::Market, busy)),
            "RevealAsk/TooManyPendingBids"
        );
        assert_eq!(
            rejection_label(&reveal, &why(RejectionKind::Funds, None)),
            "RevealAsk/Funds"
        );
    }
}
