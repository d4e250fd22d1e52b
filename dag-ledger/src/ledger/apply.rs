//! Applying a committed batch: decode, verify signatures (batched), then
//! apply each transaction atomically, in order.

use idlegrid_primitives::{
    AccountId, Amount, BatchItem, Digest, Epoch, SignatureVerifier, Timestamp,
};

use super::app::{ApplicationRegistry, LedgerHandle, ManagedHandle};
use super::commitment::Touched;
use super::error::LedgerError;
use super::escrow::Actor;
use super::ids::EscrowId;
use super::ledger::Ledger;
use super::quota;
use super::slashing::{EvidenceVerifier, NoEvidence};
use super::staking::SlashOutcome;
use super::state::StateTx;
use super::transaction::{SignedTransaction, TX_DOMAIN, TX_ID_DOMAIN, TxKind, signed_part};

/// Where a batch sits in time, and its committed randomness. Every field
/// must come from consensus (e.g. the committing leader's round and
/// timestamp, the commit's digest), never from a local clock or RNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchContext {
    /// The epoch (non-decreasing from batch to batch).
    pub epoch: Epoch,
    /// The consensus timestamp, passed to applications.
    pub now: Timestamp,
    /// The batch's committed randomness, passed to applications
    /// ([`ManagedHandle::beacon`]): identical at every replica and fixed
    /// only once the batch is committed. A composition takes it from its
    /// consensus commit (the reference node uses the commit's running
    /// sub-DAG digest, which covers the committed leader block).
    pub beacon: Digest,
}

impl BatchContext {
    /// A context without committed randomness (an all-zero beacon): for
    /// tests, benchmarks and single-node examples whose applications draw
    /// nothing from the beacon.
    pub fn at(epoch: Epoch, now: Timestamp) -> Self {
        Self {
            epoch,
            now,
            beacon: Digest::from_bytes([0; 32]),
        }
    }
}

/// How signatures are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignatureCheck {
    /// One batch verification for the whole batch; if it fails, each
    /// signature is checked alone to find the bad ones.
    #[default]
    Batch,
    /// Each signature checked alone.
    Single,
    /// No check: only for benchmarks, tests and tools that apply
    /// transactions they signed themselves. Never for a committed batch a
    /// validator received: any proposer can put any bytes in its block, so
    /// a check at some gateway proves nothing about a batch (pass the
    /// gateway's memoizing [`SignatureVerifier`] in [`Host::verifier`]
    /// instead, and what it verified is not verified twice).
    Skip,
}

/// What the ledger needs from the composition root while applying a batch.
pub struct Host<'h> {
    /// Registered applications.
    pub apps: &'h mut dyn ApplicationRegistry,
    /// Checks slashing evidence.
    pub evidence: &'h dyn EvidenceVerifier,
    /// How to check signatures.
    pub signatures: SignatureCheck,
    /// What checks them: plain by default; a memoizing verifier skips the
    /// signatures it already verified (at the node's gateway, or for
    /// another validator of the same process) and remembers the new ones.
    pub verifier: &'h SignatureVerifier,
}

/// The verifier of [`Host::default_for`].
static PLAIN: SignatureVerifier = SignatureVerifier::plain();

impl std::fmt::Debug for Host<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("signatures", &self.signatures)
            .finish_non_exhaustive()
    }
}

impl<'h> Host<'h> {
    /// `apps`, no evidence kinds, batch signature verification.
    pub fn default_for(apps: &'h mut dyn ApplicationRegistry) -> Self {
        Self {
            apps,
            evidence: &NoEvidence,
            signatures: SignatureCheck::Batch,
            verifier: &PLAIN,
        }
    }
}

/// What an applied transaction produced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// Applied; nothing to report.
    Done,
    /// An escrow was opened.
    EscrowOpened(EscrowId),
    /// An escrow paid out (release) or returned (refund) this amount.
    EscrowSettled(Amount),
    /// Matured unbondings withdrawn.
    Withdrawn(Amount),
    /// A stake was slashed.
    Slashed(SlashOutcome),
    /// An application's output bytes.
    App(Vec<u8>),
}

/// The receipt of an applied transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Digest of the transaction bytes.
    pub tx_id: Digest,
    /// Its sender.
    pub sender: AccountId,
    /// What it produced.
    pub outcome: Outcome,
}

