//! The [`Ledger`]: construction from genesis, queries, state digest and
//! snapshots. Applying batches lives in `apply.rs`.

use std::collections::BTreeSet;

use idlegrid_primitives::{
    AccountId, Amount, ChaCha20Rng, CowMap, CowSet, Digest, Epoch, Seed, SeedableRng, SeqMap,
    decode, encode,
};
use serde::{Deserialize, Serialize};

use super::account::Account;
use super::commitment::{STATE_DOMAIN, StateCommitment};
use super::error::LedgerError;
use super::escrow::Escrow;
use super::genesis::{Genesis, Params, limits};
use super::ids::{EscrowId, LockId, Nonce};
use super::invariants;
use super::quota;
use super::staking::Lock;
use super::state::State;

/// Version byte of the snapshot format.
pub const SNAPSHOT_VERSION: u8 = 1;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u8,
    state: State,
}

/// The replicated ledger state machine.
///
/// Feed it the committed transaction sequence, batch by batch, with
/// [`Ledger::apply_batch`]; every node that applies the same batches from the
/// same genesis reaches the same [`Ledger::state_digest`]. It never reads a
/// clock or a global RNG: the epoch and timestamp of a batch are arguments
/// (derived from consensus, identical on every node).
///
/// ```
/// use idlegrid_dag_ledger::ledger::*;
/// use idlegrid_primitives::{Amount, Epoch, Keypair, Seed, Timestamp};
///
/// let alice = Keypair::from_seed(&Seed::from_u64(1));
/// let bob = Keypair::from_seed(&Seed::from_u64(2));
/// let genesis = Genesis {
///     balances: vec![(alice.account_id(), Amount::new(1_000_000))],
///     stakes: vec![],
///     params: Params::default(),
/// };
/// let mut ledger = Ledger::new(genesis).unwrap();
/// let tx = Transaction {
///     chain: ledger.params().chain_id,
///     sender: alice.account_id(),
///     nonce: ledger.nonce(&alice.account_id()),
///     kind: TxKind::Transfer { to: bob.account_id(), amount: Amount::new(5_000) },
/// }
/// .sign(&alice);
/// let ctx = BatchContext::at(Epoch::new(1), Timestamp::ZERO);
/// let result = ledger
///     .apply_batch(ctx, &[tx.to_bytes()], &mut Host::default_for(&mut NoApps))
///     .unwrap();
/// assert!(result.receipts[0].is_ok());
/// assert_eq!(ledger.balance(&bob.account_id()), Amount::new(5_000));
/// assert_eq!(result.state_digest, ledger.state_digest());
/// check_all(&ledger).unwrap();
/// ```
#[derive(Clone)]
pub struct Ledger {
    pub(crate) state: State,
    /// Leaf and bucket digests of `state`, updated after every batch.
    pub(crate) commitment: StateCommitment,
    /// Randomizes batch signature verification; not replicated state.
    pub(crate) verify_rng: ChaCha20Rng,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("epoch", &self.state.epoch)
            .field("accounts", &self.state.accounts.len())
            .field("escrows", &self.state.escrows.len())
            .field("burned", &self.state.burned)
            .finish_non_exhaustive()
    }
}

impl Ledger {
    /// Builds the ledger from a genesis, or says what is wrong with it.
    pub fn new(genesis: Genesis) -> Result<Self, LedgerError> {
        let bad = |m: String| LedgerError::InvalidGenesis(m);
        genesis.params.validate()?;
        if genesis.balances.len() + genesis.stakes.len() > limits::MAX_GENESIS_ACCOUNTS {
            return Err(bad("too many genesis entries".into()));
        }
        let mut accounts: CowMap<AccountId, Account> = CowMap::new();
        let mut seen_b = BTreeSet::new();
        let mut seen_s = BTreeSet::new();
        for (lists, stake) in [(&genesis.balances, false), (&genesis.stakes, true)] {
            for (id, amount) in lists {
                let seen = if stake { &mut seen_s } else { &mut seen_b };
                if !seen.insert(*id) {
                    return Err(bad(format!("account {id:?} listed twice")));
                }
                if !id.public_key().is_valid() {
                    return Err(bad(format!("account {id:?} is not a valid public key")));
                }
                let acc = accounts.get_or_insert_with(*id, Account::default);
                let slot = if stake {
                    &mut acc.bonded
                } else {
                    &mut acc.balance
                };
                *slot = slot.checked_add(*amount)?;
            }
        }
        let initial_supply = Amount::checked_sum(
            genesis
                .balances
                .iter()
                .chain(genesis.stakes.iter())
                .map(|(_, a)| *a),
        )
        .map_err(|_| bad("total supply overflows".into()))?;
        let state = State {
            params: genesis.params,
            initial_supply,
            burned: Amount::ZERO,
            epoch: Epoch::ZERO,
            accounts,
            escrows: SeqMap::new(),
            locks: SeqMap::new(),
            slashed: CowSet::new(),
            next_escrow: EscrowId::new(0),
            next_lock: LockId::new(0),
        };
        Ok(Self::from_state(state))
    }

    fn from_state(state: State) -> Self {
        // A default verification seed; nodes should call
        // `set_verification_seed` with local secret material.
        let seed = Seed::from_bytes(Digest::of(STATE_DOMAIN, &state.params).to_bytes())
            .derive("batch-verify");
        Self {
            commitment: StateCommitment::build(&state),
            state,
            verify_rng: ChaCha20Rng::from_seed(seed.to_bytes()),
        }
    }

