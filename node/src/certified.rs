//! Certified facts: everything a commit tells light nodes, carried with
//! the signatures of validators holding f + 1 of the stake, from one or two
//! validators, instead of reported by f + 1 of the stake to every light
//! node.
//!
//! A light node trusts a fact that validators holding f + 1 of the stake
//! reported identically ([`crate::facts`]): with unsigned reports that
//! means hearing it from each of them, so every commit that concerns a
//! light node costs it f + 1 messages (34 of `large`'s 100 validators, for
//! each of its 11 000 light nodes: most of its messages). Signed, the same
//! backing travels in one:
//!
//! 1. A validator that applied commit `index` with facts builds a Merkle
//!    tree over them ([`CommitFacts`](crate::validator)): leaf 0 holds the
//!    facts for every subscriber ([`Fact::to_every_subscriber`]), then one
//!    leaf per account the commit concerns, in account order, with that
//!    account's facts and holdings ([`leaf_digest`]). It signs the root
//!    under the committee ([`FactsVote`]) and sends the vote to the other
//!    validators riding on its next block (no message of its own:
//!    [`NodeMessage::Voted`](crate::wire::NodeMessage)).
//! 2. Once votes for its own root from validators holding f + 1 of the
//!    stake reached it (`VotePool`), it forms a [`FactsCertificate`] and
//!    sends each subscriber that asked for certified facts
//!    ([`FactsMode::Certified`]) the leaves of the commit that concern it
//!    with their Merkle proofs and the shared certificate
//!    ([`ProvenFacts`]). A subscriber that asked for none
//!    ([`FactsMode::Silent`]) hears only the holdings reports it asks for.
//! 3. A light node checks the message ([`ProvenFacts::verify`]): each leaf
//!    is its own or the one for every subscriber, each proof leads to the
//!    certified root, the signers are distinct members holding f + 1 of the
//!    stake and every signature verifies. At least one signer is honest and
//!    applied the commit with exactly this root, so the facts are decided
//!    at once, from any one source: a light node asks one or two
//!    validators for them and asks another when none arrive for a while
//!    or one forges ([`FactDelivery::Certified`](crate::light::FactDelivery)).
//!
//! What a certificate cannot prove is completeness: a source may withhold
//! a light node's leaf. The patience, the stuck-transaction failover, the
//! light nodes' expectations (a fact another party's transaction makes,
//! asked of validators drawn from the committee when it does not come:
//! [`LightCore::check_expectations`](crate::light::LightCore::check_expectations))
//! and asking more sources bound what withholding costs: time, not facts.
//!
//! A forged message (a signer outside the committee or counted twice, too
//! little stake, a signature that does not verify, a leaf or proof other
//! than those signed, someone else's leaf) is refused with a [`CertError`]
//! and changes nothing. Votes are bounded: a validator keeps those of
//! commits within [`VOTES_AHEAD`] of the last it applied and
//! [`VOTES_KEPT`] behind it, one per validator and commit (the first; a
//! second, different one is an equivocation and ignored).
//!
//! ```
//! use std::sync::Arc;
//! use idlegrid_dag_ledger::consensus::Committee;
//! use idlegrid_node::certified::{leaf_digest, FactsCertificate, FactsVote, ProvenFacts, ProvenLeaf};
//! use idlegrid_node::market::BatchNo;
//! use idlegrid_node::wire::Fact;
//! use idlegrid_primitives::{Keypair, MerkleTree, Seed, SignatureVerifier};
//!
//! let keys: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed(&Seed::from_u64(i))).collect();
//! let committee = Committee::equal(keys.iter().map(|k| k.node_id())).unwrap();
//! // Commit 12 closes sealing batch 7 for everyone and concerns no account.
//! let facts: Arc<[Fact]> = vec![Fact::SealingClosed { batch: BatchNo(7) }].into();
//! let tree = MerkleTree::new(vec![leaf_digest(None, &facts)]);
//! // Two of four equal validators: f + 1 of the stake.
//! let votes = keys[..2]
//!     .iter()
//!     .enumerate()
//!     .map(|(i, k)| (i as u32, FactsVote::sign(k, &committee, 12, tree.root()).signature))
//!     .collect();
//! let cert = Arc::new(FactsCertificate::new(12, tree.root(), votes));
//! let leaf = ProvenLeaf { owner: None, facts, proof: Arc::new(tree.proof(0).unwrap()) };
//! let proven = ProvenFacts { cert, leaves: vec![leaf] };
//! let v = SignatureVerifier::plain();
//! assert!(proven.verify(&committee, None, &v).is_ok());
//!
//! let mut forged = proven.clone();
//! forged.leaves[0].facts = vec![Fact::SealingClosed { batch: BatchNo(8) }].into();
//! assert!(forged.verify(&committee, None, &v).is_err());
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use idlegrid_dag_ledger::consensus::{AuthorityIndex, Committee, StakeAggregator};
use idlegrid_primitives::{
    AccountId, CacheCell, Digest, Domain, Keypair, MerkleProof, PublicKey, Signature,
    SignatureVerifier,
};
use serde::{Deserialize, Serialize};

