//! Certified global facts: the facts every subscriber hears (a sealing
//! batch closed for commits, [`Fact::to_every_subscriber`]) carried once,
//! with the signatures of validators holding f + 1 of the stake, instead of
//! reported by f + 1 of the stake to every light node.
//!
//! A light node trusts a fact that validators holding f + 1 of the stake
//! reported identically ([`crate::facts`]): with unsigned reports that
//! means hearing it from each of them, so a commit with a global fact costs
//! every light node f + 1 messages (34 of `large`'s 100 validators, once per
//! clearing period, for all of its 11 000 light nodes: most of its
//! messages). Signed, the same backing travels in one message:
//!
//! 1. A validator that applied commit `index` with global facts signs
//!    ([`GlobalVote`]) the digest of `(index, facts)` under this committee
//!    and sends the vote to the other validators.
//! 2. Once votes for its own digest from validators holding f + 1 of the
//!    stake reached it (`GlobalVotes`), it sends the facts with those
//!    votes ([`CertifiedFacts`]) to the subscribers that asked for them
//!    certified ([`GlobalFacts::Certified`]); those that asked for none
//!    ([`GlobalFacts::Omitted`]) hear only their own facts from it.
//! 3. A light node checks the certificate ([`CertifiedFacts::verify`]): the
//!    signers are distinct members holding f + 1 of the stake and every
//!    signature verifies. At least one signer is honest and applied the
//!    commit with exactly these facts, so they are decided at once, from
//!    any one source: a light node asks one or two validators for them and
//!    asks another when none arrive for a while
//!    ([`GlobalSources::Certified`](crate::light::GlobalSources)).
//!
//! A forged certificate (a signer outside the committee or counted twice,
//! too little stake, a signature that does not verify, facts other than
//! those signed) is refused with a [`CertError`] and changes nothing.
//! Votes are bounded: a validator keeps those of commits within
//! [`VOTES_AHEAD`] of the last it applied and [`VOTES_KEPT`] behind it, one
//! per validator and commit (the first; a second, different one is an
//! equivocation and ignored).
//!
//! ```
//! use std::sync::Arc;
//! use idlegrid_dag_ledger::consensus::Committee;
//! use idlegrid_node::certified::{CertifiedFacts, GlobalVote};
//! use idlegrid_node::market::BatchNo;
//! use idlegrid_node::wire::Fact;
//! use idlegrid_primitives::{Keypair, Seed, SignatureVerifier};
//!
//! let keys: Vec<Keypair> = (0..4).map(|i| Keypair::from_seed(&Seed::from_u64(i))).collect();
//! let committee = Committee::equal(keys.iter().map(|k| k.node_id())).unwrap();
//! let facts: Arc<[Fact]> = vec![Fact::SealingClosed { batch: BatchNo(7) }].into();
//! // Two of four equal validators: f + 1 of the stake.
//! let votes = keys[..2]
//!     .iter()
//!     .enumerate()
//!     .map(|(i, k)| (i as u32, GlobalVote::sign(k, &committee, 12, &facts).signature))
//!     .collect();
//! let cert = CertifiedFacts { index: 12, facts, votes };
//! assert!(cert.verify(&committee, &SignatureVerifier::plain()).is_ok());
//!
//! let mut forged = cert.clone();
//! forged.facts = vec![Fact::SealingClosed { batch: BatchNo(8) }].into();
//! assert!(forged.verify(&committee, &SignatureVerifier::plain()).is_err());
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use idlegrid_dag_ledger::consensus::{AuthorityIndex, Committee, StakeAggregator};
use idlegrid_primitives::{Digest, Domain, Keypair, PublicKey, Signature, SignatureVerifier};
use serde::{Deserialize, Serialize};

use crate::wire::{Fact, MAX_FACTS_PER_BATCH};

/// The domain global-fact votes are signed under.
pub const GLOBAL_VOTE_DOMAIN: Domain = Domain::new("idlegrid/node/global-facts/vote");
const GLOBAL_DIGEST_DOMAIN: Domain = Domain::new("idlegrid/node/global-facts");
/// Commits past the last applied one whose votes a validator keeps (votes
/// of validators ahead of it wait there until it catches up).
pub const VOTES_AHEAD: u64 = 256;
/// Commits before the last applied one whose votes (and certificates) a
/// validator keeps: late votes still complete a certificate, and a light
/// node asking from an older commit is served what is kept.
pub const VOTES_KEPT: u64 = 64;

