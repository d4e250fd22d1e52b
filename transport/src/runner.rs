//! Drives any [`Machine`] over any [`Transport`] with the real clock.

use std::future::Future;

use idlegrid_primitives::{Destination, Machine};

use crate::clock::Clock;
use crate::codec::Codec;
use crate::error::TransportError;
use crate::transport::Transport;

/// What a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunnerStats {
    /// Messages decoded and handed to the machine.
    pub messages_delivered: u64,
    /// Received messages that did not decode (dropped).
    pub decode_failures: u64,
    /// Times `handle_timeout` was called.
    pub timeouts_fired: u64,
    /// Transmits drained from the machine.
    pub transmits: u64,
    /// Per-peer sends that failed (full queue, unknown peer, oversized);
    /// the message was dropped.
    pub send_failures: u64,
    /// Events drained from the machine.
    pub events: u64,
}

/// Why [`Runner::run`] returned.
#[derive(Debug)]
#[non_exhaustive]
pub enum StopReason {
    /// The shutdown future resolved.
    Shutdown,
    /// The transport stopped delivering (it was shut down or failed).
    Transport(TransportError),
}

/// The machine and transport handed back by [`Runner::run`].
#[derive(Debug)]
pub struct Stopped<Mc, T> {
    /// The machine, in its final state.
    pub machine: Mc,
    /// The transport, still open: call [`Transport::shutdown`] to close it,
    /// or reuse it.
    pub transport: T,
    /// Counters.
    pub stats: RunnerStats,
    /// Why the run ended.
    pub reason: StopReason,
}

/// Drives a [`Machine`] over a [`Transport`]:
///
/// 1. drain the machine's outputs — encode each transmit with the codec and
///    send or broadcast it; pass each event to the event handler;
/// 2. wait for the first of: the shutdown future, a message (decode it and
///    call `handle_message(now, from, msg)`; undecodable bytes are counted
///    and dropped), or the machine's `poll_timeout` deadline (call
///    `handle_timeout(now)`);
/// 3. repeat until shutdown or until the transport closes.
///
/// `now` comes from a [`Clock`]; the machine never reads a clock itself.
/// A deadline already in the past fires at once.
#[derive(Debug)]
pub struct Runner<Mc, T, C> {
    machine: Mc,
    transport: T,
    codec: C,
    clock: Clock,
    stats: RunnerStats,
}

impl<Mc, T, C> Runner<Mc, T, C>
where
    Mc: Machine,
    T: Transport,
    C: Codec<Mc::Message>,
{
    /// A runner with a clock starting now.
    pub fn new(machine: Mc, transport: T, codec: C) -> Self {
        Self::with_clock(machine, transport, codec, Clock::start())
    }

    /// A runner on a given clock (share one among the nodes of a process to
    /// share a timeline).
    pub fn with_clock(machine: Mc, transport: T, codec: C, clock: Clock) -> Self {
        Self {
            machine,
            transport,
            codec,
            clock,
            stats: RunnerStats::default(),
        }
    }

    /// Runs until `shutdown` resolves or the transport closes, passing every
    /// machine event to `on_event`. Returns the machine and the transport.
    pub async fn run<S, F>(mut self, shutdown: S, mut on_event: F) -> Stopped<Mc, T>
    where
        S: Future<Output = ()>,
        F: FnMut(Mc::Event),
    {
        let mut shutdown = std::pin::pin!(shutdown);
        let reason = loop {
            self.drain(&mut on_event).await;
            let deadline = self.machine.poll_timeout();
            let wake = deadline.and_then(|t| self.clock.instant_at(t));
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break StopReason::Shutdown,
                () = sleep => {
                    let now = self.clock.now();
                    self.stats.timeouts_fired += 1;
                    self.machine.handle_timeout(now);
                }
                r = self.transport.recv() => match r {
                    Ok((from, bytes)) => self.deliver(from, &bytes),
                    Err(e) => break StopReason::Transport(e),
                },
            }
        };
        // Outputs produced by the last input were drained at the top of the
        // loop; nothing is left in the machine.
        Stopped {
            machine: self.machine,
            transport: self.transport,
            stats: self.stats,
            reason,
        }
    }

    fn deliver(&mut self, from: idlegrid_primitives::NodeId, bytes: &[u8]) {
        match self.codec.decode(bytes) {
            Ok(msg) => {
                self.stats.messages_delivered += 1;
                let now = self.clock.now();
                self.machine.handle_message(now, from, msg);
            }
            Err(_) => self.stats.decode_failures += 1,
        }
    }

    async fn drain<F: FnMut(Mc::Event)>(&mut self, on_event: &mut F) {
        loop {
            let mut progressed = false;
            while let Some(t) = self.machine.poll_transmit() {
                progressed = true;
                self.stats.transmits += 1;
                let bytes = self.codec.encode(&t.msg);
                match t.to {
                    Destination::To(peer) => {
                        if self.transport.send(peer, bytes).await.is_err() {
                            self.stats.send_failures += 1;
                        }
                    }
                    Destination::Broadcast => {
                        let peers = self.transport.peers().len();
                        let sent = self.transport.broadcast(bytes).await.unwrap_or(0);
                        self.stats.send_failures += peers.saturating_sub(sent) as u64;
                    }
                }
            }
            while let Some(e) = self.machine.poll_event() {
                progressed = true;
                self.stats.events += 1;
                on_event(e);
            }
            if !progressed {
                return;
            }
        }
    }
}
