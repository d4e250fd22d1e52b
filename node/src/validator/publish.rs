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
//!
//! The facts are also the leaves of a Merkle tree (the facts for everyone
//! first, then each account's, in account order) whose root validators
//! vote on and certify (see [`crate::certified`]): a subscriber that asked
//! for certified facts gets its leaves with their proofs instead.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::OnceLock;

use idlegrid_dag_ledger::ledger::{Ledger, Outcome, SignedTransaction, TxKind};
use idlegrid_primitives::{AccountId, Amount, Digest, MerkleProof, MerkleTree};

use super::TxResult;
use crate::certified::{FactsMode, ProvenLeaf, leaf_digest};
use crate::market::Notice;
use crate::wire::{AccountState, Fact, Rejection};

/// The facts of one commit (see the module docs).
#[derive(Debug)]
pub(crate) struct CommitFacts {
    /// The accounts the commit concerns, in order, each with its facts and
    /// holdings (without `everyone`): the leaves after the first.
    own: Vec<(AccountId, Arc<[Fact]>)>,
    /// The same with `everyone` appended, when it is not empty (for the
    /// subscribers that hear the facts reported), in the order of `own`.
    with_everyone: Vec<Arc<[Fact]>>,
    /// The facts for every subscriber: the first leaf.
    everyone: Arc<[Fact]>,
    /// The Merkle tree over the leaves (see [`crate::certified`]).
    tree: MerkleTree,
    /// Each leaf's proof, made when first sent.
    proofs: Box<[OnceLock<Arc<MerkleProof>>]>,
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
        let with_everyone = match everyone.is_empty() {
            true => Vec::new(),
            false => by
                .values()
                .map(|f| f.iter().chain(&everyone).cloned().collect())
                .collect(),
        };
        let own: Vec<(AccountId, Arc<[Fact]>)> =
            by.into_iter().map(|(a, f)| (a, f.into())).collect();
        let everyone: Arc<[Fact]> = everyone.into();
        let leaves = std::iter::once(leaf_digest(None, &everyone))
            .chain(own.iter().map(|(a, f)| leaf_digest(Some(a), f)))
            .collect();
        let tree = MerkleTree::new(leaves);
        Self {
            proofs: (0..tree.len()).map(|_| OnceLock::new()).collect(),
            own,
            with_everyone,
            everyone,
            tree,
        }
    }

    /// Where `acct`'s facts are in `own`, if the commit concerns it.
    fn position(&self, acct: &AccountId) -> Option<usize> {
        self.own.binary_search_by(|(a, _)| a.cmp(acct)).ok()
    }

    /// The batch of `acct` reported (`mode` [`FactsMode::Reported`]): its
    /// facts if the commit concerns it, then the facts for everyone, with
    /// its holdings (from `ledger`, the post-state) if `holdings` and the
    /// commit did not report them. For the other modes only the holdings,
    /// if `holdings` (the rest goes proven, see [`Self::proven`]).
    pub(crate) fn batch(
        &self,
        acct: &AccountId,
        holdings: bool,
        mode: FactsMode,
        ledger: &Ledger,
    ) -> Option<Arc<[Fact]>> {
        let balance = || account_state(ledger, acct).map(Fact::Balance);
        if mode != FactsMode::Reported {
            return holdings.then(balance).flatten().map(|b| vec![b].into());
        }
        if let Some(at) = self.position(acct) {
            return Some(match self.everyone.is_empty() {
                true => Arc::clone(&self.own[at].1),
                false => Arc::clone(&self.with_everyone[at]),
            });
        }
        if holdings && let Some(b) = balance() {
            let facts: Vec<Fact> = std::iter::once(b)
                .chain(self.everyone.iter().cloned())
                .collect();
            return Some(facts.into());
        }
        (!self.everyone.is_empty()).then(|| Arc::clone(&self.everyone))
    }

    /// The leaves of the tree that concern `acct` (the one for everyone if
    /// it has facts, then its own if the commit concerns it), proven.
    pub(crate) fn proven(&self, acct: &AccountId) -> Vec<ProvenLeaf> {
        let everyone = (!self.everyone.is_empty()).then(|| ProvenLeaf {
            owner: None,
            facts: Arc::clone(&self.everyone),
            proof: self.proof(0),
        });
        let own = self.position(acct).map(|at| ProvenLeaf {
            owner: Some(*acct),
            facts: Arc::clone(&self.own[at].1),
            proof: self.proof(at + 1),
        });
        everyone.into_iter().chain(own).collect()
    }

    /// The proof of leaf `i` (a leaf of the tree).
    fn proof(&self, i: usize) -> Arc<MerkleProof> {
        let p = self.proofs[i].get_or_init(|| Arc::new(self.tree.proof(i).expect("a leaf")));
        Arc::clone(p)
    }

    /// The root of the facts tree, if the commit has facts at all.
    pub(crate) fn root(&self) -> Option<Digest> {
        (!self.own.is_empty() || !self.everyone.is_empty()).then(|| self.tree.root())
    }

    /// The accounts with a batch of their own, in order.
    pub(crate) fn accounts(&self) -> impl Iterator<Item = &AccountId> {
        self.own.iter().map(|(a, _)| a)
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
