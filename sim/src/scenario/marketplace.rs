//! The `[marketplace]` section of a scenario: provider and client
//! populations for `machine = "marketplace"`. The validators are the
//! scenario's `nodes` (their Byzantine behaviours come from
//! `[[consensus.byzantine]]`, their faults from `[[faults]]`).

use idlegrid_market::MechanismRegistry;
use idlegrid_node::market::TrustGate;
use serde::Deserialize;

use super::{Scenario, ScenarioError, check_prob, invalid};
use idlegrid_entrap::{AssuranceTarget, Bps, ReuseRule};
use idlegrid_node::client::{LifetimeMode, TrapTargets};
use idlegrid_node::light::{FactDelivery, FactWindow};
use idlegrid_node::verification::VerificationMode;
use idlegrid_primitives::Duration;

use crate::marketplace::run::{MAX_TRAPS_PER_LOT, ReputationFilter, SybilConfig, check_traps};
use crate::marketplace::valuation::Valuation;
use crate::marketplace::{CheaterMix, MarketplaceConfig};

/// `[marketplace]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarketplaceSection {
    /// Clients post jobs during the first `active_secs` virtual seconds;
    /// the rest of `duration_ms` lets every job settle.
    pub active_secs: u64,
    /// Stake bonded per provider slot (providers are endowed with enough).
    #[serde(default = "default_stake")]
    pub stake_per_slot: u64,
    /// Providers adapt their asks (idle undercut, matched raise).
    #[serde(default = "default_true")]
    pub adaptive_pricing: bool,
    /// Validators every light-node transaction is submitted to.
    #[serde(default = "one")]
    pub gateways: u32,
    /// Validators each light node subscribes to for facts at first, raised
    /// to the stake `fact_window` asks for and widened when they do not
    /// decide facts in time; 0 = every validator.
    #[serde(default)]
    pub fact_sources: u32,
    /// How much of the stake a light node's fact sources hold at least:
    /// `"quorum"` (2f + 1, the default) or `"validity"` (f + 1, half the
    /// fact traffic; widened after `fact_patience_ms` when a source is
    /// silent).
    #[serde(default)]
    pub fact_window: FactWindowKind,
    /// With `fact_window = "validity"`: how long a fact may stay short of
    /// f + 1 before the window widens, 1..=600 000 ms (default 2 000).
    #[serde(default = "default_fact_patience_ms")]
    pub fact_patience_ms: u64,
    /// How light nodes hear their facts: `"reported"` (by every fact
    /// source, the default) or `"certified"` (each commit's facts signed by
    /// f + 1 of the stake and proven leaf by leaf, from `certified_sources`
    /// validators only; another is asked after `certified_patience_ms`
    /// without any, or at once when one forges).
    #[serde(default)]
    pub facts: FactsKind,
    /// With `facts = "certified"`: validators sending them at first,
    /// 1..=the committee (default 2).
    #[serde(default = "default_certified_sources")]
    pub certified_sources: u32,
    /// With `facts = "certified"`: how long without certified facts before
    /// another validator is asked, 1..=600 000 ms (default 3 000, three
    /// clearing periods: every clearing period closes a sealing batch, a
    /// fact for every light node).
    #[serde(default = "default_certified_patience_ms")]
    pub certified_patience_ms: u64,
    /// The providers.
    pub providers: ProvidersSection,
    /// The clients.
    pub clients: ClientsSection,
    /// Whitewashing providers and honest newcomers (none by default).
    #[serde(default)]
    pub sybil: SybilSection,
    /// The validators' clearing mechanism, by name: `k_double` (`k = 1/2`,
    /// the default), `mcafee`, `pay_as_bid`, `pay_as_ask`, or any name a
    /// library user registered ([`Scenario::parse_with`]).
    #[serde(default = "default_mechanism")]
    pub mechanism: String,
    /// The reputation filter of the clients' bids.
    #[serde(default)]
    pub reputation: ReputationSection,
    /// What every client's traps must achieve.
    #[serde(default)]
    pub entrap: EntrapSection,
}

