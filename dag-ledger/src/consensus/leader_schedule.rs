//! Leader election: which authorities lead each round.
//!
//! The default [`StakeWeightedSchedule`] is deterministic and
//! stake-weighted: leader `k` of round `r` is drawn with probability
//! proportional to stake from a blake3 hash of `(committee digest, r, k)`,
//! and the `leaders_per_round` leaders of one round are distinct.
//!
//! [`LeaderSchedule`] is the hook for other schedules — in particular a
//! reputation-aware one (Mysticeti / Shoal "leader reputation") that prefers
//! validators whose blocks were recently committed. Whatever it does, it
//! must be a pure function of the committee and of data every honest
//! validator agrees on (for example the committed sequence up to a round
//! far enough below the rounds it answers for); two validators that disagree
//! on a leader lose liveness, not safety of their own view, but the
//! simulator's prefix checker will flag them.

use core::fmt::Debug;

use idlegrid_primitives::{Digest, Domain, Round};

use super::committee::{AuthorityIndex, Committee};

const LEADER_DOMAIN: Domain = Domain::new("idlegrid/dag/leader");

/// Elects the leaders of each round.
pub trait LeaderSchedule: Debug + Send + Sync {
    /// The leader with offset `offset` (0-based, `< leaders_per_round`) of
    /// `round`. Leaders of one round must be distinct.
    fn leader(&self, committee: &Committee, round: Round, offset: u32) -> AuthorityIndex;
}

/// Deterministic, stake-weighted election (see the module docs).
#[derive(Clone, Copy, Debug, Default)]
pub struct StakeWeightedSchedule;

impl StakeWeightedSchedule {
    fn draw(committee: &Committee, round: Round, offset: u32, attempt: u32) -> AuthorityIndex {
        let d = Digest::hash_parts(
            LEADER_DOMAIN,
            &[
                committee.digest().as_bytes(),
                &round.get().to_le_bytes(),
                &offset.to_le_bytes(),
                &attempt.to_le_bytes(),
            ],
        );
        let mut x = [0u8; 8];
        x.copy_from_slice(&d.as_bytes()[..8]);
        let mut point = u64::from_le_bytes(x) % committee.total_stake();
        for a in committee.indices() {
            let s = committee.stake(a);
            if point < s {
                return a;
            }
            point -= s;
        }
        unreachable!("point < total stake")
    }
}

impl LeaderSchedule for StakeWeightedSchedule {
    fn leader(&self, committee: &Committee, round: Round, offset: u32) -> AuthorityIndex {
        let earlier: Vec<AuthorityIndex> = (0..offset)
            .map(|o| self.leader(committee, round, o))
            .collect();
        // Redraw on collision; after `size` attempts take the next free index.
        for attempt in 0..committee.size() as u32 {
            let a = Self::draw(committee, round, offset, attempt);
            if !earlier.contains(&a) {
                return a;
            }
        }
        committee
            .indices()
            .find(|a| !earlier.contains(a))
            .unwrap_or(AuthorityIndex::new(0))
    }
}

/// A fixed round-robin schedule (leader `k` of round `r` is
/// `(r + k) mod n`), handy for hand-built tests.
#[derive(Clone, Copy, Debug, Default)]
pub struct RoundRobinSchedule;

impl LeaderSchedule for RoundRobinSchedule {
    fn leader(&self, committee: &Committee, round: Round, offset: u32) -> AuthorityIndex {
        let n = committee.size() as u64;
        AuthorityIndex::new(((round.get() + u64::from(offset)) % n) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::committee::{Authority, Stake};
    use idlegrid_primitives::NodeId;

    #[test]
    fn stake_weighted_and_distinct() {
        let c = Committee::new(
            (0..4u8)
                .map(|i| Authority {
                    node: NodeId::from_bytes([i; 32]),
                    stake: Stake::new(if i == 0 { 7 } else { 1 }),
                })
                .collect(),
        )
        .unwrap();
        let s = StakeWeightedSchedule;
        let mut counts = [0u32; 4];
        for r in 0..1000 {
            counts[s.leader(&c, Round::new(r), 0).as_usize()] += 1;
            let l: Vec<_> = (0..3).map(|k| s.leader(&c, Round::new(r), k)).collect();
            assert!(l[0] != l[1] && l[1] != l[2] && l[0] != l[2]);
        }
        assert!(counts[0] > 600, "{counts:?}");
        assert_eq!(
            s.leader(&c, Round::new(5), 0),
            s.leader(&c, Round::new(5), 0)
        );
    }
}
