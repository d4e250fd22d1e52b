//! The driving contract every networked state machine implements.
//!
//! The simulator and the real runner drive a [`Machine`] identically:
//!
//! 1. deliver one input — [`Machine::handle_message`] or, once the clock
//!    reaches [`Machine::poll_timeout`], [`Machine::handle_timeout`] — with
//!    the current time `now`;
//! 2. drain [`Machine::poll_transmit`] and [`Machine::poll_event`] until both
//!    return `None`;
//! 3. sleep until the earliest of the next message and `poll_timeout`.
//!
//! A machine never reads a clock, never sleeps, never touches a socket and
//! never draws from a global RNG: time is an argument and randomness is a
//! seed it was built with.

use crate::ids::NodeId;
use crate::time::Timestamp;

/// Where an outgoing message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// One peer.
    To(NodeId),
    /// Every peer the driver knows (not the sender itself).
    Broadcast,
}

/// An outgoing message produced by a [`Machine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit<M> {
    /// Recipient(s).
    pub to: Destination,
    /// The message.
    pub msg: M,
}

impl<M> Transmit<M> {
    /// A message to one peer.
    pub fn to(node: NodeId, msg: M) -> Self {
        Self {
            to: Destination::To(node),
            msg,
        }
    }
    /// A message to every peer.
    pub fn broadcast(msg: M) -> Self {
        Self {
            to: Destination::Broadcast,
            msg,
        }
    }
}

/// A sans-IO networked state machine (see the module docs for the loop).
pub trait Machine {
    /// What crosses the wire.
    type Message;
    /// What the application observes.
    type Event;

    /// A message arrived from `from` at time `now`.
    fn handle_message(&mut self, now: Timestamp, from: NodeId, msg: Self::Message);
    /// The time returned by [`Machine::poll_timeout`] has been reached.
    fn handle_timeout(&mut self, now: Timestamp);
    /// The next message to send, if any. Drain after every input.
    fn poll_transmit(&mut self) -> Option<Transmit<Self::Message>>;
    /// The next event for the application, if any. Drain after every input.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// When the machine next wants [`Machine::handle_timeout`], if ever.
    fn poll_timeout(&self) -> Option<Timestamp>;
}
