//! The committee: validators with stake, and stake thresholds.
//!
//! With total stake `T` and `f = (T - 1) / 3`, a *quorum* is `T - f`
//! (2f+1 when `T = 3f+1`) and *validity* is `f + 1`. Two quorums always
//! intersect in more than `f` stake, hence in at least one honest validator
//! as long as Byzantine stake is at most `f`. Thresholds are by stake, never
//! by count.

use core::fmt;
use std::collections::BTreeSet;
use std::sync::Arc;

use idlegrid_primitives::{Digest, Domain, NodeId};
use serde::{Deserialize, Serialize};

use super::error::ConsensusError;

/// Maximum number of validators in a committee.
pub const MAX_COMMITTEE_SIZE: usize = 1024;

const COMMITTEE_DOMAIN: Domain = Domain::new("idlegrid/dag/committee");

/// The position of a validator in the committee (0-based).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AuthorityIndex(u32);

impl AuthorityIndex {
    /// Wraps a raw index.
    pub const fn new(i: u32) -> Self {
        Self(i)
    }
    /// The raw index.
    pub const fn get(self) -> u32 {
        self.0
    }
    /// The index as a `usize`, for indexing vectors.
    pub const fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Debug for AuthorityIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "A{}", self.0)
    }
}

impl fmt::Display for AuthorityIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "A{}", self.0)
    }
}

/// Voting power of a validator.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Stake(u64);

impl Stake {
    /// Wraps a raw stake.
    pub const fn new(s: u64) -> Self {
        Self(s)
    }
    /// The raw stake.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// One committee member.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Authority {
    /// Its node identity (public key).
    pub node: NodeId,
    /// Its stake.
    pub stake: Stake,
}

/// The validator set of an epoch with stake thresholds.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Committee {
    // Shared, so a clone is cheap: a simulator gives one to each of its
    // light nodes (110 000 in `huge`).
    authorities: Arc<[Authority]>,
    /// An open-addressing table over the nodes: each slot 0 (empty) or an
    /// authority index plus one, at the slot the node's leading bytes name
    /// (or after it). Every message a node receives asks it; a binary
    /// search was seven unpredictable branches and as many cache lines.
    by_node: Arc<[u16]>,
    total: u64,
    quorum: u64,
    validity: u64,
    digest: Digest,
}

/// Where a node's probe starts: its leading bytes (ids are public keys,
/// spread uniformly; a member grinding keys to collide only lengthens its
/// own committee's probes, at most to the table's size).
fn node_slot(node: &NodeId) -> usize {
    let b = node.as_bytes();
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as usize
}

/// The lookup table of [`Committee::index_of`]: a power of two at least
/// twice the members (so at most half full), linear probing.
fn node_table(authorities: &[Authority]) -> Arc<[u16]> {
    let size = (2 * authorities.len()).next_power_of_two();
    let mut table = vec![0u16; size];
    for (i, a) in authorities.iter().enumerate() {
        let mut slot = node_slot(&a.node) & (size - 1);
        while table[slot] != 0 {
            slot = (slot + 1) & (size - 1);
        }
        table[slot] = u16::try_from(i + 1).expect("bounded by MAX_COMMITTEE_SIZE");
    }
    table.into()
}

impl Committee {
    /// Builds a committee; authority indices follow the order given.
    pub fn new(authorities: Vec<Authority>) -> Result<Self, ConsensusError> {
        if authorities.is_empty() {
            return Err(ConsensusError::EmptyCommittee);
        }
        if authorities.len() > MAX_COMMITTEE_SIZE {
            return Err(ConsensusError::CommitteeTooLarge {
                size: authorities.len(),
                max: MAX_COMMITTEE_SIZE,
            });
        }
        let mut seen = BTreeSet::new();
        let mut total: u64 = 0;
        for a in &authorities {
            if a.stake.0 == 0 {
                return Err(ConsensusError::ZeroStake(a.node));
            }
            total = total
                .checked_add(a.stake.0)
                .ok_or(ConsensusError::StakeOverflow)?;
            if !seen.insert(a.node) {
                return Err(ConsensusError::DuplicateValidator(a.node));
            }
        }
        let f = (total - 1) / 3;
        let digest = Digest::of(COMMITTEE_DOMAIN, &authorities);
        Ok(Self {
            by_node: node_table(&authorities),
            authorities: authorities.into(),
            total,
            quorum: total - f,
            validity: f + 1,
            digest,
        })
    }

