//! Durable validators as real processes: 4 validators on loopback, each
//! over its redb store and the encrypted TCP transport, while a wallet
//! keeps paying. One validator is SIGKILLed at random points 20 times and
//! restarted from its store; another loses its store, and another is down
//! for longer than its peers' DAG window: both catch up by state sync.
//! After every restart the test checks, from the validators' status files:
//! no equivocation evidence against anyone, every payment acknowledged as
//! committed before the kill is in the restarted validator's ledger, and
//! its state digest equals the others' at a common commit index. Bounded:
//! every wait has a deadline, and a guard stops every process the test
//! started even when it fails.

// A test of real processes waits on the real clock.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, commit, idlegrid, kill, ok, path, status_json as status};
const VALIDATORS: [&str; 4] = ["validator-0", "validator-1", "validator-2", "validator-3"];

/// Stops the testnet (and the payer) when dropped.
struct Testnet {
    _serial: std::sync::MutexGuard<'static, ()>,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    payer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Testnet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(p) = self.payer.take() {
            let _ = p.join();
        }
        let _ = idlegrid(&["testnet", "down", "--dir", path(&self.dir)]);
    }
}

fn log(dir: &Path, node: &str) -> String {
    std::fs::read_to_string(dir.join(node).join("node.log")).unwrap_or_default()
}

/// Waits until `f` holds, at most `limit`; the failure names `what` and
/// the validators' logs' tails.
fn wait_for(dir: &Path, limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        if start.elapsed() > limit {
            let tails: Vec<String> = VALIDATORS
                .iter()
                .map(|v| {
                    let l = log(dir, v);
                    let tail: Vec<&str> = l.lines().rev().take(8).collect();
                    format!("--- {v} (commit {}):\n{}", commit(dir, v), tail.join("\n"))
                })
                .collect();
            panic!("timed out waiting for {what}\n{}", tails.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn restart(dir: &Path, node: &str) {
    idlegrid_cli::testnet::start_node(dir, Path::new(BIN), node).expect("restart");
}

/// A balance in a validator's status.
fn balance(s: &serde_json::Value, who: &str) -> u128 {
    s["accounts"][who]["balance"]
        .as_str()
        .and_then(|b| b.parse().ok())
        .unwrap_or_else(|| panic!("no balance of {who} in {s}"))
}

/// The checks after a restart of `node` (see the module docs): it caught
/// up past `target`, holds every payment acknowledged before its kill,
/// agrees with every other validator on the state at a common commit, and
/// nobody holds equivocation evidence.
fn check_restarted(dir: &Path, node: &str, target: u64, acked: u64, initial: u128) {
    wait_for(
        dir,
        Duration::from_secs(60),
        "the restarted validator to catch up",
        || commit(dir, node) > target,
    );
    // Recovered only once it proposes again: a validator that lost its store
    // first learns its latest block from peers holding a quorum of the
    // stake (here all three). Taking another validator down before that is
    // two faults in a committee of four, and stalls it (seen in a CI dry
    // run that killed the next validator as soon as this one caught up).
    wait_for(
        dir,
        Duration::from_secs(60),
        "the restarted validator to propose again",
        || status(dir, node).is_some_and(|s| s["syncing_own_block"] == serde_json::json!(false)),
    );
    let s = status(dir, node).expect("status");
    assert!(
        balance(&s, "validator-0") >= initial + u128::from(acked),
        "{node} lost an acknowledged payment: {} < {initial} + {acked}",
        balance(&s, "validator-0")
    );
    wait_for(
        dir,
        Duration::from_secs(30),
        "a common commit digest",
        || common_digest(dir).is_some(),
    );
    for v in VALIDATORS {
        let s = status(dir, v).expect("status");
        assert_eq!(s["equivocators"], serde_json::json!([]), "{v}: {s}");
    }
}

/// The newest commit index whose state digest every validator reports,
/// checked equal at every validator; `None` while no index is common.
fn common_digest(dir: &Path) -> Option<u64> {
    let all: Vec<serde_json::Map<String, serde_json::Value>> = VALIDATORS
        .iter()
        .map(|v| status(dir, v).and_then(|s| s["recent_digests"].as_object().cloned()))
        .collect::<Option<_>>()?;
    let mut common: Vec<u64> = all[0]
        .keys()
        .filter(|k| all.iter().all(|m| m.contains_key(*k)))
        .filter_map(|k| k.parse().ok())
        .collect();
    common.sort_unstable();
    let index = *common.last()?;
    let key = index.to_string();
    for (v, m) in VALIDATORS.iter().zip(&all) {
        assert_eq!(
            m[&key], all[0][&key],
            "{v} has another state digest after commit {index}"
        );
    }
    Some(index)
}

/// Starts a testnet of 4 validators and one client, and a thread that
/// keeps paying 1 unit to validator-0, counting the acknowledged payments.
/// One testnet at a time: two of them (8 validators and two payers) on
/// 2 cores slow catch-up past the waits' deadlines.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn start(tmp: &Path, extra: &[&str]) -> (Testnet, Arc<AtomicU64>, u128) {
    let dir = tmp.join("net");
    let mut args = vec![
        "testnet",
        "init",
        "--dir",
        path(&dir),
        "--validators",
        "4",
        "--providers",
        "0",
        "--clients",
        "1",
    ];
    args.extend_from_slice(extra);
    let serial = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    ok(&args);
    ok(&["testnet", "up", "--dir", path(&dir)]);
    // The guard exists before the first wait: a failure stops every node.
    let mut net = Testnet {
        _serial: serial,
        dir: dir.clone(),
        stop: Arc::new(AtomicBool::new(false)),
        payer: None,
    };
    wait_for(&dir, Duration::from_secs(60), "the first commits", || {
        VALIDATORS.iter().all(|v| commit(&dir, v) > 3)
    });
    let initial = balance(&status(&dir, "validator-0").unwrap(), "validator-0");
    let acked = Arc::new(AtomicU64::new(0));
    net.payer = Some({
        let (dir, stop, acked) = (dir.clone(), Arc::clone(&net.stop), Arc::clone(&acked));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let o = idlegrid(&[
                    "account",
                    "pay",
                    "--to",
                    "validator-0",
                    "--amount",
                    "1",
                    "--dir",
                    path(&dir),
                    "--timeout",
                    "20",
                ]);
                if o.status.success() {
                    acked.fetch_add(1, Ordering::SeqCst);
                }
            }
        })
    });
    (net, acked, initial)
}

