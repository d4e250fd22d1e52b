//! EigenTrust global trust (Kamvar, Schlosser, Garcia-Molina, 2003) in
//! fixed point.
//!
//! ## The math
//!
//! Peer `i`'s local trust in `j` is `s_ij = max(pos_ij - neg_ij, 0)`, its
//! decayed, value-weighted good minus bad feedback about `j`. Rows are
//! normalized: `c_ij = s_ij / Σ_k s_ik`. The anchor distribution `p` mixes the
//! pre-trusted set `P` (e.g. validators) and bonded stake:
//!
//! ```text
//! p_i = (1 - σ)·[i ∈ P]/|P|  +  σ·stake_i / Σ stake        (σ = stake_share)
//! ```
//!
//! (all of `p` goes to the side that exists when the other is empty). Global
//! trust is the fixed point of
//!
//! ```text
//! t ← (1 - a)·Cᵀ t + leftover·p,     t⁰ = p
//! ```
//!
//! where `a` is the damping factor and `leftover = 1 - Σ (1 - a)·Cᵀt` is the
//! mass not passed along edges: the damping share `a`, the trust held by
//! peers with no outgoing feedback ("dangling" rows, which EigenTrust sends to
//! `p`), and rounding dust. Spreading it by `p` keeps `Σ t = 1` up to at most
//! `n` units of `2^-60` per iteration. A reporter's opinion counts in
//! proportion to its own trust (`t_i` multiplies row `i`), and trust enters
//! the graph only through `p`, i.e. from stake and pre-trusted peers.
//!
//! **Sybil rings.** A set of identities with no stake, no pre-trusted member
//! and no incoming edge from outside the set starts at `t⁰ = 0` and only ever
//! receives trust from itself, so it stays at exactly `0`, whatever its size
//! and however densely it rates itself.
//!
//! **Cost and bounds.** Sparse power iteration over a CSR matrix:
//! `O(n + m)` per iteration, at most [`TrustParams::max_iterations`], stopping
//! when `‖tᵏ⁺¹ - tᵏ‖₁ <= tolerance`. Graph size is bounded by
//! [`TrustParams::max_nodes`] / [`TrustParams::max_edges`]. All arithmetic is
//! integer (floor rounding), so the result is identical on every node.

use idlegrid_primitives::{Amount, NodeId};
use serde::{Deserialize, Serialize};

use crate::error::ReputationError;
use crate::score::Score;

/// Parameters of the power iteration. Validate with [`TrustParams::validate`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TrustParams {
    /// Damping (teleport) factor `a ∈ (0, 1)`.
    pub damping: Score,
    /// Stop when the L1 change of an iteration is at most this.
    pub tolerance: Score,
    /// Hard bound on iterations, `1..=1000`.
    pub max_iterations: u32,
    /// Share `σ` of the anchor distribution given by stake (rest: pre-trusted).
    pub stake_share: Score,
    /// Largest accepted number of nodes.
    pub max_nodes: usize,
    /// Largest accepted number of edges.
    pub max_edges: usize,
}

impl Default for TrustParams {
    /// `a = 0.15`, tolerance `1e-7` (L1), 200 iterations (enough for the
    /// worst case `(1 - a)^k <= 1e-7`), `σ = 0.5`, 16M nodes,
    /// 64M edges.
    fn default() -> Self {
        Self {
            damping: Score::from_ppm(150_000).expect("constant in range"),
            tolerance: Score::ratio(1, 10_000_000).expect("constant in range"),
            max_iterations: 200,
            stake_share: Score::HALF,
            max_nodes: 1 << 24,
            max_edges: 1 << 26,
        }
    }
}

impl TrustParams {
    /// Defaults with `damping`, `tolerance` and `stake_share` given as floats
    /// in `[0, 1]` (scenario files, CLIs); NaN, infinities and out-of-range
    /// values are [`ReputationError::InvalidFloat`]. The result is validated.
    pub fn from_f64(
        damping: f64,
        tolerance: f64,
        stake_share: f64,
    ) -> Result<Self, ReputationError> {
        let params = Self {
            damping: Score::try_from_f64(damping)?,
            tolerance: Score::try_from_f64(tolerance)?,
            stake_share: Score::try_from_f64(stake_share)?,
            ..Self::default()
        };
        params.validate()?;
        Ok(params)
    }