/// `[marketplace.entrap]`: the clients' trap policy. Each lot gets the
/// fewest traps that catch a provider corrupting `cheat_rate` of it with
/// probability `confidence` (lowered by the provider's credibility when
/// `credibility_discount` is on), at most `max_traps_per_lot`. Checked
/// before the run: a target no trap count within the cap meets for a
/// provider without a record, or a stake too small to deter cheating, is
/// refused with what would meet it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntrapSection {
    /// `1 − δ`, in `(0, 1)` (default 0.99).
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// The cheating rate to catch, a fraction of a lot's subtasks in
    /// `(0, 1]` (default 0.1).
    #[serde(default = "default_catch_rate")]
    pub cheat_rate: f64,
    /// At most this many traps per lot (default `2 n + 4` for `n` real
    /// subtasks per lot).
    #[serde(default)]
    pub max_traps_per_lot: Option<u32>,
    /// Whether a provider's credibility lowers its trap count (default on).
    #[serde(default = "default_true")]
    pub credibility_discount: bool,
    /// Lifetime mode: a provider corrupting `cheat_rate` of every lot is
    /// caught within its first `lifetime_lots` lots with probability
    /// `confidence`; lots carry traps with a per-provider rate, never below
    /// the deterrence floor (unset: traps sized per lot).
    #[serde(default)]
    pub lifetime_lots: Option<u32>,
    /// How clients verify their lots: `"entrap"` (the default: traps as
    /// above), `"replication"` (every lot executed by two providers,
    /// disagreements settled by the referees), `"adaptive_replication"`
    /// (BOINC's rule: replicated until 10 consecutive valid results, then
    /// with probability 1/streak) or `"none"` (cheated work is accepted
    /// and paid). See [`idlegrid_node::verification`].
    #[serde(default = "default_verification")]
    pub verification: String,
    /// Reuse of trap answers (lifetime mode only; unset: every trap
    /// fresh): at most this fraction of a trap-carrying lot's traps, in
    /// `[0, 1]`, are answers the client banked from earlier clean lots
    /// ([`idlegrid_entrap::reuse`]).
    #[serde(default)]
    pub reuse_fraction: Option<f64>,
    /// An answer is reused at most this many times, in `1..=1000`
    /// (default 4).
    #[serde(default = "default_reuse_max_uses")]
    pub reuse_max_uses: u32,
    /// An answer is reused at most this long after it was banked, in
    /// seconds, in `1..=86400` (default 600).
    #[serde(default = "default_reuse_max_age_s")]
    pub reuse_max_age_s: u64,
    /// The reuse guards (default on): at least one fresh trap per
    /// trap-carrying lot, no reuse inside a provider's first
    /// `lifetime_lots` lots, never to a provider that saw the input. Off
    /// only to measure what colluders do without them.
    #[serde(default = "default_true")]
    pub reuse_guarded: bool,
}

fn default_reuse_max_uses() -> u32 {
    4
}

fn default_reuse_max_age_s() -> u64 {
    600
}

fn default_verification() -> String {
    VerificationMode::Entrap.name().to_string()
}

impl Default for EntrapSection {
    fn default() -> Self {
        Self {
            confidence: default_confidence(),
            cheat_rate: default_catch_rate(),
            max_traps_per_lot: None,
            credibility_discount: true,
            lifetime_lots: None,
            verification: default_verification(),
            reuse_fraction: None,
            reuse_max_uses: default_reuse_max_uses(),
            reuse_max_age_s: default_reuse_max_age_s(),
            reuse_guarded: true,
        }
    }
}

fn default_confidence() -> f64 {
    0.99
}

fn default_catch_rate() -> f64 {
    0.1
}

impl EntrapSection {
    /// The clients' verification mode, or the field naming the choices.
    pub fn verification(&self) -> Result<VerificationMode, ScenarioError> {
        self.verification
            .parse()
            .map_err(|e: idlegrid_node::verification::UnknownMode| {
                invalid("marketplace.entrap.verification", e.to_string())
            })
    }

