//! The built-in clearing mechanisms by name, for configuration files and
//! command lines (`mechanism = "mcafee"`).
//!
//! Each entry's name is its mechanism's [`Mechanism::name`], so a report
//! that prints the name of the mechanism it ran prints the configured one.
//!
//! ```
//! use idlegrid_market::{MECHANISMS, mechanism_named};
//! let m = mechanism_named("pay_as_ask").unwrap();
//! assert_eq!((m.build)().name(), "pay_as_ask");
//! assert!(mechanism_named("vickrey").is_none());
//! assert_eq!(MECHANISMS.len(), 4);
//! ```

use crate::clearing::Mechanism;
use crate::unit::{KDouble, McAfee, PayAsAsk, PayAsBid};

/// A mechanism that can be chosen by name.
#[derive(Clone, Copy)]
pub struct NamedMechanism {
    /// Its [`Mechanism::name`].
    pub name: &'static str,
    /// Builds it (the k-double auction with `k = 1/2`).
    pub build: fn() -> Box<dyn Mechanism>,
}

impl std::fmt::Debug for NamedMechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl PartialEq for NamedMechanism {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// Every built-in batch mechanism, the default (`k_double`) first.
pub const MECHANISMS: &[NamedMechanism] = &[
    NamedMechanism {
        name: "k_double",
        build: || Box::new(KDouble::half()),
    },
    NamedMechanism {
        name: "mcafee",
        build: || Box::new(McAfee),
    },
    NamedMechanism {
        name: "pay_as_bid",
        build: || Box::new(PayAsBid),
    },
    NamedMechanism {
        name: "pay_as_ask",
        build: || Box::new(PayAsAsk),
    },
];

/// The built-in mechanism called `name`, if any.
pub fn mechanism_named(name: &str) -> Option<&'static NamedMechanism> {
    MECHANISMS.iter().find(|m| m.name == name)
}

/// The names of [`MECHANISMS`], comma-separated (for error messages).
pub fn mechanism_names() -> String {
    MECHANISMS
        .iter()
        .map(|m| m.name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_its_mechanisms_name() {
        for m in MECHANISMS {
            assert_eq!((m.build)().name(), m.name);
            assert_eq!(mechanism_named(m.name), Some(m));
        }
        assert_eq!(
            mechanism_names(),
            "k_double, mcafee, pay_as_bid, pay_as_ask"
        );
    }
}