use crate::wire::{Fact, MAX_FACTS_PER_BATCH};

/// The domain votes on a commit's facts are signed under.
pub const FACTS_VOTE_DOMAIN: Domain = Domain::new("idlegrid/node/facts/vote");
const LEAF_DOMAIN: Domain = Domain::new("idlegrid/node/facts/leaf");
/// Commits past the last applied one whose votes a validator keeps (votes
/// of validators ahead of it wait there until it catches up).
pub const VOTES_AHEAD: u64 = 256;
/// Commits before the last applied one whose votes (and certificates) a
/// validator keeps: late votes still complete a certificate, and a light
/// node asking from an older commit is served what is kept.
pub const VOTES_KEPT: u64 = 64;
/// Votes one block may carry (a validator that applied more commits since
/// its last block votes on the latest only).
pub const MAX_VOTES_PER_BLOCK: usize = 16;
/// Leaves one [`ProvenFacts`] may carry: the subscriber's own and the one
/// for every subscriber.
pub const MAX_PROVEN_LEAVES: usize = 2;

/// How a validator sends a subscriber its facts (see
/// [`GatewayRequest::SubscribeWith`](crate::wire::GatewayRequest)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum FactsMode {
    /// Reported, unsigned: every source sends them and f + 1 of the stake
    /// decides them (as [`GatewayRequest::Subscribe`](crate::wire::GatewayRequest)).
    #[default]
    Reported,
    /// As [`ProvenFacts`], once certified.
    Certified,
    /// Not at all (other sources send them certified); only the holdings
    /// reports the subscriber asks for.
    Silent,
}

/// A validator's signature on the facts root of one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactsVote {
    /// The commit.
    pub index: u64,
    /// The root of the commit's facts tree.
    pub root: Digest,
    /// Over [`signed_bytes`], by the voter's key.
    pub signature: Signature,
}

impl FactsVote {
    /// `key`'s vote for `root` as the facts root of commit `index`.
    pub fn sign(key: &Keypair, committee: &Committee, index: u64, root: Digest) -> Self {
        Self::sign_with(key, committee, (index, root), &SignatureVerifier::plain())
    }

    /// [`FactsVote::sign`] through `signatures` (which, with a memo,
    /// remembers the signature as one that verifies: see
    /// [`SignatureVerifier::sign`]).
    pub fn sign_with(
        key: &Keypair,
        committee: &Committee,
        (index, root): (u64, Digest),
        signatures: &SignatureVerifier,
    ) -> Self {
        let msg = signed_bytes(committee, index, &root);
        let signature = signatures.sign(key, FACTS_VOTE_DOMAIN, &msg);
        Self {
            index,
            root,
            signature,
        }
    }