    /// The clients' trap targets, or the field out of range.
    pub fn targets(&self, subtasks_per_lot: u32) -> Result<TrapTargets, ScenarioError> {
        let c = self.confidence;
        if !(c > 0.0 && c < 1.0) {
            return Err(invalid(
                "marketplace.entrap.confidence",
                format!("must be in (0, 1) (exclusive), got {c}"),
            ));
        }
        let r = self.cheat_rate;
        let bps = (r * 10_000.0).round();
        if !(r > 0.0 && r <= 1.0) || bps < 1.0 {
            return Err(invalid(
                "marketplace.entrap.cheat_rate",
                format!("must be in (0, 1] and at least 0.0001, got {r}"),
            ));
        }
        if let Some(k) = self.max_traps_per_lot {
            range(
                "marketplace.entrap.max_traps_per_lot",
                k,
                1,
                MAX_TRAPS_PER_LOT,
            )?;
        }
        let fraction = Bps::new(bps as u16)
            .map_err(|e| invalid("marketplace.entrap.cheat_rate", e.to_string()))?;
        let lifetime = match self.lifetime_lots {
            None => None,
            Some(lots) => {
                range(
                    "marketplace.entrap.lifetime_lots",
                    lots,
                    1,
                    idlegrid_entrap::lifetime::MAX_HORIZON_LOTS,
                )?;
                Some(LifetimeMode {
                    target: AssuranceTarget {
                        cheat_rate: fraction,
                        lots,
                        miss_probability: 1.0 - c,
                    },
                    max_traps: self
                        .max_traps_per_lot
                        .unwrap_or((subtasks_per_lot / 4).max(1)),
                    halving_lots: self.credibility_discount.then_some(10),
                })
            }
        };
        let reuse = self.reuse(lifetime.is_some())?;
        Ok(TrapTargets {
            miss_probability: 1.0 - c,
            min_corrupt_fraction: fraction,
            max_traps: self.max_traps_per_lot,
            use_credibility: self.credibility_discount,
            lifetime,
            reuse,
        })
    }

    /// The reuse rule, or the field out of range (`lifetime`: whether
    /// lifetime mode is on, which reuse needs).
    fn reuse(&self, lifetime: bool) -> Result<Option<ReuseRule>, ScenarioError> {
        let Some(f) = self.reuse_fraction else {
            return Ok(None);
        };
        if !(0.0..=1.0).contains(&f) {
            return Err(invalid(
                "marketplace.entrap.reuse_fraction",
                format!("must be in [0, 1], got {f}"),
            ));
        }
        if !lifetime {
            return Err(invalid(
                "marketplace.entrap.reuse_fraction",
                "needs lifetime mode (marketplace.entrap.lifetime_lots)".to_string(),
            ));
        }
        range(
            "marketplace.entrap.reuse_max_uses",
            self.reuse_max_uses,
            1,
            idlegrid_entrap::reuse::MAX_REUSES,
        )?;
        if !(1..=86_400).contains(&self.reuse_max_age_s) {
            return Err(invalid(
                "marketplace.entrap.reuse_max_age_s",
                format!("must be in 1..=86400, got {}", self.reuse_max_age_s),
            ));
        }
        let fraction = Bps::new((f * 10_000.0).round() as u16)
            .map_err(|e| invalid("marketplace.entrap.reuse_fraction", e.to_string()))?;
        Ok(Some(ReuseRule {
            fraction,
            max_uses: self.reuse_max_uses,
            max_age: idlegrid_primitives::Duration::from_secs(self.reuse_max_age_s),
            guarded: self.reuse_guarded,
        }))
    }

    /// The targets, checked against the lots, prices and stake: refused
    /// before the run when no trap count within the cap meets them for a
    /// provider without a record, or when the stake cannot deter.
    fn check(&self, m: &MarketplaceSection) -> Result<TrapTargets, ScenarioError> {
        let n = m.clients.subtasks_per_lot;
        self.verification()?;
        let t = self.targets(n)?;
        let price_min = u128::from(m.providers.price_min);
        let stake = u128::from(m.stake_per_slot);
        check_traps(&t, n, price_min, stake).map_err(|(field, reason)| {
            let field = match field {
                "stake_per_slot" => "marketplace.stake_per_slot",
                "trap_targets.max_traps" => "marketplace.entrap.max_traps_per_lot",
                "trap_targets.miss_probability" => "marketplace.entrap.confidence",
                _ => "marketplace.entrap",
            };
            invalid(field, reason)
        })?;
        Ok(t)
    }
}

