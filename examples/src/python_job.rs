//! `python_job`: a real Python script split over several providers with
//! [`ProcessExecutor`], traps included, outputs merged in order.
//!
//! The user's script is unchanged: it reads records (one integer per line)
//! from standard input and prints one result line per record. The client
//! cuts the records into chunks (one chunk = one subtask), deals the chunks
//! to providers in contiguous lots ([`split_into_lots`]), and mixes into each
//! lot trap chunks whose output it computed itself beforehand. Each provider
//! runs its shuffled subtasks in its own sandboxed `python3` processes
//! ([`run_split`]); the client checks the traps, then merges the real outputs
//! in the original order and compares with one local run over all records.

use std::collections::BTreeMap;
use std::error::Error;

use idlegrid_entrap::{JobId, Slot, TrapSpec, split_into_lots};
use idlegrid_executor::{
    Executor, Limits, ProcessExecutor, Program, Task, map_tasks, output_digest, run_split,
    split_lines,
};
use idlegrid_primitives::{Digest, Duration, Seed};

use crate::common::input_digest;

/// The user's script: for each integer `n`, the number of Collatz steps to
/// reach 1 and the sum of the primes below `n`.
pub const SCRIPT: &str = r#"import sys

def collatz(n):
    steps = 0
    while n != 1:
        n = n // 2 if n % 2 == 0 else 3 * n + 1
        steps += 1
    return steps

def prime_sum(n):
    sieve = bytearray([1]) * max(n, 2)
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(n ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(sieve[i * i::i]))
    return sum(i for i in range(n) if sieve[i])

for line in sys.stdin:
    line = line.strip()
    if line:
        n = int(line)
        print(f"{n} collatz={collatz(n)} primes_below_sum={prime_sum(n)}")
"#;

/// Options of the example.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Root seed (records, shuffles).
    pub seed: u64,
    /// Records in the job.
    pub records: usize,
    /// Records per subtask.
    pub chunk: usize,
    /// Providers (lots).
    pub providers: usize,
    /// Trap subtasks per provider.
    pub traps_per_provider: usize,
    /// Which provider, if any, skips the work and fabricates its outputs.
    pub cheater: Option<usize>,
    /// Print each step.
    pub verbose: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            seed: 11,
            records: 36,
            chunk: 3,
            providers: 3,
            traps_per_provider: 2,
            cheater: None,
            verbose: true,
        }
    }
}

/// What the example did.
#[derive(Clone, Debug)]
pub struct Report {
    /// Real subtasks (chunks).
    pub subtasks: usize,
    /// Per provider: (subtasks run, traps, traps answered wrongly).
    pub lots: Vec<(usize, usize, usize)>,
    /// Providers caught by a trap.
    pub caught: Vec<usize>,
    /// The merged output of the real subtasks, in the original order.
    pub merged: Vec<u8>,
    /// One local run of the script over all records.
    pub single_run: Vec<u8>,
    /// True if `merged == single_run`.
    pub merged_equals_single: bool,
    /// How isolation was applied on this host (network, user, limits, fs).
    pub isolation: String,
}

macro_rules! say {
    ($o:expr, $($t:tt)*) => { if $o.verbose { println!($($t)*); } };
}

fn limits() -> Limits {
    Limits {
        cpu_time: Duration::from_secs(5),
        wall_time: Duration::from_secs(20),
        memory_bytes: 256 << 20,
        ..Limits::default()
    }
}

/// Runs the example (needs `python3` in `/usr/local/bin`, `/usr/bin` or `/bin`).
pub fn run(opts: Options) -> Result<Report, Box<dyn Error>> {
    if opts.providers == 0 || opts.chunk == 0 || opts.records < opts.chunk * opts.providers {
        return Err("need at least one chunk per provider".into());
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run_async(opts))
}

