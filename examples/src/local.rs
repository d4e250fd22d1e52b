//! An in-process ledger for the examples: one [`Ledger`] with the
//! [`JobsApp`], fed one batch per protocol step.
//!
//! A real node gets its batches from consensus (`consensus::Validator`'s
//! committed sub-DAGs, linearized); here each call to [`LocalLedger::commit`]
//! stands in for one committed batch, with a consensus timestamp that moves
//! forward by one virtual second per batch. Nothing reads a clock.

use std::error::Error;

use idlegrid_dag_ledger::ledger::NoEvidence;
use idlegrid_dag_ledger::ledger::{
    BatchContext, BatchResult, ChainId, Genesis, Host, Ledger, LedgerError, Nonce, Params,
    SignatureCheck, Transaction, TxKind, check_all,
};
use idlegrid_primitives::{AccountId, Amount, Digest, Epoch, Keypair, Timestamp};

use crate::jobs_app::{JOBS_APP, JobTx, JobsApp, JobsRegistry};

/// The ledger, its application and the batch clock.
#[derive(Debug)]
pub struct LocalLedger {
    /// The replicated state.
    pub ledger: Ledger,
    /// The registry holding the [`JobsApp`].
    pub apps: JobsRegistry,
    epoch: Epoch,
    now: Timestamp,
    chain: ChainId,
}

impl LocalLedger {
    /// A ledger from genesis balances and bonded stakes.
    pub fn new(
        balances: Vec<(AccountId, Amount)>,
        stakes: Vec<(AccountId, Amount)>,
        beacon: Digest,
    ) -> Result<Self, LedgerError> {
        let params = Params::default();
        let chain = params.chain_id;
        let ledger = Ledger::new(Genesis {
            balances,
            stakes,
            params,
        })?;
        Ok(Self {
            ledger,
            apps: JobsRegistry {
                app: JobsApp::new(beacon),
            },
            epoch: Epoch::new(1),
            now: Timestamp::from_millis(1_000),
            chain,
        })
    }

    /// The application.
    pub fn app(&self) -> &JobsApp {
        &self.apps.app
    }

    /// The application, mutably (to drain reputation effects).
    pub fn app_mut(&mut self) -> &mut JobsApp {
        &mut self.apps.app
    }

    /// The epoch the next batch is applied in.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The consensus time of the next batch.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Signs `kinds` (with consecutive nonces per sender) and applies them as
    /// one committed batch. Every transaction must be applied: a rejection is
    /// returned as an error naming the transaction, so the examples stop at
    /// the first surprise. The ledger invariants are checked after the batch.
    pub fn commit(&mut self, txs: Vec<(&Keypair, TxKind)>) -> Result<BatchResult, Box<dyn Error>> {
        let signed = self.sign(txs);
        let ctx = BatchContext::at(self.epoch, self.now);
        let mut host = Host {
            apps: &mut self.apps,
            evidence: &NoEvidence,
            signatures: SignatureCheck::Batch,
        };
        let result = self.ledger.apply_signed_batch(ctx, &signed, &mut host)?;
        self.epoch = self.epoch.next();
        self.now = self
            .now
            .saturating_add(idlegrid_primitives::Duration::from_secs(1));
        check_all(&self.ledger).map_err(|e| format!("ledger invariant broken: {e:?}"))?;
        for (i, r) in result.receipts.iter().enumerate() {
            if let Err(e) = r {
                return Err(format!("transaction {i} of the batch was rejected: {e}").into());
            }
        }
        Ok(result)
    }

    /// Like [`LocalLedger::commit`], for [`JobTx`]s.
    pub fn commit_jobs(
        &mut self,
        txs: Vec<(&Keypair, JobTx)>,
    ) -> Result<BatchResult, Box<dyn Error>> {
        self.commit(
            txs.into_iter()
                .map(|(k, j)| {
                    (
                        k,
                        TxKind::App {
                            app_id: JOBS_APP,
                            payload: j.payload(),
                        },
                    )
                })
                .collect(),
        )
    }

    fn sign(
        &self,
        txs: Vec<(&Keypair, TxKind)>,
    ) -> Vec<idlegrid_dag_ledger::ledger::SignedTransaction> {
        let mut next: std::collections::BTreeMap<AccountId, Nonce> = Default::default();
        txs.into_iter()
            .map(|(key, kind)| {
                let sender = key.account_id();
                let nonce = *next
                    .entry(sender)
                    .or_insert_with(|| self.ledger.nonce(&sender));
                next.insert(sender, nonce.checked_next().expect("nonce space"));
                Transaction {
                    chain: self.chain,
                    sender,
                    nonce,
                    kind,
                }
                .sign(key)
            })
            .collect()
    }

    /// Free balance plus bonded stake of `who` (locked stake included).
    pub fn holdings(&self, who: &AccountId) -> Amount {
        self.ledger
            .balance(who)
            .saturating_add(self.ledger.bonded(who))
    }
}
