//! The app/dataset registry: `SignedOp::from_bytes` on untrusted bytes
//! never panics and accepts only canonical encodings; a `Registry` fed a
//! fuzzer-chosen sequence of signed operations (right or wrong signer and
//! nonce, every operation kind, tiny limits) and raw decoded records never
//! panics, and `check_invariants` holds after every record.
#![no_main]

use std::sync::OnceLock;

use idlegrid_fuzz::market_fixture::good;
use idlegrid_market::OrderId;
use idlegrid_market::registry::{
    AccessPolicy, GoodKind, Grant, JobId, JobItem, Registry, RegistryLimits, RegistryOp, SignedOp,
};
use idlegrid_primitives::{Amount, Keypair, Seed, Timestamp};
use libfuzzer_sys::arbitrary::{Result as AResult, Unstructured};
use libfuzzer_sys::fuzz_target;

const KEYS: usize = 3;

fn keys() -> &'static [Keypair; KEYS] {
    static K: OnceLock<[Keypair; KEYS]> = OnceLock::new();
    K.get_or_init(|| std::array::from_fn(|i| Keypair::from_seed(&Seed::from_u64(4000 + i as u64))))
}

fn op(u: &mut Unstructured<'_>) -> AResult<RegistryOp> {
    let who = |u: &mut Unstructured<'_>| -> AResult<_> { Ok(keys()[u.choose_index(KEYS)?].account_id()) };
    let price = |u: &mut Unstructured<'_>| -> AResult<_> {
        Ok(Amount::new(if u.ratio(1, 8)? { u128::MAX } else { u128::from(u.arbitrary::<u16>()?) }))
    };
    let policy = |u: &mut Unstructured<'_>| -> AResult<_> {
        Ok(match u.int_in_range(0..=2u8)? {
            0 => AccessPolicy::Public,
            1 => AccessPolicy::PerJob,
            _ => AccessPolicy::AllowList((0..u.int_in_range(0..=4)?).map(|_| who(u)).collect::<AResult<_>>()?),
        })
    };
    Ok(match u.int_in_range(0..=6u8)? {
        0 => RegistryOp::Register {
            kind: if u.arbitrary()? { GoodKind::App } else { GoodKind::Dataset },
            digest: good(u)?,
            version: u.int_in_range(0..=2)?,
            price_per_use: price(u)?,
            policy: policy(u)?,
        },
        1 => RegistryOp::SetPrice { digest: good(u)?, price_per_use: price(u)? },
        2 => RegistryOp::SetPolicy { digest: good(u)?, policy: policy(u)? },
        3 => RegistryOp::Transfer { digest: good(u)?, to: who(u)? },
        4 => RegistryOp::Deprecate { digest: good(u)? },
        5 => RegistryOp::ApproveJob {
            digest: good(u)?,
            client: who(u)?,
            bid: OrderId::new(u.int_in_range(0..=3)?),
        },
        _ => RegistryOp::Grant(Grant {
            job: JobId::new(OrderId::new(u.int_in_range(0..=3)?), OrderId::new(u.int_in_range(0..=3)?)),
            grantee: who(u)?,
            item: if u.arbitrary()? { JobItem::Program } else { JobItem::Input(u.int_in_range(0..=4)?) },
        }),
    })
}

fn run(data: &[u8]) -> AResult<()> {
    let mut u = Unstructured::new(data);
    let mut limits = RegistryLimits::default();
    if u.arbitrary()? {
        // 0 included: a refused Register must leave no trace (regression
        // fuzz/regressions/market_registry-owner-slot.hex).
        limits.max_listings_per_owner = u.int_in_range(0..=3)?;
        limits.max_listings = u.int_in_range(0..=6)?;
        limits.max_allow_list = u.int_in_range(0..=3)?;
        limits.max_approvals_per_listing = u.int_in_range(0..=3)?;
        limits.max_accounts = u.int_in_range(0..=4)?;
        limits.max_price_per_use = Amount::new(u.arbitrary::<u16>()?.into());
    }
    let mut reg = Registry::new(limits);
    let mut now = Timestamp::ZERO;
    for _ in 0..48 {
        if u.is_empty() {
            break;
        }
        now = now.saturating_add(idlegrid_primitives::Duration::from_millis(u.arbitrary::<u8>()?.into()));
        let rec = if u.ratio(1, 8)? {
            let n = u.int_in_range(0..=200)?;
            match SignedOp::from_bytes(u.bytes(n)?) {
                Ok(r) => r,
                Err(_) => continue,
            }
        } else {
            let k = &keys()[u.choose_index(KEYS)?];
            let nonce = if u.ratio(1, 8)? { u.arbitrary()? } else { reg.next_nonce(&k.account_id()) };
            let signer = if u.ratio(1, 16)? { &keys()[u.choose_index(KEYS)?] } else { k };
            let mut r = SignedOp::sign(signer, nonce, op(&mut u)?);
            r.signer = k.account_id();
            r
        };
        let _ = reg.apply(now, &rec);
        if let Err(v) = reg.check_invariants() {
            panic!("registry invariant broken after {rec:?}: {v:?}");
        }
        let _ = (reg.state_digest(), reg.stats(), reg.listings().count());
    }
    Ok(())
}

fuzz_target!(
    init: idlegrid_fuzz::write_seeds([
        SignedOp::sign(&keys()[0], 0, RegistryOp::Deprecate { digest: idlegrid_primitives::Digest::hash(idlegrid_primitives::Domain::new("x"), b"y") }).to_bytes(),
        (0u8..=255).collect(),
        (0u8..=255).rev().collect(),
    ]),
    |data: &[u8]| {
        if let Ok(r) = SignedOp::from_bytes(data) {
            assert_eq!(r.to_bytes(), data, "accepted a non-canonical registry record");
            let _ = (r.verify(), r.digest(), r.op.name());
        }
        let _ = run(data);
    }
);
