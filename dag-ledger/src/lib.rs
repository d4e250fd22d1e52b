//! DAG-based BFT consensus (Mysticeti-C style) and the replicated ledger: accounts, fee-less transfers, stake, escrow, slashing.
//!
//! This crate is a placeholder that states its role in the workspace; see
//! `DESIGN.md` for what it will own. Later issues fill it.
#![forbid(unsafe_code)]
