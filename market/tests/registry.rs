//! The app and dataset registry: records, access policies, quotes fixed at
//! match time, settlement that pays owners exactly and conserves money.

use idlegrid_market::registry::*;
use idlegrid_market::strategies::{unit_ask, unit_bid};
use idlegrid_market::*;
use idlegrid_primitives::{AccountId, Amount, Digest, Keypair, Seed, Timestamp};
use proptest::prelude::*;

const NOW: Timestamp = Timestamp::ZERO;

fn key(n: u64) -> Keypair {
    Keypair::from_seed(&Seed::from_u64(n).derive("registry-test"))
}

/// Signs and applies `op` as `k` with its next sequence number.
fn apply(reg: &mut Registry, k: &Keypair, op: RegistryOp) -> Result<(), RegistryError> {
    let rec = SignedOp::sign(k, reg.next_nonce(&k.account_id()), op);
    reg.apply(NOW, &rec)
}

fn register(
    reg: &mut Registry,
    owner: &Keypair,
    kind: GoodKind,
    content: &[u8],
    price: u128,
    policy: AccessPolicy,
) -> Digest {
    let digest = content_digest(kind, content);
    apply(
        reg,
        owner,
        RegistryOp::Register {
            kind,
            digest,
            version: 1,
            price_per_use: Amount::new(price),
            policy,
        },
    )
    .unwrap();
    digest
}

fn ctx(rep: &FlatReputation) -> ClearingContext<'_> {
    ClearingContext {
        now: NOW,
        limits: Limits::default(),
        reputation: rep,
    }
}

/// Clears one provider ask against `bids` through the registry.
fn clear(reg: &Registry, bids: &[Bid]) -> GoodsClearing {
    let provider = key(900).account_id();
    let asks = vec![unit_ask(1000, 10, 100, provider)];
    let rep = FlatReputation(Reputation::MAX);
    clear_with_goods(&PayAsBid, &asks, bids, &ctx(&rep), reg).unwrap()
}

struct World {
    reg: Registry,
    dev: Keypair,
    curator: Keypair,
    app: Digest,
    data: Digest,
}

fn world() -> World {
    let mut reg = Registry::new(RegistryLimits::default());
    let (dev, curator) = (key(1), key(2));
    let app = register(
        &mut reg,
        &dev,
        GoodKind::App,
        b"wasm",
        7,
        AccessPolicy::Public,
    );
    let data = register(
        &mut reg,
        &curator,
        GoodKind::Dataset,
        b"rows",
        3,
        AccessPolicy::Public,
    );
    World {
        reg,
        dev,
        curator,
        app,
        data,
    }
}

fn goods_bid(id: u64, client: AccountId, app: Digest, data: Digest, cap: u128) -> Bid {
    unit_bid(id, 20, 2, client)
        .with_app(app)
        .with_dataset(data)
        .with_max_fee(Amount::new(cap))
}

#[test]
fn owners_are_paid_exactly_their_price_per_use() {
    let mut w = world();
    let client = key(10).account_id();
    let out = clear(&w.reg, &[goods_bid(1, client, w.app, w.data, 10)]);
    assert!(out.rejected.is_empty());
    let m = &out.clearing.matches[0];
    assert_eq!(m.fees.len(), 2);
    assert_eq!(m.fees_per_slot(), Ok(Amount::new(10)));
    // 2 slots × 20 per second × 60 s + 2 slots × (7 + 3) per use.
    assert_eq!(m.escrow_total(60), Ok(Amount::new(2400 + 20)));
    let job = w.reg.open_job(NOW, m).unwrap();
    let p = w.reg.settle(&job, 60).unwrap();
    assert_eq!(
        p.owners,
        vec![
            (w.dev.account_id(), Amount::new(14)),
            (w.curator.account_id(), Amount::new(6))
        ]
    );
    assert_eq!(p.provider_pay, Amount::new(2400));
    assert_eq!(check_payout(m, 60, &p), Ok(()));
    assert_eq!(w.reg.listing(&w.app).unwrap().revenue, Amount::new(14));
    assert_eq!(w.reg.listing(&w.app).unwrap().uses, 1);
    let s = w.reg.stats();
    assert_eq!((s.apps, s.datasets, s.settled_jobs), (1, 1, 1));
    assert_eq!(s.owner_revenue, Amount::new(20));
    // Nothing is paid twice.
    assert_eq!(
        w.reg.settle(&job, 60),
        Err(RegistryError::AlreadySettled(job))
    );
    assert_eq!(
        w.reg.open_job(NOW, m),
        Err(RegistryError::AlreadySettled(job))
    );
}

