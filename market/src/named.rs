//! Clearing mechanisms by name, for configuration files and command lines
//! (`mechanism = "mcafee"`): the four built-ins ([`MECHANISMS`]) and a
//! [`MechanismRegistry`] to which a library user adds their own
//! [`Mechanism`] under a name of their choosing.
//!
//! Each built-in's name is its mechanism's [`Mechanism::name`], so a report
//! that prints the name of the mechanism it ran prints the configured one.
//! A registry is a plain value (no global state): build one, register,
//! pass it to whatever resolves names.
//!
//! ```
//! use idlegrid_market::*;
//! let m = mechanism_named("pay_as_ask").unwrap();
//! assert_eq!((m.build)().name(), "pay_as_ask");
//! assert!(mechanism_named("vickrey").is_none());
//!
//! // A k-double auction at k = 0 (the sellers' price), under its own name.
//! let mut reg = MechanismRegistry::builtin();
//! reg.register("k_double_0", || Box::new(KDouble::new(0).unwrap())).unwrap();
//! assert_eq!(reg.get("k_double_0").unwrap().name, "k_double_0");
//! assert_eq!(reg.names(), "k_double, mcafee, pay_as_bid, pay_as_ask, k_double_0");
//! assert!(reg.register("mcafee", || Box::new(McAfee)).is_err());
//! ```

use crate::clearing::Mechanism;
use crate::unit::{KDouble, McAfee, PayAsAsk, PayAsBid};

/// A mechanism that can be chosen by name.
#[derive(Clone, Copy)]
pub struct NamedMechanism {
    /// The name it is chosen by (a built-in's [`Mechanism::name`]).
    pub name: &'static str,
    /// Builds it (the built-in k-double auction has `k = 1/2`).
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
    MechanismRegistry::builtin().names()
}

/// Most mechanisms one registry holds.
pub const MAX_MECHANISMS: usize = 64;
/// Longest mechanism name, in bytes.
pub const MAX_NAME_LEN: usize = 32;

/// Why a mechanism could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MechanismNameError {
    /// The name is empty, too long or not `[a-z0-9_]`.
    #[error(
        "mechanism name `{0}` must be 1..={MAX_NAME_LEN} characters of a-z, 0-9 and _ (it is written in scenario files)"
    )]
    BadName(String),
    /// A mechanism of that name is already registered.
    #[error("a mechanism named `{0}` is already registered; pick another name")]
    Taken(String),
    /// The registry is full.
    #[error("at most {MAX_MECHANISMS} mechanisms can be registered")]
    Full,
}

/// Mechanisms by name: the built-ins and any a library user registers.
/// Names are looked up exactly; the order is registration order (the
/// built-ins first), which is the order [`names`](Self::names) lists them in.
#[derive(Debug, Clone, PartialEq)]
pub struct MechanismRegistry {
    entries: Vec<NamedMechanism>,
}

impl Default for MechanismRegistry {
    /// The built-ins.
    fn default() -> Self {
        Self::builtin()
    }
}

impl MechanismRegistry {
    /// A registry holding the four built-ins ([`MECHANISMS`]).
    pub fn builtin() -> Self {
        Self {
            entries: MECHANISMS.to_vec(),
        }
    }

    /// Adds the mechanism `build` makes under `name`. `build` is called
    /// once per node that clears with it, so it must build the same
    /// mechanism every time.
    pub fn register(
        &mut self,
        name: &'static str,
        build: fn() -> Box<dyn Mechanism>,
    ) -> Result<(), MechanismNameError> {
        let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(valid) {
            return Err(MechanismNameError::BadName(name.to_string()));
        }
        if self.get(name).is_some() {
            return Err(MechanismNameError::Taken(name.to_string()));
        }
        if self.entries.len() >= MAX_MECHANISMS {
            return Err(MechanismNameError::Full);
        }
        self.entries.push(NamedMechanism { name, build });
        Ok(())
    }

    /// The mechanism registered as `name`, if any.
    pub fn get(&self, name: &str) -> Option<NamedMechanism> {
        self.entries.iter().find(|m| m.name == name).copied()
    }

    /// Every registered mechanism, in registration order.
    pub fn entries(&self) -> &[NamedMechanism] {
        &self.entries
    }

    /// The registered names, comma-separated (for error messages).
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.entries.iter().map(|m| m.name).collect();
        names.join(", ")
    }
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

    #[test]
    fn registration_checks_names_and_bounds() {
        let mut reg = MechanismRegistry::default();
        for bad in [
            "",
            "Vickrey",
            "a-b",
            "a b",
            "é",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            let bad: &'static str = Box::leak(bad.to_string().into_boxed_str());
            assert_eq!(
                reg.register(bad, || Box::new(McAfee)),
                Err(MechanismNameError::BadName(bad.to_string()))
            );
        }
        assert_eq!(
            reg.register("pay_as_bid", || Box::new(McAfee)),
            Err(MechanismNameError::Taken("pay_as_bid".into()))
        );
        assert_eq!(
            reg.get("pay_as_bid"),
            mechanism_named("pay_as_bid").copied()
        );
        assert_eq!(
            (reg.get("pay_as_bid").unwrap().build)().name(),
            "pay_as_bid"
        );
        let names: Vec<&'static str> = (MECHANISMS.len()..MAX_MECHANISMS)
            .map(|i| &*Box::leak(format!("m{i}").into_boxed_str()))
            .collect();
        for n in &names {
            reg.register(n, || Box::new(PayAsAsk)).unwrap();
        }
        assert_eq!(reg.entries().len(), MAX_MECHANISMS);
        assert_eq!(
            reg.register("one_more", || Box::new(PayAsAsk)),
            Err(MechanismNameError::Full)
        );
        assert!(reg.get("one_more").is_none());
        assert_eq!((reg.get("m10").unwrap().build)().name(), "pay_as_ask");
    }
}
