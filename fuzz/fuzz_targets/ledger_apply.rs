//! Stateful: the fixture ledger applies a fuzzer-chosen sequence of batches.
//! Each batch mixes raw untrusted bytes with well-formed transactions signed
//! by fixture keys (valid or tampered), under every signature-check mode,
//! with an evidence verifier and an application that exercise slashing and
//! the `LedgerHandle`. `apply_batch` must never panic, must return one
//! receipt per transaction and must report the state digest; `check_all`
//! must hold (when checked, see below); an epoch regression must change nothing;
//! the final state must survive a snapshot round trip.
//!
//! Speed: keys, the genesis ledger and a pool of signed transactions are
//! built once (`OnceLock`), so no input signs; at most four batches;
//! `check_all` (which rebuilds the whole state commitment) runs after the
//! batches the fuzzer picks and after the last one; most batches run under
//! `SignatureCheck::Skip` (what consensus-verified batches use), whose
//! transactions are built by the fuzzer and carry a dummy signature;
//! batches that check signatures take at most `MAX_SIGNED` transactions
//! from the signed pool (every key, nonces 0–3, four kinds, some signed by
//! the wrong key, sometimes a flipped byte), the rest carry the dummy and
//! must be rejected.
#![no_main]

use idlegrid_dag_ledger::ledger::{
    AppRegistry, BatchContext, ChainId, Host, Ledger, LedgerError, Nonce, SignatureCheck,
    SignedTransaction, check_all,
};
use idlegrid_fuzz::ledger_fixture::{
    APP, FuzzApp, FuzzEvidence, KEYS, accounts, ledger, signed_pool_bytes, transaction, tx_kind,
};
use idlegrid_fuzz::{frame, write_seeds};
use idlegrid_primitives::{Epoch, Seed, Signature, SignatureMemo, SignatureVerifier, Timestamp};
use libfuzzer_sys::arbitrary::{Result as AResult, Unstructured};
use libfuzzer_sys::fuzz_target;

const MAX_BATCHES: usize = 4;
const MAX_TXS: usize = 8;
/// Really signed (pool) transactions per signature-checking batch.
const MAX_SIGNED: usize = 2;

/// `sign`: a really signed transaction from the pool (possibly signed by
/// the wrong key, or with a stale nonce), else a fuzzer-built one with a
/// dummy signature.
fn one_tx(u: &mut Unstructured<'_>, l: &Ledger, sign: bool) -> AResult<Vec<u8>> {
    if u.ratio(1, 8)? {
        // Raw untrusted bytes.
        let n = u.int_in_range(0..=200)?;
        return Ok(u.bytes(n)?.to_vec());
    }
    if sign {
        let pool = signed_pool_bytes();
        let mut bytes = pool[u.choose_index(pool.len())?].clone();
        if u.ratio(1, 8)? {
            let i = u.choose_index(bytes.len())?;
            bytes[i] ^= u.int_in_range(1..=255)?;
        }
        return Ok(bytes);
    }
    let s = u.int_in_range(0..=KEYS - 1)?;
    let mut tx = transaction(l, s, tx_kind(u)?);
    if u.ratio(1, 16)? {
        tx.nonce = Nonce::new(u.arbitrary()?);
    }
    if u.ratio(1, 32)? {
        tx.chain = ChainId::new(u.arbitrary()?);
    }
    let signed = SignedTransaction { tx, signature: Signature::from_bytes([0; 64]) };
    let mut bytes = signed.to_bytes();
    if u.ratio(1, 32)? && !bytes.is_empty() {
        let i = u.choose_index(bytes.len())?;
        bytes[i] ^= u.int_in_range(1..=255)?;
    }
    Ok(bytes)
}

fn debug() -> bool {
    static D: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *D.get_or_init(|| std::env::var_os("IDLEGRID_FUZZ_DEBUG").is_some())
}