    /// Seeds the RNG that randomizes batch signature verification. It must
    /// be unpredictable to transaction authors (derive it from local secret
    /// material); it never affects the replicated state.
    pub fn set_verification_seed(&mut self, seed: &Seed) {
        self.verify_rng = seed.rng();
    }

    // ---- queries ----

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.state.params
    }
    /// The epoch of the last applied batch.
    pub fn epoch(&self) -> Epoch {
        self.state.epoch
    }
    /// An account, if it exists.
    pub fn account(&self, id: &AccountId) -> Option<&Account> {
        self.state.accounts.get(id)
    }
    /// All accounts, in id order.
    pub fn accounts(&self) -> impl Iterator<Item = (&AccountId, &Account)> {
        self.state.accounts.iter()
    }
    /// Free balance (zero for unknown accounts).
    pub fn balance(&self, id: &AccountId) -> Amount {
        self.account(id).map_or(Amount::ZERO, |a| a.balance)
    }
    /// Bonded stake, including locked stake (zero for unknown accounts).
    pub fn bonded(&self, id: &AccountId) -> Amount {
        self.account(id).map_or(Amount::ZERO, |a| a.bonded)
    }
    /// Bonded stake locked as collateral (zero for unknown accounts).
    pub fn locked(&self, id: &AccountId) -> Amount {
        self.account(id).map_or(Amount::ZERO, |a| a.locked)
    }
    /// Stake pending unbonding (zero for unknown accounts).
    pub fn unbonding(&self, id: &AccountId) -> Amount {
        self.account(id)
            .map_or(Amount::ZERO, Account::unbonding_total)
    }
    /// The nonce the account's next transaction must carry.
    pub fn nonce(&self, id: &AccountId) -> Nonce {
        self.account(id).map_or(Nonce::new(0), |a| a.nonce)
    }
    /// Transactions the account may still make in `epoch`.
    pub fn quota_remaining(&self, id: &AccountId, epoch: Epoch) -> u64 {
        self.account(id)
            .map_or(0, |a| quota::remaining(&self.state.params, a, epoch))
    }
    /// An open escrow.
    pub fn escrow(&self, id: EscrowId) -> Option<&Escrow> {
        self.state.escrows.get(&id)
    }
    /// All open escrows, in id order.
    pub fn escrows(&self) -> impl Iterator<Item = (&EscrowId, &Escrow)> {
        self.state.escrows.iter()
    }
    /// A held collateral lock.
    pub fn lock(&self, id: LockId) -> Option<&Lock> {
        self.state.locks.get(&id)
    }
    /// All locks, in id order.
    pub fn locks(&self) -> impl Iterator<Item = (&LockId, &Lock)> {
        self.state.locks.iter()
    }
    /// The supply at genesis.
    pub fn initial_supply(&self) -> Amount {
        self.state.initial_supply
    }
    /// Tokens destroyed by slashing so far.
    pub fn burned(&self) -> Amount {
        self.state.burned
    }
    /// The current total supply: `initial_supply - burned`.
    pub fn total_supply(&self) -> Amount {
        self.state.initial_supply.saturating_sub(self.state.burned)
    }
    /// True if this offense id was already slashed.
    pub fn is_slashed(&self, offense_id: &Digest) -> bool {
        self.state.slashed.contains(offense_id)
    }

    // ---- digest and snapshots ----

    /// The digest of the whole replicated state under [`STATE_DOMAIN`]: a
    /// two-level blake3 tree over every entry (see the `commitment`
    /// module), maintained incrementally, so this is O(1) and a batch costs
    /// O(entries it touched).
    pub fn state_digest(&self) -> Digest {
        self.commitment.digest(&self.state)
    }

    /// [`Ledger::state_digest`] recomputed from the whole state (O(state));
    /// [`crate::ledger::check_all`] checks that the two agree.
    pub fn state_digest_recomputed(&self) -> Digest {
        StateCommitment::build(&self.state).digest(&self.state)
    }

    /// The whole state as canonical bytes, for a node that joins late.
    pub fn snapshot(&self) -> Vec<u8> {
        encode(&(SNAPSHOT_VERSION, &self.state))
    }

    /// Rebuilds a ledger from [`Ledger::snapshot`] bytes (at most `max_len`),
    /// checking every invariant before accepting it.
    pub fn from_snapshot(bytes: &[u8], max_len: usize) -> Result<Self, LedgerError> {
        let snap: Snapshot =
            decode(bytes, max_len).map_err(|e| LedgerError::InvalidSnapshot(e.to_string()))?;
        if snap.version != SNAPSHOT_VERSION {
            return Err(LedgerError::InvalidSnapshot(format!(
                "unsupported version {}",
                snap.version
            )));
        }
        snap.state
            .params
            .validate()
            .map_err(|e| LedgerError::InvalidSnapshot(e.to_string()))?;
        let ledger = Self::from_state(snap.state);
        // Not `check_all`: its commitment check would rebuild the commitment
        // `from_state` just built from the same state, and compare equals.
        invariants::check_supply(&ledger)
            .and_then(|()| invariants::check_no_negative(&ledger))
            .and_then(|()| invariants::check_accounting(&ledger))
            .map_err(|e| LedgerError::InvalidSnapshot(e.to_string()))?;
        Ok(ledger)
    }
}
