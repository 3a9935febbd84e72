//! Caps on open connections, per client address and in total.
//!
//! Why: every connection holds a file descriptor, and the process has a fixed number of them.
//! Without a cap, ~1,000 connections trickling request bodies from one client made `accept`
//! fail with "Too many open files", which stalled every other client, `/healthz` included. A
//! [`ConnectionLimiter`] admits a connection only while its address and the node are under
//! their caps; the [`ConnectionGuard`] it returns gives the slot back when dropped, wherever the
//! connection ends (one limiter counts HTTP connections, another WebSocket sessions).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionRefused {
    /// The node holds its maximum of connections.
    #[error("the server holds its maximum of {0} connections")]
    Total(usize),
    /// This address holds its maximum of connections.
    #[error("this address holds its maximum of {0} connections")]
    PerAddress(usize),
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_ip: HashMap<IpAddr, usize>,
}

/// Counts open connections against two caps.
#[derive(Debug)]
pub struct ConnectionLimiter {
    counts: Mutex<Counts>,
    max_total: usize,
    max_per_ip: usize,
}

/// One admitted connection; dropping it frees its slot.
#[derive(Debug)]
pub struct ConnectionGuard {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    /// A limiter admitting `max_total` connections, `max_per_ip` from one address.
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            counts: Mutex::new(Counts::default()),
            max_total,
            max_per_ip,
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // The counts stay consistent under a panic elsewhere: every update is one statement.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a connection from `ip`, or says which cap it hit.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnectionGuard, ConnectionRefused> {
        let mut counts = self.counts();
        if counts.total >= self.max_total {
            return Err(ConnectionRefused::Total(self.max_total));
        }
        let from_ip = counts.by_ip.entry(ip).or_insert(0);
        if *from_ip >= self.max_per_ip {
            return Err(ConnectionRefused::PerAddress(self.max_per_ip));
        }
        *from_ip += 1;
        counts.total += 1;
        Ok(ConnectionGuard {
            limiter: Arc::clone(self),
            ip,
        })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.counts().total
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut counts = self.limiter.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(from_ip) = counts.by_ip.get_mut(&self.ip) {
            *from_ip -= 1;
            if *from_ip == 0 {
                counts.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn an_address_gets_its_share_and_no_more() {
        let limiter = ConnectionLimiter::new(10, 2);
        let first = limiter.admit(ip(1)).expect("first");
        let _second = limiter.admit(ip(1)).expect("second");
        assert_eq!(
            limiter.admit(ip(1)).map(|_| ()),
            Err(ConnectionRefused::PerAddress(2))
        );
        assert!(
            limiter.admit(ip(2)).is_ok(),
            "other addresses are unaffected"
        );
        drop(first);
        assert!(
            limiter.admit(ip(1)).is_ok(),
            "a closed connection frees its slot"
        );
    }

    #[test]
    fn the_total_caps_every_address_together() {
        let limiter = ConnectionLimiter::new(2, 2);
        let _a = limiter.admit(ip(1)).expect("a");
        let b = limiter.admit(ip(2)).expect("b");
        assert_eq!(
            limiter.admit(ip(3)).map(|_| ()),
            Err(ConnectionRefused::Total(2))
        );
        drop(b);
        assert_eq!(limiter.open(), 1);
        assert!(limiter.admit(ip(3)).is_ok());
    }
}