/// The result of [`Ledger::apply_batch`]: one receipt or typed rejection per
/// transaction, in order, and the state digest after the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchResult {
    /// The batch's epoch.
    pub epoch: Epoch,
    /// Per transaction: applied, or rejected (and without effect) because…
    pub receipts: Vec<Result<Receipt, LedgerError>>,
    /// [`Ledger::state_digest`] after the batch.
    pub state_digest: Digest,
}

impl BatchResult {
    /// Number of applied transactions.
    pub fn applied(&self) -> usize {
        self.receipts.iter().filter(|r| r.is_ok()).count()
    }
    /// Number of rejected transactions.
    pub fn rejected(&self) -> usize {
        self.receipts.len() - self.applied()
    }
}

struct Decoded<'b> {
    tx: SignedTransaction,
    msg: &'b [u8],
    id: Digest,
}

impl Ledger {
    /// Applies a committed batch of encoded [`SignedTransaction`]s, in order.
    ///
    /// Deterministic: same state, same context, same bytes, same result on
    /// every node. Each transaction is applied atomically: a rejected one
    /// (malformed, bad signature, bad nonce, over quota, insufficient funds…)
    /// changes nothing and its receipt says why. The only batch-level error
    /// is an epoch going backwards, in which case nothing is applied.
    pub fn apply_batch<B: AsRef<[u8]>>(
        &mut self,
        ctx: BatchContext,
        txs: &[B],
        host: &mut Host<'_>,
    ) -> Result<BatchResult, LedgerError> {
        let decoded: Vec<Result<Decoded<'_>, LedgerError>> = txs
            .iter()
            .map(|b| {
                let bytes = b.as_ref();
                SignedTransaction::from_bytes(bytes).map(|tx| Decoded {
                    tx,
                    msg: signed_part(bytes),
                    id: Digest::hash(TX_ID_DOMAIN, bytes),
                })
            })
            .collect();
        self.apply_decoded(ctx, decoded, host)
    }

    /// Like [`Ledger::apply_batch`] for already decoded transactions.
    pub fn apply_signed_batch(
        &mut self,
        ctx: BatchContext,
        txs: &[SignedTransaction],
        host: &mut Host<'_>,
    ) -> Result<BatchResult, LedgerError> {
        let bytes: Vec<Vec<u8>> = txs.iter().map(SignedTransaction::to_bytes).collect();
        self.apply_batch(ctx, &bytes, host)
    }

    fn apply_decoded(
        &mut self,
        ctx: BatchContext,
        decoded: Vec<Result<Decoded<'_>, LedgerError>>,
        host: &mut Host<'_>,
    ) -> Result<BatchResult, LedgerError> {
        if ctx.epoch < self.state.epoch {
            return Err(LedgerError::EpochRegressed {
                last: self.state.epoch,
                got: ctx.epoch,
            });
        }
        let sig_ok = self.check_signatures(&decoded, host.signatures, host.verifier);
        self.state.epoch = ctx.epoch;
        let mut receipts = Vec::with_capacity(decoded.len());
        let mut touched = Touched::default();
        for (d, ok) in decoded.into_iter().zip(sig_ok) {
            let r = d.and_then(|d| {
                if !ok {
                    return Err(LedgerError::BadSignature(d.tx.tx.sender));
                }
                let mut stx = StateTx::begin(&mut self.state);
                let outcome = execute(&mut stx, ctx, &d.tx, host)?;
                stx.commit(&mut touched);
                Ok(Receipt {
                    tx_id: d.id,
                    sender: d.tx.tx.sender,
                    outcome,
                })
            });
            receipts.push(r);
        }
        self.end_batch(ctx, host, &mut touched);
        self.commitment.update(&self.state, touched);
        Ok(BatchResult {
            epoch: ctx.epoch,
            receipts,
            state_digest: self.state_digest(),
        })
    }

    /// Runs every registered application's end-of-batch hook, in the
    /// registry's order, each inside its own state transaction.
    fn end_batch(&mut self, ctx: BatchContext, host: &mut Host<'_>, touched: &mut Touched) {
        for app in host.apps.app_ids() {
            let Some(a) = host.apps.get_mut(app) else {
                continue;
            };
            let mut stx = StateTx::begin(&mut self.state);
            let mut handle = ManagedHandle {
                tx: &mut stx,
                app,
                now: ctx.now,
                beacon: ctx.beacon,
            };
            a.end_batch(&mut handle);
            stx.commit(touched);
        }
    }

