//! The `runner` binary: parse flags, build the runtime, run, map the result to an exit code.

use clap::Parser;

fn main() {
    let cli = runner::cli::Cli::parse();
    // This thread runs the control loop (timers, signals, statistics, the demo target); the
    // VUs run on one worker thread per core (`load::Workers`).
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(runner::main(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    // VUs still running (a killed run) are abandoned rather than awaited.
    runtime.shutdown_background();
    std::process::exit(code);
}
