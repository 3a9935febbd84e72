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

pub mod checkpoint;
pub mod cluster;
pub mod config;
pub mod conn_limit;
pub mod delta_history;
pub mod directory;
pub mod encoding;
pub mod entities;
mod error;
pub mod event_queue;
pub mod flow;
pub mod game;
pub mod gateway;
pub mod hello;
pub mod http;
pub mod lobby;
pub mod member;
pub mod metrics;
pub mod origin;
pub mod outbox;
pub mod paging;
pub mod rate_limit;
pub mod resume;
pub mod room;
pub mod session;
mod shutdown;
pub mod simulation;
pub mod stats;
pub mod token;
pub mod upgrade;

pub use shutdown::shutdown_in_order;
use shutdown::{drain_before_shutdown, HTTP_STOP};

pub use error::ServerError;

use crate::checkpoint::CheckpointSink;
use crate::cluster::{Cluster, ClusterSettings};
use crate::config::{PerRoomType, ServerConfig};
use crate::conn_limit::ConnectionLimiter;
use crate::game::GameRegistry;
use crate::gateway::Gateway;
use crate::http::bodies::{BodyLimits, MAX_BODY_BYTES};
use crate::http::identity::PlayerAuth;
use crate::http::operator::{generate_token, OperatorTokens};
use crate::http::quota::LobbyQuotas;
use crate::http::{ApiState, Routes};
use crate::lobby::{Lobby, LobbySettings};
use crate::metrics::Metrics;
use crate::origin::Origins;
use crate::session::SessionLimits;
use crate::token::{random_secret, SeatTokens};
use actix::Arbiter;
use actix_http::{HttpService, KeepAlive};
use actix_service::{
    fn_factory, fn_service, map_config, IntoServiceFactory, Service, ServiceFactory,
    ServiceFactoryExt,
};
use actix_web::dev::AppConfig;
use actix_web::{web, App};
use std::future::Future;
use std::net::TcpListener;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Checkpoints waiting for the cluster's writer at most; a room whose checkpoint finds the
/// queue full skips it and writes at its next interval.
const CHECKPOINT_QUEUE: usize = 4_096;

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

/// Applies the node's region's room-type defaults from the region file; a default above a
/// game's own maximum is lowered to it, with a warning.
fn apply_region_defaults(settings: &ClusterSettings, registry: &mut GameRegistry) {
    let Some(region) = settings.regions.region(&settings.node.region) else {
        return;
    };
    for (name, defaults) in &region.room_types {
        match registry.get_mut(name) {
            Some(room_type) => {
                if defaults.max_players > room_type.max_players {
                    tracing::warn!(
                        room_type = %name,
                        asked = defaults.max_players,
                        maximum = room_type.max_players,
                        "region file asks for more seats than the game allows; using the game's maximum"
                    );
                }
                room_type.max_players = defaults.max_players.min(room_type.max_players);
                room_type.tick_hz = u16::try_from(defaults.tick_hz).unwrap_or(u16::MAX);
            }
            None => tracing::warn!(room_type = %name, "region file names an unknown room type"),
        }
    }
}

fn seat_tokens(config: &ServerConfig) -> Result<SeatTokens, ServerError> {
    let previous: Vec<&[u8]> = config
        .server
        .previous_secrets
        .iter()
        .map(String::as_bytes)
        .collect();
    match &config.server.secret {
        Some(secret) => Ok(SeatTokens::rotating(secret.as_bytes(), &previous)),
        None => {
            tracing::warn!(
                "no server.secret configured: using a random one; seat tokens will not survive a restart"
            );
            let secret = random_secret().map_err(ServerError::Random)?;
            Ok(SeatTokens::rotating(&secret, &previous))
        }
    }
}

