//! The swarm's command line: scenarios as subcommands, shared options, and the checks that turn
//! them into a [`Scenario`] with every number inside a documented range.
//!
//! Lives in the library so the binary stays a few lines and so tests can build the same
//! arguments. Every bound here exists so that a typo cannot start an unbounded run.

use crate::error::ScenarioError;
use crate::loopback;
use crate::swarm::{Gates, RunOptions, Scenario};
use clap::{Args, Parser, Subcommand};
use ludus_protocol::ProtocolVersion;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// Most bots one swarm will drive.
pub const MAX_BOTS: u32 = 50_000;
/// Longest run, in seconds (one day).
pub const MAX_DURATION_S: f64 = 86_400.0;
/// Highest input rate per bot. The server's default rate limit is well above one input per
/// tick; this bound keeps a bot a plausible player, not a flood.
pub const MAX_INPUT_HZ: f64 = 100.0;

/// Drives swarms of Ludus bots against one server and reports what they saw.
#[derive(Debug, Parser)]
#[command(name = "ludus-bots", version, about)]
pub struct Cli {
    /// Options every scenario shares.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: ScenarioCommand,
}

/// Options every scenario shares.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The server's lobby address. Bots connect only to this host and port.
    #[arg(
        long,
        global = true,
        default_value = "http://127.0.0.1:7878",
        env = "LUDUS_SERVER"
    )]
    pub server: String,
    /// Room type to play.
    #[arg(long, global = true, default_value = "arena")]
    pub room_type: String,
    /// Protocol version the bots speak: 2 (compact deltas, the default) or 1 (named fields).
    #[arg(long, global = true, default_value_t = 2)]
    pub protocol: u16,
    /// Bots started per second during the ramp-up.
    #[arg(long, global = true, default_value_t = 500.0)]
    pub ramp_per_s: f64,
    /// Bots joining at the same time at most (lobby request to welcome).
    #[arg(long, global = true, default_value_t = 128)]
    pub max_pending_joins: u32,
    /// Seed for the bots' random walks.
    #[arg(long, global = true, default_value_t = 1)]
    pub seed: u64,
    /// Write the figures as JSON to this file (fields in README.md).
    #[arg(long, global = true)]
    pub report: Option<PathBuf>,
    /// Write a self-contained HTML report with plots to this file.
    #[arg(long, global = true)]
    pub html: Option<PathBuf>,
    /// No live progress line.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// Exit with code 3 when the run's p99 input latency exceeds this many milliseconds.
    #[arg(long, global = true)]
    pub max_p99_ms: Option<f64>,
    /// Exit with code 3 when errors / join attempts exceeds this fraction (0 to 1).
    #[arg(long, global = true)]
    pub max_error_rate: Option<f64>,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
pub enum ScenarioCommand {
    /// R rooms of P players each, every bot sending inputs at a fixed rate.
    Load(LoadArgs),
    /// A long run with churn: bots leave and join, some drop without a close.
    Soak(SoakArgs),
    /// N bots in play, every connection cut at once without a close, every bot resumes;
    /// reports resumes by outcome, resume latency and the time until all resumed. Loopback
    /// servers only.
    Storm(StormArgs),
    /// N sessions held open without inputs (still acknowledging), to measure memory per
    /// connection.
    Idle(IdleArgs),
    /// No server: the cost of one write + one read of a small message over loopback TCP, the
    /// physical floor `scripts/bench` compares the server with. Prints one JSON line.
    Loopback(LoopbackArgs),
}

/// `loopback` arguments.
#[derive(Debug, Args, Clone)]
pub struct LoopbackArgs {
    /// Messages to send.
    #[arg(long, default_value_t = 500_000)]
    pub messages: u64,
    /// Bytes per message (about one delta frame).
    #[arg(long, default_value_t = 256)]
    pub message_bytes: usize,
    /// Connections to spread the messages over, round-robin (as a server's players are).
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
}

/// What the command line asks for, checked.
#[derive(Debug)]
pub enum Run {
    /// A swarm scenario against a server.
    Swarm(RunOptions, Scenario),
    /// The loopback floor benchmark.
    Loopback(LoopbackArgs),
}

/// `load` arguments.
#[derive(Debug, Args, Clone, Serialize)]
pub struct LoadArgs {
    /// Rooms to create.
    #[arg(long, default_value_t = 10)]
    pub rooms: u32,
    /// Players per room (the room's max_players).
    #[arg(long, default_value_t = 10)]
    pub players: u32,
    /// Inputs per second per bot.
    #[arg(long, default_value_t = 20.0)]
    pub input_hz: f64,
    /// Seconds to hold the full load after the ramp-up.
    #[arg(long, default_value_t = 30.0)]
    pub duration_s: f64,
}

