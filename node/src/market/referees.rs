//! Disputes and referees: VRF sortition over the ledger's committed
//! randomness, escalation, and the referees' fees.
//!
//! 1. **Ticket window.** A provider's `Dispute` (at least one ticket window
//!    before its response deadline) opens a window of
//!    [`MarketParams::ticket_window`](super::MarketParams::ticket_window): the
//!    dispute's randomness is [`dispute_randomness`] of the beacon of the
//!    batch that orders the dispute (see [`crate::batch`] for why nobody
//!    knows it when signing) and the lot's round id. Every eligible referee
//!    (`rules.referees`, minus the parties) may submit a `Ticket`: its VRF
//!    evaluation on the randomness ([`RefereeTicket::draw`]); a referee
//!    sends it only if its score is among the expected lowest
//!    ([`ticket_worth_sending`]: about three candidates per seat). A ticket whose
//!    proof does not verify, from another node, from an ineligible node or
//!    outside a window is refused with a typed [`RefereeError`].
//! 2. **Seating.** When the window closes (end of the batch that passes
//!    it), the lowest verified scores take the seats; if fewer tickets came
//!    than seats, the rest are filled by a ranking of the other eligible
//!    referees on the same randomness, so a dispute is never left without a
//!    committee. The committee is seated as of the window's scheduled close.
//! 3. **Escalation.** If the committee has not decided every disputed trap
//!    (a strict majority of its seats on one output) by its votes deadline,
//!    a fresh window opens with fresh randomness (the beacon of the batch
//!    that passes the deadline) for a larger committee: seats go
//!    `n → 2n + 1` (3, 7, 15), capped by the eligible referees, at most
//!    `max_escalations` times.
//! 4. **Fallback.** When no escalation is left (or the committee cannot
//!    grow), the round settles on the votes cast: a trap without a majority
//!    is not proven against anyone, so the provider is paid, both bonds
//!    return, nothing stays locked.
//! 5. **Fees.** When a verdict convicts a party, every referee that voted
//!    with the majority is paid [`MarketParams::referee_fee`](super::MarketParams::referee_fee)
//!    by the loser: a cheating provider's from its slashed stake (out of
//!    the share that would be burned), a framing client's from its
//!    forfeited bond (before the framed provider gets the rest). A verdict
//!    that convicts nobody pays no fee.

use std::collections::BTreeMap;

use idlegrid_dag_ledger::ledger::{LedgerError, LedgerHandle, ManagedHandle};
use idlegrid_entrap::{
    Committee, EntrapError, RefereeTicket, Stage, VerificationRound, dispute_randomness,
    select_referees_with,
};
use idlegrid_primitives::{AccountId, Digest, Domain, NodeId, SignatureVerifier, Timestamp};

use super::error::{MarketError, RoundError, reject};
use super::rounds::LotRef;
use super::{MarketplaceApp, Notice, RoundKey, round_id};

/// Domain of the fill-up ranking of eligible referees without a ticket.
const FILL_DOMAIN: Domain = Domain::new("idlegrid/node/market/referee-fill");

/// Why a dispute, ticket or vote was refused (it changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum RefereeError {
    /// No ticket window is open for this lot.
    #[error("no ticket window is open for this lot; wait for a `TicketWindow` notice")]
    NoWindow,
    /// The ticket names another node than its sender.
    #[error("a ticket must be the sender's own")]
    NotOwnTicket,
    /// The node may not referee this lot.
    #[error("{0} is not an eligible referee for this lot")]
    NotEligible(NodeId),
    /// The VRF proof does not verify on the dispute's randomness.
    #[error("the ticket's VRF proof does not verify on the dispute randomness")]
    ForgedTicket,
    /// A second ticket from one node.
    #[error("this node already holds a ticket in the window")]
    DuplicateTicket,
    /// The lot is already disputed.
    #[error("the lot is already disputed")]
    AlreadyDisputed,
    /// Too close to the response deadline to seat a committee.
    #[error("dispute at least one ticket window before the response deadline ({deadline})")]
    TooLate {
        /// The response deadline.
        deadline: Timestamp,
    },
    /// A vote from a node outside the current committee.
    #[error("the sender is not on this dispute's current committee")]
    NotOnCommittee,
    /// The round refused the step.
    #[error("round: {0}")]
    Round(RoundError),
}

