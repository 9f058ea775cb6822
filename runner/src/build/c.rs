//! C scenarios: bindings generated from the embedded WIT (wit-bindgen's C generator),
//! compiled by clang to a wasm32-wasi reactor module, and wrapped into a component with
//! wasmtime's WASI preview1 adapter (wit-component), all in the runner: only Debian's
//! `clang`, `lld`, `wasi-libc` and `libclang-rt-14-dev-wasm32` need installing.
//!
//! The scenario includes `load_test.h` and implements the `exports_wasmload_scenario_*`
//! functions; guest-examples/c/concert.c shows how, and the memory rules of the bindings.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;
use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
use wit_bindgen_core::Files;
use wit_bindgen_core::wit_parser::Resolve;

use super::{find_tool, run_tool, sdk};

/// The Debian packages the C build needs.
pub const PACKAGES: &str = "clang lld wasi-libc libclang-rt-14-dev-wasm32";

pub fn build(source: &Path, output: &Path, scratch: &Path) -> anyhow::Result<()> {
    let clang = find_tool(Some("WASMLOAD_CLANG"), "clang").ok_or_else(|| {
        anyhow::anyhow!("building a C scenario needs clang: install it with `apt-get install {PACKAGES}` (Debian)")
    })?;
    sdk::write(scratch, sdk::WIT)?;
    let generated = scratch.join("gen");
    bindings(&scratch.join("wit"), &generated)?;
    let core = scratch.join("core.wasm");
    let mut compile = Command::new(clang);
    compile
        .args(["--target=wasm32-wasi", "-mexec-model=reactor", "-O2", "-Wall", "-Wl,--strip-debug", "-I"])
        .arg(&generated)
        .arg("-o")
        .arg(&core)
        .arg(source)
        .arg(generated.join("load_test.c"))
        .arg(generated.join("load_test_component_type.o"));
    run_tool(compile, "clang", source, telling)?;
    let module = std::fs::read(&core).context("cannot read clang's output")?;
    let component = wit_component::ComponentEncoder::default()
        .validate(true)
        .module(&module)
        .and_then(|e| e.adapter("wasi_snapshot_preview1", WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER))
        .and_then(|e| e.encode())
        .map_err(|e| {
            anyhow::anyhow!("cannot build `{}`: the module is not a scenario component: {e:#}", source.display())
        })?;
    std::fs::write(output, component).with_context(|| format!("cannot write {}", output.display()))
}

/// `load_test.h`, `load_test.c` and `load_test_component_type.o` for the `load-test` world.
fn bindings(wit: &Path, out: &Path) -> anyhow::Result<()> {
    let mut resolve = Resolve::default();
    let (package, _) = resolve.push_path(wit).context("cannot read the WIT")?;
    let world = resolve.select_world(&[package], Some("load-test")).context("no load-test world in the WIT")?;
    let mut files = Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)
        .context("cannot generate C bindings")?;
    std::fs::create_dir_all(out)?;
    for (name, contents) in files.iter() {
        std::fs::write(out.join(name), contents).with_context(|| format!("cannot write {name}"))?;
    }
    Ok(())
}

/// clang's first error line.
fn telling(line: &str) -> Option<String> {
    (line.contains(" error: ") || line.starts_with("error: ") || line.contains("undefined symbol"))
        .then(|| line.to_owned())
}
