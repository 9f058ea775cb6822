//! Builds every guest the tests use for `wasm32-wasip2`: the examples in `guest-examples/`
//! and the invalid plans in `tests/guests/`, then writes their paths as constants to
//! `$OUT_DIR/guests.rs`. Each workspace is built by a nested cargo with a target directory
//! of its own under `OUT_DIR`, so it never waits on the outer build's lock.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (workspace, [(constant, artifact file name)])
const GUESTS: &[(&str, &[(&str, &str)])] = &[
    ("guest-examples", &[("CONCERT", "concert.wasm"), ("SHOP", "shop.wasm"), ("PROBE", "probe.wasm")]),
    (
        "tests/guests",
        &[("WRONG_WORLD", "wrong-world.wasm"), ("FUTURE_VERSION", "future_version.wasm"), ("HOSTILE", "hostile.wasm")],
    ),
];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for dir in ["guest-examples", "tests/guests", "sdk", "wit"] {
        watch(&root.join(dir));
    }
    let mut constants = String::new();
    for (workspace, artifacts) in GUESTS {
        let target_dir = out.join("guests").join(workspace.replace('/', "-"));
        build(&root.join(workspace), &target_dir);
        for (name, file) in *artifacts {
            let path = target_dir.join("wasm32-wasip2/release").join(file);
            assert!(path.exists(), "building {workspace} did not produce {}", path.display());
            let _ = writeln!(
                constants,
                "/// `{workspace}`: {file}\npub const {name}: &str = {:?};",
                path.display().to_string()
            );
        }
    }
    std::fs::write(out.join("guests.rs"), constants).expect("write guests.rs");
}

fn build(workspace: &Path, target_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir);
    // Settings meant for the outer (native) build must not leak into the guest build.
    for var in ["CARGO_ENCODED_RUSTFLAGS", "RUSTFLAGS", "CARGO_BUILD_TARGET", "CARGO_TARGET_DIR", "CARGO_MAKEFLAGS"] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("run cargo to build the guests");
    assert!(
        status.success(),
        "building the guests in {} failed; is the target installed? (rustup target add wasm32-wasip2)",
        workspace.display()
    );
}

fn watch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n == "target") {
            continue;
        }
        if path.is_dir() {
            watch(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}
