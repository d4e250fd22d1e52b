//! Sorting a side's units: an LSD radix sort on the bytes of (price, id)
//! that differ between units.
//!
//! The order is total (ids are unique on a side), so any correct sort gives
//! the same sequence; the radix sort is just cheaper on large sides. Each
//! pass is a stable counting sort on one byte, least significant first:
//! first the id's bytes, then the price's. Bytes equal in every unit are
//! skipped, and so are all the id's bytes when the units already come in
//! ascending id order (a stable sort on price alone then keeps ties by id).
//! For prices above 64 bits this costs at most 24 passes, usually 2–4.

use super::Unit;

/// Sides shorter than this use a comparison sort (the radix sort's
/// 256-entry counts do not pay off).
const RADIX_MIN: usize = 512;

/// One byte of the sort key.
#[derive(Clone, Copy)]
enum Digit {
    Id(u32),
    Price(u32),
}

impl Digit {
    /// The digit of `u`; prices are complemented for a descending order.
    #[inline]
    fn of(self, u: &Unit, flip: u128) -> usize {
        match self {
            Digit::Id(shift) => ((u.id.get() >> shift) & 0xff) as usize,
            Digit::Price(shift) => (((u.price.get() ^ flip) >> shift) & 0xff) as usize,
        }
    }
}

/// Sorts `src` by price (ascending, or descending when `descending`), then
/// id ascending, using `dst` (as long as `src`) as the other buffer.
/// Returns true if the sorted units ended up in `dst`.
pub(super) fn sort_units(
    src: &mut [Unit],
    dst: &mut [Unit],
    descending: bool,
    ids_ascending: bool,
) -> bool {
    assert_eq!(src.len(), dst.len());
    if src.len() < RADIX_MIN {
        comparison_sort(src, descending);
        return false;
    }
    let flip = if descending { u128::MAX } else { 0 };
    let digits = varying_digits(src, ids_ascending);
    let (mut from, mut to) = (src, dst);
    for &d in &digits {
        let mut offsets = [0usize; 256];
        for u in from.iter() {
            offsets[d.of(u, flip)] += 1;
        }
        let mut sum = 0;
        for o in &mut offsets {
            sum += core::mem::replace(o, sum);
        }
        for u in from.iter() {
            let b = d.of(u, flip);
            to[offsets[b]] = *u;
            offsets[b] += 1;
        }
        core::mem::swap(&mut from, &mut to);
    }
    debug_assert!(from.windows(2).all(|w| in_order(&w[0], &w[1], descending)));
    // Each pass moves the units to the other buffer.
    digits.len() % 2 == 1
}

/// The bytes (least significant first) that differ between units.
fn varying_digits(units: &[Unit], ids_ascending: bool) -> Vec<Digit> {
    let (mut p_or, mut p_and, mut i_or, mut i_and) = (0u128, u128::MAX, 0u64, u64::MAX);
    for u in units {
        p_or |= u.price.get();
        p_and &= u.price.get();
        i_or |= u.id.get();
        i_and &= u.id.get();
    }
    let mut digits = Vec::new();
    if !ids_ascending {
        let varying = i_or ^ i_and;
        digits.extend(
            (0..64)
                .step_by(8)
                .filter(|s| (varying >> s) & 0xff != 0)
                .map(Digit::Id),
        );
    }
    let varying = p_or ^ p_and;
    digits.extend(
        (0..128)
            .step_by(8)
            .filter(|s| (varying >> s) & 0xff != 0)
            .map(Digit::Price),
    );
    digits
}

fn in_order(x: &Unit, y: &Unit, descending: bool) -> bool {
    let by_price = if descending {
        y.price.cmp(&x.price)
    } else {
        x.price.cmp(&y.price)
    };
    by_price.then(x.id.cmp(&y.id)).is_lt()
}

/// Asks by price ascending, bids by price descending, ties by order id.
///
/// When every price fits in 64 bits (always, in practice) the two keys are
/// packed into one `u128`, so each comparison is a single integer compare.
fn comparison_sort(side: &mut [Unit], descending: bool) {
    let small = side.iter().all(|u| u.price.get() <= u128::from(u64::MAX));
    let id = |u: &Unit| u128::from(u.id.get());
    match (small, descending) {
        (true, false) => side.sort_unstable_by_key(|u| (u.price.get() << 64) | id(u)),
        (true, true) => {
            side.sort_unstable_by_key(|u| ((u128::from(u64::MAX) - u.price.get()) << 64) | id(u))
        }
        (false, false) => side.sort_unstable_by(|x, y| x.price.cmp(&y.price).then(x.id.cmp(&y.id))),
        (false, true) => side.sort_unstable_by(|x, y| y.price.cmp(&x.price).then(x.id.cmp(&y.id))),
    }
}
