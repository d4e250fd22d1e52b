//! Sealed-bid compute market: orders, commit-reveal batches, pluggable clearing mechanisms, continuous order book.
//!
//! This crate is a placeholder that states its role in the workspace; see
//! `DESIGN.md` for what it will own. Later issues fill it.
#![forbid(unsafe_code)]
