//! Validators' audits ([`Audit`]) run on the machine's other core, their
//! outcomes joined at fixed points of the run.
//!
//! A validator hands the full invariant audit of the commits whose turn is
//! its own to its driver ([`ValidatorEvent::Audit`]); here the observer
//! passes each to [`AuditLane::submit`]. With a worker, the audit runs on
//! a thread of its own while the engine goes on; the lane keeps at most
//! [`OUTSTANDING`] audits unanswered and, when one more arrives, waits for
//! the oldest (which is long done: a commit's worth of events separates
//! two audits). Without a worker (the single-threaded check mode), each
//! audit runs inline.
//!
//! **The run does not change.** Outcomes are joined in submission order,
//! at the submission that pushes the count past the bound and at the end
//! of the run ([`AuditLane::finish`]) — points fixed by the sequence of
//! events, never by how the threads interleave — so a broken invariant
//! stops the run at the same event with a worker or without, and nodes
//! never see an outcome (they do not wait for one). An audit reported
//! [`OUTSTANDING`] commits late is still attributed to its own commit and
//! validator.
//!
//! ```
//! use idlegrid_sim::audit::AuditLane;
//!
//! let mut lane: AuditLane = AuditLane::background();
//! assert_eq!(lane.finish(), Ok(()), "nothing submitted, nothing failed");
//! ```
//!
//! [`ValidatorEvent::Audit`]: idlegrid_node::validator::ValidatorEvent::Audit

use std::collections::VecDeque;
use std::sync::mpsc;
use std::thread::JoinHandle;

use idlegrid_dag_ledger::ledger::InvariantViolation;
use idlegrid_node::validator::Audit;

use crate::node::NodeIndex;

/// Audits submitted and not yet joined, at most.
pub const OUTSTANDING: usize = 2;

/// What the lane runs: a validator's [`Audit`] (or, in tests, a stand-in).
pub trait AuditJob: Clone + Send + 'static {
    /// The audited commit.
    fn index(&self) -> u64;
    /// Runs the audit.
    fn run(&self) -> Result<(), InvariantViolation>;
}

impl AuditJob for Audit {
    fn index(&self) -> u64 {
        Audit::index(self)
    }

    fn run(&self) -> Result<(), InvariantViolation> {
        Audit::run(self)
    }
}

/// A failed audit: the validator that submitted it, its commit, what was
/// broken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFailure {
    /// The submitting validator.
    pub node: NodeIndex,
    /// The audited commit.
    pub index: u64,
    /// The broken invariant.
    pub violation: InvariantViolation,
}

struct Worker<A> {
    send: mpsc::Sender<A>,
    answers: mpsc::Receiver<Result<(), InvariantViolation>>,
    thread: JoinHandle<()>,
}

/// Audits in flight (see the module docs).
pub struct AuditLane<A: AuditJob = Audit> {
    worker: Option<Worker<A>>,
    /// Submitted, unanswered: the node and the audit (kept to run inline if
    /// the worker is gone).
    waiting: VecDeque<(NodeIndex, A)>,
    /// Audits run, in all.
    ran: u64,
}

impl<A: AuditJob> std::fmt::Debug for AuditLane<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLane")
            .field("background", &self.worker.is_some())
            .field("waiting", &self.waiting.len())
            .field("ran", &self.ran)
            .finish()
    }
}

impl<A: AuditJob> AuditLane<A> {
    /// Audits run inline, one at each submission.
    pub fn inline() -> Self {
        Self {
            worker: None,
            waiting: VecDeque::new(),
            ran: 0,
        }
    }

    /// Audits run on a worker thread (inline if it cannot be spawned).
    pub fn background() -> Self {
        let (send, inbox) = mpsc::channel::<A>();
        let (reply, answers) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("audits".into())
            .spawn(move || {
                for audit in inbox {
                    if reply.send(audit.run()).is_err() {
                        return;
                    }
                }
            });
        let mut lane = Self::inline();
        lane.worker = thread.ok().map(|thread| Worker {
            send,
            answers,
            thread,
        });
        lane
    }

    /// Audits run so far.
    pub fn ran(&self) -> u64 {
        self.ran
    }