    /// A committee of nodes with equal stake 1.
    pub fn equal(nodes: impl IntoIterator<Item = NodeId>) -> Result<Self, ConsensusError> {
        Self::new(
            nodes
                .into_iter()
                .map(|node| Authority {
                    node,
                    stake: Stake(1),
                })
                .collect(),
        )
    }

    /// Number of validators.
    pub fn size(&self) -> usize {
        self.authorities.len()
    }
    /// All members in index order.
    pub fn authorities(&self) -> &[Authority] {
        &self.authorities
    }
    /// All indices.
    pub fn indices(&self) -> impl Iterator<Item = AuthorityIndex> + '_ {
        (0..self.authorities.len()).map(|i| AuthorityIndex(i as u32))
    }
    /// True if `i` is a member.
    pub fn contains(&self, i: AuthorityIndex) -> bool {
        i.as_usize() < self.authorities.len()
    }
    /// The member at `i`.
    pub fn authority(&self, i: AuthorityIndex) -> Result<&Authority, ConsensusError> {
        self.authorities
            .get(i.as_usize())
            .ok_or(ConsensusError::UnknownAuthority(i))
    }
    /// The node id at `i`.
    pub fn node(&self, i: AuthorityIndex) -> Option<NodeId> {
        self.authorities.get(i.as_usize()).map(|a| a.node)
    }
    /// The stake at `i` (zero for a non-member).
    pub fn stake(&self, i: AuthorityIndex) -> u64 {
        self.authorities.get(i.as_usize()).map_or(0, |a| a.stake.0)
    }
    /// The index of `node`.
    pub fn index_of(&self, node: &NodeId) -> Option<AuthorityIndex> {
        let mask = self.by_node.len() - 1;
        let mut slot = node_slot(node) & mask;
        // The table is at most half full, so an empty slot ends every probe.
        loop {
            let i = usize::from(self.by_node[slot].checked_sub(1)?);
            if self.authorities[i].node == *node {
                return Some(AuthorityIndex(i as u32));
            }
            slot = (slot + 1) & mask;
        }
    }
    /// Total stake.
    pub fn total_stake(&self) -> u64 {
        self.total
    }
    /// Quorum threshold (2f+1 by stake).
    pub fn quorum_threshold(&self) -> u64 {
        self.quorum
    }
    /// Validity threshold (f+1 by stake).
    pub fn validity_threshold(&self) -> u64 {
        self.validity
    }
    /// True if `stake` reaches a quorum.
    pub fn is_quorum(&self, stake: u64) -> bool {
        stake >= self.quorum
    }
    /// True if `stake` reaches validity.
    pub fn is_validity(&self, stake: u64) -> bool {
        stake >= self.validity
    }
    /// A digest identifying this committee (members, order and stakes).
    pub fn digest(&self) -> Digest {
        self.digest
    }
}

/// Sums the stake of distinct authorities.
#[derive(Clone, Debug)]
pub struct StakeAggregator {
    seen: Vec<bool>,
    stake: u64,
}

