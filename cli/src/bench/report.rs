//! What a bench run reports: committed rate, latency percentiles, CPU of
//! the validator processes (from `/proc/PID/stat`) and of the bench
//! process itself (clients and relays), as a table and as JSON.

use idlegrid_primitives::Timestamp;
use idlegrid_transport::Clock;
use tokio::sync::watch;

use super::load::{ClientTally, Schedule};
use super::{BenchOptions, Testbed, interruptible};
use crate::CliError;

/// Latency percentiles, ms (nearest rank). A rank that falls among the
/// submissions never confirmed is infinite (JSON `null`): at saturation the
/// tail is not hidden by leaving the slowest transfers out.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Percentiles {
    /// Of `samples_us` (microseconds); all zero when empty.
    pub fn of_micros(samples_us: &[u64]) -> Self {
        Self::censored(samples_us, 0)
    }

    /// Of `samples_us` plus `missing` samples longer than any (never
    /// confirmed); all zero when there is none of either.
    pub fn censored(samples_us: &[u64], missing: u64) -> Self {
        let mut s = samples_us.to_vec();
        s.sort_unstable();
        let total = s.len() + usize::try_from(missing).unwrap_or(usize::MAX / 2);
        let rank = |q: f64| -> f64 {
            if total == 0 {
                return 0.0;
            }
            let i = ((q * total as f64).ceil() as usize).clamp(1, total) - 1;
            s.get(i).map_or(f64::INFINITY, |us| *us as f64 / 1_000.0)
        };
        Self {
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: rank(1.0),
        }
    }
}

/// CPU used over the measured window, in cores (1.0 = one core busy).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CpuUse {
    /// Each validator process.
    pub validators: Vec<f64>,
    /// The bench process (clients, relays).
    pub bench: f64,
    /// The validators' threads runnable but waiting for a core, summed
    /// (1.0 = one thread waiting all the time): above zero, the machine's
    /// cores, not the processes, set the pace.
    pub validators_waiting: f64,
    /// The same for the bench process.
    pub bench_waiting: f64,
}

/// One run's figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunReport {
    /// Validator processes.
    pub validators: usize,
    /// Light clients offering the load.
    pub clients: usize,
    /// Where the validators' stores were.
    pub store: String,
    /// Offered load, tx/s (all clients).
    pub offered_tx_per_s: f64,
    /// Measured window, s.
    pub measured_s: f64,
    /// WAN emulation.
    pub latency_emulation: String,
    /// Transfers submitted in the window.
    pub submitted: u64,
    /// Confirmations received in the window.
    pub confirmed: u64,
    /// Confirmations per second of the window.
    pub committed_tx_per_s: f64,
    /// Submit → f + 1 validators report it applied, of the window's
    /// submissions (the unconfirmed ones count as infinitely late), ms.
    pub latency_ms: Percentiles,
    /// Submit → the gateway validator's own report (the simulator's
    /// "commit at the submitting validator"), of the window's submissions
    /// whose gateway report arrived, ms.
    pub gateway_commit_ms: Percentiles,
    /// Samples behind `gateway_commit_ms`.
    pub gateway_samples: u64,
    /// Rejected by the ledger.
    pub rejected: u64,
    /// Refused by the clients' outboxes (full: load beyond what commits).
    pub refused: u64,
    /// Submitted in the window, not confirmed by the end of the drain.
    pub unconfirmed: u64,
    /// CPU, cores.
    pub cpu_cores: CpuUse,
    /// Cores of the machine.
    pub machine_cores: usize,
}

impl RunReport {
    /// Sums the clients' tallies.
    pub fn new(opts: &BenchOptions, load: f64, tallies: &[ClientTally], cpu: CpuUse) -> Self {
        let sum = |f: fn(&ClientTally) -> u64| tallies.iter().map(f).sum::<u64>();
        let all = |f: fn(&ClientTally) -> &Vec<u64>| -> Vec<u64> {
            tallies.iter().flat_map(|t| f(t).iter().copied()).collect()
        };
        let (latencies, gateway) = (all(|t| &t.latencies_us), all(|t| &t.gateway_us));
        let unconfirmed = sum(|t| t.unconfirmed);
        let secs = opts.duration.as_secs_f64();
        let confirmed = sum(|t| t.confirmed_in_window);
        Self {
            validators: opts.validators,
            clients: opts.clients,
            store: opts.describe_store(),
            offered_tx_per_s: load,
            measured_s: secs,
            latency_emulation: opts.latency.describe(),
            submitted: sum(|t| t.submitted),
            confirmed,
            committed_tx_per_s: confirmed as f64 / secs,
            latency_ms: Percentiles::censored(&latencies, unconfirmed),
            gateway_commit_ms: Percentiles::of_micros(&gateway),
            gateway_samples: gateway.len() as u64,
            rejected: sum(|t| t.rejected),
            refused: sum(|t| t.refused),
            unconfirmed,
            cpu_cores: cpu,
            machine_cores: super::MachineInfo::probe().cores,
        }
    }

