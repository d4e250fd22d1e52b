//! Observers: metrics collectors and invariant checkers that run during the
//! simulation.
//!
//! The engine hands every application event, every fault and a periodic
//! tick to its [`Observer`]. An observer that finds a broken invariant
//! returns a [`Violation`]; the engine stops at once and reports an
//! [`InvariantFailure`] carrying the seed and the command that replays the
//! run.

use core::fmt;

use idlegrid_primitives::Timestamp;

use crate::fault::Fault;
use crate::metrics::Metrics;
use crate::node::NodeIndex;

/// A broken invariant, as reported by an observer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The invariant's name, e.g. `prefix-consistency`.
    pub invariant: String,
    /// What was observed.
    pub message: String,
}

impl Violation {
    /// A violation of `invariant`.
    pub fn new(invariant: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            invariant: invariant.into(),
            message: message.into(),
        }
    }
}

/// A broken invariant with everything needed to reproduce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvariantFailure {
    /// What broke.
    pub violation: Violation,
    /// The run's seed.
    pub seed: u64,
    /// Virtual time of the failure.
    pub at: Timestamp,
    /// Number of events processed before the failure.
    pub event: u64,
    /// The one command that replays the run.
    pub replay_command: String,
}

impl fmt::Display for InvariantFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invariant `{}` violated at {} (after {} events): {}",
            self.violation.invariant, self.at, self.event, self.violation.message
        )?;
        writeln!(f, "  seed:   {}", self.seed)?;
        write!(f, "  replay: {}", self.replay_command)
    }
}

/// Receives what happens during a run. All methods default to doing nothing.
pub trait Observer<E> {
    /// A node emitted an application event.
    fn on_event(&mut self, now: Timestamp, node: NodeIndex, event: &E) -> Result<(), Violation> {
        let _ = (now, node, event);
        Ok(())
    }
    /// A scheduled fault was applied.
    fn on_fault(&mut self, now: Timestamp, fault: &Fault) -> Result<(), Violation> {
        let _ = (now, fault);
        Ok(())
    }
    /// Periodic check, every `SimConfig::tick` of virtual time.
    fn on_tick(&mut self, now: Timestamp) -> Result<(), Violation> {
        let _ = now;
        Ok(())
    }
    /// The run ended (end-of-run checks such as liveness).
    fn finish(&mut self, now: Timestamp) -> Result<(), Violation> {
        let _ = now;
        Ok(())
    }
    /// Metrics this observer collected, for reports.
    fn metrics(&self) -> Option<&Metrics> {
        None
    }
}

/// Observes nothing.
impl<E> Observer<E> for () {}

/// Both observers see everything, `A` first; metrics come from `A`, or `B`
/// if `A` has none.
impl<E, A: Observer<E>, B: Observer<E>> Observer<E> for (A, B) {
    fn on_event(&mut self, now: Timestamp, node: NodeIndex, event: &E) -> Result<(), Violation> {
        self.0.on_event(now, node, event)?;
        self.1.on_event(now, node, event)
    }
    fn on_fault(&mut self, now: Timestamp, fault: &Fault) -> Result<(), Violation> {
        self.0.on_fault(now, fault)?;
        self.1.on_fault(now, fault)
    }
    fn on_tick(&mut self, now: Timestamp) -> Result<(), Violation> {
        self.0.on_tick(now)?;
        self.1.on_tick(now)
    }
    fn finish(&mut self, now: Timestamp) -> Result<(), Violation> {
        self.0.finish(now)?;
        self.1.finish(now)
    }
    fn metrics(&self) -> Option<&Metrics> {
        self.0.metrics().or_else(|| self.1.metrics())
    }
}

/// Forwards to the boxed observer.
impl<E> Observer<E> for Box<dyn Observer<E>> {
    fn on_event(&mut self, now: Timestamp, node: NodeIndex, event: &E) -> Result<(), Violation> {
        (**self).on_event(now, node, event)
    }
    fn on_fault(&mut self, now: Timestamp, fault: &Fault) -> Result<(), Violation> {
        (**self).on_fault(now, fault)
    }
    fn on_tick(&mut self, now: Timestamp) -> Result<(), Violation> {
        (**self).on_tick(now)
    }
    fn finish(&mut self, now: Timestamp) -> Result<(), Violation> {
        (**self).finish(now)
    }
    fn metrics(&self) -> Option<&Metrics> {
        (**self).metrics()
    }
}
