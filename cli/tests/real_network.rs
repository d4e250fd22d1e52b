//! The whole promise with real processes on loopback: `testnet init` +
//! `up` (4 validators and 3 providers as separate OS processes, one provider
//! cheating on 30 % of its subtasks), `job submit` of a real Python script
//! over 30 records, one validator SIGKILLed mid-job and restarted from its
//! store, `job status` read mid-job, `testnet down`. Bounded: every wait has
//! a deadline, and a guard stops every process the test started even when
//! it fails.

// A test of real processes waits on the real clock.
#![allow(clippy::disallowed_methods)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{BIN, commit, idlegrid, kill, ok, path, status_json, wait_for};

/// Seeded randomness from the subtask's seed file: the same on every
/// machine, so traps pass and the merged output equals a local run that
/// reads the same seed (the local run below is given the same file).
const SCRIPT: &str = r#"import random, sys
chunk_seed = open("idlegrid_seed").read()
for line in sys.stdin:
    line = line.strip()
    if line:
        n = int(line)
        rng = random.Random(n)
        print(n, n * n, sum(i * i for i in range(n)), sorted({n % 7, n % 5, n % 3}), rng.randint(0, 99), len(chunk_seed))
"#;

/// How many subtasks of `per` records each the merged output replaced by
/// the testing cheater's garbage (`made up`), if every other line equals
/// the local run's, in order; otherwise what differs.
fn matches_but_for_escaped_cheats(merged: &str, local: &str, per: usize) -> Result<usize, String> {
    let mut want = local.lines();
    let mut escaped = 0;
    for (i, line) in merged.lines().enumerate() {
        if line == "made up" {
            escaped += 1;
            let skipped = want.by_ref().take(per).count();
            if skipped != per {
                return Err(format!("line {i}: garbage past the local output's end"));
            }
        } else if want.next() != Some(line) {
            return Err(format!("line {i} differs: {line:?}"));
        }
    }
    match want.next() {
        None => Ok(escaped),
        Some(l) => Err(format!("merged output ends before local line {l:?}")),
    }
}

/// Stops the testnet when dropped.
struct Testnet(PathBuf);

impl Drop for Testnet {
    fn drop(&mut self) {
        let _ = idlegrid(&["testnet", "down", "--dir", path(&self.0)]);
    }
}

fn python_available() -> bool {
    Command::new("python3")
        .arg("-c")
        .arg("pass")
        .status()
        .is_ok_and(|s| s.success())
}

