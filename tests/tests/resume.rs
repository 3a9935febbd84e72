//! Session resume over real sockets: a dropped connection gets back into its room with no gap
//! and no lost seat, and every way a resume can be wrong is refused with its own code.

use ludus_protocol::{
    ClientMessage, CloseCode, ErrorCode, Hello, Resume, RoomState, ServerMessage, PROTOCOL_VERSION,
};
use ludus_server::config::ServerConfig;
use ludus_server::game::GameRegistry;
use ludus_tests::resume::{CaughtUp, Dropped};
use ludus_tests::*;

/// Brings `behind` up to `ahead`'s tick (or the reverse) and checks both mirrors hold the same
/// entities and acks at that tick.
async fn assert_same_state(one: &mut Player, other: &mut Player) -> anyhow::Result<()> {
    for _ in 0..100 {
        let (a, b) = (one.state.tick(), other.state.tick());
        if a == b {
            let entities = |state: &RoomState| state.entities().cloned().collect::<Vec<_>>();
            anyhow::ensure!(
                entities(&one.state) == entities(&other.state),
                "mirrors differ at tick {a}"
            );
            return Ok(());
        }
        if a < b {
            one.next_tick().await?;
        } else {
            other.next_tick().await?;
        }
    }
    anyhow::bail!("the two mirrors never reached the same tick")
}

/// A dropped session of a player in a fresh arena room, with an observer who stays connected.
async fn dropped_in_play(server: &TestServer) -> anyhow::Result<(Dropped, Player)> {
    let seat = matchmake(server, "arena").await?;
    let mut player = Player::join(&seat).await?;
    let observer_seat = reserve(server, &seat.room_id).await?;
    let observer = Player::join(&serde_json::from_value(observer_seat.body)?).await?;
    for _ in 0..3 {
        player.input(arena_move(1.0, 0.0)).await?;
        player.next_tick().await?;
    }
    player.connection.cut().await?;
    Ok((
        Dropped {
            ws_url: seat.ws_url,
            player,
        },
        observer,
    ))
}

#[tokio::test]
async fn an_abrupt_drop_resumes_with_the_missed_deltas_and_no_gap() -> anyhow::Result<()> {
    let server = TestServer::start();
    let (dropped, mut observer) = dropped_in_play(&server).await?;
    let me = dropped.player.id();
    let session_before = dropped.player.welcome.session;
    let acked_before = dropped.player.state.ack(me).unwrap_or(0);
    // The room plays on meanwhile.
    for _ in 0..5 {
        observer.next_tick().await?;
    }
    let (mut player, caught_up) = dropped.resume().await?;
    assert!(
        matches!(caught_up, CaughtUp::Deltas(n) if n >= 1),
        "{caught_up:?}"
    );
    assert_eq!(player.id(), me, "the same seat");
    assert_ne!(player.welcome.session, session_before, "a new session");
    assert!(player.welcome.resume_token.is_some());
    assert_same_state(&mut player, &mut observer).await?;
    // Input sequence numbers continue where they were.
    let seq = player.input(arena_move(0.0, 1.0)).await?;
    assert!(seq > acked_before);
    player
        .tick_until(20, |state| state.ack(me) == Some(seq))
        .await?;
    assert!(metric(&server, "ludus_resumes_total{outcome=\"delta\"}").await? >= 1.0);
    Ok(())
}

#[tokio::test]
async fn a_resume_beyond_the_history_gets_a_snapshot() -> anyhow::Result<()> {
    let mut config = test_config();
    config.rooms.resume_history_bytes = 0;
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let (dropped, mut observer) = dropped_in_play(&server).await?;
    for _ in 0..3 {
        observer.next_tick().await?;
    }
    let (mut player, caught_up) = dropped.resume().await?;
    assert_eq!(caught_up, CaughtUp::Snapshot);
    assert_same_state(&mut player, &mut observer).await?;
    Ok(())
}

fn short_window() -> ServerConfig {
    let mut config = test_config();
    config.rooms.resume_window_ms = 300;
    config
}

#[tokio::test]
async fn after_the_window_the_seat_is_gone_and_a_resume_is_refused() -> anyhow::Result<()> {
    let server = TestServer::start_with(short_window(), GameRegistry::builtin());
    let (dropped, mut observer) = dropped_in_play(&server).await?;
    let me = dropped.player.id();
    // The player's avatar leaves the room once the window passes.
    observer
        .tick_until(100, |state| arena_position(state, me).is_none())
        .await?;
    let hello = dropped.hello()?;
    let mut connection = Connection::open(&dropped.ws_url).await?;
    connection.send(&hello).await?;
    connection
        .expect_refusal(ErrorCode::ResumeExpired, CloseCode::ResumeRefused)
        .await?;
    Ok(())
}

async fn refused(ws_url: &str, hello: ClientMessage, error: ErrorCode) -> anyhow::Result<()> {
    let mut connection = Connection::open(ws_url).await?;
    connection.send(&hello).await?;
    connection
        .expect_refusal(error, CloseCode::ResumeRefused)
        .await
}

fn resume_hello(token: &str, last_tick: u64) -> ClientMessage {
    ClientMessage::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        token: String::new(),
        resume: Some(Resume {
            token: token.to_owned(),
            last_tick,
        }),
    })
}