    /// Checks that `signer` signed this vote.
    pub fn verify(
        &self,
        committee: &Committee,
        signer: AuthorityIndex,
        verifier: &SignatureVerifier,
    ) -> Result<(), CertError> {
        let node = committee
            .node(signer)
            .ok_or(CertError::NotAMember(signer.get()))?;
        let msg = signed_bytes(committee, self.index, &self.root);
        verifier
            .verify(&node.public_key(), FACTS_VOTE_DOMAIN, &msg, &self.signature)
            .map_err(|_| CertError::BadSignature(signer.get()))
    }
}

/// The facts root of one commit with the votes of validators holding f + 1
/// of the stake: one source suffices (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactsCertificate {
    /// The commit.
    pub index: u64,
    /// The root of its facts tree.
    pub root: Digest,
    /// The signers' committee indices and signatures, in committee order.
    pub votes: Vec<(u32, Signature)>,
    /// The committee this very allocation was found valid for (see
    /// [`FactsCertificate::verify`]).
    #[serde(skip)]
    checked: Checked,
}

/// The digest of the committee a certificate was found valid for, kept
/// with it: a certificate shared in memory (by every subscriber of a
/// validator in one process) is checked once. Not part of the certificate:
/// never sent or received (a decoded certificate is unchecked), empty in a
/// clone (which may then be changed), equal for all.
#[derive(Default, Clone, PartialEq, Eq, Debug)]
struct Checked(CacheCell<Digest>);

/// One leaf of a commit's facts tree with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenLeaf {
    /// Whose facts: an account's, or `None` for every subscriber's.
    pub owner: Option<AccountId>,
    /// The facts (shared: every subscriber of the leaf gets the same).
    pub facts: Arc<[Fact]>,
    /// The path to the certified root (shared: every validator that
    /// applied the commit with this tree sends the same).
    pub proof: Arc<MerkleProof>,
}

/// The facts of one commit for one subscriber, proven against a shared
/// certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvenFacts {
    /// The commit's certificate.
    pub cert: Arc<FactsCertificate>,
    /// The subscriber's leaves (at most [`MAX_PROVEN_LEAVES`]).
    pub leaves: Vec<ProvenLeaf>,
}

/// Why certified facts were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// More facts than a batch may hold, or more leaves than a subscriber has.
    #[error(
        "{0} certified facts or leaves (at most {MAX_FACTS_PER_BATCH} and {MAX_PROVEN_LEAVES})"
    )]
    TooManyFacts(usize),
    /// A leaf that is neither the receiver's nor the one for everyone.
    #[error("a leaf of account {0}, not the receiver's")]
    NotYours(AccountId),
    /// A leaf whose proof does not lead to the certified root.
    #[error("leaf {0}'s proof does not lead to the certified root")]
    BadProof(usize),
    /// More votes than the committee has members.
    #[error("{votes} votes for a committee of {members}")]
    TooManyVotes {
        /// Votes carried.
        votes: usize,
        /// Committee size.
        members: usize,
    },
    /// A signer is not a committee member.
    #[error("signer {0} is not a committee member")]
    NotAMember(u32),
    /// A signer appears twice.
    #[error("signer {0} counted twice")]
    Duplicate(u32),
    /// The signers hold less than f + 1 of the stake.
    #[error("signers hold {stake} of the stake, f + 1 is {needed}")]
    NotEnoughStake {
        /// Their stake.
        stake: u64,
        /// The validity threshold.
        needed: u64,
    },
    /// A signature does not verify (over this root).
    #[error("the signature of signer {0} does not verify")]
    BadSignature(u32),
}

impl FactsCertificate {
    /// The certificate of `root` as commit `index`'s facts root by `votes`.
    pub fn new(index: u64, root: Digest, votes: Vec<(u32, Signature)>) -> Self {
        Self {
            index,
            root,
            votes,
            checked: Checked::default(),
        }
    }

