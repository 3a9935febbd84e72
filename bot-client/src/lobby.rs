//! The lobby's HTTP JSON API, as a client sees it: matchmake, create a room, reserve a seat.
//!
//! One [`Lobby`] (one pooled HTTP client) is shared by every bot of a swarm. It only ever talks
//! to the server it was built for, and it refuses a `ws_url` on any other host
//! ([`BotError::ForeignWsUrl`]): a load tool must never be steerable at a third party.

use crate::error::{BotError, ScenarioError};
use ludus_protocol::{PlayerId, RoomId};
use reqwest::{StatusCode, Url};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long one lobby request may take before the join counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A reserved seat: everything needed to open the room's WebSocket.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Seat {
    /// The room the seat is in.
    pub room_id: RoomId,
    /// The room's type.
    pub room_type: String,
    /// The player id the session will play as.
    pub player_id: PlayerId,
    /// Where to connect; checked to be on the lobby's own host.
    pub ws_url: String,
    /// The seat token for `hello`.
    pub token: String,
    /// When the reservation lapses (unix milliseconds).
    pub expires_at_ms: u64,
}

/// A room as the lobby lists it (only the fields the swarm uses).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct RoomInfo {
    /// The room's id.
    pub room_id: RoomId,
    /// The room's type.
    pub room_type: String,
    /// Seats the room offers.
    pub max_players: u32,
}

#[derive(Serialize)]
struct MatchmakeRequest<'a> {
    room_type: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
struct CreateRoomRequest<'a> {
    room_type: &'a str,
    max_players: u32,
}

#[derive(Serialize)]
struct ReserveSeatRequest<'a> {
    name: &'a str,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    message: String,
}

/// A client of one server's lobby.
#[derive(Clone, Debug)]
pub struct Lobby {
    http: reqwest::Client,
    base: Url,
}

