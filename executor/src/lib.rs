//! Executors that run the work: deterministic WebAssembly, sandboxed native processes, and a simulated cost model.
//!
//! This crate is a placeholder that states its role in the workspace; see
//! `DESIGN.md` for what it will own. Later issues fill it.
#![forbid(unsafe_code)]
