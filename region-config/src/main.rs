//! `ludus-regions`: the operator's view of a region file.
//!
//! Thin on purpose: parse arguments, call the library, print. Every decision (validation,
//! placement, sampling) lives in the `ludus_regions` library so the server computes exactly what
//! this tool prints. Exit code 0 on success, 1 on a config or placement error (printed on stderr
//! as `error: file:line: field: message`), 2 on bad arguments.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ludus_regions::{PlacementReason, RegionConfig, RegionName, DIFF_SAMPLE_SIZE};

#[derive(Parser)]
#[command(
    version,
    about = "Check Ludus region files and see where rooms are placed"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a region file and print a summary of its regions and nodes
    Check {
        /// The region file
        file: PathBuf,
    },
    /// Print the node owning a room and, for a fallback, why
    Place {
        /// The region file
        file: PathBuf,
        /// The room id, hashed as its UTF-8 bytes
        room_id: String,
        /// Preferred region, by name or alias [default: the file's default_region]
        #[arg(long)]
        region: Option<String>,
        /// Treat this node as not live (repeatable), to see where its rooms would go
        #[arg(long = "down", value_name = "NODE_ID")]
        down_nodes: Vec<String>,
    },
    /// Estimate, per region, the fraction of rooms whose owner changes from OLD to NEW
    Diff {
        /// The region file in use now
        old: PathBuf,
        /// The region file about to be deployed
        new: PathBuf,
    },
}

fn main() -> ExitCode {
    let report = match Cli::parse().command {
        Command::Check { file } => ludus_regions::load(&file)
            .map(|config| summary(&file, &config))
            .map_err(anyhow::Error::from),
        Command::Place {
            file,
            room_id,
            region,
            down_nodes,
        } => place(&file, &room_id, region.as_deref(), &down_nodes),
        Command::Diff { old, new } => diff(&old, &new),
    };
    match report {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn summary(file: &std::path::Path, config: &RegionConfig) -> String {
    let mut out = String::new();
    let cluster = config.cluster();
    let nats = cluster
        .nats_url
        .as_ref()
        .map_or_else(|| "none (single node)".to_owned(), ToString::to_string);
    // `write!` into a String cannot fail.
    let _ = writeln!(
        out,
        "{}: ok, {} regions, {} nodes, default region {}",
        file.display(),
        config.regions().count(),
        config.nodes().len(),
        config.default_region()
    );
    let _ = writeln!(
        out,
        "cluster: nats {nats}, heartbeat every {} ms, node timeout {} ms",
        cluster.heartbeat_interval.as_millis(),
        cluster.node_timeout.as_millis()
    );
    for region in config.regions() {
        let total_weight: u64 = config
            .nodes_in(&region.name)
            .map(|node| u64::from(node.weight.get()))
            .sum();
        let fallback_order = config.fallback_order(&region.name);
        let _ = writeln!(
            out,
            "region {}: aliases [{}], fallback order [{}], total weight {total_weight}",
            region.name,
            region.aliases.join(", "),
            joined(&fallback_order[1..]),
        );
        for node in config.nodes_in(&region.name) {
            let share = f64::from(node.weight.get()) / total_weight as f64 * 100.0;
            let _ = writeln!(
                out,
                "  node {}: weight {} ({share:.1}% of the region), ws {}, http {}",
                node.id, node.weight, node.ws_url, node.http_url
            );
        }
        for (room_type, defaults) in &region.room_types {
            let _ = writeln!(
                out,
                "  room type {room_type}: max_players {}, tick_hz {}",
                defaults.max_players, defaults.tick_hz
            );
        }
    }
    out
}

fn place(
    file: &std::path::Path,
    room_id: &str,
    region: Option<&str>,
    down_nodes: &[String],
) -> anyhow::Result<String> {
    let config = ludus_regions::load(file)?;
    let preferred = match region {
        Some(name_or_alias) => config
            .resolve_region(name_or_alias)
            .with_context(|| format!("unknown region or alias `{name_or_alias}`"))?,
        None => config.default_region(),
    };
    if let Some(unknown) = down_nodes
        .iter()
        .find(|down| !config.nodes().iter().any(|node| node.id.as_str() == *down))
    {
        anyhow::bail!("--down names unknown node `{unknown}`");
    }
    let live_node_ids = config
        .nodes()
        .iter()
        .map(|node| &node.id)
        .filter(|id| !down_nodes.iter().any(|down| down == id.as_str()));
    let decision =
        ludus_regions::Placement::new(&config, live_node_ids).place(room_id, preferred)?;
    let node = decision.node;
    let region = decision.region;
    match decision.reason {
        PlacementReason::Preferred => Ok(format!("{node} (region {region})\n")),
        fallback => Ok(format!("{node} (region {region}, {fallback})\n")),
    }
}

fn diff(old_file: &std::path::Path, new_file: &std::path::Path) -> anyhow::Result<String> {
    let old = ludus_regions::load(old_file)?;
    let new = ludus_regions::load(new_file)?;
    let mut out = format!(
        "estimated from {DIFF_SAMPLE_SIZE} synthetic room ids (room-0 .. room-{}), every node live, fallbacks ignored\n",
        DIFF_SAMPLE_SIZE - 1
    );
    for region_diff in ludus_regions::diff(&old, &new) {
        let presence = match (region_diff.in_old, region_diff.in_new) {
            (true, false) => " (region removed)",
            (false, true) => " (region added)",
            _ => "",
        };
        let _ = writeln!(
            out,
            "region {}: {:.2}% of rooms change owner{presence}",
            region_diff.region,
            region_diff.moved_fraction() * 100.0
        );
    }
    Ok(out)
}

fn joined(regions: &[RegionName]) -> String {
    regions
        .iter()
        .map(RegionName::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}
