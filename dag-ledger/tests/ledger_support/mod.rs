//! Shared helpers for the ledger integration tests.
#![allow(dead_code)]

use idlegrid_dag_ledger::ledger::*;
use idlegrid_primitives::{
    AccountId, Amount, Digest, Domain, Epoch, Keypair, Seed, Timestamp, decode, encode,
};

/// `n` deterministic keypairs.
pub fn keys(n: u64) -> Vec<Keypair> {
    (0..n)
        .map(|i| Keypair::from_seed(&Seed::from_u64(1_000 + i)))
        .collect()
}

/// Small, test-friendly parameters.
pub fn params() -> Params {
    Params {
        unbonding_delay_epochs: 3,
        quota_base: 4,
        quota_unit: Amount::new(1_000),
        quota_max: 1_000,
        min_new_account: Amount::new(100),
        max_escrows_per_account: 4,
        max_unbonding_entries: 2,
        max_locks_per_account: 2,
        ..Params::default()
    }
}

/// A ledger where every key holds `balance` and `stake`.
pub fn ledger(keys: &[Keypair], balance: u128, stake: u128) -> Ledger {
    ledger_with(keys, balance, stake, params())
}

/// Same, with explicit parameters.
pub fn ledger_with(keys: &[Keypair], balance: u128, stake: u128, params: Params) -> Ledger {
    let g = Genesis {
        balances: keys
            .iter()
            .map(|k| (k.account_id(), Amount::new(balance)))
            .collect(),
        stakes: keys
            .iter()
            .filter(|_| stake > 0)
            .map(|k| (k.account_id(), Amount::new(stake)))
            .collect(),
        params,
    };
    Ledger::new(g).expect("valid genesis")
}

/// A transaction from `key` with its next nonce, signed.
pub fn tx(ledger: &Ledger, key: &Keypair, kind: TxKind) -> SignedTransaction {
    Transaction {
        chain: ledger.params().chain_id,
        sender: key.account_id(),
        nonce: ledger.nonce(&key.account_id()),
        kind,
    }
    .sign(key)
}

/// A batch context at `epoch`.
pub fn ctx(epoch: u64) -> BatchContext {
    BatchContext::at(Epoch::new(epoch), Timestamp::from_millis(epoch * 1_000))
}

/// Applies one transaction with no applications and no evidence verifier.
pub fn apply(
    ledger: &mut Ledger,
    epoch: u64,
    t: &SignedTransaction,
) -> Result<Receipt, LedgerError> {
    let mut apps = NoApps;
    apply_with(ledger, epoch, t, &mut Host::default_for(&mut apps))
}

/// Applies one transaction with `host`.
pub fn apply_with(
    ledger: &mut Ledger,
    epoch: u64,
    t: &SignedTransaction,
    host: &mut Host<'_>,
) -> Result<Receipt, LedgerError> {
    let r = ledger
        .apply_batch(ctx(epoch), &[t.to_bytes()], host)
        .expect("epoch does not regress");
    check_all(ledger).expect("invariants hold");
    r.receipts.into_iter().next().expect("one receipt")
}

/// Applies `t` and asserts it is rejected with an error matching `pred`
/// while the state digest stays unchanged.
pub fn assert_rejected(
    ledger: &mut Ledger,
    epoch: u64,
    t: &SignedTransaction,
    pred: impl Fn(&LedgerError) -> bool,
) {
    let mut apps = NoApps;
    assert_rejected_with(ledger, epoch, t, &mut Host::default_for(&mut apps), pred);
}

/// Same, with `host`.
pub fn assert_rejected_with(
    ledger: &mut Ledger,
    epoch: u64,
    t: &SignedTransaction,
    host: &mut Host<'_>,
    pred: impl Fn(&LedgerError) -> bool,
) {
    let empty: [Vec<u8>; 0] = [];
    ledger.apply_batch(ctx(epoch), &empty, host).unwrap();
    let before = ledger.state_digest();
    match apply_with(ledger, epoch, t, host) {
        Ok(r) => panic!("expected a rejection, got {r:?}"),
        Err(e) => assert!(pred(&e), "unexpected error: {e}"),
    }
    assert_eq!(
        ledger.state_digest(),
        before,
        "a rejected tx changed the state"
    );
}

/// Domain of the test "blocks" that equivocation evidence is made of.
pub const TEST_BLOCK: Domain = Domain::new("idlegrid/test/block");
/// Evidence kind of the test equivocation.
pub const EQUIVOCATION: EvidenceKind = EvidenceKind(1);

/// Equivocation evidence: two different payloads signed by the offender for
/// the same round.
pub fn equivocation(offender: &Keypair, round: u64, a: &[u8], b: &[u8]) -> Evidence {
    let m1 = encode(&(round, a.to_vec()));
    let m2 = encode(&(round, b.to_vec()));
    let s1 = offender.sign(TEST_BLOCK, &m1);
    let s2 = offender.sign(TEST_BLOCK, &m2);
    Evidence {
        kind: EQUIVOCATION,
        offender: offender.account_id(),
        bytes: encode(&(m1, s1, m2, s2)),
    }
}

/// A verifier for [`equivocation`] evidence, as a composition root would
/// write around the consensus module's evidence type. Penalty: 50 %.
#[derive(Debug, Default)]
pub struct TestVerifier;