/// `soak` arguments.
#[derive(Debug, Args, Clone, Serialize)]
pub struct SoakArgs {
    /// Bots kept connected.
    #[arg(long, default_value_t = 100)]
    pub bots: u32,
    /// Inputs per second per bot.
    #[arg(long, default_value_t = 10.0)]
    pub input_hz: f64,
    /// Seconds to run after the ramp-up.
    #[arg(long, default_value_t = 600.0)]
    pub duration_s: f64,
    /// Bots replaced per second (each leaves or drops, and a new one joins).
    #[arg(long, default_value_t = 1.0)]
    pub churn_per_s: f64,
    /// Fraction of leaving bots that drop the socket without a close (0 to 1).
    #[arg(long, default_value_t = 0.2)]
    pub drop_fraction: f64,
}

/// `idle` arguments.
#[derive(Debug, Args, Clone, Serialize)]
pub struct IdleArgs {
    /// Sessions to open.
    #[arg(long, default_value_t = 1000)]
    pub bots: u32,
    /// Seconds to hold them after the ramp-up.
    #[arg(long, default_value_t = 30.0)]
    pub duration_s: f64,
}

/// `storm` arguments.
#[derive(Debug, Args, Clone, Serialize)]
pub struct StormArgs {
    /// Bots in play, all cut at once.
    #[arg(long, default_value_t = 100)]
    pub bots: u32,
    /// Inputs per second per bot.
    #[arg(long, default_value_t = 10.0)]
    pub input_hz: f64,
    /// Seconds of play after the ramp-up, before the cut.
    #[arg(long, default_value_t = 3.0)]
    pub before_s: f64,
    /// Seconds of play after every bot resumed (or gave up).
    #[arg(long, default_value_t = 5.0)]
    pub after_s: f64,
}

/// Longest `--before-s` / `--after-s` of a storm: it measures a burst, not an endurance.
pub const MAX_STORM_HOLD_S: f64 = 600.0;

impl Cli {
    /// Checks every argument and builds the run.
    pub fn into_run(self) -> Result<Run, ScenarioError> {
        let common = self.common;
        check_range("--ramp-per-s", common.ramp_per_s, 0.1, 100_000.0)?;
        let protocol = ProtocolVersion::from_hello(common.protocol).ok_or_else(|| {
            invalid(
                "--protocol",
                format!("{} is neither 1 nor 2", common.protocol),
            )
        })?;
        check_range(
            "--max-pending-joins",
            f64::from(common.max_pending_joins),
            1.0,
            10_000.0,
        )?;
        if let Some(max_p99_ms) = common.max_p99_ms {
            check_range("--max-p99-ms", max_p99_ms, 0.0, 3_600_000.0)?;
        }
        if let Some(max_error_rate) = common.max_error_rate {
            check_range("--max-error-rate", max_error_rate, 0.0, 1.0)?;
        }
        if common.room_type.is_empty() || common.room_type.len() > 64 {
            return Err(invalid("--room-type", "use 1 to 64 characters".into()));
        }
        let scenario = match self.scenario {
            ScenarioCommand::Load(load) => {
                check_range("--rooms", f64::from(load.rooms), 1.0, f64::from(MAX_BOTS))?;
                check_range("--players", f64::from(load.players), 1.0, 1000.0)?;
                let bots = u64::from(load.rooms) * u64::from(load.players);
                if bots > u64::from(MAX_BOTS) {
                    let reason = format!("{bots} bots (rooms × players) exceeds {MAX_BOTS}");
                    return Err(invalid("--rooms", reason));
                }
                check_range("--input-hz", load.input_hz, 0.0, MAX_INPUT_HZ)?;
                check_range("--duration-s", load.duration_s, 0.0, MAX_DURATION_S)?;
                Scenario::Load(load)
            }
            ScenarioCommand::Soak(soak) => {
                check_range("--bots", f64::from(soak.bots), 1.0, f64::from(MAX_BOTS))?;
                check_range("--input-hz", soak.input_hz, 0.0, MAX_INPUT_HZ)?;
                check_range("--duration-s", soak.duration_s, 0.0, MAX_DURATION_S)?;
                check_range("--churn-per-s", soak.churn_per_s, 0.0, 10_000.0)?;
                check_range("--drop-fraction", soak.drop_fraction, 0.0, 1.0)?;
                Scenario::Soak(soak)
            }
            ScenarioCommand::Storm(storm) => {
                check_range("--bots", f64::from(storm.bots), 1.0, f64::from(MAX_BOTS))?;
                check_range("--input-hz", storm.input_hz, 0.0, MAX_INPUT_HZ)?;
                check_range("--before-s", storm.before_s, 0.0, MAX_STORM_HOLD_S)?;
                check_range("--after-s", storm.after_s, 0.0, MAX_STORM_HOLD_S)?;
                check_loopback(&common.server)?;
                Scenario::Storm(storm)
            }
            ScenarioCommand::Idle(idle) => {
                check_range("--bots", f64::from(idle.bots), 1.0, f64::from(MAX_BOTS))?;
                check_range("--duration-s", idle.duration_s, 0.0, MAX_DURATION_S)?;
                Scenario::Idle(idle)
            }
            ScenarioCommand::Loopback(loopback) => {
                let max_messages = loopback::MAX_MESSAGES as f64;
                check_range("--messages", loopback.messages as f64, 1.0, max_messages)?;
                let max_bytes = loopback::MAX_MESSAGE_BYTES as f64;
                check_range(
                    "--message-bytes",
                    loopback.message_bytes as f64,
                    1.0,
                    max_bytes,
                )?;
                let max_connections = loopback::MAX_CONNECTIONS as f64;
                check_range(
                    "--connections",
                    loopback.connections as f64,
                    1.0,
                    max_connections,
                )?;
                return Ok(Run::Loopback(loopback));
            }
        };
        let options = RunOptions {
            server: common.server,
            room_type: common.room_type,
            protocol,
            ramp_interval: Duration::from_secs_f64(1.0 / common.ramp_per_s),
            max_pending_joins: common.max_pending_joins,
            seed: common.seed,
            report: common.report,
            html: common.html,
            quiet: common.quiet,
            gates: Gates {
                max_p99_ms: common.max_p99_ms,
                max_error_rate: common.max_error_rate,
            },
        };
        Ok(Run::Swarm(options, scenario))
    }
}

