//! # idlegrid-cli
//!
//! idlegrid for real: the `idlegrid` binary and the runtime behind it, a
//! library too so integrators can embed it.
//!
//! - [`config`]: the network file (genesis, market rules, every node's id
//!   and address) and one file per node, TOML, unknown fields refused.
//! - [`account`]: a wallet over the light-node protocol (holdings, transfers,
//!   stake), every answer backed by f + 1 validators.
//! - [`runtime`]: drives the reference node's machines (`idlegrid-node`)
//!   over the encrypted TCP transport with the real clock: validators
//!   durable in redb (a SIGKILL loses nothing committed), providers running
//!   subtasks in the process sandbox.
//! - [`environment`]: what a provider's sandbox can import (advertised in
//!   its offer) and what a script imports (required by its job).
//! - [`testnet`]: `testnet init|up|down|status` — a network of separate OS
//!   processes on this machine.
//! - [`bench`](mod@bench): `bench` — committed tx/s and commit latency of validator
//!   processes on this machine under a fixed offered load, optionally with
//!   emulated WAN latency, side by side with the simulator.
//! - [`job`]: the client — `job submit` cuts a plain Python script's input
//!   lines into subtasks, plants traps whose answers it computed in its own
//!   sandbox, pays providers through the ledger, re-runs lots whose provider
//!   was caught, and writes the merged outputs in input order.
//!
//! Every protocol decision is the machines'; this crate only moves bytes,
//! keeps time, stores and executes.
//!
//! ## Example: a testnet's files
//!
//! ```
//! use idlegrid_cli::testnet::{InitOptions, init};
//! let dir = tempfile::tempdir().unwrap();
//! let opts = InitOptions { validators: 4, providers: 2, clients: 1, ..InitOptions::default() };
//! let net = init(dir.path(), &opts).unwrap();
//! assert_eq!(net.members.len(), 7);
//! let v0 = idlegrid_cli::config::Loaded::load(&dir.path().join("validator-0/node.toml")).unwrap();
//! assert_eq!(v0.network.committee().size(), 4);
//! ```

use std::path::{Path, PathBuf};

pub mod account;
pub mod bench;
pub mod config;
pub mod environment;
pub mod job;
pub mod runtime;
pub mod testnet;

/// Why a command failed. Every variant names what to fix.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A config file is malformed or inconsistent.
    #[error("{path}: {detail}")]
    Config {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A value is invalid.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(String),
    /// The network failed.
    #[error("network: {0}")]
    Network(String),
    /// A job did not finish as asked.
    #[error("job: {0}")]
    Job(String),
}

impl CliError {
    /// An IO error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
