//! How much memory a scenario needs, estimated before it runs, so that a
//! run that cannot fit is refused up front instead of being killed by the
//! OS hours in.
//!
//! The estimate is a fitted model of the peak resident set of a
//! `marketplace` scenario over its scale: `V` validators, `P` providers,
//! `C` clients (every one a node) and `T` virtual seconds. Every simulated
//! validator keeps its own ledger with accounts and records per provider
//! and per client, and its history grows with the run; every provider is a
//! light node of its own. The model is
//!
//! ```text
//! peak MiB = base + a·V + b·V·T + c·V·P + d·V·C + e·P
//! ```
//!
//! fitted by least squares over scaled-down runs measured with
//! `/usr/bin/time -v` (the fit, its residuals and the runs it was checked
//! against are in the README's section on scale). It was fitted before
//! validators shared identical replicated state
//! ([`idlegrid_node::validator::StateSharing`]): re-measured since, it
//! over-estimates provider-heavy runs by up to 2.2× and under-estimates
//! an 80-validator one by 15 % (consensus memory, V² in all, now
//! dominates there); the README lists those runs. Other machines are not
//! estimated: the `consensus` machine's memory follows its transaction load
//! rather than these counts (the model gives 80 MiB for the `consensus`
//! scenario, which peaks at 204 MiB), and `gossip` and `crashes` scenarios
//! are small by construction.
//!
//! Everything here is pure: the driver (the `idlegrid-sim` command) reads
//! the machine's available memory and passes it in.

use std::fmt;

use super::{MachineKind, Scenario};

const MIB: f64 = 1024.0 * 1024.0;

/// The size of a scenario as far as memory goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scale {
    /// Validators (`nodes.count`).
    pub validators: u64,
    /// Providers (`marketplace.providers.count`, plus every key a
    /// whitewasher may use and the newcomers; 0 without a marketplace).
    pub providers: u64,
    /// Clients (`marketplace.clients.count`).
    pub clients: u64,
    /// Virtual seconds (`duration_ms`, rounded up).
    pub virtual_secs: u64,
}

/// Coefficients of the peak-RSS model, in MiB (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MemoryModel {
    /// Fixed cost: the binary, the engine, the network model.
    pub base: f64,
    /// Per validator: its DAG, its ledger's fixed part, its queues.
    pub per_validator: f64,
    /// Per validator and virtual second: what a validator's history and
    /// the run's records keep.
    pub per_validator_second: f64,
    /// Per validator and provider: a provider's account and records in
    /// one validator's ledger.
    pub per_validator_provider: f64,
    /// Per validator and client.
    pub per_validator_client: f64,
    /// Per provider: the provider's own light node.
    pub per_provider: f64,
}

/// The model fitted on this project's runs (see the module docs and the
/// README's section on scale): no fixed cost, 1.03 MiB per validator,
/// 0.074 MiB per validator-second, 5.4 KiB per validator and provider,
/// 22 KiB per validator and client, 61 KiB per provider.
pub const FITTED: MemoryModel = MemoryModel {
    base: 0.0,
    per_validator: 1.026,
    per_validator_second: 0.0742,
    per_validator_provider: 0.005_288,
    per_validator_client: 0.021_60,
    per_provider: 0.059_09,
};

/// A scenario the model says will not fit.
#[derive(Debug, Clone, PartialEq)]
pub struct TooLarge {
    /// The scenario's name.
    pub name: String,
    /// Its scale.
    pub scale: Scale,
    /// The estimated peak resident set.
    pub estimate_bytes: u64,
    /// The memory the driver found available.
    pub available_bytes: u64,
    /// The most providers that fit with the same validators and clients
    /// (`None`: not even zero; always `None` without a marketplace).
    pub largest_providers: Option<u64>,
    /// The most validators that fit with the same providers and clients
    /// (`None`: not even one).
    pub largest_validators: Option<u64>,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.scale;
        write!(
            f,
            "scenario `{}` ({} validators, {} providers, {} clients, {} s virtual) needs an \
             estimated {:.0} MiB at its peak but {:.0} MiB are available; {} (pass \
             --ignore-memory-estimate to run it anyway)",
            self.name,
            s.validators,
            s.providers,
            s.clients,
            s.virtual_secs,
            self.estimate_bytes as f64 / MIB,
            self.available_bytes as f64 / MIB,
            advice(s, self.largest_providers, self.largest_validators),
        )
    }
}

impl std::error::Error for TooLarge {}

fn advice(scale: &Scale, providers: Option<u64>, validators: Option<u64>) -> String {
    let mut parts = Vec::new();
    if let Some(p) = providers.filter(|_| scale.providers > 0) {
        parts.push(format!(
            "at {} validators and {} clients at most {p} providers fit",
            scale.validators, scale.clients
        ));
    }
    match validators {
        Some(v) => parts.push(format!(
            "at {} providers and {} clients at most {v} validators fit",
            scale.providers, scale.clients
        )),
        None => parts.push("not even one validator fits".to_string()),
    }
    parts.join("; ")
}