fn invalid(name: &'static str, reason: String) -> ScenarioError {
    ScenarioError::InvalidArgument { name, reason }
}

/// `storm` cuts every connection of a server at once: only ever against this machine.
fn check_loopback(server: &str) -> Result<(), ScenarioError> {
    let host = reqwest::Url::parse(server)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned));
    let loopback = host.as_deref().is_some_and(|host| {
        host == "localhost"
            || host
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    if loopback {
        Ok(())
    } else {
        Err(invalid(
            "--server",
            format!("`storm` runs against a loopback server only, not `{server}`"),
        ))
    }
}

/// Rejects NaN, infinities and values outside `min..=max`.
fn check_range(name: &'static str, value: f64, min: f64, max: f64) -> Result<(), ScenarioError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(invalid(name, format!("{value} is outside {min}..={max}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Run, ScenarioError> {
        let cli = Cli::try_parse_from(["ludus-bots"].iter().chain(args)).expect("clap accepts");
        cli.into_run()
    }

    #[test]
    fn load_defaults_are_valid() {
        let Run::Swarm(options, scenario) = parse(&["load"]).expect("valid") else {
            panic!("load is a swarm run");
        };
        assert_eq!(options.server, "http://127.0.0.1:7878");
        assert!(matches!(
            scenario,
            Scenario::Load(LoadArgs {
                rooms: 10,
                players: 10,
                ..
            })
        ));
    }

    #[test]
    fn storm_runs_against_loopback_servers() {
        for server in [
            "http://127.0.0.1:7878",
            "http://localhost:1",
            "http://[::1]:7878",
        ] {
            assert!(
                matches!(
                    parse(&["--server", server, "storm"]),
                    Ok(Run::Swarm(_, Scenario::Storm(_)))
                ),
                "{server}"
            );
        }
    }

    #[test]
    fn out_of_range_arguments_name_the_flag() {
        for (args, flag) in [
            (&["load", "--rooms", "0"][..], "--rooms"),
            (
                &["load", "--rooms", "1000", "--players", "1000"][..],
                "--rooms",
            ),
            (&["load", "--input-hz", "NaN"][..], "--input-hz"),
            (&["soak", "--drop-fraction", "1.5"][..], "--drop-fraction"),
            (&["idle", "--duration-s", "1e9"][..], "--duration-s"),
            (&["--max-error-rate", "2", "idle"][..], "--max-error-rate"),
            (&["--ramp-per-s", "0", "idle"][..], "--ramp-per-s"),
            (&["--protocol", "3", "idle"][..], "--protocol"),
            (&["loopback", "--messages", "0"][..], "--messages"),
            (&["storm", "--bots", "0"][..], "--bots"),
            (&["storm", "--after-s", "601"][..], "--after-s"),
            (
                &["--server", "http://10.0.0.1:7878", "storm"][..],
                "--server",
            ),
        ] {
            match parse(args) {
                Err(ScenarioError::InvalidArgument { name, .. }) => assert_eq!(name, flag),
                other => panic!("{args:?} gave {other:?}"),
            }
        }
    }
}
