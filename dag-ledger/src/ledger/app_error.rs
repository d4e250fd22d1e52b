//! Typed application errors across the [`Application`](super::Application)
//! boundary.
//!
//! The ledger is generic over applications, so it cannot name their error
//! types. An application rejects a transaction with an [`AppError`]: a
//! **stable code** (one per variant of the application's error type, never
//! renumbered or reused) and the error's **fields in the canonical
//! encoding**. The ledger carries it untouched in
//! [`LedgerError::App`](super::LedgerError::App) — and so in the
//! transaction's receipt — and whoever knows the application's error type
//! decodes it back with [`AppError::decode`]: a light node learns exactly
//! why its transaction was refused.
//!
//! ```
//! use idlegrid_dag_ledger::ledger::{AppError, AppErrorType};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! enum CounterError {
//!     TooLarge { max: u64 },
//! }
//! impl AppErrorType for CounterError {
//!     fn code(&self) -> u16 {
//!         match self {
//!             CounterError::TooLarge { .. } => 1,
//!         }
//!     }
//! }
//!
//! let carried = AppError::of(&CounterError::TooLarge { max: 9 });
//! assert_eq!(carried.code, 1);
//! assert_eq!(carried.decode::<CounterError>(), Ok(CounterError::TooLarge { max: 9 }));
//! ```

use idlegrid_primitives::{DecodeError, decode, encode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Bound on an application error's encoded fields (they travel in receipts
/// and in the facts light nodes receive).
pub const MAX_APP_ERROR_BYTES: usize = 1024;

/// An application's own error type, carried through the ledger typed.
pub trait AppErrorType: Serialize + DeserializeOwned {
    /// The variant's stable code (never renumbered, never reused).
    fn code(&self) -> u16;
}

/// An application's rejection as the ledger carries it (see the module
/// docs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppError {
    /// The variant's stable code.
    pub code: u16,
    /// The error in the canonical encoding (at most
    /// [`MAX_APP_ERROR_BYTES`]; longer encodings are cut to nothing, and
    /// then only the code is known).
    pub fields: Vec<u8>,
}

/// Why an [`AppError`] did not decode into an application's error type.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AppErrorDecode {
    /// The fields do not decode as the type.
    #[error("application error fields do not decode: {0}; is it this application's error?")]
    Fields(#[from] DecodeError),
    /// The decoded error's code is not the carried one.
    #[error("carried code {carried} but the fields decode to code {decoded}")]
    CodeMismatch {
        /// The code carried.
        carried: u16,
        /// The code of the decoded error.
        decoded: u16,
    },
}

impl AppError {
    /// Carries `error`.
    pub fn of<E: AppErrorType>(error: &E) -> Self {
        let mut fields = encode(error);
        if fields.len() > MAX_APP_ERROR_BYTES {
            fields.clear();
        }
        Self {
            code: error.code(),
            fields,
        }
    }

    /// The application's error back.
    pub fn decode<E: AppErrorType>(&self) -> Result<E, AppErrorDecode> {
        let e: E = decode(&self.fields, MAX_APP_ERROR_BYTES)?;
        if e.code() != self.code {
            return Err(AppErrorDecode::CodeMismatch {
                carried: self.code,
                decoded: e.code(),
            });
        }
        Ok(e)
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "error code {}", self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum E {
        A,
        B { n: u64 },
        Big(Vec<u8>),
    }
    impl AppErrorType for E {
        fn code(&self) -> u16 {
            match self {
                E::A => 7,
                E::B { .. } => 9,
                E::Big(_) => 11,
            }
        }
    }

    #[test]
    fn round_trips_and_checks_the_code() {
        let c = AppError::of(&E::B { n: 3 });
        assert_eq!(c.code, 9);
        assert_eq!(c.decode::<E>(), Ok(E::B { n: 3 }));
        let forged = AppError { code: 7, ..c };
        assert!(matches!(
            forged.decode::<E>(),
            Err(AppErrorDecode::CodeMismatch {
                carried: 7,
                decoded: 9
            })
        ));
        let garbage = AppError {
            code: 7,
            fields: vec![0xff; 3],
        };
        assert!(matches!(
            garbage.decode::<E>(),
            Err(AppErrorDecode::Fields(_))
        ));
    }

    #[test]
    fn oversized_fields_keep_only_the_code() {
        let c = AppError::of(&E::Big(vec![1; MAX_APP_ERROR_BYTES]));
        assert_eq!(c.code, 11);
        assert!(c.fields.is_empty());
        assert!(c.decode::<E>().is_err());
    }
}