impl Lobby {
    /// Builds a lobby client for `server_url`, which must be `http://host[:port]` with no path
    /// (the lobby's routes are absolute).
    pub fn new(server_url: &str) -> Result<Self, ScenarioError> {
        let invalid = |reason: &str| ScenarioError::InvalidServerUrl {
            url: server_url.to_owned(),
            reason: reason.to_owned(),
        };
        let base = Url::parse(server_url).map_err(|error| invalid(&error.to_string()))?;
        if base.scheme() != "http" {
            return Err(invalid("only http:// is supported"));
        }
        if base.host_str().is_none() {
            return Err(invalid("no host"));
        }
        if base.path() != "/" || base.query().is_some() {
            return Err(invalid("give only scheme, host and port"));
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()
            .map_err(ScenarioError::HttpClient)?;
        Ok(Self { http, base })
    }

    /// The server's base URL, e.g. `http://127.0.0.1:7878/`.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// `POST /v1/matchmake`: a seat in an open room of `room_type`, creating one if needed.
    pub async fn matchmake(&self, room_type: &str, name: &str) -> Result<Seat, BotError> {
        let body = MatchmakeRequest { room_type, name };
        let seat: Seat = self.post("/v1/matchmake", &body).await?;
        self.check_ws_url(seat)
    }

    /// `POST /v1/rooms`: creates a room of `room_type` with `max_players` seats.
    pub async fn create_room(
        &self,
        room_type: &str,
        max_players: u32,
    ) -> Result<RoomInfo, BotError> {
        let body = CreateRoomRequest {
            room_type,
            max_players,
        };
        self.post("/v1/rooms", &body).await
    }

    /// `POST /v1/rooms/{room_id}/seats`: reserves a seat in exactly that room.
    pub async fn reserve_seat(&self, room_id: &RoomId, name: &str) -> Result<Seat, BotError> {
        let path = format!("/v1/rooms/{room_id}/seats");
        let seat: Seat = self.post(&path, &ReserveSeatRequest { name }).await?;
        self.check_ws_url(seat)
    }

    async fn post<B: Serialize, R: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, BotError> {
        let endpoint = format!("POST {path}");
        let unreachable = |source| BotError::LobbyUnreachable {
            endpoint: endpoint.clone(),
            source,
        };
        // The path is a constant or holds a validated RoomId; were the URL still invalid,
        // reqwest reports it from `send` as a builder error.
        let url = format!("{}{path}", self.base.as_str().trim_end_matches('/'));
        let response = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if status.is_success() {
            return response.json().await.map_err(unreachable);
        }
        Err(refusal(
            endpoint.clone(),
            status,
            response.bytes().await.ok(),
        ))
    }

    fn check_ws_url(&self, seat: Seat) -> Result<Seat, BotError> {
        self.reachable_ws_url(&seat.ws_url)?;
        Ok(seat)
    }

    /// The WebSocket URL of `room_id` on the lobby's own node. A resume whose node no longer
    /// answers goes there: any node of a cluster redirects it to the room's owner, which after a
    /// failover is another node (PROTOCOL.md §20.6).
    pub fn room_ws_url(&self, room_id: &RoomId) -> String {
        let host = self.base.host_str().unwrap_or("127.0.0.1");
        match self.base.port_or_known_default() {
            Some(port) => format!("ws://{host}:{port}/v1/rooms/{room_id}/ws"),
            None => format!("ws://{host}/v1/rooms/{room_id}/ws"),
        }
    }

    /// Checks that a WebSocket URL (a seat's, or a redirect's) is one the swarm may connect to:
    /// plain `ws://` on the server's host. Any port is allowed, because the nodes of a cluster
    /// on one host differ only by port; another host never is, so a swarm only ever loads the
    /// machine it was pointed at. Returns the `(host, port)` to dial.
    pub fn reachable_ws_url(&self, ws_url: &str) -> Result<(String, u16), BotError> {
        let foreign = || BotError::ForeignWsUrl {
            ws_url: ws_url.to_owned(),
            server: self.base.to_string(),
        };
        let url = Url::parse(ws_url).map_err(|_| foreign())?;
        let same_host = url.scheme() == "ws" && url.host_str() == self.base.host_str();
        match (same_host, url.host_str(), url.port_or_known_default()) {
            (true, Some(host), Some(port)) => Ok((host.to_owned(), port)),
            _ => Err(foreign()),
        }
    }
}

fn refusal(endpoint: String, status: StatusCode, body: Option<impl AsRef<[u8]>>) -> BotError {
    let detail = body
        .and_then(|bytes| serde_json::from_slice::<ErrorBody>(bytes.as_ref()).ok())
        .map(|body| body.error);
    let (code, message) = match detail {
        Some(detail) => (detail.code, detail.message),
        None => ("unknown".to_owned(), String::new()),
    };
    BotError::LobbyRefused {
        endpoint,
        status: status.as_u16(),
        code,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(ws_url: &str) -> Seat {
        Seat {
            room_id: RoomId::parse("r1").expect("valid id"),
            room_type: "arena".into(),
            player_id: PlayerId(1),
            ws_url: ws_url.into(),
            token: "t".into(),
            expires_at_ms: 0,
        }
    }

    #[test]
    fn a_rooms_url_on_the_lobby_node_is_one_the_swarm_may_dial() {
        let lobby = Lobby::new("http://127.0.0.1:7801").expect("valid url");
        let room = RoomId::parse("r1").expect("valid id");
        let url = lobby.room_ws_url(&room);
        assert_eq!(url, "ws://127.0.0.1:7801/v1/rooms/r1/ws");
        assert_eq!(
            lobby.reachable_ws_url(&url).expect("reachable"),
            ("127.0.0.1".to_owned(), 7801)
        );
    }

    #[test]
    fn server_url_with_a_path_or_tls_is_rejected() {
        assert!(Lobby::new("http://127.0.0.1:7878").is_ok());
        assert!(Lobby::new("http://127.0.0.1:7878/v1").is_err());
        assert!(Lobby::new("https://127.0.0.1:7878").is_err());
        assert!(Lobby::new("not a url").is_err());
    }

    #[test]
    fn ws_url_on_another_host_or_port_is_refused() {
        let lobby = Lobby::new("http://127.0.0.1:7878").expect("valid url");
        assert!(lobby
            .check_ws_url(seat("ws://127.0.0.1:7878/v1/rooms/r1/ws"))
            .is_ok());
        // Another node of a cluster on the same host.
        assert!(lobby
            .check_ws_url(seat("ws://127.0.0.1:9999/v1/rooms/r1/ws"))
            .is_ok());
        for foreign in [
            "ws://10.0.0.1:7878/v1/rooms/r1/ws",
            "wss://127.0.0.1:7878/v1/rooms/r1/ws",
            "garbage",
        ] {
            assert!(matches!(
                lobby.check_ws_url(seat(foreign)),
                Err(BotError::ForeignWsUrl { .. })
            ));
        }
    }

    #[test]
    fn refusal_reads_the_error_code_from_the_body() {
        let body = br#"{"error":{"code":"room_full","message":"room `r1` is full"}}"#;
        let error = refusal("POST /x".into(), StatusCode::CONFLICT, Some(&body[..]));
        assert!(matches!(
            error,
            BotError::LobbyRefused { status: 409, ref code, .. } if code == "room_full"
        ));
    }
}
