//! Run outputs: the terminal summary, `summary.json` and the per-second CSV.
//!
//! `summary.json` is an interface other tools read; its keys are snake_case
//! and numbers are JSON numbers.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::engine::{NetStats, RunReport, StopReason};
use crate::metrics::{Metrics, Percentiles};

/// p50/p90/p99 in one unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Quantiles {
    /// From percentiles, dividing by `scale` (e.g. 1000 for µs → ms).
    pub fn scaled(p: &Percentiles, scale: f64) -> Self {
        Self {
            p50: p.p50 as f64 / scale,
            p90: p.p90 as f64 / scale,
            p99: p.p99 as f64 / scale,
        }
    }
}

/// Network part of a summary.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkSummary {
    /// Counters.
    #[serde(flatten)]
    pub stats: NetStats,
    /// All drops.
    pub dropped: u64,
    /// Send-to-arrival latency of delivered messages.
    pub message_latency_ms: Quantiles,
    /// Time messages waited for the sender's uplink.
    pub upload_wait_ms: Quantiles,
}

/// Gossip part of a summary.
#[derive(Debug, Clone, Serialize)]
pub struct GossipSummary {
    /// Rumors started.
    pub rumors_originated: u64,
    /// First-time receptions.
    pub rumors_learned: u64,
    /// `learned / (originated × (nodes − 1))`.
    pub coverage: f64,
    /// Creation-to-reception latency.
    pub propagation_ms: Quantiles,
    /// Forwarding steps.
    pub hops: Quantiles,
}

/// Consensus part of a summary.
#[derive(Debug, Clone, Serialize)]
pub struct ConsensusSummary {
    /// Committee size.
    pub validators: usize,
    /// Byzantine validators.
    pub byzantine: usize,
    /// Committed leaders (sub-DAGs).
    pub commits: u64,
    /// Blocks ordered by commits.
    pub committed_blocks: u64,
    /// Transactions ordered by commits.
    pub committed_transactions: u64,
    /// Committed transactions per virtual second.
    pub transactions_per_second: f64,
    /// Transaction submission → commit at the submitting validator.
    pub commit_latency_ms: Quantiles,
    /// Leader proposal → commit at each honest validator.
    pub leader_commit_latency_ms: Quantiles,
    /// Leader commit latency in units of the median one-way message delay
    /// of the run (`network.message_latency_ms.p50`).
    pub commit_latency_message_delays: Quantiles,
    /// Distinct `(round, author)` equivocations detected.
    pub equivocations_detected: u64,
    /// Invalid messages rejected by validators.
    pub invalid_messages: u64,
    /// Offered against committed load and latency in quorum delays
    /// (consensus scenarios; not the marketplace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<LoadSummary>,
}

/// A consensus run's load, its steady-state throughput and its latency in
/// quorum delays (see [`crate::network::quorum`]).
#[derive(Debug, Clone, Serialize)]
pub struct LoadSummary {
    /// Transactions per second submitted by all honest validators.
    pub offered_tx_per_second: f64,
    /// Transactions committed after `consensus.warmup_ms`, per second of
    /// the rest of the run.
    pub committed_tx_per_second: f64,
    /// The ideal three-quorum-hop commit latency on the run's latency
    /// matrix, placement and mean jitter.
    pub ideal_commit_latency_ms: f64,
    /// A third of the ideal: one quorum hop.
    pub quorum_delay_ms: f64,
    /// Transaction commit latency (after warm-up) in quorum delays.
    pub commit_latency_quorum_delays: Quantiles,
    /// Median commit latency over the ideal three-hop latency.
    pub p50_over_ideal: f64,
    /// Where the transaction latency goes (after warm-up).
    pub breakdown: LatencyBreakdown,
}