/// A dispute's referee state (replicated).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Dispute {
    /// Escalations so far (0: the first committee).
    level: u8,
    window: Option<Window>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Window {
    randomness: Digest,
    closes_at: Timestamp,
    seats: usize,
    tickets: BTreeMap<NodeId, RefereeTicket>,
}

impl MarketplaceApp {
    /// A typed referee rejection: reported as [`Notice::RefereeRejected`].
    fn referee_err(&mut self, h: &LedgerHandle<'_, '_>, e: RefereeError) -> LedgerError {
        self.rejection = Some(Notice::RefereeRejected {
            sender: h.sender(),
            error: e.clone(),
        });
        reject(h, MarketError::Referee(e))
    }

    /// `Dispute`: the provider disputes; a ticket window opens.
    pub(super) fn dispute(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        (client, job, lot): LotRef,
    ) -> Result<(), LedgerError> {
        let (now, me) = (self.live_now(h), h.sender());
        let key = ((client, job), lot);
        let window = self.params.ticket_window;
        let l = self.live(h, client, job, lot)?;
        let (stage, deadline, provider) = (l.round.stage(), l.round.poll_timeout(), l.provider);
        if stage != Stage::AwaitingResponse || me != provider {
            let e = EntrapError::NotAuthorized {
                role: "provider of an accused lot",
            };
            return Err(self.referee_err(h, RefereeError::Round((&e).into())));
        }
        if self.disputes.contains_key(&key) {
            return Err(self.referee_err(h, RefereeError::AlreadyDisputed));
        }
        let deadline = deadline.expect("an unsettled round has a deadline");
        if now + window >= deadline {
            return Err(self.referee_err(h, RefereeError::TooLate { deadline }));
        }
        let d = Dispute {
            level: 0,
            window: None,
        };
        self.disputes.insert(key, d);
        self.open_window(h, key, usize::from(self.rules.committee_size));
        Ok(())
    }

    /// Opens a ticket window for `seats` seats with the batch's beacon.
    fn open_window(&mut self, h: &ManagedHandle<'_, '_>, key: RoundKey, seats: usize) {
        let ((client, job), lot) = key;
        let randomness = dispute_randomness(&h.beacon(), round_id(job, lot));
        let closes_at = self.live_now(h) + self.params.ticket_window;
        let d = self.disputes.get_mut(&key).expect("open dispute");
        d.window = Some(Window {
            randomness,
            closes_at,
            seats,
            tickets: BTreeMap::new(),
        });
        let level = d.level;
        self.windows.insert((closes_at, key));
        self.notice(Notice::TicketWindow {
            client,
            job,
            lot,
            level,
            randomness,
            seats: seats as u8,
            closes_at,
        });
    }

    /// `Ticket`: a referee's VRF ticket for an open window.
    pub(super) fn ticket(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        (client, job, lot): LotRef,
        ticket: RefereeTicket,
    ) -> Result<(), LedgerError> {
        let (now, me) = (self.live_now(h), h.sender().node());
        let key = ((client, job), lot);
        let parties = self.parties(key);
        let eligible = self.rules.referees.contains(&me) && !parties.contains(&me);
        let check = match self.disputes.get(&key).and_then(|d| d.window.as_ref()) {
            None => Err(RefereeError::NoWindow),
            Some(w) if now >= w.closes_at => Err(RefereeError::NoWindow),
            Some(_) if ticket.node != me => Err(RefereeError::NotOwnTicket),
            Some(_) if !eligible => Err(RefereeError::NotEligible(me)),
            Some(w) if w.tickets.contains_key(&me) => Err(RefereeError::DuplicateTicket),
            Some(w) if ticket.score_with(&w.randomness, &self.proofs).is_none() => {
                Err(RefereeError::ForgedTicket)
            }
            Some(_) => Ok(()),
        };
        if let Err(e) = check {
            return Err(self.referee_err(h, e));
        }
        let w = self.disputes.get_mut(&key).and_then(|d| d.window.as_mut());
        w.expect("checked").tickets.insert(me, ticket);
        Ok(())
    }

