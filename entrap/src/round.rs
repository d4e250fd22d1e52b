//! The verification round: one job's subtasks on one provider, from the
//! committed plan to settlement.

use std::collections::VecDeque;

use idlegrid_primitives::{
    AccountId, Amount, Commitment, Digest, Domain, Duration, NodeId, Salt, Timestamp,
};

use crate::error::EntrapError;
use crate::plan::{OpenedTrap, PublicPlan, TrapReveal};
use crate::referee::{Committee, DisputedTrap, RefereeVote, TrapVerdict, Verdict, decide_trap};
use crate::settle::{Effect, Locked, Outcome, settle};
use crate::terms::Terms;
use crate::types::{JobId, MAX_ACCUSATIONS, MAX_SUBTASKS, Stage, SubtaskIndex};

/// Domain of a provider's output commitment.
pub const OUTPUTS_DOMAIN: Domain = Domain::new("idlegrid/entrap/outputs");

/// The commitment a provider posts before revealing `outputs` (one digest
/// per subtask, in plan order).
pub fn output_commitment(job: JobId, outputs: &[Digest], salt: &Salt) -> Commitment {
    Commitment::to(OUTPUTS_DOMAIN, &(job, outputs), salt)
}

/// One verification round between a client and a provider.
///
/// # Stages, steps and deadlines
///
/// | stage | step (sender) | next stage | if the deadline passes |
/// |---|---|---|---|
/// | `AwaitingStake` | [`bond_stake`](Self::bond_stake) (provider) | `AwaitingOutputCommitment` | `ProviderNoShow`: escrow and bond back to the client |
/// | `AwaitingOutputCommitment` | [`commit_outputs`](Self::commit_outputs) (provider) | `AwaitingOutputReveal` | `ProviderDefaulted`: client refunded, no-show penalty from the stake to the client |
/// | `AwaitingOutputReveal` | [`reveal_outputs`](Self::reveal_outputs) (provider) | `AwaitingTrapReveal` | `ProviderDefaulted` |
/// | `AwaitingTrapReveal` | [`reveal_traps`](Self::reveal_traps) (client) | `AwaitingAccusations` | `ClientAbandoned`: provider paid, client bond to the provider |
/// | `AwaitingAccusations` | [`accuse`](Self::accuse) (client) | `AwaitingResponse`, or settled `Clean` if empty | `Clean`: provider paid, everything returned |
/// | `AwaitingResponse` | [`accept`](Self::accept) / [`dispute`](Self::dispute) (provider) | settled `Admitted` / `AwaitingVotes` | `Admitted`: stake slashed, client refunded |
/// | `AwaitingVotes` | [`submit_vote`](Self::submit_vote) (referee); [`escalate`](Self::escalate) (composition root) | settled `Judged` once all voted; a larger committee | `Judged` on the votes cast (no majority: not proven) |
///
/// A step in the wrong stage, from the wrong sender, at or after its stage's
/// deadline, or with data that does not match a commitment is a typed
/// [`EntrapError`] and changes nothing. Every path ends in `Settled` with
/// effects that conserve the locked pots.
///
/// # Driving loop
///
/// After every input (a step or [`handle_timeout`](Self::handle_timeout)),
/// drain [`poll_effect`](Self::poll_effect) until `None` and apply the
/// effects on the ledger; then sleep until [`poll_timeout`](Self::poll_timeout)
/// and call `handle_timeout(now)`. Time is only ever the `now` argument.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct VerificationRound {
    terms: Terms,
    plan: PublicPlan,
    stage: Stage,
    deadline: Timestamp,
    last_now: Timestamp,
    locked: Locked,
    output_commitment: Option<Commitment>,
    outputs: Vec<Digest>,
    traps: Vec<OpenedTrap>,
    disputed: Vec<DisputedTrap>,
    committee: Option<Committee>,
    votes: Vec<RefereeVote>,
    outcome: Option<Outcome>,
    effects: VecDeque<Effect>,
    settlement: Vec<Effect>,
}

