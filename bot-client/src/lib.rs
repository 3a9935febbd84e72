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
//! | [`invariants`] | what rooms must never do to players (tick order, one node per epoch, one connection per seat), as pure checks |
//! | [`ledger`] | the swarm-wide record of those checks and of drop → back times |
//! | [`swarm`] | scenarios: ramp-up, hold, churn, drain, sampling |
//! | [`report`], [`html`] | summary, JSON and HTML reports, gates |
//! | [`cli`] | command-line arguments and their bounds |
//! | [`loopback`] | the raw-socket floor the benchmark compares the server with |

pub mod bot;
pub mod cli;
mod error;
pub mod html;
pub mod invariants;
pub mod ledger;
pub mod lobby;
pub mod loopback;
mod mirror;
pub mod reconnect;
pub mod report;
pub mod session;
pub mod stats;
pub mod swarm;

pub use error::{BotError, ScenarioError};
pub use report::Report;

/// What a command produced.
#[derive(Debug)]
pub enum Outcome {
    /// A swarm run's report.
    Swarm(Box<Report>),
    /// The loopback floor.
    Loopback(loopback::LoopbackReport),
}

impl Outcome {
    /// The gates crossed; empty when the run passed (the loopback run has no gates).
    pub fn gate_failures(&self) -> &[String] {
        match self {
            Self::Swarm(report) => &report.gates.failures,
            Self::Loopback(_) => &[],
        }
    }
}

/// Runs what `cli` asks for. A swarm run prints its summary table to stdout and writes the
/// requested report files; the loopback run prints one JSON line. The caller turns
/// [`Outcome::gate_failures`] into an exit code.
pub async fn execute(cli: cli::Cli) -> Result<Outcome, ScenarioError> {
    let (options, scenario) = match cli.into_run()? {
        cli::Run::Swarm(options, scenario) => (options, scenario),
        cli::Run::Loopback(args) => {
            let report = tokio::task::spawn_blocking(move || {
                loopback::run(args.messages, args.message_bytes, args.connections)
            })
            .await
            .map_err(|join_error| ScenarioError::Loopback {
                source: std::io::Error::other(join_error),
            })??;
            let json = serde_json::to_string(&report).map_err(|error| ScenarioError::Loopback {
                source: std::io::Error::other(error),
            })?;
            println!("{json}");
            return Ok(Outcome::Loopback(report));
        }
    };
    let report = swarm::run(&options, &scenario).await?;
    print!("{}", report.summary_table());
    if let Some(path) = &options.report {
        report.write_json(path)?;
    }
    if let Some(path) = &options.html {
        report::write_file(path, html::render(&report).as_bytes())?;
    }
    Ok(Outcome::Swarm(Box::new(report)))
}