impl MemoryModel {
    /// The estimated peak resident set of a run of this scale, in bytes.
    pub fn estimate_bytes(&self, s: Scale) -> u64 {
        let (v, p, c) = (s.validators as f64, s.providers as f64, s.clients as f64);
        let t = s.virtual_secs as f64;
        let mib = self.base
            + self.per_validator * v
            + self.per_validator_second * v * t
            + self.per_validator_provider * v * p
            + self.per_validator_client * v * c
            + self.per_provider * p;
        // Saturating: an absurd scale estimates to u64::MAX, never wraps.
        (mib.max(0.0) * MIB) as u64
    }

    /// The largest provider count that fits in `available` bytes with the
    /// scale's validators and clients (`None` if not even zero fits).
    pub fn largest_providers(&self, s: Scale, available: u64) -> Option<u64> {
        let fits = |p| self.estimate_bytes(Scale { providers: p, ..s }) <= available;
        largest(fits, 0)
    }

    /// The largest validator count (at least one) that fits in `available`
    /// bytes with the scale's providers and clients.
    pub fn largest_validators(&self, s: Scale, available: u64) -> Option<u64> {
        let fits = |v| self.estimate_bytes(Scale { validators: v, ..s }) <= available;
        largest(fits, 1)
    }
}

/// The largest `x >= lo` with `fits(x)` for a `fits` that holds up to some
/// point and not beyond (the estimate grows with every count).
fn largest(fits: impl Fn(u64) -> bool, lo: u64) -> Option<u64> {
    if !fits(lo) {
        return None;
    }
    let (mut ok, mut bad) = (lo, lo.max(1));
    while fits(bad) {
        ok = bad;
        if bad >= u64::MAX / 2 {
            return Some(bad);
        }
        bad *= 2;
    }
    while bad - ok > 1 {
        let mid = ok + (bad - ok) / 2;
        if fits(mid) {
            ok = mid;
        } else {
            bad = mid;
        }
    }
    Some(ok)
}

impl Scenario {
    /// The scenario's scale, if the memory model covers its machine (only
    /// `marketplace`; see the module docs).
    pub fn scale(&self) -> Option<Scale> {
        if self.machine != MachineKind::Marketplace {
            return None;
        }
        let m = self.marketplace.as_ref()?;
        let sybil = u64::from(m.sybil.whitewashers) * u64::from(m.sybil.max_identities)
            + u64::from(m.sybil.newcomers);
        Some(Scale {
            validators: self.nodes.count as u64,
            providers: u64::from(m.providers.count) + sybil,
            clients: u64::from(m.clients.count),
            virtual_secs: self.duration_ms.div_ceil(1000),
        })
    }

