//! Genesis: the initial balances and stakes, and the ledger's parameters.

use idlegrid_primitives::{AccountId, Amount};
use serde::{Deserialize, Serialize};

use super::error::LedgerError;
use super::ids::ChainId;

/// Hard upper bounds on the parameters, so that a misconfigured genesis
/// cannot make state or transactions unbounded.
pub mod limits {
    /// Largest allowed `Params::max_escrows_per_account`.
    pub const MAX_ESCROWS_PER_ACCOUNT: u32 = 4_096;
    /// Largest allowed `Params::max_unbonding_entries`.
    pub const MAX_UNBONDING_ENTRIES: u32 = 64;
    /// Largest allowed `Params::max_locks_per_account`.
    pub const MAX_LOCKS_PER_ACCOUNT: u32 = 4_096;
    /// Largest allowed `Params::max_app_payload`, in bytes.
    pub const MAX_APP_PAYLOAD: u32 = 64 * 1024;
    /// Largest allowed evidence payload, in bytes.
    pub const MAX_EVIDENCE_BYTES: usize = 16 * 1024;
    /// Largest accepted encoded transaction, in bytes (payload plus envelope).
    pub const MAX_TX_BYTES: usize = MAX_APP_PAYLOAD as usize + MAX_EVIDENCE_BYTES + 1024;
    /// Largest number of accounts at genesis.
    pub const MAX_GENESIS_ACCOUNTS: usize = 1 << 20;
}

/// The ledger's parameters, fixed at genesis and part of the state digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// The network this ledger belongs to; transactions name it.
    pub chain_id: ChainId,
    /// Epochs between an unbond and the moment the stake can be withdrawn;
    /// during this delay the stake can still be slashed.
    pub unbonding_delay_epochs: u64,
    /// Transactions per epoch every account gets (see [`super::quota`]).
    pub quota_base: u64,
    /// One extra transaction per epoch per this much balance + bonded stake.
    pub quota_unit: Amount,
    /// The most transactions any account can make in one epoch.
    pub quota_max: u64,
    /// The smallest transfer (or escrow) that may create a new account; the
    /// price of a Sybil identity.
    pub min_new_account: Amount,
    /// Open escrows per payer.
    pub max_escrows_per_account: u32,
    /// Pending unbonding entries per account.
    pub max_unbonding_entries: u32,
    /// Collateral locks per account.
    pub max_locks_per_account: u32,
    /// Largest application payload, in bytes.
    pub max_app_payload: u32,
    /// Share of a consensus slash paid to the reporter, in basis points; the
    /// rest is burned.
    pub slash_reporter_bps: u16,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            chain_id: ChainId::new(0),
            unbonding_delay_epochs: 10,
            quota_base: 4,
            quota_unit: Amount::new(1_000),
            quota_max: 10_000,
            min_new_account: Amount::new(1_000),
            max_escrows_per_account: 256,
            max_unbonding_entries: 16,
            max_locks_per_account: 256,
            max_app_payload: 16 * 1024,
            slash_reporter_bps: 1_000,
        }
    }
}

impl Params {
    /// Checks the parameters against [`limits`].
    pub fn validate(&self) -> Result<(), LedgerError> {
        let bad = |m: &str| Err(LedgerError::InvalidGenesis(m.to_string()));
        if self.quota_unit.is_zero() {
            return bad("quota_unit must be positive");
        }
        if self.quota_max == 0 || self.quota_base > self.quota_max {
            return bad("need quota_max > 0 and quota_base <= quota_max");
        }
        if self.max_escrows_per_account > limits::MAX_ESCROWS_PER_ACCOUNT
            || self.max_unbonding_entries > limits::MAX_UNBONDING_ENTRIES
            || self.max_locks_per_account > limits::MAX_LOCKS_PER_ACCOUNT
            || self.max_app_payload > limits::MAX_APP_PAYLOAD
        {
            return bad("a per-account bound exceeds the hard limits in ledger::limits");
        }
        if self.slash_reporter_bps > 10_000 {
            return bad("slash_reporter_bps must be at most 10000");
        }
        Ok(())
    }
}

/// The initial state: free balances, bonded stakes and parameters.
///
/// The initial supply is the sum of all balances and stakes; from then on
/// only slashing burns tokens and nothing mints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Free balances.
    pub balances: Vec<(AccountId, Amount)>,
    /// Bonded stakes (an account may appear in both lists).
    pub stakes: Vec<(AccountId, Amount)>,
    /// Parameters.
    pub params: Params,
}
