//! Errors of the bot client.
//!
//! A bot never panics on what the server sends or the user types: every such failure is a
//! [`BotError`] (joining, connecting, talking to the lobby) or a [`ScenarioError`] (arguments
//! that make no sense, reports that cannot be written). The swarm counts bot errors by kind
//! and carries on; only scenario errors stop a run.
//!
//! Messages do not repeat their source error; print the chain (`{:#}` with anyhow) to see it.

use crate::reconnect::ResumeRefusal;
use ludus_protocol::RoomId;

/// Why one bot could not join, connect or keep its session.
#[derive(Debug, thiserror::Error)]
pub enum BotError {
    /// The lobby could not be reached or its answer could not be read.
    #[error("lobby request `{endpoint}` failed")]
    LobbyUnreachable {
        /// The endpoint called, e.g. `POST /v1/matchmake`.
        endpoint: String,
        /// The transport or body error.
        source: reqwest::Error,
    },
    /// The lobby answered with a non-2xx status.
    #[error("lobby refused `{endpoint}` with {status} `{code}`: {message}")]
    LobbyRefused {
        /// The endpoint called.
        endpoint: String,
        /// The HTTP status.
        status: u16,
        /// The stable error code from the body (`room_full`, ...), or `unknown`.
        code: String,
        /// The human-readable message from the body.
        message: String,
    },
    /// The lobby handed out a WebSocket URL on another host than the server the swarm was
    /// pointed at. Bots only ever connect to the given server.
    #[error("lobby returned ws url `{ws_url}`, which is not on server `{server}`")]
    ForeignWsUrl {
        /// The URL the lobby returned.
        ws_url: String,
        /// The server the swarm was given.
        server: String,
    },
    /// The TCP connection or the WebSocket handshake failed.
    #[error("websocket connect to room `{room_id}` failed")]
    Connect {
        /// The room being joined.
        room_id: RoomId,
        /// The transport error.
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    /// The server closed or dropped the connection before sending `welcome`.
    #[error("room `{room_id}` closed the connection before welcome: {reason}")]
    RefusedHello {
        /// The room being joined.
        room_id: RoomId,
        /// The close reason (see [`crate::stats::DisconnectReason`]).
        reason: String,
    },
    /// The server answered `hello` with a redirect to another node. Bots do not follow it (they
    /// connect only to the given server); see the extension point in `bot.rs`.
    #[error("room `{room_id}` is on another node; redirected to `{ws_url}`")]
    Redirected {
        /// The room being joined.
        room_id: RoomId,
        /// Where the server sent the bot.
        ws_url: String,
    },
    /// The server refused to resume the session (an `error` with a resume code, then close
    /// 4014); the bot falls back to the lobby for a new seat.
    #[error("room `{room_id}` refused the resume: {reason}")]
    ResumeRefused {
        /// The room being resumed.
        room_id: RoomId,
        /// The refusal's error code.
        reason: ResumeRefusal,
    },
    /// No `welcome` arrived within the join timeout.
    #[error("room `{room_id}` sent no welcome within {timeout_ms} ms")]
    WelcomeTimeout {
        /// The room being joined.
        room_id: RoomId,
        /// The timeout that expired.
        timeout_ms: u64,
    },
}

/// Why a scenario cannot run or report.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// An argument is out of its documented range.
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// The argument's flag name, e.g. `--rooms`.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The server URL is not a plain `http://host:port` URL.
    #[error("invalid server url `{url}`: {reason}")]
    InvalidServerUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Setting up the scenario (creating rooms) failed.
    #[error("scenario setup failed")]
    Setup(#[source] BotError),
    /// A report file could not be written.
    #[error("cannot write report `{path}`")]
    WriteReport {
        /// The file path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The loopback floor benchmark failed.
    #[error("loopback benchmark failed")]
    Loopback {
        /// The socket error.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot build http client")]
    HttpClient(#[source] reqwest::Error),
}
