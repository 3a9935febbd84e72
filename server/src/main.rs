//! The `ludus-server` binary: parse flags, init tracing, load and validate the config, bind,
//! and hand everything to [`ludus_server::run`] until Ctrl-C or SIGTERM.

use clap::Parser;
use ludus_server::config::{self, Override};
use ludus_server::game::GameRegistry;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Ludus game room server. With no flags it serves the built-in games on 127.0.0.1:7878.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// TOML config file (see server/ludus.example.toml); defaults are embedded.
    #[arg(long, env = "LUDUS_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:7878 (overrides server.listen).
    #[arg(long)]
    listen: Option<String>,
    /// Public base URL clients reach this node at (overrides server.public_url).
    #[arg(long)]
    public_url: Option<String>,
    /// Sets any config field, e.g. `--set session.max_message_bytes=8192` (repeatable).
    #[arg(long = "set", value_name = "FIELD=VALUE")]
    set: Vec<String>,
    /// Validate the configuration, print it, and exit.
    #[arg(long)]
    check_config: bool,
}

fn overrides(cli: &Cli) -> Result<Vec<Override>, String> {
    let environment: BTreeMap<String, String> = std::env::vars().collect();
    let mut overrides = Override::from_env(&environment);
    let flags = [
        ("server.listen", "--listen", &cli.listen),
        ("server.public_url", "--public-url", &cli.public_url),
    ];
    for (field, origin, value) in flags {
        if let Some(value) = value {
            overrides.push(Override {
                field: field.to_owned(),
                value: value.clone(),
                origin: origin.to_owned(),
            });
        }
    }
    for assignment in &cli.set {
        let Some((field, value)) = assignment.split_once('=') else {
            return Err(format!("--set {assignment}: expected FIELD=VALUE"));
        };
        overrides.push(Override {
            field: field.trim().to_owned(),
            value: value.trim().to_owned(),
            origin: format!("--set {}", field.trim()),
        });
    }
    Ok(overrides)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let registry = GameRegistry::builtin();
    let games = registry.limits();
    let config = match overrides(&cli)
        .and_then(|overrides| {
            config::load(cli.config.as_deref(), &overrides).map_err(|error| error.to_string())
        })
        .and_then(|loaded| loaded.validate(&games).map_err(|error| error.to_string()))
    {
        Ok(config) => config,
        Err(message) => {
            eprintln!("error: invalid configuration: {message}");
            return ExitCode::from(2);
        }
    };
    if let Err(error) = ludus_server::cluster::ClusterSettings::from_config(&config) {
        eprintln!("error: invalid configuration: {error}");
        return ExitCode::from(2);
    }
    if cli.check_config {
        let shown = config.redacted();
        match toml::to_string_pretty(&shown) {
            Ok(text) => println!("{text}"),
            Err(error) => eprintln!("error: cannot print configuration: {error}"),
        }
        return ExitCode::SUCCESS;
    }
    let bind = |address: std::net::SocketAddr| {
        std::net::TcpListener::bind(address)
            .map_err(|error| format!("error: cannot listen on {address}: {error}"))
    };
    let listeners = match bind(config.server.listen).and_then(|api| {
        let operator = config.operator.listen.map(bind).transpose()?;
        Ok(ludus_server::Listeners { api, operator })
    }) {
        Ok(listeners) => listeners,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(1);
        }
    };
    let served = actix_rt::System::new().block_on(ludus_server::run(
        listeners,
        config,
        registry,
        shutdown_signal(),
    ));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the server");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