    /// Per decoded transaction: does its signature verify?
    fn check_signatures(
        &mut self,
        decoded: &[Result<Decoded<'_>, LedgerError>],
        mode: SignatureCheck,
        verifier: &SignatureVerifier,
    ) -> Vec<bool> {
        let single = |d: &Decoded<'_>| {
            let pk = d.tx.tx.sender.public_key();
            verifier
                .verify(&pk, TX_DOMAIN, d.msg, &d.tx.signature)
                .is_ok()
        };
        let each = || {
            decoded
                .iter()
                .map(|d| d.as_ref().is_ok_and(single))
                .collect()
        };
        match mode {
            SignatureCheck::Skip => vec![true; decoded.len()],
            SignatureCheck::Single => each(),
            SignatureCheck::Batch => {
                let keys: Vec<_> = decoded
                    .iter()
                    .flatten()
                    .map(|d| d.tx.tx.sender.public_key())
                    .collect();
                let items: Vec<BatchItem<'_>> = decoded
                    .iter()
                    .flatten()
                    .zip(&keys)
                    .map(|(d, pk)| BatchItem {
                        domain: TX_DOMAIN,
                        msg: d.msg,
                        public: pk,
                        signature: &d.tx.signature,
                    })
                    .collect();
                if verifier.verify_batch(&items, &mut self.verify_rng).is_ok() {
                    decoded.iter().map(Result::is_ok).collect()
                } else {
                    each()
                }
            }
        }
    }
}

/// Applies one verified transaction inside `stx`.
fn execute(
    stx: &mut StateTx<'_>,
    ctx: BatchContext,
    signed: &SignedTransaction,
    host: &mut Host<'_>,
) -> Result<Outcome, LedgerError> {
    let tx = &signed.tx;
    let sender = tx.sender;
    let expected = stx.params().chain_id;
    if tx.chain != expected {
        return Err(LedgerError::WrongChain {
            expected,
            got: tx.chain,
        });
    }
    let acc = stx.existing(&sender)?;
    if tx.nonce != acc.nonce {
        return Err(LedgerError::BadNonce {
            expected: acc.nonce,
            got: tx.nonce,
        });
    }
    let next_nonce = acc
        .nonce
        .checked_next()
        .ok_or(LedgerError::NonceExhausted)?;
    let quota = quota::quota_of(stx.params(), acc);
    if quota::used_in(acc, ctx.epoch) >= quota {
        return Err(LedgerError::QuotaExceeded {
            quota,
            epoch: ctx.epoch,
        });
    }
    let me = Actor::Account(sender);
    let outcome = match &tx.kind {
        TxKind::Transfer { to, amount } => {
            stx.transfer(&sender, to, *amount).map(|()| Outcome::Done)
        }
        TxKind::Bond { amount } => stx.bond(&sender, *amount).map(|()| Outcome::Done),
        TxKind::Unbond { amount } => stx.unbond(&sender, *amount).map(|()| Outcome::Done),
        TxKind::Withdraw => stx.withdraw(&sender).map(Outcome::Withdrawn),
        TxKind::EscrowOpen {
            payee,
            amount,
            deadline,
        } => stx
            .escrow_open(&sender, payee, *amount, *deadline, None)
            .map(Outcome::EscrowOpened),
        TxKind::EscrowRelease { escrow, amount } => stx
            .escrow_release(me, *escrow, *amount)
            .map(Outcome::EscrowSettled),
        TxKind::EscrowRefund { escrow } => {
            stx.escrow_refund(me, *escrow).map(Outcome::EscrowSettled)
        }
        TxKind::Slash(evidence) => stx
            .slash_with_evidence(&sender, evidence, host.evidence)
            .map(Outcome::Slashed),
        TxKind::App { app_id, payload } => {
            let max = stx.params().max_app_payload as usize;
            if payload.len() > max {
                return Err(LedgerError::PayloadTooLarge {
                    len: payload.len(),
                    max,
                });
            }
            let app = host
                .apps
                .get_mut(*app_id)
                .ok_or(LedgerError::UnknownApp(*app_id))?;
            let mut handle = LedgerHandle {
                managed: ManagedHandle {
                    tx: stx,
                    app: *app_id,
                    now: ctx.now,
                    beacon: ctx.beacon,
                },
                sender,
            };
            let out = app.apply(&mut handle, payload)?;
            if out.len() > max {
                return Err(LedgerError::PayloadTooLarge {
                    len: out.len(),
                    max,
                });
            }
            Ok(Outcome::App(out))
        }
    }?;
    let acc = stx.account_mut(&sender)?;
    acc.nonce = next_nonce;
    quota::charge(acc, ctx.epoch);
    Ok(outcome)
}
