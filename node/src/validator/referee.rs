//! A referee's desk: the bytes providers send with their disputes
//! ([`Evidence`]), matched to this validator's referee duties.
//!
//! A duty is reported at once with whatever bytes are held (none in the
//! simulator, whose executors work on content addresses); when the
//! disputing provider's bytes arrive later, the duty is reported again with
//! them. Bytes are kept only from the lot's provider, only if they are what
//! the disputed traps name, and within fixed bounds, so a flood of
//! evidence costs a bounded amount of memory and evicts only the flooder's.

use std::collections::VecDeque;

use idlegrid_entrap::DisputedTrap;
use idlegrid_primitives::{AccountId, NodeId};

use crate::wire::{Evidence, LotData, MAX_LOT_BYTES, input_digest};

/// Evidence held at most, per sender.
const MAX_EVIDENCE_PER_SENDER: usize = 4;
/// Evidence held at most in all.
const MAX_EVIDENCE: usize = 256;
/// Duties waiting for their provider's bytes, at most.
const MAX_WAITING: usize = 1_024;

/// A lot: (client, job, lot).
type Lot = (AccountId, u64, u32);

/// A duty to re-run `disputed` of `lot`, with the bytes if held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Duty {
    pub lot: Lot,
    pub disputed: Vec<DisputedTrap>,
    pub data: Option<LotData>,
}

#[derive(Debug, Default)]
pub(crate) struct RefereeDesk {
    evidence: VecDeque<(NodeId, Evidence)>,
    waiting: VecDeque<(Lot, AccountId, Vec<DisputedTrap>)>,
}

/// The program and the disputed traps' inputs, in `disputed` order, if
/// `e` holds all of them.
fn bytes_for(e: &Evidence, disputed: &[DisputedTrap]) -> Option<LotData> {
    let inputs = disputed
        .iter()
        .map(|d| {
            e.data
                .inputs
                .iter()
                .find(|b| input_digest(&e.data.program, b) == d.trap.input)
                .cloned()
        })
        .collect::<Option<Vec<_>>>()?;
    Some(LotData {
        program: e.data.program.clone(),
        inputs,
    })
}

impl RefereeDesk {
    /// A dispute names this validator a referee.
    pub fn duty(&mut self, lot: Lot, provider: AccountId, disputed: Vec<DisputedTrap>) -> Duty {
        let data = self
            .evidence
            .iter()
            .filter(|(from, e)| *from == provider.node() && (e.client, e.job, e.lot) == lot)
            .find_map(|(_, e)| bytes_for(e, &disputed));
        if data.is_none() {
            if self.waiting.len() >= MAX_WAITING {
                self.waiting.pop_front();
            }
            self.waiting.push_back((lot, provider, disputed.clone()));
        }
        Duty {
            lot,
            disputed,
            data,
        }
    }

    /// Bytes from `from`; a duty they complete, if any.
    pub fn evidence(&mut self, from: NodeId, e: Evidence) -> Option<Duty> {
        if e.data.size() > MAX_LOT_BYTES {
            return None;
        }
        let lot = (e.client, e.job, e.lot);
        if let Some(i) = self
            .waiting
            .iter()
            .position(|(l, p, d)| *l == lot && p.node() == from && bytes_for(&e, d).is_some())
        {
            let (lot, _, disputed) = self.waiting.remove(i)?;
            let data = bytes_for(&e, &disputed);
            return Some(Duty {
                lot,
                disputed,
                data,
            });
        }
        let mine = self.evidence.iter().filter(|(f, _)| *f == from).count();
        if mine >= MAX_EVIDENCE_PER_SENDER {
            let oldest = self.evidence.iter().position(|(f, _)| *f == from)?;
            self.evidence.remove(oldest);
        } else if self.evidence.len() >= MAX_EVIDENCE {
            self.evidence.pop_front();
        }
        self.evidence.push_back((from, e));
        None
    }
}