    /// `Vote`: a referee's re-executed outputs for the disputed traps.
    pub(super) fn vote(
        &mut self,
        h: &mut LedgerHandle<'_, '_>,
        (client, job, lot): LotRef,
        outputs: Vec<idlegrid_primitives::Digest>,
    ) -> Result<(), LedgerError> {
        let (now, me) = (self.live_now(h), h.sender());
        let l = self.live(h, client, job, lot)?;
        let referee = me.node();
        let vote = idlegrid_entrap::RefereeVote { referee, outputs };
        let voted = l.round.submit_vote(now, referee, vote);
        match voted {
            Ok(()) => Ok(()),
            Err(EntrapError::NotOnCommittee) => {
                Err(self.referee_err(h, RefereeError::NotOnCommittee))
            }
            Err(e) => Err(self.referee_err(h, RefereeError::Round((&e).into()))),
        }
    }

    /// The parties' nodes of a live lot.
    fn parties(&self, ((client, job), lot): RoundKey) -> [NodeId; 2] {
        let provider = self
            .jobs
            .get(&(client, job))
            .and_then(|j| j.live.get(&lot))
            .map_or(client, |l| l.provider);
        [client.node(), provider.node()]
    }

    /// Seats the committees of every window that closed by now.
    pub(super) fn close_windows(&mut self, h: &mut ManagedHandle<'_, '_>) {
        let now = self.live_now(h);
        while let Some(&(t, key)) = self.windows.first() {
            if t > now {
                break;
            }
            self.windows.pop_first();
            self.seat(key);
        }
    }

    /// Draws and seats a closed window's committee (as of its close).
    fn seat(&mut self, key: RoundKey) {
        let parties = self.parties(key);
        let Some(d) = self.disputes.get_mut(&key) else {
            return;
        };
        let w = d.window.take().expect("a queued window is open");
        let level = d.level;
        let eligible: Vec<NodeId> = self
            .rules
            .referees
            .iter()
            .filter(|r| !parties.contains(r))
            .copied()
            .collect();
        let committee = draw(&w, &eligible, &self.proofs);
        let ((client, job), lot) = key;
        let Some(l) = self
            .jobs
            .get_mut(&(client, job))
            .and_then(|j| j.live.get_mut(&lot))
        else {
            return;
        };
        let provider = l.provider;
        let seated = if level == 0 {
            l.round.dispute(w.closes_at, provider, committee.clone())
        } else {
            l.round.escalate(w.closes_at, committee.clone())
        };
        let disputed = l.round.disputed().to_vec();
        self.touched.insert(key);
        match seated {
            Ok(()) => {
                self.notice(Notice::DisputeOpened {
                    client,
                    job,
                    lot,
                    provider,
                    level,
                    committee: committee.members().to_vec(),
                    disputed,
                });
            }
            Err(e) => self.effect_failed(format!("job {job} lot {lot}: seating referees: {e}")),
        }
    }

    /// At a votes deadline without a verdict: opens an escalation window
    /// (true: the round's timeout is held), or lets the round settle on the
    /// votes cast (false). Also true while a window is open.
    pub(super) fn escalate_if_undecided(
        &mut self,
        h: &ManagedHandle<'_, '_>,
        key: RoundKey,
    ) -> bool {
        let Some(d) = self.disputes.get(&key) else {
            return false;
        };
        if d.window.is_some() {
            return true;
        }
        let ((client, job), lot) = key;
        let Some(l) = self.jobs.get(&(client, job)).and_then(|j| j.live.get(&lot)) else {
            return false;
        };
        let size = l.round.committee().map_or(0, Committee::len);
        let parties = self.parties(key);
        let eligible = self.rules.referees.iter().filter(|r| !parties.contains(r));
        let eligible = eligible.count();
        let seats = (2 * size + 1)
            .min(eligible)
            .min(idlegrid_entrap::MAX_REFEREES);
        let stuck = l.round.stage() == Stage::AwaitingVotes && !l.round.decided();
        if !stuck || d.level >= self.params.max_escalations || seats <= size {
            return false;
        }
        self.disputes.get_mut(&key).expect("checked").level += 1;
        self.open_window(h, key, seats);
        true
    }
}

