//! `runner`: load tests whose scenarios are WebAssembly components.
//!
//! Data flow, from `main`:
//! `cli` (flags) -> `config` (flags + the plan's defaults) -> `run`, which
//! `plan::load`s the component once (`InstancePre`), lets `load` start one instance per VU,
//! whose `http.send` calls go through `host::http` to `client` (HTTP/1.1 per VU, `client::h1`)
//! and are timed into `stats` (per-thread shards), merged every second by the aggregator
//! and shown by `output` (status line, summary, JSON).

pub mod bindings;
pub mod build;
pub mod cli;
pub mod client;
pub mod config;
pub mod epoch;
pub mod host;
pub mod limits;
pub mod load;
pub mod open_files;
pub mod output;
pub mod plan;
pub mod policy;
pub mod run;
pub mod stats;
pub mod target;
pub mod thresholds;
pub mod web;

use cli::{Cli, Command, DemoArgs, LoadArgs, RunArgs, TargetArgs};
use config::Requested;
use host::GuestLimits;

/// Runs one command line; returns the process exit code.
pub async fn main(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run(args) => Ok(run::run(requested(*args)).await?.exit_code),
        Command::Build(args) => build::build(args).await,
        Command::Demo(args) => demo(args).await,
        Command::Target(args) => serve_target(args).await,
    }
}

fn requested(args: RunArgs) -> Requested {
    Requested {
        plan_path: args.plan,
        host: args.host,
        load: args.load,
        env: args.env,
        insecure: args.insecure,
        output: args.output,
        limits: GuestLimits {
            memory: args.sandbox.max_vu_memory,
            cpu: args.sandbox.max_guest_cpu,
            host: {
                let mut host = limits::HostLimits::default();
                for (name, value) in &args.limits {
                    host.set(name, *value);
                }
                host
            },
        },
        allow_hosts: args.allow_hosts,
        policy: args.policy,
        timeouts: args.timeouts.timeouts(),
        web: (!args.web.headless).then_some(config::WebSettings {
            addr: std::net::SocketAddr::new(args.web.web_host, args.web.web_port),
            autostart: args.web.autostart,
        }),
    }
}

/// `runner demo`: the built-in target on a free port, and the example plan against it.
async fn demo(args: DemoArgs) -> anyhow::Result<i32> {
    if !args.plan.exists() {
        anyhow::bail!(
            "the demo plan `{}` does not exist; build it with `scripts/demo.sh` (or \
             `cargo build --release --target wasm32-wasip2 --manifest-path guest-examples/Cargo.toml`)",
            args.plan.display()
        );
    }
    let target = target::start(0).await?;
    output::console::line(&format!("Demo target listening on {}", target.url()));
    let host = cli::parse_host(&target.url()).map_err(anyhow::Error::msg)?;
    let requested = Requested {
        plan_path: args.plan,
        host: Some(host),
        load: LoadArgs {
            users: Some(args.users),
            spawn_rate: Some(args.spawn_rate),
            run_time: Some(args.run_time),
            iterations: None,
            shared_iterations: None,
            stages: None,
            arrival_rate: None,
            max_vus: None,
            max_delay: None,
            stop_timeout: std::time::Duration::from_secs(5),
        },
        env: Vec::new(),
        insecure: false,
        output: args.output,
        limits: GuestLimits::default(),
        allow_hosts: Vec::new(),
        policy: None,
        timeouts: client::Timeouts::default(),
        web: args.web.then(|| config::WebSettings {
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], args.web_port)),
            autostart: true,
        }),
    };
    Ok(run::run(requested).await?.exit_code)
}

/// `runner target`: serve the demo target until Ctrl-C.
async fn serve_target(args: TargetArgs) -> anyhow::Result<i32> {
    let target = target::start(args.port).await?;
    output::console::line(&format!("Demo target listening on {} (Ctrl-C stops it)", target.url()));
    for route in target::ROUTES.lines() {
        output::console::line(route);
    }
    tokio::signal::ctrl_c().await?;
    Ok(0)
}
