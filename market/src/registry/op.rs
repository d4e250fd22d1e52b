//! Registry operations as signed records.

use idlegrid_primitives::{
    AccountId, Amount, DecodeError, Digest, Domain, Keypair, Signature, decode, encode,
};
use serde::{Deserialize, Serialize};

use super::error::RegistryError;
use super::types::{AccessPolicy, GoodKind, Grant};
use crate::types::OrderId;

/// Domain label of registry operation signatures.
pub const REGISTRY_OP: Domain = Domain::new("idlegrid/market/registry-op");

/// Upper bound on a [`SignedOp`]'s canonical encoding (an allow-list of 256
/// accounts is about 8 KiB); decoding refuses anything longer.
pub const MAX_OP_BYTES: usize = 16 << 10;

/// One registry operation. Who may perform it is checked against the
/// registry state when it is applied ([`super::Registry::apply`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RegistryOp {
    /// Lists a new good under its content digest; the signer becomes its owner.
    Register {
        /// App or dataset.
        kind: GoodKind,
        /// The content digest ([`super::content_digest`]).
        digest: Digest,
        /// The owner's release number (positive).
        version: u32,
        /// Price per use (per slot of a matched job); zero is free.
        price_per_use: Amount,
        /// Who may use it.
        policy: AccessPolicy,
    },
    /// Changes the price for jobs matched from now on (owner only).
    SetPrice {
        /// The good.
        digest: Digest,
        /// The new price per use.
        price_per_use: Amount,
    },
    /// Changes the access policy for jobs matched from now on (owner only).
    SetPolicy {
        /// The good.
        digest: Digest,
        /// The new policy.
        policy: AccessPolicy,
    },
    /// Transfers ownership (and future fees) to another account (owner only).
    Transfer {
        /// The good.
        digest: Digest,
        /// The new owner.
        to: AccountId,
    },
    /// Stops new jobs from using the good (owner only; irreversible).
    Deprecate {
        /// The good.
        digest: Digest,
    },
    /// Approves one job of one client for a [`AccessPolicy::PerJob`] good
    /// (owner only).
    ApproveJob {
        /// The good.
        digest: Digest,
        /// The client.
        client: AccountId,
        /// The client's bid.
        bid: OrderId,
    },
    /// Grants read access to an item of a job (the job's client only).
    Grant(Grant),
}

impl RegistryOp {
    /// A short name for metrics.
    pub fn name(&self) -> &'static str {
        match self {
            RegistryOp::Register { .. } => "register",
            RegistryOp::SetPrice { .. } => "set-price",
            RegistryOp::SetPolicy { .. } => "set-policy",
            RegistryOp::Transfer { .. } => "transfer",
            RegistryOp::Deprecate { .. } => "deprecate",
            RegistryOp::ApproveJob { .. } => "approve-job",
            RegistryOp::Grant(_) => "grant",
        }
    }
}

/// A [`RegistryOp`] signed by `signer` with a per-signer sequence number
/// (`nonce`, starting at 0) that makes every record single-use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOp {
    /// Who signs (and, for owner operations, must own the good).
    pub signer: AccountId,
    /// The signer's next sequence number in the registry.
    pub nonce: u64,
    /// The operation.
    pub op: RegistryOp,
    /// sr25519 signature over `(signer, nonce, op)` under [`REGISTRY_OP`].
    pub signature: Signature,
}

fn signed_bytes(signer: &AccountId, nonce: u64, op: &RegistryOp) -> Vec<u8> {
    encode(&(signer, nonce, op))
}

impl SignedOp {
    /// Signs `op` with `key` as sequence number `nonce`.
    pub fn sign(key: &Keypair, nonce: u64, op: RegistryOp) -> Self {
        let signer = key.account_id();
        let signature = key.sign(REGISTRY_OP, &signed_bytes(&signer, nonce, &op));
        Self {
            signer,
            nonce,
            op,
            signature,
        }
    }

    /// Checks the signature.
    pub fn verify(&self) -> Result<(), RegistryError> {
        self.signer
            .public_key()
            .verify(
                REGISTRY_OP,
                &signed_bytes(&self.signer, self.nonce, &self.op),
                &self.signature,
            )
            .map_err(RegistryError::BadSignature)
    }

    /// The canonical encoding (a ledger transaction payload).
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes untrusted bytes: at most [`MAX_OP_BYTES`], canonical only.
    /// The result still needs [`SignedOp::verify`] (done by `apply`).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        decode(bytes, MAX_OP_BYTES)
    }

    /// The digest of the record (for audit logs).
    pub fn digest(&self) -> Digest {
        Digest::of(REGISTRY_OP, self)
    }
}