/// Whether a referee whose verified ticket `score` is this should send it
/// to fill `seats` seats among `eligible` candidates: only scores in the
/// lowest `3 · seats / eligible` fraction are (about three candidates per
/// seat, so every validator does not flood every dispute; the seats still
/// go to the lowest scores that arrive, and the fill-up covers a shortfall).
pub fn ticket_worth_sending(score: &[u8; 32], seats: usize, eligible: usize) -> bool {
    let mut head = [0u8; 8];
    head.copy_from_slice(&score[..8]);
    let x = u128::from(u64::from_be_bytes(head));
    let want = (3 * seats).min(eligible) as u128;
    x * (eligible.max(1) as u128) < want << 64
}

/// The committee of a closed window: the lowest verified tickets, filled
/// up by the ranking of the other eligible referees on the randomness.
fn draw(w: &Window, eligible: &[NodeId], proofs: &SignatureVerifier) -> Committee {
    let seats = w.seats.min(eligible.len()).max(1);
    let tickets: Vec<RefereeTicket> = w
        .tickets
        .values()
        .filter(|t| eligible.contains(&t.node))
        .copied()
        .collect();
    let mut members: Vec<NodeId> =
        match select_referees_with(&tickets, &w.randomness, seats, proofs) {
            Ok(c) => return c,
            Err(_) => {
                let all =
                    select_referees_with(&tickets, &w.randomness, tickets.len().max(1), proofs);
                all.map(|c| c.members().to_vec()).unwrap_or_default()
            }
        };
    let mut rest: Vec<(Digest, NodeId)> = eligible
        .iter()
        .filter(|r| !members.contains(r))
        .map(|r| (Digest::of(FILL_DOMAIN, &(w.randomness, r)), *r))
        .collect();
    rest.sort();
    members.extend(rest.into_iter().take(seats - members.len()).map(|(_, r)| r));
    Committee::from_members(members).expect("distinct eligible referees, 1..=15 seats")
}

/// The referees that voted with the majority on every disputed trap that
/// has one (none if no trap has a majority).
pub(super) fn majority_voters(round: &VerificationRound) -> Vec<AccountId> {
    let Some(c) = round.committee() else {
        return Vec::new();
    };
    let votes = round.votes();
    let mut winners = Vec::new();
    for i in 0..round.disputed().len() {
        let mut outs: Vec<Digest> = votes.iter().map(|v| v.outputs[i]).collect();
        outs.sort_unstable();
        let top = outs
            .chunk_by(|a, b| a == b)
            .find(|g| 2 * g.len() > c.len())
            .map(|g| g[0]);
        if let Some(t) = top {
            winners.push((i, t));
        }
    }
    if winners.is_empty() {
        return Vec::new();
    }
    votes
        .iter()
        .filter(|v| winners.iter().all(|(i, t)| v.outputs[*i] == *t))
        .map(|v| v.referee.account())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// About `3 · seats` of `eligible` uniform scores are worth sending;
        /// everyone when the seats take them all.
        #[test]
        fn worth_sending_is_a_quantile(head in any::<u64>(), seats in 1usize..16, eligible in 1usize..200) {
            let mut score = [0u8; 32];
            score[..8].copy_from_slice(&head.to_be_bytes());
            let fraction = (3 * seats).min(eligible) as f64 / eligible as f64;
            let x = head as f64 / 2f64.powi(64);
            let sent = ticket_worth_sending(&score, seats, eligible);
            if x < fraction - 1e-9 { prop_assert!(sent); }
            if x > fraction + 1e-9 { prop_assert!(!sent); }
            if 3 * seats >= eligible { prop_assert!(sent); }
        }
    }
}
