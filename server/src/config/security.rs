//! The config sections that draw the node's trust boundaries: who may call operator routes,
//! how players identify to the lobby, and the caps on what any caller can make the node hold
//! (connections, request bodies, reservations, rooms).
//!
//! The defaults are safe to expose: operator routes need a token (one is generated and printed
//! when none is configured), the lobby is rate limited per client address, connections are
//! capped per address and in total, and browsers may only connect from the node's own origin.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `[http]`: limits of the HTTP side (lobby API and WebSocket handshakes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    /// Time a client has to send a whole request body once its head arrived, in milliseconds;
    /// then 408 `request_timeout` and the connection is closed. Default 5000.
    pub body_timeout_ms: u64,
    /// Open HTTP connections (lobby requests, keep-alive, handshakes in progress) the node
    /// holds at most; beyond, new connections get 503 `too_many_connections` and are closed.
    /// Default 4096.
    pub max_connections: usize,
    /// Open HTTP connections one client address may hold (keep-alive ones included). Default 256.
    pub max_connections_per_ip: usize,
    /// WebSocket sessions the node holds at most; beyond, handshakes get 503
    /// `too_many_connections`. Default 50000.
    pub max_websockets: usize,
    /// WebSocket sessions one client address may hold. Default 2000 (bot swarms and NAT).
    pub max_websockets_per_ip: usize,
    /// Browser origins (`https://game.example.com`) allowed to call the lobby (CORS) and to
    /// open WebSockets. Requests without an `Origin` header (non-browser clients) are always
    /// allowed. Empty (default): only the node's own origin, i.e. `Origin` naming the same
    /// host as `Host`. `["*"]`: any origin.
    pub allowed_origins: Vec<String>,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            body_timeout_ms: 5_000,
            max_connections: 4_096,
            max_connections_per_ip: 256,
            max_websockets: 50_000,
            max_websockets_per_ip: 2_000,
            allowed_origins: Vec::new(),
        }
    }
}

impl HttpSection {
    /// The body read timeout as a duration.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_millis(self.body_timeout_ms)
    }
}

/// `[operator]`: the credential for operator routes (dispose a room, message a room, announce
/// to a region) and where they are served.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperatorSection {
    /// Accepted operator tokens, each at least 24 bytes, sent as `Authorization: Bearer <token>`.
    /// List the new token before the old one while rotating; every listed token works. Default:
    /// empty, one random token is generated at start-up and printed to stderr.
    pub tokens: Vec<String>,
    /// A separate address for the operator routes and `/metrics` (e.g. `127.0.0.1:7879`, reached
    /// only from the operators' network). Default: unset, they are served on `server.listen`.
    pub listen: Option<SocketAddr>,
}

/// How the lobby learns who a player is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LobbyAuthMode {
    /// Anyone may ask for seats and rooms; limits apply per client address. For development
    /// and trusted networks.
    #[default]
    Open,
    /// Seat and room requests carry the studio's player token (a JWT in `Authorization: Bearer`);
    /// its `sub` is the player's identity, and limits apply per identity and per address.
    Jwt,
}

/// `[lobby]`: player identity and the limits on what one player or address may reserve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LobbySection {
    /// `open` (default) or `jwt`.
    pub auth: LobbyAuthMode,
    /// HMAC secret verifying player tokens (`HS256`, `HS384`, `HS512`), at least 32 bytes.
    /// With `jwt`, set this or `jwt_public_key_file`.
    pub jwt_secret: Option<String>,
    /// PEM public key verifying player tokens (`RS*`, `PS*`, `ES*` or `EdDSA`).
    pub jwt_public_key_file: Option<PathBuf>,
    /// The algorithm player tokens are signed with. Default `HS256`.
    pub jwt_algorithm: String,
    /// Required `iss` claim, if set.
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim, if set.
    pub jwt_audience: Option<String>,
    /// Seat reservations (matchmake or seat requests) one identity may make per minute (`jwt`
    /// mode). Default 30.
    pub seats_per_minute: u32,
    /// Seat requests one identity may make at once above that rate. Default 10.
    pub seats_burst: u32,
    /// Seat reservations one client address may make per minute, whatever the identities
    /// behind it (a NAT, an office); a tenth of this may come at once. Applies in both modes.
    /// Default 600 (60 at once). Raise it for bot swarms run from one machine.
    pub seats_per_minute_per_ip: u32,
    /// Room creations (`POST /v1/rooms`) one identity may make per minute (`jwt` mode).
    /// Default 10.
    pub rooms_per_minute: u32,
    /// Room creations one identity may make at once above that rate. Default 5.
    pub rooms_burst: u32,
    /// Room creations one client address may make per minute; a tenth of this may come at
    /// once. Applies in both modes. Default 60 (6 at once).
    pub rooms_per_minute_per_ip: u32,
    /// Seat reservations one identity may hold at once (`jwt` mode): a reservation counts until
    /// it expires (`rooms.seat_reservation_ms`), used or not. Default 4.
    pub max_outstanding_seats: u32,
    /// Largest room `metadata` accepted in `POST /v1/rooms`, in bytes of JSON. Default 2048.
    pub max_metadata_bytes: usize,
}

impl Default for LobbySection {
    fn default() -> Self {
        Self {
            auth: LobbyAuthMode::Open,
            jwt_secret: None,
            jwt_public_key_file: None,
            jwt_algorithm: "HS256".to_owned(),
            jwt_issuer: None,
            jwt_audience: None,
            seats_per_minute: 30,
            seats_burst: 10,
            seats_per_minute_per_ip: 600,
            rooms_per_minute: 10,
            rooms_burst: 5,
            rooms_per_minute_per_ip: 60,
            max_outstanding_seats: 4,
            max_metadata_bytes: 2_048,
        }
    }
}