/// `[marketplace.reputation]`: which providers clients' bids accept.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReputationSection {
    /// `"fresh"` (the default: no provider below a newcomer's score),
    /// `"off"` (any provider) or `"min"` (no provider below
    /// `min_score_bps`).
    #[serde(default)]
    pub filter: FilterKind,
    /// With `filter = "min"`: the lowest accepted score, `0..=10000` bps.
    #[serde(default)]
    pub min_score_bps: Option<u16>,
    /// Validators gate scores by EigenTrust global trust (off by default).
    #[serde(default)]
    pub global_trust: bool,
    /// With `global_trust`: the share of the mean trust a provider needs
    /// for its record to count, `0..=1000000` bps of the mean (default
    /// 5000, half the mean).
    #[serde(default)]
    pub min_trust_bps_of_mean: Option<u32>,
}

/// `marketplace.fact_window`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactWindowKind {
    /// 2f + 1 of the stake.
    #[default]
    Quorum,
    /// f + 1 of the stake.
    Validity,
}

fn default_fact_patience_ms() -> u64 {
    2_000
}

/// `marketplace.facts`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactsKind {
    /// By every fact source.
    #[default]
    Reported,
    /// Certified by f + 1 of the stake, from a few sources.
    Certified,
}

fn default_certified_sources() -> u32 {
    2
}

fn default_certified_patience_ms() -> u64 {
    3_000
}

/// `marketplace.reputation.filter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterKind {
    /// No provider below a newcomer's score.
    #[default]
    Fresh,
    /// Any provider.
    Off,
    /// No provider below `min_score_bps`.
    Min,
}

impl ReputationSection {
    /// The filter, or why the section is inconsistent.
    pub fn filter(&self) -> Result<ReputationFilter, ScenarioError> {
        let field = "marketplace.reputation.min_score_bps";
        match (self.filter, self.min_score_bps) {
            (FilterKind::Min, None) => Err(invalid(field, "is required with `filter = \"min\"`")),
            (FilterKind::Min, Some(b)) => {
                range(field, b, 0, 10_000)?;
                Ok(ReputationFilter::MinBps(b))
            }
            (_, Some(_)) => Err(invalid(field, "is only used with `filter = \"min\"`")),
            (FilterKind::Fresh, None) => Ok(ReputationFilter::Fresh),
            (FilterKind::Off, None) => Ok(ReputationFilter::Off),
        }
    }

    /// The validators' trust gate, or why the section is inconsistent.
    pub fn global_trust(&self) -> Result<Option<TrustGate>, ScenarioError> {
        let field = "marketplace.reputation.min_trust_bps_of_mean";
        match (self.global_trust, self.min_trust_bps_of_mean) {
            (false, None) => Ok(None),
            (false, Some(_)) => Err(invalid(field, "is only used with `global_trust = true`")),
            (true, share) => {
                let mut gate = TrustGate::half_of_mean();
                if let Some(bps) = share {
                    range(field, bps, 0, TrustGate::MAX_BPS_OF_MEAN)?;
                    gate.min_bps_of_mean = bps;
                }
                Ok(Some(gate))
            }
        }
    }
}

/// `[marketplace.sybil]`: whitewashers (lazy cheaters that come back under
/// a fresh key once slashed) and honest newcomers (the control group), on
/// top of `providers.count`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SybilSection {
    /// Whitewashing machines (lazy cheaters at `providers.cheat_rate`).
    #[serde(default)]
    pub whitewashers: u32,
    /// Keys a whitewashing machine uses at most, its first included.
    #[serde(default = "default_identities")]
    pub max_identities: u32,
    /// Honest providers that submit their offer late.
    #[serde(default)]
    pub newcomers: u32,
    /// Newcomers offer at a time uniform in `join_from_secs..=join_until_secs`.
    #[serde(default)]
    pub join_from_secs: u64,
    /// End of the entry window: no newcomer joins and no whitewasher
    /// re-enters after it (before `active_secs`).
    #[serde(default)]
    pub join_until_secs: u64,
}

impl Default for SybilSection {
    fn default() -> Self {
        Self {
            whitewashers: 0,
            max_identities: default_identities(),
            newcomers: 0,
            join_from_secs: 0,
            join_until_secs: 0,
        }
    }
}

fn default_identities() -> u32 {
    SybilConfig::default().max_identities
}

