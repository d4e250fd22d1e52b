//! Vocabulary of the registry: goods, access policies, listings, the goods a
//! job references, the fees a match carries, job ids and grants.

use core::fmt;

use idlegrid_primitives::{AccountId, Amount, Digest, Domain, Timestamp, encode};
use serde::{Deserialize, Serialize};

use crate::types::OrderId;

/// Domain label of app content digests ([`content_digest`]).
pub const APP_CONTENT: Domain = Domain::new("idlegrid/market/app-content");
/// Domain label of dataset content digests ([`content_digest`]).
pub const DATASET_CONTENT: Domain = Domain::new("idlegrid/market/dataset-content");
/// Domain label of [`JobId`]s.
pub const JOB_ID: Domain = Domain::new("idlegrid/market/job-id");

/// Most datasets one job may reference.
pub const MAX_DATASETS_PER_JOB: usize = 8;

/// What kind of good a listing sells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum GoodKind {
    /// A program (a Wasm module, a script).
    App,
    /// Input data.
    Dataset,
}

/// The content digest under which a good of `kind` with these bytes is
/// registered (blake3 under [`APP_CONTENT`] or [`DATASET_CONTENT`]).
pub fn content_digest(kind: GoodKind, bytes: &[u8]) -> Digest {
    match kind {
        GoodKind::App => Digest::hash(APP_CONTENT, bytes),
        GoodKind::Dataset => Digest::hash(DATASET_CONTENT, bytes),
    }
}

/// Who may use a listed good in a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccessPolicy {
    /// Any client.
    Public,
    /// Only the listed client accounts (at most
    /// [`RegistryLimits::max_allow_list`](super::RegistryLimits::max_allow_list),
    /// no duplicates).
    AllowList(Vec<AccountId>),
    /// Only jobs the owner approved one by one with a signed
    /// [`RegistryOp::ApproveJob`](super::RegistryOp::ApproveJob) naming the
    /// client and the bid.
    PerJob,
}

impl AccessPolicy {
    /// A short name for errors and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            AccessPolicy::Public => "public",
            AccessPolicy::AllowList(_) => "allow-list",
            AccessPolicy::PerJob => "per-job approval",
        }
    }
}

/// A registered good.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// App or dataset.
    pub kind: GoodKind,
    /// The content digest it is registered under.
    pub digest: Digest,
    /// Who is paid for its use and may change it.
    pub owner: AccountId,
    /// The owner's release number of this content (positive; a new release
    /// is new content, so a new digest).
    pub version: u32,
    /// Bumped by every change of price, policy, owner or deprecation, so a
    /// quote names exactly one state of the listing.
    pub revision: u32,
    /// Price per use; one use is one slot of a matched job.
    pub price_per_use: Amount,
    /// Who may use it.
    pub policy: AccessPolicy,
    /// Deprecated goods cannot be used by new jobs; matched jobs keep them.
    pub deprecated: bool,
    /// When it was registered.
    pub registered_at: Timestamp,
    /// Jobs (matches) that used it.
    pub uses: u64,
    /// Fees settled to its owners so far.
    pub revenue: Amount,
}

/// The goods a job (a bid) references: an app and datasets by digest, and
/// the most the client accepts to pay in owner fees per slot.
///
/// The default references nothing, which is an ordinary compute bid.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobGoods {
    /// The app to run, if any.
    pub app: Option<Digest>,
    /// Datasets to read (at most [`MAX_DATASETS_PER_JOB`], no duplicates).
    pub datasets: Vec<Digest>,
    /// Cap on the sum of owners' prices per use (per slot). Quoted prices
    /// above it exclude the bid from clearing, so a price raised between
    /// bidding and clearing never overcharges the client.
    pub max_fee_per_slot: Amount,
}

impl JobGoods {
    /// No goods.
    pub fn none() -> Self {
        Self::default()
    }
    /// True if the job references no app and no dataset.
    pub fn is_empty(&self) -> bool {
        self.app.is_none() && self.datasets.is_empty()
    }
    /// Every referenced good with the kind it must have, app first.
    pub fn items(&self) -> impl Iterator<Item = (GoodKind, Digest)> + '_ {
        self.app
            .iter()
            .map(|d| (GoodKind::App, *d))
            .chain(self.datasets.iter().map(|d| (GoodKind::Dataset, *d)))
    }
    /// Checks the shape: at most [`MAX_DATASETS_PER_JOB`] datasets, no
    /// digest twice. Returns a description of the problem.
    pub fn check_shape(&self) -> Result<(), &'static str> {
        if self.datasets.len() > MAX_DATASETS_PER_JOB {
            return Err("too many datasets (at most MAX_DATASETS_PER_JOB)");
        }
        let mut all: Vec<Digest> = self.items().map(|(_, d)| d).collect();
        all.sort_unstable();
        if all.windows(2).any(|w| w[0] == w[1]) {
            return Err("a good is referenced twice");
        }
        if self.is_empty() && !self.max_fee_per_slot.is_zero() {
            return Err("a fee cap without goods");
        }
        Ok(())
    }
}

/// One owner's price in a match, fixed when the match was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OwnerFee {
    /// App or dataset.
    pub kind: GoodKind,
    /// The good.
    pub digest: Digest,
    /// The listing revision the price comes from.
    pub revision: u32,
    /// Who is paid (the owner at match time).
    pub owner: AccountId,
    /// Price per use (per slot).
    pub price_per_use: Amount,
}

/// A job: one match, identified by the digest of its (bid, ask) pair.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(Digest);

impl JobId {
    /// The id of the job created by matching `bid` with `ask`.
    pub fn new(bid: OrderId, ask: OrderId) -> Self {
        Self(Digest::of(JOB_ID, &(bid, ask)))
    }
    /// The digest.
    pub const fn digest(&self) -> Digest {
        self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "job:{}", self.0.short())
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A confidential item of a job that someone may be allowed to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum JobItem {
    /// The input of subtask `i` (real or trap: the record does not say
    /// which, so grants to the executing provider leak nothing; a referee
    /// grant comes after the traps are revealed anyway).
    Input(u32),
    /// The program of a private app.
    Program,
}

impl JobItem {
    /// The context a sealed box of this item is bound to (pass it to
    /// `idlegrid_primitives::seal` and `EncryptionSecret::open`), so a box
    /// for one item or job never opens as another.
    pub fn seal_context(&self, job: JobId) -> Vec<u8> {
        encode(&("idlegrid/market/job-item", job, self))
    }
}

/// "Client C grants `grantee` read access to `item` of `job`": a
/// client-signed record ([`RegistryOp::Grant`](super::RegistryOp::Grant)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Grant {
    /// The job.
    pub job: JobId,
    /// Who may read.
    pub grantee: AccountId,
    /// What they may read.
    pub item: JobItem,
}
