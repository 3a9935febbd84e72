//! Harness for Ludus integration tests: real servers on `127.0.0.1:0` and real WebSocket
//! clients speaking the public protocol.
//!
//! [`TestServer`] runs the server exactly as the binary does ([`ludus_server::run`]) on its own
//! thread and actix system, bound to a listener the test created (never a probed port). It
//! shuts down in order when asked, or when dropped.
//! [`Player`] is a minimal but honest client: it matchmakes over HTTP, says `hello`, mirrors the
//! room with [`RoomState`], and acknowledges every tick as the protocol requires.
//! Every wait is wrapped in a timeout, so a broken server fails a test instead of hanging it.

use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use ludus_protocol::{
    codec, Ack, ClientMessage, CloseCode, Delta, ErrorCode, ErrorMessage, Hello, Input, PlayerId,
    RoomState, ServerMessage, Value, Welcome, PROTOCOL_VERSION,
};
use ludus_server::config::ServerConfig;
use ludus_server::game::GameRegistry;
use serde::Deserialize;
use std::net::{SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The seat-token secret test servers use, so tests can mint their own tokens.
pub const TEST_SECRET: &str = "ludus-test-secret-0123456789";

/// How long any single wait in a test may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// The operator token test servers accept.
pub const TEST_OPERATOR_TOKEN: &str = "ludus-test-operator-token-0123456789";

/// A config suited to tests: a known secret and operator token, two room threads, short
/// timeouts, and lobby limits far above what a test asks (tests of the limits set their own).
pub fn test_config() -> ServerConfig {
    let mut config = ServerConfig::default();
    config.server.secret = Some(TEST_SECRET.to_owned());
    config.operator.tokens = vec![TEST_OPERATOR_TOKEN.to_owned()];
    config.lobby.seats_per_minute_per_ip = 1_000_000;
    config.lobby.rooms_per_minute_per_ip = 1_000_000;
    config.http.max_connections_per_ip = 1_024;
    config.server.workers = 2;
    config.server.room_threads = 2;
    config.server.shutdown_timeout_ms = 3_000;
    config.rooms.empty_grace_ms = 60_000;
    config
}

pub mod child;
pub mod cluster;
pub mod compact;
pub mod nats;
pub mod process_cluster;
pub mod resume;

/// A running server.
pub struct TestServer {
    addr: SocketAddr,
    shutdown_tx: Option<oneshot::Sender<()>>,
    kill_tx: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl TestServer {
    /// Starts a server with [`test_config`] and the built-in games.
    pub fn start() -> Self {
        Self::start_with(test_config(), GameRegistry::builtin())
    }

    /// Starts a server with `config` and `registry`.
    pub fn start_with(config: ServerConfig, registry: GameRegistry) -> Self {
        Self::start_on(bind_loopback(), config, registry)
    }

    /// Starts a server on an already bound listener (cluster tests bind every node first, so
    /// the region file can name their ports).
    pub fn start_on(
        listeners: impl Into<ludus_server::Listeners>,
        config: ServerConfig,
        registry: GameRegistry,
    ) -> Self {
        init_tracing();
        let listener: ludus_server::Listeners = listeners.into();
        let addr = listener
            .api
            .local_addr()
            .expect("bound listener has an address");
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_rt::System::new().block_on(async move {
                let serving = ludus_server::run(listener, config, registry, async {
                    let _ = shutdown_rx.await;
                });
                tokio::select! {
                    biased;
                    Ok(()) = kill_rx => {
                        // A crash, not a shutdown: drop everything without saying goodbye.
                        actix_rt::System::current().stop();
                        Ok(())
                    }
                    served = serving => served.map_err(|error| error.to_string()),
                }
            })
        });
        Self {
            addr,
            shutdown_tx: Some(shutdown_tx),
            kill_tx: Some(kill_tx),
            thread: Some(thread),
        }
    }

    /// Stops the server abruptly, as a crash would: no close frames, no leaving the cluster.
    pub fn kill(mut self) {
        if let Some(kill_tx) = self.kill_tx.take() {
            let _ = kill_tx.send(());
        }
        // `shutdown_tx` stays alive until the thread is gone, so only the kill can fire.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// The HTTP base URL, e.g. `http://127.0.0.1:41234`.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Asks the server to shut down and waits for it to exit.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(shutdown_tx) = self.shutdown_tx.take() {
            let _ = shutdown_tx.send(());
        }
        let thread = self.thread.take().context("server already stopped")?;
        let joined = tokio::time::timeout(WAIT, tokio::task::spawn_blocking(move || thread.join()))
            .await
            .context("server did not stop in time")??;
        joined
            .map_err(|_| anyhow!("server thread panicked"))?
            .map_err(|error| anyhow!(error))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown_tx) = self.shutdown_tx.take() {
            let _ = shutdown_tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Logs to the test's output when `RUST_LOG` is set (e.g. `RUST_LOG=ludus_server=debug`).
fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// Binds `127.0.0.1:0`.
pub fn bind_loopback() -> TcpListener {
    // expect: binding port 0 on loopback only fails on a broken test machine.
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0")
}

/// A seat granted by the lobby (`POST /v1/matchmake` or `/v1/rooms/{id}/seats`).
#[derive(Debug, Clone, Deserialize)]
pub struct Seat {
    /// Room id.
    pub room_id: String,
    /// Room type.
    pub room_type: String,
    /// Player id.
    pub player_id: u64,
    /// WebSocket URL.
    pub ws_url: String,
    /// Seat token.
    pub token: String,
    /// Expiry, Unix ms.
    pub expires_at_ms: u64,
    /// The node hosting the room.
    pub node: String,
    /// That node's region.
    pub region: String,
    /// Why the room is there.
    pub placement: String,
}

/// A JSON HTTP answer: status and body.
#[derive(Debug)]
pub struct HttpAnswer {
    /// HTTP status code.
    pub status: u16,
    /// Parsed JSON body (`Null` when not JSON).
    pub body: serde_json::Value,
}

impl HttpAnswer {
    /// The `error.code` of an error body.
    pub fn error_code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }
}

