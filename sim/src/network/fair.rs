//! Max-min fair sharing of every node's uplink and downlink: a fluid model
//! of message transfers (the model `network.download_mbps` switches on).
//!
//! Each directed link `a → b` is one connection carrying a FIFO queue of
//! messages; only its head message is in transfer. Every link with a
//! message in transfer is a *flow* that uses two resources: `a`'s uplink
//! and `b`'s downlink (an unlimited end is no resource). Flows get rates by
//! **progressive filling**: repeatedly take the resource whose remaining
//! capacity divided by its unfrozen flows is smallest, give each of those
//! flows that share, freeze them and take their share from the other
//! resource they use. The result is max-min fair: no flow can go faster
//! without slowing a flow that is no faster than it; a flow limited at one
//! end leaves the rest of its other end's capacity to that end's other
//! flows.
//!
//! Rates are recomputed only when the set of flows changes (a link becomes
//! busy or idle), at most once per instant: a broadcast of one block to 99
//! peers is one recomputation, and a link that goes on with its next queued
//! message keeps its rate. All arithmetic is in integers (bits × 10⁶
//! drained at `rate` per µs), so a run is deterministic on every platform.
//! Integer shares are rounded down (never above a capacity) and at least 1
//! bit/s.

use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use idlegrid_primitives::Timestamp;

use super::Bandwidth;

/// `bits × SCALE` is drained at `rate` (bits/s) per microsecond.
const SCALE: u128 = 1_000_000;

/// A message waiting for, or in, its transfer.
#[derive(Debug)]
struct Queued<T> {
    /// Remaining bits × [`SCALE`].
    left: u128,
    item: T,
}

/// One busy directed link: its queue and the head's rate.
#[derive(Debug)]
struct Flow<T> {
    queue: VecDeque<Queued<T>>,
    /// Bits per second given to the head message; `0` until allocated.
    rate: u64,
}

/// The fluid max-min fair transfer model (see the module docs).
///
/// Drive it with [`FairShare::push`] and, at [`FairShare::next_completion`],
/// [`FairShare::complete`]; both take the current time, which never goes
/// backwards.
#[derive(Debug)]
pub struct FairShare<T> {
    up: Vec<Bandwidth>,
    down: Vec<Bandwidth>,
    flows: BTreeMap<(u32, u32), Flow<T>>,
    last: Timestamp,
    dirty: bool,
    /// [`FairShare::next_completion`] until the flows or rates change.
    next: Option<Option<Timestamp>>,
}

impl<T> FairShare<T> {
    /// Nodes `0..up.len()` with these uplink and downlink rates.
    ///
    /// # Panics
    /// If `up` and `down` differ in length.
    pub fn new(up: Vec<Bandwidth>, down: Vec<Bandwidth>) -> Self {
        assert_eq!(up.len(), down.len(), "one uplink and one downlink per node");
        Self {
            up,
            down,
            flows: BTreeMap::new(),
            last: Timestamp::ZERO,
            dirty: false,
            next: None,
        }
    }

    /// Messages queued or in transfer.
    pub fn queued(&self) -> usize {
        self.flows.values().map(|f| f.queue.len()).sum()
    }

    /// The rate (bits/s) of the message in transfer on `from → to`, if any.
    pub fn rate(&mut self, from: u32, to: u32) -> Option<u64> {
        self.allocate_if_dirty();
        self.flows.get(&(from, to)).map(|f| f.rate)
    }

    /// Queues `bytes` from `from` to `to` at `now`. Returns the item back
    /// when neither end is limited (the transfer takes no time); otherwise
    /// it completes later, through [`FairShare::complete`].
    ///
    /// # Panics
    /// If a node index is out of range or `now` is before an earlier call.
    pub fn push(&mut self, now: Timestamp, from: u32, to: u32, bytes: u64, item: T) -> Option<T> {
        let (f, t) = (from as usize, to as usize);
        assert!(f < self.up.len() && t < self.up.len(), "node out of range");
        if self.up[f].is_unlimited() && self.down[t].is_unlimited() {
            return Some(item);
        }
        self.advance(now);
        let left = u128::from(bytes) * 8 * SCALE;
        let flow = self.flows.entry((from, to)).or_insert_with(|| Flow {
            queue: VecDeque::new(),
            rate: 0,
        });
        if flow.queue.is_empty() {
            self.dirty = true;
            self.next = None;
        }
        flow.queue.push_back(Queued { left, item });
        None
    }

