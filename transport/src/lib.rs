//! Transport-agnostic networking: the Transport trait, framing, in-memory and TCP transports, and a Machine runner.
//!
//! This crate is a placeholder that states its role in the workspace; see
//! `DESIGN.md` for what it will own. Later issues fill it.
#![forbid(unsafe_code)]
