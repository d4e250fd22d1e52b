//! # idlegrid-dag-ledger
//!
//! The ledger that ties the idlegrid network together, in two independent
//! sans-IO modules:
//!
//! - [`consensus`]: an uncertified-DAG BFT consensus in the style of
//!   Mysticeti-C that totally orders transactions (opaque bytes);
//! - [`ledger`]: the replicated state machine that applies the ordered
//!   transactions: accounts, fee-less transfers, stake, escrow, slashing.
//!
//! The composition root (the simulator's node, or an integrator's) feeds the
//! committed transaction sequence of `consensus` into `ledger`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod consensus;
pub mod ledger;
