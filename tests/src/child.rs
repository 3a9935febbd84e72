//! A cluster node run as a child process (the `ludus-test-node` binary of this package), for
//! what only a process can be sent: `SIGSTOP`/`SIGCONT` (a pause past its lease), `SIGHUP`
//! (reload the region file) and `SIGKILL`.
//!
//! The child binds `127.0.0.1:0` itself and prints the address, so no port is guessed; the
//! region file names it with placeholder URLs (redirects to it are not what such tests check).
//! Dropping a `ChildNode` continues and kills it.

use anyhow::{bail, Context as _};
use ludus_server::config::ServerConfig;
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A node process.
pub struct ChildNode {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl ChildNode {
    /// Starts `binary` (pass `env!("CARGO_BIN_EXE_ludus-test-node")`) with `config`.
    pub fn spawn(binary: &Path, config: &ServerConfig) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let config_file = dir.path().join("config.json");
        std::fs::write(&config_file, serde_json::to_vec(config)?)?;
        let mut child = Command::new(binary)
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
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

    fn signal(&self, name: &str) -> anyhow::Result<()> {
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
}

impl Drop for ChildNode {
    fn drop(&mut self) {
        let _ = self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
