//! # idlegrid-examples
//!
//! Runnable examples for each kind of idlegrid user. Each example's logic is
//! a library module with `run(options) -> Result<Report, _>` that prints
//! every protocol step and returns the figures it printed, so that the
//! integration tests in `tests/examples_run.rs` can assert on them; the
//! binaries in `examples/` are thin wrappers:
//!
//! | example | command | shows |
//! |---|---|---|
//! | [`quickstart`] | `cargo run --release --example quickstart` | offers, sealed bids, match, plan with traps, execution, trap reveal, accusation, settlement, reputation — on the reference node |
//! | [`python_job`] | `cargo run --release --example python_job` | a Python script split over providers with `ProcessExecutor`, traps, merge |
//! | [`wasm_referee`] | `cargo run --release --example wasm_referee` | disputes settled by VRF-drawn validators re-executing on `WasmExecutor` |
//! | [`custom_mechanism`] | `cargo run --release --example custom_mechanism` | a new `Mechanism` compared with McAfee over a seeded sweep |
//! | [`audit_properties`] | `cargo run --release --example audit_properties` | an auditor's own properties over the exported proptest strategies |
//! | [`local_cluster`] | `cargo run --release --example local_cluster` | validators over TCP on loopback committing clients' ledger transfers |
//!
//! `quickstart` and `wasm_referee` run `idlegrid-node`'s validators,
//! providers and clients on its in-process network ([`network`]), with
//! real WebAssembly execution answering the nodes' effects ([`common`]).
//!
//! Everything is seeded: the same options print the same run.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod audit_properties;
pub mod common;
pub mod custom_mechanism;
pub mod local_cluster;
pub mod network;
pub mod python_job;
pub mod quickstart;
pub mod wasm_referee;