/// Sends a request and reads its JSON answer.
async fn json_answer(request: reqwest::RequestBuilder) -> anyhow::Result<HttpAnswer> {
    let response = request.timeout(WAIT).send().await?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    Ok(HttpAnswer { status, body })
}

/// POSTs JSON to `url`.
pub async fn post(url: &str, body: serde_json::Value) -> anyhow::Result<HttpAnswer> {
    json_answer(reqwest::Client::new().post(url).json(&body)).await
}

/// DELETEs `url`.
pub async fn delete(url: &str) -> anyhow::Result<HttpAnswer> {
    json_answer(reqwest::Client::new().delete(url)).await
}

/// POSTs JSON to an operator route with [`TEST_OPERATOR_TOKEN`].
pub async fn operator_post(url: &str, body: serde_json::Value) -> anyhow::Result<HttpAnswer> {
    json_answer(
        reqwest::Client::new()
            .post(url)
            .bearer_auth(TEST_OPERATOR_TOKEN)
            .json(&body),
    )
    .await
}

/// DELETEs an operator route with [`TEST_OPERATOR_TOKEN`].
pub async fn operator_delete(url: &str) -> anyhow::Result<HttpAnswer> {
    json_answer(
        reqwest::Client::new()
            .delete(url)
            .bearer_auth(TEST_OPERATOR_TOKEN),
    )
    .await
}

/// Sends `method` to `url` with an optional bearer token and JSON body, and reads the answer.
pub async fn send_with(
    method: reqwest::Method,
    url: &str,
    bearer: Option<&str>,
    body: Option<serde_json::Value>,
) -> anyhow::Result<HttpAnswer> {
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    json_answer(request).await
}

