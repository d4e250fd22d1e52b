//! The light nodes a validator serves facts to: at most
//! [`MAX_SUBSCRIBERS`](super::MAX_SUBSCRIBERS); when full, a new subscriber
//! takes the place of the one heard from least recently (light nodes
//! subscribe again when they ask for holdings or fail over, so an evicted
//! node that is still alive comes back).

use std::collections::{BTreeMap, BTreeSet};

use idlegrid_primitives::{AccountId, NodeId};

use crate::certified::FactsMode;

/// What [`Subscribers::subscribe`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Subscribed {
    /// The account evicted to make room, if any.
    pub(crate) evicted: Option<AccountId>,
    /// How the node was subscribed before, if it was.
    pub(crate) before: Option<FactsMode>,
}

/// Subscribers by account, with the order they were last heard from. A
/// light node is served at the node id of its account's key
/// ([`AccountId::node`]), so only the account is kept.
#[derive(Debug)]
pub(crate) struct Subscribers {
    by_account: BTreeMap<AccountId, (u64, FactsMode)>,
    by_heard: BTreeMap<u64, AccountId>,
    /// The subscribers sent their facts certified.
    certified: BTreeSet<AccountId>,
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
            certified: BTreeSet::new(),
            heard: 0,
            cap,
        }
    }

    /// `node` subscribes (again), its facts sent as `mode`: its
    /// account is served at `node` from now on.
    pub(crate) fn subscribe(&mut self, node: NodeId, mode: FactsMode) -> Subscribed {
        let acct = node.account();
        let before = self.by_account.get(&acct).map(|(_, g)| *g);
        let mut evicted = None;
        if before.is_none() && self.by_account.len() >= self.cap {
            let (_, old) = self.by_heard.pop_first().expect("full, so non-empty");
            self.by_account.remove(&old);
            self.certified.remove(&old);
            evicted = Some(old);
        }
        self.stamp(acct, mode);
        match mode {
            FactsMode::Certified => self.certified.insert(acct),
            _ => self.certified.remove(&acct),
        };
        debug_assert_eq!(self.by_account.len(), self.by_heard.len());
        Subscribed { evicted, before }
    }

    /// A request from `node`: a subscriber is marked as heard from now.
    pub(crate) fn heard_from(&mut self, node: NodeId) {
        if let Some((_, mode)) = self.by_account.get(&node.account()) {
            self.stamp(node.account(), *mode);
        }
    }

    fn stamp(&mut self, acct: AccountId, mode: FactsMode) {
        self.heard += 1;
        if let Some((at, _)) = self.by_account.insert(acct, (self.heard, mode)) {
            self.by_heard.remove(&at);
        }
        self.by_heard.insert(self.heard, acct);
    }

    /// Where `acct` is served.
    pub(crate) fn get(&self, acct: &AccountId) -> Option<NodeId> {
        self.by_account.contains_key(acct).then(|| acct.node())
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, acct: &AccountId) -> bool {
        self.by_account.contains_key(acct)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_account.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_account.is_empty()
    }

    /// Every subscribed account, with how it hears its facts.
    pub(crate) fn accounts(&self) -> impl Iterator<Item = (&AccountId, FactsMode)> {
        self.by_account.iter().map(|(a, (_, g))| (a, *g))
    }

    /// How `acct` hears global facts (reported if not subscribed).
    /// How `acct` hears its facts, if it is a subscriber.
    pub(crate) fn mode(&self, acct: &AccountId) -> Option<FactsMode> {
        self.by_account.get(acct).map(|(_, m)| *m)
    }

    /// The subscribers sent their facts certified.
    pub(crate) fn certified(&self) -> impl Iterator<Item = &AccountId> {
        self.certified.iter()
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
        let sub = |s: &mut Subscribers, i| s.subscribe(node(i), FactsMode::Reported).evicted;
        assert_eq!(sub(&mut s, 1), None);
        assert_eq!(sub(&mut s, 2), None);
        s.heard_from(node(1));
        // Node 2 was heard from last before node 1's request.
        assert_eq!(sub(&mut s, 3), Some(node(2).account()));
        assert!(s.contains(&node(1).account()) && s.contains(&node(3).account()));
        // Subscribing again is not a new entry and evicts nobody.
        assert_eq!(sub(&mut s, 1), None);
        assert_eq!(s.len(), 2);
        // A stranger's request refreshes nothing.
        s.heard_from(node(9));
        assert_eq!(sub(&mut s, 4), Some(node(3).account()));
        assert_eq!(s.get(&node(1).account()), Some(node(1)));
    }

    #[test]
    fn the_certified_set_follows_subscriptions_and_evictions() {
        let mut s = Subscribers::new(2);
        let got = s.subscribe(node(1), FactsMode::Certified);
        assert_eq!(
            got,
            Subscribed {
                evicted: None,
                before: None
            }
        );
        s.subscribe(node(2), FactsMode::Silent);
        assert_eq!(s.certified().count(), 1);
        // Node 1 asks for its global facts reported instead, then certified.
        let again = s.subscribe(node(1), FactsMode::Reported);
        assert_eq!(again.before, Some(FactsMode::Certified));
        assert_eq!(s.certified().count(), 0);
        s.subscribe(node(1), FactsMode::Certified);
        s.heard_from(node(2));
        // Node 1, heard from least recently, makes room and leaves the set.
        assert_eq!(
            s.subscribe(node(3), FactsMode::Silent).evicted,
            Some(node(1).account())
        );
        assert_eq!(s.certified().count(), 0);
        assert_eq!(s.mode(&node(2).account()), Some(FactsMode::Silent));
        assert_eq!(s.mode(&node(1).account()), None);
    }
}