fn highest(dir: &Path) -> u64 {
    VALIDATORS.iter().map(|v| commit(dir, v)).max().unwrap_or(0)
}

/// A small deterministic generator for the kill points (xorshift).
struct Points(u64);

impl Points {
    fn next_ms(&mut self, lo: u64, hi: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        lo + self.0 % (hi - lo)
    }
}

#[test]
fn a_validator_killed_twenty_times_while_payments_flow_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (net, acked, initial) = start(tmp.path(), &[]);
    let dir = net.dir.clone();
    let mut points = Points(0x1d1e_971d);
    for round in 0..20 {
        let node = VALIDATORS[1 + round % 3];
        std::thread::sleep(Duration::from_millis(points.next_ms(100, 1_500)));
        let before = acked.load(Ordering::SeqCst);
        kill(&dir, node);
        // The commits holding the payments acknowledged so far show in the
        // live validators' status files within one status interval
        // (500 ms): read the target after it, or the restarted validator
        // may be "caught up" one commit short of the last of them (seen in
        // a CI dry run: 67 of 68 payments at a target read right away).
        std::thread::sleep(Duration::from_millis(600));
        let target = highest(&dir);
        std::thread::sleep(Duration::from_millis(points.next_ms(0, 1_000)));
        let logged = log(&dir, node).len();
        restart(&dir, node);
        check_restarted(&dir, node, target, before, initial);
        assert!(
            log(&dir, node)[logged..].contains("opened store"),
            "{node} did not reopen its store"
        );
    }
    assert!(acked.load(Ordering::SeqCst) > 0, "no payment went through");
}

#[test]
fn validators_behind_the_dag_window_or_without_a_store_catch_up_by_state_sync() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A DAG window of 40 rounds (2 s at 50 ms a round) and a checkpoint
    // every 20 commits: an outage of a few seconds is past the window.
    let (net, acked, initial) = start(
        tmp.path(),
        &["--dag-window", "40", "--checkpoint-every", "20"],
    );
    let dir = net.dir.clone();
    for (node, lose_store) in [("validator-2", true), ("validator-1", false)] {
        let before = acked.load(Ordering::SeqCst);
        kill(&dir, node);
        let at_kill = commit(&dir, node);
        let logged = log(&dir, node).len();
        if lose_store {
            std::fs::remove_file(dir.join(node).join("store.redb")).expect("remove the store");
        }
        // Each commit is at least one round: 80 commits are 80 rounds.
        wait_for(
            &dir,
            Duration::from_secs(60),
            "the others to move past the DAG window",
            || {
                VALIDATORS
                    .iter()
                    .filter(|v| **v != node)
                    .all(|v| commit(&dir, v) > at_kill + 80)
            },
        );
        let target = highest(&dir);
        restart(&dir, node);
        check_restarted(&dir, node, target, before, initial);
        let l = log(&dir, node)[logged..].to_string();
        // The lost store starts at commit 0, far below what peers keep: it
        // must sync. The long-down one may find the blocks it needs still
        // in a peer's store (pruning trails the window) and fetch them
        // instead; either way it caught up and agrees (checked above).
        assert!(
            !lose_store || l.contains("state sync: installed the snapshot"),
            "{node} did not catch up by state sync:\n{l}"
        );
        assert_eq!(l.contains("created store"), lose_store, "{l}");
    }
}
