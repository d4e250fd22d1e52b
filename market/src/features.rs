//! Environments: what a provider's runtime offers and what a job needs.
//!
//! A [`Feature`] names one capability of a provider's runtime that a job
//! may depend on: a Python package its sandbox's interpreter can import
//! (`numpy`), the interpreter itself (`python3.11`), a tool. An ask carries
//! the provider's [`Features`]; a bid carries the features its job
//! requires, and [`crate::compatible`] pairs them only when the ask offers
//! every one of them. Names are compared after normalization (lower case),
//! so `NumPy` and `numpy` are the same feature.
//!
//! ```
//! use idlegrid_market::{Feature, Features};
//!
//! let offered = Features::from_names(["python3.11", "numpy", "pandas"]).unwrap();
//! let needed = Features::from_names(["NumPy"]).unwrap();
//! assert!(offered.contains_all(&needed));
//! let nothing = Features::NONE;
//! let missing: Vec<&Feature> = needed.missing_from(&nothing).collect();
//! assert_eq!(missing[0].as_str(), "numpy");
//! ```

use core::fmt;

use serde::{Deserialize, Serialize};

/// Longest feature name, in bytes.
pub const MAX_FEATURE_NAME: usize = 48;
/// Most features in one set (an ask's offer or a bid's requirements).
pub const MAX_FEATURES: usize = 256;

/// Why a feature name or set is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FeatureError {
    /// Empty, too long, or a character outside `[a-z0-9._+-]` (after
    /// lower-casing).
    #[error(
        "feature name {0:?} is not 1..={MAX_FEATURE_NAME} characters of letters, digits, '.', '_', '+' or '-'"
    )]
    BadName(String),
    /// More than [`MAX_FEATURES`] distinct features.
    #[error("{0} features; at most {MAX_FEATURES}")]
    TooMany(usize),
    /// A decoded set that is not strictly ascending (or holds a bad name).
    #[error("feature set is not canonical (sorted, distinct, valid names)")]
    NotCanonical,
}

/// One capability of a provider's runtime, by normalized name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Feature(String);

impl Feature {
    /// The feature `name`, lower-cased; see [`FeatureError::BadName`].
    pub fn named(name: &str) -> Result<Self, FeatureError> {
        let n = name.trim().to_ascii_lowercase();
        if Self::valid(&n) {
            Ok(Self(n))
        } else {
            Err(FeatureError::BadName(name.to_string()))
        }
    }

