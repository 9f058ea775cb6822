//! Compiled plans kept on disk, so a large plan (Python, JavaScript: 10-20 MB, several
//! seconds to compile) compiles once per machine and later runs start in milliseconds.
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

use crate::limits::{CACHE_ENTRIES, CACHE_PLANS_ABOVE};
use crate::output::console;

/// Compiles `bytes` (the plan at `path`), or loads the compilation from the cache. Plans
/// smaller than [`CACHE_PLANS_ABOVE`] compile faster than a cache lookup is worth.
pub fn component(engine: &Engine, path: &Path, bytes: &[u8]) -> anyhow::Result<Component> {
    if bytes.len() < CACHE_PLANS_ABOVE {
        return compile(engine, path, bytes);
    }
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

/// Compiles with a line saying what is happening, redrawn with the elapsed time on a
/// terminal: a large plan takes seconds the first time.
fn compile_showing_progress(engine: &Engine, path: &Path, bytes: &[u8]) -> anyhow::Result<Component> {
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

/// Keeps the [`CACHE_ENTRIES`] most recently used entries (each is 1-2 times its plan's
/// size; every rebuild of a plan is a new entry).
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut cached: Vec<(std::time::SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    cached.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    for (_, old) in cached.iter().skip(CACHE_ENTRIES) {
        let _ = std::fs::remove_file(old);
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