fn submit(dir: &Path, script: &Path, inputs: &Path, out: &Path) -> Child {
    Command::new(BIN)
        .args([
            "job",
            "submit",
            path(script),
            "--inputs",
            path(inputs),
            "--dir",
            path(dir),
        ])
        .args([
            "--out",
            path(out),
            "--split",
            "10",
            "--lots",
            "3",
            "--timeout",
            "120",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn job submit")
}

#[test]
fn a_python_job_runs_on_real_processes_catches_the_cheater_and_survives_a_validator_kill() {
    if !python_available() {
        eprintln!("python3 missing: skipped");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    // Validators on four different loopback addresses, as if on four hosts.
    ok(&[
        "testnet",
        "init",
        "--dir",
        path(&dir),
        "--validators",
        "4",
        "--providers",
        "3",
        "--clients",
        "1",
        "--hosts",
        "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5",
        "--testing-cheater",
        "0:300000:deny",
    ]);
    let net = std::fs::read_to_string(dir.join("network.toml")).expect("network file");
    for host in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        assert!(net.contains(host), "a node listens on {host}");
    }
    let _guard = Testnet(dir.clone());
    ok(&["testnet", "up", "--dir", path(&dir)]);
    // A second `up` on a running dir says so.
    let again = idlegrid(&["testnet", "up", "--dir", path(&dir)]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already up"));
    wait_for(Duration::from_secs(30), "validators committing", || {
        (0..4).all(|v| commit(&dir, &format!("validator-{v}")) > 5)
    });

    let script = tmp.path().join("job.py");
    let inputs = tmp.path().join("records.txt");
    let out = tmp.path().join("out.txt");
    std::fs::write(&script, SCRIPT).expect("write script");
    let records: String = (1..=30).map(|i| format!("{}\n", i * 37 % 101)).collect();
    std::fs::write(&inputs, &records).expect("write records");
    let mut job = submit(&dir, &script, &inputs, &out);

    // Mid-job: the status command shows the submission's lots.
    let jobs = dir.join("client-0").join("jobs");
    let mut id = String::new();
    wait_for(
        Duration::from_secs(60),
        "the submission's status file",
        || {
            let Some(f) = std::fs::read_dir(&jobs).ok().and_then(|mut d| d.next()) else {
                return false;
            };
            let name = f
                .expect("dir entry")
                .file_name()
                .into_string()
                .expect("utf-8");
            id = name.trim_end_matches(".json").to_string();
            true
        },
    );
    let status = ok(&["job", "status", &id, "--dir", path(&dir)]);
    assert!(
        status.contains("\"lots\""),
        "job status shows lots: {status}"
    );

    // Kill validator-1 without warning, then restart it from its store.
    let before = commit(&dir, "validator-1");
    kill(&dir, "validator-1");
    std::thread::sleep(Duration::from_millis(500));
    idlegrid_cli::testnet::start_node(&dir, Path::new(BIN), "validator-1").expect("restart");
    let log = dir.join("validator-1").join("node.log");

    let done = wait_child(&mut job, Duration::from_secs(150));
    let stderr = {
        use std::io::Read;
        let mut s = String::new();
        job.stderr
            .take()
            .expect("piped")
            .read_to_string(&mut s)
            .expect("read stderr");
        s
    };
    assert!(done, "job submit finished:\n{stderr}");
    assert!(
        job.wait().expect("status").success(),
        "job verified:\n{stderr}"
    );

    // The merged output is what the script prints run locally, but for
    // what entrapment does not promise: a cheated subtask in a lot whose
    // every trap the cheater happened to answer (at a 30 % cheat rate and
    // the 12 traps in 16 subtasks a new provider gets, about 1 % of its
    // lots). Such a subtask's garbage stands in for its three records;
    // nothing else may differ (order, completeness, honest outputs).
    std::fs::write(tmp.path().join("idlegrid_seed"), "0".repeat(32)).expect("seed file");
    let local = Command::new("python3")
        .current_dir(tmp.path())
        .arg(&script)
        .stdin(std::fs::File::open(&inputs).expect("records"))
        .output()
        .expect("local run");
    let merged = std::fs::read_to_string(&out).expect("output");
    let local = String::from_utf8(local.stdout).expect("utf-8");
    let escaped = matches_but_for_escaped_cheats(&merged, &local, 3)
        .unwrap_or_else(|e| panic!("{e}\nmerged:\n{merged}\nlocal:\n{local}\n{stderr}"));
    assert!(
        escaped <= 4,
        "{escaped} cheated subtasks escaped:\n{stderr}"
    );
    assert!(
        stderr.contains("accused"),
        "the cheater was caught:\n{stderr}"
    );
    // It denied: validators on the referee committee re-ran its traps.
    let referees = (0..4)
        .filter(|v| {
            std::fs::read_to_string(dir.join(format!("validator-{v}")).join("node.log"))
                .is_ok_and(|l| l.contains("re-running"))
        })
        .count();
    assert!(
        referees >= 2,
        "a majority of the referee committee re-ran the traps"
    );
    assert!(
        stderr.contains("re-posting"),
        "its lots ran again elsewhere:\n{stderr}"
    );

    // The restarted validator recovered what it had committed and caught up.
    let restarted = std::fs::read_to_string(&log).expect("log");
    assert!(restarted.contains("opened store"), "{restarted}");
    wait_for(
        Duration::from_secs(60),
        "the restarted validator to catch up",
        || commit(&dir, "validator-1") > before + 10,
    );

    // Every validator: the cheater slashed, supply conserved, same balances.
    wait_for(
        Duration::from_secs(30),
        "every validator to see the slash",
        || {
            (0..4).all(|v| {
                status_json(&dir, &format!("validator-{v}"))
                    .is_some_and(|s| s["accounts"]["provider-0"]["bonded"].as_str() != Some("8000"))
            })
        },
    );
    // Status files are written every half second at each validator's own
    // commit: once the job has settled they converge.
    let read = || -> Vec<serde_json::Value> {
        (0..4)
            .map(|v| status_json(&dir, &format!("validator-{v}")).expect("status"))
            .collect()
    };
    wait_for(
        Duration::from_secs(30),
        "validators to agree on balances",
        || {
            let v = read();
            v.iter().all(|s| s["accounts"] == v[0]["accounts"])
        },
    );
    let views = read();
    for s in &views {
        let n = |k: &str| s[k].as_str().expect(k).parse::<u128>().expect("number");
        assert_eq!(
            n("total_supply") + n("burned"),
            n("initial_supply"),
            "supply conserved: {s}"
        );
        assert_eq!(
            s["accounts"], views[0]["accounts"],
            "validators agree on balances"
        );
    }

    let up = ok(&["testnet", "status", "--dir", path(&dir)]);
    assert_eq!(up.matches("up (pid").count(), 7, "{up}");
    assert!(
        up.contains("client-0") && up.contains("balance"),
        "every account's balance: {up}"
    );
    let stopped = ok(&["testnet", "down", "--dir", path(&dir)]);
    assert!(stopped.contains("stopped 7 nodes"), "{stopped}");
    for node in [
        "validator-0",
        "validator-1",
        "validator-2",
        "validator-3",
        "provider-0",
    ] {
        assert_eq!(
            idlegrid_cli::testnet::running(&dir, node),
            None,
            "{node} is gone"
        );
    }
}

fn wait_child(c: &mut Child, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if c.try_wait().expect("try_wait").is_some() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = c.kill();
    false
}

#[test]
fn bad_configs_get_one_clear_message_naming_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    ok(&[
        "testnet",
        "init",
        "--dir",
        path(&dir),
        "--validators",
        "1",
        "--providers",
        "1",
    ]);
    // init twice refuses.
    let twice = idlegrid(&["testnet", "init", "--dir", path(&dir)]);
    assert!(String::from_utf8_lossy(&twice.stderr).contains("already exists"));
    // An unknown field.
    let cfg = dir.join("provider-0").join("node.toml");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(&cfg, format!("colour = \"blue\"\n{text}")).expect("write");
    let e = idlegrid(&["node", "run", "--config", path(&cfg)]);
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(
        !e.status.success() && msg.contains("node.toml") && msg.contains("colour"),
        "{msg}"
    );
    std::fs::write(&cfg, text).expect("restore");
    // A DAG window too small to be safe, in the network file or at init.
    let net = dir.join("network.toml");
    let text = std::fs::read_to_string(&net).expect("network file");
    std::fs::write(
        &net,
        text.replace("dag_window_rounds = 1000", "dag_window_rounds = 5"),
    )
    .expect("write");
    let e = idlegrid(&["node", "run", "--config", path(&cfg)]);
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(
        !e.status.success() && msg.contains("network.toml") && msg.contains("dag_window_rounds"),
        "{msg}"
    );
    std::fs::write(&net, text).expect("restore");
    let other = tmp.path().join("other");
    let e = idlegrid(&[
        "testnet",
        "init",
        "--dir",
        path(&other),
        "--dag-window",
        "5",
    ]);
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(
        !e.status.success() && msg.contains("dag_window_rounds"),
        "{msg}"
    );
    // A key file that is not this node's.
    std::fs::copy(
        dir.join("validator-0").join("key"),
        dir.join("provider-0").join("key.other"),
    )
    .expect("copy key");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(
        &cfg,
        text.replace("key_file = \"key\"", "key_file = \"key.other\""),
    )
    .expect("write");
    let e = idlegrid(&["node", "run", "--config", path(&cfg)]);
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(!e.status.success() && msg.contains("key.other"), "{msg}");
    // Scripts that fail or are not deterministic are refused before anything
    // is posted (no node needs to run for that).
    if python_available() {
        let inputs = tmp.path().join("in.txt");
        std::fs::write(&inputs, "1\n2\n3\n4\n").expect("write");
        for (script, says) in [
            ("import sys\nraise SystemExit(3)\n", "fails in the sandbox"),
            (
                "import random, sys\nfor l in sys.stdin: print(random.random())\n",
                "different results",
            ),
        ] {
            let file = tmp.path().join("s.py");
            std::fs::write(&file, script).expect("write");
            let e = idlegrid(&[
                "job",
                "submit",
                path(&file),
                "--inputs",
                path(&inputs),
                "--dir",
                path(&dir),
                "--timeout",
                "30",
            ]);
            let msg = String::from_utf8_lossy(&e.stderr);
            assert!(!e.status.success() && msg.contains(says), "{msg}");
        }
    }
    // A network that is not up: one message naming the network file and
    // the addresses tried, not a hang.
    if python_available() {
        let inputs = tmp.path().join("in2.txt");
        std::fs::write(&inputs, "1\n2\n").expect("write");
        let file = tmp.path().join("ok.py");
        std::fs::write(&file, "import sys\nfor l in sys.stdin: print(l.strip())\n").expect("write");
        let e = idlegrid(&[
            "job",
            "submit",
            path(&file),
            "--inputs",
            path(&inputs),
            "--dir",
            path(&dir),
            "--timeout",
            "60",
        ]);
        let msg = String::from_utf8_lossy(&e.stderr);
        assert!(
            !e.status.success()
                && msg.contains("cannot reach the validators")
                && msg.contains("network.toml"),
            "{msg}"
        );
    }
    // A missing network file.
    let e = idlegrid(&[
        "job",
        "status",
        "1",
        "--config",
        path(&tmp.path().join("nope.toml")),
    ]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("nope.toml"));
}

/// Environments for real: providers advertise what their sandbox imports; a
/// job needing what nobody offers is refused at once with the missing
/// name; `provider offer` changes a running provider's price, slots and
/// features, and a job needing the new feature runs on that provider only.
#[test]
fn jobs_go_only_to_providers_whose_runtime_has_what_they_need() {
    if !python_available() {
        eprintln!("python3 missing: skipped");
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("net");
    ok(&["testnet", "init", "--dir", path(&dir), "--providers", "2"]);
    let _guard = Testnet(dir.clone());
    ok(&["testnet", "up", "--dir", path(&dir)]);
    wait_for(Duration::from_secs(30), "both offers listed", || {
        (0..2).all(|p| {
            status_json(&dir, &format!("provider-{p}"))
                .is_some_and(|s| s["offer"]["listed"] == true)
        })
    });
    let offered = status_json(&dir, "provider-0").expect("status")["offer"]["features"].clone();
    assert!(
        offered
            .as_array()
            .expect("features")
            .iter()
            .any(|f| f == "python3"),
        "the sandbox's interpreter is advertised: {offered}"
    );

    let script = tmp.path().join("job.py");
    let inputs = tmp.path().join("records.txt");
    std::fs::write(
        &script,
        "import sys\nfor l in sys.stdin: print(l.strip()[::-1])\n",
    )
    .expect("script");
    std::fs::write(&inputs, "abc\ndef\nghi\njkl\n").expect("records");
    let submit = |requires: &str| {
        idlegrid(&[
            "job",
            "submit",
            path(&script),
            "--inputs",
            path(&inputs),
            "--dir",
            path(&dir),
            "--split",
            "2",
            "--lots",
            "1",
            "--timeout",
            "90",
            "--requires",
            requires,
        ])
    };
    let refused = submit("idlegrid_fakepkg");
    let msg = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{msg}");
    assert!(
        msg.contains("nobody can run this job") && msg.contains("idlegrid_fakepkg"),
        "{msg}"
    );

    let cfg = dir.join("provider-1").join("node.toml");
    let listed = ok(&[
        "provider",
        "offer",
        "--config",
        path(&cfg),
        "--price",
        "700",
        "--capacity",
        "3",
        "--features",
        "python3,idlegrid_fakepkg",
    ]);
    assert!(listed.contains("3 slots at 700/s"), "{listed}");
    let s = status_json(&dir, "provider-1").expect("status");
    assert_eq!(s["offer"]["capacity"], 3);
    // A provider killed and restarted keeps its offer and works again: it
    // learns its account's nonce and its last sealed ask number from the
    // ledger (its new process starts both at 0).
    kill(&dir, "provider-1");
    idlegrid_cli::testnet::start_node(&dir, Path::new(BIN), "provider-1").expect("restart");

    let ran = submit("idlegrid_fakepkg");
    let msg = String::from_utf8_lossy(&ran.stderr);
    let p1_log =
        || std::fs::read_to_string(dir.join("provider-1").join("node.log")).unwrap_or_default();
    assert!(ran.status.success(), "{msg}\nprovider-1:\n{}", p1_log());
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "cba\nfed\nihg\nlkj\n");
    assert!(msg.contains("providers [provider-1]"), "{msg}");
    // The wallet, over the light protocol: holdings, then a payment.
    let balance = |s: &str| -> u128 {
        let v = s.split("balance ").nth(1).expect("a balance");
        v.split(',')
            .next()
            .expect("number")
            .parse()
            .expect("digits")
    };
    let before = balance(&ok(&["account", "balance", "--dir", path(&dir)]));
    let paid = ok(&[
        "account",
        "pay",
        "--to",
        "provider-0",
        "--amount",
        "1000",
        "--dir",
        path(&dir),
    ]);
    assert_eq!(balance(&paid), before - 1_000, "{paid}");
    let broke = idlegrid(&[
        "account",
        "pay",
        "--to",
        "provider-0",
        "--amount",
        &(before * 10).to_string(),
        "--dir",
        path(&dir),
    ]);
    let msg = String::from_utf8_lossy(&broke.stderr);
    assert!(!broke.status.success() && msg.contains("refused"), "{msg}");
    // A guest: a key the network file does not list, as an integrator's
    // program on another machine would hold, reads and moves its money.
    let key = tmp.path().join("alice.key");
    let alice = ok(&["key", "new", "--out", path(&key)]);
    let paid = ok(&[
        "account",
        "pay",
        "--to",
        alice.trim(),
        "--amount",
        "5000",
        "--dir",
        path(&dir),
    ]);
    assert_eq!(balance(&paid), before - 6_000, "{paid}");
    let net_file = dir.join("network.toml");
    let guest = ["--network", path(&net_file), "--key", path(&key)];
    let seen = ok(&[&["account", "balance"][..], &guest].concat());
    assert!(
        seen.starts_with("guest-") && balance(&seen) == 5_000,
        "{seen}"
    );
    let sent = ok(&[
        &["account", "pay", "--to", "provider-0", "--amount", "1200"][..],
        &guest,
    ]
    .concat());
    assert_eq!(balance(&sent), 3_800, "{sent}");
    // A bad offer is refused before it reaches the provider.
    let bad = idlegrid(&[
        "provider",
        "offer",
        "--config",
        path(&cfg),
        "--price",
        "1",
        "--capacity",
        "99",
    ]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("capacity 1..=16"));
}

#[test]
fn only_an_escaped_cheat_may_differ_from_the_local_run() {
    let local = "1\n2\n3\n4\n5\n6\n";
    assert_eq!(matches_but_for_escaped_cheats(local, local, 3), Ok(0));
    let one = "1\n2\n3\nmade up\n";
    assert_eq!(matches_but_for_escaped_cheats(one, local, 3), Ok(1));
    for bad in [
        "1\n2\n3\n4\n5\n",
        "1\n2\n3\n4\n6\n5\n",
        "made up\nmade up\nmade up\n",
        "1\n2\n3\n4\n5\n6\n7\n",
    ] {
        assert!(
            matches_but_for_escaped_cheats(bad, local, 3).is_err(),
            "{bad:?}"
        );
    }
}
