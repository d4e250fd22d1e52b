//! A sweep split into shards and merged gives exactly the local sweep's
//! outputs; merging anything but every shard of one sweep, each once, is
//! one clear error that writes nothing.

mod cli_support;

use std::path::{Path, PathBuf};

use cli_support::{bin, stdout_ok, tmp};

/// A small, quick marketplace (every job settles at every seed used).
const TINY: &str = "name = \"tiny\"\nduration_ms = 40_000\nmachine = \"marketplace\"\n\
[nodes]\ncount = 4\n[marketplace]\nactive_secs = 6\n\
[marketplace.providers]\ncount = 12\n[marketplace.clients]\ncount = 4\njob_interval_ms = 1_000\n";

const METRICS: &str = "market.clearing_price.mean,market.volume,jobs.completed,events";

fn sweep(scen: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "sweep",
        scen.to_str().unwrap(),
        "--param",
        "marketplace.mechanism",
        "--values",
        "k_double,pay_as_ask",
        "--param",
        "marketplace.providers.count",
        "--values",
        "8,12",
        "--seeds",
        "1..4",
        "--metrics",
        METRICS,
        "--log-y",
        "--series",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn sorted_lines(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// A fresh directory `name` holding `tiny.toml`.
fn scenario(name: &str) -> (PathBuf, PathBuf) {
    let dir = tmp(name);
    let scen = dir.join("tiny.toml");
    std::fs::write(&scen, TINY).unwrap();
    (dir, scen)
}

/// Every file under `dir` (one level of subdirectories: `series/`).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            v.push(p);
        }
    }
    v.sort();
    v
}

#[test]
fn three_shards_merged_equal_the_local_sweep() {
    let (dir, scen) = scenario("shards");
    let local = dir.join("local");
    stdout_ok(
        bin()
            .args(sweep(&scen, &["--out", local.to_str().unwrap()]))
            .output()
            .unwrap(),
    );
    let shard_dirs: Vec<PathBuf> = (1..=3).map(|i| dir.join(format!("shard-{i}"))).collect();
    for (i, d) in shard_dirs.iter().enumerate() {
        let shard = format!("{}/3", i + 1);
        let args = sweep(
            &scen,
            &[
                "--shard",
                &shard,
                "--out",
                d.to_str().unwrap(),
                "--jobs",
                "1",
            ],
        );
        let text = stdout_ok(bin().args(args).output().unwrap());
        assert!(text.contains("runs (shard"), "{text}");
    }
    let merged = dir.join("merged");
    let mut args = vec!["sweep".to_string(), "merge".into()];
    // Shards in any order.
    args.extend(shard_dirs.iter().rev().map(|d| d.display().to_string()));
    args.extend(["--out".into(), merged.display().to_string()]);
    stdout_ok(bin().args(&args).output().unwrap());

    let (lf, mf) = (files(&local), files(&merged));
    let names = |root: &Path, v: &[PathBuf]| {
        v.iter()
            .map(|p| p.strip_prefix(root).unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&local, &lf), names(&merged, &mf));
    // sweep.csv, summary.csv, 4 metric plots, 4 heat maps (two fields),
    // price_over_time.svg, 12 series.
    assert_eq!(lf.len(), 2 + 4 + 4 + 1 + 12, "{lf:?}");
    let heat = std::fs::read_to_string(local.join("heatmap_market_volume.svg")).unwrap();
    for label in [
        "k_double",
        "pay_as_ask",
        "marketplace.providers.count",
        "(3 seeds)",
    ] {
        assert!(heat.contains(label), "{label} missing from the heat map");
    }
    for (l, m) in lf.iter().zip(&mf) {
        assert_eq!(sorted_lines(l), sorted_lines(m), "{}", l.display());
        assert_eq!(
            std::fs::read(l).unwrap(),
            std::fs::read(m).unwrap(),
            "{}",
            l.display()
        );
    }
    let csv = std::fs::read_to_string(local.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 2 * 3, "{csv}");
    assert!(csv.lines().skip(1).all(|l| l.contains(",ok,")), "{csv}");
}