    /// When the next message finishes its transfer, if any is queued.
    pub fn next_completion(&mut self) -> Option<Timestamp> {
        self.allocate_if_dirty();
        if let Some(next) = self.next {
            return next; // nothing changed since it was computed
        }
        let next = self
            .flows
            .values()
            .filter_map(|f| Some(self.last + micros_to_finish(f.queue.front()?.left, f.rate)))
            .min();
        self.next = Some(next);
        next
    }

    /// Advances to `now` and returns every message whose transfer is done,
    /// as `(from, to, item)`, links in `(from, to)` order.
    pub fn complete(&mut self, now: Timestamp) -> Vec<(u32, u32, T)> {
        self.allocate_if_dirty();
        self.advance(now);
        let mut done = Vec::new();
        let mut idle = Vec::new();
        self.next = None;
        for (&(from, to), flow) in self.flows.iter_mut() {
            // The head finished; the next message starts at the same rate.
            while flow.queue.front().is_some_and(|q| q.left == 0) {
                let q = flow.queue.pop_front().expect("front exists");
                done.push((from, to, q.item));
            }
            if flow.queue.is_empty() {
                idle.push((from, to));
            }
        }
        if !idle.is_empty() {
            idle.iter().for_each(|k| {
                self.flows.remove(k);
            });
            self.dirty = true;
        }
        done
    }

    /// Drains every head by `rate × elapsed`.
    fn advance(&mut self, now: Timestamp) {
        assert!(now >= self.last, "time never goes backwards");
        let dt = u128::from((now - self.last).as_micros());
        if dt == 0 {
            return;
        }
        // Rates for the flows of the instant that ends now.
        self.allocate_if_dirty();
        self.last = now;
        for flow in self.flows.values_mut() {
            if let Some(head) = flow.queue.front_mut() {
                head.left = head.left.saturating_sub(u128::from(flow.rate) * dt);
            }
        }
    }

    fn allocate_if_dirty(&mut self) {
        if self.dirty {
            self.dirty = false;
            let rates = max_min_rates(&self.up, &self.down, self.flows.keys().copied());
            for (flow, rate) in self.flows.values_mut().zip(rates) {
                flow.rate = rate;
            }
        }
    }
}

fn micros_to_finish(left: u128, rate: u64) -> idlegrid_primitives::Duration {
    let us = left.div_ceil(u128::from(rate.max(1)));
    idlegrid_primitives::Duration::from_micros(u64::try_from(us).unwrap_or(u64::MAX))
}

