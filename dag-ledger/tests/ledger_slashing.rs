//! Slashing with verifiable evidence through a composition-root verifier.

mod ledger_support;

use idlegrid_dag_ledger::ledger::*;
use idlegrid_primitives::Amount;
use ledger_support::*;

fn host<'h>(apps: &'h mut NoApps, v: &'h TestVerifier) -> Host<'h> {
    Host {
        evidence: v,
        ..Host::default_for(apps)
    }
}

#[test]
fn equivocation_slashes_half_rewards_reporter_burns_rest() {
    let k = keys(3);
    let (offender, reporter) = (acct(&k, 0), acct(&k, 1));
    let mut l = ledger(&k, 10_000, 8_000);
    // Part of the stake is unbonding: still slashable.
    submit(
        &mut l,
        1,
        &k[0],
        TxKind::Unbond {
            amount: Amount::new(2_000),
        },
    )
    .unwrap();
    let ev = equivocation(&k[0], 12, b"a", b"b");
    let (mut apps, v) = (NoApps, TestVerifier);
    let t = tx(&l, &k[1], TxKind::Slash(ev.clone()));
    let r = apply_with(&mut l, 2, &t, &mut host(&mut apps, &v)).unwrap();
    // 50 % of 8_000 slashable = 4_000: 6_000 free bond first → bond 2_000 left.
    let Outcome::Slashed(s) = r.outcome else {
        panic!("{r:?}")
    };
    assert_eq!(s.taken, Amount::new(4_000));
    assert_eq!(s.paid, Amount::new(400)); // 10 % reporter share
    assert_eq!(s.burned, Amount::new(3_600));
    assert_eq!(l.bonded(&offender), Amount::new(2_000));
    assert_eq!(l.unbonding(&offender), Amount::new(2_000));
    assert_eq!(l.balance(&reporter), Amount::new(10_400));
    assert_eq!(l.burned(), Amount::new(3_600));
    assert_eq!(l.total_supply(), Amount::new(54_000 - 3_600));
    check_all(&l).unwrap();

    // The same offense again (even re-signed, other payloads): rejected.
    let again = equivocation(&k[0], 12, b"c", b"d");
    let t = tx(&l, &k[2], TxKind::Slash(again));
    assert_rejected_with(&mut l, 2, &t, &mut host(&mut apps, &v), |e| {
        matches!(e, LedgerError::AlreadySlashed(_))
    });
    // Another round is another offense; it reaches the unbonding stake.
    let t = tx(
        &l,
        &k[2],
        TxKind::Slash(equivocation(&k[0], 13, b"a", b"b")),
    );
    apply_with(&mut l, 2, &t, &mut host(&mut apps, &v)).unwrap();
    assert_eq!(
        l.bonded(&offender).saturating_add(l.unbonding(&offender)),
        Amount::new(2_000)
    );
}

#[test]
fn forged_evidence_is_rejected_without_effect() {
    let k = keys(3);
    let mut l = ledger(&k, 10_000, 8_000);
    let (mut apps, v) = (NoApps, TestVerifier);
    // Not an equivocation (same payload twice).
    let same = equivocation(&k[0], 1, b"a", b"a");
    // Signed by someone else but blaming k0.
    let mut framed = equivocation(&k[2], 1, b"a", b"b");
    framed.offender = acct(&k, 0);
    // Garbage bytes, unknown kind.
    let garbage = Evidence {
        kind: EQUIVOCATION,
        offender: acct(&k, 0),
        bytes: vec![1, 2, 3],
    };
    let unknown = Evidence {
        kind: EvidenceKind(99),
        ..equivocation(&k[0], 1, b"a", b"b")
    };
    // Each refusal says why, typed.
    let why: [fn(&EvidenceError) -> bool; 4] = [
        |e| matches!(e, EvidenceError::NotAnOffense(_)),
        |e| matches!(e, EvidenceError::BadSignature(_)),
        |e| matches!(e, EvidenceError::Malformed(_)),
        |e| matches!(e, EvidenceError::UnknownKind(EvidenceKind(99))),
    ];
    for (ev, why) in [same, framed, garbage, unknown].into_iter().zip(why) {
        let t = tx(&l, &k[1], TxKind::Slash(ev));
        assert_rejected_with(
            &mut l,
            1,
            &t,
            &mut host(&mut apps, &v),
            |e| matches!(e, LedgerError::InvalidEvidence(x) if why(x)),
        );
    }
    // Oversized evidence.
    let big = Evidence {
        kind: EQUIVOCATION,
        offender: acct(&k, 0),
        bytes: vec![0; limits::MAX_EVIDENCE_BYTES + 1],
    };
    let t = tx(&l, &k[1], TxKind::Slash(big));
    assert_rejected_with(&mut l, 1, &t, &mut host(&mut apps, &v), |e| {
        matches!(e, LedgerError::PayloadTooLarge { .. })
    });
    // Valid evidence, but a node without a verifier rejects it.
    let t = tx(&l, &k[1], TxKind::Slash(equivocation(&k[0], 1, b"a", b"b")));
    assert_rejected(&mut l, 1, &t, |e| {
        matches!(
            e,
            LedgerError::InvalidEvidence(EvidenceError::UnknownKind(k)) if *k == EQUIVOCATION
        )
    });
}

#[test]
fn nothing_to_slash_and_self_report() {
    let k = keys(2);
    let mut l = ledger(&k, 10_000, 0);
    let (mut apps, v) = (NoApps, TestVerifier);
    let t = tx(&l, &k[1], TxKind::Slash(equivocation(&k[0], 1, b"a", b"b")));
    assert_rejected_with(&mut l, 1, &t, &mut host(&mut apps, &v), |e| {
        matches!(e, LedgerError::NothingToSlash(_))
    });
    // An offender reporting itself earns nothing: everything is burned.
    submit(
        &mut l,
        1,
        &k[0],
        TxKind::Bond {
            amount: Amount::new(1_000),
        },
    )
    .unwrap();
    let t = tx(&l, &k[0], TxKind::Slash(equivocation(&k[0], 1, b"a", b"b")));
    let r = apply_with(&mut l, 1, &t, &mut host(&mut apps, &v)).unwrap();
    let Outcome::Slashed(s) = r.outcome else {
        panic!()
    };
    assert_eq!(
        (s.taken, s.paid, s.burned),
        (Amount::new(500), Amount::ZERO, Amount::new(500))
    );
}
