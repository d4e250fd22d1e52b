//! The registry state machine: listings, approvals, open jobs and grants.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use idlegrid_primitives::{
    AccountId, Amount, CryptoRng, Digest, Domain, EncryptionKeyCert, RngCore, SealedBytes,
    Timestamp, seal_padded,
};
use serde::{Deserialize, Serialize};

use super::error::RegistryError;
use super::op::{RegistryOp, SignedOp};
use super::settle::{Payout, split};
use super::types::{
    AccessPolicy, GoodKind, Grant, JobGoods, JobId, JobItem, Listing, MAX_DATASETS_PER_JOB,
    OwnerFee,
};
use crate::check::Violation;
use crate::clearing::Match;
use crate::types::OrderId;

/// Domain label of [`Registry::state_digest`].
pub const REGISTRY_STATE: Domain = Domain::new("idlegrid/market/registry-state");

/// Bounds on everything an outsider can grow in the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryLimits {
    /// Most listings one account may own.
    pub max_listings_per_owner: u32,
    /// Most listings overall.
    pub max_listings: usize,
    /// Longest allow-list.
    pub max_allow_list: usize,
    /// Most outstanding per-job approvals of one listing.
    pub max_approvals_per_listing: usize,
    /// Most grants recorded for one job.
    pub max_grants_per_job: usize,
    /// Most jobs open at once.
    pub max_open_jobs: usize,
    /// Most accounts with a sequence number.
    pub max_accounts: usize,
    /// Highest price per use.
    pub max_price_per_use: Amount,
    /// Subtask indices in [`JobItem::Input`] must be below this.
    pub max_job_inputs: u32,
    /// How many settled job ids are remembered to refuse a second opening.
    pub settled_memory: usize,
}

impl Default for RegistryLimits {
    fn default() -> Self {
        Self {
            max_listings_per_owner: 1024,
            max_listings: 1 << 20,
            max_allow_list: 256,
            max_approvals_per_listing: 1024,
            max_grants_per_job: 64,
            max_open_jobs: 1 << 20,
            max_accounts: 1 << 20,
            max_price_per_use: Amount::new(1_000_000_000_000_000_000_000_000_000_000),
            max_job_inputs: 1 << 16,
            settled_memory: 1 << 16,
        }
    }
}

/// A matched job that has not been settled yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenJob {
    /// The match, with every party's price fixed at match time.
    pub matched: Match,
    /// When the job was opened.
    pub opened_at: Timestamp,
    /// Client-signed grants recorded for it, sorted.
    pub grants: BTreeSet<Grant>,
}

/// Aggregates for metrics (`summary.json`'s `registry` object).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryStats {
    /// Listed apps (including deprecated ones).
    pub apps: u64,
    /// Listed datasets (including deprecated ones).
    pub datasets: u64,
    /// Jobs open now.
    pub open_jobs: u64,
    /// Jobs settled so far.
    pub settled_jobs: u64,
    /// Grants recorded so far.
    pub grants: u64,
    /// Fees paid to app and dataset owners so far.
    pub owner_revenue: Amount,
}

/// The registry of apps and datasets, their per-job approvals, and the
/// open jobs with their data-access grants. Sans-IO and deterministic: the
/// composition root applies committed [`SignedOp`]s in ledger order, opens
/// a job per [`Match`] and settles it when the job ends.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Registry {
    limits: RegistryLimits,
    listings: BTreeMap<Digest, Listing>,
    owned: BTreeMap<AccountId, u32>,
    approvals: BTreeMap<Digest, BTreeSet<(AccountId, OrderId)>>,
    nonces: BTreeMap<AccountId, u64>,
    jobs: BTreeMap<JobId, OpenJob>,
    settled: BTreeSet<JobId>,
    settled_order: VecDeque<JobId>,
    stats: RegistryStats,
}

