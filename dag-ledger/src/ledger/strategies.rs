//! Proptest strategies for the ledger's public types (feature `strategies`).
//!
//! ```
//! use idlegrid_dag_ledger::ledger::{SignedTransaction, strategies};
//! use proptest::prelude::*;
//!
//! proptest!(|(tx in strategies::signed_transaction())| {
//!     // Every transaction round-trips through its canonical bytes.
//!     let bytes = tx.to_bytes();
//!     prop_assert_eq!(SignedTransaction::from_bytes(&bytes).unwrap(), tx);
//! });
//! ```

use idlegrid_primitives::strategies as prim;
use idlegrid_primitives::{AccountId, Amount, Epoch, Keypair, Seed};
use proptest::collection::vec;
use proptest::prelude::*;

use super::{
    AppId, ChainId, EscrowId, Evidence, EvidenceKind, Genesis, LockId, Nonce, Params,
    SignedTransaction, Transaction, TxKind,
};

/// Any nonce, biased to small values.
pub fn nonce() -> impl Strategy<Value = Nonce> {
    prop_oneof![3 => (0u64..16).prop_map(Nonce::new), 1 => any::<u64>().prop_map(Nonce::new)]
}

/// Any escrow id, biased to small values.
pub fn escrow_id() -> impl Strategy<Value = EscrowId> {
    prop_oneof![3 => (0u64..16).prop_map(EscrowId::new), 1 => any::<u64>().prop_map(EscrowId::new)]
}

/// Any lock id, biased to small values.
pub fn lock_id() -> impl Strategy<Value = LockId> {
    prop_oneof![3 => (0u64..16).prop_map(LockId::new), 1 => any::<u64>().prop_map(LockId::new)]
}

/// Any application id.
pub fn app_id() -> impl Strategy<Value = AppId> {
    any::<u32>().prop_map(AppId::new)
}

/// Any chain id.
pub fn chain_id() -> impl Strategy<Value = ChainId> {
    any::<u32>().prop_map(ChainId::new)
}

/// Any account id (arbitrary bytes: usually not a valid key).
pub fn any_account() -> impl Strategy<Value = AccountId> {
    prim::bytes32().prop_map(AccountId::from_bytes)
}

/// Evidence with arbitrary (usually forged) bytes.
pub fn evidence() -> impl Strategy<Value = Evidence> {
    (any::<u16>(), any_account(), vec(any::<u8>(), 0..256)).prop_map(|(k, offender, bytes)| {
        Evidence {
            kind: EvidenceKind(k),
            offender,
            bytes,
        }
    })
}

/// Any transaction kind with arbitrary accounts and amounts.
pub fn tx_kind() -> impl Strategy<Value = TxKind> {
    let amount = prim::amount;
    let epoch = || (0u64..64).prop_map(Epoch::new);
    prop_oneof![
        (any_account(), amount()).prop_map(|(to, amount)| TxKind::Transfer { to, amount }),
        amount().prop_map(|amount| TxKind::Bond { amount }),
        amount().prop_map(|amount| TxKind::Unbond { amount }),
        Just(TxKind::Withdraw),
        (any_account(), amount(), epoch()).prop_map(|(payee, amount, deadline)| {
            TxKind::EscrowOpen {
                payee,
                amount,
                deadline,
            }
        }),
        (escrow_id(), proptest::option::of(amount()))
            .prop_map(|(escrow, amount)| TxKind::EscrowRelease { escrow, amount }),
        escrow_id().prop_map(|escrow| TxKind::EscrowRefund { escrow }),
        evidence().prop_map(TxKind::Slash),
        (app_id(), vec(any::<u8>(), 0..256))
            .prop_map(|(app_id, payload)| TxKind::App { app_id, payload }),
    ]
}

/// Any unsigned transaction.
pub fn transaction() -> impl Strategy<Value = Transaction> {
    (chain_id(), any_account(), nonce(), tx_kind()).prop_map(|(chain, sender, nonce, kind)| {
        Transaction {
            chain,
            sender,
            nonce,
            kind,
        }
    })
}

/// Any transaction with an arbitrary (almost surely invalid) signature.
pub fn signed_transaction() -> impl Strategy<Value = SignedTransaction> {
    (transaction(), prim::signature_bytes())
        .prop_map(|(tx, signature)| SignedTransaction { tx, signature })
}

/// Valid parameters (within `limits`).
pub fn params() -> impl Strategy<Value = Params> {
    (
        0u64..20,
        0u64..8,
        1u128..1_000_000,
        8u64..1_000,
        0u128..10_000,
        1u32..64,
        1u32..16,
        0u16..=10_000,
    )
        .prop_map(
            |(delay, base, unit, max, min_new, escrows, unbondings, bps)| Params {
                chain_id: ChainId::new(0),
                unbonding_delay_epochs: delay,
                quota_base: base,
                quota_unit: Amount::new(unit),
                quota_max: max,
                min_new_account: Amount::new(min_new),
                max_escrows_per_account: escrows,
                max_unbonding_entries: unbondings,
                max_locks_per_account: escrows,
                max_app_payload: 1024,
                slash_reporter_bps: bps,
            },
        )
}

/// A valid genesis over 1..8 real keypairs (derived from `Seed::from_u64(i)`,
/// so tests can re-derive the signing keys) with random balances and stakes.
pub fn genesis() -> impl Strategy<Value = Genesis> {
    (vec((0u128..1_000_000, 0u128..100_000), 1..8), params()).prop_map(|(alloc, params)| {
        let keys: Vec<Keypair> = (0..alloc.len() as u64)
            .map(|i| Keypair::from_seed(&Seed::from_u64(i)))
            .collect();
        Genesis {
            balances: keys
                .iter()
                .zip(&alloc)
                .map(|(k, (b, _))| (k.account_id(), Amount::new(*b)))
                .collect(),
            stakes: keys
                .iter()
                .zip(&alloc)
                .map(|(k, (_, s))| (k.account_id(), Amount::new(*s)))
                .collect(),
            params,
        }
    })
}
