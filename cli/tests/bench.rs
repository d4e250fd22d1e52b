//! `idlegrid bench` as a user runs it: a tiny run end to end (4 validator
//! processes behind the world6 latency relay, a low load for 2 s) reports
//! a committed rate and consistent percentiles no faster than the relay
//! allows; oversize input is refused up front; SIGTERM half-way leaves no
//! validator process and no directory behind. Every bench runs with its
//! own `TMPDIR`, so what it leaves there is checked.

// A test of real processes waits on the real clock.
#![allow(clippy::disallowed_methods)]

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, path};

/// One bench at a time: two testnets on 2 cores would measure each other.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn bench(tmp: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("bench")
        .args(args)
        .env("TMPDIR", tmp)
        .output()
        .expect("run idlegrid bench")
}

fn leftovers(tmp: &Path) -> Vec<String> {
    std::fs::read_dir(tmp)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("idlegrid-"))
        .collect()
}

/// Percentiles in order, and neither the client's f + 1 confirmation nor
/// the gateway's own report faster than the relay allows.
fn latencies_are_ordered_and_bound_by_the_relay(run: &serde_json::Value) {
    let l = &run["latency_ms"];
    let p = |k: &str| l[k].as_f64().unwrap();
    assert!(
        p("p50") <= p("p90") && p("p90") <= p("p99") && p("p99") <= p("max"),
        "percentiles out of order: {l}"
    );
    // Validators 0..3 sit in us-east, us-west, eu-central, ap-northeast:
    // the closest two are 33 ms apart one way, and a commit takes at least
    // two validator-to-validator hops after a block carries the transfer.
    assert!(p("p50") >= 66.0, "faster than the relay allows: {l}");
    // The gateway's own report (the simulator's measure) is seen too, and
    // is bound by the same hops.
    assert!(run["gateway_samples"].as_u64().unwrap() > 0, "{run}");
    let gw = run["gateway_commit_ms"]["p50"].as_f64().unwrap();
    assert!(
        gw >= 66.0,
        "gateway commit faster than the relay allows: {run}"
    );
}

#[test]
fn a_tiny_bench_behind_the_relay_commits_with_consistent_percentiles() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let json = tmp.path().join("bench.json");
    let o = bench(
        tmp.path(),
        &[
            "--validators",
            "4",
            "--load",
            "80",
            "--duration",
            "2",
            "--latency",
            "world6",
            "--min-round-delay-ms",
            "0",
            "--json",
            path(&json),
        ],
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        out.contains("userspace relay"),
        "names its emulation: {out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let run = &v["runs"][0];
    let rate = run["committed_tx_per_s"].as_f64().unwrap();
    assert!(rate > 0.0, "committed nothing: {run}");
    assert!(run["confirmed"].as_u64().unwrap() > 0);
    latencies_are_ordered_and_bound_by_the_relay(run);
    let cpu = run["cpu_cores"]["validators"].as_array().unwrap();
    assert_eq!(cpu.len(), 4);
    assert!(cpu.iter().all(|c| c.as_f64().unwrap() > 0.0), "{cpu:?}");
    let waited = run["cpu_cores"]["validators_waiting"].as_f64().unwrap();
    assert!(waited >= 0.0, "{run}");
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
}

#[test]
fn sizes_the_machine_cannot_run_are_refused_up_front() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, why) in [
        (&["--validators", "1000"][..], "1000 validators"),
        (
            &["--validators", "4", "--load", "1000000"][..],
            "offered load",
        ),
        (&["--duration", "0"][..], "--duration 0"),
        (&["--clients", "1000"][..], "--clients 1000"),
        (&["--load=-5"][..], "offered load"),
        (&["--min-round-delay-ms", "5000"][..], "min-round-delay"),
        (
            &["--compare-sim", "--min-round-delay-ms", "50"][..],
            "min-round-delay-ms 50",
        ),
        (
            &["--load", "10000", "--duration", "600"][..],
            "measured submissions",
        ),
    ] {
        let t0 = Instant::now();
        let o = bench(tmp.path(), args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{args:?} was accepted");
        assert!(
            err.contains("refused") && err.contains(why),
            "{args:?}: {err}"
        );
        assert!(t0.elapsed() < Duration::from_secs(5), "refused late");
    }
    let o = bench(tmp.path(), &["--latency", "mars"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--latency"));
    assert!(leftovers(tmp.path()).is_empty());
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        !s.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

#[test]
fn sigterm_half_way_stops_every_validator_and_removes_the_testnet() {
    let _serial = serial();
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "bench",
            "--validators",
            "4",
            "--load",
            "50",
            "--duration",
            "60",
        ])
        .env("TMPDIR", tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kills the bench (not its validators) if the test fails early; the
    // pids below are then reported.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stderr = child.stderr.take().unwrap();
    let mut child = Reap(child);
    let mut lines = std::io::BufReader::new(stderr).lines();
    let dir = loop {
        let line = lines.next().expect("bench printed its dir").unwrap();
        if let Some(d) = line.strip_prefix("bench: testnet in ") {
            break std::path::PathBuf::from(d);
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let pids: Vec<u32> = loop {
        let pids: Vec<u32> = (0..4)
            .filter_map(|k| std::fs::read_to_string(dir.join(format!("validator-{k}/pid"))).ok())
            .filter_map(|s| s.trim().parse().ok())
            .collect();
        if pids.len() == 4 && common::commit(&dir, "validator-0") > 0 {
            break pids;
        }
        assert!(Instant::now() < deadline, "validators did not start");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(pids.iter().all(|p| alive(*p)));
    let pid = rustix::process::Pid::from_raw(child.0.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "bench did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "an interrupted bench reports failure");
    let left: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    for p in &left {
        if let Some(p) = rustix::process::Pid::from_raw(*p as i32) {
            let _ = rustix::process::kill_process(p, rustix::process::Signal::KILL);
        }
    }
    assert!(left.is_empty(), "validators left running: {left:?}");
    assert!(!dir.exists(), "{} left behind", dir.display());
}
