//! The physical floor for the benchmark: what one write plus one read of a small message over a
//! loopback TCP socket costs on this machine, with no WebSocket, no protocol and no server.
//!
//! `scripts/bench` divides the server's CPU time per delivered delta by this cost to report how
//! far above the floor the server runs.
//!
//! With one connection the floor is a hot socket: its state stays in the cache, and on this
//! kind of host the reader often falls behind and takes several messages per wake-up, so the
//! reading is bimodal. `--connections N` spreads the messages round-robin over N connections,
//! as a server's writes are spread over its players: each write then finds its socket cold and
//! its reader usually waiting, which is what one write + one read costs a server with N
//! players. Both are reported; neither has a WebSocket, a protocol or a server in it. It measures its own CPU time from `/proc/self/stat`
//! (Linux only); elsewhere it reports wall time only.

use crate::error::ScenarioError;
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Most messages one loopback run sends.
pub const MAX_MESSAGES: u64 = 10_000_000;
/// Largest message size, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Most connections one run spreads its messages over (two descriptors each).
pub const MAX_CONNECTIONS: usize = 8_000;

/// What the loopback run measured; printed as one JSON line.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoopbackReport {
    /// Messages sent and received.
    pub messages: u64,
    /// Bytes per message.
    pub message_bytes: usize,
    /// Connections the messages were spread over, round-robin.
    pub connections: usize,
    /// Wall time of the run, in seconds.
    pub wall_s: f64,
    /// Messages per second of wall time.
    pub messages_per_s: f64,
    /// Process CPU time (user + system, both threads) per message in microseconds, when
    /// `/proc/self/stat` is readable.
    pub cpu_us_per_message: Option<f64>,
}

/// Sends `messages` messages of `message_bytes` from one thread to another over loopback TCP,
/// round-robin over `connections` connections, one `write` and one `read_exact` per message.
pub fn run(
    messages: u64,
    message_bytes: usize,
    connections: usize,
) -> Result<LoopbackReport, ScenarioError> {
    let io_error = |source| ScenarioError::Loopback { source };
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io_error)?;
    let address = listener.local_addr().map_err(io_error)?;
    // Each connection is accepted right after it is made, so writer k pairs with reader k.
    let connections = connections.clamp(1, MAX_CONNECTIONS);
    let mut writers = Vec::with_capacity(connections);
    let mut readers = Vec::with_capacity(connections);
    for _ in 0..connections {
        let writer = TcpStream::connect(address).map_err(io_error)?;
        writer.set_nodelay(true).map_err(io_error)?;
        let (reader, _) = listener.accept().map_err(io_error)?;
        reader
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(io_error)?;
        writers.push(writer);
        readers.push(reader);
    }
    let reader = std::thread::spawn(move || -> std::io::Result<()> {
        let mut buffer = vec![0_u8; message_bytes];
        for mut stream in readers.iter().cycle().take(to_usize(messages)) {
            stream.read_exact(&mut buffer)?;
        }
        Ok(())
    });
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let message = vec![0x5a_u8; message_bytes];
    for mut writer in writers.iter().cycle().take(to_usize(messages)) {
        writer.write_all(&message).map_err(io_error)?;
    }
    let read_result = reader
        .join()
        .map_err(|_| io_error(std::io::Error::other("loopback reader thread panicked")))?;
    read_result.map_err(io_error)?;
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_us_per_message = cpu_before
        .zip(process_cpu_seconds())
        .map(|(before, after)| (after - before) * 1e6 / messages.max(1) as f64);
    Ok(LoopbackReport {
        messages,
        message_bytes,
        connections,
        wall_s,
        messages_per_s: messages as f64 / wall_s.max(f64::MIN_POSITIVE),
        cpu_us_per_message,
    })
}

/// `messages` as a count of loop turns (it is at most [`MAX_MESSAGES`]).
fn to_usize(messages: u64) -> usize {
    usize::try_from(messages).unwrap_or(usize::MAX)
}

/// User + system CPU seconds of this process, from `/proc/self/stat` (Linux clock ticks are
/// 100 per second on every mainstream architecture).
fn process_cpu_seconds() -> Option<f64> {
    const CLOCK_TICKS_PER_S: f64 = 100.0;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at field 3.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / CLOCK_TICKS_PER_S)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_moves_every_message() {
        let report = run(1000, 64, 1).expect("loopback works");
        assert_eq!(report.messages, 1000);
        assert!(report.messages_per_s > 0.0);
    }

    #[test]
    fn messages_spread_over_many_connections_all_arrive() {
        // 1,001 messages over 10 connections: the last round is partial, and still complete.
        let report = run(1001, 64, 10).expect("loopback works");
        assert_eq!((report.messages, report.connections), (1001, 10));
    }
}