/// Which facts for every subscriber a validator sends a light node (see
/// [`GatewayRequest::SubscribeWith`](crate::wire::GatewayRequest)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum GlobalFacts {
    /// Reported, with the node's own facts: every source sends them and
    /// f + 1 of the stake decides them (as [`GatewayRequest::Subscribe`](crate::wire::GatewayRequest)).
    #[default]
    Reported,
    /// As a [`CertifiedFacts`], once certified.
    Certified,
    /// Not at all (another source sends them certified).
    Omitted,
}

/// A validator's signature on the global facts of one commit, sent to the
/// other validators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalVote {
    /// The commit.
    pub index: u64,
    /// [`global_digest`] of the commit's global facts.
    pub digest: Digest,
    /// Over [`signed_bytes`], by the sender's key.
    pub signature: Signature,
}

impl GlobalVote {
    /// `key`'s vote for `facts` as the global facts of commit `index`.
    pub fn sign(key: &Keypair, committee: &Committee, index: u64, facts: &[Fact]) -> Self {
        let digest = global_digest(index, facts);
        let signature = key.sign(GLOBAL_VOTE_DOMAIN, &signed_bytes(committee, index, &digest));
        Self {
            index,
            digest,
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
        let msg = signed_bytes(committee, self.index, &self.digest);
        verifier
            .verify(
                &node.public_key(),
                GLOBAL_VOTE_DOMAIN,
                &msg,
                &self.signature,
            )
            .map_err(|_| CertError::BadSignature(signer.get()))
    }
}

/// The global facts of one commit with the votes of validators holding
/// f + 1 of the stake: one source suffices (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedFacts {
    /// The commit.
    pub index: u64,
    /// Its global facts.
    pub facts: Arc<[Fact]>,
    /// The signers' committee indices and signatures, in committee order.
    pub votes: Vec<(u32, Signature)>,
}

/// Why a certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// More facts than a batch may hold.
    #[error("{0} certified facts (at most {MAX_FACTS_PER_BATCH})")]
    TooManyFacts(usize),
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
    /// A signature does not verify (over these facts).
    #[error("the signature of signer {0} does not verify")]
    BadSignature(u32),
}

impl CertifiedFacts {
    /// Checks the certificate against `committee` (see [`CertError`]):
    /// cheap structural checks first, signatures last.
    pub fn verify(
        &self,
        committee: &Committee,
        verifier: &SignatureVerifier,
    ) -> Result<(), CertError> {
        if self.facts.len() > MAX_FACTS_PER_BATCH {
            return Err(CertError::TooManyFacts(self.facts.len()));
        }
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
        let digest = global_digest(self.index, &self.facts);
        let msg = signed_bytes(committee, self.index, &digest);
        let signers: Vec<(PublicKey, Signature)> = self
            .votes
            .iter()
            .filter_map(|(i, sig)| {
                Some((committee.node(AuthorityIndex::new(*i))?.public_key(), *sig))
            })
            .collect();
        verifier
            .verify_all(GLOBAL_VOTE_DOMAIN, &msg, &signers)
            .map_err(|(k, _)| CertError::BadSignature(self.votes[k].0))?;
        Ok(())
    }
}

/// The digest a vote signs: the commit's index and its global facts.
pub fn global_digest(index: u64, facts: &[Fact]) -> Digest {
    Digest::of(GLOBAL_DIGEST_DOMAIN, &(index, facts))
}

/// What a vote's signature covers: the committee (a vote of one epoch's
/// committee is worthless to another's), the commit and the digest.
pub fn signed_bytes(committee: &Committee, index: u64, digest: &Digest) -> [u8; 72] {
    let mut b = [0u8; 72];
    b[..32].copy_from_slice(committee.digest().as_bytes());
    b[32..40].copy_from_slice(&index.to_le_bytes());
    b[40..].copy_from_slice(digest.as_bytes());
    b
}

