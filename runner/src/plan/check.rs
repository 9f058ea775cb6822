//! Turning what can be wrong with a plan file into one clear sentence: not a file, not
//! WebAssembly, a core module instead of a component, another world, another WIT version,
//! imports the runner does not provide, or a scenario that declares no runnable task.

use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::bindings::{Plan, WIT_PACKAGE, WIT_VERSION};

/// The export every plan must have, without its version.
const SCENARIO_EXPORT: &str = "wasmload:scenario/scenario";

/// Why a plan cannot run. Each message is a sentence a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("`{0}` is not a WebAssembly file (it does not start with the `\\0asm` header)")]
    NotWasm(PathBuf),
    #[error(
        "`{0}` is a core WebAssembly module, not a component: build the scenario for the \
         `wasm32-wasip2` target (cargo build --target wasm32-wasip2)"
    )]
    CoreModule(PathBuf),
    #[error(
        "`{path}` does not export `{SCENARIO_EXPORT}`, so it was not built against the \
         {WIT_PACKAGE} world (its exports: {exports})"
    )]
    WrongWorld { path: PathBuf, exports: String },
    #[error(
        "`{path}` was built against {WIT_PACKAGE}@{found}; this runner accepts {WIT_PACKAGE}@{accepted} \
         (rebuild the scenario with a matching SDK)"
    )]
    UnsupportedVersion { path: PathBuf, found: String, accepted: String },
    #[error("`{path}` needs something the runner does not provide: {detail}")]
    Link { path: PathBuf, detail: String },
    #[error("the scenario declares no task with a weight above 0, so a VU would have nothing to run")]
    NoTasks,
    #[error("the scenario's wait time is invalid: {0}")]
    WaitTime(String),
}

/// Checks the 8-byte header: magic, then version 1 (core module) or a component layer.
pub fn header(path: &Path, bytes: &[u8]) -> Result<(), PlanError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(PlanError::NotWasm(path.to_owned()));
    }
    // Core modules have layer 0 in bytes 6..8; components have layer 1.
    if bytes[6..8] == [0, 0] {
        return Err(PlanError::CoreModule(path.to_owned()));
    }
    Ok(())
}

/// Checks the component exports our scenario interface at an accepted version, and that
/// anything it imports from our package is an accepted version too.
pub fn world(path: &Path, engine: &Engine, component: &Component) -> Result<(), PlanError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(name, _)| name.to_owned()).collect();
    let Some(export) = exports.iter().find(|n| n.split('@').next() == Some(SCENARIO_EXPORT)) else {
        return Err(PlanError::WrongWorld {
            path: path.to_owned(),
            exports: if exports.is_empty() { "none".to_owned() } else { exports.join(", ") },
        });
    };
    let ours = std::iter::once(export.clone()).chain(
        ty.imports(engine).map(|(name, _)| name.to_owned()).filter(|n| n.starts_with(&format!("{WIT_PACKAGE}/"))),
    );
    for name in ours {
        let found = name.split_once('@').map(|(_, v)| v).unwrap_or("(unversioned)");
        if !compatible(found, WIT_VERSION) {
            return Err(PlanError::UnsupportedVersion {
                path: path.to_owned(),
                found: found.to_owned(),
                accepted: accepted_range(WIT_VERSION),
            });
        }
    }
    Ok(())
}

/// A linker error (an import the runner lacks) as a `PlanError`.
pub fn link_error(path: &Path, e: &wasmtime::Error) -> anyhow::Error {
    PlanError::Link { path: path.to_owned(), detail: format!("{e:#}") }.into()
}

/// Checks what the scenario declared.
pub fn plan(plan: &Plan) -> Result<(), PlanError> {
    if !plan.tasks.iter().any(|t| t.weight > 0) {
        return Err(PlanError::NoTasks);
    }
    if let crate::bindings::WaitTime::Between((low, high)) = plan.wait_time
        && low > high
    {
        return Err(PlanError::WaitTime(format!("between({low} ms, {high} ms) has its bounds reversed")));
    }
    Ok(())
}

/// Semver compatibility as Cargo applies it: same major, and for 0.x the same minor.
fn compatible(found: &str, accepted: &str) -> bool {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split(['.', '-', '+']);
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    match (parse(found), parse(accepted)) {
        (Some((fmaj, fmin)), Some((amaj, amin))) => fmaj == amaj && (amaj != 0 || fmin == amin),
        _ => false,
    }
}

/// `0.1.x` for `0.1.0`, `1.x` for `1.2.0`.
fn accepted_range(version: &str) -> String {
    let mut parts = version.split('.');
    match (parts.next(), parts.next()) {
        (Some("0"), Some(minor)) => format!("0.{minor}.x"),
        (Some(major), _) => format!("{major}.x"),
        _ => version.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_follow_cargo_semver_rules() {
        assert!(compatible("0.1.0", "0.1.0"));
        assert!(compatible("0.1.7", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(!compatible("1.1.0", "0.1.0"));
        assert!(!compatible("(unversioned)", "0.1.0"));
        assert_eq!(accepted_range("0.1.0"), "0.1.x");
    }

    #[test]
    fn headers_tell_modules_components_and_other_files_apart() {
        let p = Path::new("p.wasm");
        assert!(matches!(header(p, b"hello world"), Err(PlanError::NotWasm(_))));
        assert!(matches!(header(p, b"\0asm\x01\0\0\0"), Err(PlanError::CoreModule(_))));
        assert!(header(p, b"\0asm\x0d\0\x01\0").is_ok());
    }
}
