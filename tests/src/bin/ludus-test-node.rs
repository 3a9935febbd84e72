//! One Ludus node as its own process, for tests that must do to a node what only a process
//! suffers: `SIGSTOP`/`SIGCONT` (a pause past its lease), `SIGKILL`.
//!
//! Usage: `ludus-test-node <config.json>` where the file is a serialized `ServerConfig`. The
//! node binds `127.0.0.1:0`, prints the bound address on the first line of stdout, then serves
//! until killed.

use ludus_server::config::ServerConfig;
use ludus_server::game::GameRegistry;
use std::io::Write as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: ludus-test-node <config.json>");
        return ExitCode::from(2);
    };
    let config: ServerConfig = match std::fs::read(&path)
        .map_err(|error| error.to_string())
        .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|error| error.to_string()))
    {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {}: {error}", path.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    let listener = match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot bind 127.0.0.1:0: {error}");
            return ExitCode::from(1);
        }
    };
    let announced = listener
        .local_addr()
        .map_err(|error| error.to_string())
        .and_then(|addr| {
            let mut stdout = std::io::stdout();
            writeln!(stdout, "{addr}")
                .and_then(|()| stdout.flush())
                .map_err(|error| error.to_string())
        });
    if let Err(error) = announced {
        eprintln!("error: cannot announce the address: {error}");
        return ExitCode::from(1);
    }
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let served = actix_rt::System::new().block_on(ludus_server::run(
        listener,
        config,
        GameRegistry::builtin(),
        std::future::pending(),
    ));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}
