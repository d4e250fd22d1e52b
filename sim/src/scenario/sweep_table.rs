//! The `[sweep]` table of a scenario: the grid, seeds and metrics that
//! `idlegrid-sim sweep FILE` runs when no `--param` is given, so a sweep
//! is one file.
//!
//! ```toml
//! [sweep]
//! seeds = "1..4"
//! metrics = ["market.clearing_price.mean", "market.matches"]
//!
//! [[sweep.param]]
//! path = "marketplace.clients.job_interval_ms"
//! values = [500, 1000, 2000]
//!
//! [[sweep.param]]
//! path = "marketplace.mechanism"
//! values = ["k_double", "mcafee"]
//! ```
//!
//! Fields and values are checked against the scenario (every value set
//! and the scenario re-validated) and metrics against summary.json's
//! keys before any run, exactly as `--param … --values …` are.

use std::ops::Range;

use serde::Deserialize;

use super::{ScenarioError, invalid};

/// Most seeds one sweep may run.
pub const MAX_SEEDS: u64 = 1_000_000;

/// `[sweep]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepTable {
    /// Seeds as `"START..END"` (end exclusive); `--seeds` overrides it.
    #[serde(default)]
    pub seeds: Option<String>,
    /// summary.json metrics (dotted paths); `--metrics` overrides them.
    #[serde(default)]
    pub metrics: Vec<String>,
    /// The grid: every combination of these fields' values, the first
    /// outermost.
    #[serde(default)]
    pub param: Vec<SweepParam>,
}

/// `[[sweep.param]]`: one swept field.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepParam {
    /// Dotted TOML path of the field.
    pub path: String,
    /// Its values (numbers, booleans or strings).
    pub values: Vec<toml::Value>,
}

impl SweepTable {
    /// The seeds, if given.
    pub fn seeds(&self) -> Result<Option<Range<u64>>, ScenarioError> {
        self.seeds
            .as_deref()
            .map(|s| parse_seeds(s).map_err(|e| invalid("sweep.seeds", e)))
            .transpose()
    }

    /// The grid as `(path, values)`, values as the command line spells
    /// them (TOML literals; strings bare).
    pub fn params(&self) -> Result<Vec<(String, Vec<String>)>, ScenarioError> {
        self.param
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let field = format!("sweep.param[{i}].values");
                if p.values.is_empty() {
                    return Err(invalid(
                        field,
                        format!("`{}` needs at least one value", p.path),
                    ));
                }
                let values =
                    p.values
                        .iter()
                        .map(|v| {
                            literal(v).ok_or_else(|| invalid(&field, format!(
                        "`{}`: values must be numbers, booleans or strings, got {v}",
                        p.path
                    )))
                        })
                        .collect::<Result<_, _>>()?;
                Ok((p.path.clone(), values))
            })
            .collect()
    }

    /// Checks what needs no scenario: seeds and value types.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        self.seeds()?;
        self.params()?;
        Ok(())
    }
}

fn literal(v: &toml::Value) -> Option<String> {
    match v {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
            Some(v.to_string())
        }
        _ => None,
    }
}

/// Seeds as `START..END` (end exclusive, at most [`MAX_SEEDS`]).
pub fn parse_seeds(s: &str) -> Result<Range<u64>, String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("expected START..END, got `{s}`"))?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|e| format!("bad start `{a}`: {e}"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|e| format!("bad end `{b}`: {e}"))?;
    if a >= b || b - a > MAX_SEEDS {
        return Err(format!(
            "need START < END and at most {MAX_SEEDS} seeds, got {a}..{b}"
        ));
    }
    Ok(a..b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> SweepTable {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn values_are_spelled_as_on_the_command_line() {
        let t = table(
            "seeds = \"2..5\"\n[[param]]\npath = \"a.b\"\nvalues = [1, 0.5, true, \"mcafee\"]\n",
        );
        assert_eq!(t.seeds().unwrap(), Some(2..5));
        let p = t.params().unwrap();
        assert_eq!(
            p,
            vec![(
                "a.b".to_string(),
                vec!["1", "0.5", "true", "mcafee"]
                    .into_iter()
                    .map(String::from)
                    .collect()
            )]
        );
    }

    #[test]
    fn bad_tables_name_the_field() {
        let bad = [
            ("seeds = \"5..5\"", "`sweep.seeds`"),
            ("seeds = \"1-4\"", "`sweep.seeds`"),
            (
                "[[param]]\npath = \"a\"\nvalues = []",
                "`sweep.param[0].values`",
            ),
            (
                "[[param]]\npath = \"a\"\nvalues = [[1]]",
                "`sweep.param[0].values`",
            ),
        ];
        for (text, want) in bad {
            let e = table(text).validate().unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
        assert!(toml::from_str::<SweepTable>("param = []\nshards = 3").is_err());
    }
}