    /// Checks `0 < a < 1` and `1 <= max_iterations <= 1000`.
    pub fn validate(&self) -> Result<(), ReputationError> {
        if self.damping == Score::ZERO || self.damping == Score::ONE {
            return Err(ReputationError::InvalidParams(
                "damping must be strictly between 0 and 1",
            ));
        }
        if !(1..=1000).contains(&self.max_iterations) {
            return Err(ReputationError::InvalidParams(
                "max_iterations must be in 1..=1000",
            ));
        }
        Ok(())
    }
}

/// A feedback graph in compressed sparse row form with row-normalized local
/// trust `c_ij`, nodes sorted by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustGraph {
    nodes: Vec<NodeId>,
    stakes: Vec<Amount>,
    row_start: Vec<usize>,
    cols: Vec<u32>,
    weights: Vec<Score>,
}

impl TrustGraph {
    /// Builds a graph from nodes (any order, with their bonded stake) and
    /// local-trust edges `(from, to, s_ij)` given as indices into `nodes`.
    /// Self-loops and zero weights are dropped, parallel edges summed
    /// (saturating). Duplicate node ids, out-of-range indices and graphs
    /// above the limits are errors.
    pub fn from_indexed(
        nodes: Vec<(NodeId, Amount)>,
        edges: Vec<(u32, u32, u64)>,
        params: &TrustParams,
    ) -> Result<TrustGraph, ReputationError> {
        let n = nodes.len();
        if n > params.max_nodes || edges.len() > params.max_edges || n > u32::MAX as usize {
            return Err(ReputationError::GraphTooLarge {
                nodes: n,
                edges: edges.len(),
                max_nodes: params.max_nodes,
                max_edges: params.max_edges,
            });
        }
        // Sort nodes by id and remember where each original index went.
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_unstable_by_key(|&i| nodes[i as usize].0);
        let mut new_index = vec![0u32; n];
        for (pos, &old) in order.iter().enumerate() {
            new_index[old as usize] = pos as u32;
        }
        let sorted: Vec<(NodeId, Amount)> = order.iter().map(|&i| nodes[i as usize]).collect();
        if sorted.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(ReputationError::InvalidParams(
                "duplicate node id in trust graph",
            ));
        }
        let mut e = Vec::with_capacity(edges.len());
        for (from, to, w) in edges {
            for idx in [from, to] {
                if idx as usize >= n {
                    return Err(ReputationError::NodeIndexOutOfRange { index: idx, len: n });
                }
            }
            if from != to && w > 0 {
                e.push((new_index[from as usize], new_index[to as usize], w));
            }
        }
        e.sort_unstable();
        // Merge parallel edges.
        let mut merged: Vec<(u32, u32, u64)> = Vec::with_capacity(e.len());
        for (f, t, w) in e {
            match merged.last_mut() {
                Some(last) if last.0 == f && last.1 == t => last.2 = last.2.saturating_add(w),
                _ => merged.push((f, t, w)),
            }
        }
        let mut row_start = vec![0usize; n + 1];
        for &(f, _, _) in &merged {
            row_start[f as usize + 1] += 1;
        }
        for i in 0..n {
            row_start[i + 1] += row_start[i];
        }
        let mut row_sum = vec![0u128; n];
        for &(f, _, w) in &merged {
            row_sum[f as usize] += u128::from(w);
        }
        let cols = merged.iter().map(|&(_, t, _)| t).collect();
        let weights = merged
            .iter()
            .map(|&(f, _, w)| {
                Score::ratio(u128::from(w), row_sum[f as usize]).expect("w <= row sum, sum > 0")
            })
            .collect();
        let (nodes, stakes) = sorted.into_iter().unzip();
        Ok(TrustGraph {
            nodes,
            stakes,
            row_start,
            cols,
            weights,
        })
    }

    /// Builds a graph from edges named by id; every endpoint must be in
    /// `nodes`.
    pub fn from_edges(
        nodes: Vec<(NodeId, Amount)>,
        edges: &[(NodeId, NodeId, u64)],
        params: &TrustParams,
    ) -> Result<TrustGraph, ReputationError> {
        let mut ids: Vec<(NodeId, u32)> = nodes
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i as u32))
            .collect();
        ids.sort_unstable();
        let find = |id: &NodeId| -> Result<u32, ReputationError> {
            ids.binary_search_by(|(x, _)| x.cmp(id))
                .map(|pos| ids[pos].1)
                .map_err(|_| ReputationError::UnknownNode(*id))
        };
        let mut indexed = Vec::with_capacity(edges.len());
        for (f, t, w) in edges {
            indexed.push((find(f)?, find(t)?, *w));
        }
        TrustGraph::from_indexed(nodes, indexed, params)
    }

    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
    /// Number of (merged, non-self) edges.
    pub fn edge_count(&self) -> usize {
        self.cols.len()
    }
    /// Node ids, sorted.
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }
    /// The index of a node.
    pub fn index_of(&self, id: &NodeId) -> Option<usize> {
        self.nodes.binary_search(id).ok()
    }
    /// Outgoing normalized edges `(to, c_ij)` of node index `i`.
    pub fn row(&self, i: usize) -> impl Iterator<Item = (usize, Score)> + '_ {
        let r = self.row_start[i]..self.row_start[i + 1];
        self.cols[r.clone()]
            .iter()
            .zip(&self.weights[r])
            .map(|(&c, &w)| (c as usize, w))
    }
    /// Approximate heap bytes held by the graph.
    pub fn heap_bytes(&self) -> usize {
        self.nodes.len() * (32 + 16 + 8) + self.cols.len() * (4 + 8)
    }

    /// The anchor distribution `p` as sparse `(index, p_i)`.
    fn anchors(
        &self,
        pretrusted: &[NodeId],
        stake_share: Score,
    ) -> Result<Vec<(usize, Score)>, ReputationError> {
        let mut pre = Vec::with_capacity(pretrusted.len());
        for id in pretrusted {
            pre.push(self.index_of(id).ok_or(ReputationError::UnknownNode(*id))?);
        }
        pre.sort_unstable();
        pre.dedup();
        let total_stake = Amount::checked_sum(self.stakes.iter().copied())
            .map_err(|_| ReputationError::InvalidParams("total stake overflows"))?;
        let sigma = match (pre.is_empty(), total_stake.is_zero()) {
            (true, true) => return Err(ReputationError::NoTrustAnchor),
            (true, false) => Score::ONE,
            (false, true) => Score::ZERO,
            (false, false) => stake_share,
        };
        let mut p = vec![Score::ZERO; self.nodes.len()];
        if !pre.is_empty() {
            let each = Score::ratio(1, pre.len() as u128)
                .expect("len >= 1")
                .mul(sigma.complement());
            for &i in &pre {
                p[i] = each;
            }
        }
        if !total_stake.is_zero() {
            for (i, s) in self.stakes.iter().enumerate() {
                if !s.is_zero() {
                    let share = Score::ratio(s.get(), total_stake.get()).expect("s <= total");
                    p[i] = p[i].saturating_add(share.mul(sigma));
                }
            }
        }
        Ok(p.into_iter()
            .enumerate()
            .filter(|(_, s)| *s != Score::ZERO)
            .collect())
    }
}