    /// Checks the certificate against `committee` (see [`CertError`]):
    /// cheap structural checks first, signatures last. Once it held, this
    /// allocation is not checked again for the same committee (its fields
    /// cannot change behind an `Arc`; a clone starts unchecked).
    pub fn verify(
        &self,
        committee: &Committee,
        verifier: &SignatureVerifier,
    ) -> Result<(), CertError> {
        if self.checked.0.get() == Some(&committee.digest()) {
            return Ok(());
        }
        self.check(committee, verifier)?;
        let _ = self.checked.0.set(committee.digest());
        Ok(())
    }

    fn check(&self, committee: &Committee, verifier: &SignatureVerifier) -> Result<(), CertError> {
        if self.votes.len() > committee.size() {
            return Err(CertError::TooManyVotes {
                votes: self.votes.len(),
                members: committee.size(),
            });
        }
        let mut stake = StakeAggregator::new(committee);
        for (i, _) in &self.votes {
            let who = AuthorityIndex::new(*i);
            if !committee.contains(who) {
                return Err(CertError::NotAMember(*i));
            }
            if stake.contains(who) {
                return Err(CertError::Duplicate(*i));
            }
            stake.add(who, committee);
        }
        if !committee.is_validity(stake.stake()) {
            return Err(CertError::NotEnoughStake {
                stake: stake.stake(),
                needed: committee.validity_threshold(),
            });
        }
        let msg = signed_bytes(committee, self.index, &self.root);
        let signers: Vec<(PublicKey, Signature)> = self
            .votes
            .iter()
            .filter_map(|(i, sig)| {
                Some((committee.node(AuthorityIndex::new(*i))?.public_key(), *sig))
            })
            .collect();
        verifier
            .verify_all(FACTS_VOTE_DOMAIN, &msg, &signers)
            .map_err(|(k, _)| CertError::BadSignature(self.votes[k].0))?;
        Ok(())
    }
}

impl ProvenFacts {
    /// The commit.
    pub fn index(&self) -> u64 {
        self.cert.index
    }

    /// Checks the leaves (each `me`'s or everyone's, at most
    /// [`MAX_FACTS_PER_BATCH`] facts, its proof leading to the certified
    /// root), then the certificate.
    pub fn verify(
        &self,
        committee: &Committee,
        me: Option<AccountId>,
        verifier: &SignatureVerifier,
    ) -> Result<(), CertError> {
        if self.leaves.len() > MAX_PROVEN_LEAVES {
            return Err(CertError::TooManyFacts(self.leaves.len()));
        }
        for (i, leaf) in self.leaves.iter().enumerate() {
            if let Some(owner) = leaf.owner
                && Some(owner) != me
            {
                return Err(CertError::NotYours(owner));
            }
            if leaf.facts.len() > MAX_FACTS_PER_BATCH {
                return Err(CertError::TooManyFacts(leaf.facts.len()));
            }
            let digest = leaf_digest(leaf.owner.as_ref(), &leaf.facts);
            if leaf.proof.root(&digest) != Some(self.cert.root) {
                return Err(CertError::BadProof(i));
            }
        }
        self.cert.verify(committee, verifier)
    }
}

/// The digest of one leaf of a commit's facts tree: whose facts (`None`:
/// every subscriber's) and the facts.
pub fn leaf_digest(owner: Option<&AccountId>, facts: &[Fact]) -> Digest {
    Digest::of(LEAF_DOMAIN, &(owner, facts))
}

/// What a vote's signature covers: the committee (a vote of one epoch's
/// committee is worthless to another's), the commit and the root.
pub fn signed_bytes(committee: &Committee, index: u64, root: &Digest) -> [u8; 72] {
    let mut b = [0u8; 72];
    b[..32].copy_from_slice(committee.digest().as_bytes());
    b[32..40].copy_from_slice(&index.to_le_bytes());
    b[40..].copy_from_slice(root.as_bytes());
    b
}

/// One commit's votes at a validator.
#[derive(Debug, Default)]
struct CommitVotes {
    /// Each voter's first vote (root, signature).
    votes: BTreeMap<u32, (Digest, Signature)>,
    /// This validator's own root of the commit, once applied.
    own: Option<Digest>,
    /// The stake of the votes for `own` (counted once it is known).
    stake: u64,
    /// The certificate, once formed.
    cert: Option<Arc<FactsCertificate>>,
}

