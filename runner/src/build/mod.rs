//! `runner build`: turns a scenario written in Python or JavaScript into a plan (a
//! WebAssembly component), then loads it as `runner run` would, so a plan that builds is a
//! plan that runs, and its compilation is cached for the first run.
//!
//! The SDKs and the WIT travel inside the runner binary (`sdk`), so building needs only the
//! language's component toolchain: componentize-py for Python, the npm packages for
//! JavaScript (see `python` and `js` for how each is found).

mod c;
mod js;
mod python;
mod sdk;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;

use crate::cli::BuildArgs;
use crate::client::HttpShared;
use crate::host::HostShared;
use crate::output::console;

/// What `runner build` does with a scenario, by its file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Language {
    Python,
    /// JavaScript or TypeScript, k6 style.
    JavaScript,
    C,
}

impl Language {
    fn of(path: &Path) -> anyhow::Result<Self> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("py") => Ok(Self::Python),
            Some("js" | "mjs" | "ts") => Ok(Self::JavaScript),
            Some("c") => Ok(Self::C),
            _ => anyhow::bail!(
                "`{}` is not a scenario `runner build` knows: it builds Python (.py), JavaScript (.js, .mjs), \
                 TypeScript (.ts) and C (.c) files; build Rust plans with `cargo build --release --target wasm32-wasip2`",
                path.display()
            ),
        }
    }
}

/// Builds the scenario named in `args`; returns the exit code.
pub async fn build(args: BuildArgs) -> anyhow::Result<i32> {
    let source = &args.scenario;
    if !source.is_file() {
        anyhow::bail!("the scenario `{}` does not exist or is not a file", source.display());
    }
    let language = Language::of(source)?;
    let output = args.output.clone().unwrap_or_else(|| source.with_extension("wasm"));
    let scratch = tempfile::Builder::new()
        .prefix("wasmload-build-")
        .tempdir()
        .context("cannot create a scratch folder for the build")?;
    let started = Instant::now();
    match language {
        Language::Python => python::build(source, &output, scratch.path())?,
        Language::JavaScript => js::build(source, &output, scratch.path())?,
        Language::C => c::build(source, &output, scratch.path())?,
    }
    let size = std::fs::metadata(&output).map(|m| m.len()).unwrap_or(0);
    console::line(&format!(
        "Built {} ({:.1} MB) in {:.1} s",
        output.display(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    ));
    verify(&output).await?;
    Ok(0)
}

/// Loads the plan as `runner run` would (compile, check the world, describe), which also
/// caches its compilation, and prints what it declares.
async fn verify(plan_path: &Path) -> anyhow::Result<()> {
    let shared = HostShared {
        http: Arc::new(HttpShared::describe_only()?),
        env: Arc::from([]),
        limits: crate::host::GuestLimits::default(),
        setup_data: None,
    };
    let bytes = crate::plan::read(plan_path)?;
    let layout = crate::plan::Layout::few();
    let engine = crate::plan::engine(layout, bytes.len() as u64, None)?;
    let _ticker = crate::epoch::EpochTicker::start(engine.engine.clone());
    let loaded = crate::plan::load(plan_path, &bytes, engine, layout, &shared).await?;
    let tasks: Vec<String> = loaded.plan.tasks.iter().map(|t| format!("{}×{}", t.name, t.weight)).collect();
    console::line(&format!("The plan runs: {}. Run it with `runner run {}`", tasks.join(", "), plan_path.display()));
    Ok(())
}

/// Runs a toolchain command; on failure, the error is the most telling line of its output
/// (the last exception or error line) with the whole output after it.
fn run_tool(
    mut command: Command,
    tool: &str,
    source: &Path,
    telling: fn(&str) -> Option<String>,
) -> anyhow::Result<()> {
    let out = command.output().with_context(|| format!("cannot start {tool}"))?;
    if out.status.success() {
        return Ok(());
    }
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let reason = text.lines().rev().find_map(|l| telling(l.trim())).unwrap_or_else(|| "see its output below".into());
    let said: Vec<_> = text.trim_end().lines().map(console::sanitize).collect();
    anyhow::bail!(
        "cannot build `{}`: {}\n\n{tool} said:\n{}",
        source.display(),
        console::sanitize(&reason),
        said.join("\n")
    )
}

/// The file named by the environment variable `var` (when given and set), else `name` on `PATH`.
fn find_tool(var: Option<&str>, name: &str) -> Option<PathBuf> {
    if let Some(path) = var.and_then(std::env::var_os).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|p| p.is_file())
}
