//! Stopping a node in order, within one deadline: drain first when the node is configured to
//! (its rooms move to other nodes), then stop accepting, close rooms and sessions, leave the
//! cluster and stop the HTTP workers. Kept apart from [`crate::run`], which only builds the
//! server and calls these.

use crate::cluster::Cluster;
use crate::lobby::Lobby;
use actix_web::dev::ServerHandle;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a graceful stop of the HTTP workers may take: actix-server counts it in whole seconds
/// and checks a stopping worker once a second, so a worker with a request in flight stops at
/// its first check, one second in, finished or not.
pub(crate) const HTTP_STOP: Duration = Duration::from_secs(1);

/// At most this much of the shutdown deadline goes to leaving the cluster (releasing leases,
/// saying goodbye), and never more than a quarter of it; peers time out a node that could not.
const CLUSTER_LEAVE_SHARE: Duration = Duration::from_secs(1);

/// How one shutdown deadline is shared out, in the order the steps run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ShutdownBudget {
    /// Waiting for sessions to end.
    sessions: Duration,
    /// Leaving the cluster.
    cluster_leave: Duration,
    /// Whether the HTTP workers get [`HTTP_STOP`] to finish in-flight requests; when the deadline
    /// cannot spare it, they are stopped at once.
    graceful_http: bool,
}

/// Shares `timeout` out so the whole shutdown fits in it, whatever clients do. Sessions get what
/// the other steps leave: a session ends within the close grace of its close frame (2 s), and
/// with the default timeout (5 s) the sessions' share exceeds it.
fn shutdown_budget(timeout: Duration, clustered: bool) -> ShutdownBudget {
    let graceful_http = timeout >= 2 * HTTP_STOP;
    let rest = if graceful_http {
        timeout - HTTP_STOP
    } else {
        timeout
    };
    let cluster_leave = if clustered {
        CLUSTER_LEAVE_SHARE.min(rest / 4)
    } else {
        Duration::ZERO
    };
    ShutdownBudget {
        sessions: rest - cluster_leave,
        cluster_leave,
        graceful_http,
    }
}

/// After a drain, how long the node still answers members resuming through it (with a
/// `redirect` to their room's new owner) before it stops accepting connections.
const DRAIN_LINGER: Duration = Duration::from_secs(1);

/// Hands every room to its next owner before the shutdown proper, within `timeout`; rooms
/// left then are closed by the shutdown (4011) and come back elsewhere from their checkpoints.
pub(crate) async fn drain_before_shutdown(cluster: &Arc<Cluster>, timeout: Duration) {
    let started = Instant::now();
    let left = cluster.drain(timeout).await;
    if left > 0 {
        tracing::warn!(rooms = left, "drain timed out: the rest close with 4011");
        return;
    }
    let linger = DRAIN_LINGER.min(timeout.saturating_sub(started.elapsed()));
    tracing::info!(
        linger_ms = linger.as_millis() as u64,
        "drained; redirecting stragglers"
    );
    actix_rt::time::sleep(linger).await;
}

/// The shutdown order, in one place, all within one deadline of `timeout`
/// (`server.shutdown_timeout_ms`, shared out by [`shutdown_budget`]):
/// 1. stop accepting connections;
/// 2. refuse new rooms, seats and hellos, close every room with `server_shutdown` (4011), and
///    every session with it too, before `hello` or while joining included;
/// 3. wait for every session to end, at most the sessions' share;
/// 4. leave the cluster: release room leases and tell peers this node is gone, at most its share;
/// 5. stop the HTTP workers: gracefully within [`HTTP_STOP`] when the deadline leaves that
///    much, else at once.
pub async fn shutdown_in_order(
    lobby: &Lobby,
    cluster: Option<&Cluster>,
    handle: &ServerHandle,
    timeout: Duration,
) {
    tracing::info!("shutting down");
    let budget = shutdown_budget(timeout, cluster.is_some());
    let sessions_deadline = Instant::now() + budget.sessions;
    handle.pause().await;
    lobby.begin_shutdown();
    while lobby.metrics().sessions.get() > 0 {
        let left = sessions_deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        actix_rt::time::sleep(left.min(Duration::from_millis(20))).await;
    }
    let remaining = lobby.metrics().sessions.get();
    if remaining > 0 {
        tracing::warn!(remaining, "sessions still open at the shutdown deadline");
    }
    if let Some(cluster) = cluster {
        if actix_rt::time::timeout(budget.cluster_leave, cluster.leave())
            .await
            .is_err()
        {
            tracing::warn!("leaving the cluster did not finish within its share of the shutdown");
        }
    }
    handle.stop(budget.graceful_http).await;
}

#[cfg(test)]
mod tests {
    use super::{shutdown_budget, ShutdownBudget, HTTP_STOP};
    use std::time::Duration;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    #[test]
    fn the_default_timeout_leaves_sessions_their_close_grace() {
        let alone = shutdown_budget(ms(5_000), false);
        assert_eq!(
            alone,
            ShutdownBudget {
                sessions: ms(4_000),
                cluster_leave: Duration::ZERO,
                graceful_http: true,
            }
        );
        let clustered = shutdown_budget(ms(5_000), true);
        assert_eq!(clustered.sessions, ms(3_000));
        assert_eq!(clustered.cluster_leave, ms(1_000));
    }

    #[test]
    fn every_budget_fits_the_timeout() {
        for millis in [100, 999, 1_000, 1_999, 2_000, 3_000, 5_000, 300_000] {
            for clustered in [false, true] {
                let budget = shutdown_budget(ms(millis), clustered);
                let http = if budget.graceful_http {
                    HTTP_STOP
                } else {
                    Duration::ZERO
                };
                assert_eq!(
                    budget.sessions + budget.cluster_leave + http,
                    ms(millis),
                    "{millis} ms, clustered {clustered}"
                );
            }
        }
    }

    #[test]
    fn a_short_timeout_stops_http_workers_at_once() {
        assert!(!shutdown_budget(ms(1_500), false).graceful_http);
        assert_eq!(shutdown_budget(ms(100), true).cluster_leave, ms(25));
    }
}