/// `[marketplace.providers]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvidersSection {
    /// Number of providers (placed round-robin over the regions).
    pub count: u32,
    /// Parallel lots per provider.
    #[serde(default = "default_capacity")]
    pub capacity: u32,
    /// Asks are uniform in `price_min..=price_max` per compute-second.
    #[serde(default = "default_price_min")]
    pub price_min: u64,
    /// Upper end of the ask range.
    #[serde(default = "default_price_max")]
    pub price_max: u64,
    /// Machine speeds are uniform in `speed_min..=speed_max` work units/s.
    #[serde(default = "default_speed_min")]
    pub speed_min: u64,
    /// Fastest machine.
    #[serde(default = "default_speed_max")]
    pub speed_max: u64,
    /// Fraction of providers that cheat deliberately (split by `mix`).
    #[serde(default = "default_cheaters")]
    pub cheater_fraction: f64,
    /// Probability a cheater cheats on a subtask.
    #[serde(default = "default_cheat_rate")]
    pub cheat_rate: f64,
    /// Fraction of providers with random faults (2 % of subtasks).
    #[serde(default)]
    pub faulty_fraction: f64,
    /// Bait-and-switch providers work honestly for this many subtasks.
    #[serde(default = "default_bait")]
    pub bait_honest_tasks: u32,
    /// Colluding providers work honestly for this many subtasks before
    /// they cheat (on inputs their coalition has not seen; default 0).
    #[serde(default)]
    pub colluder_honest_tasks: u32,
    /// Relative weights of the cheating behaviours.
    #[serde(default)]
    pub mix: MixSection,
}

/// `[marketplace.providers.mix]`: relative weights of cheating behaviours.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixSection {
    /// Skip work at `cheat_rate`.
    #[serde(default = "one")]
    pub lazy: u32,
    /// Cheat where no trap is guessed.
    #[serde(default = "one")]
    pub trap_guessing: u32,
    /// A colluding group sharing wrong answers.
    #[serde(default = "one")]
    pub colluding: u32,
    /// Honest for `bait_honest_tasks`, then cheat.
    #[serde(default = "one")]
    pub bait_and_switch: u32,
}

impl Default for MixSection {
    fn default() -> Self {
        Self {
            lazy: 1,
            trap_guessing: 1,
            colluding: 1,
            bait_and_switch: 1,
        }
    }
}

/// `[marketplace.clients]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientsSection {
    /// Number of clients.
    pub count: u32,
    /// How many of them frame providers (plant a wrong trap answer).
    #[serde(default)]
    pub framing: u32,
    /// How many of them are careless: every lot of theirs repeats one
    /// input, which their node refuses to plan, so their matched lots
    /// lapse at the plan deadline (the last clients; at most
    /// `count - framing`).
    #[serde(default)]
    pub careless: u32,
    /// Mean time between a client's jobs (Poisson arrivals), ms.
    #[serde(default = "default_interval")]
    pub job_interval_ms: u64,
    /// Real subtasks per lot.
    #[serde(default = "default_subtasks")]
    pub subtasks_per_lot: u32,
    /// A job has 1..=max_lots lots (providers).
    #[serde(default = "default_lots")]
    pub max_lots: u32,
    /// Every client's limit price per compute-second (10,000 when neither
    /// this nor `valuation` is set).
    #[serde(default)]
    pub max_price: Option<u64>,
    /// Each client's own limit price, drawn from a distribution (instead
    /// of one `max_price` for all).
    #[serde(default)]
    pub valuation: Option<ValuationSection>,
}

/// `[marketplace.clients.valuation]`: the distribution of the clients'
/// limit prices, drawn per client from the run's seed. Continuous
/// distributions are clamped to `min..=max`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ValuationSection {
    /// `kind = "uniform"`: uniform in `min..=max`.
    Uniform {
        /// Lowest limit.
        min: u64,
        /// Highest limit.
        max: u64,
    },
    /// `kind = "normal"`: normal with `mean` and `std_dev`.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        std_dev: f64,
        /// Clamp below.
        min: u64,
        /// Clamp above.
        max: u64,
    },
    /// `kind = "lognormal"`: log-normal with `median` and `sigma` (of the
    /// logarithm).
    Lognormal {
        /// Median.
        median: f64,
        /// Standard deviation of the logarithm.
        sigma: f64,
        /// Clamp below.
        min: u64,
        /// Clamp above.
        max: u64,
    },
}

