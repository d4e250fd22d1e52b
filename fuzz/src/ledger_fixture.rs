//! A small genesis ledger, its keys, an evidence verifier and an application
//! that drive every path of `idlegrid_dag_ledger::ledger` from fuzz input.

use std::sync::OnceLock;

use idlegrid_dag_ledger::ledger::{
    AppErrorType, AppId, Application, ChainId, EscrowId, Evidence, EvidenceError, EvidenceKind,
    EvidenceVerifier, Genesis, Ledger, LedgerError, LedgerHandle, LockId, Nonce, Params,
    SignedTransaction, SlashContext, Transaction, TxKind, VerifiedOffense,
};
use idlegrid_primitives::{AccountId, Amount, Digest, Domain, Epoch, Keypair, Seed};
use libfuzzer_sys::arbitrary::{Result as AResult, Unstructured};

/// Number of fixture keys; the last one has no genesis account.
pub const KEYS: usize = 4;
/// The chain id of the fixture.
pub const CHAIN: ChainId = ChainId::new(7);
/// The registered fuzz application.
pub const APP: AppId = AppId::new(1);
/// The evidence kind [`FuzzEvidence`] accepts.
pub const EVIDENCE_KIND: EvidenceKind = EvidenceKind(1);

/// Deterministic fixture keys.
pub fn keys() -> &'static [Keypair; KEYS] {
    static K: OnceLock<[Keypair; KEYS]> = OnceLock::new();
    K.get_or_init(|| std::array::from_fn(|i| Keypair::from_seed(&Seed::from_u64(1000 + i as u64))))
}

/// Fixture account ids.
pub fn accounts() -> [AccountId; KEYS] {
    std::array::from_fn(|i| keys()[i].account_id())
}

/// The fixture genesis: three funded accounts, two with stake.
pub fn genesis() -> Genesis {
    let a = accounts();
    Genesis {
        balances: vec![
            (a[0], Amount::new(1_000_000)),
            (a[1], Amount::new(50_000)),
            (a[2], Amount::new(2_000)),
        ],
        stakes: vec![(a[0], Amount::new(400_000)), (a[1], Amount::new(30_000))],
        params: Params {
            chain_id: CHAIN,
            unbonding_delay_epochs: 2,
            max_escrows_per_account: 4,
            max_unbonding_entries: 3,
            max_locks_per_account: 3,
            max_app_payload: 256,
            ..Params::default()
        },
    }
}

/// The fixture ledger (built once, cloned per input).
pub fn ledger() -> Ledger {
    static L: OnceLock<Ledger> = OnceLock::new();
    L.get_or_init(|| Ledger::new(genesis()).expect("fixture genesis is valid"))
        .clone()
}

/// Accepts evidence of kind 1 with a non-empty body: `bytes[0]` sets the
/// penalty (`bytes[0] * 40` bps), the rest is the offense id.
pub struct FuzzEvidence;

const OFFENSE: Domain = Domain::new("idlegrid/fuzz/offense");

impl EvidenceVerifier for FuzzEvidence {
    fn verify(&self, e: &Evidence, _: SlashContext) -> Result<VerifiedOffense, EvidenceError> {
        if e.kind != EVIDENCE_KIND {
            return Err(EvidenceError::UnknownKind(e.kind));
        }
        if e.bytes.is_empty() {
            return Err(EvidenceError::NotAnOffense("empty fuzz evidence"));
        }
        Ok(VerifiedOffense {
            offender: e.offender,
            offense_id: Digest::hash(OFFENSE, &e.bytes[1..]),
            penalty_bps: u16::from(e.bytes[0]) * 40,
        })
    }
}

/// An application whose payload is a little program of ledger-handle
/// operations, so the fuzzer reaches every `LedgerHandle` method.
pub struct FuzzApp;

impl Application for FuzzApp {
    fn apply(&mut self, h: &mut LedgerHandle<'_, '_>, payload: &[u8]) -> Result<Vec<u8>, LedgerError> {
        let mut u = Unstructured::new(payload);
        let mut out = Vec::new();
        // Bit 0 of the first byte: stop (and roll back) at the first error.
        let strict = u.arbitrary::<u8>().unwrap_or(0) & 1 == 1;
        while !u.is_empty() {
            let Ok(r) = app_op(&mut u, h) else { break };
            out.push(u8::from(r.is_ok()));
            if strict {
                r?;
            }
        }
        Ok(out)
    }
}

fn app_op(u: &mut Unstructured<'_>, h: &mut LedgerHandle<'_, '_>) -> AResult<Result<(), LedgerError>> {
    let to = account(u)?;
    let amount = amount(u)?;
    let esc = EscrowId::new(u.int_in_range(0..=5)?);
    let lock = LockId::new(u.int_in_range(0..=5)?);
    let opt_amount = if u.arbitrary()? { Some(amount) } else { None };
    Ok(match u.int_in_range(0..=9u8)? {
        0 => h.transfer(&to, amount),
        1 => h
            .open_escrow(&to, amount, Epoch::new(u.int_in_range(0..=8)?))
            .map(drop),
        2 => h.lock_stake(amount).map(drop),
        3 => h.release_escrow(esc, opt_amount).map(drop),
        4 => h.release_escrow_to(esc, opt_amount, &to).map(drop),
        5 => h.refund_escrow(esc).map(drop),
        6 => h.unlock(lock).map(drop),
        7 => h.slash_lock(lock, amount, u.arbitrary::<bool>()?.then_some(&to)).map(drop),
        8 => {
            // Queries must not panic either.
            let _ = (h.balance(&to), h.bonded(&to), h.free_stake(&to), h.escrow(esc), h.lock(lock));
            let _ = (h.account(&to), h.epoch(), h.now(), h.sender(), h.app_id());
            Ok(())
        }
        _ => Err(h.reject(&FuzzAppError)),
    })
}

