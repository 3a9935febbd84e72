//! The player side of the trust boundary, over real sockets: player tokens in `jwt` mode, rate
//! limits and the outstanding-seat cap (finding 3), body deadlines and connection caps (finding
//! 4), and browser origins. Traffic from a second loopback address (127.0.0.2) plays the
//! attacker, so the caps it hits can be told apart from everyone else's service.

use ludus_server::config::{LobbyAuthMode, ServerConfig};
use ludus_server::game::GameRegistry;
use ludus_tests::*;
use reqwest::Method;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const STUDIO_SECRET: &str = "studio-player-token-secret-0123456789";

fn jwt_config() -> ServerConfig {
    let mut config = test_config();
    config.lobby.auth = LobbyAuthMode::Jwt;
    config.lobby.jwt_secret = Some(STUDIO_SECRET.to_owned());
    config
}

/// A player token for `sub`, valid for an hour, signed with `secret`.
fn player_token(sub: &str, secret: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": sub, "exp": now + 3_600}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap_or_default()
}

/// A client whose connections come from `source` (a loopback address).
fn client_from(source: [u8; 4]) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .local_address(IpAddr::from(source))
        .timeout(WAIT)
        .build()?)
}

async fn answer_of(request: reqwest::RequestBuilder) -> anyhow::Result<HttpAnswer> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    Ok(HttpAnswer { status, body })
}

#[tokio::test]
async fn in_jwt_mode_a_player_holds_one_seat_per_room_and_cannot_lock_a_room_alone(
) -> anyhow::Result<()> {
    let server = TestServer::start_with(jwt_config(), GameRegistry::builtin());
    let room = create_room_as(&server, "tictactoe", &player_token("ann", STUDIO_SECRET)).await?;
    let seats = format!("{}/v1/rooms/{room}/seats", server.http_url());
    let ann = player_token("ann", STUDIO_SECRET);
    let first = send_with(
        Method::POST,
        &seats,
        Some(&ann),
        Some(serde_json::json!({})),
    )
    .await?;
    let second = send_with(
        Method::POST,
        &seats,
        Some(&ann),
        Some(serde_json::json!({})),
    )
    .await?;
    assert_eq!((first.status, second.status), (200, 200), "{}", second.body);
    assert_eq!(
        first.body["player_id"], second.body["player_id"],
        "the same player, the same seat"
    );
    let bob = player_token("bob", STUDIO_SECRET);
    let other = send_with(
        Method::POST,
        &seats,
        Some(&bob),
        Some(serde_json::json!({})),
    )
    .await?;
    assert_eq!(
        other.status, 200,
        "the second seat is still free: {}",
        other.body
    );
    // Seated, ann cannot take a second seat in the same room.
    let seat: Seat = serde_json::from_value(second.body)?;
    let _ann = Player::join(&seat).await?;
    let again = send_with(
        Method::POST,
        &seats,
        Some(&ann),
        Some(serde_json::json!({})),
    )
    .await?;
    assert_eq!(
        (again.status, again.error_code()),
        (409, Some("already_seated"))
    );
    Ok(())
}

async fn create_room_as(
    server: &TestServer,
    room_type: &str,
    token: &str,
) -> anyhow::Result<String> {
    let created = send_with(
        Method::POST,
        &format!("{}/v1/rooms", server.http_url()),
        Some(token),
        Some(serde_json::json!({"room_type": room_type})),
    )
    .await?;
    anyhow::ensure!(created.status == 201, "create failed: {}", created.body);
    Ok(created.body["room_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[tokio::test]
async fn jwt_mode_refuses_missing_forged_and_expired_player_tokens() -> anyhow::Result<()> {
    let server = TestServer::start_with(jwt_config(), GameRegistry::builtin());
    let url = format!("{}/v1/matchmake", server.http_url());
    let body = serde_json::json!({"room_type": "arena"});
    let missing = send_with(Method::POST, &url, None, Some(body.clone())).await?;
    assert_eq!(
        (missing.status, missing.error_code()),
        (401, Some("unauthorized"))
    );
    let forged = player_token("ann", "not-the-studio-secret-0123456789abcd");
    let forged = send_with(Method::POST, &url, Some(&forged), Some(body.clone())).await?;
    assert_eq!(
        (forged.status, forged.error_code()),
        (401, Some("invalid_token"))
    );
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "ann", "exp": 1_000}),
        &jsonwebtoken::EncodingKey::from_secret(STUDIO_SECRET.as_bytes()),
    )?;
    let expired = send_with(Method::POST, &url, Some(&expired), Some(body.clone())).await?;
    assert_eq!(
        (expired.status, expired.error_code()),
        (401, Some("invalid_token"))
    );
    let valid = send_with(
        Method::POST,
        &url,
        Some(&player_token("42", STUDIO_SECRET)),
        Some(body),
    )
    .await?;
    assert_eq!(valid.status, 200, "{}", valid.body);
    assert_eq!(
        valid.body["player_id"], 42,
        "a numeric sub is the player id"
    );
    Ok(())
}