    /// Refuses the scenario if `model` estimates more than `available`
    /// bytes at its peak; otherwise returns the estimate (`None` for a
    /// machine the model does not cover).
    pub fn check_memory(
        &self,
        model: &MemoryModel,
        available: u64,
    ) -> Result<Option<u64>, Box<TooLarge>> {
        let Some(scale) = self.scale() else {
            return Ok(None);
        };
        let estimate = model.estimate_bytes(scale);
        if estimate <= available {
            return Ok(Some(estimate));
        }
        Err(Box::new(TooLarge {
            name: self.name.clone(),
            scale,
            estimate_bytes: estimate,
            available_bytes: available,
            largest_providers: model.largest_providers(scale, available),
            largest_validators: model.largest_validators(scale, available),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    /// 100 MiB + 10 MiB per validator + 1/8 MiB per validator-second +
    /// 1 KiB per validator and provider + 2 KiB per validator and client +
    /// 0.5 MiB per provider.
    const MODEL: MemoryModel = MemoryModel {
        base: 100.0,
        per_validator: 10.0,
        per_validator_second: 0.125,
        per_validator_provider: 1.0 / 1024.0,
        per_validator_client: 2.0 / 1024.0,
        per_provider: 0.5,
    };

    /// A 60-second run of this size.
    fn scale(validators: u64, providers: u64, clients: u64) -> Scale {
        Scale {
            validators,
            providers,
            clients,
            virtual_secs: 60,
        }
    }

    #[test]
    fn estimate_is_the_model() {
        // 100 + 10·4 + 4·60/8 + 4·1024/1024 + 4·512·2/1024 + 0.5·1024 MiB.
        let mib = 100.0 + 40.0 + 30.0 + 4.0 + 4.0 + 512.0;
        assert_eq!(
            MODEL.estimate_bytes(scale(4, 1024, 512)),
            (mib * MIB) as u64
        );
        assert_eq!(MODEL.estimate_bytes(scale(0, 0, 0)), 100 << 20);
        // An absurd scale saturates instead of wrapping.
        assert_eq!(
            MODEL.estimate_bytes(scale(u64::MAX, u64::MAX, u64::MAX)),
            u64::MAX
        );
    }

    /// The fitted model against runs measured with `/usr/bin/time -v`
    /// (README, section on scale): within 10 % of the default run and of
    /// a 50-validator marketplace; `large` needs more than 3 GiB.
    #[test]
    fn fitted_model_matches_measured_runs() {
        let close = |s: Scale, measured_mib: f64| {
            let est = FITTED.estimate_bytes(s) as f64 / MIB;
            assert!(
                (est / measured_mib - 1.0).abs() < 0.1,
                "{s:?}: {est:.0} MiB vs {measured_mib:.0} measured"
            );
        };
        let default = Scenario::parse(crate::scenario::DEFAULT_SCENARIO).expect("valid");
        close(default.scale().expect("marketplace"), 271.5);
        close(
            Scale {
                validators: 50,
                providers: 1_000,
                clients: 100,
                virtual_secs: 30,
            },
            627.3,
        );
        let large = Scenario::named_or_file("large").expect("built in");
        let err = large
            .check_memory(&FITTED, 3 << 30)
            .expect_err("large does not fit in 3 GiB");
        assert!(err.largest_providers.is_some_and(|p| p < 10_000));
    }

    #[test]
    fn largest_sizes_are_tight() {
        let s = scale(100, 10_000, 1_000);
        // 100 validators and 1 000 clients alone need 2 045 MiB.
        assert_eq!(MODEL.largest_providers(s, 2_000 << 20), None);
        assert_eq!(MODEL.largest_providers(s, 2_046 << 20), Some(1));
        for available in [3 * GIB, 16 * GIB] {
            let p = MODEL.largest_providers(s, available).expect("fits with 0");
            assert!(MODEL.estimate_bytes(scale(100, p, 1_000)) <= available);
            assert!(MODEL.estimate_bytes(scale(100, p + 1, 1_000)) > available);
            let v = MODEL.largest_validators(s, available);
            if let Some(v) = v {
                assert!(MODEL.estimate_bytes(scale(v, 10_000, 1_000)) <= available);
                assert!(MODEL.estimate_bytes(scale(v + 1, 10_000, 1_000)) > available);
            }
        }
        // Not even the fixed cost fits.
        assert_eq!(MODEL.largest_providers(s, 50 << 20), None);
        assert_eq!(MODEL.largest_validators(s, 50 << 20), None);
    }

    fn scenario(text: &str) -> Scenario {
        Scenario::parse(text).expect("valid")
    }

    const MARKET: &str = r#"
        name = "m"
        duration_ms = 60000
        machine = "marketplace"
        [nodes]
        count = 100
        [marketplace]
        active_secs = 30
        [marketplace.providers]
        count = 10000
        [marketplace.clients]
        count = 1000
    "#;

    #[test]
    fn refusal_names_the_estimate_and_what_fits() {
        let s = scenario(MARKET);
        assert_eq!(s.scale(), Some(scale(100, 10_000, 1_000)));
        let need = MODEL.estimate_bytes(scale(100, 10_000, 1_000));
        assert_eq!(s.check_memory(&MODEL, need), Ok(Some(need)));
        let err = s
            .check_memory(&MODEL, need - 1)
            .expect_err("one byte short");
        assert_eq!(err.estimate_bytes, need);
        assert_eq!(err.available_bytes, need - 1);
        let p = err.largest_providers.expect("fewer providers fit");
        assert!(p < 10_000 && p > 9_000, "{p}");
        assert_eq!(err.largest_validators, Some(99));
        let text = err.to_string();
        for needle in [
            "scenario `m` (100 validators, 10000 providers, 1000 clients, 60 s virtual)",
            &format!("at most {p} providers fit"),
            "at most 99 validators fit",
            "--ignore-memory-estimate",
        ] {
            assert!(text.contains(needle), "{needle:?} not in {text:?}");
        }
    }

    #[test]
    fn only_marketplaces_are_estimated() {
        let err = scenario(MARKET)
            .check_memory(&MODEL, 0)
            .expect_err("nothing fits in 0");
        assert_eq!(err.largest_providers, None);
        assert!(err.to_string().contains("not even one validator fits"));
        for machine in ["consensus", "gossip"] {
            let s = scenario(&format!(
                "name = \"x\"\nduration_ms = 1000\nmachine = \"{machine}\"\n[nodes]\ncount = 20\n"
            ));
            assert_eq!(s.scale(), None);
            assert_eq!(s.check_memory(&MODEL, 0), Ok(None));
        }
    }

    #[test]
    fn whitewashers_count_with_every_key() {
        let text = format!(
            "{MARKET}\n[marketplace.sybil]\nwhitewashers = 10\nmax_identities = 3\nnewcomers = 5\njoin_from_secs = 1\njoin_until_secs = 20\n"
        );
        assert_eq!(scenario(&text).scale().map(|s| s.providers), Some(10_035));
    }
}