/// One commit's votes at a validator.
#[derive(Debug, Default)]
struct CommitVotes {
    /// Each voter's first vote (digest, signature).
    votes: BTreeMap<u32, (Digest, Signature)>,
    /// This validator's own global facts of the commit, once applied.
    own: Option<Arc<[Fact]>>,
    /// The certificate, once formed.
    cert: Option<Arc<CertifiedFacts>>,
}

/// A validator's votes on global facts, by commit (bounded, see the module
/// docs), and the certificates they formed.
#[derive(Debug, Default)]
pub(crate) struct GlobalVotes {
    by_index: BTreeMap<u64, CommitVotes>,
    /// The last commit this validator applied.
    applied: u64,
}

impl GlobalVotes {
    /// Records `who`'s vote, already verified, if its commit is within the
    /// window; returns the certificate it completes, if any.
    pub(crate) fn record(
        &mut self,
        committee: &Committee,
        who: AuthorityIndex,
        vote: &GlobalVote,
    ) -> Option<Arc<CertifiedFacts>> {
        if !self.in_window(vote.index) {
            return None;
        }
        let c = self.by_index.entry(vote.index).or_default();
        c.votes
            .entry(who.get())
            .or_insert((vote.digest, vote.signature));
        Self::try_certify(committee, vote.index, c)
    }

    /// True if a vote of `who` for commit `index` would be kept: in the
    /// window, and its first for that commit.
    pub(crate) fn wants(&self, who: AuthorityIndex, index: u64) -> bool {
        self.in_window(index)
            && self
                .by_index
                .get(&index)
                .is_none_or(|c| !c.votes.contains_key(&who.get()))
    }

    /// True if votes for commit `index` are kept.
    pub(crate) fn in_window(&self, index: u64) -> bool {
        index + VOTES_KEPT >= self.applied && index <= self.applied + VOTES_AHEAD
    }

    /// This validator applied commit `index` (with `facts` for everyone, if
    /// any, and `vote` its own vote on them): moves the window and returns
    /// the certificate its own vote completes, if any.
    pub(crate) fn applied(
        &mut self,
        committee: &Committee,
        me: AuthorityIndex,
        index: u64,
        own: Option<(Arc<[Fact]>, &GlobalVote)>,
    ) -> Option<Arc<CertifiedFacts>> {
        self.applied = self.applied.max(index);
        let floor = self.applied.saturating_sub(VOTES_KEPT);
        while self
            .by_index
            .first_key_value()
            .is_some_and(|(i, _)| *i < floor)
        {
            self.by_index.pop_first();
        }
        let (facts, vote) = own?;
        let c = self.by_index.entry(index).or_default();
        c.own = Some(facts);
        c.votes
            .entry(me.get())
            .or_insert((vote.digest, vote.signature));
        Self::try_certify(committee, index, c)
    }

    /// The certificate of commit `index` once its own facts are known and
    /// f + 1 of the stake voted for them (formed once).
    fn try_certify(
        committee: &Committee,
        index: u64,
        c: &mut CommitVotes,
    ) -> Option<Arc<CertifiedFacts>> {
        if c.cert.is_some() {
            return None;
        }
        let facts = c.own.as_ref()?;
        let digest = global_digest(index, facts);
        let mut stake = StakeAggregator::new(committee);
        let mut votes = Vec::new();
        for (who, (d, sig)) in &c.votes {
            if *d == digest && !committee.is_validity(stake.stake()) {
                stake.add(AuthorityIndex::new(*who), committee);
                votes.push((*who, *sig));
            }
        }
        if !committee.is_validity(stake.stake()) {
            return None;
        }
        let cert = Arc::new(CertifiedFacts {
            index,
            facts: Arc::clone(facts),
            votes,
        });
        c.cert = Some(Arc::clone(&cert));
        Some(cert)
    }