/// The result of [`EigenTrust::compute`]. Decoding checks its shape (one
/// value per node, nodes strictly ascending), so a decoded vector answers
/// [`TrustVector::get`] like a computed one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "TrustVectorParts")]
pub struct TrustVector {
    nodes: Vec<NodeId>,
    values: Vec<Score>,
    /// Iterations run.
    pub iterations: u32,
    /// True if the last iteration changed the vector by at most the tolerance.
    pub converged: bool,
    /// L1 change of the last iteration (saturating at one).
    pub residual: Score,
}

/// [`TrustVector`]'s fields as decoded, before the shape check.
#[derive(Deserialize)]
struct TrustVectorParts {
    nodes: Vec<NodeId>,
    values: Vec<Score>,
    iterations: u32,
    converged: bool,
    residual: Score,
}

impl TryFrom<TrustVectorParts> for TrustVector {
    type Error = ReputationError;

    fn try_from(p: TrustVectorParts) -> Result<Self, Self::Error> {
        if p.nodes.len() != p.values.len() {
            return Err(ReputationError::InvalidParams(
                "trust vector: one value per node",
            ));
        }
        if !p.nodes.windows(2).all(|w| w[0] < w[1]) {
            return Err(ReputationError::InvalidParams(
                "trust vector: nodes must be strictly ascending",
            ));
        }
        Ok(Self {
            nodes: p.nodes,
            values: p.values,
            iterations: p.iterations,
            converged: p.converged,
            residual: p.residual,
        })
    }
}