impl VerificationRound {
    /// Opens a round at `now`: the plan is committed and the client's escrow
    /// (pay for every subtask) and bond are locked. Next: the provider bonds.
    pub fn open(now: Timestamp, terms: Terms, plan: PublicPlan) -> Result<Self, EntrapError> {
        if plan.job != terms.job {
            return Err(EntrapError::InvalidParameter {
                name: "plan",
                reason: "the plan is for another job",
            });
        }
        if plan.slots() == 0 || plan.slots() > MAX_SUBTASKS {
            return Err(EntrapError::LimitExceeded {
                what: "subtasks",
                got: plan.slots(),
                max: MAX_SUBTASKS,
            });
        }
        let escrow = terms.validate(plan.slots())?;
        let locked = Locked {
            escrow,
            client_bond: terms.client_bond,
            stake: Amount::ZERO,
        };
        locked.total()?;
        Ok(Self {
            deadline: now + terms.deadlines.stake,
            terms,
            plan,
            stage: Stage::AwaitingStake,
            last_now: now,
            locked,
            output_commitment: None,
            outputs: Vec::new(),
            traps: Vec::new(),
            disputed: Vec::new(),
            committee: None,
            votes: Vec::new(),
            outcome: None,
            effects: VecDeque::new(),
            settlement: Vec::new(),
        })
    }

    /// The provider bonded `amount` of stake (must equal the terms' stake).
    pub fn bond_stake(
        &mut self,
        now: Timestamp,
        from: AccountId,
        amount: Amount,
    ) -> Result<(), EntrapError> {
        self.step(now, Stage::AwaitingStake)?;
        self.require(from, self.terms.provider, "provider")?;
        if amount != self.terms.stake {
            return Err(EntrapError::WrongStake {
                required: self.terms.stake,
                got: amount,
            });
        }
        self.locked.stake = amount;
        self.locked.total()?;
        self.advance(
            now,
            Stage::AwaitingOutputCommitment,
            self.terms.deadlines.output_commitment,
        );
        Ok(())
    }

    /// The provider committed to its outputs (see [`output_commitment`]).
    pub fn commit_outputs(
        &mut self,
        now: Timestamp,
        from: AccountId,
        commitment: Commitment,
    ) -> Result<(), EntrapError> {
        self.step(now, Stage::AwaitingOutputCommitment)?;
        self.require(from, self.terms.provider, "provider")?;
        self.output_commitment = Some(commitment);
        self.advance(
            now,
            Stage::AwaitingOutputReveal,
            self.terms.deadlines.output_reveal,
        );
        Ok(())
    }

    /// The provider revealed one output digest per subtask and the salt.
    pub fn reveal_outputs(
        &mut self,
        now: Timestamp,
        from: AccountId,
        outputs: Vec<Digest>,
        salt: Salt,
    ) -> Result<(), EntrapError> {
        self.step(now, Stage::AwaitingOutputReveal)?;
        self.require(from, self.terms.provider, "provider")?;
        if outputs.len() != self.plan.slots() {
            return Err(EntrapError::WrongResultCount {
                expected: self.plan.slots(),
                got: outputs.len(),
            });
        }
        let committed = self.output_commitment.expect("stage implies a commitment");
        if output_commitment(self.terms.job, &outputs, &salt) != committed {
            return Err(EntrapError::CommitmentMismatch { what: "outputs" });
        }
        self.outputs = outputs;
        self.advance(
            now,
            Stage::AwaitingTrapReveal,
            self.terms.deadlines.trap_reveal,
        );
        Ok(())
    }

    /// The client revealed its traps; checked against the plan commitment.
    pub fn reveal_traps(
        &mut self,
        now: Timestamp,
        from: AccountId,
        reveal: &TrapReveal,
    ) -> Result<(), EntrapError> {
        self.step(now, Stage::AwaitingTrapReveal)?;
        self.require(from, self.terms.client, "client")?;
        self.traps = reveal.open(&self.plan)?;
        self.advance(
            now,
            Stage::AwaitingAccusations,
            self.terms.deadlines.accusations,
        );
        Ok(())
    }

    /// The client accuses the provider of answering these traps wrongly.
    /// Each must be a revealed trap whose output differs from the expected
    /// answer. An empty list settles the round clean.
    pub fn accuse(
        &mut self,
        now: Timestamp,
        from: AccountId,
        traps: &[SubtaskIndex],
    ) -> Result<(), EntrapError> {
        self.step(now, Stage::AwaitingAccusations)?;
        self.require(from, self.terms.client, "client")?;
        if traps.len() > MAX_ACCUSATIONS {
            return Err(EntrapError::LimitExceeded {
                what: "accusations",
                got: traps.len(),
                max: MAX_ACCUSATIONS,
            });
        }
        let mut disputed: Vec<DisputedTrap> = Vec::with_capacity(traps.len());
        for &index in traps {
            if index.as_usize() >= self.plan.slots() {
                return Err(EntrapError::OutOfRange {
                    index,
                    slots: self.plan.slots(),
                });
            }
            if disputed.iter().any(|d| d.trap.index == index) {
                return Err(EntrapError::Duplicate(index));
            }
            let trap = match self.traps.binary_search_by_key(&index, |t| t.index) {
                Ok(i) => self.traps[i],
                Err(_) => return Err(EntrapError::NotATrap(index)),
            };
            let provider_output = self.outputs[index.as_usize()];
            if provider_output == trap.expected {
                return Err(EntrapError::NothingToAccuse(index));
            }
            disputed.push(DisputedTrap {
                trap,
                provider_output,
            });
        }
        if disputed.is_empty() {
            self.finish(now, Outcome::Clean);
        } else {
            self.disputed = disputed;
            self.advance(now, Stage::AwaitingResponse, self.terms.deadlines.response);
        }
        Ok(())
    }