/// A transaction's commit latency split into the wait for its
/// validator's next block and that block's proposal → commit, and the
/// block-level latencies the protocol is accountable for, against the
/// ideal three-hop latency. All after `consensus.warmup_ms`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LatencyBreakdown {
    /// Submission → proposal of the validator's block that holds it.
    pub inclusion_wait_ms: Quantiles,
    /// That block's proposal → commit at the submitting validator.
    pub included_commit_latency_ms: Quantiles,
    /// A leader block's proposal → commit at each honest validator: the
    /// three message delays of the protocol.
    pub leader_commit_latency_ms: Quantiles,
    /// Median leader commit latency over the ideal three-hop latency: the
    /// protocol's own overhead.
    pub leader_p50_over_ideal: f64,
    /// The commit latency of an ideal DAG protocol with Mysticeti's
    /// proposal rule on the same matrix (a vote waits for a quorum of the
    /// leader's round and for the leader; see
    /// [`crate::network::quorum::threshold_clock_commit_latency`]).
    pub threshold_clock_commit_latency_ms: f64,
    /// Median leader commit latency over the threshold-clock ideal: what
    /// this implementation adds to the rule it follows.
    pub leader_p50_over_threshold_clock: f64,
    /// A non-leader block's proposal → commit at each honest validator
    /// (it waits for a later leader that references it).
    pub block_commit_latency_ms: Quantiles,
    /// Median non-leader block commit latency over the ideal.
    pub block_p50_over_ideal: f64,
    /// Time between two successive proposals of one validator.
    pub round_interval_ms: Quantiles,
    /// Rounds validators left without a block of theirs (a proposal more
    /// than one round above their previous one), summed over validators.
    pub skipped_rounds: u64,
    /// Where a leader block's latency goes beyond the ideal, hop by hop
    /// (means; see [`crate::network::hops`]).
    pub hop_waits: HopWaitsMs,
}

/// The means of [`crate::network::hops::HopWaits`], in ms.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HopWaitsMs {
    /// Leaders measured.
    pub leaders: u64,
    /// Votes waiting for a quorum of the leader's round after the leader.
    pub parents_ms: f64,
    /// The rest of the votes' wait.
    pub vote_ms: f64,
    /// Certificates waiting after a quorum of votes (for the next round's
    /// leader, mostly).
    pub certificate_ms: f64,
    /// Commits waiting after a quorum of certificates.
    pub commit_ms: f64,
}

impl LatencyBreakdown {
    /// From the observer's histograms, the ideal latency and the
    /// threshold-clock ideal.
    pub fn new(m: &crate::metrics::Metrics, ideal_ms: f64, clock_ms: f64) -> Self {
        let q = |name: &str| {
            let p = m
                .histograms
                .get(name)
                .map(|h| h.summary())
                .unwrap_or_default();
            Quantiles::scaled(&p, 1e3)
        };
        let over = |v: f64| if ideal_ms > 0.0 { v / ideal_ms } else { 0.0 };
        let leader = q("steady_leader_commit_latency_us");
        let block = q("block_commit_latency_us");
        Self {
            inclusion_wait_ms: q("inclusion_wait_us"),
            included_commit_latency_ms: q("included_commit_latency_us"),
            leader_p50_over_ideal: over(leader.p50),
            threshold_clock_commit_latency_ms: clock_ms,
            leader_p50_over_threshold_clock: match clock_ms > 0.0 {
                true => leader.p50 / clock_ms,
                false => 0.0,
            },
            leader_commit_latency_ms: leader,
            block_p50_over_ideal: over(block.p50),
            block_commit_latency_ms: block,
            round_interval_ms: q("round_interval_us"),
            skipped_rounds: m.counter("skipped_rounds"),
            hop_waits: HopWaitsMs {
                leaders: m.counter("hop_leaders"),
                parents_ms: m.counter("hop_parents_wait_us") as f64 / 1e3,
                vote_ms: m.counter("hop_vote_wait_us") as f64 / 1e3,
                certificate_ms: m.counter("hop_certificate_wait_us") as f64 / 1e3,
                commit_ms: m.counter("hop_commit_wait_us") as f64 / 1e3,
            },
        }
    }
}

