//! A cluster node run as a child process (the `ludus-test-node` binary of this package), for
//! what only a process can be sent: `SIGSTOP`/`SIGCONT` (a pause past its lease), `SIGHUP`
//! (reload the region file), `SIGTERM` (shut down, draining first) and `SIGKILL`.
//!
//! Two ways to get an address, neither of them guessing a port:
//! - [`ChildNode::spawn`]: the child binds `127.0.0.1:0` itself and prints the address; the
//!   region file can then only name it with placeholder URLs.
//! - [`ChildNode::spawn_on`] with a [`ReservedPort`]: the test binds a socket first (port 0,
//!   `SO_REUSEPORT`, never listening) and keeps it for the whole test, so the region file names
//!   real URLs and every restart of the node binds the same port beside the reservation. While
//!   the node is down the port refuses connections, as a crashed server's would, and no other
//!   program can take it: binding it needs `SO_REUSEPORT` and our user id, and the kernel never
//!   hands a bound port out as an ephemeral one. (Passing a listening fd to the child would
//!   need `unsafe`, which the workspace forbids, and would queue connections into a dead
//!   node's backlog instead of refusing them.)
//!
//! Dropping a `ChildNode` continues and kills it.

use anyhow::{bail, Context as _};
use ludus_server::config::ServerConfig;
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A loopback port held for a node for as long as this lives.
pub struct ReservedPort {
    _socket: Socket,
    addr: SocketAddr,
}

impl ReservedPort {
    /// Reserves a free loopback port.
    pub fn new() -> anyhow::Result<Self> {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        let any_port: SocketAddr = ([127, 0, 0, 1], 0).into();
        socket.bind(&any_port.into())?;
        let addr = socket
            .local_addr()?
            .as_socket()
            .context("a loopback socket has an IP address")?;
        Ok(Self {
            _socket: socket,
            addr,
        })
    }

    /// The reserved address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// A node process.
pub struct ChildNode {
    child: Child,
    addr: SocketAddr,
    /// Reaped: its pid may belong to another process now, so it must not be signalled.
    reaped: bool,
    _dir: tempfile::TempDir,
}

impl ChildNode {
    /// Starts `binary` (pass `env!("CARGO_BIN_EXE_ludus-test-node")`) with `config`, on a port
    /// of its own choosing.
    pub fn spawn(binary: &Path, config: &ServerConfig) -> anyhow::Result<Self> {
        Self::start(binary, config, None, None)
    }

    /// Starts `binary` with `config` on `port`, appending its stderr to `log`.
    pub fn spawn_on(
        binary: &Path,
        config: &ServerConfig,
        port: &ReservedPort,
        log: &Path,
    ) -> anyhow::Result<Self> {
        Self::start(binary, config, Some(port.addr()), Some(log))
    }

    fn start(
        binary: &Path,
        config: &ServerConfig,
        listen: Option<SocketAddr>,
        log: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config_file = dir.path().join("config.json");
        std::fs::write(&config_file, serde_json::to_vec(config)?)?;
        let mut command = Command::new(binary);
        command
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        if let Some(listen) = listen {
            command.arg(listen.to_string());
        }
        if let Some(log) = log {
            // A log file is for evidence after a failure: info unless the test asked for more.
            let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "ludus_server=info".into());
            command.env("RUST_LOG", filter);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .with_context(|| format!("cannot open {}", log.display()))?;
            command.stderr(file);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let stdout = child.stdout.take().context("child stdout")?;
        let mut line = String::new();
        // The child writes its address first thing; a dead child closes stdout (0 bytes).
        let read = BufReader::new(stdout).read_line(&mut line);
        let addr = match read {
            Ok(bytes) if bytes > 0 => line.trim().parse().context("child address")?,
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("the node process exited before binding");
            }
        };
        Ok(Self {
            child,
            addr,
            reaped: false,
            _dir: dir,
        })
    }

    /// `http://<addr>`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn signal(&self, name: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.reaped,
            "node process {} already exited",
            self.child.id()
        );
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -{name} failed");
        Ok(())
    }

    /// Freezes the process (`SIGSTOP`): its clocks run on, it does nothing.
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("STOP")
    }

    /// Asks it to reload its region file (`SIGHUP`).
    pub fn hang_up(&self) -> anyhow::Result<()> {
        self.signal("HUP")
    }

    /// Lets it run again (`SIGCONT`).
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("CONT")
    }

    /// Asks it to shut down (`SIGTERM`).
    pub fn terminate(&self) -> anyhow::Result<()> {
        self.signal("TERM")
    }

    /// Crashes it (`SIGKILL`) and reaps it.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }

    /// Waits up to `within` for the process to exit by itself; its exit status, or an error
    /// naming the wait (the process is then still running, and dropping it kills it).
    pub fn wait_for_exit(&mut self, within: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait()? {
                self.reaped = true;
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "node process {} did not exit within {} ms",
                    self.child.id(),
                    within.as_millis()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        if self.reaped {
            return;
        }
        let _ = self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