    /// The provider accepts the accusations: settles as admitted.
    pub fn accept(&mut self, now: Timestamp, from: AccountId) -> Result<(), EntrapError> {
        self.step(now, Stage::AwaitingResponse)?;
        self.require(from, self.terms.provider, "provider")?;
        self.finish(now, Outcome::Admitted);
        Ok(())
    }

    /// The provider disputes every accusation before `committee` (drawn with
    /// [`crate::select_referees`]; neither party may sit on it).
    pub fn dispute(
        &mut self,
        now: Timestamp,
        from: AccountId,
        committee: Committee,
    ) -> Result<(), EntrapError> {
        self.step(now, Stage::AwaitingResponse)?;
        self.require(from, self.terms.provider, "provider")?;
        if committee.len() != usize::from(self.terms.committee_size) {
            return Err(EntrapError::InvalidParameter {
                name: "committee",
                reason: "committee size differs from the terms",
            });
        }
        if committee.contains(&self.terms.client.node())
            || committee.contains(&self.terms.provider.node())
        {
            return Err(EntrapError::ConflictedReferee);
        }
        self.committee = Some(committee);
        self.advance(now, Stage::AwaitingVotes, self.terms.deadlines.votes);
        Ok(())
    }

    /// A referee's vote, sent by `from` (the composition root authenticates
    /// the sender; it must be the vote's referee): one re-executed output per
    /// disputed trap. When the whole committee has voted, the round settles.
    pub fn submit_vote(
        &mut self,
        now: Timestamp,
        from: NodeId,
        vote: RefereeVote,
    ) -> Result<(), EntrapError> {
        self.step(now, Stage::AwaitingVotes)?;
        if from != vote.referee {
            return Err(EntrapError::NotAuthorized {
                role: "referee named in the vote",
            });
        }
        let committee = self.committee.as_ref().expect("stage implies a committee");
        if !committee.contains(&vote.referee) {
            return Err(EntrapError::NotOnCommittee);
        }
        if self.votes.iter().any(|v| v.referee == vote.referee) {
            return Err(EntrapError::DuplicateVote);
        }
        if vote.outputs.len() != self.disputed.len() {
            return Err(EntrapError::WrongResultCount {
                expected: self.disputed.len(),
                got: vote.outputs.len(),
            });
        }
        let size = committee.len();
        self.votes.push(vote);
        self.last_now = now;
        if self.votes.len() == size {
            let verdict = self.verdict();
            self.finish(now, Outcome::Judged(verdict));
        }
        Ok(())
    }

    /// True if the votes cast so far decide every disputed trap (each has
    /// an output reported by a strict majority of the committee).
    pub fn decided(&self) -> bool {
        let Some(c) = &self.committee else {
            return false;
        };
        (0..self.disputed.len()).all(|i| {
            let votes: Vec<Digest> = self.votes.iter().map(|v| v.outputs[i]).collect();
            decide_trap(&self.disputed[i], &votes, c.len()) != TrapVerdict::Inconclusive
        })
    }

    /// Replaces a committee that did not reach a verdict ([`Self::decided`]
    /// is false) with a fresh, larger one — also after the votes deadline,
    /// which is what escalation is for. The votes cast so far are dropped
    /// and the new committee gets a full votes window from `now`. Neither
    /// party may sit on it.
    pub fn escalate(&mut self, now: Timestamp, committee: Committee) -> Result<(), EntrapError> {
        if self.stage != Stage::AwaitingVotes {
            return Err(EntrapError::WrongStage {
                expected: Stage::AwaitingVotes,
                actual: self.stage,
            });
        }
        if now < self.last_now {
            return Err(EntrapError::TimeWentBackwards {
                now,
                last: self.last_now,
            });
        }
        let size = self.committee.as_ref().map_or(0, Committee::len);
        if committee.len() <= size || self.decided() {
            return Err(EntrapError::InvalidParameter {
                name: "committee",
                reason: "escalate an undecided dispute to a larger committee",
            });
        }
        if committee.contains(&self.terms.client.node())
            || committee.contains(&self.terms.provider.node())
        {
            return Err(EntrapError::ConflictedReferee);
        }
        self.committee = Some(committee);
        self.votes.clear();
        self.last_now = now;
        self.deadline = now + self.terms.deadlines.votes;
        Ok(())
    }

