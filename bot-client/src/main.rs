//! `ludus-bots`: parses arguments, sets up tracing, runs the scenario, maps the outcome to an
//! exit code. Everything else lives in the library.
//!
//! Exit codes: 0 success, 1 the run failed (server unreachable during setup, report not
//! writable), 2 invalid arguments, 3 a `--max-p99-ms` or `--max-error-rate` gate was crossed.

use clap::Parser;
use ludus_bots::{cli::Cli, ScenarioError};
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(ludus_bots::execute(cli)) {
        Ok(outcome) if outcome.gate_failures().is_empty() => ExitCode::SUCCESS,
        Ok(outcome) => {
            for failure in outcome.gate_failures() {
                eprintln!("gate failed: {failure}");
            }
            ExitCode::from(3)
        }
        Err(
            error
            @ (ScenarioError::InvalidArgument { .. } | ScenarioError::InvalidServerUrl { .. }),
        ) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("error: {:#}", anyhow::Error::new(error));
            ExitCode::from(1)
        }
    }
}
