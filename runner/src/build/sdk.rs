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

/// The JavaScript SDK (`sdk/js`): k6's modules over the WIT.
pub const JS: &[File] = &[
    ("js/export.js", include_str!("../../../sdk/js/export.js")),
    ("js/k6/index.js", include_str!("../../../sdk/js/k6/index.js")),
    ("js/k6/http.js", include_str!("../../../sdk/js/k6/http.js")),
    ("js/k6/metrics.js", include_str!("../../../sdk/js/k6/metrics.js")),
    ("js/k6/execution.js", include_str!("../../../sdk/js/k6/execution.js")),
    ("js/lib/duration.js", include_str!("../../../sdk/js/lib/duration.js")),
    ("js/lib/host.js", include_str!("../../../sdk/js/lib/host.js")),
    ("js/lib/options.js", include_str!("../../../sdk/js/lib/options.js")),
    ("js/lib/random.js", include_str!("../../../sdk/js/lib/random.js")),
    ("js/lib/state.js", include_str!("../../../sdk/js/lib/state.js")),
    ("js/lib/utf8.js", include_str!("../../../sdk/js/lib/utf8.js")),
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

    /// The SDK's files under `folders` of `sdk/` with this extension.
    fn on_disk(folders: &[&str], extension: &str) -> Vec<String> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        let mut found = Vec::new();
        for folder in folders {
            for entry in std::fs::read_dir(root.join(folder)).expect("sdk folder") {
                let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
                if name.ends_with(extension) {
                    found.push(format!("{folder}/{name}"));
                }
            }
        }
        found.sort();
        found
    }

    fn embedded(files: &[File]) -> Vec<String> {
        let mut names: Vec<_> = files.iter().map(|(p, _)| (*p).to_owned()).collect();
        names.sort();
        names
    }

    /// A file added to an SDK must be embedded too, or built plans would miss it.
    #[test]
    fn every_sdk_file_is_embedded() {
        assert_eq!(on_disk(&["python/wasmload", "python/locust"], ".py"), embedded(PYTHON));
        assert_eq!(on_disk(&["js", "js/k6", "js/lib"], ".js"), embedded(JS));
    }

    /// The Python SDK fetches a response's headers before the host forgets them, so it must
    /// count as many responses as the host keeps.
    #[test]
    fn the_python_sdk_knows_how_many_responses_headers_the_host_keeps() {
        let http = PYTHON.iter().find(|(p, _)| *p == "python/wasmload/http.py").expect("http.py").1;
        let line = format!("\n_HOST_KEEPS = {}\n", crate::limits::KEPT_RESPONSE_HEADERS);
        assert!(http.contains(&line), "http.py must say{line}");
    }
}