/// A validator's votes on commits' facts, by commit (bounded, see the
/// module docs), and the certificates they formed.
#[derive(Debug, Default)]
pub(crate) struct VotePool {
    by_index: BTreeMap<u64, CommitVotes>,
    /// The last commit this validator applied.
    applied: u64,
}

impl VotePool {
    /// Records `who`'s vote, already verified, if its commit is within the
    /// window; returns the certificate it completes, if any.
    pub(crate) fn record(
        &mut self,
        committee: &Committee,
        who: AuthorityIndex,
        vote: &FactsVote,
    ) -> Option<Arc<FactsCertificate>> {
        if !self.in_window(vote.index) {
            return None;
        }
        let c = self.by_index.entry(vote.index).or_default();
        if c.cert.is_some() || c.votes.contains_key(&who.get()) {
            return None;
        }
        c.votes.insert(who.get(), (vote.root, vote.signature));
        if c.own != Some(vote.root) {
            return None;
        }
        c.stake += committee.stake(who);
        Self::try_certify(committee, vote.index, c)
    }

    /// True if a vote of `who` for commit `index` would be kept: in the
    /// window, its first for that commit, and the commit not certified yet.
    pub(crate) fn wants(&self, who: AuthorityIndex, index: u64) -> bool {
        self.in_window(index)
            && self
                .by_index
                .get(&index)
                .is_none_or(|c| c.cert.is_none() && !c.votes.contains_key(&who.get()))
    }

    /// True if votes for commit `index` are kept.
    pub(crate) fn in_window(&self, index: u64) -> bool {
        index + VOTES_KEPT >= self.applied && index <= self.applied + VOTES_AHEAD
    }

    /// This validator applied commit `index` (with `own` its own vote, if
    /// the commit has facts): moves the window and returns the certificate
    /// its own vote completes, if any.
    pub(crate) fn applied(
        &mut self,
        committee: &Committee,
        me: AuthorityIndex,
        index: u64,
        own: Option<&FactsVote>,
    ) -> Option<Arc<FactsCertificate>> {
        self.applied = self.applied.max(index);
        let floor = self.applied.saturating_sub(VOTES_KEPT);
        while self
            .by_index
            .first_key_value()
            .is_some_and(|(i, _)| *i < floor)
        {
            self.by_index.pop_first();
        }
        let vote = own?;
        let c = self.by_index.entry(index).or_default();
        if c.own.is_some() {
            return None;
        }
        c.own = Some(vote.root);
        c.votes
            .entry(me.get())
            .or_insert((vote.root, vote.signature));
        c.stake = c
            .votes
            .iter()
            .filter(|(_, (r, _))| *r == vote.root)
            .map(|(w, _)| committee.stake(AuthorityIndex::new(*w)))
            .sum();
        Self::try_certify(committee, index, c)
    }

    /// The certificate of commit `index` once its own root is known and
    /// f + 1 of the stake voted for it (formed once; the stake is counted
    /// as votes arrive, the votes collected only then).
    fn try_certify(
        committee: &Committee,
        index: u64,
        c: &mut CommitVotes,
    ) -> Option<Arc<FactsCertificate>> {
        if c.cert.is_some() || !committee.is_validity(c.stake) {
            return None;
        }
        let root = c.own?;
        let mut stake = StakeAggregator::new(committee);
        let mut votes = Vec::new();
        for (who, (r, sig)) in &c.votes {
            if *r == root && !committee.is_validity(stake.stake()) {
                stake.add(AuthorityIndex::new(*who), committee);
                votes.push((*who, *sig));
            }
        }
        if !committee.is_validity(stake.stake()) {
            return None;
        }
        let cert = Arc::new(FactsCertificate::new(index, root, votes));
        c.cert = Some(Arc::clone(&cert));
        // The votes are no longer needed: only the certificate is kept.
        c.votes.clear();
        Some(cert)
    }

