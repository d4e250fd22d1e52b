//! The local DAG: accepted blocks by round and author ([`DagStore`]) and a
//! small DSL to hand-build DAGs for tests ([`DagBuilder`]).

mod builder;
mod store;

pub use builder::DagBuilder;
pub(crate) use store::find_in;
pub use store::{BlockSlot, DagStore};