/// Max-min fair rates (bits/s) of `links` (directed `(from, to)` pairs, each
/// using `from`'s uplink and `to`'s downlink) by progressive filling; in
/// the order of `links`. A link with both ends unlimited gets `u64::MAX`.
pub fn max_min_rates(
    up: &[Bandwidth],
    down: &[Bandwidth],
    links: impl IntoIterator<Item = (u32, u32)>,
) -> Vec<u64> {
    // Resource 2i is node i's uplink, 2i + 1 its downlink. Only the
    // resources some link uses are numbered (`used`, sorted, so a compact
    // number orders as the resource does): the work is in the links, not
    // in the nodes of the run.
    let cap_of = |r: usize| match r % 2 {
        0 => up[r / 2],
        _ => down[r / 2],
    };
    let ends: Vec<[Option<usize>; 2]> = links
        .into_iter()
        .map(|(a, b)| {
            let (u, d) = (2 * a as usize, 2 * b as usize + 1);
            [
                (!cap_of(u).is_unlimited()).then_some(u),
                (!cap_of(d).is_unlimited()).then_some(d),
            ]
        })
        .collect();
    let mut used: Vec<usize> = ends.iter().flatten().flatten().copied().collect();
    used.sort_unstable();
    used.dedup();
    let compact = |r: usize| used.binary_search(&r).expect("a used resource");
    let links: Vec<[Option<usize>; 2]> = ends
        .iter()
        .map(|e| [e[0].map(compact), e[1].map(compact)])
        .collect();
    let mut users: Vec<Vec<usize>> = vec![Vec::new(); used.len()];
    for (k, ends) in links.iter().enumerate() {
        ends.iter().flatten().for_each(|&r| users[r].push(k));
    }
    let mut cap: Vec<u64> = used.iter().map(|&r| cap_of(r).bits_per_sec()).collect();
    let mut count: Vec<u64> = users.iter().map(|u| u.len() as u64).collect();
    let mut rate = vec![u64::MAX; links.len()];
    let mut frozen = vec![false; links.len()];
    // Min-heap of (share, resource); stale entries are skipped.
    let mut heap: BinaryHeap<std::cmp::Reverse<(u64, usize)>> = (0..used.len())
        .filter(|&r| count[r] > 0)
        .map(|r| std::cmp::Reverse((cap[r] / count[r], r)))
        .collect();
    while let Some(std::cmp::Reverse((share, r))) = heap.pop() {
        if count[r] == 0 || cap[r] / count[r] != share {
            continue;
        }
        let share = share.max(1);
        for &k in &users[r] {
            if std::mem::replace(&mut frozen[k], true) {
                continue;
            }
            rate[k] = share;
            if let Some(o) = links[k].iter().flatten().copied().find(|&o| o != r) {
                cap[o] = cap[o].saturating_sub(share);
                count[o] -= 1;
                if let Some(share) = cap[o].checked_div(count[o]) {
                    heap.push(std::cmp::Reverse((share, o)));
                }
            }
        }
        count[r] = 0;
    }
    rate
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbps(v: &[u64]) -> Vec<Bandwidth> {
        v.iter().map(|m| Bandwidth::from_mbps(*m)).collect()
    }

    #[test]
    fn two_flows_into_one_downlink_share_it_equally() {
        // Nodes 0 and 1 upload at 100 Mbit/s into node 2's 10 Mbit/s.
        let rates = max_min_rates(
            &mbps(&[100, 100, 100]),
            &mbps(&[100, 100, 10]),
            [(0, 2), (1, 2)],
        );
        assert_eq!(rates, vec![5_000_000, 5_000_000]);
    }

    #[test]
    fn a_flow_limited_elsewhere_leaves_its_share_to_the_other() {
        // Node 0's uplink (2 Mbit/s) limits 0 → 2, so 1 → 2 gets the other
        // 8 Mbit/s of node 2's downlink, not an equal 5.
        let rates = max_min_rates(
            &mbps(&[2, 100, 100]),
            &mbps(&[100, 100, 10]),
            [(0, 2), (1, 2)],
        );
        assert_eq!(rates, vec![2_000_000, 8_000_000]);
    }

    #[test]
    fn a_broadcast_shares_the_uplink_and_unlimited_links_are_free() {
        let up = mbps(&[30, 100, 100, 100]);
        let down = vec![Bandwidth::UNLIMITED; 4];
        assert_eq!(
            max_min_rates(&up, &down, [(0, 1), (0, 2), (0, 3)]),
            vec![10_000_000; 3]
        );
        let free = vec![Bandwidth::UNLIMITED; 2];
        assert_eq!(max_min_rates(&free, &free, [(0, 1)]), vec![u64::MAX]);
        let mut fs = FairShare::new(free.clone(), free);
        assert_eq!(fs.push(Timestamp::ZERO, 0, 1, 1_000, 7), Some(7));
    }

    #[test]
    fn completions_follow_the_rates_and_a_link_stays_fifo() {
        // 1 Mbit/s downlink at node 2; 1 250 bytes = 10 ms alone.
        let mut fs = FairShare::new(mbps(&[100, 100, 100]), mbps(&[100, 100, 1]));
        let t0 = Timestamp::ZERO;
        assert!(fs.push(t0, 0, 2, 1_250, "a1").is_none());
        assert!(fs.push(t0, 0, 2, 1_250, "a2").is_none());
        assert!(fs.push(t0, 1, 2, 1_250, "b").is_none());
        // Two flows at 0.5 Mbit/s: a1 and b finish at 20 ms.
        let t = fs.next_completion().unwrap();
        assert_eq!(t, Timestamp::from_millis(20));
        let done: Vec<_> = fs.complete(t).into_iter().map(|d| d.2).collect();
        assert_eq!(done, vec!["a1", "b"]);
        // a2 alone now: 10 ms more.
        let t = fs.next_completion().unwrap();
        assert_eq!(t, Timestamp::from_millis(30));
        assert_eq!(fs.complete(t).len(), 1);
        assert_eq!(fs.next_completion(), None);
        assert_eq!(fs.queued(), 0);
    }

    use proptest::prelude::*;

    /// A bandwidth: unlimited (`0`) or 1..=100 Mbit/s.
    fn bw() -> impl Strategy<Value = Bandwidth> {
        prop_oneof![Just(0u64), 1u64..=100].prop_map(Bandwidth::from_mbps)
    }

    /// Nodes' `(up, down)` and messages `(start µs, from, to, bytes)`.
    #[allow(clippy::type_complexity)]
    fn world() -> impl Strategy<Value = (Vec<(Bandwidth, Bandwidth)>, Vec<(u64, u32, u32, u64)>)> {
        proptest::collection::vec((bw(), bw()), 2..6).prop_flat_map(|nodes| {
            let n = nodes.len() as u32;
            let msg = (0u64..20_000, 0..n, 0..n, 1u64..200_000);
            (Just(nodes), proptest::collection::vec(msg, 1..40))
        })
    }

    /// Runs the messages through the model; per message, when it finished
    /// (`None` = never), failing on a message finishing twice.
    fn simulate(
        up: &[Bandwidth],
        down: &[Bandwidth],
        msgs: &[(u64, u32, u32, u64)],
    ) -> Result<Vec<Option<Timestamp>>, TestCaseError> {
        let mut order: Vec<usize> = (0..msgs.len()).collect();
        order.sort_by_key(|&i| msgs[i].0);
        let mut fs = FairShare::new(up.to_vec(), down.to_vec());
        let mut done = vec![None; msgs.len()];
        let finish = |done: &mut Vec<Option<Timestamp>>, at, id: usize| {
            prop_assert!(done[id].is_none(), "message {} finished twice", id);
            done[id] = Some(at);
            Ok(())
        };
        for &i in &order {
            let (start, from, to, bytes) = msgs[i];
            let start = Timestamp::from_micros(start);
            while let Some(t) = fs.next_completion().filter(|t| *t <= start) {
                for (_, _, id) in fs.complete(t) {
                    finish(&mut done, t, id)?;
                }
            }
            if let Some(id) = fs.push(start, from, to, bytes, i) {
                finish(&mut done, start, id)?;
            }
        }
        while let Some(t) = fs.next_completion() {
            let batch = fs.complete(t);
            prop_assert!(!batch.is_empty(), "a completion time with nothing done");
            for (_, _, id) in batch {
                finish(&mut done, t, id)?;
            }
        }
        prop_assert_eq!(fs.queued(), 0);
        Ok(done)
    }

    proptest! {
        /// Every message completes exactly once (so every pushed bit is
        /// delivered), no sooner than its size over the slower of its two
        /// ends allows, and a link stays FIFO.
        #[test]
        fn conserves_messages_and_never_beats_the_slower_end((nodes, msgs) in world()) {
            let up: Vec<_> = nodes.iter().map(|n| n.0).collect();
            let down: Vec<_> = nodes.iter().map(|n| n.1).collect();
            let done = simulate(&up, &down, &msgs)?;
            let (mut pushed, mut delivered) = (0u64, 0u64);
            for (i, &(start, from, to, bytes)) in msgs.iter().enumerate() {
                pushed += bytes * 8;
                let Some(at) = done[i] else {
                    return Err(TestCaseError::fail(format!("message {i} never finished")));
                };
                delivered += bytes * 8;
                let alone = up[from as usize]
                    .transmit_time(bytes)
                    .max(down[to as usize].transmit_time(bytes));
                prop_assert!(
                    at >= Timestamp::from_micros(start) + alone,
                    "message {} done at {:?}, before start {} + {:?}", i, at, start, alone
                );
                // FIFO: a later message on the same link is not done sooner.
                for (j, &(s2, f2, t2, _)) in msgs.iter().enumerate() {
                    if (f2, t2) == (from, to) && (s2, j) > (start, i) {
                        prop_assert!(done[j] >= done[i], "link {}→{} reordered", from, to);
                    }
                }
            }
            prop_assert_eq!(pushed, delivered);
        }

        /// The rates are feasible and max-min fair: every flow has a
        /// bottleneck, a limited end it uses that is full (up to integer
        /// rounding) and on which no flow gets more than it.
        #[test]
        fn rates_are_feasible_and_max_min_fair(
            (nodes, msgs) in world(),
        ) {
            let up: Vec<_> = nodes.iter().map(|n| n.0).collect();
            let down: Vec<_> = nodes.iter().map(|n| n.1).collect();
            let links: std::collections::BTreeSet<(u32, u32)> =
                msgs.iter().map(|m| (m.1, m.2)).collect();
            let links: Vec<_> = links.into_iter().collect();
            let rates = max_min_rates(&up, &down, links.iter().copied());
            // Resources as (is_down, node) → (capacity, flows on it).
            let uses = |k: usize| {
                let (a, b) = links[k];
                [(false, a), (true, b)].into_iter().filter(|&(d, x)| {
                    let bw = if d { down[x as usize] } else { up[x as usize] };
                    !bw.is_unlimited()
                })
            };
            let cap = |(d, x): (bool, u32)| {
                if d { down[x as usize] } else { up[x as usize] }.bits_per_sec()
            };
            let on = |r| (0..links.len()).filter(move |&k| uses(k).any(|u| u == r));
            for k in 0..links.len() {
                if uses(k).next().is_none() {
                    prop_assert_eq!(rates[k], u64::MAX);
                    continue;
                }
                for r in uses(k) {
                    let sum: u64 = on(r).map(|j| rates[j]).sum();
                    prop_assert!(sum <= cap(r), "resource {:?} over capacity", r);
                }
                let bottleneck = uses(k).any(|r| {
                    let sum: u64 = on(r).map(|j| rates[j]).sum();
                    let slack = on(r).count() as u64;
                    sum + slack >= cap(r) && on(r).all(|j| rates[j] <= rates[k])
                });
                prop_assert!(bottleneck, "flow {:?} at {} has no bottleneck", links[k], rates[k]);
            }
        }
    }

    #[test]
    fn a_lone_transfer_takes_its_size_over_the_slower_end() {
        // 10 Mbit/s up, 4 Mbit/s down: 50 000 bytes take 100 ms.
        let up = vec![Bandwidth::from_mbps(10), Bandwidth::from_mbps(10)];
        let down = vec![Bandwidth::from_mbps(4), Bandwidth::from_mbps(4)];
        let mut fs = FairShare::new(up, down);
        assert!(
            fs.push(Timestamp::from_millis(5), 0, 1, 50_000, ())
                .is_none()
        );
        assert_eq!(fs.rate(0, 1), Some(4_000_000));
        assert_eq!(fs.next_completion(), Some(Timestamp::from_millis(105)));
        assert!(fs.complete(Timestamp::from_millis(104)).is_empty());
        assert_eq!(fs.complete(Timestamp::from_millis(105)).len(), 1);
    }

    #[test]
    fn a_flow_that_joins_slows_the_one_in_transfer() {
        // 8 Mbit/s downlink at 2; 0 → 2 sends 2 000 bytes (2 ms alone); at
        // 1 ms 1 → 2 joins: 1 000 bytes left at 4 Mbit/s = 2 ms more.
        let up = vec![Bandwidth::UNLIMITED; 3];
        let down = vec![
            Bandwidth::UNLIMITED,
            Bandwidth::UNLIMITED,
            Bandwidth::from_mbps(8),
        ];
        let mut fs = FairShare::new(up, down);
        assert!(fs.push(Timestamp::ZERO, 0, 2, 2_000, 'a').is_none());
        assert_eq!(fs.next_completion(), Some(Timestamp::from_millis(2)));
        assert!(
            fs.push(Timestamp::from_millis(1), 1, 2, 10_000, 'b')
                .is_none()
        );
        assert_eq!(fs.rate(0, 2), Some(4_000_000));
        assert_eq!(fs.next_completion(), Some(Timestamp::from_millis(3)));
        let done = fs.complete(Timestamp::from_millis(3));
        assert_eq!(done.iter().map(|d| d.2).collect::<Vec<_>>(), vec!['a']);
        // b: 2 ms at 4 Mbit/s = 1 000 bytes done, 9 000 left alone at 8.
        assert_eq!(fs.rate(1, 2), Some(8_000_000));
        assert_eq!(fs.next_completion(), Some(Timestamp::from_millis(12)));
    }
}
