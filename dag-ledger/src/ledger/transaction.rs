//! Signed transactions: what travels through consensus as opaque bytes.
//!
//! A [`Transaction`] names its chain, its sender, the sender's next
//! [`Nonce`] and a [`TxKind`]. The sender signs the canonical encoding of
//! the `Transaction` under the domain label [`TX_DOMAIN`]. A
//! [`SignedTransaction`] encodes canonically (the transaction's bytes
//! followed by the 64 signature bytes) and decodes with a size limit.

use idlegrid_primitives::{
    AccountId, Amount, BatchItem, CryptoRng, Digest, Domain, Epoch, Keypair, RngCore, Signature,
    SignatureVerifier, decode, encode,
};
use serde::{Deserialize, Serialize};

use super::error::LedgerError;
use super::genesis::limits::MAX_TX_BYTES;
use super::ids::{AppId, ChainId, EscrowId, Nonce};
use super::slashing::Evidence;

/// Domain label for transaction signatures.
pub const TX_DOMAIN: Domain = Domain::new("idlegrid/dag-ledger/tx");
/// Domain label for transaction ids.
pub const TX_ID_DOMAIN: Domain = Domain::new("idlegrid/dag-ledger/tx-id");

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxKind {
    /// Pay `amount` of free balance to `to` (creating the account if
    /// `amount >= Params::min_new_account`).
    Transfer {
        /// Recipient.
        to: AccountId,
        /// Amount, positive.
        amount: Amount,
    },
    /// Bond `amount` of free balance as stake.
    Bond {
        /// Amount, positive.
        amount: Amount,
    },
    /// Start unbonding `amount` of free (unlocked) stake.
    Unbond {
        /// Amount, positive.
        amount: Amount,
    },
    /// Withdraw every matured unbonding to the free balance.
    Withdraw,
    /// Lock `amount` of the sender's balance for `payee` until `deadline`.
    EscrowOpen {
        /// Who may receive releases.
        payee: AccountId,
        /// Amount, positive.
        amount: Amount,
        /// First epoch at which the escrow is expired (must be in the future).
        deadline: Epoch,
    },
    /// Pay `amount` (everything if `None`) of an escrow to its payee
    /// (payer only, before the deadline).
    EscrowRelease {
        /// The escrow.
        escrow: EscrowId,
        /// Amount to release, or all of it.
        amount: Option<Amount>,
    },
    /// Return an escrow's remainder to its payer (payee at any time; payer
    /// after the deadline).
    EscrowRefund {
        /// The escrow.
        escrow: EscrowId,
    },
    /// Report an offense; the reporter (sender) earns a share of the slash.
    Slash(Evidence),
    /// A transaction for a registered [`super::Application`].
    App {
        /// Which application.
        app_id: AppId,
        /// Its payload (at most `Params::max_app_payload` bytes).
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
    },
}

/// An unsigned transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The network it is meant for.
    pub chain: ChainId,
    /// Who signs and pays.
    pub sender: AccountId,
    /// The sender's next nonce.
    pub nonce: Nonce,
    /// What to do.
    pub kind: TxKind,
}