impl LoadSummary {
    /// From the offered and steady committed rates, the ideal latency and
    /// the measured commit latency.
    pub fn new(offered: f64, committed: f64, ideal_ms: f64, latency_ms: Quantiles) -> Self {
        let hop = ideal_ms / 3.0;
        let per_hop = |v: f64| if hop > 0.0 { v / hop } else { 0.0 };
        Self {
            offered_tx_per_second: offered,
            committed_tx_per_second: committed,
            ideal_commit_latency_ms: ideal_ms,
            quorum_delay_ms: hop,
            commit_latency_quorum_delays: Quantiles {
                p50: per_hop(latency_ms.p50),
                p90: per_hop(latency_ms.p90),
                p99: per_hop(latency_ms.p99),
            },
            p50_over_ideal: per_hop(latency_ms.p50) / 3.0,
            breakdown: LatencyBreakdown::default(),
        }
    }

    /// Adds where the latency goes.
    pub fn with_breakdown(mut self, breakdown: LatencyBreakdown) -> Self {
        self.breakdown = breakdown;
        self
    }
}

/// Everything a run reports (`summary.json`).
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Root seed.
    pub seed: u64,
    /// Machine kind.
    pub machine: String,
    /// Number of nodes.
    pub nodes: usize,
    /// Virtual time simulated.
    pub virtual_seconds: f64,
    /// Wall-clock time taken.
    pub wall_seconds: f64,
    /// Events processed.
    pub events: u64,
    /// Events per wall-clock second.
    pub events_per_second: f64,
    /// Virtual seconds per wall second.
    pub virtual_to_wall_ratio: f64,
    /// The run digest (hex).
    pub run_digest: String,
    /// Why the run stopped.
    pub stop_reason: StopReason,
    /// Network counters.
    pub network: NetworkSummary,
    /// Consensus metrics (consensus machine only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consensus: Option<ConsensusSummary>,
    /// Gossip metrics (gossip machine only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gossip: Option<GossipSummary>,
    /// Marketplace: supply and invariant checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ledger: Option<serde_json::Value>,
    /// Marketplace: orders, matches, prices, welfare.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub market: Option<serde_json::Value>,
    /// Marketplace: job counts and latency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs: Option<serde_json::Value>,
    /// Marketplace: traps, detection, framing, overhead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrap: Option<serde_json::Value>,
    /// Marketplace: profit by behaviour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub economics: Option<serde_json::Value>,
    /// Marketplace: mean reputation by behaviour.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reputation: Option<serde_json::Value>,
    /// Marketplace: the app and dataset registry (apps, datasets, owner revenue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<serde_json::Value>,
    /// Validators' simulated disks (`restart = "store"`): syncs, un-synced
    /// writes lost and torn at crashes, disks wiped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<crate::durable::DiskStats>,
    /// Marketplace lines of the terminal summary.
    #[serde(skip)]
    pub marketplace_text: Option<String>,
    /// The command that replays this run.
    pub replay_command: String,
}

impl Summary {
    /// Builds a summary from an engine report and an observer's metrics.
    pub fn new(
        scenario: &str,
        machine: &str,
        nodes: usize,
        report: &RunReport,
        wall_seconds: f64,
        replay_command: String,
    ) -> Self {
        let virtual_seconds = report.virtual_time.as_micros() as f64 / 1e6;
        let wall = wall_seconds.max(1e-9);
        Self {
            scenario: scenario.to_string(),
            seed: report.seed,
            machine: machine.to_string(),
            nodes,
            virtual_seconds,
            wall_seconds,
            events: report.events,
            events_per_second: report.events as f64 / wall,
            virtual_to_wall_ratio: virtual_seconds / wall,
            run_digest: report.digest.to_string(),
            stop_reason: report.stop,
            network: NetworkSummary {
                stats: report.stats,
                dropped: report.stats.dropped(),
                message_latency_ms: Quantiles::scaled(&report.message_latency_us, 1e3),
                upload_wait_ms: Quantiles::scaled(&report.upload_wait_us, 1e3),
            },
            consensus: None,
            gossip: None,
            ledger: None,
            market: None,
            jobs: None,
            entrap: None,
            economics: None,
            reputation: None,
            registry: None,
            storage: None,
            marketplace_text: None,
            replay_command,
        }
    }

