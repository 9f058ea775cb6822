//! Compiled plans kept on disk, so a plan compiles once per machine: later runs start in
//! milliseconds (a Python or JavaScript plan takes seconds to compile) and without the
//! compiler's memory (a Rust plan's run with 10 idle VUs peaks at 14 MiB instead of 23 MiB,
//! and spends 0.01 instead of 0.17 CPU seconds starting).
//!
//! An entry is wasmtime's serialized component, named by the SHA-256 of the plan's bytes and
//! of the engine's compatibility hash (wasmtime version, target CPU, engine settings), so a
//! changed plan or engine never finds a stale entry. Loading an entry maps native code
//! into the process, so the cache folder must be the user's own and not writable by others:
//! it is created with mode 0700 and a folder that fails that check is not used.
//!
//! `WASMLOAD_CACHE_DIR` picks the folder (`off` turns the cache off); the default is
//! `$XDG_CACHE_HOME/wasmload` or `~/.cache/wasmload`.

use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::limits::{CACHE_BYTES, CACHE_ENTRIES, COMPILE_PROGRESS_ABOVE};
use crate::output::console;

/// Compiles `bytes` (the plan at `path`), or loads the compilation from the cache.
pub fn component(engine: &Engine, path: &Path, bytes: &[u8]) -> anyhow::Result<Component> {
    let Some(dir) = folder() else { return compile_showing_progress(engine, path, bytes) };
    let entry = dir.join(format!("{}.cwasm", key(engine, bytes)));
    if entry.exists() {
        // SAFETY: the entry was written by `Component::serialize` for an engine with the same
        // compatibility hash (part of its name), in a folder only this user can write to
        // (checked by `folder`). wasmtime also checks the header and refuses a mismatch.
        #[allow(unsafe_code)]
        let loaded = unsafe { Component::deserialize_file(engine, &entry) };
        match loaded {
            Ok(component) => {
                // Marks the entry as recently used, for `prune`.
                let _ = std::fs::File::options()
                    .append(true)
                    .open(&entry)
                    .and_then(|f| f.set_modified(std::time::SystemTime::now()));
                return Ok(component);
            }
            Err(e) => {
                console::line(&format!("Note: recompiling; the cached compilation could not be used ({e})"));
                let _ = std::fs::remove_file(&entry);
            }
        }
    }
    let component = compile_showing_progress(engine, path, bytes)?;
    if let Err(e) = store(&component, &entry) {
        console::line(&format!("Note: the compiled plan could not be cached in {}: {e:#}", dir.display()));
    }
    prune(&dir);
    Ok(component)
}

fn compile(engine: &Engine, path: &Path, bytes: &[u8]) -> anyhow::Result<Component> {
    Component::new(engine, bytes)
        .map_err(|e| anyhow::anyhow!("`{}` is not a valid WebAssembly component: {e}", path.display()))
}

/// Compiles; a large plan (it takes seconds) with a line saying what is happening, redrawn
/// with the elapsed time on a terminal.
fn compile_showing_progress(engine: &Engine, path: &Path, bytes: &[u8]) -> anyhow::Result<Component> {
    if bytes.len() <= COMPILE_PROGRESS_ABOVE {
        return compile(engine, path, bytes);
    }
    let what = format!(
        "Compiling {} ({:.1} MB) for this machine; later runs use the cached result",
        path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned()),
        bytes.len() as f64 / 1e6
    );
    let started = Instant::now();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    console::status(&format!("{what} ..."));
    let ticker = {
        let (done, what) = (done.clone(), what.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(250));
                if console::is_terminal() {
                    console::status(&format!("{what} ... {:.1} s", started.elapsed().as_secs_f64()));
                }
            }
        })
    };
    let result = compile(engine, path, bytes);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = ticker.join();
    console::clear_status();
    if result.is_ok() {
        console::line(&format!("{what}: done in {:.1} s", started.elapsed().as_secs_f64()));
    }
    result
}

fn store(component: &Component, entry: &Path) -> anyhow::Result<()> {
    let dir = entry.parent().ok_or_else(|| anyhow::anyhow!("the cache entry has no folder"))?;
    let bytes = component.serialize().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Written under a temporary name and renamed, so a concurrent run never reads half a file.
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(&bytes)?;
    file.persist(entry)?;
    Ok(())
}