impl Transaction {
    /// The bytes the sender signs: the canonical encoding.
    pub fn signing_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Signs with `key` (which should be the sender's).
    pub fn sign(self, key: &Keypair) -> SignedTransaction {
        self.sign_with(key, &SignatureVerifier::plain())
    }

    /// Signs with `key` through `signatures` (which, with a memo, remembers
    /// the signature as one that verifies: see [`SignatureVerifier::sign`]).
    pub fn sign_with(self, key: &Keypair, signatures: &SignatureVerifier) -> SignedTransaction {
        let signature = signatures.sign(key, TX_DOMAIN, &self.signing_bytes());
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

/// A transaction with its sender's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// The sender's signature over `tx.signing_bytes()` under [`TX_DOMAIN`].
    pub signature: Signature,
}

impl SignedTransaction {
    /// Canonical bytes, as carried by consensus.
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes untrusted bytes (at most [`MAX_TX_BYTES`], canonical only).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LedgerError> {
        decode(bytes, MAX_TX_BYTES).map_err(LedgerError::Malformed)
    }

    /// Checks the signature against the sender's key.
    pub fn verify(&self) -> Result<(), LedgerError> {
        self.verify_with(&SignatureVerifier::plain())
    }

    /// As [`SignedTransaction::verify`], through `verifier` (which may
    /// remember the signature, so that applying the batch that carries it
    /// does not verify it again).
    pub fn verify_with(&self, verifier: &SignatureVerifier) -> Result<(), LedgerError> {
        verifier
            .verify(
                &self.tx.sender.public_key(),
                TX_DOMAIN,
                &self.tx.signing_bytes(),
                &self.signature,
            )
            .map_err(|_| LedgerError::BadSignature(self.tx.sender))
    }

    /// As [`SignedTransaction::verify_with`] for each of `txs`, their
    /// signatures checked in one batch (each that verified remembered by a
    /// memo), one by one if the batch fails (to tell which): one result per
    /// transaction, in order.
    pub fn verify_all_with<R: RngCore + CryptoRng>(
        txs: &[&SignedTransaction],
        verifier: &SignatureVerifier,
        rng: &mut R,
    ) -> Vec<Result<(), LedgerError>> {
        if txs.len() > 1 {
            let keys: Vec<_> = txs.iter().map(|t| t.tx.sender.public_key()).collect();
            let msgs: Vec<Vec<u8>> = txs.iter().map(|t| t.tx.signing_bytes()).collect();
            let items: Vec<BatchItem<'_>> = txs
                .iter()
                .zip(keys.iter().zip(&msgs))
                .map(|(t, (pk, msg))| BatchItem {
                    domain: TX_DOMAIN,
                    msg,
                    public: pk,
                    signature: &t.signature,
                })
                .collect();
            if verifier.verify_batch(&items, rng).is_ok() {
                return vec![Ok(()); txs.len()];
            }
        }
        txs.iter().map(|t| t.verify_with(verifier)).collect()
    }

    /// The transaction id: the digest of its canonical bytes.
    pub fn id(&self) -> Digest {
        Digest::hash(TX_ID_DOMAIN, &self.to_bytes())
    }
}

/// The signed part of canonical [`SignedTransaction`] bytes: everything but
/// the trailing 64 signature bytes (postcard encodes fields in order and a
/// signature as a fixed 64-byte tuple).
pub(crate) fn signed_part(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len().saturating_sub(64)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::Seed;

    #[test]
    fn signed_part_is_the_transaction_encoding() {
        let k = Keypair::from_seed(&Seed::from_u64(1));
        let tx = Transaction {
            chain: ChainId::new(7),
            sender: k.account_id(),
            nonce: Nonce::new(300),
            kind: TxKind::App {
                app_id: AppId::new(2),
                payload: vec![1; 200],
            },
        };
        let s = tx.clone().sign(&k);
        let bytes = s.to_bytes();
        assert_eq!(signed_part(&bytes), &tx.signing_bytes()[..]);
        assert_eq!(SignedTransaction::from_bytes(&bytes).unwrap(), s);
        s.verify().unwrap();
    }

    #[test]
    fn verifying_all_answers_as_one_by_one_and_remembers_the_good() {
        use idlegrid_primitives::{ChaCha20Rng, SeedableRng, SignatureMemo};
        let tx = |i: u64, forged: bool| {
            let k = Keypair::from_seed(&Seed::from_u64(i));
            let mut s = Transaction {
                chain: ChainId::new(1),
                sender: k.account_id(),
                nonce: Nonce::new(i),
                kind: TxKind::Bond {
                    amount: Amount::new(1),
                },
            }
            .sign(&k);
            if forged {
                s.tx.nonce = Nonce::new(i + 1);
            }
            s
        };
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        for bad in [None, Some(0), Some(3), Some(5)] {
            let txs: Vec<SignedTransaction> = (0..6).map(|i| tx(i, Some(i) == bad)).collect();
            let refs: Vec<&SignedTransaction> = txs.iter().collect();
            let memo = SignatureMemo::shared(&Seed::from_u64(9));
            let verifier = SignatureVerifier::memoized(memo.clone());
            let all = SignedTransaction::verify_all_with(&refs, &verifier, &mut rng);
            let each: Vec<_> = txs.iter().map(SignedTransaction::verify).collect();
            assert_eq!(all, each);
            let hits = memo.stats().hits;
            for t in txs.iter().filter(|t| t.verify().is_ok()) {
                t.verify_with(&verifier).unwrap();
            }
            assert_eq!(memo.stats().hits - hits, 6 - u64::from(bad.is_some()));
        }
    }

    #[test]
    fn oversized_and_trailing_bytes_are_rejected() {
        let big = vec![0u8; MAX_TX_BYTES + 1];
        assert!(matches!(
            SignedTransaction::from_bytes(&big),
            Err(LedgerError::Malformed(_))
        ));
        assert!(SignedTransaction::from_bytes(&[]).is_err());
    }
}