#[test]
fn a_plain_bid_pays_no_fees() {
    let w = world();
    let out = clear(&w.reg, &[unit_bid(1, 20, 1, key(10).account_id())]);
    let m = &out.clearing.matches[0];
    assert!(m.fees.is_empty());
    assert_eq!(m.escrow_total(5).unwrap(), m.buyer_total(5).unwrap());
}

#[test]
fn allow_list_is_enforced() {
    let mut w = world();
    let (listed, other) = (key(10).account_id(), key(11).account_id());
    let private = register(
        &mut w.reg,
        &w.dev,
        GoodKind::App,
        b"private app",
        1,
        AccessPolicy::AllowList(vec![listed]),
    );
    let bids = [
        unit_bid(1, 20, 1, listed)
            .with_app(private)
            .with_max_fee(Amount::new(1)),
        unit_bid(2, 20, 1, other)
            .with_app(private)
            .with_max_fee(Amount::new(1)),
    ];
    let out = clear(&w.reg, &bids);
    assert_eq!(out.clearing.matches.len(), 1);
    assert_eq!(out.clearing.matches[0].client, listed);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].bid, OrderId::new(2));
    assert!(matches!(
        out.rejected[0].reason,
        RegistryError::NotAllowed { client, .. } if client == other
    ));
    // Too long or duplicated allow-lists are refused.
    let long = AccessPolicy::AllowList(vec![other; 2]);
    assert!(matches!(
        apply(
            &mut w.reg,
            &w.dev,
            RegistryOp::SetPolicy {
                digest: private,
                policy: long
            }
        ),
        Err(RegistryError::Invalid(_))
    ));
    let huge = AccessPolicy::AllowList(
        (0..300u16)
            .map(|i| {
                let mut b = [0u8; 32];
                b[..2].copy_from_slice(&i.to_le_bytes());
                AccountId::from_bytes(b)
            })
            .collect(),
    );
    assert!(matches!(
        apply(
            &mut w.reg,
            &w.dev,
            RegistryOp::SetPolicy {
                digest: private,
                policy: huge
            }
        ),
        Err(RegistryError::Full { .. })
    ));
}

#[test]
fn per_job_approval_admits_one_job() {
    let mut w = world();
    let client = key(10).account_id();
    let ds = register(
        &mut w.reg,
        &w.curator,
        GoodKind::Dataset,
        b"medical",
        5,
        AccessPolicy::PerJob,
    );
    let bid = |id| {
        unit_bid(id, 20, 1, client)
            .with_dataset(ds)
            .with_max_fee(Amount::new(5))
    };
    assert!(matches!(
        clear(&w.reg, &[bid(1)]).rejected[0].reason,
        RegistryError::NotAllowed { .. }
    ));
    let approve = RegistryOp::ApproveJob {
        digest: ds,
        client,
        bid: OrderId::new(1),
    };
    // Only the owner approves.
    assert!(matches!(
        apply(&mut w.reg, &w.dev, approve.clone()),
        Err(RegistryError::NotOwner { .. })
    ));
    apply(&mut w.reg, &w.curator, approve).unwrap();
    let out = clear(&w.reg, &[bid(1), bid(2)]);
    assert_eq!(out.clearing.matches.len(), 1);
    assert_eq!(out.rejected.len(), 1);
    // The approval is used up by the job.
    w.reg.open_job(NOW, &out.clearing.matches[0]).unwrap();
    assert!(
        w.reg
            .quote(&client, OrderId::new(1), &bid(1).goods)
            .is_err()
    );
}