#[test]
fn merging_the_wrong_shards_is_one_error_and_writes_nothing() {
    let (dir, scen) = scenario("badmerge");
    let shard = |i: u32, seeds: &str| {
        let d = dir.join(format!("s{i}-{seeds}"));
        let mut args = sweep(
            &scen,
            &["--shard", &format!("{i}/2"), "--out", d.to_str().unwrap()],
        );
        let at = args.iter().position(|a| a == "1..4").unwrap();
        args[at] = seeds.to_string();
        stdout_ok(bin().args(args).output().unwrap());
        d.display().to_string()
    };
    let (a1, a2, b2) = (shard(1, "1..3"), shard(2, "1..3"), shard(2, "1..4"));
    let out = dir.join("merged");
    for (dirs, want) in [
        (vec![a1.clone()], "missing shard(s) 2 of 2"),
        (vec![a1.clone(), a2.clone(), a2.clone()], "given twice"),
        (vec![a1.clone(), b2.clone()], "another sweep"),
    ] {
        let mut args = vec!["sweep".to_string(), "merge".into()];
        args.extend(dirs);
        args.extend(["--out".into(), out.display().to_string()]);
        let r = bin().args(&args).output().unwrap();
        let err = String::from_utf8(r.stderr).unwrap();
        assert_eq!(r.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "{want}: {err}");
        assert!(!out.exists(), "{want}: wrote {}", out.display());
    }
    // A truncated shard CSV is refused too.
    let csv = Path::new(&a2).join("sweep.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let cut: Vec<&str> = text.lines().collect();
    std::fs::write(&csv, cut[..cut.len() - 1].join("\n") + "\n").unwrap();
    let r = bin()
        .args(["sweep", "merge", &a1, &a2, "--out", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(!out.exists());
}

#[test]
fn bad_sweeps_fail_before_any_run() {
    let (dir, scen) = scenario("badsweep");
    for (extra, want) in [
        (
            vec!["--metrics", "market.volumme"],
            "unknown metric `market.volumme`",
        ),
        (vec!["--shard", "4/3"], "I must be in 1..=3"),
        (vec!["--shard", "1/13"], "at most 12 shards"),
        (
            vec!["--param", "marketplace.nosuch", "--values", "1"],
            "`marketplace.nosuch`",
        ),
    ] {
        let mut args = sweep(&scen, &[]);
        if extra[0] == "--metrics" {
            let at = args.iter().position(|a| a == METRICS).unwrap();
            args[at] = extra[1].to_string();
        } else {
            args.extend(extra.iter().map(|s| s.to_string()));
        }
        args.extend(["--out".into(), dir.join("never").display().to_string()]);
        let r = bin().args(&args).output().unwrap();
        let err = String::from_utf8(r.stderr).unwrap();
        assert_eq!(r.status.code(), Some(2), "{want}: {err}");
        assert!(err.contains(want), "{want}: {err}");
        assert!(
            String::from_utf8(r.stdout).unwrap().is_empty(),
            "{want}: a run started"
        );
        assert!(!dir.join("never").exists());
    }
}

#[test]
fn slurm_writes_an_array_and_a_dependent_merge() {
    let (dir, scen) = scenario("slurm");
    let job = dir.join("job");
    let text = stdout_ok(
        bin()
            .args(sweep(
                &scen,
                &["--slurm", job.to_str().unwrap(), "--shards", "4"],
            ))
            .output()
            .unwrap(),
    );
    assert!(text.contains("12 runs in 4 array tasks"), "{text}");
    let array = std::fs::read_to_string(job.join("sweep.sbatch")).unwrap();
    assert!(array.contains("#SBATCH --array=1-4"), "{array}");
    assert!(
        array.contains("--shard \"${SLURM_ARRAY_TASK_ID}/4\""),
        "{array}"
    );
    let submit = std::fs::read_to_string(job.join("submit.sh")).unwrap();
    assert!(submit.contains("--dependency=afterok:"), "{submit}");
    assert_eq!(
        std::fs::read_to_string(job.join("scenario.toml")).unwrap(),
        TINY
    );
    assert!(!job.join("shard-1").exists(), "nothing runs with --slurm");
}
