//! `audit_properties`: an auditor reuses the crates' exported proptest
//! strategies (the `strategies` features) to check properties of their own.
//!
//! Two properties, each a plain function returning `Result<(), TestCaseError>`
//! so the same code runs under `proptest!` (in `tests/audit_properties.rs`)
//! and under an explicit, seeded [`TestRunner`] (the example binary):
//!
//! 1. [`mcafee_reduces_at_most_one_trade`] — over
//!    `idlegrid_market::strategies::unit_market`: McAfee is individually
//!    rational and weakly budget balanced, and it trades either all `k`
//!    efficient units or `k − 1` (never fewer), where `k` is the k-double
//!    auction's volume;
//! 2. [`garbage_transactions_change_nothing`] — over
//!    `idlegrid_dag_ledger::ledger::strategies::{genesis, signed_transaction}`:
//!    a batch of arbitrary signed transactions from strangers (random keys,
//!    random signatures) is rejected entirely: the state digest equals that of
//!    an empty batch in the same epoch, and the supply is unchanged.

use std::error::Error;

use idlegrid_dag_ledger::ledger::{
    BatchContext, Genesis, Host, Ledger, NoApps, SignedTransaction, check_all,
    strategies as ledger_strategies,
};
use idlegrid_market::strategies::unit_market;
use idlegrid_market::{
    Ask, Bid, ClearingContext, FlatReputation, KDouble, Limits, McAfee, Mechanism, Reputation,
    check_clearing,
};
use idlegrid_primitives::{Epoch, Timestamp};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

/// Property 1 (see the module docs).
pub fn mcafee_reduces_at_most_one_trade(asks: &[Ask], bids: &[Bid]) -> Result<(), TestCaseError> {
    let rep = FlatReputation(Reputation::MAX);
    let ctx = ClearingContext {
        now: Timestamp::ZERO,
        limits: Limits::default(),
        reputation: &rep,
    };
    let mcafee = McAfee
        .clear(asks, bids, &ctx)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let efficient = KDouble::half()
        .clear(asks, bids, &ctx)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    check_clearing(asks, bids, &mcafee, &ctx, false)
        .map_err(|v| TestCaseError::fail(format!("{v:?}")))?;
    let (m, k) = (mcafee.stats.volume_slots, efficient.stats.volume_slots);
    prop_assert!(m <= k, "McAfee traded {m} > k = {k}");
    prop_assert!(m + 1 >= k, "McAfee traded {m}, more than one below k = {k}");
    prop_assert!(mcafee.stats.welfare <= efficient.stats.welfare);
    Ok(())
}

/// Property 2 (see the module docs).
pub fn garbage_transactions_change_nothing(
    genesis: Genesis,
    txs: &[SignedTransaction],
) -> Result<(), TestCaseError> {
    let Ok(mut ledger) = Ledger::new(genesis) else {
        return Ok(()); // the strategy may produce genesis the ledger refuses
    };
    // The state digest commits to the epoch, so the reference is the same
    // ledger after an *empty* batch in the same epoch (a first version of
    // this property compared with the pre-batch digest and failed).
    let mut reference = Ledger::from_snapshot(&ledger.snapshot(), usize::MAX)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let supply = ledger.total_supply();
    let ctx = BatchContext::at(Epoch::new(1), Timestamp::from_millis(1));
    let mut apps = NoApps;
    let empty: [SignedTransaction; 0] = [];
    let digest = reference
        .apply_signed_batch(ctx, &empty, &mut Host::default_for(&mut apps))
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .state_digest;
    let result = ledger
        .apply_signed_batch(ctx, txs, &mut Host::default_for(&mut apps))
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(result.applied(), 0, "a stranger's transaction was applied");
    prop_assert_eq!(ledger.state_digest(), digest);
    prop_assert_eq!(ledger.total_supply(), supply);
    check_all(&ledger).map_err(|v| TestCaseError::fail(format!("{v:?}")))?;
    Ok(())
}

/// The strategy of property 1.
pub fn markets() -> impl Strategy<Value = (Vec<Ask>, Vec<Bid>)> {
    unit_market(12, 12)
}

/// The strategy of property 2.
pub fn ledgers_and_garbage() -> impl Strategy<Value = (Genesis, Vec<SignedTransaction>)> {
    (
        ledger_strategies::genesis(),
        prop::collection::vec(ledger_strategies::signed_transaction(), 0..8),
    )
}

/// Options of the example.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Cases per property.
    pub cases: u32,
    /// Seed of the runner's RNG (same seed, same cases).
    pub seed: u64,
    /// Print results.
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            cases: 256,
            seed: 2026,
            verbose: true,
        }
    }
}

/// What the runs found.
#[derive(Clone, Debug)]
pub struct Report {
    /// (property, cases run, failure message if any).
    pub results: Vec<(&'static str, u32, Option<String>)>,
}

fn runner(opts: &Options) -> TestRunner {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&opts.seed.to_le_bytes());
    let config = Config {
        cases: opts.cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed))
}

/// Runs both properties with a seeded [`TestRunner`] and prints the result.
pub fn run(opts: Options) -> Result<Report, Box<dyn Error>> {
    let mut results = Vec::new();
    let r1 = runner(&opts).run(&markets(), |(a, b)| {
        mcafee_reduces_at_most_one_trade(&a, &b)
    });
    results.push((
        "mcafee_reduces_at_most_one_trade",
        opts.cases,
        r1.err().map(|e| e.to_string()),
    ));
    let r2 = runner(&opts).run(&ledgers_and_garbage(), |(g, txs)| {
        garbage_transactions_change_nothing(g, &txs)
    });
    results.push((
        "garbage_transactions_change_nothing",
        opts.cases,
        r2.err().map(|e| e.to_string()),
    ));
    if opts.verbose {
        for (name, cases, failure) in &results {
            match failure {
                None => println!("PASS {name}: {cases} cases (seed {})", opts.seed),
                Some(f) => println!("FAIL {name}: {f}"),
            }
        }
    }
    Ok(Report { results })
}