/// The configured operator tokens, or one generated for this run and printed to stderr (for
/// the person who started the server; it is not logged).
fn operator_tokens(
    config: &ServerConfig,
    address: std::net::SocketAddr,
) -> Result<OperatorTokens, ServerError> {
    if !config.operator.tokens.is_empty() {
        return Ok(OperatorTokens::new(
            config.operator.tokens.iter().map(String::as_str),
        ));
    }
    let token = generate_token().map_err(ServerError::Random)?;
    tracing::warn!("no operator.tokens configured: generated one for this run (printed on stderr)");
    eprintln!(
        "ludus: operator token for this run: {token}\n\
         ludus:   e.g. curl -X DELETE -H 'Authorization: Bearer {token}' http://{address}/v1/rooms/ROOM_ID\n\
         ludus:   set operator.tokens (or LUDUS__OPERATOR__TOKENS='[\"...\"]') to choose your own"
    );
    Ok(OperatorTokens::new([token.as_str()]))
}

/// The sockets a node serves on: the API (players, WebSockets) and, optionally, a separate one
/// for operator routes (`operator.listen`).
#[derive(Debug)]
pub struct Listeners {
    /// Players' HTTP API and WebSockets (and operator routes when `operator` is `None`).
    pub api: TcpListener,
    /// Operator routes, `/metrics` and `/healthz`.
    pub operator: Option<TcpListener>,
}

impl From<TcpListener> for Listeners {
    fn from(api: TcpListener) -> Self {
        Self {
            api,
            operator: None,
        }
    }
}

