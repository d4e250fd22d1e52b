//! What a commit tells light nodes: per account it concerns, the fate of
//! its transactions, the marketplace notices where it is a party and its
//! holdings after the commit, then the facts for every subscriber.
//!
//! The facts are a function of the commit's receipts and notices and the
//! post-state alone, so they are built once per applied commit
//! ([`Applied::facts`](super::shared::Applied)) for every account, not per
//! subscriber: validators that share one application of a commit (see
//! [`StateSharing`](super::StateSharing)) share its facts too, and every
//! batch a validator sends is a shared slice, not a copy. What a validator
//! adds of its own is a holdings report a subscriber asked it for.

use std::collections::BTreeMap;
use std::sync::Arc;

use idlegrid_dag_ledger::ledger::{Ledger, Outcome, SignedTransaction, TxKind};
use idlegrid_primitives::{AccountId, Amount};

use super::TxResult;
use crate::market::Notice;
use crate::wire::{AccountState, Fact, Rejection};

/// The facts of one commit (see the module docs).
#[derive(Debug, Default)]
pub(crate) struct CommitFacts {
    /// Per account the commit concerns: its facts, its holdings, then
    /// `everyone`.
    by: BTreeMap<AccountId, Arc<[Fact]>>,
    /// The same without `everyone`, when `everyone` is not empty (for the
    /// subscribers that hear it certified or from another source).
    own: BTreeMap<AccountId, Arc<[Fact]>>,
    /// The facts for every subscriber.
    everyone: Arc<[Fact]>,
}

impl CommitFacts {
    /// The facts of a commit whose transactions `txs` had `receipts` and
    /// raised `notices`, leaving `ledger`.
    pub(crate) fn build(
        txs: &[&[u8]],
        receipts: &[TxResult],
        notices: &[Notice],
        ledger: &Ledger,
    ) -> Self {
        let mut by: BTreeMap<AccountId, Vec<Fact>> = BTreeMap::new();
        for (bytes, r) in txs.iter().zip(receipts) {
            if let Some((sender, f, to)) = tx_fact(bytes, r) {
                by.entry(sender).or_default().push(f);
                if let Some(to) = to {
                    by.entry(to).or_default();
                }
            }
        }
        let mut everyone = Vec::new();
        for f in notices.iter().filter_map(Fact::from_notice) {
            if f.to_every_subscriber() {
                everyone.push(f);
                continue;
            }
            let [a, b] = f.parties();
            for p in [a, b.filter(|b| Some(*b) != a)].into_iter().flatten() {
                by.entry(p).or_default().push(f.clone());
            }
        }
        for (acct, facts) in by.iter_mut() {
            facts.extend(account_state(ledger, acct).map(Fact::Balance));
        }
        let with_everyone =
            |facts: &Vec<Fact>| -> Arc<[Fact]> { facts.iter().chain(&everyone).cloned().collect() };
        let (by, own) = match everyone.is_empty() {
            true => (
                by.into_iter().map(|(a, f)| (a, f.into())).collect(),
                BTreeMap::new(),
            ),
            false => (
                by.iter().map(|(a, f)| (*a, with_everyone(f))).collect(),
                by.into_iter().map(|(a, f)| (a, f.into())).collect(),
            ),
        };
        Self {
            by,
            own,
            everyone: everyone.into(),
        }
    }

    /// The batch of `acct` if the commit concerns it, else the facts for
    /// everyone if any, else `None`; with its holdings (from `ledger`, the
    /// post-state) if `holdings` and the commit did not report them; the
    /// facts for everyone only if `everyone`.
    pub(crate) fn batch(
        &self,
        acct: &AccountId,
        holdings: bool,
        everyone: bool,
        ledger: &Ledger,
    ) -> Option<Arc<[Fact]>> {
        let global: &[Fact] = if everyone { &self.everyone } else { &[] };
        let own = match everyone || self.everyone.is_empty() {
            true => self.by.get(acct),
            false => self.own.get(acct),
        };
        if let Some(b) = own {
            return Some(Arc::clone(b));
        }
        if holdings && let Some(s) = account_state(ledger, acct) {
            let mut facts = vec![Fact::Balance(s)];
            facts.extend(global.iter().cloned());
            return Some(facts.into());
        }
        (!global.is_empty()).then(|| Arc::clone(&self.everyone))
    }

    /// The facts for every subscriber.
    pub(crate) fn everyone(&self) -> &Arc<[Fact]> {
        &self.everyone
    }

    /// The accounts with a batch of their own.
    pub(crate) fn accounts(&self) -> impl Iterator<Item = &AccountId> {
        self.by.keys()
    }

    /// True if every subscriber hears something.
    pub(crate) fn for_everyone(&self) -> bool {
        !self.everyone.is_empty()
    }
}

/// What `acct` holds in `ledger`.
pub(crate) fn account_state(ledger: &Ledger, acct: &AccountId) -> Option<AccountState> {
    let a = ledger.account(acct)?;
    let epoch = ledger.epoch();
    let withdrawable = a
        .unbonding
        .iter()
        .filter(|u| u.release_epoch <= epoch)
        .fold(Amount::ZERO, |s, u| s.saturating_add(u.amount));
    Some(AccountState {
        account: *acct,
        balance: a.balance,
        bonded: a.bonded,
        free_stake: a.free_stake(),
        unbonding: a.unbonding_total(),
        withdrawable,
        nonce: a.nonce.get(),
    })
}

/// The fate of one committed transaction: `(sender, fact, recipient of an
/// applied transfer)`.
fn tx_fact(bytes: &[u8], r: &TxResult) -> Option<(AccountId, Fact, Option<AccountId>)> {
    match r {
        Ok(rc) => {
            // Only plain ledger transactions (`Done`) can be transfers:
            // decode those alone to find a recipient.
            let to = match rc.outcome {
                Outcome::Done => match SignedTransaction::from_bytes(bytes).map(|t| t.tx.kind) {
                    Ok(TxKind::Transfer { to, .. }) => Some(to),
                    _ => None,
                },
                _ => None,
            };
            let fact = Fact::Applied {
                sender: rc.sender,
                tx: rc.tx_id,
            };
            Some((rc.sender, fact, to))
        }
        Err(e) => {
            let tx = SignedTransaction::from_bytes(bytes).ok()?;
            let fact = Fact::Rejected {
                sender: tx.tx.sender,
                tx: tx.id(),
                reason: Box::new(Rejection::from_ledger(e)),
            };
            Some((tx.tx.sender, fact, None))
        }
    }
}