/// GETs `url` and returns the body as text.
pub async fn get_text(url: &str) -> anyhow::Result<(u16, String)> {
    let response = reqwest::Client::new().get(url).timeout(WAIT).send().await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// GETs JSON from `url`.
pub async fn get_json(url: &str) -> anyhow::Result<serde_json::Value> {
    let (_, text) = get_text(url).await?;
    Ok(serde_json::from_str(&text)?)
}

/// Matchmakes into a room of `room_type`.
pub async fn matchmake(server: &TestServer, room_type: &str) -> anyhow::Result<Seat> {
    let answer = post(
        &format!("{}/v1/matchmake", server.http_url()),
        serde_json::json!({ "room_type": room_type }),
    )
    .await?;
    if answer.status != 200 {
        bail!("matchmake failed: {} {}", answer.status, answer.body);
    }
    Ok(serde_json::from_value(answer.body)?)
}

/// Creates a room and returns its id.
pub async fn create_room(
    server: &TestServer,
    room_type: &str,
    max_players: u32,
) -> anyhow::Result<String> {
    let answer = post(
        &format!("{}/v1/rooms", server.http_url()),
        serde_json::json!({ "room_type": room_type, "max_players": max_players }),
    )
    .await?;
    if answer.status != 201 {
        bail!("create failed: {} {}", answer.status, answer.body);
    }
    answer.body["room_id"]
        .as_str()
        .map(str::to_owned)
        .context("room_id in answer")
}

/// Reserves a seat in a given room; returns the raw answer (tests check refusals).
pub async fn reserve(server: &TestServer, room_id: &str) -> anyhow::Result<HttpAnswer> {
    post(
        &format!("{}/v1/rooms/{room_id}/seats", server.http_url()),
        serde_json::json!({}),
    )
    .await
}

/// A raw protocol connection.
pub struct Connection {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What arrived on a connection.
#[derive(Debug)]
pub enum Received {
    /// A batch frame.
    Batch(Vec<ServerMessage>),
    /// The server closed, with this frame.
    Closed(Option<CloseFrame>),
}

impl Connection {
    /// Opens a WebSocket to `ws_url`.
    pub async fn open(ws_url: &str) -> anyhow::Result<Self> {
        let (socket, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(ws_url))
            .await
            .context("connect timed out")??;
        Ok(Self { socket })
    }

    /// Cuts the connection as a network failure would: the TCP stream ends (no close frame, no
    /// `leave`).
    pub async fn cut(&mut self) -> anyhow::Result<()> {
        if let MaybeTlsStream::Plain(tcp) = self.socket.get_mut() {
            tokio::io::AsyncWriteExt::shutdown(tcp).await?;
        }
        Ok(())
    }

    /// Sends one client message.
    pub async fn send(&mut self, message: &ClientMessage) -> anyhow::Result<()> {
        self.send_raw(codec::encode_client(message)).await
    }

    /// Sends arbitrary bytes as one binary frame.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.socket.send(Message::binary(bytes)).await?;
        Ok(())
    }

    /// Sends a text frame.
    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.socket.send(Message::text(text)).await?;
        Ok(())
    }

    /// Waits for the next batch or close (control frames are handled by the library).
    pub async fn receive(&mut self) -> anyhow::Result<Received> {
        loop {
            let next = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .context("nothing received in time")?;
            match next {
                None => return Ok(Received::Closed(None)),
                Some(Err(error)) => bail!("websocket error: {error}"),
                Some(Ok(Message::Binary(bytes))) => {
                    return Ok(Received::Batch(codec::decode_batch(&bytes)?))
                }
                Some(Ok(Message::Close(frame))) => return Ok(Received::Closed(frame)),
                Some(Ok(Message::Text(text))) => bail!("server sent a text frame: {text}"),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Reads until the server closes; returns the error messages seen and the close code.
    pub async fn expect_close(&mut self) -> anyhow::Result<(Vec<ErrorMessage>, Option<CloseCode>)> {
        let mut errors = Vec::new();
        for _ in 0..1_000 {
            match self.receive().await? {
                Received::Batch(messages) => {
                    errors.extend(messages.into_iter().filter_map(|message| match message {
                        ServerMessage::Error(error) => Some(error),
                        _ => None,
                    }))
                }
                Received::Closed(frame) => {
                    let code = frame.and_then(|frame| CloseCode::from_code(u16::from(frame.code)));
                    return Ok((errors, code));
                }
            }
        }
        bail!("the server never closed")
    }

    /// Reads until the server closes and checks that it sent `error` (in an `error` message)
    /// and closed with `close`.
    pub async fn expect_refusal(
        &mut self,
        error: ErrorCode,
        close: CloseCode,
    ) -> anyhow::Result<()> {
        let (errors, closed) = self.expect_close().await?;
        let codes: Vec<ErrorCode> = errors.iter().map(|message| message.code).collect();
        anyhow::ensure!(
            codes.contains(&error),
            "expected error {error}, got {codes:?}"
        );
        anyhow::ensure!(
            closed == Some(close),
            "expected close {close}, got {closed:?}"
        );
        Ok(())
    }

    /// Sends `hello` with `token`, in protocol version 1.
    pub async fn hello(&mut self, token: &str) -> anyhow::Result<()> {
        self.hello_in(token, PROTOCOL_VERSION).await
    }

    /// Sends `hello` with `token`, announcing `protocol`.
    pub async fn hello_in(&mut self, token: &str, protocol: u16) -> anyhow::Result<()> {
        self.send(&ClientMessage::Hello(Hello {
            protocol,
            token: token.to_owned(),
            resume: None,
        }))
        .await
    }
}

/// A joined player with a mirror of the room.
pub struct Player {
    /// The connection.
    pub connection: Connection,
    /// The welcome received.
    pub welcome: Welcome,
    /// The room as this player sees it.
    pub state: RoomState,
    /// Next input sequence number.
    pub next_seq: u32,
    /// Private messages (events, errors) received so far.
    pub private: Vec<ServerMessage>,
}

impl Player {
    /// Connects with `seat` and waits for the welcome and snapshot.
    pub async fn join(seat: &Seat) -> anyhow::Result<Self> {
        let mut connection = Connection::open(&seat.ws_url).await?;
        connection.hello(&seat.token).await?;
        let Received::Batch(messages) = connection.receive().await? else {
            bail!("closed instead of welcoming");
        };
        let mut messages = messages.into_iter();
        let (Some(ServerMessage::Welcome(welcome)), Some(ServerMessage::Snapshot(snapshot))) =
            (messages.next(), messages.next())
        else {
            bail!("first frame must be [welcome, snapshot]");
        };
        Ok(Self {
            connection,
            welcome,
            state: RoomState::from_snapshot(snapshot),
            next_seq: 1,
            private: Vec::new(),
        })
    }

    /// Matchmakes into `room_type` and joins.
    pub async fn matchmake(server: &TestServer, room_type: &str) -> anyhow::Result<Self> {
        Self::join(&matchmake(server, room_type).await?).await
    }

    /// This player's id.
    pub fn id(&self) -> PlayerId {
        self.welcome.player
    }

    /// Reads the next frame, applies its delta or snapshot, acks it, and returns the delta (or
    /// `None` for a frame carrying a snapshot).
    pub async fn next_tick(&mut self) -> anyhow::Result<Option<Delta>> {
        loop {
            let Received::Batch(messages) = self.connection.receive().await? else {
                bail!("connection closed");
            };
            let mut applied = None;
            let mut saw_state = false;
            for message in messages {
                match message {
                    ServerMessage::Delta(delta) => {
                        self.state.apply(&delta)?;
                        applied = Some(delta);
                        saw_state = true;
                    }
                    ServerMessage::Snapshot(snapshot) => {
                        self.state = RoomState::from_snapshot(snapshot);
                        saw_state = true;
                    }
                    other => self.private.push(other),
                }
            }
            if saw_state {
                self.ack().await?;
                return Ok(applied);
            }
        }
    }

    /// Acknowledges the current tick.
    pub async fn ack(&mut self) -> anyhow::Result<()> {
        let tick = self.state.tick();
        self.connection
            .send(&ClientMessage::Ack(Ack { tick }))
            .await
    }

    /// Sends an input and returns its sequence number.
    pub async fn input(&mut self, payload: Value) -> anyhow::Result<u32> {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.connection
            .send(&ClientMessage::Input(Input {
                seq,
                ack_tick: self.state.tick(),
                payload,
            }))
            .await?;
        Ok(seq)
    }

    /// Reads ticks until `done` holds for the state, at most `max_ticks`.
    pub async fn tick_until(
        &mut self,
        max_ticks: usize,
        done: impl Fn(&RoomState) -> bool,
    ) -> anyhow::Result<()> {
        for _ in 0..max_ticks {
            if done(&self.state) {
                return Ok(());
            }
            self.next_tick().await?;
        }
        if done(&self.state) {
            return Ok(());
        }
        bail!("condition not reached within {max_ticks} ticks")
    }
}

/// An `arena` move input.
pub fn arena_move(dx: f64, dy: f64) -> Value {
    Value::Map(vec![
        (Value::from("dx"), Value::F64(dx)),
        (Value::from("dy"), Value::F64(dy)),
    ])
}

/// The `(x, y)` of `player`'s avatar in an arena state.
pub fn arena_position(state: &RoomState, player: PlayerId) -> Option<(f64, f64)> {
    let avatar = state.entities().find(|entity| {
        entity.kind == "player"
            && entity.fields.get("player").and_then(Value::as_u64) == Some(player.0)
    })?;
    let x = avatar.fields.get("x")?.as_f64()?;
    let y = avatar.fields.get("y")?.as_f64()?;
    Some((x, y))
}

/// Polls `check` every 50 ms until it returns `Some`, for at most [`WAIT`].
pub async fn eventually<T, F, Fut>(check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    eventually_within(WAIT, check).await
}

/// Like [`eventually`], for at most `limit` (recoveries that involve reconnect back-off).
pub async fn eventually_within<T, F, Fut>(limit: Duration, mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("condition not met within {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads one metric's value from `/metrics` (sums every label set of it).
pub async fn metric(server: &TestServer, name: &str) -> anyhow::Result<f64> {
    let (_, text) = get_text(&format!("{}/metrics", server.http_url())).await?;
    Ok(text
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}

/// The WebSocket URL of `room_id` on `server`, as a seat's `ws_url` gives it.
pub fn ws_url(server: &TestServer, room_id: &str) -> String {
    format!("ws://{}/v1/rooms/{room_id}/ws", server.addr())
}

/// Seats taken and reserved in `room_id`, as the room listing shows them (`None` once the room
/// is gone).
pub async fn room_seats(server: &TestServer, room_id: &str) -> anyhow::Result<Option<(u64, u64)>> {
    let listing = get_json(&format!("{}/v1/rooms", server.http_url())).await?;
    let rooms = listing["rooms"].as_array().context("rooms in listing")?;
    Ok(rooms
        .iter()
        .find(|room| room["room_id"] == room_id)
        .and_then(|room| Some((room["players"].as_u64()?, room["reserved"].as_u64()?))))
}

impl Connection {
    /// Opens a WebSocket to `ws_url` over a socket whose kernel receive buffer is requested as
    /// `receive_buffer` bytes (Linux doubles it), so a test can make the client fall behind with
    /// little data.
    pub async fn open_with_receive_buffer(
        ws_url: &str,
        receive_buffer: u32,
    ) -> anyhow::Result<Self> {
        let authority = ws_url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .context("a ws:// URL")?;
        let addr: SocketAddr = authority.parse()?;
        anyhow::ensure!(addr.ip().is_loopback(), "tests only connect to loopback");
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_recv_buffer_size(receive_buffer)?;
        let connect = async {
            let stream = socket.connect(addr).await?;
            let (socket, _) =
                tokio_tungstenite::client_async(ws_url, MaybeTlsStream::Plain(stream)).await?;
            anyhow::Ok(socket)
        };
        let socket = tokio::time::timeout(WAIT, connect)
            .await
            .context("connect timed out")??;
        Ok(Self { socket })
    }

    /// The kernel receive buffer of the connection's socket, in bytes, as the kernel reports it.
    pub fn receive_buffer_bytes(&self) -> anyhow::Result<usize> {
        match self.socket.get_ref() {
            MaybeTlsStream::Plain(stream) => Ok(socket2::SockRef::from(stream).recv_buffer_size()?),
            _ => bail!("not a plain TCP connection"),
        }
    }

    /// Queues any WebSocket message, control frames included, without flushing.
    pub async fn feed(&mut self, message: Message) -> anyhow::Result<()> {
        self.socket.feed(message).await?;
        Ok(())
    }

    /// Writes what [`Connection::feed`] queued.
    pub async fn flush(&mut self) -> anyhow::Result<()> {
        self.socket.flush().await?;
        Ok(())
    }

    /// The next message of any kind, control frames included; `None` once the stream ended.
    pub async fn receive_message(&mut self) -> anyhow::Result<Option<Message>> {
        match tokio::time::timeout(WAIT, self.socket.next())
            .await
            .context("nothing received in time")?
        {
            None => Ok(None),
            Some(message) => Ok(Some(message?)),
        }
    }
}
