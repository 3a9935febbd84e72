//! Single-node behaviour, end to end: a real server on port 0 and real WebSocket clients.

use ludus_protocol::{
    codec, ClientMessage, CloseCode, ErrorCode, Hello, PlayerId, RoomId, ServerMessage,
};
use ludus_server::game::GameRegistry;
use ludus_server::token::SeatTokens;
use ludus_tests::*;
use std::time::{Duration, SystemTime};

#[tokio::test]
async fn join_with_valid_token_gets_snapshot_then_deltas_with_increasing_ticks(
) -> anyhow::Result<()> {
    let server = TestServer::start();
    let mut player = Player::matchmake(&server, "arena").await?;
    assert_eq!(player.welcome.room_type, "arena");
    assert_eq!(player.welcome.tick_hz, 20);
    assert!(
        arena_position(&player.state, player.id()).is_some(),
        "own avatar in snapshot"
    );
    let mut previous = player.state.tick();
    for _ in 0..10 {
        let delta = player.next_tick().await?.expect("a delta per tick");
        assert_eq!(delta.base_tick, previous);
        assert!(delta.tick > previous, "ticks strictly increase");
        assert_eq!(delta.epoch, player.welcome.epoch);
        previous = delta.tick;
    }
    Ok(())
}

#[tokio::test]
async fn an_input_shows_up_in_the_next_deltas_with_its_sequence_acknowledged() -> anyhow::Result<()>
{
    let server = TestServer::start();
    let mut player = Player::matchmake(&server, "arena").await?;
    let start = arena_position(&player.state, player.id()).expect("avatar");
    let direction = if start.0 > 500.0 { -1.0 } else { 1.0 };
    let seq = player.input(arena_move(direction, 0.0)).await?;
    let me = player.id();
    player
        .tick_until(20, |state| state.ack(me) == Some(seq))
        .await?;
    player.next_tick().await?;
    let now = arena_position(&player.state, me).expect("avatar");
    assert!(
        (now.0 - start.0) * direction > 0.0,
        "moved in the input's direction"
    );
    Ok(())
}

#[tokio::test]
async fn two_players_see_each_other_move() -> anyhow::Result<()> {
    let server = TestServer::start();
    let room = create_room(&server, "arena", 4).await?;
    let seat_a: Seat = serde_json::from_value(reserve(&server, &room).await?.body)?;
    let seat_b: Seat = serde_json::from_value(reserve(&server, &room).await?.body)?;
    let mut alice = Player::join(&seat_a).await?;
    let mut bob = Player::join(&seat_b).await?;
    let (alice_id, bob_id) = (alice.id(), bob.id());
    alice
        .tick_until(20, |state| arena_position(state, bob_id).is_some())
        .await?;
    let bob_start = arena_position(&alice.state, bob_id).expect("bob visible");
    let direction = if bob_start.1 > 500.0 { -1.0 } else { 1.0 };
    bob.input(arena_move(0.0, direction)).await?;
    let alice_start = arena_position(&bob.state, alice_id).expect("alice visible to bob");
    let alice_direction = if alice_start.0 > 500.0 { -1.0 } else { 1.0 };
    alice.input(arena_move(alice_direction, 0.0)).await?;
    for _ in 0..10 {
        alice.next_tick().await?;
        bob.next_tick().await?;
    }
    let bob_now = arena_position(&alice.state, bob_id).expect("bob visible");
    let alice_now = arena_position(&bob.state, alice_id).expect("alice visible");
    assert!(
        (bob_now.1 - bob_start.1) * direction > 0.0,
        "alice saw bob move"
    );
    assert!(
        (alice_now.0 - alice_start.0) * alice_direction > 0.0,
        "bob saw alice move"
    );
    Ok(())
}

async fn refused_hello(
    ws_url: &str,
    token: &str,
) -> anyhow::Result<(Vec<ErrorCode>, Option<CloseCode>)> {
    let mut connection = Connection::open(ws_url).await?;
    connection.hello(token).await?;
    let (errors, close) = connection.expect_close().await?;
    Ok((errors.into_iter().map(|error| error.code).collect(), close))
}

