//! Which links partitions and blocks have cut, kept as the faults' own
//! lists rather than as a flag on each of the `n²` links.
//!
//! - A **partition** records each listed node's group; `a → b` is cut when
//!   both ends are listed and in different groups. Nodes not listed keep
//!   all their links. A node listed in two groups of one partition is cut
//!   from every other listed node, itself included (what cutting "every
//!   link between nodes of different groups" means when groups overlap).
//! - A **block** records its senders and receivers; `a → b` is cut when
//!   `a` is a sender, `b` a receiver and `a ≠ b`.
//! - Cuts accumulate: a link stays cut while any active partition or block
//!   cuts it, until a heal clears them all.
//!
//! Applying a fault costs `O(k log k)` in the `k` nodes it lists, and
//! asking whether a link is cut `O(f log k)` in the `f` active faults (no
//! work at all while none is active). Everything is in sorted vectors, so
//! nothing here depends on hash order.

use crate::node::NodeIndex;

/// A node's place in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// Listed in exactly this group.
    One(u32),
    /// Listed in two or more groups.
    Several,
}

/// The cuts of one partition: every listed node and its group, by node.
#[derive(Debug, Clone)]
struct Partition(Vec<(u32, Group)>);

impl Partition {
    fn new(groups: &[Vec<NodeIndex>]) -> Self {
        let mut listed: Vec<(u32, Group)> = groups
            .iter()
            .enumerate()
            .flat_map(|(g, nodes)| nodes.iter().map(move |x| (node(*x), Group::One(g as u32))))
            .collect();
        listed.sort_unstable_by_key(|&(x, g)| (x, group_key(g)));
        listed.dedup();
        let mut merged: Vec<(u32, Group)> = Vec::with_capacity(listed.len());
        for (x, g) in listed {
            match merged.last_mut() {
                Some(last) if last.0 == x => last.1 = Group::Several,
                _ => merged.push((x, g)),
            }
        }
        Self(merged)
    }

    fn group(&self, x: u32) -> Option<Group> {
        self.0
            .binary_search_by_key(&x, |&(y, _)| y)
            .ok()
            .map(|i| self.0[i].1)
    }

    fn cuts(&self, from: u32, to: u32) -> bool {
        match (self.group(from), self.group(to)) {
            (Some(Group::One(a)), Some(Group::One(b))) => a != b,
            (Some(_), Some(_)) => true,
            _ => false,
        }
    }
}

/// The cuts of one block: its senders and receivers, each sorted.
#[derive(Debug, Clone)]
struct Block {
    from: Vec<u32>,
    to: Vec<u32>,
}

impl Block {
    fn cuts(&self, from: u32, to: u32) -> bool {
        from != to && self.from.binary_search(&from).is_ok() && self.to.binary_search(&to).is_ok()
    }
}

fn node(x: NodeIndex) -> u32 {
    x.get() as u32
}

fn group_key(g: Group) -> u32 {
    match g {
        Group::One(g) => g,
        Group::Several => u32::MAX,
    }
}

fn sorted(nodes: &[NodeIndex]) -> Vec<u32> {
    let mut v: Vec<u32> = nodes.iter().map(|x| node(*x)).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// Every partition and block in force since the last heal.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cuts {
    partitions: Vec<Partition>,
    blocks: Vec<Block>,
}

impl Cuts {
    /// Cuts every link between nodes of different groups (both ways).
    pub fn partition(&mut self, groups: &[Vec<NodeIndex>]) {
        let p = Partition::new(groups);
        if !p.0.is_empty() {
            self.partitions.push(p);
        }
    }

    /// Cuts every link from a node of `from` to another node of `to`.
    pub fn block(&mut self, from: &[NodeIndex], to: &[NodeIndex]) {
        let b = Block {
            from: sorted(from),
            to: sorted(to),
        };
        if !b.from.is_empty() && !b.to.is_empty() {
            self.blocks.push(b);
        }
    }

