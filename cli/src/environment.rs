//! Environments: what a provider's sandbox can import, and what a script
//! imports.
//!
//! A provider advertises its runtime as market features
//! ([`idlegrid_market::Features`]): `python3`, `python3.X` and every
//! top-level module outside the standard library that the sandbox's
//! interpreter can import — found by running a probe *in the sandbox*, so
//! what is advertised is what a task will see. A client reads a script's
//! imports with Python's own parser (also in the sandbox): every top-level
//! module it imports outside the standard library, leaving out imports
//! guarded by `try: … except ImportError`. The ledger then matches a job
//! only with providers that have them all, and refuses a job that no
//! offering provider can run.

use idlegrid_executor::{Executor, Limits, Program, Task};
use idlegrid_market::{Feature, Features, MAX_FEATURES};

use crate::CliError;

/// Prints the interpreter's version features, then every importable
/// top-level module outside the standard library, one per line.
const PROBE: &str = r#"
import pkgutil, sys
v = sys.version_info
print("python%d" % v[0])
print("python%d.%d" % (v[0], v[1]))
std = set(sys.stdlib_module_names)
for m in sorted({m.name for m in pkgutil.iter_modules()}):
    if m not in std and not m.startswith("_"):
        print(m)
"#;

/// Reads a script on standard input; prints the top-level modules outside
/// the standard library it imports for sure (not inside a `try` that
/// catches `ImportError`), one per line.
const IMPORTS: &str = r#"
import ast, sys
tree = ast.parse(sys.stdin.buffer.read())
optional = set()
for node in ast.walk(tree):
    if isinstance(node, ast.Try):
        caught = set()
        for h in node.handlers:
            t = h.type
            for e in (t.elts if isinstance(t, ast.Tuple) else [t]):
                caught.add(getattr(e, "id", None))
        if caught & {None, "ImportError", "ModuleNotFoundError", "Exception", "BaseException"}:
            for stmt in node.body:
                optional.update(id(n) for n in ast.walk(stmt))
mods = set()
for node in ast.walk(tree):
    if id(node) in optional:
        continue
    if isinstance(node, ast.Import):
        mods.update(a.name.split(".")[0] for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        mods.add(node.module.split(".")[0])
for m in sorted(mods - set(sys.stdlib_module_names) - {"__future__"}):
    print(m)
"#;

async fn run_python(exec: &dyn Executor, program: &str, input: &[u8]) -> Result<String, String> {
    let task = Task::new(Program::python(program.as_bytes().to_vec()), input.to_vec());
    let x = exec
        .execute(&task, &Limits::default())
        .await
        .map_err(|e| e.to_string())?;
    String::from_utf8(x.output).map_err(|_| "the probe printed non-UTF-8".to_string())
}

/// What a provider's runtime offers: the probe's features, or `configured`
/// names instead when the operator lists them. At most [`MAX_FEATURES`]
/// (the interpreter's first, then modules by name); the names left out are
/// returned too, to be logged.
pub async fn provider_features(
    exec: &dyn Executor,
    configured: Option<&[String]>,
) -> Result<(Features, Vec<String>), CliError> {
    let names: Vec<String> = match configured {
        Some(c) => c.to_vec(),
        None => run_python(exec, PROBE, b"")
            .await
            .map_err(|e| CliError::Invalid(format!("probing the sandbox's Python: {e}")))?
            .lines()
            .map(str::to_string)
            .collect(),
    };
    let mut kept = Vec::new();
    let mut dropped = Vec::new();
    for n in names {
        match Feature::named(&n) {
            Ok(f) if kept.len() < MAX_FEATURES && !kept.contains(&f) => kept.push(f),
            Ok(f) if kept.contains(&f) => {}
            _ => dropped.push(n),
        }
    }
    let features = Features::new(kept).map_err(|e| CliError::Invalid(e.to_string()))?;
    Ok((features, dropped))
}

/// The modules `script` imports (see the module docs), plus `extra`
/// (`--requires`), as the features a job needs.
pub async fn script_requires(
    exec: &dyn Executor,
    script: &[u8],
    extra: &[String],
) -> Result<Features, CliError> {
    let out = run_python(exec, IMPORTS, script).await.map_err(|e| {
        CliError::Invalid(format!(
            "reading the script's imports (does it parse?): {e}"
        ))
    })?;
    let names = out.lines().map(str::to_string).chain(extra.iter().cloned());
    Features::from_names(names).map_err(|e| CliError::Invalid(format!("--requires: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use idlegrid_executor::ProcessExecutor;

    fn names(f: &Features) -> Vec<&str> {
        f.iter().map(Feature::as_str).collect()
    }

    #[tokio::test]
    async fn imports_are_read_with_pythons_parser() {
        let exec = ProcessExecutor::default();
        let script = br#"
import os, sys
import numpy as np
from pandas.core import frame
from . import sibling
import json, Yaml.loader
try:
    import ujson as json
except ImportError:
    pass
def f():
    import scipy.stats
"#;
        let f = script_requires(&exec, script, &["torch".into()])
            .await
            .unwrap();
        assert_eq!(names(&f), ["numpy", "pandas", "scipy", "torch", "yaml"]);
        let e = script_requires(&exec, b"def broken(:\n", &[]).await;
        assert!(e.is_err(), "a script that does not parse");
        let e = script_requires(&exec, b"", &["no spaces allowed".into()]).await;
        assert!(e.is_err());
    }

    #[tokio::test]
    async fn the_sandbox_advertises_its_interpreter() {
        let exec = ProcessExecutor::default();
        let (f, _) = provider_features(&exec, None).await.unwrap();
        assert!(f.iter().any(|x| x.as_str() == "python3"), "{f}");
        assert!(f.iter().any(|x| x.as_str().starts_with("python3.")), "{f}");
        assert!(
            !f.iter().any(|x| x.as_str() == "json"),
            "stdlib is not a feature"
        );
        let mine = ["python3".to_string(), "NumPy".into(), "bad name".into()];
        let (f, dropped) = provider_features(&exec, Some(&mine)).await.unwrap();
        assert_eq!(names(&f), ["numpy", "python3"]);
        assert_eq!(dropped, ["bad name"]);
    }
}
