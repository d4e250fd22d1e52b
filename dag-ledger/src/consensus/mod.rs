//! DAG BFT consensus (Mysticeti-C style). Filled by the consensus issue.