#[tokio::test]
async fn a_player_cannot_hold_more_than_its_outstanding_seats() -> anyhow::Result<()> {
    let mut config = jwt_config();
    config.lobby.max_outstanding_seats = 2;
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let url = format!("{}/v1/matchmake", server.http_url());
    let ann = player_token("ann", STUDIO_SECRET);
    let mut codes = Vec::new();
    for _ in 0..3 {
        let answer = send_with(
            Method::POST,
            &url,
            Some(&ann),
            Some(serde_json::json!({"room_type": "tictactoe"})),
        )
        .await?;
        codes.push((answer.status, answer.error_code().map(str::to_owned)));
    }
    assert_eq!(codes[..2], [(200, None), (200, None)]);
    assert_eq!(codes[2], (429, Some("too_many_reservations".to_owned())));
    Ok(())
}

#[tokio::test]
async fn a_matchmaking_flood_from_one_address_is_throttled_while_others_still_play(
) -> anyhow::Result<()> {
    let mut config = test_config();
    config.lobby = ludus_server::config::LobbySection::default();
    config.rooms.max_rooms = 20;
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let url = format!("{}/v1/matchmake", server.http_url());
    let attacker = client_from([127, 0, 0, 2])?;
    let mut granted = 0;
    let mut throttled = 0;
    for _ in 0..320 {
        let answer = answer_of(
            attacker
                .post(&url)
                .json(&serde_json::json!({"room_type": "arena"})),
        )
        .await?;
        match (answer.status, answer.error_code()) {
            (200, _) => granted += 1,
            (429, Some("rate_limited")) => {
                assert!(answer.body["error"]["retry_after"].as_u64() >= Some(1));
                throttled += 1;
            }
            other => anyhow::bail!("unexpected {other:?}: {}", answer.body),
        }
    }
    // 60 at once (a tenth of 600 a minute), then about 10 a second.
    assert!(granted < 120, "granted {granted}");
    assert!(throttled > 200, "throttled {throttled}");
    let player = client_from([127, 0, 0, 1])?;
    let fair = answer_of(
        player
            .post(&url)
            .json(&serde_json::json!({"room_type": "arena"})),
    )
    .await?;
    assert_eq!(
        fair.status, 200,
        "another address still gets a seat: {}",
        fair.body
    );
    // Room creation has its own, smaller budget per address.
    let create = format!("{}/v1/rooms", server.http_url());
    let mut created = 0;
    for _ in 0..30 {
        let answer = answer_of(
            attacker
                .post(&create)
                .json(&serde_json::json!({"room_type": "tictactoe"})),
        )
        .await?;
        if answer.status == 201 {
            created += 1;
        }
    }
    assert!(created < 20, "created {created} rooms");
    Ok(())
}

/// Opens a connection from `source` and sends the head of a POST whose body never completes.
async fn trickling_request(server: &TestServer, source: [u8; 4]) -> anyhow::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind((IpAddr::from(source), 0).into())?;
    let mut stream = socket.connect(server.addr()).await?;
    stream
        .write_all(
            b"POST /v1/matchmake HTTP/1.1\r\nhost: ludus\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"room",
        )
        .await?;
    Ok(stream)
}