/// The fuzz application's one typed rejection.
#[derive(serde::Serialize, serde::Deserialize)]
struct FuzzAppError;

impl AppErrorType for FuzzAppError {
    fn code(&self) -> u16 {
        1
    }
}

/// A fixture account or, rarely, an arbitrary (probably invalid) one.
pub fn account(u: &mut Unstructured<'_>) -> AResult<AccountId> {
    let i = u.int_in_range(0..=KEYS as u8)?;
    Ok(match accounts().get(usize::from(i)) {
        Some(a) => *a,
        None => AccountId::from_bytes(u.arbitrary()?),
    })
}

/// An amount biased toward the boundaries that matter.
pub fn amount(u: &mut Unstructured<'_>) -> AResult<Amount> {
    Ok(Amount::new(match u.int_in_range(0..=7u8)? {
        0 => 0,
        1 => 1,
        2 => 999,
        3 => 1_000,
        4 => u128::MAX,
        5 => u128::from(u.arbitrary::<u16>()?),
        6 => u128::from(u.arbitrary::<u32>()?),
        _ => u.arbitrary::<u128>()?,
    }))
}

/// A fuzzer-chosen transaction kind.
pub fn tx_kind(u: &mut Unstructured<'_>) -> AResult<TxKind> {
    Ok(match u.int_in_range(0..=8u8)? {
        0 => TxKind::Transfer { to: account(u)?, amount: amount(u)? },
        1 => TxKind::Bond { amount: amount(u)? },
        2 => TxKind::Unbond { amount: amount(u)? },
        3 => TxKind::Withdraw,
        4 => TxKind::EscrowOpen {
            payee: account(u)?,
            amount: amount(u)?,
            deadline: Epoch::new(u.int_in_range(0..=10)?),
        },
        5 => TxKind::EscrowRelease {
            escrow: EscrowId::new(u.int_in_range(0..=5)?),
            amount: if u.arbitrary()? { Some(amount(u)?) } else { None },
        },
        6 => TxKind::EscrowRefund { escrow: EscrowId::new(u.int_in_range(0..=5)?) },
        7 => {
            let kind = EvidenceKind(u.int_in_range(0..=2)?);
            let offender = account(u)?;
            let n = u.int_in_range(0..=4)?;
            TxKind::Slash(Evidence { kind, offender, bytes: u.bytes(n)?.to_vec() })
        }
        _ => {
            let app_id = AppId::new(u.int_in_range(0..=2)?);
            let n = u.int_in_range(0..=48)?;
            TxKind::App { app_id, payload: u.bytes(n)?.to_vec() }
        }
    })
}

/// An unsigned fixture transaction with the sender's current nonce.
pub fn transaction(ledger: &Ledger, sender: usize, kind: TxKind) -> Transaction {
    let sender = accounts()[sender];
    Transaction { chain: CHAIN, sender, nonce: ledger.nonce(&sender), kind }
}

/// [`signed_pool`], encoded once (each input copies the bytes of the ones
/// it picks instead of encoding them again).
pub fn signed_pool_bytes() -> &'static [Vec<u8>] {
    static P: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    P.get_or_init(|| signed_pool().iter().map(SignedTransaction::to_bytes).collect())
}

/// Transactions signed once per process (deterministic signatures, so the
/// same bytes as signing on the spot): for every fixture key and nonces
/// 0..=3, a transfer, a bond, an escrow and an app call, each signed by its
/// sender and, for the transfer, also by the next key (a wrong signature).
/// Signature-checking batches draw their signed transactions from here, so
/// no input pays for signing.
pub fn signed_pool() -> &'static [SignedTransaction] {
    static P: OnceLock<Vec<SignedTransaction>> = OnceLock::new();
    P.get_or_init(|| {
        let a = accounts();
        let mut out = Vec::new();
        for s in 0..KEYS {
            for n in 0..=3 {
                let kinds = [
                    TxKind::Transfer {
                        to: a[(s + 1) % KEYS],
                        amount: Amount::new(10),
                    },
                    TxKind::Bond {
                        amount: Amount::new(100),
                    },
                    TxKind::EscrowOpen {
                        payee: a[(s + 2) % KEYS],
                        amount: Amount::new(50),
                        deadline: Epoch::new(3),
                    },
                    TxKind::App {
                        app_id: APP,
                        payload: vec![1, 0, 0, 0, 5, 0, 0],
                    },
                ];
                for (k, kind) in kinds.into_iter().enumerate() {
                    let tx = Transaction {
                        chain: CHAIN,
                        sender: a[s],
                        nonce: Nonce::new(n),
                        kind,
                    };
                    if k == 0 {
                        out.push(tx.clone().sign(&keys()[(s + 1) % KEYS]));
                    }
                    out.push(tx.sign(&keys()[s]));
                }
            }
        }
        out
    })
}