    /// The table's header.
    pub fn header() -> String {
        format!(
            "{:>3} {:>9} {:>10} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>12} {:>6} {:>6}",
            "n",
            "offered",
            "committed",
            "ratio",
            "gw50 ms",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms",
            "unconf",
            "cpu val/all",
            "bench",
            "wait"
        )
    }

    /// One table row.
    pub fn row(&self) -> String {
        let val: f64 = self.cpu_cores.validators.iter().sum();
        format!(
            "{:>3} {:>9.0} {:>10.1} {:>6.2} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>7} {:>12} {:>6.2} {:>6.2}",
            self.validators,
            self.offered_tx_per_s,
            self.committed_tx_per_s,
            self.committed_tx_per_s / self.offered_tx_per_s,
            self.gateway_commit_ms.p50,
            self.latency_ms.p50,
            self.latency_ms.p90,
            self.latency_ms.p99,
            self.latency_ms.max,
            self.unconfirmed + self.refused,
            format!("{val:.2}/{}", self.machine_cores),
            self.cpu_cores.bench,
            self.cpu_cores.validators_waiting + self.cpu_cores.bench_waiting
        )
    }
}

/// User + system CPU ticks of `pid` so far.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is 3rd,
    // utime the 14th and stime the 15th of the whole line.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Time the threads of `pid` have spent runnable but waiting for a core
/// so far, ns (the second field of each `/proc/PID/task/TID/schedstat`).
fn run_queue_wait_ns(pid: &str) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut sum = 0u64;
    for t in tasks.flatten() {
        let stat = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        let wait = stat
            .split_whitespace()
            .nth(1)
            .and_then(|w| w.parse::<u64>().ok());
        sum = sum.saturating_add(wait.unwrap_or(0));
    }
    Some(sum)
}

/// Per validator, then the bench process: (CPU ticks, run-queue wait ns).
fn sample(bed: &Testbed) -> Vec<(Option<u64>, Option<u64>)> {
    let pids = bed.validators.iter().map(|(_, pid)| pid.to_string());
    pids.chain(["self".to_string()])
        .map(|p| (cpu_ticks(&p), run_queue_wait_ns(&p)))
        .collect()
}

/// Samples CPU at the window's start and end (waiting for both).
pub async fn measure_cpu(
    bed: &Testbed,
    clock: Clock,
    s: Schedule,
    cancel: &mut watch::Receiver<bool>,
) -> Result<CpuUse, CliError> {
    let at = |t: Timestamp| {
        clock
            .instant_at(t)
            .unwrap_or_else(tokio::time::Instant::now)
    };
    interruptible(cancel, tokio::time::sleep_until(at(s.measure_from))).await?;
    let before = sample(bed);
    interruptible(cancel, tokio::time::sleep_until(at(s.end))).await?;
    let after = sample(bed);
    let hz = rustix::param::clock_ticks_per_second() as f64;
    let secs = (s.end.as_micros() - s.measure_from.as_micros()) as f64 / 1e6;
    let rate = |b: Option<u64>, a: Option<u64>, per_s: f64| match (b, a) {
        (Some(b), Some(a)) => a.saturating_sub(b) as f64 / per_s / secs,
        _ => 0.0,
    };
    let mut cores: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| rate(b.0, a.0, hz))
        .collect();
    let mut waiting: Vec<f64> = before
        .iter()
        .zip(&after)
        .map(|(b, a)| rate(b.1, a.1, 1e9))
        .collect();
    let bench = cores.pop().unwrap_or(0.0);
    let bench_waiting = waiting.pop().unwrap_or(0.0);
    Ok(CpuUse {
        validators: cores,
        bench,
        validators_waiting: waiting.iter().sum(),
        bench_waiting,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let s: Vec<u64> = (1..=100).map(|i| i * 1_000).collect();
        let p = Percentiles::of_micros(&s);
        assert_eq!((p.p50, p.p90, p.p99, p.max), (50.0, 90.0, 99.0, 100.0));
        assert_eq!(Percentiles::of_micros(&[]), Percentiles::default());
        let one = Percentiles::of_micros(&[2_500]);
        assert_eq!((one.p50, one.max), (2.5, 2.5));
    }

    #[test]
    fn unconfirmed_submissions_are_the_slowest() {
        let s: Vec<u64> = (1..=95).map(|i| i * 1_000).collect();
        let p = Percentiles::censored(&s, 5);
        assert_eq!((p.p50, p.p90), (50.0, 90.0));
        assert!(p.p99.is_infinite() && p.max.is_infinite(), "{p:?}");
        let none = Percentiles::censored(&[], 3);
        assert!(none.p50.is_infinite());
        assert_eq!(Percentiles::censored(&s, 0), Percentiles::of_micros(&s));
    }

    #[test]
    fn own_cpu_ticks_are_read() {
        assert!(cpu_ticks("self").is_some());
        assert!(cpu_ticks("0").is_none());
        assert!(run_queue_wait_ns("self").is_some());
        assert!(run_queue_wait_ns("0").is_none());
    }
}
