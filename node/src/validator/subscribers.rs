//! The light nodes a validator serves facts to: at most
//! [`MAX_SUBSCRIBERS`](super::MAX_SUBSCRIBERS); when full, a new subscriber
//! takes the place of the one heard from least recently (light nodes
//! subscribe again when they ask for holdings or fail over, so an evicted
//! node that is still alive comes back).

use std::collections::BTreeMap;

use idlegrid_primitives::{AccountId, NodeId};

/// Subscribers by account, with the order they were last heard from. A
/// light node is served at the node id of its account's key
/// ([`AccountId::node`]), so only the account is kept.
#[derive(Debug)]
pub(crate) struct Subscribers {
    by_account: BTreeMap<AccountId, u64>,
    by_heard: BTreeMap<u64, AccountId>,
    /// Counts gateway requests: the recency stamp.
    heard: u64,
    cap: usize,
}

impl Subscribers {
    pub(crate) fn new(cap: usize) -> Self {
        assert!(cap > 0, "room for one subscriber at least");
        Self {
            by_account: BTreeMap::new(),
            by_heard: BTreeMap::new(),
            heard: 0,
            cap,
        }
    }

    /// `node` subscribes (again): its account is served at `node` from now
    /// on. Returns the account evicted to make room, if any.
    pub(crate) fn subscribe(&mut self, node: NodeId) -> Option<AccountId> {
        let acct = node.account();
        let mut evicted = None;
        if !self.by_account.contains_key(&acct) && self.by_account.len() >= self.cap {
            let (_, old) = self.by_heard.pop_first().expect("full, so non-empty");
            self.by_account.remove(&old);
            evicted = Some(old);
        }
        self.stamp(acct);
        debug_assert_eq!(self.by_account.len(), self.by_heard.len());
        evicted
    }

    /// A request from `node`: a subscriber is marked as heard from now.
    pub(crate) fn heard_from(&mut self, node: NodeId) {
        if self.contains(&node.account()) {
            self.stamp(node.account());
        }
    }

    fn stamp(&mut self, acct: AccountId) {
        self.heard += 1;
        if let Some(at) = self.by_account.insert(acct, self.heard) {
            self.by_heard.remove(&at);
        }
        self.by_heard.insert(self.heard, acct);
    }

    /// Where `acct` is served.
    pub(crate) fn get(&self, acct: &AccountId) -> Option<NodeId> {
        self.by_account.contains_key(acct).then(|| acct.node())
    }

    pub(crate) fn contains(&self, acct: &AccountId) -> bool {
        self.by_account.contains_key(acct)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_account.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_account.is_empty()
    }

    /// Every subscribed account.
    pub(crate) fn accounts(&self) -> impl Iterator<Item = &AccountId> {
        self.by_account.keys()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_primitives::{Keypair, Seed};

    fn node(i: u64) -> NodeId {
        Keypair::from_seed(&Seed::from_u64(i)).node_id()
    }

    #[test]
    fn when_full_the_least_recently_heard_makes_room() {
        let mut s = Subscribers::new(2);
        assert_eq!(s.subscribe(node(1)), None);
        assert_eq!(s.subscribe(node(2)), None);
        s.heard_from(node(1));
        // Node 2 was heard from last before node 1's request.
        assert_eq!(s.subscribe(node(3)), Some(node(2).account()));
        assert!(s.contains(&node(1).account()) && s.contains(&node(3).account()));
        // Subscribing again is not a new entry and evicts nobody.
        assert_eq!(s.subscribe(node(1)), None);
        assert_eq!(s.len(), 2);
        // A stranger's request refreshes nothing.
        s.heard_from(node(9));
        assert_eq!(s.subscribe(node(4)), Some(node(3).account()));
        assert_eq!(s.get(&node(1).account()), Some(node(1)));
    }
}