impl EvidenceVerifier for TestVerifier {
    fn verify(&self, ev: &Evidence, _: SlashContext) -> Result<VerifiedOffense, EvidenceError> {
        if ev.kind != EQUIVOCATION {
            return Err(EvidenceError::UnknownKind(ev.kind));
        }
        type Parts = (
            Vec<u8>,
            idlegrid_primitives::Signature,
            Vec<u8>,
            idlegrid_primitives::Signature,
        );
        let (m1, s1, m2, s2): Parts = decode(&ev.bytes, 4096).map_err(EvidenceError::Malformed)?;
        let pk = ev.offender.public_key();
        pk.verify(TEST_BLOCK, &m1, &s1)
            .map_err(EvidenceError::BadSignature)?;
        pk.verify(TEST_BLOCK, &m2, &s2)
            .map_err(EvidenceError::BadSignature)?;
        let (r1, p1): (u64, Vec<u8>) = decode(&m1, 4096).map_err(EvidenceError::Malformed)?;
        let (r2, p2): (u64, Vec<u8>) = decode(&m2, 4096).map_err(EvidenceError::Malformed)?;
        if r1 != r2 || p1 == p2 {
            return Err(EvidenceError::NotAnOffense(
                "two messages of one round that differ",
            ));
        }
        Ok(VerifiedOffense {
            offender: ev.offender,
            offense_id: Digest::of(TEST_BLOCK, &(ev.offender, r1)),
            penalty_bps: 5_000,
        })
    }
}

/// The account of key `i`.
pub fn acct(keys: &[Keypair], i: usize) -> AccountId {
    keys[i].account_id()
}

/// Builds, signs and applies a transaction from `key` with its next nonce.
pub fn submit(
    ledger: &mut Ledger,
    epoch: u64,
    key: &Keypair,
    kind: TxKind,
) -> Result<Receipt, LedgerError> {
    let t = tx(ledger, key, kind);
    apply(ledger, epoch, &t)
}

/// The test application's id.
pub const TEST_APP: AppId = AppId::new(7);

/// Operations of the test application (its payload, postcard-encoded).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// Lock the sender's stake.
    Lock(Amount),
    /// Unlock a lock.
    Unlock(LockId),
    /// Slash a lock to a beneficiary or burn.
    SlashLock(LockId, Amount, Option<AccountId>),
    /// Open an app-managed escrow from the sender.
    Open(AccountId, Amount, Epoch),
    /// Release an app-managed escrow.
    Release(EscrowId, Option<Amount>),
    /// Refund an app-managed escrow.
    Refund(EscrowId),
    /// Release an app-managed escrow to someone other than the payee.
    ReleaseTo(EscrowId, Option<Amount>, AccountId),
    /// Pay from the sender.
    Pay(AccountId, Amount),
    /// Both, in order.
    Then(Box<Op>, Box<Op>),
    /// Do the operation, then reject the transaction anyway.
    FailAfter(Box<Op>),
    /// Do the operation and ignore its error.
    IgnoreErr(Box<Op>),
}

/// A test application exercising every handle operation.
#[derive(Debug, Default)]
pub struct TestApp {
    /// Applied transactions (the app's own state).
    pub applied: u64,
}

fn run(h: &mut LedgerHandle<'_, '_>, op: &Op) -> Result<Vec<u8>, LedgerError> {
    Ok(match op {
        Op::Lock(a) => encode(&h.lock_stake(*a)?),
        Op::Unlock(id) => encode(&h.unlock(*id)?),
        Op::SlashLock(id, a, to) => encode(&h.slash_lock(*id, *a, to.as_ref())?),
        Op::Open(p, a, d) => encode(&h.open_escrow(p, *a, *d)?),
        Op::Release(id, a) => encode(&h.release_escrow(*id, *a)?),
        Op::Refund(id) => encode(&h.refund_escrow(*id)?),
        Op::ReleaseTo(id, a, to) => encode(&h.release_escrow_to(*id, *a, to)?),
        Op::Pay(to, a) => {
            h.transfer(to, *a)?;
            vec![]
        }
        Op::Then(a, b) => {
            run(h, a)?;
            run(h, b)?
        }
        Op::FailAfter(a) => {
            run(h, a)?;
            return Err(h.reject(&TestAppError::FailingOnPurpose));
        }
        Op::IgnoreErr(a) => run(h, a).unwrap_or_default(),
    })
}

/// The test application's typed rejections.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TestAppError {
    /// The payload is not an [`Op`].
    Malformed,
    /// [`Op::FailAfter`].
    FailingOnPurpose,
}

impl AppErrorType for TestAppError {
    fn code(&self) -> u16 {
        match self {
            TestAppError::Malformed => 1,
            TestAppError::FailingOnPurpose => 2,
        }
    }
}

impl Application for TestApp {
    fn apply(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        payload: &[u8],
    ) -> Result<Vec<u8>, LedgerError> {
        let op: Op = decode(payload, 4096).map_err(|_| h.reject(&TestAppError::Malformed))?;
        let out = run(h, &op)?;
        self.applied += 1;
        Ok(out)
    }
}

/// The payload kind for an [`Op`].
pub fn app_kind(op: &Op) -> TxKind {
    TxKind::App {
        app_id: TEST_APP,
        payload: encode(op),
    }
}

/// A registry holding [`TestApp`] under [`TEST_APP`].
pub fn registry() -> AppRegistry {
    let mut r = AppRegistry::new();
    r.register(TEST_APP, Box::new(TestApp::default()));
    r
}

/// A transaction kind and the rejection it must produce.
pub type Case = (TxKind, fn(&LedgerError) -> bool);
