//! A binary Merkle tree over [`Digest`] leaves, and inclusion proofs.
//!
//! One signature over the root stands for every leaf: a holder of a leaf
//! and its [`MerkleProof`] (the sibling digests on the way up, about
//! `log2(leaves)` of them) recomputes the root and checks the signature
//! once. The leaves are digests the caller computes under its own
//! [`Domain`]; inner nodes are hashed under [`NODE_DOMAIN`], so a leaf can
//! never pass for an inner node or the other way round. What a proof
//! authenticates is its leaf's *content*: a verifier must hash the leaf
//! itself, under a domain other than [`NODE_DOMAIN`], and read what the
//! leaf says (whose it is) from that content, not from the proof's
//! position, which only steers the path.
//!
//! Shape: level 0 is the leaves in order; each level pairs neighbours left
//! to right, and the last node of an odd level is carried up unchanged (no
//! duplicated leaf, so two different leaf lists never share a root through
//! a repeated last leaf). A proof names its leaf's position and the number
//! of leaves, which fix the shape: [`MerkleProof::root`] refuses a proof
//! whose sibling count does not fit them.
//!
//! ```
//! use idlegrid_primitives::{Digest, Domain, MerkleTree};
//!
//! const LEAF: Domain = Domain::new("idlegrid/example/leaf");
//! let leaves: Vec<Digest> = (0u8..5).map(|i| Digest::hash(LEAF, &[i])).collect();
//! let tree = MerkleTree::new(leaves.clone());
//! let proof = tree.proof(3).unwrap();
//! assert_eq!(proof.root(&leaves[3]), Some(tree.root()));
//! assert_ne!(proof.root(&leaves[2]), Some(tree.root()));
//! ```

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Domain};

/// The domain inner nodes are hashed under.
pub const NODE_DOMAIN: Domain = Domain::new("idlegrid/merkle/node");
/// The most siblings a proof may carry (the depth of the largest tree).
pub const MAX_SIBLINGS: usize = 32;

/// A binary Merkle tree (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    /// Level 0 is the leaves, the last level the root alone.
    levels: Vec<Vec<Digest>>,
}

/// The path from one leaf to the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// The leaf's position.
    pub leaf: u32,
    /// How many leaves the tree has.
    pub leaves: u32,
    /// The siblings met on the way up, lowest first (none where the node
    /// was carried up alone).
    pub siblings: Vec<Digest>,
}

fn parent(left: &Digest, right: &Digest) -> Digest {
    Digest::hash_parts(NODE_DOMAIN, &[left.as_bytes(), right.as_bytes()])
}

/// The root of a tree without leaves.
pub fn empty_root() -> Digest {
    Digest::hash(NODE_DOMAIN, b"empty")
}

impl MerkleTree {
    /// The tree over `leaves` (fewer than 2^32: positions are `u32`).
    pub fn new(leaves: Vec<Digest>) -> Self {
        assert!(leaves.len() < u32::MAX as usize, "too many leaves");
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().expect("nonempty");
            let up = below
                .chunks(2)
                .map(|pair| match pair {
                    [l, r] => parent(l, r),
                    [alone] => *alone,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
            levels.push(up);
        }
        Self { levels }
    }

    /// The root ([`empty_root`] without leaves).
    pub fn root(&self) -> Digest {
        match self.levels.last().and_then(|l| l.first()) {
            Some(r) => *r,
            None => empty_root(),
        }
    }

    /// How many leaves it has.
    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    /// True without leaves.
    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    /// The proof of leaf `i`, if there is one.
    pub fn proof(&self, i: usize) -> Option<MerkleProof> {
        if i >= self.len() {
            return None;
        }
        let mut siblings = Vec::new();
        let mut at = i;
        for level in &self.levels[..self.levels.len() - 1] {
            if let Some(s) = level.get(at ^ 1) {
                siblings.push(*s);
            }
            at /= 2;
        }
        Some(MerkleProof {
            leaf: i as u32,
            leaves: self.len() as u32,
            siblings,
        })
    }
}

impl MerkleProof {
    /// The root that `leaf` at this proof's position leads to, or `None`
    /// if the proof does not fit its own shape (a position past the
    /// leaves, too many or too few siblings).
    pub fn root(&self, leaf: &Digest) -> Option<Digest> {
        if self.leaf >= self.leaves || self.siblings.len() > MAX_SIBLINGS {
            return None;
        }
        let (mut at, mut width) = (self.leaf as u64, self.leaves as u64);
        let mut node = *leaf;
        let mut siblings = self.siblings.iter();
        while width > 1 {
            let sibling = at ^ 1;
            if sibling < width {
                let s = siblings.next()?;
                node = match at % 2 {
                    0 => parent(&node, s),
                    _ => parent(s, &node),
                };
            }
            at /= 2;
            width = width.div_ceil(2);
        }
        siblings.next().is_none().then_some(node)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const LEAF: Domain = Domain::new("idlegrid/test/leaf");

    fn leaves(n: usize, salt: u8) -> Vec<Digest> {
        (0..n)
            .map(|i| Digest::hash(LEAF, &[salt, i as u8, (i >> 8) as u8]))
            .collect()
    }

    #[test]
    fn small_trees_have_the_expected_roots() {
        let l = leaves(3, 0);
        assert_eq!(MerkleTree::new(Vec::new()).root(), empty_root());
        assert_eq!(MerkleTree::new(l[..1].to_vec()).root(), l[0]);
        let two = parent(&l[0], &l[1]);
        assert_eq!(MerkleTree::new(l[..2].to_vec()).root(), two);
        // The third leaf is carried up alone, not paired with itself.
        assert_eq!(MerkleTree::new(l.clone()).root(), parent(&two, &l[2]));
        assert_eq!(
            MerkleTree::new(l.clone()).proof(2).unwrap().siblings,
            vec![two]
        );
    }

    proptest! {
        /// Every leaf's proof leads to the root, from its own leaf only,
        /// and a proof changed in any part no longer does.
        #[test]
        fn every_proof_holds_for_its_leaf_alone(n in 1usize..300, pick in any::<u16>(), salt in any::<u8>()) {
            let l = leaves(n, salt);
            let tree = MerkleTree::new(l.clone());
            let root = tree.root();
            let i = pick as usize % n;
            let proof = tree.proof(i).unwrap();
            prop_assert_eq!(proof.root(&l[i]), Some(root));
            prop_assert!(proof.siblings.len() <= (n as f64).log2().ceil() as usize);
            if n > 1 {
                let other = (i + 1) % n;
                prop_assert_ne!(proof.root(&l[other]), Some(root));
                let mut moved = proof.clone();
                moved.leaf = other as u32;
                prop_assert_ne!(moved.root(&l[i]), Some(root));
                let mut bent = proof.clone();
                bent.siblings[0] = l[i];
                prop_assert_ne!(bent.root(&l[i]), Some(root));
                let mut short = proof.clone();
                short.siblings.pop();
                prop_assert_eq!(short.root(&l[i]), None);
            }
            let mut long = proof.clone();
            long.siblings.push(root);
            prop_assert_eq!(long.root(&l[i]), None);
            prop_assert_eq!(tree.proof(n), None);
        }

        /// Different leaf lists have different roots (a longer list never
        /// shares the root of its prefix).
        #[test]
        fn roots_tell_leaf_lists_apart(n in 1usize..64, m in 1usize..64) {
            let (a, b) = (leaves(n, 1), leaves(m, 1));
            prop_assert_eq!(MerkleTree::new(a).root() == MerkleTree::new(b).root(), n == m);
        }
    }
}