#[tokio::test]
async fn missing_forged_expired_and_other_room_tokens_are_refused() -> anyhow::Result<()> {
    let server = TestServer::start();
    let seat = matchmake(&server, "arena").await?;
    let other_room = create_room(&server, "arena", 4).await?;
    let room_id = RoomId::parse(&seat.room_id)?;
    let later = SystemTime::now() + Duration::from_secs(60);
    let forged =
        SeatTokens::new(b"not the server's secret at all").issue(PlayerId(1), &room_id, "x", later);
    let expired = SeatTokens::new(TEST_SECRET.as_bytes()).issue(
        PlayerId(1),
        &room_id,
        "x",
        SystemTime::now() - Duration::from_secs(5),
    );
    let other_room_url = seat.ws_url.replace(&seat.room_id, &other_room);
    let cases = [
        (seat.ws_url.as_str(), "", ErrorCode::MissingToken),
        (
            seat.ws_url.as_str(),
            forged.as_str(),
            ErrorCode::InvalidToken,
        ),
        (seat.ws_url.as_str(), "not.a.token", ErrorCode::InvalidToken),
        (
            seat.ws_url.as_str(),
            expired.as_str(),
            ErrorCode::TokenExpired,
        ),
        (
            other_room_url.as_str(),
            seat.token.as_str(),
            ErrorCode::TokenWrongRoom,
        ),
    ];
    for (url, token, expected) in cases {
        let (errors, close) = refused_hello(url, token).await?;
        assert_eq!(errors, vec![expected], "token case {expected}");
        assert_eq!(
            close,
            Some(CloseCode::Unauthorized),
            "token case {expected}"
        );
    }
    // The genuine token still works after all that.
    Player::join(&seat).await?;
    Ok(())
}

#[tokio::test]
async fn a_used_seat_cannot_be_taken_twice() -> anyhow::Result<()> {
    let server = TestServer::start();
    let seat = matchmake(&server, "arena").await?;
    let _first = Player::join(&seat).await?;
    let (errors, close) = refused_hello(&seat.ws_url, &seat.token).await?;
    assert_eq!(errors, vec![ErrorCode::SeatNotReserved]);
    assert_eq!(close, Some(CloseCode::Unauthorized));
    Ok(())
}

#[tokio::test]
async fn a_wrong_protocol_version_is_refused_with_its_close_code() -> anyhow::Result<()> {
    let server = TestServer::start();
    let seat = matchmake(&server, "arena").await?;
    let mut connection = Connection::open(&seat.ws_url).await?;
    connection
        .send(&ClientMessage::Hello(Hello {
            protocol: 99,
            token: seat.token.clone(),
            resume: None,
        }))
        .await?;
    connection
        .expect_refusal(ErrorCode::ProtocolVersion, CloseCode::ProtocolVersion)
        .await?;
    Ok(())
}

/// Two players in one room; returns them and the room id.
async fn two_in_a_room(server: &TestServer) -> anyhow::Result<(Player, Player, String)> {
    let room = create_room(server, "arena", 4).await?;
    let first: Seat = serde_json::from_value(reserve(server, &room).await?.body)?;
    let second: Seat = serde_json::from_value(reserve(server, &room).await?.body)?;
    Ok((
        Player::join(&first).await?,
        Player::join(&second).await?,
        room,
    ))
}

async fn carries_on(player: &mut Player, server: &TestServer, room: &str) -> anyhow::Result<()> {
    let before = player.state.tick();
    for _ in 0..5 {
        player.next_tick().await?;
    }
    assert!(
        player.state.tick() >= before + 5,
        "the other player keeps receiving ticks"
    );
    let rooms = get_json(&format!("{}/v1/rooms", server.http_url())).await?;
    let listed = rooms["rooms"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|info| info["room_id"] == room);
    assert!(listed, "the room is still listed");
    Ok(())
}

#[tokio::test]
async fn a_malformed_frame_gets_a_protocol_error_and_a_close_and_the_room_carries_on(
) -> anyhow::Result<()> {
    let server = TestServer::start();
    let (mut good, mut bad, room) = two_in_a_room(&server).await?;
    bad.connection.send_raw(vec![0xc1, 0xff, 0x00]).await?;
    bad.connection
        .expect_refusal(ErrorCode::MalformedMessage, CloseCode::ProtocolError)
        .await?;
    carries_on(&mut good, &server, &room).await
}

