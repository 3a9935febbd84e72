//! One Ludus node as its own process, for tests that must do to a node what only a process
//! suffers: `SIGSTOP`/`SIGCONT` (a pause past its lease), `SIGKILL`, `SIGTERM`.
//!
//! Usage: `ludus-test-node <config.json> [<listen address>]` where the file is a serialized
//! `ServerConfig`. Without an address the node binds `127.0.0.1:0`; with one it binds exactly
//! there with `SO_REUSEPORT`, joining a port the test reserved for it (see
//! `ludus_tests::child::ReservedPort`), so a restarted node comes back on the same URL. It
//! prints the bound address on the first line of stdout, then serves until killed, or until
//! `SIGTERM`, which shuts it down the way the real binary does (a clustered node drains first).

use ludus_server::config::ServerConfig;
use ludus_server::game::GameRegistry;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

/// Listen backlog: a test's bots reconnect in bursts after a fault.
const BACKLOG: i32 = 1_024;

/// Binds `addr` beside the test's reservation of it: the test holds a bound, non-listening
/// socket with `SO_REUSEPORT` on the same port, so this one must set it too.
fn bind_reserved(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: ludus-test-node <config.json> [<listen address>]");
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
    let bound = match args.next() {
        None => std::net::TcpListener::bind("127.0.0.1:0"),
        Some(text) => match text.to_string_lossy().parse::<SocketAddr>() {
            Ok(addr) => bind_reserved(addr),
            Err(error) => {
                eprintln!("error: listen address {}: {error}", text.to_string_lossy());
                return ExitCode::from(2);
            }
        },
    };
    let listener = match bound {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("error: cannot bind: {error}");
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
        terminated(),
    ));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(1)
        }
    }
}

/// Resolves on `SIGTERM`; never, if the handler cannot be installed (the test then sees a node
/// that does not stop and fails on its bounded wait).
async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut terminate) => {
            terminate.recv().await;
        }
        Err(error) => {
            eprintln!("error: cannot listen for SIGTERM: {error}");
            std::future::pending::<()>().await;
        }
    }
}