/// Serves until `shutdown` resolves, then shuts down in order (see [`shutdown_in_order`]).
///
/// Must run inside an actix system (`actix_rt::System::new().block_on(run(..))`), because rooms
/// and sessions are actix actors.
pub async fn run(
    listeners: impl Into<Listeners>,
    config: ServerConfig,
    mut registry: GameRegistry,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    let listeners = listeners.into();
    let cluster_settings = ClusterSettings::from_config(&config).map_err(ServerError::Cluster)?;
    if let Some(settings) = &cluster_settings {
        apply_region_defaults(settings, &mut registry);
    }
    apply_room_type_overrides(&config, &mut registry);
    let address = listeners.api.local_addr().map_err(ServerError::Bind)?;
    let players = PlayerAuth::from_config(&config.lobby).map_err(ServerError::PlayerAuth)?;
    let operator = operator_tokens(&config, address)?;
    let metrics = Metrics::new();
    // Rooms of a clustered node checkpoint through the cluster's writer.
    let (checkpoint_sink, checkpoint_writes) = match &cluster_settings {
        Some(_) => {
            let (sink, writes) =
                CheckpointSink::channel(CHECKPOINT_QUEUE, config.rooms.max_checkpoint_bytes);
            (Some(sink), Some(writes))
        }
        None => (None, None),
    };
    let room_arbiters: Vec<Arbiter> = (0..threads_or_cores(config.server.room_threads))
        .map(|_| Arbiter::new())
        .collect();
    let seat_ttl = Duration::from_millis(config.rooms.seat_reservation_ms);
    let session = &config.session;
    let session_limits = Arc::new(SessionLimits {
        max_message_bytes: session.max_message_bytes,
        hello_timeout: session.hello_timeout(),
        heartbeat_interval: session.heartbeat_interval(),
        idle_timeout: session.idle_timeout(),
        rate_per_sec: session.input_rate_per_sec,
        burst: session.input_burst,
        slow_client_timeout: session.slow_client_timeout(),
    });
    let lobby = Arc::new(Lobby::new(
        registry,
        seat_tokens(&config)?,
        metrics,
        LobbySettings {
            seat_ttl,
            empty_grace: Duration::from_millis(config.rooms.empty_grace_ms),
            max_rooms: config.rooms.max_rooms,
            max_queued_inputs_per_player: config.rooms.max_queued_inputs_per_player,
            flow_window_ms: config.session.flow_window_ms,
            event_bytes_per_tick: config.rooms.event_bytes_per_tick,
            max_queued_event_bytes: config.rooms.max_queued_event_bytes,
            session_limits: Arc::clone(&session_limits),
            resume_window: PerRoomType::from_config(
                config.rooms.resume_window_ms,
                &config.room_types,
                |section| section.resume_window_ms,
            ),
            resume_history_bytes: config.rooms.resume_history_bytes,
            checkpoints: checkpoint_sink.map(|sink| {
                let intervals = PerRoomType::from_config(
                    config.rooms.checkpoint_interval_ms,
                    &config.room_types,
                    |section| section.checkpoint_interval_ms,
                );
                (sink, intervals)
            }),
        },
        room_arbiters.iter().map(Arbiter::handle).collect(),
    ));
    let cluster = match (cluster_settings, checkpoint_writes) {
        (Some(settings), Some(checkpoint_writes)) => Some(
            Cluster::start(settings, Arc::clone(&lobby), checkpoint_writes)
                .await
                .map_err(ServerError::Nats)?,
        ),
        _ => None,
    };
    let http = &config.http;
    let state = web::Data::new(ApiState {
        gateway: Gateway::new(Arc::clone(&lobby), cluster.clone()),
        limits: Arc::clone(&session_limits),
        public_url: config.server.public_url.clone(),
        operator,
        players,
        quotas: LobbyQuotas::new(&config.lobby, seat_ttl),
        body: BodyLimits {
            timeout: http.body_timeout(),
            max_bytes: MAX_BODY_BYTES,
        },
        max_metadata_bytes: config.lobby.max_metadata_bytes,
        max_event_bytes: config.rooms.max_event_bytes,
        origins: Origins::new(&http.allowed_origins),
        websockets: ConnectionLimiter::new(http.max_websockets, http.max_websockets_per_ip),
        dashboard_streams: std::sync::atomic::AtomicUsize::new(0),
    });
    let shutdown_timeout = Duration::from_millis(config.server.shutdown_timeout_ms);
    let http_listening = HttpListening {
        state: state.clone(),
        connections: ConnectionLimiter::new(http.max_connections, http.max_connections_per_ip),
    };
    let builder = actix_server::Server::build()
        .workers(threads_or_cores(config.server.workers))
        .disable_signals()
        .shutdown_timeout(HTTP_STOP.as_secs());
    let (builder, api_routes) = match listeners.operator {
        Some(operator_listener) => {
            let operator_address = operator_listener.local_addr().map_err(ServerError::Bind)?;
            tracing::info!(address = %operator_address, "operator routes listening");
            let builder = http_listening.listen(
                builder,
                "ludus-operator",
                operator_listener,
                Routes::Operators,
            )?;
            (builder, Routes::Players)
        }
        None => (builder, Routes::All),
    };
    let server = http_listening
        .listen(builder, "ludus", listeners.api, api_routes)?
        .run();
    let handle = server.handle();
    let serving = actix_rt::spawn(server);
    tracing::info!(%address, "ludus listening");

    shutdown.await;
    if let Some(cluster) = cluster
        .as_ref()
        .filter(|_| config.cluster.drain_on_shutdown)
    {
        drain_before_shutdown(
            cluster,
            Duration::from_millis(config.cluster.drain_timeout_ms),
        )
        .await;
    }
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

/// What every HTTP listener shares: the API state and the cap on open HTTP connections.
struct HttpListening {
    state: web::Data<ApiState>,
    connections: Arc<ConnectionLimiter>,
}

/// The answer to a connection over the caps, written before it is closed: the API's JSON
/// error, 503 `too_many_connections`.
fn too_many_connections() -> Vec<u8> {
    let body = r#"{"error":{"code":"too_many_connections","message":"too many open connections; retry later"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// How long a refused connection may keep sending before it is closed: closing with unread
/// input makes the kernel send a reset, which can destroy the answer before the client reads it.
const LINGER: Duration = Duration::from_millis(500);

/// Answers a connection over the caps with 503 `too_many_connections` and closes it, reading
/// (and dropping) what the client sends for at most [`LINGER`] and 64 KiB so the answer is not
/// lost to a reset.
async fn refuse_connection(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let lingering = async {
        stream.write_all(&too_many_connections()).await?;
        stream.shutdown().await?;
        let mut sink = [0_u8; 4096];
        let mut left = 64 * 1024_usize;
        while left > 0 {
            let read = stream.read(&mut sink).await?;
            if read == 0 {
                break;
            }
            left = left.saturating_sub(read);
        }
        Ok::<_, std::io::Error>(())
    };
    let _ = tokio::time::timeout(LINGER, lingering).await;
}

impl HttpListening {
    /// Adds `listener` to `builder`, serving `routes`: each connection is admitted against the
    /// HTTP connection caps, then served by actix-http (WebSocket upgrades go to [`upgrade`]).
    fn listen(
        &self,
        builder: actix_server::ServerBuilder,
        name: &str,
        listener: TcpListener,
        routes: Routes,
    ) -> Result<actix_server::ServerBuilder, ServerError> {
        let address = listener.local_addr().map_err(ServerError::Bind)?;
        let state = self.state.clone();
        let connections = Arc::clone(&self.connections);
        // Tells each connection when a graceful stop begins, so idle keep-alive HTTP
        // connections close at once instead of holding the stop for the whole shutdown timeout.
        let stopping = builder.graceful_shutdown_signal();
        builder
            .listen(name, listener, move || {
                let upgrade_state = state.clone();
                let origins = state.origins.clone();
                let cors = actix_cors::Cors::default()
                    .allowed_origin_fn(move |origin, head| {
                        let host = head
                            .headers
                            .get(actix_web::http::header::HOST)
                            .and_then(|host| host.to_str().ok());
                        origins.allows(origin.to_str().ok(), host)
                    })
                    .allowed_methods(["GET", "POST", "DELETE"])
                    .allowed_headers([
                        actix_web::http::header::AUTHORIZATION,
                        actix_web::http::header::CONTENT_TYPE,
                    ])
                    .allowed_header(http::REGION_HEADER)
                    .expose_headers([actix_web::http::header::RETRY_AFTER])
                    .max_age(600);
                let app = App::new()
                    .wrap(cors)
                    .configure(http::configure(state.clone(), routes))
                    .into_factory()
                    .map_err(|error| error.error_response());
                let stopping = stopping.clone();
                let service = HttpService::build()
                    .graceful_shutdown_signal(move || {
                        let stopping = stopping.clone();
                        async move { stopping.notified().await }
                    })
                    .keep_alive(KeepAlive::Timeout(HTTP_KEEP_ALIVE))
                    .client_request_timeout(HTTP_REQUEST_TIMEOUT)
                    .client_disconnect_timeout(HTTP_DISCONNECT_TIMEOUT)
                    // One small frame per client per tick: Nagle would hold a frame back until
                    // the previous one is acknowledged, and with the client's delayed ACKs that
                    // costs up to 40 ms.
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
                    .tcp();
                let connections = Arc::clone(&connections);
                let metrics = state.gateway.lobby().metrics().clone();
                fn_factory(move || {
                    let connections = Arc::clone(&connections);
                    let metrics = metrics.clone();
                    let service = service.new_service(());
                    async move {
                        let service = Rc::new(service.await?);
                        Ok::<_, ()>(fn_service(move |stream: tokio::net::TcpStream| {
                            let admitted = stream
                                .peer_addr()
                                .map_err(|_| ())
                                .and_then(|peer| connections.admit(peer.ip()).map_err(|_| ()));
                            let service = Rc::clone(&service);
                            let metrics = metrics.clone();
                            async move {
                                let Ok(_guard) = admitted else {
                                    metrics
                                        .http_refused
                                        .with_label_values(&["too_many_connections"])
                                        .inc();
                                    refuse_connection(stream).await;
                                    return Ok(());
                                };
                                service.call(stream).await
                            }
                        }))
                    }
                })
            })
            .map_err(ServerError::Bind)
    }
}
