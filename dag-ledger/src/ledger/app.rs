//! The application hook: extra transaction kinds registered by the
//! composition root (market, entrap, reputation, …).
//!
//! An [`Application`] receives the payload of a [`TxKind::App`] transaction
//! together with a [`LedgerHandle`]. The handle is the *only* way it can
//! touch funds, and it exposes checked, supply-conserving operations whose
//! authority is limited to
//!
//! - the transaction's **sender**, who signed it: pay from the sender, open
//!   an escrow funded by the sender, lock the sender's free stake;
//! - what this application **already manages**: escrows it opened, locks it
//!   holds (release, refund, unlock, slash to a beneficiary or burn).
//!
//! There is no raw balance write. Every handle operation is atomic, and the
//! whole transaction is too: if [`Application::apply`] returns an error, all
//! the ledger operations it performed are rolled back.
//!
//! **Time-driven work** (closing an order batch, clearing a market, firing
//! deadlines) belongs to the ledger itself, not to keeper transactions:
//! after every committed batch the ledger calls [`Application::end_batch`]
//! on each registered application, in [`ApplicationRegistry::app_ids`]
//! order, with a [`ManagedHandle`]. That handle has no sender, so it can
//! move only what the application already manages; each of its operations
//! is atomic on its own.
//!
//! The application's *own* state is its business: perform the fallible
//! ledger operations first and mutate your state only once they succeeded
//! (or undo your changes before returning an error). Applications run inside
//! the replicated state machine, so they must be deterministic.
//!
//! [`TxKind::App`]: super::TxKind::App

use std::collections::BTreeMap;

use idlegrid_primitives::{AccountId, Amount, Digest, Epoch, Timestamp};

use super::account::Account;
use super::app_error::{AppError, AppErrorType};
use super::error::LedgerError;
use super::escrow::{Actor, Escrow};
use super::ids::{AppId, EscrowId, LockId};
use super::staking::{Lock, SlashOutcome};
use super::state::StateTx;

/// An extra transaction kind.
pub trait Application {
    /// Applies one transaction's payload. Returns output bytes for the
    /// receipt (at most `Params::max_app_payload` bytes), or an error that
    /// rejects the transaction and rolls back its ledger operations.
    fn apply(
        &mut self,
        ledger: &mut LedgerHandle<'_, '_>,
        payload: &[u8],
    ) -> Result<Vec<u8>, LedgerError>;

    /// Time-driven work after every committed batch (also an empty one):
    /// `ledger.now()` is the batch's consensus timestamp. Must be
    /// deterministic; cannot fail as a whole (each ledger operation is
    /// atomic and reports its own error). The default does nothing.
    fn end_batch(&mut self, ledger: &mut ManagedHandle<'_, '_>) {
        let _ = ledger;
    }
}

/// Looks applications up by id.
pub trait ApplicationRegistry {
    /// The application registered under `id`, if any.
    fn get_mut(&mut self, id: AppId) -> Option<&mut dyn Application>;

    /// The registered ids, in the order their [`Application::end_batch`]
    /// hooks run. A registry that lists none (the default) gets no
    /// end-of-batch calls.
    fn app_ids(&self) -> Vec<AppId> {
        Vec::new()
    }
}

/// No applications: every [`super::TxKind::App`] is rejected as unknown.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoApps;

impl ApplicationRegistry for NoApps {
    fn get_mut(&mut self, _: AppId) -> Option<&mut dyn Application> {
        None
    }
}

/// A simple registry of boxed applications.
#[derive(Default)]
pub struct AppRegistry {
    apps: BTreeMap<AppId, Box<dyn Application>>,
}

impl std::fmt::Debug for AppRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppRegistry")
            .field("apps", &self.apps.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl AppRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `app` under `id`, returning the application it replaces.
    pub fn register(
        &mut self,
        id: AppId,
        app: Box<dyn Application>,
    ) -> Option<Box<dyn Application>> {
        self.apps.insert(id, app)
    }
}

impl ApplicationRegistry for AppRegistry {
    fn get_mut(&mut self, id: AppId) -> Option<&mut dyn Application> {
        match self.apps.get_mut(&id) {
            Some(b) => Some(b.as_mut()),
            None => None,
        }
    }

    fn app_ids(&self) -> Vec<AppId> {
        self.apps.keys().copied().collect()
    }
}

/// The restricted, transactional view of the ledger given to an
/// [`Application`] for one transaction (see the module docs for what it may
/// do): everything a [`ManagedHandle`] offers (through `Deref`), plus the
/// operations on the signed sender's own funds.
pub struct LedgerHandle<'s, 'a> {
    pub(crate) managed: ManagedHandle<'s, 'a>,
    pub(crate) sender: AccountId,
}

/// The view of the ledger limited to what one application already manages
/// (its escrows and locks) plus read-only queries. It is what
/// [`Application::end_batch`] receives: with no sender, nobody's free funds
/// can be touched.
pub struct ManagedHandle<'s, 'a> {
    pub(crate) tx: &'s mut StateTx<'a>,
    pub(crate) app: AppId,
    pub(crate) now: Timestamp,
    pub(crate) beacon: Digest,
}

impl std::fmt::Debug for LedgerHandle<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerHandle")
            .field("app", &self.managed.app)
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ManagedHandle<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedHandle")
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

