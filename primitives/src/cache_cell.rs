//! A write-once cache kept inside the value it is derived from.
//!
//! Blocks remember their hashes and commit-rule counts, certificates the
//! committee they were found valid for: results that are pure functions of
//! the value holding them, computed by the first reader in the process and
//! read by every other. Such a cache is not part of the value: a clone
//! starts empty (the clone may then be altered), any two compare equal,
//! and it is never serialized (`#[serde(skip)]`, which its `Default`
//! allows). What the cache is keyed by, and what guards it against a value
//! changed in place, is its user's to decide and document.
//!
//! ```
//! use idlegrid_primitives::CacheCell;
//!
//! #[derive(Clone, PartialEq, Debug, Default)]
//! struct Page {
//!     text: String,
//!     words: CacheCell<usize>,
//! }
//!
//! let page = Page { text: "a b c".into(), ..Page::default() };
//! let count = |p: &Page| *p.words.get_or_init(|| p.text.split(' ').count());
//! assert_eq!(count(&page), 3);
//! assert_eq!(page.words.get(), Some(&3));
//! let copy = page.clone();
//! assert_eq!(copy.words.get(), None, "a clone starts empty");
//! assert_eq!(copy, page, "the cache is ignored by ==");
//! ```

use std::fmt;
use std::sync::OnceLock;

/// A write-once cache that a clone does not copy, `==` ignores and debug
/// output names only; see the module docs.
pub struct CacheCell<T>(OnceLock<T>);

impl<T> CacheCell<T> {
    /// The cached value, if any.
    pub fn get(&self) -> Option<&T> {
        self.0.get()
    }

    /// The cached value, computing it with `f` if there is none.
    pub fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
        self.0.get_or_init(f)
    }

    /// Caches `value` unless something is cached already (then `value`
    /// is handed back).
    pub fn set(&self, value: T) -> Result<(), T> {
        self.0.set(value)
    }
}

impl<T> Default for CacheCell<T> {
    fn default() -> Self {
        Self(OnceLock::new())
    }
}

/// Starts empty: the clone may be altered and its cache filled afresh.
impl<T> Clone for CacheCell<T> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// Ignored by equality: it only caches what the value determines.
impl<T> PartialEq for CacheCell<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for CacheCell<T> {}

impl<T> fmt::Debug for CacheCell<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "CacheCell(set)"
        } else {
            "CacheCell(empty)"
        })
    }
}