#[tokio::test]
async fn a_text_frame_is_a_protocol_error() -> anyhow::Result<()> {
    let server = TestServer::start();
    let (_good, mut bad, _room) = two_in_a_room(&server).await?;
    bad.connection.send_text("{\"input\": 1}").await?;
    bad.connection
        .expect_refusal(ErrorCode::MalformedMessage, CloseCode::ProtocolError)
        .await?;
    Ok(())
}

#[tokio::test]
async fn an_oversized_frame_gets_a_protocol_error_and_a_close_and_the_room_carries_on(
) -> anyhow::Result<()> {
    let server = TestServer::start();
    let (mut good, mut bad, room) = two_in_a_room(&server).await?;
    let limit = test_config().session.max_message_bytes;
    bad.connection.send_raw(vec![0x90; limit + 100]).await?;
    bad.connection
        .expect_refusal(ErrorCode::MessageTooLarge, CloseCode::MessageTooLarge)
        .await?;
    carries_on(&mut good, &server, &room).await
}

#[tokio::test]
async fn a_frame_far_beyond_the_codec_limit_is_refused_too() -> anyhow::Result<()> {
    let server = TestServer::start();
    let (mut good, mut bad, room) = two_in_a_room(&server).await?;
    let limit = test_config().session.max_message_bytes;
    bad.connection.send_raw(vec![0x90; limit * 10]).await?;
    bad.connection
        .expect_refusal(ErrorCode::MessageTooLarge, CloseCode::MessageTooLarge)
        .await?;
    carries_on(&mut good, &server, &room).await
}

#[tokio::test]
async fn exceeding_the_input_rate_gets_the_rate_limited_error_then_a_kick() -> anyhow::Result<()> {
    let mut config = test_config();
    config.session.input_rate_per_sec = 20;
    config.session.input_burst = 5;
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let mut player = Player::matchmake(&server, "arena").await?;
    for _ in 0..60 {
        player.input(arena_move(1.0, 0.0)).await?;
    }
    player
        .connection
        .expect_refusal(ErrorCode::RateLimited, CloseCode::RateLimited)
        .await?;
    assert!(metric(&server, "ludus_inputs_dropped_total").await? > 0.0);
    Ok(())
}

#[tokio::test]
async fn a_client_that_stops_reading_does_not_stop_the_other_players_ticks() -> anyhow::Result<()> {
    let mut config = test_config();
    config.session.slow_client_timeout_ms = 1_000;
    config.session.heartbeat_interval_ms = 200;
    config.session.idle_timeout_ms = 60_000;
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let (mut reader, stalled, room) = two_in_a_room(&server).await?;
    // `stalled` never reads nor acks again. Its window fills, the server pauses it, and
    // after the slow-client timeout closes it; meanwhile the reader sees every tick.
    let start = reader.state.tick();
    for _ in 0..80 {
        let delta = reader.next_tick().await?.expect("a delta");
        assert_eq!(delta.tick, delta.base_tick + 1);
    }
    assert!(reader.state.tick() >= start + 80);
    let skipped = eventually(|| async {
        let skipped = metric(&server, "ludus_deltas_skipped_total").await?;
        Ok((skipped > 0.0).then_some(skipped))
    })
    .await?;
    assert!(skipped > 0.0);
    eventually(|| async {
        let closed = metric(&server, "ludus_sessions_closed_total{reason=\"too_slow\"}").await?;
        Ok((closed >= 1.0).then_some(()))
    })
    .await?;
    drop(stalled);
    carries_on(&mut reader, &server, &room).await
}