impl TrustVector {
    /// Global trust of `id`; zero for ids not in the graph.
    pub fn get(&self, id: &NodeId) -> Score {
        self.nodes
            .binary_search(id)
            .map(|i| self.values[i])
            .unwrap_or(Score::ZERO)
    }
    /// `(id, trust)` in id order.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, Score)> + '_ {
        self.nodes.iter().copied().zip(self.values.iter().copied())
    }
    /// Trust values in id order.
    pub fn values(&self) -> &[Score] {
        &self.values
    }
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.values.len()
    }
    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    /// Exact sum of the raw values (one is `2^60`).
    pub fn raw_sum(&self) -> u128 {
        self.values.iter().map(|s| u128::from(s.raw())).sum()
    }
    /// The largest entry.
    pub fn max(&self) -> Score {
        self.values.iter().copied().max().unwrap_or(Score::ZERO)
    }
    /// True if `id`'s trust is zero (ids not in the vector included) or
    /// below `min_bps_of_mean` basis points of the mean entry (`10_000`:
    /// the mean itself). Exact: `t · n · 10⁴ < min · Σt` in integers.
    pub fn is_below_share_of_mean(&self, id: &NodeId, min_bps_of_mean: u32) -> bool {
        let t = u128::from(self.get(id).raw());
        if t == 0 {
            return true;
        }
        let n = self.values.len() as u128;
        t * n * 10_000 < u128::from(min_bps_of_mean) * self.raw_sum()
    }
}

/// The EigenTrust algorithm (a namespace for [`EigenTrust::compute`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct EigenTrust;