    /// Takes `node`'s audit; answers for the oldest ones past
    /// [`OUTSTANDING`] (see the module docs for when a failure shows).
    pub fn submit(&mut self, node: NodeIndex, audit: &A) -> Result<(), AuditFailure> {
        let sent = match &self.worker {
            Some(w) => w.send.send(audit.clone()).is_ok(),
            None => false,
        };
        if !sent {
            self.worker = None;
        }
        self.waiting.push_back((node, audit.clone()));
        let keep = if self.worker.is_some() {
            OUTSTANDING
        } else {
            0
        };
        while self.waiting.len() > keep {
            self.join_oldest()?;
        }
        Ok(())
    }

    /// Answers for every audit still waiting (the end of the run).
    pub fn finish(&mut self) -> Result<(), AuditFailure> {
        while !self.waiting.is_empty() {
            self.join_oldest()?;
        }
        Ok(())
    }

    fn join_oldest(&mut self) -> Result<(), AuditFailure> {
        let Some((node, audit)) = self.waiting.pop_front() else {
            return Ok(());
        };
        let answer = match self.worker.as_ref().map(|w| w.answers.recv()) {
            Some(Ok(answer)) => answer,
            // No worker, or it is gone (its audits then run here, in order).
            _ => {
                self.worker = None;
                audit.run()
            }
        };
        self.ran += 1;
        answer.map_err(|violation| AuditFailure {
            node,
            index: audit.index(),
            violation,
        })
    }
}

impl<A: AuditJob> Drop for AuditLane<A> {
    fn drop(&mut self) {
        if let Some(w) = self.worker.take() {
            drop(w.send);
            let _ = w.thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Fails on `bad` commits; counts the threads' runs.
    #[derive(Clone)]
    struct Fake {
        index: u64,
        bad: bool,
        runs: Arc<AtomicU64>,
    }

    impl AuditJob for Fake {
        fn index(&self) -> u64 {
            self.index
        }
        fn run(&self) -> Result<(), InvariantViolation> {
            self.runs.fetch_add(1, Ordering::Relaxed);
            match self.bad {
                true => Err(InvariantViolation {
                    invariant: "supply",
                    detail: format!("commit {}", self.index),
                }),
                false => Ok(()),
            }
        }
    }

    /// Submits commits 0.. (node = index mod 3), `bad` failing; returns
    /// the submission at which the first failure showed, and the failure.
    fn drive(lane: &mut AuditLane<Fake>, n: u64, bad: u64) -> (Option<u64>, Option<AuditFailure>) {
        let runs = Arc::new(AtomicU64::new(0));
        for i in 0..n {
            let job = Fake {
                index: i,
                bad: i == bad,
                runs: Arc::clone(&runs),
            };
            if let Err(f) = lane.submit(NodeIndex::new((i % 3) as u32), &job) {
                return (Some(i), Some(f));
            }
        }
        (None, lane.finish().err())
    }

    #[test]
    fn a_failure_shows_at_the_same_submission_with_a_worker_or_without() {
        for bad in [0, 1, 5, 9] {
            let (at_bg, f_bg) = drive(&mut AuditLane::background(), 10, bad);
            let (at_in, f_in) = drive(&mut AuditLane::inline(), 10, bad);
            assert_eq!(at_in, Some(bad), "inline: at once");
            let late = bad + OUTSTANDING as u64;
            assert_eq!(
                at_bg,
                (late < 10).then_some(late),
                "worker: {OUTSTANDING} later, or at the end"
            );
            assert_eq!(f_bg, f_in, "the same failure, attributed to its own commit");
            let f = f_in.expect("failed");
            assert_eq!((f.index, f.node), (bad, NodeIndex::new((bad % 3) as u32)));
        }
    }

    #[test]
    fn every_audit_runs_once_and_the_lane_joins_before_it_reports() {
        let mut lane = AuditLane::background();
        let runs = Arc::new(AtomicU64::new(0));
        for i in 0..50 {
            let job = Fake {
                index: i,
                bad: false,
                runs: Arc::clone(&runs),
            };
            lane.submit(NodeIndex::new(0), &job).expect("passes");
            assert!(
                i + 1 - lane.ran() <= OUTSTANDING as u64,
                "at most {OUTSTANDING} wait"
            );
        }
        lane.finish().expect("passes");
        assert_eq!((lane.ran(), runs.load(Ordering::Relaxed)), (50, 50));
    }
}
