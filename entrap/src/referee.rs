//! Disputes: the referee committee (VRF sortition), re-execution of the
//! disputed traps through a caller-supplied [`ReExecutor`], and the
//! majority verdict — all pure functions over plain data.

use idlegrid_primitives::{
    Digest, Domain, Keypair, NodeId, SignatureVerifier, VrfOutput, VrfProof,
};
use serde::{Deserialize, Serialize};

use crate::error::EntrapError;
use crate::plan::OpenedTrap;
use crate::types::{JobId, MAX_REFEREE_CANDIDATES, MAX_REFEREES};

/// VRF domain of referee tickets.
pub const REFEREE_DOMAIN: Domain = Domain::new("idlegrid/entrap/referee");
/// Domain deriving a dispute's randomness from a beacon and a job.
pub const DISPUTE_RANDOMNESS_DOMAIN: Domain = Domain::new("idlegrid/entrap/dispute-randomness");

/// The randomness a dispute's committee is drawn with: the ledger's committed
/// beacon (unknown when the job was planned) bound to the job.
pub fn dispute_randomness(beacon: &Digest, job: JobId) -> Digest {
    Digest::of(DISPUTE_RANDOMNESS_DOMAIN, &(beacon, job))
}

/// A candidate's VRF evaluation on the dispute randomness. Anyone can check
/// it against the candidate's key; the lowest verified outputs win seats.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RefereeTicket {
    /// The candidate.
    pub node: NodeId,
    /// VRF pre-output.
    pub output: VrfOutput,
    /// VRF proof.
    pub proof: VrfProof,
}

impl RefereeTicket {
    /// Draws `keypair`'s ticket for `randomness`.
    pub fn draw(keypair: &Keypair, randomness: &Digest) -> Self {
        Self::draw_scored(keypair, randomness).0
    }

    /// Draws `keypair`'s ticket for `randomness` with its score, the one
    /// [`RefereeTicket::score`] verifies: the signer knows it from signing,
    /// without verifying its own proof (which costs as much as the draw).
    pub fn draw_scored(keypair: &Keypair, randomness: &Digest) -> (Self, [u8; 32]) {
        Self::draw_scored_with(keypair, randomness, &SignatureVerifier::plain())
    }

    /// [`RefereeTicket::draw_scored`] through `signatures` (which, with a
    /// memo, remembers the proof as one that verifies: see
    /// [`SignatureVerifier::vrf_sign`]).
    pub fn draw_scored_with(
        keypair: &Keypair,
        randomness: &Digest,
        signatures: &SignatureVerifier,
    ) -> (Self, [u8; 32]) {
        let (score, ticket) = Self::draw_if(keypair, randomness, signatures, |_| true);
        (ticket.expect("a ticket is always wanted here"), score)
    }

    /// The score `keypair` would draw for `randomness`, and its ticket only
    /// if `wanted` accepts that score: a candidate whose score cannot win a
    /// seat skips the proof, half the cost of the draw
    /// ([`Keypair::vrf_sign_if`]). A ticket it makes is exactly
    /// [`RefereeTicket::draw_scored_with`]'s.
    pub fn draw_if(
        keypair: &Keypair,
        randomness: &Digest,
        signatures: &SignatureVerifier,
        wanted: impl FnOnce(&[u8; 32]) -> bool,
    ) -> ([u8; 32], Option<Self>) {
        let (score, proved) =
            signatures.vrf_sign_if(keypair, REFEREE_DOMAIN, randomness.as_bytes(), wanted);
        let ticket = proved.map(|(output, proof)| Self {
            node: keypair.node_id(),
            output,
            proof,
        });
        (score, ticket)
    }

    /// The verified score, or `None` if the proof does not verify.
    pub fn score(&self, randomness: &Digest) -> Option<[u8; 32]> {
        self.score_with(randomness, &SignatureVerifier::plain())
    }