    fn valid(n: &str) -> bool {
        (1..=MAX_FEATURE_NAME).contains(&n.len())
            && n.bytes().all(|b| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || matches!(b, b'.' | b'_' | b'+' | b'-')
            })
    }

    /// The normalized name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Feature({})", self.0)
    }
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of features: sorted, distinct, at most [`MAX_FEATURES`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Features(Vec<Feature>);

impl Features {
    /// The empty set: an ask that offers nothing beyond its executor, a bid
    /// that needs nothing.
    pub const NONE: Features = Features(Vec::new());

    /// The set of `features` (duplicates merged).
    pub fn new(features: impl IntoIterator<Item = Feature>) -> Result<Self, FeatureError> {
        let mut v: Vec<Feature> = features.into_iter().collect();
        v.sort();
        v.dedup();
        if v.len() > MAX_FEATURES {
            return Err(FeatureError::TooMany(v.len()));
        }
        Ok(Self(v))
    }

    /// The set of the features named `names`.
    pub fn from_names<S: AsRef<str>>(
        names: impl IntoIterator<Item = S>,
    ) -> Result<Self, FeatureError> {
        let fs = names
            .into_iter()
            .map(|n| Feature::named(n.as_ref()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(fs)
    }

    /// Checks a decoded set: what [`Features::new`] would have built.
    pub fn check(&self) -> Result<(), FeatureError> {
        if self.0.len() > MAX_FEATURES {
            return Err(FeatureError::TooMany(self.0.len()));
        }
        let names_ok = self.0.iter().all(|f| Feature::valid(&f.0));
        if !names_ok || self.0.windows(2).any(|w| w[0] >= w[1]) {
            return Err(FeatureError::NotCanonical);
        }
        Ok(())
    }

    /// True if every feature of `needed` is in this set (a merge walk over
    /// the two sorted lists).
    pub fn contains_all(&self, needed: &Features) -> bool {
        self.missing_from_sorted(needed).next().is_none()
    }

    /// The features of this set (the needed ones) that `offered` lacks.
    pub fn missing_from<'a>(&'a self, offered: &'a Features) -> impl Iterator<Item = &'a Feature> {
        offered.missing_from_sorted(self)
    }

    fn missing_from_sorted<'a>(
        &'a self,
        needed: &'a Features,
    ) -> impl Iterator<Item = &'a Feature> + 'a {
        let mut have = self.0.iter().peekable();
        needed.0.iter().filter(move |n| {
            while have.next_if(|h| *h < *n).is_some() {}
            have.peek() != Some(n)
        })
    }

    /// True if the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Number of features.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// The features, ascending.
    pub fn iter(&self) -> impl Iterator<Item = &Feature> {
        self.0.iter()
    }
}

impl fmt::Debug for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|x| &x.0)).finish()
    }
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, x) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&x.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(names: &[&str]) -> Features {
        Features::from_names(names).unwrap()
    }

    #[test]
    fn names_are_normalized_and_checked() {
        assert_eq!(Feature::named(" NumPy ").unwrap().as_str(), "numpy");
        assert_eq!(
            Feature::named("scikit-learn").unwrap().as_str(),
            "scikit-learn"
        );
        for bad in [
            "",
            "a b",
            "numpy;rm",
            &"x".repeat(MAX_FEATURE_NAME + 1),
            "é",
        ] {
            assert!(Feature::named(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sets_are_bounded_and_canonical() {
        let many = (0..=MAX_FEATURES).map(|i| format!("f{i}"));
        assert_eq!(
            Features::from_names(many),
            Err(FeatureError::TooMany(MAX_FEATURES + 1))
        );
        assert_eq!(set(&["b", "a", "b"]), set(&["a", "b"]));
        let unsorted = Features(vec![Feature("b".into()), Feature("a".into())]);
        assert_eq!(unsorted.check(), Err(FeatureError::NotCanonical));
        let bad = Features(vec![Feature("A".into())]);
        assert_eq!(bad.check(), Err(FeatureError::NotCanonical));
        assert_eq!(set(&["a", "b"]).check(), Ok(()));
    }

    #[test]
    fn missing_lists_exactly_what_is_absent() {
        let offered = set(&["numpy", "python3.11"]);
        let needed = set(&["numpy", "pandas", "torch"]);
        let missing: Vec<_> = needed.missing_from(&offered).map(|f| f.as_str()).collect();
        assert_eq!(missing, ["pandas", "torch"]);
        assert!(offered.contains_all(&Features::NONE));
        assert!(!Features::NONE.contains_all(&needed));
    }

    fn names() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec("[a-e]{1,2}", 0..8)
    }

    proptest! {
        /// The merge walk agrees with the naive definition of ⊇.
        #[test]
        fn contains_all_is_superset(a in names(), b in names()) {
            let (a, b) = (Features::from_names(&a).unwrap(), Features::from_names(&b).unwrap());
            let naive = b.iter().all(|f| a.iter().any(|g| g == f));
            prop_assert_eq!(a.contains_all(&b), naive);
            prop_assert_eq!(b.missing_from(&a).count(), b.iter().filter(|f| !a.0.contains(f)).count());
        }

        /// Canonical sets survive the wire unchanged and pass `check`.
        #[test]
        fn round_trips(a in names()) {
            let a = Features::from_names(&a).unwrap();
            let back: Features = idlegrid_primitives::decode(&idlegrid_primitives::encode(&a), 1 << 16).unwrap();
            prop_assert_eq!(back.check(), Ok(()));
            prop_assert_eq!(back, a);
        }
    }
}