    /// The votes cast by the current committee.
    pub fn votes(&self) -> &[RefereeVote] {
        &self.votes
    }

    /// The next deadline, or `None` once settled.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        (self.stage != Stage::Settled).then_some(self.deadline)
    }

    /// Applies the current stage's deadline if `now` has reached it; a call
    /// before the deadline (or after settlement) does nothing.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.stage == Stage::Settled || now < self.deadline {
            return;
        }
        let now = now.max(self.last_now);
        let outcome = match self.stage {
            Stage::AwaitingStake => Outcome::ProviderNoShow,
            Stage::AwaitingOutputCommitment | Stage::AwaitingOutputReveal => {
                Outcome::ProviderDefaulted
            }
            Stage::AwaitingTrapReveal => Outcome::ClientAbandoned,
            Stage::AwaitingAccusations => Outcome::Clean,
            Stage::AwaitingResponse => Outcome::Admitted,
            Stage::AwaitingVotes => Outcome::Judged(self.verdict()),
            Stage::Settled => unreachable!("checked above"),
        };
        self.finish(now, outcome);
    }

    /// The next effect to apply, once settled. Drain until `None`.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// The current stage.
    pub fn stage(&self) -> Stage {
        self.stage
    }
    /// The outcome, once settled.
    pub fn outcome(&self) -> Option<Outcome> {
        self.outcome
    }
    /// All settlement effects (also after they were drained).
    pub fn settlement(&self) -> &[Effect] {
        &self.settlement
    }
    /// What is locked in the round's pots.
    pub fn locked(&self) -> Locked {
        self.locked
    }
    /// The terms.
    pub fn terms(&self) -> &Terms {
        &self.terms
    }
    /// The public plan.
    pub fn plan(&self) -> &PublicPlan {
        &self.plan
    }
    /// The provider's revealed outputs (empty before the reveal).
    pub fn outputs(&self) -> &[Digest] {
        &self.outputs
    }
    /// The revealed traps (empty before the trap reveal).
    pub fn traps(&self) -> &[OpenedTrap] {
        &self.traps
    }
    /// The accused (and, once disputed, disputed) traps, in accusation order.
    pub fn disputed(&self) -> &[DisputedTrap] {
        &self.disputed
    }
    /// The referee committee, once disputed.
    pub fn committee(&self) -> Option<&Committee> {
        self.committee.as_ref()
    }

    fn verdict(&self) -> Verdict {
        let size = self.committee.as_ref().map_or(1, Committee::len);
        let per_trap: Vec<TrapVerdict> = self
            .disputed
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let votes: Vec<Digest> = self.votes.iter().map(|v| v.outputs[i]).collect();
                decide_trap(d, &votes, size)
            })
            .collect();
        Verdict::combine(&per_trap)
    }

    fn step(&self, now: Timestamp, expected: Stage) -> Result<(), EntrapError> {
        if self.stage == Stage::Settled {
            return Err(EntrapError::AlreadySettled);
        }
        if now < self.last_now {
            return Err(EntrapError::TimeWentBackwards {
                now,
                last: self.last_now,
            });
        }
        if self.stage != expected {
            return Err(EntrapError::WrongStage {
                expected,
                actual: self.stage,
            });
        }
        if now >= self.deadline {
            return Err(EntrapError::DeadlinePassed {
                stage: self.stage,
                deadline: self.deadline,
                now,
            });
        }
        Ok(())
    }

    fn require(
        &self,
        from: AccountId,
        party: AccountId,
        role: &'static str,
    ) -> Result<(), EntrapError> {
        if from == party {
            Ok(())
        } else {
            Err(EntrapError::NotAuthorized { role })
        }
    }

    fn advance(&mut self, now: Timestamp, stage: Stage, within: Duration) {
        assert!(stage > self.stage, "stages only move forward");
        self.stage = stage;
        self.last_now = now;
        self.deadline = now + within;
    }

    fn finish(&mut self, now: Timestamp, outcome: Outcome) {
        let effects = settle(&self.terms, &self.locked, outcome)
            .expect("settling validated, locked amounts cannot fail");
        self.stage = Stage::Settled;
        self.last_now = now;
        self.outcome = Some(outcome);
        self.effects.extend(effects.iter().copied());
        self.settlement = effects;
    }
}