    /// As [`RefereeTicket::score`], checking the proof through `proofs` (a
    /// node's verifier, which may remember proofs that verified).
    pub fn score_with(&self, randomness: &Digest, proofs: &SignatureVerifier) -> Option<[u8; 32]> {
        proofs
            .vrf_verify(
                &self.node.public_key(),
                REFEREE_DOMAIN,
                randomness.as_bytes(),
                &self.output,
                &self.proof,
            )
            .ok()
    }
}

/// A referee committee: distinct nodes, in seat order.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(try_from = "Vec<NodeId>", into = "Vec<NodeId>")]
pub struct Committee {
    members: Vec<NodeId>,
}

impl Committee {
    /// A committee from explicit members (for tests and for committees the
    /// composition root drew elsewhere). Members must be distinct, 1 to
    /// [`MAX_REFEREES`].
    pub fn from_members(members: Vec<NodeId>) -> Result<Self, EntrapError> {
        if members.is_empty() || members.len() > MAX_REFEREES {
            return Err(EntrapError::LimitExceeded {
                what: "referees",
                got: members.len(),
                max: MAX_REFEREES,
            });
        }
        let mut sorted = members.clone();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(EntrapError::InvalidParameter {
                name: "committee",
                reason: "referees must be distinct",
            });
        }
        Ok(Self { members })
    }
    /// The members in seat order.
    pub fn members(&self) -> &[NodeId] {
        &self.members
    }
    /// Committee size.
    pub fn len(&self) -> usize {
        self.members.len()
    }
    /// Never true for a constructed committee.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
    /// True if `node` sits on the committee.
    pub fn contains(&self, node: &NodeId) -> bool {
        self.members.contains(node)
    }
}

impl TryFrom<Vec<NodeId>> for Committee {
    type Error = EntrapError;
    fn try_from(members: Vec<NodeId>) -> Result<Self, EntrapError> {
        Committee::from_members(members)
    }
}

impl From<Committee> for Vec<NodeId> {
    fn from(c: Committee) -> Self {
        c.members
    }
}

/// Selects `count` referees: every ticket whose VRF verifies on `randomness`
/// is scored by its VRF output; the `count` lowest scores win (ties broken
/// by node id, duplicates of a node ignored). Invalid tickets are skipped;
/// too few valid ones is [`EntrapError::NotEnoughReferees`].
pub fn select_referees(
    candidates: &[RefereeTicket],
    randomness: &Digest,
    count: usize,
) -> Result<Committee, EntrapError> {
    select_referees_with(candidates, randomness, count, &SignatureVerifier::plain())
}

/// As [`select_referees`], checking the tickets' proofs through `proofs`.
pub fn select_referees_with(
    candidates: &[RefereeTicket],
    randomness: &Digest,
    count: usize,
    proofs: &SignatureVerifier,
) -> Result<Committee, EntrapError> {
    if count == 0 || count > MAX_REFEREES {
        return Err(EntrapError::LimitExceeded {
            what: "referees",
            got: count,
            max: MAX_REFEREES,
        });
    }
    if candidates.len() > MAX_REFEREE_CANDIDATES {
        return Err(EntrapError::LimitExceeded {
            what: "referee candidates",
            got: candidates.len(),
            max: MAX_REFEREE_CANDIDATES,
        });
    }
    let mut scored: Vec<([u8; 32], NodeId)> = candidates
        .iter()
        .filter_map(|t| t.score_with(randomness, proofs).map(|s| (s, t.node)))
        .collect();
    scored.sort_unstable();
    let mut members: Vec<NodeId> = Vec::with_capacity(count);
    for (_, node) in scored {
        if !members.contains(&node) {
            members.push(node);
            if members.len() == count {
                return Committee::from_members(members);
            }
        }
    }
    Err(EntrapError::NotEnoughReferees {
        available: members.len(),
        needed: count,
    })
}

/// A disputed trap as the referees see it.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DisputedTrap {
    /// The trap, as the client revealed it.
    pub trap: OpenedTrap,
    /// The provider's revealed output for it.
    pub provider_output: Digest,
}