/// Reads what the server sends until it closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> anyhow::Result<String> {
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer)).await??;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_trickled_body_gets_408_and_its_connection_closed() -> anyhow::Result<()> {
    let mut config = test_config();
    config.http.body_timeout_ms = 300;
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let mut stream = trickling_request(&server, [127, 0, 0, 2]).await?;
    let answer = read_to_close(&mut stream).await?;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    Ok(())
}

#[tokio::test]
async fn one_address_cannot_exhaust_connections_and_others_are_served() -> anyhow::Result<()> {
    let mut config = test_config();
    config.http.max_connections_per_ip = 8;
    config.http.body_timeout_ms = 60_000;
    let server = TestServer::start_with(config, GameRegistry::builtin());
    // Twelve connections from one address: which eight are admitted depends on how the
    // workers interleave, but exactly four are refused (and answered before they are closed).
    let mut held = Vec::new();
    for _ in 0..12 {
        held.push(trickling_request(&server, [127, 0, 0, 2]).await?);
    }
    let refused_metric = "ludus_http_refused_total{reason=\"too_many_connections\"}";
    eventually(|| async { Ok((metric(&server, refused_metric).await? >= 4.0).then_some(())) })
        .await?;
    assert_eq!(metric(&server, refused_metric).await?, 4.0);
    // All twelve are settled, eight held: the next one is refused, with an answer.
    let mut refused = trickling_request(&server, [127, 0, 0, 2]).await?;
    let answer = read_to_close(&mut refused).await?;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("too_many_connections"), "{answer}");
    // Everyone else is served.
    let health = get_json(&format!("{}/healthz", server.http_url())).await?;
    assert_eq!(health["status"], "ok");
    drop(held);
    Ok(())
}

#[tokio::test]
async fn browsers_from_other_origins_cannot_open_websockets_or_read_the_lobby() -> anyhow::Result<()>
{
    let mut config = test_config();
    config.http.allowed_origins = vec!["https://play.example.com".to_owned()];
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let seat = matchmake(&server, "arena").await?;
    for (origin, allowed) in [
        ("https://evil.example", false),
        ("https://play.example.com", true),
    ] {
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                seat.ws_url.as_str(),
            )?;
        request.headers_mut().insert("origin", origin.parse()?);
        let connected =
            tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await?;
        match (connected, allowed) {
            (Ok(_), true) => {}
            (Err(tokio_tungstenite::tungstenite::Error::Http(response)), false) => {
                assert_eq!(response.status().as_u16(), 403);
                let body = response.body().clone().unwrap_or_default();
                assert!(String::from_utf8_lossy(&body).contains("origin_not_allowed"));
            }
            (outcome, _) => anyhow::bail!("{origin}: unexpected {:?}", outcome.map(|_| ())),
        }
    }
    let preflight = |origin: &'static str| {
        reqwest::Client::new()
            .request(
                Method::OPTIONS,
                format!("{}/v1/matchmake", server.http_url()),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .timeout(WAIT)
            .send()
    };
    let allowed = preflight("https://play.example.com").await?;
    assert_eq!(
        allowed
            .headers()
            .get("access-control-allow-origin")
            .and_then(|value| value.to_str().ok()),
        Some("https://play.example.com")
    );
    let refused = preflight("https://evil.example").await?;
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
    Ok(())
}

#[tokio::test]
async fn shutdown_keeps_its_deadline_despite_a_trickling_body_and_a_silent_socket(
) -> anyhow::Result<()> {
    let mut config = test_config();
    config.http.body_timeout_ms = 60_000;
    let deadline = std::time::Duration::from_millis(config.server.shutdown_timeout_ms);
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let _trickle = trickling_request(&server, [127, 0, 0, 2]).await?;
    let seat = matchmake(&server, "arena").await?;
    let mut silent = Connection::open(&seat.ws_url).await?;
    // The documented bound, with a second of slack for a loaded machine.
    tokio::time::timeout(
        deadline + std::time::Duration::from_secs(1),
        server.shutdown(),
    )
    .await??;
    let (_, close) = silent.expect_close().await?;
    assert_eq!(close, Some(ludus_protocol::CloseCode::ServerShutdown));
    Ok(())
}