impl<'s, 'a> std::ops::Deref for LedgerHandle<'s, 'a> {
    type Target = ManagedHandle<'s, 'a>;
    fn deref(&self) -> &Self::Target {
        &self.managed
    }
}

impl std::ops::DerefMut for LedgerHandle<'_, '_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.managed
    }
}

impl LedgerHandle<'_, '_> {
    /// The signed sender of the transaction.
    pub fn sender(&self) -> AccountId {
        self.sender
    }

    // ---- operations on the sender's funds ----

    /// Pays `amount` of the sender's free balance to `to`.
    pub fn transfer(&mut self, to: &AccountId, amount: Amount) -> Result<(), LedgerError> {
        let from = self.sender;
        self.managed.tx.atomic(|t| t.transfer(&from, to, amount))
    }

    /// Opens an escrow funded by the sender, managed by this application.
    pub fn open_escrow(
        &mut self,
        payee: &AccountId,
        amount: Amount,
        deadline: Epoch,
    ) -> Result<EscrowId, LedgerError> {
        let (payer, app) = (self.sender, self.managed.app);
        self.managed
            .tx
            .atomic(|t| t.escrow_open(&payer, payee, amount, deadline, Some(app)))
    }

    /// Locks `amount` of the sender's free stake as collateral held by this
    /// application.
    pub fn lock_stake(&mut self, amount: Amount) -> Result<LockId, LedgerError> {
        let (owner, app) = (self.sender, self.managed.app);
        self.managed
            .tx
            .atomic(|t| t.lock_stake(&owner, app, amount))
    }
}

impl ManagedHandle<'_, '_> {
    // ---- context and queries ----

    /// This application's id.
    pub fn app_id(&self) -> AppId {
        self.app
    }
    /// The batch's epoch.
    pub fn epoch(&self) -> Epoch {
        self.tx.epoch()
    }
    /// The batch's consensus timestamp.
    pub fn now(&self) -> Timestamp {
        self.now
    }
    /// The batch's committed randomness ([`super::BatchContext::beacon`]):
    /// the same at every replica, unknown to anyone before the batch was
    /// committed. Draw lotteries (e.g. referee sortition) from it, bound to
    /// what they are for.
    pub fn beacon(&self) -> Digest {
        self.beacon
    }
    /// An account, if it exists (read-only).
    pub fn account(&self, id: &AccountId) -> Option<&Account> {
        self.tx.account(id)
    }
    /// Free balance (zero for unknown accounts).
    pub fn balance(&self, id: &AccountId) -> Amount {
        self.tx.account(id).map_or(Amount::ZERO, |a| a.balance)
    }
    /// Bonded stake, locked or not (zero for unknown accounts).
    pub fn bonded(&self, id: &AccountId) -> Amount {
        self.tx.account(id).map_or(Amount::ZERO, |a| a.bonded)
    }
    /// Bonded stake not yet locked (zero for unknown accounts).
    pub fn free_stake(&self, id: &AccountId) -> Amount {
        self.tx
            .account(id)
            .map_or(Amount::ZERO, Account::free_stake)
    }
    /// An open escrow.
    pub fn escrow(&self, id: EscrowId) -> Option<&Escrow> {
        self.tx.escrow(id)
    }
    /// A held lock.
    pub fn lock(&self, id: LockId) -> Option<&Lock> {
        self.tx.lock(id)
    }

    /// A rejection carrying this application's id and its typed `error`
    /// (see [`AppError`]).
    pub fn reject<E: AppErrorType>(&self, error: &E) -> LedgerError {
        LedgerError::App {
            app: self.app,
            error: AppError::of(error),
        }
    }

    // ---- operations on what this application manages ----

    /// Releases `amount` (all if `None`) of an escrow this application
    /// opened to its payee.
    pub fn release_escrow(
        &mut self,
        id: EscrowId,
        amount: Option<Amount>,
    ) -> Result<Amount, LedgerError> {
        let app = self.app;
        self.tx
            .atomic(|t| t.escrow_release(Actor::App(app), id, amount))
    }

    /// Releases `amount` (all if `None`) of an escrow this application
    /// opened to `recipient` instead of the payee (e.g. an app owner's fee
    /// or a dataset owner's price out of a job's escrow).
    pub fn release_escrow_to(
        &mut self,
        id: EscrowId,
        amount: Option<Amount>,
        recipient: &AccountId,
    ) -> Result<Amount, LedgerError> {
        let app = self.app;
        self.tx
            .atomic(|t| t.escrow_release_to(Actor::App(app), id, amount, Some(recipient)))
    }

    /// Refunds an escrow this application opened to its payer.
    pub fn refund_escrow(&mut self, id: EscrowId) -> Result<Amount, LedgerError> {
        let app = self.app;
        self.tx.atomic(|t| t.escrow_refund(Actor::App(app), id))
    }

    /// Releases a lock this application holds; the stake stays bonded.
    pub fn unlock(&mut self, id: LockId) -> Result<Amount, LedgerError> {
        let app = self.app;
        self.tx.atomic(|t| t.unlock(id, app))
    }

    /// Takes `amount` from a lock this application holds and pays it to
    /// `beneficiary`, or burns it if `None`.
    pub fn slash_lock(
        &mut self,
        id: LockId,
        amount: Amount,
        beneficiary: Option<&AccountId>,
    ) -> Result<SlashOutcome, LedgerError> {
        let app = self.app;
        self.tx
            .atomic(|t| t.slash_lock(id, app, amount, beneficiary))
    }
}