/// Deterministic re-execution of one trap, supplied by the composition root
/// (a deterministic WebAssembly executor in a real node, a pure function in
/// tests), so entrap does not depend on the executor crate.
pub trait ReExecutor {
    /// The output digest for the subtask with this input digest, or `None`
    /// if the referee could not run it (it then abstains).
    fn reexecute(&mut self, input: &Digest) -> Option<Digest>;
}

impl<F: FnMut(&Digest) -> Option<Digest>> ReExecutor for F {
    fn reexecute(&mut self, input: &Digest) -> Option<Digest> {
        self(input)
    }
}

/// One referee's vote: its re-executed output for every disputed trap, in
/// the order of [`crate::VerificationRound::disputed`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RefereeVote {
    /// The referee.
    pub referee: NodeId,
    /// One output digest per disputed trap.
    pub outputs: Vec<Digest>,
}

/// Re-executes every disputed trap and returns the referee's vote, or
/// `None` if the executor failed on any of them.
pub fn referee_vote<E: ReExecutor + ?Sized>(
    referee: NodeId,
    disputed: &[DisputedTrap],
    exec: &mut E,
) -> Option<RefereeVote> {
    let outputs = disputed
        .iter()
        .map(|d| exec.reexecute(&d.trap.input))
        .collect::<Option<Vec<_>>>()?;
    Some(RefereeVote { referee, outputs })
}

/// The committee's finding on one disputed trap.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum TrapVerdict {
    /// The majority output is the expected one: the provider answered wrongly.
    ProviderWrong,
    /// The majority output is the provider's: the client's committed answer
    /// was wrong (framing).
    ClientFramed,
    /// The majority output is neither: both were wrong.
    BothWrong,
    /// A cross-check where the provider was right (the partner was wrong);
    /// no one in this round is at fault.
    Dismissed,
    /// No output reached a majority of the committee.
    Inconclusive,
}

/// Decides one disputed trap from the committee's outputs for it: an output
/// wins if strictly more than half of the committee (not of the votes cast)
/// reported it.
pub fn decide_trap(
    disputed: &DisputedTrap,
    votes: &[Digest],
    committee_size: usize,
) -> TrapVerdict {
    let mut sorted = votes.to_vec();
    sorted.sort_unstable();
    let mut winner = None;
    let mut i = 0;
    while i < sorted.len() {
        let j = sorted[i..].iter().take_while(|d| **d == sorted[i]).count();
        if 2 * j > committee_size {
            winner = Some(sorted[i]);
        }
        i += j;
    }
    let Some(truth) = winner else {
        return TrapVerdict::Inconclusive;
    };
    let provider_right = truth == disputed.provider_output;
    let client_right = truth == disputed.trap.expected;
    match (provider_right, client_right) {
        // Unreachable for a valid accusation (outputs differ), but decided:
        // both agree with the majority, so no one is at fault.
        (true, true) => TrapVerdict::Dismissed,
        (false, true) => TrapVerdict::ProviderWrong,
        (true, false) if disputed.trap.framable => TrapVerdict::ClientFramed,
        (true, false) => TrapVerdict::Dismissed,
        (false, false) if disputed.trap.framable => TrapVerdict::BothWrong,
        (false, false) => TrapVerdict::ProviderWrong,
    }
}

/// The verdict of a whole dispute.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Verdict {
    /// At least one trap proven wrongly answered, none proven framed.
    ProviderCheated,
    /// At least one trap proven framed, none proven wrongly answered.
    ClientFramed,
    /// Both: a wrong answer and a framed trap.
    BothAtFault,
    /// Nothing proven against anyone (dismissed or inconclusive).
    NotProven,
}

