//! Ludus bot clients: one bot that plays exactly like a real game client, and a swarm that
//! drives thousands of them against one server to measure it.
//!
//! A bot matchmakes (or reserves a seat) through the lobby's HTTP API, connects with its seat
//! token, mirrors the room with [`ludus_protocol::RoomState`], checks every tick for gaps and
//! resyncs, acknowledges ticks, sends inputs and times their acknowledgements. The swarm runs
//! the `load`, `soak` and `idle` scenarios, shows live progress, and reports (summary table,
//! JSON, HTML with plots) with pass/fail gates.
//!
//! This crate must stay a *client*: it only uses the public protocol and the lobby API, never
//! the server's internals, so what it measures is what a player would see. It only connects to
//! the server it is given.
//!
//! | module | what it owns |
//! | --- | --- |
//! | [`session`] | protocol state of one bot, no I/O (unit-tested against recorded frames) |
//! | [`bot`] | one bot's join, socket and timers |
//! | [`lobby`] | the lobby HTTP API |
//! | [`stats`] | per-bot counters and swarm totals |
//! | [`swarm`] | scenarios: ramp-up, hold, churn, drain, sampling |
//! | [`report`], [`html`] | summary, JSON and HTML reports, gates |
//! | [`cli`] | command-line arguments and their bounds |

pub mod bot;
pub mod cli;
mod error;
pub mod html;
pub mod lobby;
pub mod report;
pub mod session;
pub mod stats;
pub mod swarm;

pub use error::{BotError, ScenarioError};
pub use report::Report;

/// Runs the scenario `cli` describes, prints the summary table to stdout and writes the
/// requested report files. The caller turns [`Report::gates`] into an exit code.
pub async fn execute(cli: cli::Cli) -> Result<Report, ScenarioError> {
    let (options, scenario) = cli.into_run()?;
    let report = swarm::run(&options, &scenario).await?;
    print!("{}", report.summary_table());
    if let Some(path) = &options.report {
        report.write_json(path)?;
    }
    if let Some(path) = &options.html {
        report::write_file(path, html::render(&report).as_bytes())?;
    }
    Ok(report)
}
