//! Two-sided reputation: beta reputation with forgetting, EigenTrust global trust, credibility.
//!
//! This crate is a placeholder that states its role in the workspace; see
//! `DESIGN.md` for what it will own. Later issues fill it.
#![forbid(unsafe_code)]
