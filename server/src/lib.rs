//! Ludus: a game room server.
//!
//! Rooms are actors ([`room::Room`]) that own their game state, tick at a fixed rate and
//! broadcast one batched MessagePack delta per tick, encoded once. Sessions are actors
//! ([`session::Session`]), one per WebSocket, handed at the upgrade ([`upgrade`]) to the thread
//! of their room, so a room and its players share one thread. The lobby ([`lobby::Lobby`]) creates rooms on a
//! pool of room threads and matchmakes through a JSON HTTP API ([`http`]). Games plug in
//! through the [`game::Game`] trait.
//!
//! Embedders (and the test harness) call [`run`] with a bound listener, a validated config, the
//! game registry and a shutdown future; the `ludus-server` binary does just that.

pub mod cluster;
pub mod config;
pub mod directory;
pub mod entities;
mod error;
pub mod flow;
pub mod game;
pub mod gateway;
pub mod http;
pub mod lobby;
pub mod metrics;
pub mod outbox;
pub mod rate_limit;
pub mod room;
pub mod session;
pub mod simulation;
pub mod token;
pub mod upgrade;

pub use error::ServerError;

use crate::cluster::{Cluster, ClusterSettings};
use crate::config::ServerConfig;
use crate::game::GameRegistry;
use crate::gateway::Gateway;
use crate::http::ApiState;
use crate::lobby::{Lobby, LobbySettings};
use crate::metrics::Metrics;
use crate::session::SessionLimits;
use crate::token::SeatTokens;
use actix::Arbiter;
use actix_http::{HttpService, KeepAlive};
use actix_service::{fn_factory, fn_service, map_config, IntoServiceFactory, ServiceFactoryExt};
use actix_web::dev::{AppConfig, ServerHandle};
use actix_web::{web, App};
use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long an idle keep-alive HTTP connection stays open (actix-web's default).
const HTTP_KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Time a client has to send a request's head (actix-web's default).
const HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a client has to acknowledge a connection shutdown (actix-web's default).
const HTTP_DISCONNECT_TIMEOUT: Duration = Duration::from_secs(1);

fn threads_or_cores(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    std::thread::available_parallelism().map_or(1, usize::from)
}

fn apply_room_type_overrides(config: &ServerConfig, registry: &mut GameRegistry) {
    for (name, section) in &config.room_types {
        if let Some(room_type) = registry.get_mut(name) {
            if let Some(tick_hz) = section.tick_hz {
                room_type.tick_hz = tick_hz;
            }
            if let Some(max_players) = section.max_players {
                room_type.max_players = max_players;
            }
        }
    }
}

/// Applies the node's region's room-type defaults from the region file.
fn apply_region_defaults(settings: &ClusterSettings, registry: &mut GameRegistry) {
    let Some(region) = settings.regions.region(&settings.node.region) else {
        return;
    };
    for (name, defaults) in &region.room_types {
        match registry.get_mut(name) {
            Some(room_type) => {
                room_type.max_players = defaults.max_players;
                room_type.tick_hz = u16::try_from(defaults.tick_hz).unwrap_or(u16::MAX);
            }
            None => tracing::warn!(room_type = %name, "region file names an unknown room type"),
        }
    }
}

fn seat_tokens(config: &ServerConfig) -> SeatTokens {
    match &config.server.secret {
        Some(secret) => SeatTokens::new(secret.as_bytes()),
        None => {
            tracing::warn!(
                "no server.secret configured: using a random one; seat tokens will not survive a restart"
            );
            let secret: Vec<u8> = std::iter::repeat_with(|| fastrand::u8(..))
                .take(32)
                .collect();
            SeatTokens::new(&secret)
        }
    }
}

/// Serves until `shutdown` resolves, then shuts down in order (see [`shutdown_in_order`]).
///
/// Must run inside an actix system (`actix_rt::System::new().block_on(run(..))`), because rooms
/// and sessions are actix actors.
pub async fn run(
    listener: TcpListener,
    config: ServerConfig,
    mut registry: GameRegistry,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let cluster_settings = ClusterSettings::from_config(&config).map_err(ServerError::Cluster)?;
    if let Some(settings) = &cluster_settings {
        apply_region_defaults(settings, &mut registry);
    }
    apply_room_type_overrides(&config, &mut registry);
    let metrics = Metrics::new();
    let room_arbiters: Vec<Arbiter> = (0..threads_or_cores(config.server.room_threads))
        .map(|_| Arbiter::new())
        .collect();
    let lobby = Arc::new(Lobby::new(
        registry,
        seat_tokens(&config),
        metrics,
        LobbySettings {
            seat_ttl: Duration::from_millis(config.rooms.seat_reservation_ms),
            empty_grace: Duration::from_millis(config.rooms.empty_grace_ms),
            max_rooms: config.rooms.max_rooms,
            max_queued_inputs_per_player: config.rooms.max_queued_inputs_per_player,
            flow_window_ms: config.session.flow_window_ms,
        },
        room_arbiters.iter().map(Arbiter::handle).collect(),
    ));
    let cluster = match cluster_settings {
        Some(settings) => Some(
            Cluster::start(settings, Arc::clone(&lobby))
                .await
                .map_err(ServerError::Nats)?,
        ),
        None => None,
    };
    let session = &config.session;
    let state = web::Data::new(ApiState {
        gateway: Gateway::new(Arc::clone(&lobby), cluster.clone()),
        limits: Arc::new(SessionLimits {
            max_message_bytes: session.max_message_bytes,
            hello_timeout: session.hello_timeout(),
            heartbeat_interval: session.heartbeat_interval(),
            idle_timeout: session.idle_timeout(),
            rate_per_sec: session.input_rate_per_sec,
            burst: session.input_burst,
            slow_client_timeout: session.slow_client_timeout(),
        }),
        public_url: config.server.public_url.clone(),
    });
    let address = listener.local_addr().map_err(ServerError::Bind)?;
    let shutdown_timeout = Duration::from_millis(config.server.shutdown_timeout_ms);
    let app_state = state.clone();
    let builder = actix_server::Server::build();
    // Tells each connection when a graceful stop begins, so idle keep-alive HTTP connections
    // close at once instead of holding the stop for the whole shutdown timeout.
    let stopping = builder.graceful_shutdown_signal();
    let server = builder
        .workers(threads_or_cores(config.server.workers))
        .disable_signals()
        .shutdown_timeout(HTTP_STOP.as_secs())
        .listen("ludus", listener, move || {
            let upgrade_state = app_state.clone();
            let app = App::new()
                .configure(http::configure(app_state.clone()))
                .into_factory()
                .map_err(|error| error.error_response());
            let stopping = stopping.clone();
            HttpService::build()
                .graceful_shutdown_signal(move || {
                    let stopping = stopping.clone();
                    async move { stopping.notified().await }
                })
                .keep_alive(KeepAlive::Timeout(HTTP_KEEP_ALIVE))
                .client_request_timeout(HTTP_REQUEST_TIMEOUT)
                .client_disconnect_timeout(HTTP_DISCONNECT_TIMEOUT)
                // One small frame per client per tick: Nagle would hold a frame back until the
                // previous one is acknowledged, and with the client's delayed ACKs that costs up
                // to 40 ms.
                .tcp_nodelay(true)
                .local_addr(address)
                .upgrade(fn_factory(move || {
                    let state = upgrade_state.clone();
                    async move {
                        Ok::<_, ()>(fn_service(move |request| {
                            upgrade::serve(state.clone(), request)
                        }))
                    }
                }))
                .finish(map_config(app, |_| AppConfig::default()))
                .tcp()
        })
        .map_err(ServerError::Bind)?
        .run();
    let handle = server.handle();
    let serving = actix_rt::spawn(server);
    tracing::info!(%address, "ludus listening");

    shutdown.await;
    shutdown_in_order(&lobby, cluster.as_deref(), &handle, shutdown_timeout).await;
    serving
        .await
        .map_err(|_| ServerError::Serve(std::io::Error::other("server task panicked")))?
        .map_err(ServerError::Serve)?;
    for arbiter in room_arbiters {
        arbiter.stop();
        let _ = arbiter.join();
    }
    tracing::info!("ludus stopped");
    Ok(())
}

/// What a graceful stop of the HTTP workers may take: actix-server counts it in whole seconds
/// and checks a stopping worker once a second, so a worker with a request in flight stops at
/// its first check, one second in, finished or not.
const HTTP_STOP: Duration = Duration::from_secs(1);

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
