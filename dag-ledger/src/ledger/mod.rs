//! Replicated ledger state. Filled by the ledger issue.
