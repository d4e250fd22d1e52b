//! Verification by entrapment: trap subtasks, result commitments, accusations, disputes, verdicts, and the trap-count optimizer.
//!
//! This crate is a placeholder that states its role in the workspace; see
//! `DESIGN.md` for what it will own. Later issues fill it.
#![forbid(unsafe_code)]