/// Keeps the most recently used entries, at most [`CACHE_ENTRIES`] of them and
/// [`CACHE_BYTES`] together (each is 1-2 times its plan's size; every rebuild of a plan is a
/// new entry).
fn prune(dir: &Path) {
    prune_to(dir, CACHE_ENTRIES, CACHE_BYTES);
}

fn prune_to(dir: &Path, max_entries: usize, max_bytes: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut cached: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            Some((meta.modified().ok()?, meta.len(), e.path()))
        })
        .collect();
    cached.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    let mut kept_bytes = 0u64;
    for (i, (_, len, path)) in cached.iter().enumerate() {
        kept_bytes = kept_bytes.saturating_add(*len);
        // The newest entry stays whatever its size: it was just made for this run.
        if i > 0 && (i >= max_entries || kept_bytes > max_bytes) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The cache entry's name: SHA-256 over the plan and the engine's compatibility hash.
fn key(engine: &Engine, bytes: &[u8]) -> String {
    struct Sha(Sha256);
    impl Hasher for Sha {
        fn finish(&self) -> u64 {
            0
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut sha = Sha(Sha256::new());
    sha.0.update(bytes);
    engine.precompile_compatibility_hash().hash(&mut sha);
    sha.0.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache folder, created if needed; `None` when it is turned off or unsafe to use.
fn folder() -> Option<PathBuf> {
    let dir = match std::env::var_os("WASMLOAD_CACHE_DIR") {
        Some(v) if v == "off" => return None,
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?
            .join("wasmload"),
    };
    if let Err(e) = std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir) {
        console::line(&format!("Note: not caching compiled plans: cannot create {}: {e}", dir.display()));
        return None;
    }
    match std::fs::metadata(&dir) {
        Ok(meta) if meta.uid() == current_user() && meta.mode() & 0o022 == 0 => Some(dir),
        Ok(_) => {
            console::line(&format!(
                "Note: not caching compiled plans: {} is not private to this user (it must be yours and \
                 writable by no one else)",
                dir.display()
            ));
            None
        }
        Err(e) => {
            console::line(&format!("Note: not caching compiled plans: {}: {e}", dir.display()));
            None
        }
    }
}

fn current_user() -> u32 {
    #[allow(unsafe_code)]
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe {
        libc::geteuid()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_the_newest_entries_within_both_limits() {
        let dir = tempfile::tempdir().expect("temp dir");
        let now = std::time::SystemTime::now();
        // Entry i is i minutes old and 100 bytes long; one file that is not an entry.
        for i in 0..6u64 {
            let path = dir.path().join(format!("{i}.cwasm"));
            std::fs::write(&path, [0u8; 100]).expect("write");
            let file = std::fs::File::options().append(true).open(&path).expect("open");
            file.set_modified(now - Duration::from_secs(60 * i)).expect("mtime");
        }
        std::fs::write(dir.path().join("other.txt"), b"x").expect("write");
        let left = || {
            let mut names: Vec<String> = std::fs::read_dir(dir.path())
                .expect("read")
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        prune_to(dir.path(), 4, 10_000);
        assert_eq!(left(), ["0.cwasm", "1.cwasm", "2.cwasm", "3.cwasm", "other.txt"]);
        prune_to(dir.path(), 4, 250);
        assert_eq!(left(), ["0.cwasm", "1.cwasm", "other.txt"]);
        prune_to(dir.path(), 4, 10);
        assert_eq!(left(), ["0.cwasm", "other.txt"], "the newest entry stays whatever its size");
    }

    #[test]
    fn the_key_depends_on_the_plan_and_the_engine() {
        let plain = Engine::default();
        let mut config = wasmtime::Config::new();
        config.epoch_interruption(true);
        let other = Engine::new(&config).expect("engine");
        let a = key(&plain, b"plan a");
        assert_eq!(a, key(&plain, b"plan a"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, key(&plain, b"plan b"));
        assert_ne!(a, key(&other, b"plan a"));
    }
}