#[test]
fn unknown_wrong_kind_and_deprecated_goods_are_typed_errors() {
    let mut w = world();
    let client = key(10).account_id();
    let unknown = content_digest(GoodKind::App, b"never registered");
    let q = |reg: &Registry, g: JobGoods| reg.quote(&client, OrderId::new(1), &g);
    let goods = |app: Option<Digest>, ds: Vec<Digest>| JobGoods {
        app,
        datasets: ds,
        max_fee_per_slot: Amount::new(100),
    };
    assert_eq!(
        q(&w.reg, goods(Some(unknown), vec![])),
        Err(RegistryError::UnknownDigest(unknown))
    );
    assert!(matches!(
        q(&w.reg, goods(Some(w.data), vec![])),
        Err(RegistryError::WrongKind {
            expected: GoodKind::App,
            ..
        })
    ));
    assert!(matches!(
        q(&w.reg, goods(None, vec![w.data, w.data])),
        Err(RegistryError::BadGoods { .. })
    ));
    // Unknown digests in a sealed batch without a registry: left out.
    let out = clear_with_goods(
        &PayAsBid,
        &[unit_ask(1000, 10, 1, key(900).account_id())],
        &[unit_bid(1, 20, 1, client).with_app(unknown)],
        &ctx(&FlatReputation(Reputation::MAX)),
        &NoGoods,
    )
    .unwrap();
    assert!(out.clearing.matches.is_empty());
    assert_eq!(
        out.rejected[0].reason,
        RegistryError::UnknownDigest(unknown)
    );
    // Deprecation stops new jobs, but not the ones already matched.
    let matched = clear(&w.reg, &[goods_bid(1, client, w.app, w.data, 10)]);
    let job = w.reg.open_job(NOW, &matched.clearing.matches[0]).unwrap();
    apply(&mut w.reg, &w.dev, RegistryOp::Deprecate { digest: w.app }).unwrap();
    assert_eq!(
        q(&w.reg, goods(Some(w.app), vec![])),
        Err(RegistryError::Deprecated(w.app))
    );
    let p = w.reg.settle(&job, 1).unwrap();
    assert_eq!(p.owners[0], (w.dev.account_id(), Amount::new(14)));
    // The order book refuses goods outright.
    let mut book = OrderBook::new(Limits::default());
    assert_eq!(
        book.insert(
            NOW,
            Order::Bid(goods_bid(5, client, w.app, w.data, 10)),
            &FlatReputation(Reputation::MAX)
        ),
        Err(MarketError::GoodsNotSupported(OrderId::new(5)))
    );
}

#[test]
fn a_price_change_mid_job_keeps_the_matched_price() {
    let mut w = world();
    let client = key(10).account_id();
    let out = clear(&w.reg, &[goods_bid(1, client, w.app, w.data, 10)]);
    let m = out.clearing.matches[0].clone();
    let job = w.reg.open_job(NOW, &m).unwrap();
    let set = |p| RegistryOp::SetPrice {
        digest: w.app,
        price_per_use: Amount::new(p),
    };
    apply(&mut w.reg, &w.dev, set(1000)).unwrap();
    assert_eq!(w.reg.listing(&w.app).unwrap().revision, 1);
    // The running job pays the old price...
    let p = w.reg.settle(&job, 60).unwrap();
    assert_eq!(p.owners[0].1, Amount::new(14));
    assert_eq!(check_payout(&m, 60, &p), Ok(()));
    // ...and a new bid with the old cap is left out rather than overcharged.
    let out = clear(&w.reg, &[goods_bid(2, client, w.app, w.data, 10)]);
    assert!(matches!(
        out.rejected[0].reason,
        RegistryError::FeeCapExceeded { .. }
    ));
    // Only the owner may change the price.
    assert!(matches!(
        apply(&mut w.reg, &w.curator, set(1)),
        Err(RegistryError::NotOwner { .. })
    ));
}

#[test]
fn transfer_moves_future_fees_only() {
    let mut w = world();
    let (client, buyer) = (key(10).account_id(), key(3));
    let out = clear(&w.reg, &[goods_bid(1, client, w.app, w.data, 10)]);
    let job = w.reg.open_job(NOW, &out.clearing.matches[0]).unwrap();
    apply(
        &mut w.reg,
        &w.dev,
        RegistryOp::Transfer {
            digest: w.app,
            to: buyer.account_id(),
        },
    )
    .unwrap();
    assert!(matches!(
        apply(&mut w.reg, &w.dev, RegistryOp::Deprecate { digest: w.app }),
        Err(RegistryError::NotOwner { .. })
    ));
    assert_eq!(
        w.reg.settle(&job, 1).unwrap().owners[0].0,
        w.dev.account_id()
    );
    let out = clear(&w.reg, &[goods_bid(2, client, w.app, w.data, 10)]);
    assert_eq!(out.clearing.matches[0].fees[0].owner, buyer.account_id());
}