async fn run_async(opts: Options) -> Result<Report, Box<dyn Error>> {
    let program = Program::python(SCRIPT);
    let mut rng_state = opts
        .seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move || {
        rng_state = rng_state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        rng_state >> 33
    };
    let records: String = (0..opts.records)
        .map(|_| format!("{}\n", 1_000 + next() % 20_000))
        .collect();
    let chunks = split_lines(records.as_bytes(), opts.records.div_ceil(opts.chunk));
    say!(
        opts,
        "== job: {} records in {} chunks of ~{} lines, {} providers",
        opts.records,
        chunks.len(),
        opts.chunk,
        opts.providers
    );

    let client_exec = ProcessExecutor::default();
    // Traps: chunks drawn like real ones; the client runs them itself first.
    let mut bytes_of: BTreeMap<Digest, Vec<u8>> = BTreeMap::new();
    for c in &chunks {
        bytes_of.insert(input_digest(c), c.clone());
    }
    let mut traps_per_lot = Vec::new();
    for lot in 0..opts.providers {
        let mut traps = Vec::new();
        for _ in 0..opts.traps_per_provider {
            let chunk: String = (0..opts.chunk)
                .map(|_| format!("{}\n", 1_000 + next() % 20_000))
                .collect();
            let chunk = chunk.into_bytes();
            let known = client_exec
                .execute(&Task::new(program.clone(), chunk.clone()), &limits())
                .await?;
            traps.push(TrapSpec::precomputed(
                input_digest(&chunk),
                known.output_digest,
            ));
            bytes_of.insert(input_digest(&chunk), chunk);
        }
        say!(
            opts,
            "== client precomputed {} trap chunks for lot {lot}",
            traps.len()
        );
        traps_per_lot.push(traps);
    }
    let digests: Vec<Digest> = chunks.iter().map(|c| input_digest(c)).collect();
    let plans = split_into_lots(
        JobId::new(7),
        &digests,
        traps_per_lot,
        &Seed::from_u64(opts.seed).derive("lots"),
    )?;

    // Each provider runs its lot in its own sandboxed processes.
    let mut merged_parts: Vec<Vec<u8>> = Vec::new();
    let mut lots = Vec::new();
    let mut caught = Vec::new();
    let mut isolation = String::new();
    for (i, plan) in plans.iter().enumerate() {
        let provider = ProcessExecutor::default();
        let inputs: Vec<Vec<u8>> = plan
            .public()
            .slot_inputs
            .iter()
            .map(|d| bytes_of[d].clone())
            .collect();
        let tasks = map_tasks(&program, inputs);
        let (digests, outputs): (Vec<Digest>, Vec<Vec<u8>>) = if opts.cheater == Some(i) {
            let fake: Vec<Vec<u8>> = tasks
                .iter()
                .map(|_| b"0 collatz=0 primes_below_sum=0\n".to_vec())
                .collect();
            (fake.iter().map(|o| output_digest(o)).collect(), fake)
        } else {
            let mut outs = Vec::new();
            for t in &tasks {
                // One subtask at a time so each output is kept; run_split
                // below shows the one-call form.
                let e = provider.execute(t, &limits()).await?;
                isolation = format!("{:?}", e.usage.isolation);
                outs.push(e.output);
            }
            (outs.iter().map(|o| output_digest(o)).collect(), outs)
        };
        let wrong = plan.wrong_traps(&digests)?;
        say!(
            opts,
            "== provider {i}: ran {} subtasks ({} traps hidden among them); wrong trap answers: {}",
            tasks.len(),
            plan.trap_count(),
            wrong.len()
        );
        lots.push((tasks.len(), plan.trap_count().get() as usize, wrong.len()));
        if !wrong.is_empty() {
            caught.push(i);
            say!(
                opts,
                "   -> provider {i} caught cheating; its lot is discarded"
            );
        }
        // Real outputs back in the client's order within the lot.
        let mut real: Vec<(u32, Vec<u8>)> = plan
            .slots()
            .iter()
            .zip(outputs)
            .filter_map(|(s, o)| match s {
                Slot::Real(r) => Some((*r, o)),
                Slot::Trap(_) => None,
            })
            .collect();
        real.sort_by_key(|(r, _)| *r);
        merged_parts.extend(real.into_iter().map(|(_, o)| o));
    }
    let merged: Vec<u8> = merged_parts.concat();

    // The same job in one call: run_split over the providers, no traps.
    let execs: Vec<ProcessExecutor> = (0..opts.providers)
        .map(|_| ProcessExecutor::default())
        .collect();
    let refs: Vec<&dyn Executor> = execs.iter().map(|e| e as &dyn Executor).collect();
    let split = run_split(&refs, &map_tasks(&program, chunks.clone()), &limits()).await?;
    let single = client_exec
        .execute(
            &Task::new(program.clone(), records.clone().into_bytes()),
            &limits(),
        )
        .await?;
    say!(
        opts,
        "== run_split without traps: {} parts, merged output equal to single run: {}",
        split.part_digests.len(),
        split.merged.output == single.output
    );
    let equal = merged == single.output;
    say!(
        opts,
        "== merged {} bytes from {} real subtasks; equal to one local run over all records: {equal}",
        merged.len(),
        chunks.len()
    );
    if opts.verbose {
        for line in String::from_utf8_lossy(&merged).lines().take(3) {
            println!("   {line}");
        }
        println!("   ...\n   isolation on this host: {isolation}");
    }
    if split.merged.output != single.output {
        return Err("run_split's merged output differs from the single run".into());
    }
    Ok(Report {
        subtasks: chunks.len(),
        lots,
        caught,
        merged,
        single_run: single.output,
        merged_equals_single: equal,
        isolation,
    })
}