impl EigenTrust {
    /// Runs the power iteration (see the module docs). Non-convergence within
    /// `max_iterations` is not an error: check [`TrustVector::converged`].
    pub fn compute(
        graph: &TrustGraph,
        pretrusted: &[NodeId],
        params: &TrustParams,
    ) -> Result<TrustVector, ReputationError> {
        params.validate()?;
        let p = graph.anchors(pretrusted, params.stake_share)?;
        let n = graph.node_count();
        let one = Score::ONE.raw();
        let keep = params.damping.complement();
        let mut t = vec![0u64; n];
        for &(i, pi) in &p {
            t[i] = pi.raw();
        }
        let mut next = vec![0u64; n];
        let (mut iterations, mut converged, mut residual) = (0u32, false, u128::MAX);
        while iterations < params.max_iterations {
            iterations += 1;
            next.fill(0);
            for (i, &ti) in t.iter().enumerate() {
                if ti == 0 {
                    continue;
                }
                let ti = keep.mul_u64(ti);
                for (j, c) in graph.row(i) {
                    next[j] += c.mul_u64(ti);
                }
            }
            let passed: u64 = next.iter().sum();
            assert!(passed <= one, "passed trust {passed} exceeds one");
            let leftover = one - passed;
            for &(i, pi) in &p {
                next[i] += pi.mul_u64(leftover);
            }
            residual = t
                .iter()
                .zip(&next)
                .map(|(&a, &b)| u128::from(a.abs_diff(b)))
                .sum();
            core::mem::swap(&mut t, &mut next);
            if residual <= u128::from(params.tolerance.raw()) {
                converged = true;
                break;
            }
        }
        let values = t
            .into_iter()
            .map(|v| Score::from_raw(v).expect("entries never exceed the total of one"))
            .collect();
        Ok(TrustVector {
            nodes: graph.nodes.clone(),
            values,
            iterations,
            converged,
            residual: Score::from_raw(residual.min(u128::from(one)) as u64)
                .expect("clamped to one"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::{Keypair, Seed};

    fn ids(n: u64) -> Vec<NodeId> {
        (0..n)
            .map(|i| Keypair::from_seed(&Seed::from_u64(i)).node_id())
            .collect()
    }

    #[test]
    fn ring_without_anchor_gets_zero() {
        let id = ids(6);
        let nodes: Vec<_> = id.iter().map(|&i| (i, Amount::ZERO)).collect();
        // 0 <-> 1 honest, anchored on 0; 2..6 a ring.
        let mut edges = vec![(0, 1, 5), (1, 0, 5)];
        for k in 2..6u32 {
            edges.push((k, if k == 5 { 2 } else { k + 1 }, 1_000_000));
            edges.push((k, 0, 1)); // the ring may rate honest peers
        }
        let params = TrustParams::default();
        let g = TrustGraph::from_indexed(nodes, edges, &params).unwrap();
        let tv = EigenTrust::compute(&g, &[id[0]], &params).unwrap();
        assert!(tv.converged);
        for sybil in &id[2..6] {
            assert_eq!(tv.get(sybil), Score::ZERO);
        }
        let sum = tv.raw_sum();
        let one = u128::from(Score::ONE.raw());
        assert!(one - sum <= 64, "sum {sum}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        let id = ids(3);
        let nodes: Vec<_> = id.iter().map(|&i| (i, Amount::ZERO)).collect();
        let params = TrustParams::default();
        assert!(matches!(
            TrustGraph::from_indexed(nodes.clone(), vec![(0, 7, 1)], &params),
            Err(ReputationError::NodeIndexOutOfRange { .. })
        ));
        let g = TrustGraph::from_indexed(nodes.clone(), vec![(0, 1, 1)], &params).unwrap();
        assert_eq!(
            EigenTrust::compute(&g, &[], &params),
            Err(ReputationError::NoTrustAnchor)
        );
        let stranger = ids(4)[3];
        assert_eq!(
            EigenTrust::compute(&g, &[stranger], &params),
            Err(ReputationError::UnknownNode(stranger))
        );
        let mut dup = nodes.clone();
        dup.push(nodes[0]);
        assert!(TrustGraph::from_indexed(dup, vec![], &params).is_err());
        let small = TrustParams {
            max_nodes: 2,
            ..params
        };
        assert!(matches!(
            TrustGraph::from_indexed(nodes, vec![], &small),
            Err(ReputationError::GraphTooLarge { .. })
        ));
        let bad = TrustParams {
            damping: Score::ZERO,
            ..params
        };
        assert!(EigenTrust::compute(&g, &[id[0]], &bad).is_err());
        assert!(TrustParams::from_f64(0.15, 1e-7, 0.5).is_ok());
        assert!(TrustParams::from_f64(f64::NAN, 1e-7, 0.5).is_err());
        assert!(TrustParams::from_f64(0.15, f64::NEG_INFINITY, 0.5).is_err());
        assert!(TrustParams::from_f64(1.0, 1e-7, 0.5).is_err());
    }

    #[test]
    fn decoding_checks_the_shape_and_the_share_test_is_exact() {
        use idlegrid_primitives::{decode, encode};
        let id = ids(4);
        let nodes: Vec<_> = id.iter().map(|&i| (i, Amount::new(1))).collect();
        let params = TrustParams::default();
        let g = TrustGraph::from_indexed(nodes, vec![(0, 1, 9), (2, 1, 9)], &params).unwrap();
        let tv = EigenTrust::compute(&g, &[], &params).unwrap();
        let back: TrustVector = decode(&encode(&tv), 1 << 16).unwrap();
        assert_eq!(back, tv);
        // Node 1 is rated by two peers: above the mean. Node 3 is rated by
        // no one: only its share of what returns to the stake anchors,
        // 1/4 · 1/1.425 ≈ 0.175, 70 % of the mean 0.25.
        assert!(!tv.is_below_share_of_mean(&id[1], 10_000));
        assert!(tv.is_below_share_of_mean(&id[3], 7_100));
        assert!(!tv.is_below_share_of_mean(&id[3], 6_900));
        assert!(!tv.is_below_share_of_mean(&id[3], 0));
        let outsider = Keypair::from_seed(&Seed::from_u64(99)).node_id();
        assert!(tv.is_below_share_of_mean(&outsider, 0));
        // Reordered or ragged vectors do not decode.
        let mut swapped = tv.clone();
        swapped.nodes.swap(0, 1);
        assert!(decode::<TrustVector>(&encode(&swapped), 1 << 16).is_err());
        let mut ragged = tv;
        ragged.values.pop();
        assert!(decode::<TrustVector>(&encode(&ragged), 1 << 16).is_err());
    }
}