impl ClientsSection {
    /// The clients' valuation (`max_price`, or 10,000, for all when no
    /// distribution is given).
    pub fn valuation(&self) -> Result<Valuation, ScenarioError> {
        let v = match (self.valuation, self.max_price) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "marketplace.clients.max_price",
                    "conflicts with `marketplace.clients.valuation`: set one of them",
                ));
            }
            (None, p) => Valuation::Fixed(u128::from(p.unwrap_or_else(default_price_max))),
            (Some(ValuationSection::Uniform { min, max }), _) => Valuation::Uniform {
                min: min.into(),
                max: max.into(),
            },
            (
                Some(ValuationSection::Normal {
                    mean,
                    std_dev,
                    min,
                    max,
                }),
                _,
            ) => Valuation::Normal {
                mean,
                std_dev,
                min: min.into(),
                max: max.into(),
            },
            (
                Some(ValuationSection::Lognormal {
                    median,
                    sigma,
                    min,
                    max,
                }),
                _,
            ) => Valuation::LogNormal {
                median,
                sigma,
                min: min.into(),
                max: max.into(),
            },
        };
        v.check().map_err(|(field, reason)| {
            let field = match (self.valuation, field) {
                (None, _) => "marketplace.clients.max_price".to_string(),
                (Some(_), f) => format!("marketplace.clients.valuation.{f}"),
            };
            invalid(field, reason)
        })?;
        Ok(v)
    }
}

fn default_mechanism() -> String {
    idlegrid_market::MECHANISMS[0].name.to_string()
}
fn default_stake() -> u64 {
    50_000
}
fn default_true() -> bool {
    true
}
fn default_capacity() -> u32 {
    2
}
fn default_price_min() -> u64 {
    6_000
}
fn default_price_max() -> u64 {
    10_000
}
fn default_speed_min() -> u64 {
    500_000_000
}
fn default_speed_max() -> u64 {
    2_000_000_000
}
fn default_cheaters() -> f64 {
    0.1
}
fn default_cheat_rate() -> f64 {
    0.3
}
fn default_bait() -> u32 {
    20
}
fn one() -> u32 {
    1
}
fn default_interval() -> u64 {
    4_000
}
fn default_subtasks() -> u32 {
    16
}
fn default_lots() -> u32 {
    4
}

/// Most providers a scenario may ask for.
pub const MAX_PROVIDERS: u32 = 100_000;
/// Most clients a scenario may ask for.
pub const MAX_CLIENTS: u32 = 10_000;

fn range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &str,
    v: T,
    lo: T,
    hi: T,
) -> Result<(), ScenarioError> {
    if v < lo || v > hi {
        return Err(invalid(field, format!("must be in {lo}..={hi}, got {v}")));
    }
    Ok(())
}

/// The mechanism registered as `name`, or an error listing them.
fn mechanism(
    name: &str,
    mechanisms: &MechanismRegistry,
) -> Result<idlegrid_market::NamedMechanism, ScenarioError> {
    mechanisms.get(name).ok_or_else(|| {
        invalid(
            "marketplace.mechanism",
            format!("must be one of {}, got `{name}`", mechanisms.names()),
        )
    })
}

impl ProvidersSection {
    /// Ranges, fractions and the cheating mix.
    fn validate(&self) -> Result<(), ScenarioError> {
        let p = self;
        range("marketplace.providers.count", p.count, 1, MAX_PROVIDERS)?;
        range("marketplace.providers.capacity", p.capacity, 1, 16)?;
        range("marketplace.providers.price_min", p.price_min, 1, 1 << 50)?;
        range(
            "marketplace.providers.price_max",
            p.price_max,
            p.price_min,
            1 << 50,
        )?;
        range("marketplace.providers.speed_min", p.speed_min, 1, 1 << 50)?;
        range(
            "marketplace.providers.speed_max",
            p.speed_max,
            p.speed_min,
            1 << 50,
        )?;
        check_prob("marketplace.providers.cheater_fraction", p.cheater_fraction)?;
        check_prob("marketplace.providers.cheat_rate", p.cheat_rate)?;
        check_prob("marketplace.providers.faulty_fraction", p.faulty_fraction)?;
        if p.cheater_fraction + p.faulty_fraction > 1.0 {
            return Err(invalid(
                "marketplace.providers.faulty_fraction",
                "cheater_fraction + faulty_fraction must be at most 1",
            ));
        }
        let mix = p.mix;
        if p.cheater_fraction > 0.0
            && mix.lazy + mix.trap_guessing + mix.colluding + mix.bait_and_switch == 0
        {
            return Err(invalid(
                "marketplace.providers.mix",
                "needs a positive weight for at least one behaviour when cheater_fraction > 0",
            ));
        }
        Ok(())
    }
}