impl Registry {
    /// An empty registry.
    pub fn new(limits: RegistryLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// The limits.
    pub fn limits(&self) -> &RegistryLimits {
        &self.limits
    }

    /// The listing registered under `digest`.
    pub fn listing(&self, digest: &Digest) -> Option<&Listing> {
        self.listings.get(digest)
    }

    /// Every listing, by digest.
    pub fn listings(&self) -> impl Iterator<Item = &Listing> {
        self.listings.values()
    }

    /// The sequence number `signer`'s next record must carry.
    pub fn next_nonce(&self, signer: &AccountId) -> u64 {
        self.nonces.get(signer).copied().unwrap_or(0)
    }

    /// Aggregates for metrics.
    pub fn stats(&self) -> RegistryStats {
        RegistryStats {
            open_jobs: self.jobs.len() as u64,
            ..self.stats
        }
    }

    /// The open job `job`.
    pub fn job(&self, job: &JobId) -> Option<&OpenJob> {
        self.jobs.get(job)
    }

    /// A digest of the whole state (for the ledger's state digest).
    pub fn state_digest(&self) -> Digest {
        let settled: Vec<&JobId> = self.settled_order.iter().collect();
        Digest::of(
            REGISTRY_STATE,
            &(
                &self.listings,
                &self.approvals,
                &self.nonces,
                &self.jobs,
                settled,
                self.stats,
            ),
        )
    }

    /// Checks the registry's internal consistency: per-owner counts match
    /// the listings, kind counts match the statistics, every bound holds,
    /// and the settled-job memory is consistent.
    pub fn check_invariants(&self) -> Result<(), Violation> {
        let bad = |what| Err(Violation::Registry(what));
        let mut owned: BTreeMap<AccountId, u32> = BTreeMap::new();
        let (mut apps, mut datasets) = (0u64, 0u64);
        for (d, l) in &self.listings {
            if *d != l.digest {
                return bad("listing filed under another digest");
            }
            *owned.entry(l.owner).or_default() += 1;
            match l.kind {
                GoodKind::App => apps += 1,
                GoodKind::Dataset => datasets += 1,
            }
            if let AccessPolicy::AllowList(list) = &l.policy
                && list.len() > self.limits.max_allow_list
            {
                return bad("allow-list above its bound");
            }
        }
        if owned != self.owned {
            return bad("per-owner listing counts");
        }
        if owned
            .values()
            .any(|n| *n > self.limits.max_listings_per_owner)
            || self.listings.len() > self.limits.max_listings
        {
            return bad("listing bounds");
        }
        if (apps, datasets) != (self.stats.apps, self.stats.datasets) {
            return bad("listing statistics");
        }
        if self
            .approvals
            .values()
            .any(|s| s.len() > self.limits.max_approvals_per_listing)
        {
            return bad("approvals above their bound");
        }
        if self.jobs.len() > self.limits.max_open_jobs
            || self.nonces.len() > self.limits.max_accounts
        {
            return bad("job or account bounds");
        }
        for (id, j) in &self.jobs {
            if *id != j.matched.job_id() || self.settled.contains(id) {
                return bad("open job id");
            }
            if j.grants.len() > self.limits.max_grants_per_job
                || j.grants.iter().any(|g| g.job != *id)
            {
                return bad("grants of a job");
            }
        }
        if self.settled.len() != self.settled_order.len()
            || self.settled_order.len() > self.limits.settled_memory
            || self.settled_order.iter().any(|j| !self.settled.contains(j))
        {
            return bad("settled-job memory");
        }
        Ok(())
    }

    /// Applies one signed record at `now`.
    ///
    /// The signature and sequence number are checked first; a record that
    /// passes both consumes the sequence number even if the operation is
    /// then rejected, so no record ever applies twice or later than
    /// intended (a grant refused today cannot be replayed tomorrow).
    pub fn apply(&mut self, now: Timestamp, rec: &SignedOp) -> Result<(), RegistryError> {
        rec.verify()?;
        let expected = self.next_nonce(&rec.signer);
        if rec.nonce != expected {
            return Err(RegistryError::BadNonce {
                expected,
                got: rec.nonce,
            });
        }
        if !self.nonces.contains_key(&rec.signer) && self.nonces.len() >= self.limits.max_accounts {
            return Err(RegistryError::Full {
                what: "accounts",
                max: self.limits.max_accounts,
            });
        }
        self.nonces.insert(rec.signer, expected.saturating_add(1));
        self.execute(now, rec.signer, &rec.op)
    }

    fn execute(
        &mut self,
        now: Timestamp,
        signer: AccountId,
        op: &RegistryOp,
    ) -> Result<(), RegistryError> {
        match op {
            RegistryOp::Register {
                kind,
                digest,
                version,
                price_per_use,
                policy,
            } => self.register(
                now,
                signer,
                *kind,
                *digest,
                *version,
                *price_per_use,
                policy,
            ),
            RegistryOp::SetPrice {
                digest,
                price_per_use,
            } => {
                self.check_price(*price_per_use)?;
                self.owned_mut(signer, digest)?.price_per_use = *price_per_use;
                Ok(())
            }
            RegistryOp::SetPolicy { digest, policy } => {
                self.check_policy(policy)?;
                self.owned_mut(signer, digest)?.policy = policy.clone();
                Ok(())
            }
            RegistryOp::Transfer { digest, to } => self.transfer(signer, digest, *to),
            RegistryOp::Deprecate { digest } => {
                self.owned_mut(signer, digest)?.deprecated = true;
                self.approvals.remove(digest);
                Ok(())
            }
            RegistryOp::ApproveJob {
                digest,
                client,
                bid,
            } => self.approve(signer, digest, *client, *bid),
            RegistryOp::Grant(g) => self.grant(signer, g),
        }
    }

    fn check_price(&self, price: Amount) -> Result<(), RegistryError> {
        if price > self.limits.max_price_per_use {
            return Err(RegistryError::Invalid("price per use above the limit"));
        }
        Ok(())
    }

    fn check_policy(&self, policy: &AccessPolicy) -> Result<(), RegistryError> {
        if let AccessPolicy::AllowList(list) = policy {
            if list.len() > self.limits.max_allow_list {
                return Err(RegistryError::Full {
                    what: "accounts in an allow-list",
                    max: self.limits.max_allow_list,
                });
            }
            let mut sorted = list.clone();
            sorted.sort_unstable();
            if sorted.windows(2).any(|w| w[0] == w[1]) {
                return Err(RegistryError::Invalid("allow-list names an account twice"));
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn register(
        &mut self,
        now: Timestamp,
        owner: AccountId,
        kind: GoodKind,
        digest: Digest,
        version: u32,
        price_per_use: Amount,
        policy: &AccessPolicy,
    ) -> Result<(), RegistryError> {
        if self.listings.contains_key(&digest) {
            return Err(RegistryError::AlreadyRegistered(digest));
        }
        if version == 0 {
            return Err(RegistryError::Invalid("version numbers start at 1"));
        }
        self.check_price(price_per_use)?;
        self.check_policy(policy)?;
        if self.listings.len() >= self.limits.max_listings {
            return Err(RegistryError::Full {
                what: "listings",
                max: self.limits.max_listings,
            });
        }
        self.take_owner_slot(owner)?;
        self.listings.insert(
            digest,
            Listing {
                kind,
                digest,
                owner,
                version,
                revision: 0,
                price_per_use,
                policy: policy.clone(),
                deprecated: false,
                registered_at: now,
                uses: 0,
                revenue: Amount::ZERO,
            },
        );
        match kind {
            GoodKind::App => self.stats.apps += 1,
            GoodKind::Dataset => self.stats.datasets += 1,
        }
        Ok(())
    }

    /// Counts one more listing for `owner`, or refuses without touching the
    /// state (a refused registration must leave no zero-count entry behind).
    fn take_owner_slot(&mut self, owner: AccountId) -> Result<(), RegistryError> {
        let n = self.owned.get(&owner).copied().unwrap_or_default();
        if n >= self.limits.max_listings_per_owner {
            return Err(RegistryError::Full {
                what: "listings per owner",
                max: self.limits.max_listings_per_owner as usize,
            });
        }
        self.owned.insert(owner, n + 1);
        Ok(())
    }

    /// The listing `digest` if `signer` owns it, for a change (bumps the
    /// revision).
    fn owned_mut(
        &mut self,
        signer: AccountId,
        digest: &Digest,
    ) -> Result<&mut Listing, RegistryError> {
        let l = self
            .listings
            .get_mut(digest)
            .ok_or(RegistryError::UnknownDigest(*digest))?;
        if l.owner != signer {
            return Err(RegistryError::NotOwner {
                digest: *digest,
                signer,
            });
        }
        l.revision = l.revision.saturating_add(1);
        Ok(l)
    }

    fn transfer(
        &mut self,
        signer: AccountId,
        digest: &Digest,
        to: AccountId,
    ) -> Result<(), RegistryError> {
        // Check ownership before taking the new owner's slot.
        let l = self
            .listings
            .get(digest)
            .ok_or(RegistryError::UnknownDigest(*digest))?;
        if l.owner != signer {
            return Err(RegistryError::NotOwner {
                digest: *digest,
                signer,
            });
        }
        if to == signer {
            return Err(RegistryError::Invalid("transfer to the current owner"));
        }
        self.take_owner_slot(to)?;
        if let Some(n) = self.owned.get_mut(&signer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.owned.remove(&signer);
            }
        }
        let l = self.owned_mut(signer, digest)?;
        l.owner = to;
        Ok(())
    }

    fn approve(
        &mut self,
        signer: AccountId,
        digest: &Digest,
        client: AccountId,
        bid: OrderId,
    ) -> Result<(), RegistryError> {
        let l = self
            .listings
            .get(digest)
            .ok_or(RegistryError::UnknownDigest(*digest))?;
        if l.owner != signer {
            return Err(RegistryError::NotOwner {
                digest: *digest,
                signer,
            });
        }
        if l.deprecated {
            return Err(RegistryError::Deprecated(*digest));
        }
        if l.policy != AccessPolicy::PerJob {
            return Err(RegistryError::Invalid(
                "per-job approvals only apply to per-job listings",
            ));
        }
        let set = self.approvals.entry(*digest).or_default();
        if set.len() >= self.limits.max_approvals_per_listing {
            return Err(RegistryError::Full {
                what: "outstanding approvals per listing",
                max: self.limits.max_approvals_per_listing,
            });
        }
        set.insert((client, bid));
        Ok(())
    }

    fn grant(&mut self, signer: AccountId, g: &Grant) -> Result<(), RegistryError> {
        if let JobItem::Input(i) = g.item
            && i >= self.limits.max_job_inputs
        {
            return Err(RegistryError::Invalid("subtask index above the limit"));
        }
        let max = self.limits.max_grants_per_job;
        let job = self
            .jobs
            .get_mut(&g.job)
            .ok_or(RegistryError::UnknownJob(g.job))?;
        if job.matched.client != signer {
            return Err(RegistryError::NotClient { job: g.job, signer });
        }
        if g.grantee == job.matched.provider || job.grants.contains(g) {
            return Err(RegistryError::DuplicateGrant {
                job: g.job,
                grantee: g.grantee,
                item: g.item,
            });
        }
        if job.grants.len() >= max {
            return Err(RegistryError::Full {
                what: "grants per job",
                max,
            });
        }
        job.grants.insert(*g);
        self.stats.grants += 1;
        Ok(())
    }

    /// Quotes the owners' fees per slot for a bid of `client` (id `bid`)
    /// using `goods`, checking that every good exists, has the right kind,
    /// is not deprecated and admits the client, and that the fees fit the
    /// bid's cap. The quote is what the match carries.
    pub fn quote(
        &self,
        client: &AccountId,
        bid: OrderId,
        goods: &JobGoods,
    ) -> Result<Vec<OwnerFee>, RegistryError> {
        goods
            .check_shape()
            .map_err(|what| RegistryError::BadGoods { bid, what })?;
        let mut fees = Vec::with_capacity(1 + MAX_DATASETS_PER_JOB);
        let mut sum = Amount::ZERO;
        for (kind, digest) in goods.items() {
            let l = self
                .listings
                .get(&digest)
                .ok_or(RegistryError::UnknownDigest(digest))?;
            if l.kind != kind {
                return Err(RegistryError::WrongKind {
                    digest,
                    expected: kind,
                });
            }
            if l.deprecated {
                return Err(RegistryError::Deprecated(digest));
            }
            let allowed = match &l.policy {
                AccessPolicy::Public => true,
                AccessPolicy::AllowList(list) => list.contains(client),
                AccessPolicy::PerJob => self
                    .approvals
                    .get(&digest)
                    .is_some_and(|s| s.contains(&(*client, bid))),
            };
            if !allowed {
                return Err(RegistryError::NotAllowed {
                    digest,
                    client: *client,
                    policy: l.policy.name(),
                });
            }
            sum = sum.checked_add(l.price_per_use)?;
            fees.push(OwnerFee {
                kind,
                digest,
                revision: l.revision,
                owner: l.owner,
                price_per_use: l.price_per_use,
            });
        }
        if sum > goods.max_fee_per_slot {
            return Err(RegistryError::FeeCapExceeded {
                fees: sum,
                cap: goods.max_fee_per_slot,
            });
        }
        Ok(fees)
    }

    /// Opens the job created by `matched` (call once per match the
    /// clearing produced). Consumes any per-job approvals it used and
    /// counts one use per listing. Fees stay those the match carries.
    pub fn open_job(&mut self, now: Timestamp, matched: &Match) -> Result<JobId, RegistryError> {
        let id = matched.job_id();
        if self.settled.contains(&id) {
            return Err(RegistryError::AlreadySettled(id));
        }
        if self.jobs.contains_key(&id) {
            return Err(RegistryError::JobExists(id));
        }
        if self.jobs.len() >= self.limits.max_open_jobs {
            return Err(RegistryError::Full {
                what: "open jobs",
                max: self.limits.max_open_jobs,
            });
        }
        if matched.fees.len() > 1 + MAX_DATASETS_PER_JOB {
            return Err(RegistryError::Invalid("a match carries too many fees"));
        }
        if let Some(f) = matched
            .fees
            .iter()
            .find(|f| !self.listings.contains_key(&f.digest))
        {
            return Err(RegistryError::UnknownDigest(f.digest));
        }
        for f in &matched.fees {
            if let Some(l) = self.listings.get_mut(&f.digest) {
                l.uses = l.uses.saturating_add(1);
            }
            if let Some(set) = self.approvals.get_mut(&f.digest) {
                set.remove(&(matched.client, matched.bid));
            }
        }
        self.jobs.insert(
            id,
            OpenJob {
                matched: matched.clone(),
                opened_at: now,
                grants: BTreeSet::new(),
            },
        );
        Ok(id)
    }

    /// Checks that `reader` may read `item` of `job`: the matched provider
    /// may read every item (the match is the client's consent); anyone
    /// else needs a recorded client grant. The client calls this before
    /// re-sealing data to a referee.
    pub fn check_access(
        &self,
        job: &JobId,
        reader: &AccountId,
        item: JobItem,
    ) -> Result<(), RegistryError> {
        let j = self.jobs.get(job).ok_or(RegistryError::UnknownJob(*job))?;
        let granted = j.grants.contains(&Grant {
            job: *job,
            grantee: *reader,
            item,
        });
        if *reader == j.matched.provider || granted {
            Ok(())
        } else {
            Err(RegistryError::NoGrant {
                job: *job,
                reader: *reader,
                item,
            })
        }
    }

    /// Seals `data` (item `item` of `job`) to the reader certified by
    /// `cert`, padded to `bucket` (see `idlegrid_primitives::seal_padded`),
    /// but only if [`Registry::check_access`] lets that reader read it: the
    /// client's side of "re-seal the disputed trap's input to the referee,
    /// after the grant is on the ledger". The box is bound to
    /// [`JobItem::seal_context`].
    #[allow(clippy::too_many_arguments)]
    pub fn seal_item<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        job: &JobId,
        item: JobItem,
        cert: &EncryptionKeyCert,
        data: &[u8],
        bucket: usize,
    ) -> Result<SealedBytes, RegistryError> {
        self.check_access(job, &cert.node.account(), item)?;
        Ok(seal_padded(
            rng,
            cert,
            &item.seal_context(*job),
            data,
            bucket,
        )?)
    }

    /// Everyone who may read `item` of `job`: the provider, then grantees.
    pub fn readers(&self, job: &JobId, item: JobItem) -> Result<Vec<AccountId>, RegistryError> {
        let j = self.jobs.get(job).ok_or(RegistryError::UnknownJob(*job))?;
        let mut out = vec![j.matched.provider];
        out.extend(
            j.grants
                .iter()
                .filter(|g| g.item == item)
                .map(|g| g.grantee),
        );
        Ok(out)
    }

    /// The grants recorded for `job`.
    pub fn grants(&self, job: &JobId) -> Result<Vec<Grant>, RegistryError> {
        let j = self.jobs.get(job).ok_or(RegistryError::UnknownJob(*job))?;
        Ok(j.grants.iter().copied().collect())
    }

    /// Settles `job` after it ran for `seconds`: splits the client's escrow
    /// into provider pay, the owners' fees fixed at match time and the
    /// market surplus, closes the job and remembers it so that it is never
    /// paid twice. The composition root moves the money as the
    /// [`Payout`] says (checked by [`super::check_payout`]).
    pub fn settle(&mut self, job: &JobId, seconds: u64) -> Result<Payout, RegistryError> {
        if self.settled.contains(job) {
            return Err(RegistryError::AlreadySettled(*job));
        }
        let j = self.jobs.get(job).ok_or(RegistryError::UnknownJob(*job))?;
        let payout = split(&j.matched, seconds)?;
        let owners_total = Amount::checked_sum(payout.owners.iter().map(|(_, a)| *a))?;
        let revenue = self.stats.owner_revenue.checked_add(owners_total)?;
        // Nothing can fail from here on.
        for (fee, (_, amount)) in j.matched.fees.iter().zip(&payout.owners) {
            if let Some(l) = self.listings.get_mut(&fee.digest) {
                l.revenue = l.revenue.saturating_add(*amount);
            }
        }
        self.stats.owner_revenue = revenue;
        self.stats.settled_jobs += 1;
        self.jobs.remove(job);
        self.settled.insert(*job);
        self.settled_order.push_back(*job);
        while self.settled_order.len() > self.limits.settled_memory {
            if let Some(old) = self.settled_order.pop_front() {
                self.settled.remove(&old);
            }
        }
        Ok(payout)
    }
}
