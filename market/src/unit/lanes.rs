//! Splitting a batch into independent components of the
//! (region × executor kind) lane graph.

use core::ops::Range;

use super::scratch::SideUnits;
use crate::types::{ExecutorKind, ExecutorSet, MAX_REGIONS, RegionSet};

const LANES: usize = MAX_REGIONS as usize * ExecutorKind::ALL.len();

pub(super) fn lane(region: u8, exec: ExecutorKind) -> usize {
    usize::from(region) * ExecutorKind::ALL.len() + exec.index()
}

fn uf_find(p: &mut [usize; LANES], mut x: usize) -> usize {
    while p[x] != x {
        p[x] = p[p[x]];
        x = p[x];
    }
    x
}

fn uf_union(p: &mut [usize; LANES], a: usize, b: usize) {
    let (ra, rb) = (uf_find(p, a), uf_find(p, b));
    // Smaller root wins: deterministic regardless of call order.
    let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
    p[hi] = lo;
}

/// Joins the lanes an ask's executor set or a bid's region set connects.
fn lane_components(sa: &SideUnits, sb: &SideUnits) -> [usize; LANES] {
    let mut p = [0usize; LANES];
    for (i, x) in p.iter_mut().enumerate() {
        *x = i;
    }
    for &(r, bits) in &sa.keys {
        let mut it = ExecutorSet::from_bits(bits).iter();
        if let Some(first) = it.next() {
            for e in it {
                uf_union(&mut p, lane(r as u8, first), lane(r as u8, e));
            }
        }
    }
    for &(bits, e) in &sb.keys {
        let e = ExecutorKind::ALL[usize::from(e)];
        let mut it = RegionSet::from_bits(bits).iter();
        if let Some(first) = it.next() {
            for r in it {
                uf_union(&mut p, lane(first.get(), e), lane(r.get(), e));
            }
        }
    }
    for x in 0..LANES {
        p[x] = uf_find(&mut p, x);
    }
    p
}

/// Splits live orders into independent components of the lane graph and
/// writes them to `out` as (asks, bids) ranges of the sides' units, in
/// ascending lane order, leaving out components with an empty side. Each
/// component keeps its units in input order. One component (the common
/// case) moves nothing.
pub(super) fn partition(
    sa: &mut SideUnits,
    sb: &mut SideUnits,
    out: &mut Vec<(Range<usize>, Range<usize>)>,
) {
    out.clear();
    let root = lane_components(sa, sb);
    let single = |s: &SideUnits| s.anchors.first().map(|&l| root[usize::from(l)]);
    if let (Some(ra), Some(rb)) = (single(sa), single(sb)) {
        let same = |s: &SideUnits| s.anchors.iter().all(|&l| root[usize::from(l)] == ra);
        if ra == rb && same(sa) && same(sb) {
            out.push((0..sa.units.len(), 0..sb.units.len()));
            return;
        }
    }
    let (ca, cb) = (group_by_root(sa, &root), group_by_root(sb, &root));
    for c in 0..LANES {
        if !ca[c].is_empty() && !cb[c].is_empty() {
            out.push((ca[c].clone(), cb[c].clone()));
        }
    }
}

/// Reorders a side's units by component (a stable counting sort on the
/// root of each unit's anchor lane) and returns each root's range. The
/// anchors keep the input order: nothing reads them after this.
fn group_by_root(s: &mut SideUnits, root: &[usize; LANES]) -> Vec<Range<usize>> {
    let mut start = vec![0usize; LANES + 1];
    for &l in &s.anchors {
        start[root[usize::from(l)] + 1] += 1;
    }
    for c in 0..LANES {
        start[c + 1] += start[c];
    }
    let ranges = (0..LANES).map(|c| start[c]..start[c + 1]).collect();
    s.grow_tmp();
    for (u, &l) in s.units.iter().zip(&s.anchors) {
        let c = root[usize::from(l)];
        s.tmp[start[c]] = *u;
        start[c] += 1;
    }
    let n = s.units.len();
    core::mem::swap(&mut s.units, &mut s.tmp);
    s.units.truncate(n);
    ranges
}