    /// The kept certificates of commits from `from` on, oldest first.
    pub(crate) fn certificates_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = &Arc<FactsCertificate>> {
        self.by_index
            .range(from..)
            .filter_map(|(_, c)| c.cert.as_ref())
    }

    /// Commits with votes kept.
    #[cfg(test)]
    pub(crate) fn commits(&self) -> usize {
        self.by_index.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::BatchNo;
    use idlegrid_primitives::{MerkleTree, Seed};

    fn setup(n: u64) -> (Vec<Keypair>, Committee) {
        let keys: Vec<Keypair> = (0..n)
            .map(|i| Keypair::from_seed(&Seed::from_u64(100 + i)))
            .collect();
        let c = Committee::equal(keys.iter().map(|k| k.node_id())).unwrap();
        (keys, c)
    }

    fn facts(b: u64) -> Arc<[Fact]> {
        vec![Fact::SealingClosed { batch: BatchNo(b) }].into()
    }

    /// A commit's tree: everyone's leaf, then accounts `a` and `b`.
    struct Commit {
        leaves: Vec<(Option<AccountId>, Arc<[Fact]>)>,
        tree: MerkleTree,
    }

    fn commit(a: AccountId, b: AccountId) -> Commit {
        let leaves = vec![(None, facts(1)), (Some(a), facts(2)), (Some(b), facts(3))];
        let digests = leaves
            .iter()
            .map(|(o, f)| leaf_digest(o.as_ref(), f))
            .collect();
        Commit {
            tree: MerkleTree::new(digests),
            leaves,
        }
    }

    fn cert(keys: &[Keypair], c: &Committee, signers: &[u32], root: Digest) -> FactsCertificate {
        let votes = signers
            .iter()
            .map(|i| {
                let k = &keys[*i as usize % keys.len()];
                (*i, FactsVote::sign(k, c, 5, root).signature)
            })
            .collect();
        FactsCertificate::new(5, root, votes)
    }

    fn proven(cm: &Commit, cert: FactsCertificate, leaves: &[usize]) -> ProvenFacts {
        let leaves = leaves
            .iter()
            .map(|i| ProvenLeaf {
                owner: cm.leaves[*i].0,
                facts: Arc::clone(&cm.leaves[*i].1),
                proof: Arc::new(cm.tree.proof(*i).unwrap()),
            })
            .collect();
        ProvenFacts {
            cert: Arc::new(cert),
            leaves,
        }
    }

    #[test]
    fn f_plus_one_signers_certify_and_every_forgery_is_refused() {
        let (keys, c) = setup(7); // f = 2: three signers needed
        let v = SignatureVerifier::plain();
        let (a, b) = (keys[0].node_id().account(), keys[1].node_id().account());
        let cm = commit(a, b);
        let root = cm.tree.root();
        let good = |signers: &[u32]| proven(&cm, cert(&keys, &c, signers, root), &[0, 1]);
        assert_eq!(good(&[0, 3, 6]).verify(&c, Some(a), &v), Ok(()));
        assert!(matches!(
            good(&[0, 3]).verify(&c, Some(a), &v),
            Err(CertError::NotEnoughStake { .. })
        ));
        assert_eq!(
            good(&[0, 3, 3]).verify(&c, Some(a), &v),
            Err(CertError::Duplicate(3))
        );
        assert_eq!(
            good(&[0, 3, 9]).verify(&c, Some(a), &v),
            Err(CertError::NotAMember(9))
        );
        // Someone else's leaf, or everyone's leaf only for a non-account.
        assert_eq!(
            good(&[0, 3, 6]).verify(&c, Some(b), &v),
            Err(CertError::NotYours(a))
        );
        let everyone = proven(&cm, cert(&keys, &c, &[0, 3, 6], root), &[0]);
        assert_eq!(everyone.verify(&c, None, &v), Ok(()));
        // Other facts in a leaf, or a leaf under another's proof.
        let mut other = good(&[0, 3, 6]);
        other.leaves[1].facts = facts(9);
        assert_eq!(other.verify(&c, Some(a), &v), Err(CertError::BadProof(1)));
        let mut moved = good(&[0, 3, 6]);
        moved.leaves[1].proof = Arc::new(cm.tree.proof(2).unwrap());
        assert_eq!(moved.verify(&c, Some(a), &v), Err(CertError::BadProof(1)));
        let mut many = good(&[0, 3, 6]);
        many.leaves.push(many.leaves[0].clone());
        assert_eq!(
            many.verify(&c, Some(a), &v),
            Err(CertError::TooManyFacts(3))
        );
        // Another root or another commit under the same signatures.
        let mut rerooted = cert(&keys, &c, &[0, 3, 6], root);
        rerooted.root = leaf_digest(None, &facts(1));
        assert!(matches!(
            proven(&cm, rerooted, &[]).verify(&c, Some(a), &v),
            Err(CertError::BadSignature(_))
        ));
        let mut later = cert(&keys, &c, &[0, 3, 6], root);
        later.index = 6;
        assert!(matches!(
            later.verify(&c, &v),
            Err(CertError::BadSignature(_))
        ));
        // A signature by someone else under a member's index.
        let mut stolen = cert(&keys, &c, &[0, 3, 6], root);
        stolen.votes[2].1 = FactsVote::sign(&keys[1], &c, 5, root).signature;
        assert_eq!(stolen.verify(&c, &v), Err(CertError::BadSignature(6)));
        // Another committee's votes: refused even by a certificate found
        // valid for this one, whose changed clone is checked afresh too.
        let (_, other_c) = setup(6);
        let checked = cert(&keys, &c, &[0, 3, 6], root);
        assert_eq!(checked.verify(&c, &v), Ok(()));
        assert!(checked.verify(&other_c, &v).is_err());
        let mut changed = checked.clone();
        changed.index = 6;
        assert!(changed.verify(&c, &v).is_err());
    }

    #[test]
    fn votes_certify_own_root_only_once_and_stay_bounded() {
        let (keys, c) = setup(4); // f = 1: two
        let me = AuthorityIndex::new(0);
        let mut pool = VotePool::default();
        let (good, bad) = (leaf_digest(None, &facts(1)), leaf_digest(None, &facts(2)));
        let vote = |k: usize, r: Digest| FactsVote::sign(&keys[k], &c, 10, r);
        // A lying validator's vote and an honest one arrive before this one
        // applied the commit: nothing is certified without its own root.
        let record =
            |pool: &mut VotePool, k: u32, v: &FactsVote| pool.record(&c, AuthorityIndex::new(k), v);
        assert!(record(&mut pool, 1, &vote(1, bad)).is_none());
        assert!(record(&mut pool, 2, &vote(2, good)).is_none());
        // The liar equivocates: its first vote stands.
        assert!(record(&mut pool, 1, &vote(1, good)).is_none());
        let own = vote(0, good);
        let cert = pool
            .applied(&c, me, 10, Some(&own))
            .expect("own + validator 2");
        assert_eq!(cert.votes.iter().map(|v| v.0).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(cert.verify(&c, &SignatureVerifier::plain()), Ok(()));
        // Certified: later votes are not wanted and form nothing.
        assert!(!pool.wants(AuthorityIndex::new(3), 10));
        assert!(record(&mut pool, 3, &vote(3, good)).is_none());
        assert_eq!(pool.certificates_from(0).count(), 1);
        // Far ahead or long past: not kept.
        let far = FactsVote::sign(&keys[2], &c, 10 + VOTES_AHEAD + 1, good);
        assert!(record(&mut pool, 2, &far).is_none());
        assert_eq!(pool.commits(), 1);
        pool.applied(&c, me, 10 + VOTES_KEPT + 1, None);
        assert_eq!(pool.commits(), 0);
        assert!(!pool.in_window(10));
    }
}
