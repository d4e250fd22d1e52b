//! Every example runs to completion on small inputs, and its report says
//! what the example claims.
use idlegrid_entrap::{Outcome, Verdict};
use idlegrid_examples::*;

#[test]
fn quickstart_slashes_the_cheater_and_conserves_supply() {
    let r = quickstart::run(quickstart::Options {
        verbose: false,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(r.matches, 3);
    assert_eq!(r.lots.len(), 3);
    assert_eq!(
        r.price.get(),
        18_000,
        "McAfee's uniform price for this book"
    );
    let cheater = &r.lots[1];
    assert!(cheater.guessed > 0);
    assert_eq!(cheater.outcome, Outcome::Admitted);
    assert!(cheater.paid.is_zero());
    // The whole 5 000 stake is gone: half to the client, half burned.
    assert_eq!(
        cheater.holdings_before.get() - cheater.holdings_after.get(),
        5_000
    );
    assert_eq!(r.slashed_to_client.get(), 2_500);
    assert_eq!(r.burned.get(), 2_500);
    let mut paid = 0;
    for honest in [&r.lots[0], &r.lots[2]] {
        assert_eq!(honest.outcome, Outcome::Clean);
        assert!(honest.traps > 0);
        assert!(honest.paid.get() > 0);
        // Paid for metered compute, at most the cap of every subtask.
        let slots = (honest.real + honest.traps) as u128;
        assert!(honest.paid.get() <= r.price.get() * slots / 10);
        assert_eq!(
            honest.holdings_after.get(),
            honest.holdings_before.get() + honest.paid.get()
        );
        assert!(honest.reputation_ppm > cheater.reputation_ppm);
        paid += honest.paid.get();
    }
    // The client paid the honest lots and got the cheater's slashed share;
    // its bonds, sealing bonds and the rest of the escrow came back.
    assert_eq!(
        r.client_after.get(),
        r.client_before.get() - paid + r.slashed_to_client.get()
    );
    assert_eq!(
        r.final_supply.get(),
        r.initial_supply.get() - r.burned.get()
    );
    assert!(r.honest_outputs_verified);
    assert!(r.validators_agree);
}

#[test]
fn quickstart_without_a_cheater_pays_everyone() {
    let opts = quickstart::Options {
        verbose: false,
        cheater: None,
        subtasks: 6,
        ..Default::default()
    };
    let r = quickstart::run(opts).unwrap();
    assert_eq!(r.lots.len(), 3);
    assert!(
        r.lots
            .iter()
            .all(|l| l.outcome == Outcome::Clean && l.holdings_after > l.holdings_before)
    );
    assert_eq!(r.burned.get(), 0);
    assert_eq!(r.final_supply, r.initial_supply);
    assert!(r.honest_outputs_verified);
}

#[test]
fn wasm_referee_punishes_the_party_at_fault() {
    let r = wasm_referee::run(wasm_referee::Options {
        verbose: false,
        ..Default::default()
    })
    .unwrap();
    let fee = idlegrid_node::market::MarketParams::DEFAULT
        .referee_fee
        .get();
    let (bond, stake) = (wasm_referee::BOND.get(), wasm_referee::STAKE.get());
    let f = &r.framing;
    assert_eq!(f.verdict, Verdict::ClientFramed);
    assert_eq!(f.committee.len(), 3);
    // Every seated referee re-executed, bit for bit alike, fuel included:
    // deterministic re-execution.
    assert_eq!(f.referee_outputs.len(), 3);
    assert!(f.referee_outputs.windows(2).all(|w| w[0] == w[1]));
    assert!(f.fuel.windows(2).all(|w| w[0] == w[1]) && f.fuel[0] > 0);
    // The framed provider is paid; the client's bond pays the three
    // majority referees their fee and the provider the rest.
    assert!(f.paid.get() > 0);
    assert_eq!(f.referee_fees.get(), 3 * fee);
    assert_eq!(f.bond_forfeited.get() + f.referee_fees.get(), bond);
    let paid = f.paid.get() as i128;
    assert_eq!(f.client_delta, -(paid + bond as i128));
    assert_eq!(f.provider_delta, paid + f.bond_forfeited.get() as i128);
    assert_eq!(f.burned.get(), 0);
    assert!(f.supply_conserved);
    let c = &r.cheating;
    assert_eq!(c.verdict, Verdict::ProviderCheated);
    assert_eq!(c.committee.len(), 3);
    assert!(c.referee_outputs.windows(2).all(|w| w[0] == w[1]));
    // The whole stake: half to the client, the referees' fees and the
    // rest burned; no pay.
    assert!(c.paid.is_zero());
    assert_eq!(c.provider_delta, -(stake as i128));
    assert_eq!(c.client_delta, stake as i128 / 2);
    assert_eq!(c.referee_fees.get(), 3 * fee);
    assert_eq!(c.burned.get() + c.referee_fees.get(), stake / 2);
    assert!(c.supply_conserved);
}

#[test]
fn python_job_merges_in_order_and_catches_a_cheater() {
    let small = python_job::Options {
        verbose: false,
        records: 12,
        chunk: 2,
        providers: 2,
        traps_per_provider: 1,
        ..Default::default()
    };
    let r = python_job::run(small).unwrap();
    assert_eq!(r.subtasks, 6);
    assert!(r.caught.is_empty());
    assert!(r.merged_equals_single);
    assert_eq!(r.merged, r.single_run);
    assert_eq!(String::from_utf8(r.merged).unwrap().lines().count(), 12);

    let r = python_job::run(python_job::Options {
        cheater: Some(1),
        ..small
    })
    .unwrap();
    assert_eq!(r.caught, vec![1]);
    assert_eq!(
        r.lots[1].2, 1,
        "the one trap in the cheater's lot is answered wrongly"
    );
    assert!(!r.merged_equals_single);
}

#[test]
fn custom_mechanism_sweep_is_sound() {
    let opts = custom_mechanism::Options {
        verbose: false,
        markets: 40,
        sizes: &[4, 16],
        ..Default::default()
    };
    let r = custom_mechanism::run(opts).unwrap();
    assert_eq!(r.rows.len(), 6);
    for row in &r.rows {
        assert_eq!(row.violations, 0, "{row:?}");
        assert!(
            row.efficiency > 0.5 && row.efficiency <= 1.0 + 1e-9,
            "{row:?}"
        );
        match row.mechanism {
            "k_double" => assert!((row.efficiency - 1.0).abs() < 1e-9),
            "median_price" => assert_eq!(row.surplus, 0.0),
            "mcafee" => assert!(row.surplus >= 0.0),
            _ => {}
        }
    }
    // Same seed, same table.
    assert_eq!(custom_mechanism::run(opts).unwrap().rows, r.rows);
}

#[test]
fn audit_properties_pass_with_a_seeded_runner() {
    let r = audit_properties::run(audit_properties::Options {
        cases: 32,
        verbose: false,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(r.results.len(), 2);
    for (name, _, failure) in &r.results {
        assert!(failure.is_none(), "{name}: {failure:?}");
    }
}

#[test]
fn local_cluster_validators_agree_over_tcp() {
    for opts in [
        local_cluster::Options {
            verbose: false,
            ..Default::default()
        },
        local_cluster::Options {
            validators: 5,
            clients: 3,
            transfers_per_client: 2,
            seed: 14,
            verbose: false,
            ..Default::default()
        },
    ] {
        let r = local_cluster::run(opts.clone()).unwrap();
        let n = opts.validators;
        let transfers = opts.clients * opts.transfers_per_client;
        assert_eq!(r.nodes.len(), n);
        assert_eq!(r.transfers, transfers);
        for node in &r.nodes {
            assert!(node.addr.ip().is_loopback());
            assert_eq!(node.connected_peers, n - 1, "everyone connected first");
            assert!(node.handshakes_ok >= (n - 1) as u64);
            assert_eq!(node.applied, transfers, "every transfer applied once");
            assert_eq!(node.rejected, 0);
            assert!(node.commits >= r.common_prefix);
        }
        assert!(r.common_prefix > 0);
        assert!(r.sequences_agree);
        assert!(r.states_agree);
        assert!(r.balances_as_expected);
    }
}
