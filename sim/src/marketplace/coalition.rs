//! A colluding coalition's pooled memory: every input any member was
//! handed, shared out of band (the adversary's channel, not the
//! protocol's). A member answers honestly every input the coalition has
//! seen — it might be a reused trap ([`idlegrid_entrap::reuse`]) — and
//! cheats by its behaviour on the rest.
//!
//! Without answer reuse no input is ever handed out twice, so the pool
//! never changes what a member does: the memory is the colluders' from
//! the first lot of every run, with or without reuse.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use idlegrid_primitives::Digest;

/// Inputs a coalition remembers at most (the oldest are forgotten first).
pub const MAX_POOLED_INPUTS: usize = 1 << 20;

#[derive(Debug, Default)]
struct Pool {
    seen: BTreeSet<Digest>,
    order: VecDeque<Digest>,
}

/// A handle on a coalition's pooled memory; clones share it.
#[derive(Debug, Clone, Default)]
pub struct Coalition(Arc<Mutex<Pool>>);

impl Coalition {
    /// Whether some member was handed `input` before.
    pub fn has_seen(&self, input: &Digest) -> bool {
        self.0.lock().expect("coalition pool").seen.contains(input)
    }

    /// Pools the inputs a member was just handed.
    pub fn pool(&self, inputs: &[Digest]) {
        let mut p = self.0.lock().expect("coalition pool");
        for d in inputs {
            if p.seen.insert(*d) {
                p.order.push_back(*d);
            }
        }
        while p.order.len() > MAX_POOLED_INPUTS {
            if let Some(old) = p.order.pop_front() {
                p.seen.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::Domain;

    #[test]
    fn members_share_what_any_of_them_saw() {
        let a = Coalition::default();
        let b = a.clone();
        let x = Digest::of(Domain::new("idlegrid/sim/test-coalition"), &1u8);
        assert!(!b.has_seen(&x));
        a.pool(&[x]);
        assert!(b.has_seen(&x));
        assert!(!Coalition::default().has_seen(&x));
    }
}
