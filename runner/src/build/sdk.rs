//! The SDK sources and the WIT, embedded in the runner so `runner build` works from any
//! folder with nothing but the language's toolchain installed.

use std::path::Path;

use anyhow::Context as _;

/// A file to write: its path under the scratch folder, and its text.
pub type File = (&'static str, &'static str);

/// The contract every plan is built against.
pub const WIT: &[File] = &[("wit/scenario.wit", include_str!("../../../wit/scenario.wit"))];

/// The Python SDK (`sdk/python`): the `wasmload` package and its `locust` alias.
pub const PYTHON: &[File] = &[
    ("python/wasmload/__init__.py", include_str!("../../../sdk/python/wasmload/__init__.py")),
    ("python/wasmload/export.py", include_str!("../../../sdk/python/wasmload/export.py")),
    ("python/wasmload/http.py", include_str!("../../../sdk/python/wasmload/http.py")),
    ("python/wasmload/metrics.py", include_str!("../../../sdk/python/wasmload/metrics.py")),
    ("python/wasmload/plan.py", include_str!("../../../sdk/python/wasmload/plan.py")),
    ("python/wasmload/user.py", include_str!("../../../sdk/python/wasmload/user.py")),
    ("python/wasmload/vu.py", include_str!("../../../sdk/python/wasmload/vu.py")),
    ("python/wasmload/wait.py", include_str!("../../../sdk/python/wasmload/wait.py")),
    ("python/locust/__init__.py", include_str!("../../../sdk/python/locust/__init__.py")),
];

/// Writes `files` under `dir`.
pub fn write(dir: &Path, files: &[File]) -> anyhow::Result<()> {
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file added to `sdk/python/` must be embedded too, or built plans would miss it.
    #[test]
    fn every_python_sdk_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        let mut on_disk = Vec::new();
        for package in ["python/wasmload", "python/locust"] {
            for entry in std::fs::read_dir(root.join(package)).expect("sdk folder") {
                let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
                if name.ends_with(".py") {
                    on_disk.push(format!("{package}/{name}"));
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<_> = PYTHON.iter().map(|(p, _)| (*p).to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }
}
