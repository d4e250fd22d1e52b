//! Job splitting: one program mapped over a list of inputs as n subtasks,
//! outputs merged in order.
//!
//! The user's program is unchanged: a script that reads records from
//! standard input (or the file `input`) and writes one result per record to
//! standard output gives the same merged output whether it runs once over
//! all records or n times over contiguous chunks of them.

use futures::StreamExt;
use idlegrid_primitives::{Digest, Duration};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::task::{Applied, Containment, Isolation};
use crate::{ExecError, Execution, Executor, Limits, Program, Task, Usage};

/// Splits newline-terminated records into at most `n` contiguous chunks of
/// nearly equal record counts (the first chunks get one extra record). A
/// final record without a trailing newline is kept as is. Concatenating the
/// chunks gives back `input` exactly. Empty input gives no chunks.
pub fn split_lines(input: &[u8], n: usize) -> Vec<Vec<u8>> {
    let records: Vec<&[u8]> = input.split_inclusive(|&b| b == b'\n').collect();
    let n = n.clamp(1, records.len().max(1));
    let (base, extra) = (records.len() / n, records.len() % n);
    let mut chunks = Vec::with_capacity(n);
    let mut it = records.into_iter();
    for i in 0..n {
        let take = base + usize::from(i < extra);
        if take == 0 {
            break;
        }
        chunks.push(it.by_ref().take(take).flatten().copied().collect());
    }
    debug_assert_eq!(chunks.concat(), input);
    chunks
}

/// One task per input, all running `program`.
pub fn map_tasks(program: &Program, inputs: impl IntoIterator<Item = Vec<u8>>) -> Vec<Task> {
    inputs
        .into_iter()
        .map(|input| Task::new(program.clone(), input))
        .collect()
}

/// Concatenates outputs in order. Usage adds up (fuel, CPU, compute); wall
/// time is the longest part's (the parts run in parallel); isolation is the
/// weakest part's.
pub fn merge(parts: &[Execution]) -> Execution {
    let output: Vec<u8> = parts
        .iter()
        .flat_map(|p| p.output.iter().copied())
        .collect();
    let weakest = |f: fn(&Isolation) -> Applied| {
        let all: Vec<Applied> = parts.iter().map(|p| f(&p.usage.isolation)).collect();
        if all.contains(&Applied::No) {
            Applied::No
        } else if all.contains(&Applied::Yes) {
            Applied::Yes
        } else {
            Applied::NotNeeded
        }
    };
    let usage = Usage {
        fuel: parts
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.usage.fuel)),
        cpu_time: parts
            .iter()
            .fold(Duration::ZERO, |a, p| a.saturating_add(p.usage.cpu_time)),
        wall_time: parts
            .iter()
            .map(|p| p.usage.wall_time)
            .max()
            .unwrap_or(Duration::ZERO),
        compute_micros: parts
            .iter()
            .fold(0u64, |a, p| a.saturating_add(p.usage.compute_micros)),
        isolation: Isolation {
            network: weakest(|i| i.network),
            unprivileged_user: weakest(|i| i.unprivileged_user),
            resource_limits: weakest(|i| i.resource_limits),
            filesystem: weakest(|i| i.filesystem),
            containment: parts
                .iter()
                .map(|p| p.usage.isolation.containment)
                .min()
                .unwrap_or(Containment::NotNeeded),
        },
    };
    Execution::new(output, usage)
}

/// A split job's failure: which subtask, and why.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("subtask {index} failed: {error}")]
pub struct SplitError {
    /// Index of the failed subtask.
    pub index: usize,
    /// Its error.
    pub error: ExecError,
}

/// A split job's merged result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitExecution {
    /// The merged execution (see [`merge`]).
    pub merged: Execution,
    /// Each subtask's output digest, in order (what each provider committed
    /// to).
    pub part_digests: Vec<Digest>,
}

/// Runs `tasks` over `executors` (subtask `i` on the `i`-th executor that
/// supports its kind, round robin; at most one subtask per executor in
/// flight) and merges the outputs in order.
///
/// # Errors
/// The first failed subtask (lowest index), or [`ExecError::UnsupportedKind`]
/// if no executor supports a subtask.
pub async fn run_split(
    executors: &[&dyn Executor],
    tasks: &[Task],
    limits: &Limits,
) -> Result<SplitExecution, SplitError> {
    let mut assigned = Vec::with_capacity(tasks.len());
    for (index, task) in tasks.iter().enumerate() {
        let able: Vec<&dyn Executor> = executors
            .iter()
            .copied()
            .filter(|e| e.supports(task.kind()))
            .collect();
        if able.is_empty() {
            return Err(SplitError {
                index,
                error: ExecError::UnsupportedKind { kind: task.kind() },
            });
        }
        assigned.push((able[index % able.len()], task));
    }
    let results: Vec<Result<Execution, ExecError>> = futures::stream::iter(assigned)
        .map(|(exec, task)| exec.execute(task, limits))
        .buffered(executors.len().max(1))
        .collect()
        .await;
    let mut parts = Vec::with_capacity(results.len());
    for (index, r) in results.into_iter().enumerate() {
        parts.push(r.map_err(|error| SplitError { index, error })?);
    }
    Ok(SplitExecution {
        part_digests: parts.iter().map(|p| p.output_digest).collect(),
        merged: merge(&parts),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_lines_is_contiguous_and_balanced() {
        let input = b"1\n2\n3\n4\n5";
        let chunks = split_lines(input, 2);
        assert_eq!(chunks, vec![b"1\n2\n3\n".to_vec(), b"4\n5".to_vec()]);
        assert_eq!(split_lines(input, 10).len(), 5);
        assert!(split_lines(b"", 3).is_empty());
        assert_eq!(split_lines(input, 0).len(), 1);
    }
}