fn run(data: &[u8]) -> AResult<()> {
    let mut u = Unstructured::new(data);
    let mut l = ledger();
    let mut apps = AppRegistry::new();
    apps.register(APP, Box::new(FuzzApp));
    let mut now = Timestamp::ZERO;
    let memo = SignatureVerifier::memoized(std::sync::Arc::new(SignatureMemo::new(256, &Seed::from_u64(1))));
    for _ in 0..MAX_BATCHES {
        if u.is_empty() {
            break;
        }
        let epoch = match u.int_in_range(0..=15u8)? {
            0 => Epoch::new(l.epoch().get().saturating_sub(1)),
            1..=9 => l.epoch(),
            10..=14 => l.epoch().plus(1),
            _ => l.epoch().plus(u.int_in_range(2..=5)?),
        };
        now = now.saturating_add(idlegrid_primitives::Duration::from_millis(u.arbitrary::<u16>()?.into()));
        let (signatures, memoized) = match u.int_in_range(0..=9u8)? {
            0 => (SignatureCheck::Batch, false),
            1 => (SignatureCheck::Single, false),
            // Through a memo that remembers what earlier batches verified
            // (what a validator's gateway does): the same receipts.
            2 => (SignatureCheck::Batch, true),
            3 => (SignatureCheck::Single, true),
            _ => (SignatureCheck::Skip, false),
        };
        let n = u.int_in_range(0..=MAX_TXS)?;
        let mut txs = Vec::with_capacity(n);
        for i in 0..n {
            let sign = signatures != SignatureCheck::Skip && i < MAX_SIGNED;
            txs.push(one_tx(&mut u, &l, sign)?);
        }
        // Only a regressed epoch needs the digest before (it is costly).
        let before = (epoch < l.epoch()).then(|| l.state_digest());
        let plain = SignatureVerifier::plain();
        let verifier = if memoized { &memo } else { &plain };
        let mut host = Host { apps: &mut apps, evidence: &FuzzEvidence, signatures, verifier };
        match l.apply_batch(BatchContext::at(epoch, now), &txs, &mut host) {
            Ok(r) => {
                assert_eq!(r.receipts.len(), txs.len(), "one receipt per transaction");
                assert_eq!(r.epoch, epoch);
                assert_eq!(r.state_digest, l.state_digest(), "reported digest is the state's");
                assert_eq!(r.applied() + r.rejected(), txs.len());
                if debug() {
                    for rc in &r.receipts {
                        match rc {
                            Ok(rc) => eprintln!("applied {:?}", rc.outcome),
                            Err(e) => eprintln!("rejected {e}"),
                        }
                    }
                }
            }
            Err(LedgerError::EpochRegressed { .. }) => {
                assert!(epoch < l.epoch());
                assert_eq!(Some(l.state_digest()), before, "a rejected batch changed the state");
            }
            Err(e) => panic!("unexpected batch-level error: {e}"),
        }
        // `check_all` rebuilds the whole state commitment: after the
        // batches the fuzzer picks, and always after the last one.
        if u.ratio(1, 4)? {
            if let Err(v) = check_all(&l) {
                panic!("invariant broken after a batch: {v:?}");
            }
        }
        for a in accounts() {
            let _ = l.quota_remaining(&a, l.epoch());
        }
    }
    if let Err(v) = check_all(&l) {
        panic!("invariant broken after the last batch: {v:?}");
    }
    let snap = l.snapshot();
    let back = Ledger::from_snapshot(&snap, usize::MAX).expect("own snapshot must load");
    assert_eq!(back.state_digest(), l.state_digest());
    assert_eq!(back.snapshot(), snap);
    Ok(())
}

/// Seeds: a few framed "programs"; the bytes are interpreted by `run`, so
/// any bytes are a valid program — these just start with some structure.
fn seeds() -> Vec<Vec<u8>> {
    vec![
        vec![10, 0, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0],
        (0u8..=255).collect(),
        frame(&[vec![11; 40], vec![3; 60]]),
        vec![12, 1, 0, 1, 4, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
    ]
}

fuzz_target!(
    init: {
        let _ = signed_pool_bytes();
        write_seeds(seeds());
    },
    |data: &[u8]| {
        let _ = run(data);
    }
);