#[test]
fn records_are_signed_and_single_use() {
    let mut w = world();
    let rec = SignedOp::sign(
        &w.dev,
        w.reg.next_nonce(&w.dev.account_id()),
        RegistryOp::SetPrice {
            digest: w.app,
            price_per_use: Amount::new(1),
        },
    );
    let mut forged = rec.clone();
    forged.signer = w.curator.account_id();
    assert!(matches!(
        w.reg.apply(NOW, &forged),
        Err(RegistryError::BadSignature(_))
    ));
    w.reg.apply(NOW, &rec).unwrap();
    assert!(matches!(
        w.reg.apply(NOW, &rec),
        Err(RegistryError::BadNonce { .. })
    ));
    // Canonical bytes round-trip; junk never panics.
    assert_eq!(SignedOp::from_bytes(&rec.to_bytes()), Ok(rec));
    assert!(SignedOp::from_bytes(&[0xff; 40]).is_err());
    // Registering the same content twice is refused.
    assert_eq!(
        apply(
            &mut w.reg,
            &w.dev,
            RegistryOp::Register {
                kind: GoodKind::App,
                digest: w.app,
                version: 2,
                price_per_use: Amount::ZERO,
                policy: AccessPolicy::Public,
            }
        ),
        Err(RegistryError::AlreadyRegistered(w.app))
    );
}

#[test]
fn listings_per_owner_are_bounded() {
    let limits = RegistryLimits {
        max_listings_per_owner: 2,
        ..RegistryLimits::default()
    };
    let mut reg = Registry::new(limits);
    let k = key(1);
    for i in 0..3u8 {
        let r = apply(
            &mut reg,
            &k,
            RegistryOp::Register {
                kind: GoodKind::Dataset,
                digest: content_digest(GoodKind::Dataset, &[i]),
                version: 1,
                price_per_use: Amount::ZERO,
                policy: AccessPolicy::Public,
            },
        );
        assert_eq!(r.is_ok(), i < 2, "{r:?}");
    }
}