impl ClientsSection {
    /// Counts, intervals and lot sizes.
    fn validate_ranges(&self) -> Result<(), ScenarioError> {
        let c = self;
        range("marketplace.clients.count", c.count, 1, MAX_CLIENTS)?;
        range("marketplace.clients.framing", c.framing, 0, c.count)?;
        range(
            "marketplace.clients.careless",
            c.careless,
            0,
            c.count - c.framing,
        )?;
        range(
            "marketplace.clients.job_interval_ms",
            c.job_interval_ms,
            10,
            3_600_000,
        )?;
        range(
            "marketplace.clients.subtasks_per_lot",
            c.subtasks_per_lot,
            1,
            200,
        )?;
        range("marketplace.clients.max_lots", c.max_lots, 1, 16)?;
        Ok(())
    }
}

impl MarketplaceSection {
    /// The light nodes' fact window (`fact_window`, `fact_patience_ms`).
    fn fact_window(&self) -> Result<FactWindow, ScenarioError> {
        range(
            "marketplace.fact_patience_ms",
            self.fact_patience_ms,
            1,
            600_000,
        )?;
        Ok(match self.fact_window {
            FactWindowKind::Quorum => FactWindow::Quorum,
            FactWindowKind::Validity => FactWindow::Validity {
                patience: Duration::from_millis(self.fact_patience_ms),
            },
        })
    }

    /// How light nodes hear their facts (`facts`, `certified_sources`,
    /// `certified_patience_ms`), checked against a committee of
    /// `validators`.
    fn delivery(&self, validators: u32) -> Result<FactDelivery, ScenarioError> {
        range(
            "marketplace.certified_sources",
            self.certified_sources,
            1,
            validators.max(1),
        )?;
        range(
            "marketplace.certified_patience_ms",
            self.certified_patience_ms,
            1,
            600_000,
        )?;
        Ok(match self.facts {
            FactsKind::Reported => FactDelivery::Reported,
            FactsKind::Certified => FactDelivery::Certified {
                sources: self.certified_sources as usize,
                patience: Duration::from_millis(self.certified_patience_ms),
            },
        })
    }
}

impl SybilSection {
    /// Identity counts, and join windows inside the active part of the run.
    fn validate(&self, active_secs: u64) -> Result<(), ScenarioError> {
        let y = self;
        range(
            "marketplace.sybil.whitewashers",
            y.whitewashers,
            0,
            MAX_PROVIDERS,
        )?;
        range("marketplace.sybil.newcomers", y.newcomers, 0, MAX_PROVIDERS)?;
        range(
            "marketplace.sybil.max_identities",
            y.max_identities,
            1,
            crate::marketplace::run::MAX_IDENTITIES,
        )?;
        if y.newcomers > 0 || y.whitewashers > 0 {
            range(
                "marketplace.sybil.join_until_secs",
                y.join_until_secs,
                1,
                active_secs.saturating_sub(1),
            )?;
            range(
                "marketplace.sybil.join_from_secs",
                y.join_from_secs,
                0,
                y.join_until_secs,
            )?;
        }
        Ok(())
    }
}

impl Scenario {
    pub(super) fn validate_marketplace(
        &self,
        mechanisms: &MechanismRegistry,
    ) -> Result<(), ScenarioError> {
        let Some(m) = &self.marketplace else {
            return Err(invalid(
                "marketplace",
                "is required with `machine = \"marketplace\"` (providers and clients)",
            ));
        };
        range("nodes.count", self.nodes.count, 4, 200)?;
        if m.active_secs == 0 || m.active_secs * 1_000 >= self.duration_ms {
            return Err(invalid(
                "marketplace.active_secs",
                format!(
                    "must be positive and end before `duration_ms` ({} ms) so jobs can settle",
                    self.duration_ms
                ),
            ));
        }
        if self.duration_ms % 1_000 != 0 {
            return Err(invalid(
                "duration_ms",
                "must be whole seconds for the marketplace",
            ));
        }
        mechanism(&m.mechanism, mechanisms)?;
        m.reputation.filter()?;
        m.reputation.global_trust()?;
        range("marketplace.stake_per_slot", m.stake_per_slot, 1, 1 << 50)?;
        range(
            "marketplace.gateways",
            m.gateways,
            1,
            self.nodes.count as u32,
        )?;
        range(
            "marketplace.fact_sources",
            m.fact_sources,
            0,
            self.nodes.count as u32,
        )?;
        m.fact_window()?;
        m.delivery(self.nodes.count as u32)?;
        let p = &m.providers;
        p.validate()?;
        let c = &m.clients;
        c.validate_ranges()?;
        let valuation = c.valuation()?;
        m.sybil.validate(m.active_secs)?;
        m.entrap.check(m)?;
        if valuation.upper() < u128::from(p.price_min) {
            let field = if c.valuation.is_some() {
                "marketplace.clients.valuation.max"
            } else {
                "marketplace.clients.max_price"
            };
            return Err(invalid(
                field,
                format!(
                    "is below every provider's ask (price_min {}): nothing would ever match",
                    p.price_min
                ),
            ));
        }
        Ok(())
    }

