//! Admission of unauthenticated inbound connections.
//!
//! Before a peer has proved who it is, it costs us a socket, a task and a
//! key exchange. [`Admission`] bounds that cost per source address and in
//! total:
//!
//! - at most `handshakes_per_addr_per_sec` new handshakes per address in
//!   any one-second window;
//! - at most `max_pending_per_addr` handshakes in progress per address;
//! - at most `max_pending_handshakes` in progress in total — when full, the
//!   **oldest** pending handshake is evicted to make room (an honest
//!   handshake finishes in a round trip or two, so the oldest are the
//!   stalled ones);
//! - at most `max_tracked_addrs` addresses remembered (idle entries are
//!   pruned first; when every entry is busy, new addresses are refused).
//!
//! Time is an argument (`now`), so the rules are tested without a clock.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_secs(1);

/// The admission limits (a copy of the relevant `TcpConfig` fields).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub total: usize,
    pub per_addr: usize,
    pub per_addr_per_sec: u32,
    pub tracked_addrs: usize,
}

/// Why a connection was refused before its handshake started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The address started too many handshakes in this second.
    Rate,
    /// The address already has `per_addr` handshakes in progress.
    PerAddress,
    /// The address table is full of busy addresses.
    TooManyAddresses,
}

#[derive(Debug)]
struct AddrState {
    pending: usize,
    window_start: Instant,
    in_window: u32,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    /// Pending handshakes, oldest first; dropping the sender evicts one.
    pending: BTreeMap<u64, (IpAddr, oneshot::Sender<()>)>,
    addrs: HashMap<IpAddr, AddrState>,
}

/// The shared admission state of one listener.
#[derive(Debug)]
pub(crate) struct Admission {
    limits: Limits,
    state: Mutex<State>,
}

/// A pending handshake's place. Dropping it frees the place;
/// `evicted` resolves if the handshake was evicted to make room.
#[derive(Debug)]
pub(crate) struct Ticket {
    id: u64,
    admission: Arc<Admission>,
    pub evicted: oneshot::Receiver<()>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut st = self.admission.lock();
        if let Some((ip, _)) = st.pending.remove(&self.id) {
            release(&mut st, ip);
        }
    }
}

fn release(st: &mut State, ip: IpAddr) {
    let a = st
        .addrs
        .get_mut(&ip)
        .expect("a pending handshake's address is tracked");
    assert!(a.pending > 0, "pending count underflow");
    a.pending -= 1;
}

impl Admission {
    pub(crate) fn new(limits: Limits) -> Arc<Self> {
        assert!(limits.total > 0 && limits.per_addr > 0 && limits.tracked_addrs > 0);
        Arc::new(Self {
            limits,
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection from `ip` at `now`, evicting the oldest pending
    /// handshake if the total is reached. Returns the ticket and whether an
    /// eviction happened.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        now: Instant,
    ) -> Result<(Ticket, bool), Refused> {
        let mut st = self.lock();
        self.make_room_for(&mut st, ip, now)?;
        let a = st.addrs.entry(ip).or_insert(AddrState {
            pending: 0,
            window_start: now,
            in_window: 0,
        });
        if now.saturating_duration_since(a.window_start) >= WINDOW {
            a.window_start = now;
            a.in_window = 0;
        }
        if a.in_window >= self.limits.per_addr_per_sec {
            return Err(Refused::Rate);
        }
        a.in_window += 1;
        if a.pending >= self.limits.per_addr {
            return Err(Refused::PerAddress);
        }
        a.pending += 1;
        let evicted = st.pending.len() >= self.limits.total;
        if evicted {
            let (_, (old_ip, cancel)) = st.pending.pop_first().expect("total > 0");
            drop(cancel);
            release(&mut st, old_ip);
        }
        let id = st.next_id;
        st.next_id += 1;
        let (tx, rx) = oneshot::channel();
        st.pending.insert(id, (ip, tx));
        assert!(st.pending.len() <= self.limits.total);
        let ticket = Ticket {
            id,
            admission: self.clone(),
            evicted: rx,
        };
        Ok((ticket, evicted))
    }

    /// Keeps the address table within its bound: prunes idle addresses whose
    /// window has passed; refuses a new address if none can go.
    fn make_room_for(&self, st: &mut State, ip: IpAddr, now: Instant) -> Result<(), Refused> {
        if st.addrs.len() < self.limits.tracked_addrs || st.addrs.contains_key(&ip) {
            return Ok(());
        }
        st.addrs
            .retain(|_, a| a.pending > 0 || now.saturating_duration_since(a.window_start) < WINDOW);
        if st.addrs.len() >= self.limits.tracked_addrs {
            return Err(Refused::TooManyAddresses);
        }
        Ok(())
    }

    /// Handshakes in progress (for tests).
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.lock().pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            total: 4,
            per_addr: 2,
            per_addr_per_sec: 3,
            tracked_addrs: 3,
        }
    }

    fn ip(i: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, i])
    }

    #[tokio::test(start_paused = true)]
    async fn per_address_pending_and_rate_limits() {
        let adm = Admission::new(limits());
        let t0 = Instant::now();
        let (a1, _) = adm.admit(ip(1), t0).unwrap();
        let (a2, _) = adm.admit(ip(1), t0).unwrap();
        assert_eq!(adm.admit(ip(1), t0).unwrap_err(), Refused::PerAddress);
        drop(a1); // a finished handshake frees its place
        // ...but the third attempt this second already counted.
        assert_eq!(adm.admit(ip(1), t0).unwrap_err(), Refused::Rate);
        // Another address is not affected.
        let (_b, _) = adm.admit(ip(2), t0).unwrap();
        // A new window.
        let t1 = t0 + WINDOW;
        let (_a3, _) = adm.admit(ip(1), t1).unwrap();
        assert_eq!(adm.pending(), 3);
        drop(a2);
        assert_eq!(adm.pending(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_pending_handshake_is_evicted_when_full() {
        let adm = Admission::new(Limits {
            tracked_addrs: 8,
            ..limits()
        });
        let t0 = Instant::now();
        let mut tickets: Vec<_> = (1..=4).map(|i| adm.admit(ip(i), t0).unwrap()).collect();
        assert!(tickets.iter().all(|(_, e)| !e));
        let (_new, evicted) = adm.admit(ip(5), t0).unwrap();
        assert!(evicted);
        assert_eq!(adm.pending(), 4);
        // The first ticket learns it was evicted; the others did not.
        let (mut first, _) = tickets.remove(0);
        assert!(
            first
                .evicted
                .try_recv()
                .is_err_and(|e| e == oneshot::error::TryRecvError::Closed)
        );
        let (second, _) = &mut tickets[0];
        assert_eq!(
            second.evicted.try_recv(),
            Err(oneshot::error::TryRecvError::Empty)
        );
        drop(first); // dropping an evicted ticket is harmless
        assert_eq!(adm.pending(), 4);
        // ip(1)'s place was released at eviction.
        assert!(adm.admit(ip(1), t0).is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_address_table_is_bounded() {
        let adm = Admission::new(limits());
        let t0 = Instant::now();
        let held: Vec<_> = (1..=3).map(|i| adm.admit(ip(i), t0).unwrap()).collect();
        assert_eq!(adm.admit(ip(4), t0).unwrap_err(), Refused::TooManyAddresses);
        drop(held);
        // Idle entries are pruned once their window has passed.
        assert_eq!(adm.admit(ip(4), t0).unwrap_err(), Refused::TooManyAddresses);
        assert!(adm.admit(ip(4), t0 + WINDOW).is_ok());
    }
}