#[test]
fn sealed_batch_prices_goods_with_the_registry() {
    let w = world();
    let client = key(10).account_id();
    let provider = key(900).account_id();
    let epoch = idlegrid_primitives::Epoch::new(1);
    let mut batch = SealedBatch::open(epoch, NOW, BatchConfig::default()).unwrap();
    let orders = [
        Order::Ask(unit_ask(1, 10, 4, provider)),
        Order::Bid(goods_bid(2, client, w.app, w.data, 10)),
    ];
    let mut rng = Seed::from_u64(1).rng();
    let sealed: Vec<_> = orders
        .iter()
        .map(|o| {
            let salt = idlegrid_primitives::Salt::random(&mut rng);
            let c = seal(epoch, o, &salt);
            batch.commit(NOW, o.owner(), c, Amount::new(1)).unwrap();
            (o.clone(), salt, c)
        })
        .collect();
    for (o, salt, c) in &sealed {
        batch
            .reveal(batch.commit_deadline(), o.owner(), *c, o.clone(), *salt)
            .unwrap();
    }
    let rep = FlatReputation(Reputation::MAX);
    let out = batch
        .close_with_goods(batch.reveal_deadline(), &PayAsBid, &rep, &w.reg)
        .unwrap();
    assert_eq!(out.clearing.matches.len(), 1);
    assert_eq!(out.clearing.matches[0].fees_per_slot(), Ok(Amount::new(10)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Owners receive exactly `price × slots`, the provider the seller
    /// total, and the payout sums to the escrow, for any prices.
    #[test]
    fn settlement_conserves_money(
        app_price in 0u128..1_000_000,
        ds_prices in prop::collection::vec(0u128..1_000_000, 0..=MAX_DATASETS_PER_JOB),
        slots in 1u32..50,
        seconds in 0u64..100_000,
        (seller, spread) in (1u128..1000, 0u128..1000),
    ) {
        let mut reg = Registry::new(RegistryLimits::default());
        let dev = key(1);
        let app = register(&mut reg, &dev, GoodKind::App, b"a", app_price, AccessPolicy::Public);
        let mut goods = JobGoods { app: Some(app), ..JobGoods::none() };
        for (i, p) in ds_prices.iter().enumerate() {
            let owner = key(100 + i as u64);
            let d = register(&mut reg, &owner, GoodKind::Dataset, &[i as u8], *p, AccessPolicy::Public);
            goods.datasets.push(d);
        }
        let total: u128 = app_price + ds_prices.iter().sum::<u128>();
        goods.max_fee_per_slot = Amount::new(total);
        let client = key(50).account_id();
        let fees = reg.quote(&client, OrderId::new(1), &goods).unwrap();
        let m = Match {
            bid: OrderId::new(1),
            ask: OrderId::new(2),
            client,
            provider: key(51).account_id(),
            slots: Slots::new(slots),
            buyer_price: Amount::new(seller + spread),
            seller_price: Amount::new(seller),
            fees,
        };
        let job = reg.open_job(NOW, &m).unwrap();
        // Prices change after the match; the payout does not.
        for l in reg.listings().map(|l| (l.digest, l.owner)).collect::<Vec<_>>() {
            let owner = if l.1 == dev.account_id() { dev.clone() } else {
                (100..109).map(key).find(|k| k.account_id() == l.1).unwrap()
            };
            apply(&mut reg, &owner, RegistryOp::SetPrice { digest: l.0, price_per_use: Amount::new(999_999_999) }).unwrap();
        }
        let p = reg.settle(&job, seconds).unwrap();
        prop_assert_eq!(check_payout(&m, seconds, &p), Ok(()));
        let owners: u128 = p.owners.iter().map(|(_, a)| a.get()).sum();
        prop_assert_eq!(owners, total * u128::from(slots));
        prop_assert_eq!(
            p.provider_pay.get() + p.surplus.get() + owners,
            p.escrow.get()
        );
        prop_assert_eq!(reg.stats().owner_revenue.get(), owners);
    }

    /// A tampered payout is always caught.
    #[test]
    fn check_payout_catches_tampering(delta in 1u128..1000, which in 0usize..3) {
        let w = world();
        let out = clear(&w.reg, &[goods_bid(1, key(10).account_id(), w.app, w.data, 10)]);
        let m = &out.clearing.matches[0];
        let mut p = split(m, 30).unwrap();
        match which {
            0 => p.provider_pay = Amount::new(p.provider_pay.get() + delta),
            1 => p.owners[0].1 = Amount::new(p.owners[0].1.get() + delta),
            _ => p.surplus = Amount::new(p.surplus.get() + delta),
        }
        prop_assert!(check_payout(m, 30, &p).is_err());
    }

    /// Decoding arbitrary bytes as a registry record never panics.
    #[test]
    fn decoding_junk_records_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedOp::from_bytes(&bytes);
    }
}

/// One random operation by one of a few keys, on one of a few digests.
fn arb_op() -> impl Strategy<Value = (u64, RegistryOp)> {
    let digest = (0u8..4).prop_map(|i| content_digest(GoodKind::App, &[i]));
    let acct = (0u64..4).prop_map(|i| key(i).account_id());
    let policy = prop_oneof![
        Just(AccessPolicy::Public),
        Just(AccessPolicy::PerJob),
        prop::collection::vec(acct.clone(), 0..4).prop_map(AccessPolicy::AllowList),
    ];
    let op = prop_oneof![
        (
            digest.clone(),
            0u32..3,
            0u128..100,
            policy.clone(),
            any::<bool>()
        )
            .prop_map(|(digest, version, p, policy, app)| RegistryOp::Register {
                kind: if app {
                    GoodKind::App
                } else {
                    GoodKind::Dataset
                },
                digest,
                version,
                price_per_use: Amount::new(p),
                policy,
            }),
        (digest.clone(), 0u128..100).prop_map(|(digest, p)| RegistryOp::SetPrice {
            digest,
            price_per_use: Amount::new(p)
        }),
        (digest.clone(), policy)
            .prop_map(|(digest, policy)| RegistryOp::SetPolicy { digest, policy }),
        (digest.clone(), acct.clone()).prop_map(|(digest, to)| RegistryOp::Transfer { digest, to }),
        digest
            .clone()
            .prop_map(|digest| RegistryOp::Deprecate { digest }),
        (digest, acct.clone(), 0u64..4).prop_map(|(digest, client, b)| RegistryOp::ApproveJob {
            digest,
            client,
            bid: OrderId::new(b)
        }),
        (0u64..4, acct, 0u32..4).prop_map(|(b, grantee, i)| RegistryOp::Grant(Grant {
            job: JobId::new(OrderId::new(b), OrderId::new(100)),
            grantee,
            item: JobItem::Input(i),
        })),
    ];
    (0u64..4, op)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random operation sequences (with jobs opened and settled in between)
    /// never panic and always leave the registry consistent.
    #[test]
    fn random_operations_keep_the_registry_consistent(
        ops in prop::collection::vec((arb_op(), any::<bool>(), 0u64..4), 0..40)
    ) {
        let limits = RegistryLimits {
            max_listings_per_owner: 2,
            max_grants_per_job: 2,
            settled_memory: 2,
            ..RegistryLimits::default()
        };
        let mut reg = Registry::new(limits);
        for ((signer, op), open, b) in ops {
            let _ = apply(&mut reg, &key(signer), op);
            let client = key(b).account_id();
            let goods = JobGoods { app: Some(content_digest(GoodKind::App, &[b as u8])), datasets: vec![], max_fee_per_slot: Amount::new(100) };
            let fees = reg.quote(&client, OrderId::new(b), &goods).unwrap_or_default();
            let m = Match {
                bid: OrderId::new(b),
                ask: OrderId::new(100),
                client,
                provider: key(50).account_id(),
                slots: Slots::new(2),
                buyer_price: Amount::new(3),
                seller_price: Amount::new(2),
                fees,
            };
            if open {
                let _ = reg.open_job(NOW, &m);
            } else {
                let stored = reg.job(&m.job_id()).map(|j| j.matched.clone());
                if let Ok(p) = reg.settle(&m.job_id(), 10) {
                    let stored = stored.expect("a settled job was open");
                    prop_assert_eq!(check_payout(&stored, 10, &p), Ok(()));
                }
            }
            prop_assert_eq!(reg.check_invariants(), Ok(()));
        }
    }
}

#[test]
fn a_bid_with_every_good_fits_the_order_size_bound() {
    let mut b = unit_bid(
        u64::MAX,
        u128::MAX,
        u32::MAX,
        AccountId::from_bytes([0xff; 32]),
    )
    .with_app(Digest::from_bytes([0xff; 32]))
    .with_max_fee(Amount::MAX);
    b.deadline = Timestamp::from_micros(u64::MAX);
    b.min_reputation = Reputation::from_bps(u16::MAX);
    b.regions = RegionSet::ALL;
    for i in 0..MAX_DATASETS_PER_JOB {
        b = b.with_dataset(Digest::from_bytes([i as u8; 32]));
    }
    let longest = |i: usize| format!("{i:0>width$}", width = idlegrid_market::MAX_FEATURE_NAME);
    b.requires =
        idlegrid_market::Features::from_names((0..idlegrid_market::MAX_FEATURES).map(longest))
            .unwrap();
    let o = Order::Bid(b);
    let bytes = o.to_bytes();
    assert!(bytes.len() <= MAX_ORDER_BYTES, "{}", bytes.len());
    assert_eq!(Order::from_bytes(&bytes), Ok(o));
}

/// Regression (found by the `market_registry` fuzz target): a registration
/// refused for the per-owner limit must leave no trace, not even a zero
/// listing count for the owner.
#[test]
fn refused_registration_changes_nothing() {
    let limits = RegistryLimits {
        max_listings_per_owner: 0,
        ..RegistryLimits::default()
    };
    let mut reg = Registry::new(limits);
    let dev = key(1);
    let err = apply(
        &mut reg,
        &dev,
        RegistryOp::Register {
            kind: GoodKind::App,
            digest: content_digest(GoodKind::App, b"wasm"),
            version: 1,
            price_per_use: Amount::new(7),
            policy: AccessPolicy::Public,
        },
    )
    .unwrap_err();
    assert!(matches!(err, RegistryError::Full { .. }), "{err}");
    reg.check_invariants().unwrap();
    // The record's sequence number is spent (anti-replay); no listing is.
    assert_eq!(reg.stats().apps, 0);
    assert_eq!(reg.next_nonce(&dev.account_id()), 1);
}
