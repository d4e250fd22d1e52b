//! Scheduled faults: partitions (any split, one-way too), healing, crashes,
//! restarts and changes of the loss rate.

use serde::Serialize;

use crate::node::NodeIndex;

/// A change to the network or to nodes, applied at a scheduled time.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub enum Fault {
    /// Cuts every link between nodes of different groups (both directions).
    /// Nodes not listed in any group keep all their links.
    Partition {
        /// Disjoint groups of nodes.
        groups: Vec<Vec<NodeIndex>>,
    },
    /// Cuts the links `from → to` only (one-way partition).
    Block {
        /// Senders whose messages are cut.
        from: Vec<NodeIndex>,
        /// Receivers that no longer hear them.
        to: Vec<NodeIndex>,
    },
    /// Restores every cut link.
    Heal,
    /// Stops nodes; they lose their state, their timers and the messages
    /// that arrive while they are down.
    Crash {
        /// The nodes.
        nodes: Vec<NodeIndex>,
    },
    /// Rebuilds crashed nodes from their factory with a new incarnation.
    Restart {
        /// The nodes.
        nodes: Vec<NodeIndex>,
    },
    /// Sets the random loss probability of every link.
    SetLoss {
        /// Probability in `[0, 1]`.
        loss: f64,
    },
}

impl Fault {
    /// Every node index the fault names.
    pub fn nodes(&self) -> Vec<NodeIndex> {
        match self {
            Fault::Partition { groups } => groups.iter().flatten().copied().collect(),
            Fault::Block { from, to } => from.iter().chain(to).copied().collect(),
            Fault::Crash { nodes } | Fault::Restart { nodes } => nodes.clone(),
            Fault::Heal | Fault::SetLoss { .. } => Vec::new(),
        }
    }

    /// A short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Partition { .. } => "partition",
            Fault::Block { .. } => "block",
            Fault::Heal => "heal",
            Fault::Crash { .. } => "crash",
            Fault::Restart { .. } => "restart",
            Fault::SetLoss { .. } => "set_loss",
        }
    }
}