impl Verdict {
    /// Combines per-trap findings.
    pub fn combine(verdicts: &[TrapVerdict]) -> Self {
        let cheated = verdicts
            .iter()
            .any(|v| matches!(v, TrapVerdict::ProviderWrong | TrapVerdict::BothWrong));
        let framed = verdicts
            .iter()
            .any(|v| matches!(v, TrapVerdict::ClientFramed | TrapVerdict::BothWrong));
        match (cheated, framed) {
            (true, false) => Verdict::ProviderCheated,
            (false, true) => Verdict::ClientFramed,
            (true, true) => Verdict::BothAtFault,
            (false, false) => Verdict::NotProven,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::SubtaskIndex;
    use idlegrid_primitives::Seed;

    fn d(i: u64) -> Digest {
        Digest::of(Domain::new("idlegrid/entrap/test"), &i)
    }

    #[test]
    fn the_drawn_score_is_the_verified_score() {
        for i in 0..8 {
            let k = Keypair::from_seed(&Seed::from_u64(i));
            let (ticket, score) = RefereeTicket::draw_scored(&k, &d(i));
            assert_eq!(ticket.score(&d(i)), Some(score));
            assert_eq!(ticket.score(&d(i + 1)), None, "bound to its randomness");
            let plain = SignatureVerifier::plain();
            let high = score[0] >= 0x80;
            let (again, kept) = RefereeTicket::draw_if(&k, &d(i), &plain, |s| s[0] >= 0x80);
            assert_eq!((again, kept), (score, high.then_some(ticket)));
        }
    }

    fn case(framable: bool) -> DisputedTrap {
        DisputedTrap {
            trap: OpenedTrap {
                index: SubtaskIndex::new(0),
                input: d(0),
                expected: d(1),
                framable,
            },
            provider_output: d(2),
        }
    }

    #[test]
    fn majority_rules_on_hand_built_votes() {
        let c = case(true);
        assert_eq!(
            decide_trap(&c, &[d(1), d(1), d(2)], 3),
            TrapVerdict::ProviderWrong
        );
        assert_eq!(decide_trap(&c, &[d(2), d(2)], 3), TrapVerdict::ClientFramed);
        assert_eq!(
            decide_trap(&c, &[d(3), d(3), d(3)], 3),
            TrapVerdict::BothWrong
        );
        assert_eq!(
            decide_trap(&c, &[d(1), d(2), d(3)], 3),
            TrapVerdict::Inconclusive
        );
        // A majority of votes cast is not enough: it must be of the committee.
        assert_eq!(decide_trap(&c, &[d(1)], 3), TrapVerdict::Inconclusive);
        let x = case(false);
        assert_eq!(decide_trap(&x, &[d(2), d(2)], 3), TrapVerdict::Dismissed);
        assert_eq!(
            decide_trap(&x, &[d(3), d(3)], 3),
            TrapVerdict::ProviderWrong
        );
    }

    #[test]
    fn verdicts_combine() {
        use TrapVerdict::*;
        assert_eq!(Verdict::combine(&[]), Verdict::NotProven);
        assert_eq!(
            Verdict::combine(&[Inconclusive, ProviderWrong]),
            Verdict::ProviderCheated
        );
        assert_eq!(
            Verdict::combine(&[ClientFramed, Dismissed]),
            Verdict::ClientFramed
        );
        assert_eq!(
            Verdict::combine(&[ClientFramed, ProviderWrong]),
            Verdict::BothAtFault
        );
        assert_eq!(Verdict::combine(&[BothWrong]), Verdict::BothAtFault);
    }

    #[test]
    fn vrf_selection_is_deterministic_and_checks_proofs() {
        let keys: Vec<Keypair> = (0..9)
            .map(|i| Keypair::from_seed(&Seed::from_u64(i)))
            .collect();
        let r = d(42);
        let mut tickets: Vec<RefereeTicket> =
            keys.iter().map(|k| RefereeTicket::draw(k, &r)).collect();
        let a = select_referees(&tickets, &r, 3).unwrap();
        tickets.reverse();
        assert_eq!(select_referees(&tickets, &r, 3).unwrap(), a);
        // Tickets drawn for other randomness do not verify.
        let other: Vec<RefereeTicket> =
            keys.iter().map(|k| RefereeTicket::draw(k, &d(7))).collect();
        assert!(matches!(
            select_referees(&other, &r, 3),
            Err(EntrapError::NotEnoughReferees { available: 0, .. })
        ));
        assert!(select_referees(&tickets, &r, 0).is_err());
        assert!(select_referees(&tickets, &r, 10).is_err());
    }
}