    /// Adds the marketplace sections.
    pub fn with_marketplace(mut self, r: &crate::marketplace::MarketplaceReport) -> Self {
        let s = r.summary.clone();
        self.ledger = Some(s.ledger);
        self.market = Some(s.market);
        self.jobs = Some(s.jobs);
        self.entrap = Some(s.entrap);
        self.economics = Some(s.economics);
        self.reputation = Some(s.reputation);
        self.registry = Some(s.registry);
        self.marketplace_text = Some(r.render_lines());
        self.storage = r.storage;
        self
    }

    /// Adds gossip metrics.
    pub fn with_gossip(mut self, m: &Metrics) -> Self {
        let originated = m.counter("rumors_originated");
        let learned = m.counter("rumors_learned");
        let peers = self.nodes.saturating_sub(1).max(1) as f64;
        let h = |name| {
            m.histograms
                .get(name)
                .map(|h| h.summary())
                .unwrap_or_default()
        };
        self.gossip = Some(GossipSummary {
            rumors_originated: originated,
            rumors_learned: learned,
            coverage: if originated == 0 {
                0.0
            } else {
                learned as f64 / (originated as f64 * peers)
            },
            propagation_ms: Quantiles::scaled(&h("propagation_us"), 1e3),
            hops: Quantiles::scaled(&h("hops"), 1.0),
        });
        self
    }

    /// Adds consensus metrics.
    pub fn with_consensus(mut self, m: &Metrics, byzantine: usize) -> Self {
        let h = |name| {
            m.histograms
                .get(name)
                .map(|h| h.summary())
                .unwrap_or_default()
        };
        let committed = m.counter("committed_transactions");
        let leader = h("leader_commit_latency_us");
        let delay_us = self.network.message_latency_ms.p50 * 1e3;
        self.consensus = Some(ConsensusSummary {
            validators: self.nodes,
            byzantine,
            commits: m.counter("commits"),
            committed_blocks: m.counter("committed_blocks"),
            committed_transactions: committed,
            transactions_per_second: committed as f64 / self.virtual_seconds.max(1e-9),
            commit_latency_ms: Quantiles::scaled(&h("commit_latency_us"), 1e3),
            leader_commit_latency_ms: Quantiles::scaled(&leader, 1e3),
            commit_latency_message_delays: if delay_us > 0.0 {
                Quantiles::scaled(&leader, delay_us)
            } else {
                Quantiles::default()
            },
            equivocations_detected: m.counter("equivocations_detected"),
            invalid_messages: m.counter("invalid_messages"),
            load: None,
        });
        self
    }

