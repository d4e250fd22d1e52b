//! A sweep as a Slurm job array (`idlegrid-sim sweep … --slurm DIR`):
//! `sweep.sbatch` runs shard `$SLURM_ARRAY_TASK_ID/N` per array task into
//! `DIR/shard-<i>`, `merge.sbatch` merges them into `DIR/merged`, and
//! `submit.sh` submits both, the merge with `--dependency=afterok:` on the
//! array. The scenario is copied to `DIR/scenario.toml`, so every task
//! reads the same text (and the shards share one sweep digest); `DIR` and
//! the binary must be on a file system every node sees.

use std::path::{Path, PathBuf};

use super::SweepError;

/// What the scripts run.
#[derive(Debug, Clone)]
pub struct SlurmJob {
    /// The `idlegrid-sim` binary (absolute).
    pub binary: PathBuf,
    /// The scenario text (written to `DIR/scenario.toml`).
    pub scenario_text: String,
    /// The sweep's arguments after the scenario (`--param`, `--values`,
    /// `--seeds`, `--metrics`, `--log-x`, …), without `--out`, `--shard`,
    /// `--jobs` or `--slurm`.
    pub args: Vec<String>,
    /// Array tasks (shards).
    pub shards: u32,
    /// CPUs per array task (the shard's `--jobs`).
    pub cpus_per_task: u32,
    /// Output directory (absolute).
    pub dir: PathBuf,
}

/// Quotes `s` for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn quoted(p: &Path) -> String {
    shell_quote(&p.display().to_string())
}

impl SlurmJob {
    /// The array script.
    pub fn array_script(&self) -> String {
        let dir = quoted(&self.dir);
        let scenario = quoted(&self.dir.join("scenario.toml"));
        let args: Vec<String> = self.args.iter().map(|a| shell_quote(a)).collect();
        format!(
            "#!/bin/bash\n\
             # One idlegrid-sim sweep shard per array task (written by `sweep --slurm`).\n\
             #SBATCH --job-name=idlegrid-sweep\n\
             #SBATCH --array=1-{n}\n\
             #SBATCH --cpus-per-task={c}\n\
             #SBATCH --output={dir}/logs/shard-%a.out\n\
             set -euo pipefail\n\
             exec {bin} sweep {scenario} {args} \\\n    \
             --jobs \"${{SLURM_CPUS_PER_TASK:-{c}}}\" \\\n    \
             --shard \"${{SLURM_ARRAY_TASK_ID}}/{n}\" \\\n    \
             --out {dir}/shard-\"${{SLURM_ARRAY_TASK_ID}}\"\n",
            n = self.shards,
            c = self.cpus_per_task,
            bin = quoted(&self.binary),
            args = args.join(" "),
        )
    }

    /// The merge script.
    pub fn merge_script(&self) -> String {
        let dir = quoted(&self.dir);
        let shards: Vec<String> = (1..=self.shards)
            .map(|i| format!("{dir}/shard-{i}"))
            .collect();
        format!(
            "#!/bin/bash\n\
             # Merges the shards into the sweep's CSVs and plots (after the array).\n\
             #SBATCH --job-name=idlegrid-sweep-merge\n\
             #SBATCH --output={dir}/logs/merge.out\n\
             set -euo pipefail\n\
             exec {bin} sweep merge {shards} --out {dir}/merged\n",
            bin = quoted(&self.binary),
            shards = shards.join(" "),
        )
    }

    /// The submission script (prints the two job ids).
    pub fn submit_script(&self) -> String {
        let dir = quoted(&self.dir);
        format!(
            "#!/bin/sh\n\
             # Submits the sweep's job array, then its merge once every task succeeded.\n\
             set -eu\n\
             array=$(sbatch --parsable {dir}/sweep.sbatch)\n\
             array=${{array%%;*}}\n\
             merge=$(sbatch --parsable --dependency=afterok:\"$array\" {dir}/merge.sbatch)\n\
             merge=${{merge%%;*}}\n\
             echo \"array job $array ({n} tasks), merge job $merge -> {dir}/merged\"\n",
            n = self.shards,
        )
    }

    /// Writes `scenario.toml`, the three scripts and `logs/` into the
    /// directory; returns the files.
    pub fn write(&self) -> Result<Vec<PathBuf>, SweepError> {
        let io = |p: &Path, e: std::io::Error| SweepError::Io(format!("{}: {e}", p.display()));
        let logs = self.dir.join("logs");
        std::fs::create_dir_all(&logs).map_err(|e| io(&logs, e))?;
        let files = [
            ("scenario.toml", self.scenario_text.clone(), false),
            ("sweep.sbatch", self.array_script(), true),
            ("merge.sbatch", self.merge_script(), true),
            ("submit.sh", self.submit_script(), true),
        ];
        let mut written = Vec::new();
        for (name, text, exec) in files {
            let path = self.dir.join(name);
            std::fs::write(&path, text).map_err(|e| io(&path, e))?;
            if exec {
                set_executable(&path).map_err(|e| io(&path, e))?;
            }
            written.push(path);
        }
        Ok(written)
    }
}

#[cfg(unix)]
fn set_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn set_executable(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_every_shard_and_the_dependency() {
        let job = SlurmJob {
            binary: "/opt/idlegrid sim/idlegrid-sim".into(),
            scenario_text: "name = \"x\"".into(),
            args: vec![
                "--param".into(),
                "a.b".into(),
                "--values".into(),
                "1,'2'".into(),
            ],
            shards: 4,
            cpus_per_task: 2,
            dir: "/shared/sw".into(),
        };
        let a = job.array_script();
        assert!(a.contains("#SBATCH --array=1-4\n"), "{a}");
        assert!(a.contains("'/opt/idlegrid sim/idlegrid-sim' sweep /shared/sw/scenario.toml"));
        assert!(a.contains(r"--values '1,'\''2'\'''"), "{a}");
        assert!(a.contains("--shard \"${SLURM_ARRAY_TASK_ID}/4\""), "{a}");
        let m = job.merge_script();
        assert!(m.contains("/shared/sw/shard-1 /shared/sw/shard-2 /shared/sw/shard-3 /shared/sw/shard-4 --out /shared/sw/merged"), "{m}");
        assert!(
            job.submit_script()
                .contains("--dependency=afterok:\"$array\"")
        );
    }
}
