//! Helpers the real-process tests share: run the `idlegrid` binary, read a
//! node's status file, wait with a deadline, SIGKILL a node.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_idlegrid");

/// A temp path as the UTF-8 string a command line takes.
pub fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Runs `idlegrid args…`.
pub fn idlegrid(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run idlegrid")
}

/// Runs `idlegrid args…`, which must succeed; its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = idlegrid(args);
    assert!(
        o.status.success(),
        "idlegrid {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A node's `status.json`, if it wrote one.
pub fn status_json(dir: &Path, node: &str) -> Option<serde_json::Value> {
    let s = std::fs::read_to_string(dir.join(node).join("status.json")).ok()?;
    serde_json::from_str(&s).ok()
}

/// A validator's last commit index (0 before its first status).
pub fn commit(dir: &Path, node: &str) -> u64 {
    status_json(dir, node)
        .and_then(|s| s["commit"].as_u64())
        .unwrap_or(0)
}

/// Waits until `f` holds, at most `limit`.
pub fn wait_for(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGKILLs a running node and waits until it is gone.
pub fn kill(dir: &Path, node: &str) {
    assert!(
        idlegrid_cli::testnet::signal(dir, node, rustix::process::Signal::KILL),
        "{node} was running"
    );
    wait_for(Duration::from_secs(10), "the killed process to go", || {
        idlegrid_cli::testnet::running(dir, node).is_none()
    });
}