    /// Human-readable summary for the terminal.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let n = &self.network;
        let _ = writeln!(
            s,
            "scenario      {} (machine {}, {} nodes, seed {})",
            self.scenario, self.machine, self.nodes, self.seed
        );
        let _ = writeln!(
            s,
            "time          {:.3} s virtual in {:.3} s wall ({:.0}x real time), stopped: {:?}",
            self.virtual_seconds, self.wall_seconds, self.virtual_to_wall_ratio, self.stop_reason
        );
        let _ = writeln!(
            s,
            "events        {} ({:.0} events/s)",
            self.events, self.events_per_second
        );
        let _ = writeln!(
            s,
            "messages      {} sent, {} delivered, {} dropped (loss {}, partition {}, crashed {}, overflow {})",
            n.stats.sent,
            n.stats.delivered,
            n.dropped,
            n.stats.dropped_loss,
            n.stats.dropped_partition,
            n.stats.dropped_crashed,
            n.stats.dropped_overflow
        );
        let _ = writeln!(
            s,
            "latency       message p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms; uplink wait p99 {:.2} ms",
            n.message_latency_ms.p50,
            n.message_latency_ms.p90,
            n.message_latency_ms.p99,
            n.upload_wait_ms.p99
        );
        let _ = writeln!(
            s,
            "faults        {} applied, {} timers fired",
            n.stats.faults, n.stats.timers
        );
        if let Some(c) = &self.consensus {
            let _ = writeln!(
                s,
                "consensus     {} validators ({} Byzantine), {} commits, {} blocks, {} transactions ({:.0} tx/s)",
                c.validators,
                c.byzantine,
                c.commits,
                c.committed_blocks,
                c.committed_transactions,
                c.transactions_per_second
            );
            let _ = writeln!(
                s,
                "commit        tx latency p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms; leader p50 {:.0} ms = {:.2} message delays (p90 {:.2}, p99 {:.2})",
                c.commit_latency_ms.p50,
                c.commit_latency_ms.p90,
                c.commit_latency_ms.p99,
                c.leader_commit_latency_ms.p50,
                c.commit_latency_message_delays.p50,
                c.commit_latency_message_delays.p90,
                c.commit_latency_message_delays.p99
            );
            let _ = writeln!(
                s,
                "safety        prefix consistency held; {} equivocations detected, {} invalid messages rejected",
                c.equivocations_detected, c.invalid_messages
            );
        }
        if let Some(g) = &self.gossip {
            let _ = writeln!(
                s,
                "gossip        {} rumors, {} receptions, coverage {:.1}%, propagation p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, hops p50 {}",
                g.rumors_originated,
                g.rumors_learned,
                g.coverage * 100.0,
                g.propagation_ms.p50,
                g.propagation_ms.p90,
                g.propagation_ms.p99,
                g.hops.p50
            );
        }
        if let Some(m) = &self.marketplace_text {
            s.push_str(m);
        }
        if let Some(d) = &self.storage {
            let _ = writeln!(
                s,
                "storage       validators on simulated disks: {} syncs; at crashes {} un-synced writes lost, {} torn, {} disks wiped",
                d.syncs, d.lost_writes, d.torn_writes, d.wiped
            );
        }
        let _ = writeln!(s, "run digest    {}", self.run_digest);
        s
    }
}

/// The per-second CSV: network columns, then every series of `extra`.
pub fn series_csv(report: &RunReport, extra: Option<&Metrics>) -> String {
    let mut out = String::from("second,delivered,bytes_delivered,dropped,app_events");
    let series: Vec<(&str, &Vec<u64>)> = extra
        .map(|m| m.series.iter().map(|(k, v)| (*k, v)).collect())
        .unwrap_or_default();
    for (name, _) in &series {
        out.push(',');
        out.push_str(name);
    }
    out.push('\n');
    let seconds = (report.virtual_time.as_micros().div_ceil(1_000_000) as usize)
        .max(report.series.len())
        .max(series.iter().map(|(_, v)| v.len()).max().unwrap_or(0));
    for sec in 0..seconds {
        let r = report.series.get(sec).copied().unwrap_or_default();
        let _ = write!(
            out,
            "{sec},{},{},{},{}",
            r.delivered, r.bytes_delivered, r.dropped, r.app_events
        );
        for (_, v) in &series {
            let _ = write!(out, ",{}", v.get(sec).copied().unwrap_or(0));
        }
        out.push('\n');
    }
    out
}

/// Writes `summary.json` and `timeseries.csv` into `dir` (created if needed).
pub fn write_outputs(dir: &Path, summary: &Summary, csv: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?;
    std::fs::write(dir.join("summary.json"), json + "\n")?;
    std::fs::write(dir.join("timeseries.csv"), csv)?;
    Ok(())
}