    /// The kept certificates of commits from `from` on, oldest first.
    pub(crate) fn certificates_from(
        &self,
        from: u64,
    ) -> impl Iterator<Item = &Arc<CertifiedFacts>> {
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
    use idlegrid_primitives::Seed;

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

    fn cert(keys: &[Keypair], c: &Committee, signers: &[u32], f: &Arc<[Fact]>) -> CertifiedFacts {
        let votes = signers
            .iter()
            .map(|i| {
                (
                    *i,
                    GlobalVote::sign(&keys[*i as usize % keys.len()], c, 5, f).signature,
                )
            })
            .collect();
        CertifiedFacts {
            index: 5,
            facts: Arc::clone(f),
            votes,
        }
    }

    #[test]
    fn f_plus_one_signers_certify_and_every_forgery_is_refused() {
        let (keys, c) = setup(7); // f = 2: three signers needed
        let v = SignatureVerifier::plain();
        let f = facts(1);
        assert_eq!(cert(&keys, &c, &[0, 3, 6], &f).verify(&c, &v), Ok(()));
        assert!(matches!(
            cert(&keys, &c, &[0, 3], &f).verify(&c, &v),
            Err(CertError::NotEnoughStake { .. })
        ));
        assert_eq!(
            cert(&keys, &c, &[0, 3, 3], &f).verify(&c, &v),
            Err(CertError::Duplicate(3))
        );
        assert_eq!(
            cert(&keys, &c, &[0, 3, 9], &f).verify(&c, &v),
            Err(CertError::NotAMember(9))
        );
        // Other facts, or another commit, under the same signatures.
        let mut other = cert(&keys, &c, &[0, 3, 6], &f);
        other.facts = facts(2);
        assert!(matches!(
            other.verify(&c, &v),
            Err(CertError::BadSignature(_))
        ));
        let mut later = cert(&keys, &c, &[0, 3, 6], &f);
        later.index = 6;
        assert!(matches!(
            later.verify(&c, &v),
            Err(CertError::BadSignature(_))
        ));
        // A signature by someone else under a member's index.
        let mut stolen = cert(&keys, &c, &[0, 3, 6], &f);
        stolen.votes[2].1 = GlobalVote::sign(&keys[1], &c, 5, &f).signature;
        assert_eq!(stolen.verify(&c, &v), Err(CertError::BadSignature(6)));
        // Another committee's votes.
        let (_, other_c) = setup(6);
        assert!(
            cert(&keys, &c, &[0, 3, 6], &f)
                .verify(&other_c, &v)
                .is_err()
        );
    }

    #[test]
    fn votes_certify_own_facts_only_once_and_stay_bounded() {
        let (keys, c) = setup(4); // f = 1: two
        let me = AuthorityIndex::new(0);
        let mut pool = GlobalVotes::default();
        let (good, bad) = (facts(1), facts(2));
        let vote = |k: usize, f: &Arc<[Fact]>| GlobalVote::sign(&keys[k], &c, 10, f);
        // A lying validator's vote and an honest one arrive before this one
        // applied the commit: nothing is certified without its own facts.
        assert!(
            pool.record(&c, AuthorityIndex::new(1), &vote(1, &bad))
                .is_none()
        );
        assert!(
            pool.record(&c, AuthorityIndex::new(2), &vote(2, &good))
                .is_none()
        );
        // The liar equivocates: its first vote stands.
        assert!(
            pool.record(&c, AuthorityIndex::new(1), &vote(1, &good))
                .is_none()
        );
        let own = vote(0, &good);
        let cert = pool
            .applied(&c, me, 10, Some((Arc::clone(&good), &own)))
            .expect("own + validator 2");
        assert_eq!(cert.votes.iter().map(|v| v.0).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(cert.verify(&c, &SignatureVerifier::plain()), Ok(()));
        assert!(
            pool.record(&c, AuthorityIndex::new(3), &vote(3, &good))
                .is_none()
        );
        assert_eq!(pool.certificates_from(0).count(), 1);
        // Far ahead or long past: not kept.
        let far = GlobalVote::sign(&keys[2], &c, 10 + VOTES_AHEAD + 1, &good);
        assert!(pool.record(&c, AuthorityIndex::new(2), &far).is_none());
        assert_eq!(pool.commits(), 1);
        pool.applied(&c, me, 10 + VOTES_KEPT + 1, None);
        assert_eq!(pool.commits(), 0);
        assert!(!pool.in_window(10));
    }
}