#[tokio::test]
async fn a_paused_client_that_acks_again_is_resumed_with_a_snapshot() -> anyhow::Result<()> {
    let server = TestServer::start();
    let mut player = Player::matchmake(&server, "arena").await?;
    let window = u64::from(player.welcome.window);
    // Read frames without acking until the server stops sending: at most `window` frames.
    let mut unacked_frames = 0;
    let mut last_tick = player.state.tick();
    while let Ok(Ok(received)) =
        tokio::time::timeout(Duration::from_millis(500), player.connection.receive()).await
    {
        let Received::Batch(messages) = received else {
            anyhow::bail!("closed")
        };
        for message in messages {
            if let ServerMessage::Delta(delta) = message {
                player.state.apply(&delta)?;
                last_tick = delta.tick;
                unacked_frames += 1;
            }
        }
        assert!(
            unacked_frames <= window,
            "never more than the window in flight"
        );
    }
    assert!(
        unacked_frames >= window - 1,
        "the window was used before pausing"
    );
    player.ack().await?;
    // The next frame is a fresh snapshot beyond the last delta.
    let Received::Batch(messages) = player.connection.receive().await? else {
        anyhow::bail!("closed")
    };
    let Some(ServerMessage::Snapshot(snapshot)) = messages.into_iter().next() else {
        anyhow::bail!("expected a snapshot to resume")
    };
    assert!(snapshot.tick > last_tick);
    Ok(())
}

#[tokio::test]
async fn a_full_room_refuses_more_seats() -> anyhow::Result<()> {
    let server = TestServer::start();
    let room = create_room(&server, "arena", 2).await?;
    assert_eq!(reserve(&server, &room).await?.status, 200);
    assert_eq!(reserve(&server, &room).await?.status, 200);
    let refused = reserve(&server, &room).await?;
    assert_eq!(refused.status, 409);
    assert_eq!(refused.error_code(), Some("room_full"));
    Ok(())
}

#[tokio::test]
async fn matchmaking_fills_a_room_then_opens_another() -> anyhow::Result<()> {
    let server = TestServer::start();
    let mut rooms = std::collections::BTreeMap::<String, u32>::new();
    for _ in 0..3 {
        let seat = matchmake(&server, "tictactoe").await?;
        *rooms.entry(seat.room_id).or_default() += 1;
    }
    let mut counts: Vec<u32> = rooms.into_values().collect();
    counts.sort_unstable();
    assert_eq!(
        counts,
        vec![1, 2],
        "two seats fill the first tictactoe room"
    );
    Ok(())
}

#[tokio::test]
async fn an_empty_room_is_disposed_after_its_grace_period() -> anyhow::Result<()> {
    let mut config = test_config();
    config.rooms.empty_grace_ms = 300;
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let room = create_room(&server, "arena", 4).await?;
    let url = format!("{}/v1/rooms", server.http_url());
    eventually(|| async {
        let rooms = get_json(&url).await?;
        let listed = rooms["rooms"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|info| info["room_id"] == room.as_str());
        Ok((!listed).then_some(()))
    })
    .await?;
    assert_eq!(
        reserve(&server, &room).await?.error_code(),
        Some("room_not_found")
    );
    Ok(())
}

#[tokio::test]
async fn a_room_with_a_player_is_not_disposed() -> anyhow::Result<()> {
    let mut config = test_config();
    config.rooms.empty_grace_ms = 100;
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let mut player = Player::matchmake(&server, "arena").await?;
    for _ in 0..10 {
        player.next_tick().await?;
    }
    let rooms = get_json(&format!("{}/v1/rooms", server.http_url())).await?;
    assert_eq!(rooms["rooms"][0]["players"], 1);
    Ok(())
}

#[tokio::test]
async fn shutdown_notifies_connected_clients() -> anyhow::Result<()> {
    let server = TestServer::start();
    let mut player = Player::matchmake(&server, "arena").await?;
    player.next_tick().await?;
    let stopping = tokio::spawn(server.shutdown());
    let (_, close) = player.connection.expect_close().await?;
    assert_eq!(close, Some(CloseCode::ServerShutdown));
    stopping.await??;
    Ok(())
}

#[tokio::test]
async fn a_client_that_never_says_hello_is_closed() -> anyhow::Result<()> {
    let mut config = test_config();
    config.session.hello_timeout_ms = 200;
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let seat = matchmake(&server, "arena").await?;
    let mut connection = Connection::open(&seat.ws_url).await?;
    let (_, close) = connection.expect_close().await?;
    assert_eq!(close, Some(CloseCode::IdleTimeout));
    Ok(())
}

