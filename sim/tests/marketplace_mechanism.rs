//! A library user's own clearing mechanism, registered under a name and
//! chosen by `marketplace.mechanism` in a scenario: validation against the
//! registry, and the validators clear with exactly that mechanism.

use idlegrid_market::{
    Ask, Bid, Clearing, ClearingContext, ClearingStats, MarketError, Mechanism, MechanismRegistry,
    prepare,
};
use idlegrid_sim::marketplace::run_marketplace;
use idlegrid_sim::scenario::Scenario;

/// Validates every batch like the built-ins, then trades nothing.
struct NoTrade;

impl Mechanism for NoTrade {
    fn name(&self) -> &'static str {
        "no_trade"
    }
    fn strongly_budget_balanced(&self) -> bool {
        true
    }
    fn clear(
        &self,
        asks: &[Ask],
        bids: &[Bid],
        ctx: &ClearingContext<'_>,
    ) -> Result<Clearing, MarketError> {
        let live = prepare(asks, bids, ctx)?;
        Ok(Clearing {
            matches: Vec::new(),
            stats: ClearingStats {
                expired: live.expired,
                ..ClearingStats::default()
            },
        })
    }
}

/// A marketplace small enough for a debug test.
fn scenario(mechanism: &str) -> String {
    format!(
        "name = \"custom\"\nduration_ms = 30_000\nmachine = \"marketplace\"\n[nodes]\ncount = 4\n\
         [marketplace]\nactive_secs = 6\nmechanism = \"{mechanism}\"\n\
         [marketplace.providers]\ncount = 12\n[marketplace.clients]\ncount = 4\njob_interval_ms = 1_000\n"
    )
}

fn registry() -> MechanismRegistry {
    let mut reg = MechanismRegistry::builtin();
    reg.register("no_trade", || Box::new(NoTrade)).unwrap();
    reg
}

fn market(mechanism: &str, reg: &MechanismRegistry) -> serde_json::Value {
    let s = Scenario::parse_with(&scenario(mechanism), reg).unwrap();
    let cfg = s.marketplace_config_with(1, "replay".into(), reg).unwrap();
    let r = run_marketplace(&cfg).unwrap();
    assert!(r.supply_conserved);
    r.summary_json()
}

#[test]
fn a_registered_mechanism_is_chosen_by_name_and_runs() {
    let reg = registry();
    let custom = market("no_trade", &reg);
    let builtin = market("k_double", &reg);
    assert_eq!(custom["market"]["mechanism"], "no_trade");
    assert_eq!(builtin["market"]["mechanism"], "k_double");
    // The same orders trade under the built-in and never under the custom
    // rule: the validators cleared with the registered mechanism.
    assert!(
        builtin["market"]["matches"].as_u64().unwrap() > 0,
        "{builtin}"
    );
    assert!(
        builtin["jobs"]["lots_settled"].as_u64().unwrap() > 0,
        "{builtin}"
    );
    assert_eq!(custom["market"]["matches"].as_u64(), Some(0), "{custom}");
    assert_eq!(custom["market"]["volume"], "0", "{custom}");
    assert_eq!(custom["jobs"]["lots_settled"].as_u64(), Some(0), "{custom}");
    assert!(custom["market"]["orders"].as_u64().unwrap() > 0, "{custom}");
    assert!(
        custom["jobs"]["lots_lapsed"].as_u64().unwrap() > 0,
        "{custom}"
    );
}

#[test]
fn unregistered_names_are_refused_listing_the_registered_ones() {
    // Without the registry the custom name is unknown, as is a typo with it.
    let e = Scenario::parse(&scenario("no_trade"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("marketplace.mechanism"), "{e}");
    assert!(
        e.contains("k_double, mcafee, pay_as_bid, pay_as_ask, got `no_trade`"),
        "{e}"
    );
    let e = Scenario::parse_with(&scenario("no_trad"), &registry())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("k_double, mcafee, pay_as_bid, pay_as_ask, no_trade, got `no_trad`"),
        "{e}"
    );
    // A scenario validated with the registry needs it for its configuration.
    let s = Scenario::parse_with(&scenario("no_trade"), &registry()).unwrap();
    assert!(s.marketplace_config(1, "replay".into()).is_err());
}