    /// Restores every link.
    pub fn heal(&mut self) {
        self.partitions.clear();
        self.blocks.clear();
    }

    /// Whether `from → to` is cut.
    pub fn is_cut(&self, from: NodeIndex, to: NodeIndex) -> bool {
        if self.partitions.is_empty() && self.blocks.is_empty() {
            return false;
        }
        let (a, b) = (node(from), node(to));
        self.partitions.iter().any(|p| p.cuts(a, b)) || self.blocks.iter().any(|k| k.cuts(a, b))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The dense table this replaces, kept as the oracle: a flag per link,
    /// set by exactly the loops the engine ran before.
    struct Dense {
        n: usize,
        blocked: Vec<bool>,
    }

    impl Dense {
        fn partition(&mut self, groups: &[Vec<NodeIndex>]) {
            for (ga, a) in groups.iter().enumerate() {
                for (gb, b) in groups.iter().enumerate() {
                    if ga == gb {
                        continue;
                    }
                    for x in a {
                        for y in b {
                            self.blocked[x.get() * self.n + y.get()] = true;
                        }
                    }
                }
            }
        }
        fn block(&mut self, from: &[NodeIndex], to: &[NodeIndex]) {
            for x in from {
                for y in to {
                    if x != y {
                        self.blocked[x.get() * self.n + y.get()] = true;
                    }
                }
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Partition(Vec<Vec<u32>>),
        Block(Vec<u32>, Vec<u32>),
        Heal,
    }

    const N: u32 = 12;

    fn nodes() -> impl Strategy<Value = Vec<u32>> {
        prop::collection::vec(0..N, 0..6)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => prop::collection::vec(nodes(), 0..4).prop_map(Op::Partition),
            3 => (nodes(), nodes()).prop_map(|(a, b)| Op::Block(a, b)),
            1 => Just(Op::Heal),
        ]
    }

    fn idx(v: &[u32]) -> Vec<NodeIndex> {
        v.iter().map(|&x| NodeIndex::new(x)).collect()
    }

    proptest! {
        /// After every fault of a random sequence (partitions of several
        /// groups, overlapping or repeated nodes, blocks, heals), every
        /// link, self-links included, is cut exactly when the dense table
        /// says so.
        #[test]
        fn cuts_agree_with_the_dense_table(ops in prop::collection::vec(op(), 1..12)) {
            let n = N as usize;
            let mut dense = Dense { n, blocked: vec![false; n * n] };
            let mut cuts = Cuts::default();
            for op in &ops {
                match op {
                    Op::Partition(groups) => {
                        let groups: Vec<_> = groups.iter().map(|g| idx(g)).collect();
                        dense.partition(&groups);
                        cuts.partition(&groups);
                    }
                    Op::Block(from, to) => {
                        dense.block(&idx(from), &idx(to));
                        cuts.block(&idx(from), &idx(to));
                    }
                    Op::Heal => {
                        dense.blocked.fill(false);
                        cuts.heal();
                    }
                }
                for a in 0..N {
                    for b in 0..N {
                        let (x, y) = (NodeIndex::new(a), NodeIndex::new(b));
                        prop_assert_eq!(
                            cuts.is_cut(x, y),
                            dense.blocked[a as usize * n + b as usize],
                            "link {} -> {} after {:?}", a, b, op
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn nothing_is_cut_until_a_fault_and_after_a_heal() {
        let mut c = Cuts::default();
        let (a, b, z) = (NodeIndex::new(0), NodeIndex::new(1), NodeIndex::new(2));
        assert!(!c.is_cut(a, b));
        c.partition(&[vec![a], vec![b]]);
        assert!(c.is_cut(a, b) && c.is_cut(b, a));
        assert!(
            !c.is_cut(a, z) && !c.is_cut(z, b),
            "unlisted nodes keep their links"
        );
        c.block(&[z], &[a]);
        assert!(c.is_cut(z, a) && !c.is_cut(a, z));
        c.heal();
        assert!(!c.is_cut(a, b) && !c.is_cut(z, a));
    }
}