#[tokio::test]
async fn messages_before_hello_are_refused() -> anyhow::Result<()> {
    let server = TestServer::start();
    let seat = matchmake(&server, "arena").await?;
    let mut connection = Connection::open(&seat.ws_url).await?;
    connection
        .send_raw(codec::encode_client(&ClientMessage::Ack(
            ludus_protocol::Ack { tick: 1 },
        )))
        .await?;
    connection
        .expect_refusal(ErrorCode::UnexpectedMessage, CloseCode::ProtocolError)
        .await?;
    Ok(())
}

#[tokio::test]
async fn lobby_errors_are_json_with_a_code() -> anyhow::Result<()> {
    let server = TestServer::start();
    let base = server.http_url();
    let unknown = post(
        &format!("{base}/v1/matchmake"),
        serde_json::json!({"room_type": "chess"}),
    )
    .await?;
    assert_eq!(
        (unknown.status, unknown.error_code()),
        (400, Some("unknown_room_type"))
    );
    let malformed = post(
        &format!("{base}/v1/rooms"),
        serde_json::json!({"room_typo": "arena"}),
    )
    .await?;
    assert_eq!(
        (malformed.status, malformed.error_code()),
        (400, Some("invalid_request"))
    );
    let bad_id = post(
        &format!("{base}/v1/rooms"),
        serde_json::json!({"room_type": "arena", "room_id": "no spaces"}),
    )
    .await?;
    assert_eq!(bad_id.error_code(), Some("invalid_room_id"));
    let too_big = post(
        &format!("{base}/v1/rooms"),
        serde_json::json!({"room_type": "arena", "max_players": 1000}),
    )
    .await?;
    assert_eq!(too_big.error_code(), Some("invalid_request"));
    let created = post(
        &format!("{base}/v1/rooms"),
        serde_json::json!({"room_type": "arena", "room_id": "mine"}),
    )
    .await?;
    assert_eq!(created.status, 201);
    let duplicate = post(
        &format!("{base}/v1/rooms"),
        serde_json::json!({"room_type": "arena", "room_id": "mine"}),
    )
    .await?;
    assert_eq!(
        (duplicate.status, duplicate.error_code()),
        (409, Some("room_exists"))
    );
    let missing = reserve(&server, "nowhere").await?;
    assert_eq!(
        (missing.status, missing.error_code()),
        (404, Some("room_not_found"))
    );
    Ok(())
}

#[tokio::test]
async fn listing_filters_by_type_and_counts_players() -> anyhow::Result<()> {
    let server = TestServer::start();
    let _player = Player::matchmake(&server, "arena").await?;
    create_room(&server, "tictactoe", 2).await?;
    let arena = get_json(&format!("{}/v1/rooms?room_type=arena", server.http_url())).await?;
    let rooms = arena["rooms"].as_array().cloned().unwrap_or_default();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0]["players"], 1);
    assert_eq!(rooms[0]["room_type"], "arena");
    Ok(())
}

#[tokio::test]
async fn metrics_expose_what_an_operator_needs() -> anyhow::Result<()> {
    let server = TestServer::start();
    let mut player = Player::matchmake(&server, "arena").await?;
    player.input(arena_move(1.0, 1.0)).await?;
    for _ in 0..3 {
        player.next_tick().await?;
    }
    let (status, text) = get_text(&format!("{}/metrics", server.http_url())).await?;
    assert_eq!(status, 200);
    for name in [
        "ludus_rooms 1",
        "ludus_sessions 1",
        "ludus_tick_duration_seconds_bucket",
        "ludus_tick_overruns_total",
        "ludus_messages_sent_total",
        "ludus_bytes_sent_total",
        "ludus_deltas_skipped_total",
        "ludus_inputs_total 1",
    ] {
        assert!(text.contains(name), "missing {name}");
    }
    let (status, health) = get_text(&format!("{}/healthz", server.http_url())).await?;
    assert_eq!(status, 200);
    assert!(health.contains("\"ok\""));
    Ok(())
}