    /// The marketplace configuration for `seed` (with
    /// `machine = "marketplace"`), with a built-in mechanism.
    pub fn marketplace_config(
        &self,
        seed: u64,
        replay: String,
    ) -> Result<MarketplaceConfig, ScenarioError> {
        self.marketplace_config_with(seed, replay, &MechanismRegistry::builtin())
    }

    /// The marketplace configuration for `seed`, its mechanism looked up
    /// in `mechanisms`.
    pub fn marketplace_config_with(
        &self,
        seed: u64,
        replay: String,
        mechanisms: &MechanismRegistry,
    ) -> Result<MarketplaceConfig, ScenarioError> {
        self.validate_marketplace(mechanisms)?;
        let m = self.marketplace.as_ref().expect("validated");
        let (p, c) = (&m.providers, &m.clients);
        Ok(MarketplaceConfig {
            seed,
            validators: self.nodes.count as u32,
            providers: p.count,
            clients: c.count,
            cheater_fraction: p.cheater_fraction,
            faulty_fraction: p.faulty_fraction,
            cheat_rate: p.cheat_rate,
            framing_clients: c.framing,
            careless_clients: c.careless,
            active_secs: m.active_secs,
            drain_secs: self.duration_ms / 1_000 - m.active_secs,
            job_interval_secs: c.job_interval_ms as f64 / 1e3,
            subtasks_per_lot: c.subtasks_per_lot,
            max_lots: c.max_lots,
            trap_targets: m.entrap.targets(c.subtasks_per_lot)?,
            verification: m.entrap.verification()?,
            stake_per_slot: u128::from(m.stake_per_slot),
            mix: CheaterMix {
                lazy: p.mix.lazy,
                trap_guessing: p.mix.trap_guessing,
                colluding: p.mix.colluding,
                bait_and_switch: p.mix.bait_and_switch,
            },
            bait_honest_tasks: p.bait_honest_tasks,
            colluder_honest_tasks: p.colluder_honest_tasks,
            provider_capacity: p.capacity,
            price_min: u128::from(p.price_min),
            price_max: u128::from(p.price_max),
            speed_min: p.speed_min,
            speed_max: p.speed_max,
            valuation: c.valuation()?,
            adaptive_pricing: m.adaptive_pricing,
            network: self.network_config()?,
            byzantine: self.behaviors(),
            consensus: self.consensus_params().config,
            faults: self.fault_schedule(),
            replay_command: Some(replay),
            gateways: m.gateways,
            fact_sources: m.fact_sources,
            fact_window: m.fact_window()?,
            delivery: m.delivery(self.nodes.count as u32)?,
            sybil: SybilConfig {
                whitewashers: m.sybil.whitewashers,
                max_identities: m.sybil.max_identities,
                newcomers: m.sybil.newcomers,
                join_from_secs: m.sybil.join_from_secs,
                join_until_secs: m.sybil.join_until_secs,
            },
            mechanism: mechanism(&m.mechanism, mechanisms)?,
            reputation_filter: m.reputation.filter()?,
            global_trust: m.reputation.global_trust()?,
            restart: self.restart_mode(),
            lose_unsynced: self.nodes.lose_unsynced,
            max_queue_len: self.max_queue_len,
            share_state: true,
            background_audits: true,
            engine_threads: 1,
        })
    }
}
