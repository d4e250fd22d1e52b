//! Proptest strategies for entrap's public types (feature `strategies`).
//!
//! ```
//! use idlegrid_entrap::{settle, check_conservation, strategies};
//! use proptest::prelude::*;
//!
//! proptest!(|(terms in strategies::terms(), locked in strategies::locked(), outcome in strategies::outcome())| {
//!     let effects = settle(&terms, &locked, outcome).unwrap();
//!     prop_assert!(check_conservation(&locked, &effects).is_ok());
//! });
//! ```

use idlegrid_primitives::{Amount, Duration, strategies as prim};
use proptest::prelude::*;

use crate::optimizer::Params;
use crate::referee::Verdict;
use crate::settle::{Locked, Outcome};
use crate::terms::{Deadlines, Terms};
use crate::types::{Bps, JobId, SubtaskIndex, TrapCount};

/// Any job id.
pub fn job_id() -> impl Strategy<Value = JobId> {
    any::<u64>().prop_map(JobId::new)
}

/// Any subtask index below `slots`.
pub fn subtask_index(slots: u32) -> impl Strategy<Value = SubtaskIndex> {
    (0..slots.max(1)).prop_map(SubtaskIndex::new)
}

/// Any trap count up to `max`.
pub fn trap_count(max: u32) -> impl Strategy<Value = TrapCount> {
    (0..=max).prop_map(TrapCount::new)
}

/// Any valid share.
pub fn bps() -> impl Strategy<Value = Bps> {
    (0u16..=10_000).prop_map(|b| Bps::new(b).expect("in range"))
}

/// An amount that leaves room for sums of a few of them.
pub fn amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        3 => (0u128..1_000_000).prop_map(Amount::new),
        1 => (0u128..=u128::MAX / 8).prop_map(Amount::new),
    ]
}

/// Any pots whose total fits in an [`Amount`].
pub fn locked() -> impl Strategy<Value = Locked> {
    (amount(), amount(), amount()).prop_map(|(escrow, client_bond, stake)| Locked {
        escrow,
        client_bond,
        stake,
    })
}

/// Any stage deadlines (1 ms to 1 h each).
pub fn deadlines() -> impl Strategy<Value = Deadlines> {
    proptest::array::uniform7(1u64..3_600_000).prop_map(|d| Deadlines {
        stake: Duration::from_millis(d[0]),
        output_commitment: Duration::from_millis(d[1]),
        output_reveal: Duration::from_millis(d[2]),
        trap_reveal: Duration::from_millis(d[3]),
        accusations: Duration::from_millis(d[4]),
        response: Duration::from_millis(d[5]),
        votes: Duration::from_millis(d[6]),
    })
}

/// Valid terms between two distinct parties.
pub fn terms() -> impl Strategy<Value = Terms> {
    (
        job_id(),
        prim::bytes32(),
        (0u128..1_000_000).prop_map(Amount::new),
        amount(),
        amount(),
        (bps(), bps()),
        deadlines(),
        1u8..=15,
    )
        .prop_map(
            |(job, party, pay, client_bond, stake, (slash, penalty), deadlines, size)| {
                let mut other = party;
                other[0] ^= 0xff;
                Terms {
                    job,
                    client: idlegrid_primitives::AccountId::from_bytes(party),
                    provider: idlegrid_primitives::AccountId::from_bytes(other),
                    pay_per_subtask: pay,
                    client_bond,
                    stake,
                    slash_to_client: slash,
                    no_show_penalty: penalty,
                    deadlines,
                    committee_size: size,
                }
            },
        )
}

/// Any verdict.
pub fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        Just(Verdict::ProviderCheated),
        Just(Verdict::ClientFramed),
        Just(Verdict::BothAtFault),
        Just(Verdict::NotProven),
    ]
}

/// Any outcome.
pub fn outcome() -> impl Strategy<Value = Outcome> {
    prop_oneof![
        Just(Outcome::ProviderNoShow),
        Just(Outcome::ProviderDefaulted),
        Just(Outcome::ClientAbandoned),
        Just(Outcome::Clean),
        Just(Outcome::Admitted),
        verdict().prop_map(Outcome::Judged),
    ]
}

/// Optimizer parameters in a realistic range (pay at or above cost), half
/// of them with cross-check traps of reliability in `[0.6, 1)`.
pub fn params() -> impl Strategy<Value = Params> {
    (
        1u32..300,
        1u128..100,
        0u128..100,
        0u128..10_000,
        0u128..10_000,
        0u128..200,
        0.0f64..0.95,
        (100u16..=5_000).prop_map(|b| Bps::new(b).expect("in range")),
        prop_oneof![Just(1.0f64), 0.6f64..1.0],
    )
        .prop_map(|(n, c, margin, stake, rep, b, cred, r_min, h)| {
            let mut p = Params::new(
                n,
                Amount::new(c),
                Amount::new(c + margin),
                Amount::new(stake),
            );
            p.reputation_value = Amount::new(rep);
            p.gain_per_corruption = Amount::new(b);
            p.credibility = cred;
            p.min_corrupt_fraction = r_min;
            p.trap_reliability = h;
            // Cross-check sweeps cost O(N·k) per k: keep the search short.
            p.max_traps = if h < 1.0 { 64 } else { 512 };
            p
        })
}