#[tokio::test]
async fn tictactoe_is_playable_and_refuses_moves_out_of_turn() -> anyhow::Result<()> {
    let server = TestServer::start();
    let room = create_room(&server, "tictactoe", 2).await?;
    let x_seat: Seat = serde_json::from_value(reserve(&server, &room).await?.body)?;
    let o_seat: Seat = serde_json::from_value(reserve(&server, &room).await?.body)?;
    let mut x = Player::join(&x_seat).await?;
    let mut o = Player::join(&o_seat).await?;
    let cell = |index: u8| ludus_protocol::Value::Map(vec![("cell".into(), index.into())]);
    o.input(cell(4)).await?;
    o.tick_until(20, |_| false).await.ok();
    let refused = o.private.iter().any(|message| {
        matches!(message, ServerMessage::Error(error) if error.code == ErrorCode::InvalidInput)
    });
    assert!(refused, "o moved out of turn and was told privately");
    // x has not read while o did, so its first frames are old ones: allow for them.
    x.input(cell(4)).await?;
    x.tick_until(100, |state| {
        state.entities().any(|entity| {
            entity.kind == "board"
                && entity
                    .fields
                    .get("cells")
                    .and_then(|cells| cells.as_array())
                    .and_then(|cells| cells.get(4))
                    .and_then(|cell| cell.as_u64())
                    == Some(1)
        })
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn an_operator_can_dispose_a_room_and_its_players_are_told() -> anyhow::Result<()> {
    let server = TestServer::start();
    let mut player = Player::matchmake(&server, "arena").await?;
    let room = player.welcome.room.to_string();
    let disposed = operator_delete(&format!("{}/v1/rooms/{room}", server.http_url())).await?;
    assert_eq!(disposed.status, 202, "{}", disposed.body);
    let (_, close) = player.connection.expect_close().await?;
    assert_eq!(close, Some(CloseCode::RoomDisposed));
    assert_eq!(
        reserve(&server, &room).await?.error_code(),
        Some("room_not_found")
    );
    let again = operator_delete(&format!("{}/v1/rooms/{room}", server.http_url())).await?;
    assert_eq!(
        (again.status, again.error_code()),
        (404, Some("room_not_found"))
    );
    Ok(())
}

#[tokio::test]
async fn an_unused_seat_reservation_expires_and_frees_its_seat() -> anyhow::Result<()> {
    let mut config = test_config();
    config.rooms.seat_reservation_ms = 1_000;
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let room = create_room(&server, "arena", 1).await?;
    let unused = reserve(&server, &room).await?;
    assert_eq!(unused.status, 200);
    assert_eq!(
        reserve(&server, &room).await?.error_code(),
        Some("room_full")
    );
    let seat: Seat = eventually(|| async {
        let answer = reserve(&server, &room).await?;
        Ok((answer.status == 200)
            .then(|| serde_json::from_value(answer.body))
            .transpose()?)
    })
    .await?;
    // The expired token is refused; the new one seats its player.
    let stale: Seat = serde_json::from_value(unused.body)?;
    let mut late = Connection::open(&stale.ws_url).await?;
    late.hello(&stale.token).await?;
    let (_, close) = late.expect_close().await?;
    assert_eq!(close, Some(CloseCode::Unauthorized));
    Player::join(&seat).await?;
    Ok(())
}

/// The HTTP status and JSON error code a WebSocket handshake to `url` is refused with.
async fn refused_upgrade(url: &str) -> anyhow::Result<(u16, Option<String>)> {
    use tokio_tungstenite::tungstenite::Error;
    match tokio_tungstenite::connect_async(url).await {
        Err(Error::Http(response)) => {
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default())?;
            let code = body["error"]["code"].as_str().map(str::to_owned);
            Ok((response.status().as_u16(), code))
        }
        Err(other) => Err(other.into()),
        Ok(_) => anyhow::bail!("{url} accepted a WebSocket"),
    }
}

#[tokio::test]
async fn websocket_handshakes_off_the_route_get_json_errors() -> anyhow::Result<()> {
    let server = TestServer::start();
    let ws = server.http_url().replacen("http://", "ws://", 1);
    assert_eq!(
        refused_upgrade(&format!("{ws}/v1/rooms/r-abc/seats")).await?,
        (404, Some("not_found".to_owned()))
    );
    assert_eq!(
        refused_upgrade(&format!("{ws}/v1/rooms/no%20spaces/ws")).await?,
        (400, Some("invalid_room_id".to_owned()))
    );
    // A plain GET on the WebSocket route says what is missing.
    let (status, body) = get_text(&format!("{}/v1/rooms/r-abc/ws", server.http_url())).await?;
    let body: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_request"))
    );
    Ok(())
}