impl StakeAggregator {
    /// An empty aggregator for `committee`.
    pub fn new(committee: &Committee) -> Self {
        Self {
            seen: vec![false; committee.size()],
            stake: 0,
        }
    }
    /// Adds `who` once; returns the running total.
    pub fn add(&mut self, who: AuthorityIndex, committee: &Committee) -> u64 {
        if let Some(s) = self.seen.get_mut(who.as_usize())
            && !*s
        {
            *s = true;
            self.stake += committee.stake(who);
        }
        self.stake
    }
    /// The stake so far.
    pub fn stake(&self) -> u64 {
        self.stake
    }
    /// True if `who` was added.
    pub fn contains(&self, who: AuthorityIndex) -> bool {
        self.seen.get(who.as_usize()).copied().unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(i: u8) -> NodeId {
        NodeId::from_bytes([i; 32])
    }

    /// Every authority is found at its index, in whatever order the nodes
    /// sort; a node not in the committee is not.
    #[test]
    fn index_of_finds_each_authority() {
        let nodes: Vec<NodeId> = [9u8, 3, 200, 7, 0, 42, 17].map(node).to_vec();
        let c = Committee::equal(nodes.iter().copied()).unwrap();
        for (i, n) in nodes.iter().enumerate() {
            assert_eq!(c.index_of(n), Some(AuthorityIndex(i as u32)));
        }
        for absent in [1u8, 8, 255] {
            assert_eq!(c.index_of(&node(absent)), None);
        }
    }

    /// Ids that share their leading bytes (the probe's start) are found
    /// past each other, whatever the order they were placed in, and an
    /// absent id colliding with them is not found.
    #[test]
    fn colliding_ids_are_found_by_probing() {
        let id = |tail: u8| {
            let mut b = [7u8; 32];
            b[31] = tail;
            NodeId::from_bytes(b)
        };
        for order in [[1u8, 2, 3, 4, 5], [5, 4, 3, 2, 1], [3, 1, 5, 2, 4]] {
            let nodes: Vec<NodeId> = order.iter().map(|t| id(*t)).collect();
            let c = Committee::equal(nodes.iter().copied()).unwrap();
            for (i, n) in nodes.iter().enumerate() {
                assert_eq!(c.index_of(n), Some(AuthorityIndex(i as u32)));
            }
            assert_eq!(c.index_of(&id(9)), None);
        }
        // A full-size committee: every member found.
        let nodes: Vec<NodeId> = (0..MAX_COMMITTEE_SIZE as u32)
            .map(|i| {
                NodeId::from_bytes(*Digest::hash(COMMITTEE_DOMAIN, &i.to_le_bytes()).as_bytes())
            })
            .collect();
        let c = Committee::equal(nodes.iter().copied()).unwrap();
        for (i, n) in nodes.iter().enumerate() {
            assert_eq!(c.index_of(n), Some(AuthorityIndex(i as u32)));
        }
    }

    #[test]
    fn thresholds_by_stake() {
        let c = Committee::equal((0..4).map(node)).unwrap();
        assert_eq!((c.quorum_threshold(), c.validity_threshold()), (3, 2));
        let c = Committee::equal((0..10).map(node)).unwrap();
        assert_eq!((c.quorum_threshold(), c.validity_threshold()), (7, 4));
        let c = Committee::new(vec![
            Authority {
                node: node(1),
                stake: Stake(97),
            },
            Authority {
                node: node(2),
                stake: Stake(1),
            },
            Authority {
                node: node(3),
                stake: Stake(1),
            },
            Authority {
                node: node(4),
                stake: Stake(1),
            },
        ])
        .unwrap();
        assert_eq!(c.quorum_threshold(), 67);
        assert!(c.is_quorum(97));
    }

    #[test]
    fn rejects_bad_committees() {
        assert_eq!(Committee::equal([]), Err(ConsensusError::EmptyCommittee));
        assert!(matches!(
            Committee::equal([node(1), node(1)]),
            Err(ConsensusError::DuplicateValidator(_))
        ));
        assert!(matches!(
            Committee::new(vec![Authority {
                node: node(1),
                stake: Stake(0)
            }]),
            Err(ConsensusError::ZeroStake(_))
        ));
        assert_eq!(
            Committee::new(vec![
                Authority {
                    node: node(1),
                    stake: Stake(u64::MAX)
                },
                Authority {
                    node: node(2),
                    stake: Stake(1)
                },
            ]),
            Err(ConsensusError::StakeOverflow)
        );
    }
}
