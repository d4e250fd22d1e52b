//! # idlegrid-sim
//!
//! A deterministic discrete-event simulator for idlegrid protocols, in the
//! style of TigerBeetle's VOPR and commonware's deterministic runtime.
//!
//! - [`Simulation`] drives any [`Machine`](idlegrid_primitives::Machine)
//!   over a simulated network: one [`EventQueue`] ordered by
//!   `(time, sequence)`, virtual time, one root seed from which every
//!   node's and every link's RNG derives, and a run digest chained (blake3)
//!   over every delivered event.
//! - [`network`] models regions with a one-way latency matrix (a six-region
//!   world default), jitter, per-node upload and download bandwidth
//!   (max-min fair sharing once a downlink is limited), random loss and
//!   partitions; [`Fault`]s (partitions, one-way blocks, heal, crash,
//!   restart, loss changes) are applied on a schedule.
//! - [`Observer`]s collect [`Metrics`] and check invariants *during* the
//!   run; a broken invariant stops it with the seed and the command that
//!   replays it.
//! - [`consensus`] puts `idlegrid-dag-ledger` validators on the simulated
//!   WAN with a transaction load and Byzantine behaviours (equivocating,
//!   withholding, invalid blocks, delaying), and checks prefix consistency,
//!   no honest equivocation and liveness after healing while the run goes;
//!   [`demo`] is a protocol-free gossip machine.
//! - [`scenario`] reads TOML scenario files (unknown fields rejected, every
//!   value validated); [`runner`] runs them and [`report`] writes the
//!   terminal summary, `summary.json` and a per-second CSV. The embedded
//!   default ([`scenario::DEFAULT_SCENARIO`]) is the whole [`marketplace`]:
//!   24 validators, 300 providers (10 % cheaters), 30 clients; the other
//!   built-in scenarios are in [`scenario::BUILTIN_SCENARIOS`].
//! - [`sweep`] runs a scenario over a grid of fields' values × seeds in
//!   parallel (`idlegrid-sim sweep --param … --param …`), writing
//!   `sweep.csv`, `summary.csv` (mean and 95 % CI over seeds) and one SVG
//!   per metric; splits it into shards for other machines and merges
//!   them (`--shard I/N`, `sweep merge`); writes it as a Slurm job array
//!   (`--slurm`).
//! - [`throughput`] sweeps committee sizes × offered loads and draws
//!   latency against committed throughput (`idlegrid-sim throughput`).
//! - [`bench`](mod@bench) measures the engine (`idlegrid-sim bench`).
//!
//! ## Driving contract
//!
//! For every event the engine calls one input of the node's machine
//! (`handle_message` or `handle_timeout`) with the event's virtual time,
//! then drains `poll_transmit` and `poll_event` until both are `None`, then
//! re-arms the node's single timer from `poll_timeout` (a superseded timer
//! is discarded when it pops). Broadcasts fan out to every other node,
//! starting after the sender. Sizes come from `encoded_len` or
//! [`Simulation::set_size_of_message`].
//!
//! ## Determinism contract
//!
//! Nothing in a run reads a clock or a global RNG. Same seed and scenario ⇒
//! same sequence of events ⇒ same [`RunReport::digest`]. The `idlegrid-sim
//! check-determinism` command runs a scenario twice and compares.
//!
//! ## Example
//!
//! ```
//! use idlegrid_primitives::{Duration, Timestamp};
//! use idlegrid_sim::demo::{Gossip, GossipConfig, GossipObserver};
//! use idlegrid_sim::{Fault, NetworkConfig, NodeIndex, NodeSpec, RegionId, SimConfig, Simulation};
//!
//! let run = |seed| {
//!     let mut cfg = SimConfig::new(seed);
//!     cfg.max_time = Timestamp::from_millis(3_000);
//!     let nodes = (0..12).map(|i| NodeSpec::in_region(RegionId::new(i % 6))).collect();
//!     let gossip = GossipConfig::default();
//!     let mut sim = Simulation::new(
//!         cfg,
//!         NetworkConfig::default(),
//!         nodes,
//!         move |ctx| Gossip::new(ctx, gossip.clone()),
//!         GossipObserver::new(None),
//!     )
//!     .unwrap();
//!     let half: Vec<_> = (0..6).map(NodeIndex::new).collect();
//!     let rest: Vec<_> = (6..12).map(NodeIndex::new).collect();
//!     sim.schedule(Timestamp::from_millis(1_000), Fault::Partition { groups: vec![half, rest] })
//!         .unwrap();
//!     sim.schedule(Timestamp::from_millis(2_000), Fault::Heal).unwrap();
//!     sim.run().unwrap()
//! };
//! let (a, b) = (run(1), run(1));
//! assert_eq!(a.digest, b.digest);
//! assert_ne!(a.digest, run(2).digest);
//! assert!(a.stats.dropped_partition > 0);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit;
pub mod bench;
pub mod consensus;
pub mod crashes;
pub mod demo;
pub mod durable;
mod engine;
mod fault;
pub mod marketplace;
pub mod metrics;
pub mod network;
mod node;
mod observer;
pub mod plot;
mod queue;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod sweep;
pub mod throughput;

pub use engine::{
    CHECKPOINT_EVERY, Checkpoint, MAX_NODES, NetStats, Progress, RestartMode, RunReport,
    SecondStats, SimConfig, SimError, Simulation, StopReason,
};
pub use fault::Fault;
pub use metrics::{Histogram, Metrics, Percentiles};
pub use network::{Bandwidth, NetworkConfig, RegionId, Regions};
pub use node::{NodeContext, NodeIndex, NodeSpec};
pub use observer::{InvariantFailure, Observer, Violation};
pub use queue::{EventQueue, EventSeq, QueueFull};