#[tokio::test]
async fn forged_foreign_reused_and_stale_epoch_tokens_are_refused_each_with_its_code(
) -> anyhow::Result<()> {
    let server = TestServer::start();
    let (dropped, _observer) = dropped_in_play(&server).await?;
    let ws_url = dropped.ws_url.clone();
    let token = dropped
        .player
        .welcome
        .resume_token
        .clone()
        .unwrap_or_default();
    let tick = dropped.player.state.tick();
    refused(
        &ws_url,
        resume_hello("not-a-token", tick),
        ErrorCode::ResumeInvalid,
    )
    .await?;
    // The same token in another room's URL.
    let other = matchmake(&server, "tictactoe").await?;
    refused(
        &other.ws_url,
        resume_hello(&token, tick),
        ErrorCode::ResumeWrongRoom,
    )
    .await?;
    // Used once, a token is spent: the resumed session got a new one.
    let (resumed, _) = dropped.resume().await?;
    refused(&ws_url, resume_hello(&token, tick), ErrorCode::ResumeUsed).await?;
    // A room re-created under the same id is another epoch.
    let room = resumed.welcome.room.to_string();
    let fresh_token = resumed.welcome.resume_token.clone().unwrap_or_default();
    drop(resumed);
    let disposed = operator_delete(&format!("{}/v1/rooms/{room}", server.http_url())).await?;
    assert_eq!(disposed.status, 202);
    eventually(|| async {
        let created = post(
            &format!("{}/v1/rooms", server.http_url()),
            serde_json::json!({"room_type": "arena", "room_id": room}),
        )
        .await?;
        Ok((created.status == 201).then_some(()))
    })
    .await?;
    refused(
        &ws_url,
        resume_hello(&fresh_token, tick),
        ErrorCode::ResumeEpochChanged,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_resume_while_the_old_connection_looks_open_replaces_it() -> anyhow::Result<()> {
    let server = TestServer::start();
    let seat = matchmake(&server, "arena").await?;
    let mut old = Player::join(&seat).await?;
    old.next_tick().await?;
    // Half-open: the old connection is never cut; a second one resumes the same session.
    let token = old.welcome.resume_token.clone().unwrap_or_default();
    let mut fresh = Connection::open(&seat.ws_url).await?;
    fresh.send(&resume_hello(&token, old.state.tick())).await?;
    let Received::Batch(messages) = fresh.receive().await? else {
        anyhow::bail!("the resume was refused");
    };
    assert!(matches!(
        messages.first(),
        Some(ServerMessage::Welcome(welcome)) if welcome.resumed && welcome.player == old.id()
    ));
    let (_, closed) = old.connection.expect_close().await?;
    assert_eq!(closed, Some(CloseCode::SessionReplaced));
    Ok(())
}

#[tokio::test]
async fn a_leave_frees_the_seat_at_once_and_cannot_be_resumed() -> anyhow::Result<()> {
    let server = TestServer::start();
    let seat = matchmake(&server, "arena").await?;
    let mut player = Player::join(&seat).await?;
    player.next_tick().await?;
    let token = player.welcome.resume_token.clone().unwrap_or_default();
    let tick = player.state.tick();
    player
        .connection
        .send(&ClientMessage::Leave(ludus_protocol::Leave {}))
        .await?;
    let (_, closed) = player.connection.expect_close().await?;
    assert_eq!(closed, Some(CloseCode::Normal));
    refused(
        &seat.ws_url,
        resume_hello(&token, tick),
        ErrorCode::ResumeExpired,
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_disconnected_player_comes_back_by_resuming_not_with_a_second_seat() -> anyhow::Result<()>
{
    const STUDIO: &str = "studio-player-token-secret-0123456789";
    let mut config = test_config();
    config.lobby.auth = ludus_server::config::LobbyAuthMode::Jwt;
    config.lobby.jwt_secret = Some(STUDIO.to_owned());
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &serde_json::json!({"sub": "ann", "exp": now + 3_600}),
        &jsonwebtoken::EncodingKey::from_secret(STUDIO.as_bytes()),
    )?;
    let matchmake_url = format!("{}/v1/matchmake", server.http_url());
    let body = serde_json::json!({"room_type": "tictactoe"});
    let first = send_with(
        reqwest::Method::POST,
        &matchmake_url,
        Some(&token),
        Some(body),
    )
    .await?;
    let seat: Seat = serde_json::from_value(first.body)?;
    let mut player = Player::join(&seat).await?;
    player.connection.cut().await?;
    // Once the server has seen the connection go (no session left), the seat waits for a
    // resume, and the same player asking for a seat again is refused.
    eventually(|| async { Ok((metric(&server, "ludus_sessions").await? == 0.0).then_some(())) })
        .await?;
    let seats = format!("{}/v1/rooms/{}/seats", server.http_url(), seat.room_id);
    let again = send_with(
        reqwest::Method::POST,
        &seats,
        Some(&token),
        Some(serde_json::json!({})),
    )
    .await?;
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(again.error_code(), Some("already_seated"));
    let (_resumed, _) = Dropped {
        ws_url: seat.ws_url,
        player,
    }
    .resume()
    .await?;
    Ok(())
}
