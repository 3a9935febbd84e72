//! A `nats-server` process of the test's own, on a port the server picks itself.
//!
//! Started with `-p -1` (random port) and `--ports_file_dir`, so the port is read back rather
//! than probed; `restart()` brings it back on the same port so clients reconnect by themselves;
//! dropping it kills the process.

use anyhow::{bail, Context};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running (or stopped, between `stop` and `restart`) nats-server.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

/// The `nats-server` to run: `$NATS_SERVER`, else the one on `PATH`, else Debian's path (which
/// is in root's `PATH` but not every user's).
fn nats_server_binary() -> PathBuf {
    if let Some(explicit) = std::env::var_os("NATS_SERVER") {
        return PathBuf::from(explicit);
    }
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("nats-server"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| PathBuf::from("/usr/sbin/nats-server"))
}

fn spawn(port: &str, dir: &std::path::Path) -> anyhow::Result<Child> {
    let log = std::fs::File::create(dir.join(format!("nats-{port}.log")))?;
    Command::new(nats_server_binary())
        .args(["-a", "127.0.0.1", "-p", port, "-js"])
        .arg("-sd")
        .arg(dir.join("store"))
        .arg("--ports_file_dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .context("cannot start nats-server (install it: apt-get install nats-server)")
}

fn ports_file(dir: &std::path::Path, pid: u32) -> PathBuf {
    dir.join(format!("nats-server_{pid}.ports"))
}

impl NatsServer {
    /// Starts a JetStream-enabled server on a random loopback port.
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let child = spawn("-1", dir.path())?;
        let file = ports_file(dir.path(), child.id());
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                let ports: serde_json::Value = serde_json::from_str(&text)?;
                let url = ports["nats"][0]
                    .as_str()
                    .context("client port in ports file")?;
                let port = url.rsplit(':').next().context("port in url")?.parse()?;
                break port;
            }
            if Instant::now() > deadline {
                bail!("nats-server wrote no ports file");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let server = Self {
            child: Some(child),
            port,
            dir,
        };
        server.wait_until_accepting()?;
        Ok(server)
    }

    fn wait_until_accepting(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if Instant::now() > deadline {
                bail!("nats-server is not accepting on port {}", self.port);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (an outage; JetStream memory storage is lost with it, files stay).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.child = Some(spawn(&self.port.to_string(), self.dir.path())?);
        self.wait_until_accepting()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
