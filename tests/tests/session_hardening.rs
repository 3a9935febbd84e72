//! The WebSocket session's trust boundaries, over real sockets: a control-frame flood is
//! rate-limited and never answered before `hello`; shutdown closes every session with 4011
//! within one deadline; a client that stops reading costs a bounded amount of memory, still gets
//! its close frame when it reads again, and is told `too_slow`, not `idle_timeout`.

use ludus_protocol::{CloseCode, ErrorCode, PlayerId, ServerMessage, Value};
use ludus_server::game::{arena, Game, GameContext, GameRegistry, InputRejected, RoomType};
use ludus_server::session::{MAX_QUEUED_BYTES, SEND_BUFFER_BYTES};
use ludus_tests::*;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Pings a flooding client sends before `hello`: far more than the kick rule lets through.
const FLOOD_PINGS: u32 = 20_000;

/// Payload of the event the firehose game broadcasts every tick.
const FIREHOSE_EVENT_BYTES: usize = 16 * 1024;

/// Frames the kernel may hold beyond the server's send buffer: Linux lets one write overshoot
/// the buffer by up to one segment, 64 KiB on loopback.
const KERNEL_OVERSHOOT_BYTES: usize = 64 * 1024;

/// A game that broadcasts a large event every tick, so a client that stops reading falls behind
/// in bytes long before flow control pauses it.
struct Firehose;

impl Game for Firehose {
    fn on_input(
        &mut self,
        _: &mut GameContext<'_>,
        _: PlayerId,
        _: &Value,
    ) -> Result<(), InputRejected> {
        Ok(())
    }

    fn on_tick(&mut self, ctx: &mut GameContext<'_>, _: Duration) {
        ctx.broadcast(Value::Binary(vec![7; FIREHOSE_EVENT_BYTES]));
    }
}

fn firehose_registry() -> GameRegistry {
    let mut registry = GameRegistry::builtin();
    registry.register(RoomType {
        name: "firehose".to_owned(),
        tick_hz: 50,
        max_players: 1,
        factory: Arc::new(|_| Box::new(Firehose)),
    });
    registry
}

/// A config where nothing but the unread-bytes bound closes a client that stops reading.
fn firehose_config() -> ludus_server::config::ServerConfig {
    let mut config = test_config();
    config.session.heartbeat_interval_ms = 30_000;
    config.session.idle_timeout_ms = 60_000;
    config.session.slow_client_timeout_ms = 60_000;
    config.session.flow_window_ms = 60_000;
    // The kick is watched through the room listing: no seat may stay for a resume.
    config.rooms.resume_window_ms = 0;
    config
}

/// Waits until the room has let its member go (neither seated nor reserved): the session has
/// started closing, the first moment a test can observe from outside.
async fn wait_until_left(server: &TestServer, room_id: &str) -> anyhow::Result<()> {
    eventually(|| async {
        let seats = room_seats(server, room_id).await?;
        Ok(matches!(seats, Some((0, 0)) | None).then_some(()))
    })
    .await
}

/// Joins a firehose room with `hello` and then reads nothing, until the server closes it.
async fn fall_behind(
    server: &TestServer,
    receive_buffer: Option<u32>,
) -> anyhow::Result<(Connection, String)> {
    let seat = matchmake(server, "firehose").await?;
    let mut connection = match receive_buffer {
        Some(bytes) => Connection::open_with_receive_buffer(&seat.ws_url, bytes).await?,
        None => Connection::open(&seat.ws_url).await?,
    };
    connection.hello(&seat.token).await?;
    wait_until_left(server, &seat.room_id).await?;
    Ok((connection, seat.room_id))
}

#[tokio::test]
async fn a_ping_flood_before_hello_is_kicked_unanswered_while_other_rooms_tick(
) -> anyhow::Result<()> {
    let mut config = test_config();
    config.server.room_threads = 1; // the flood and the other room share one thread
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let mut player = Player::matchmake(&server, arena::NAME).await?;
    let target_room = create_room(&server, arena::NAME, 4).await?;
    let mut flooder = Connection::open(&ws_url(&server, &target_room)).await?;
    let flood = tokio::spawn(async move {
        for n in 0..FLOOD_PINGS {
            flooder
                .feed(Message::Ping(n.to_be_bytes().to_vec().into()))
                .await?;
            if n % 512 == 511 {
                flooder.flush().await?;
            }
        }
        flooder.flush().await?;
        let mut pongs = 0;
        let mut errors = Vec::new();
        for _ in 0..100_000 {
            match flooder.receive_message().await? {
                Some(Message::Pong(_)) => pongs += 1,
                Some(Message::Binary(bytes)) => {
                    for message in ludus_protocol::codec::decode_batch(&bytes)? {
                        if let ServerMessage::Error(error) = message {
                            errors.push(error.code);
                        }
                    }
                }
                Some(Message::Close(frame)) => {
                    let close = frame.and_then(|frame| CloseCode::from_code(u16::from(frame.code)));
                    return anyhow::Ok((pongs, errors, close));
                }
                None => return anyhow::Ok((pongs, errors, None)),
                Some(_) => {}
            }
        }
        anyhow::bail!("the flooding connection was never closed")
    });
    // Meanwhile the other room keeps ticking, frame after frame. Bounded: the flood ends within
    // the close grace (or, if it were never kicked, the hello timeout).
    let mut last_tick = player.state.tick();
    let mut ticks_seen = 0;
    while ticks_seen < 10_000 && (!flood.is_finished() || ticks_seen < 5) {
        player.next_tick().await?;
        let tick = player.state.tick();
        anyhow::ensure!(tick > last_tick, "tick {tick} after {last_tick}");
        last_tick = tick;
        ticks_seen += 1;
    }
    let (pongs, errors, close) = flood.await??;
    assert_eq!(pongs, 0, "no pong before hello");
    assert_eq!(close, Some(CloseCode::RateLimited));
    assert!(errors.contains(&ErrorCode::RateLimited), "{errors:?}");
    let kicked = r#"ludus_sessions_closed_total{reason="rate_limited"}"#;
    eventually(|| async { Ok((metric(&server, kicked).await? == 1.0).then_some(())) }).await?;
    Ok(())
}

#[tokio::test]
async fn a_joined_client_gets_a_pong_with_its_ping_payload() -> anyhow::Result<()> {
    let server = TestServer::start();
    let mut player = Player::matchmake(&server, arena::NAME).await?;
    player
        .connection
        .feed(Message::Ping(b"nonce-42".to_vec().into()))
        .await?;
    player.connection.flush().await?;
    for _ in 0..1_000 {
        match player.connection.receive_message().await? {
            Some(Message::Pong(payload)) => {
                assert_eq!(&payload[..], b"nonce-42");
                return Ok(());
            }
            Some(Message::Close(frame)) => anyhow::bail!("closed: {frame:?}"),
            None => anyhow::bail!("connection ended"),
            Some(_) => {}
        }
    }
    anyhow::bail!("no pong")
}

#[tokio::test]
async fn shutdown_closes_sessions_before_hello_and_joined_with_4011_within_its_timeout(
) -> anyhow::Result<()> {
    const SHUTDOWN_TIMEOUT_MS: u64 = 4_000;
    /// Thread joins and the test's own scheduling on a busy machine.
    const MARGIN_MS: u64 = 1_000;
    let mut config = test_config();
    config.server.shutdown_timeout_ms = SHUTDOWN_TIMEOUT_MS;
    // Nothing but the shutdown may close the silent socket, and no ping may reach it first.
    config.session.hello_timeout_ms = 60_000;
    config.session.heartbeat_interval_ms = 60_000;
    config.session.idle_timeout_ms = 120_000;
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let mut player = Player::matchmake(&server, arena::NAME).await?;
    // Never sends `hello`, never reads until the server is gone.
    let mut silent = Connection::open(&ws_url(&server, &player.welcome.room.to_string())).await?;
    eventually(|| async { Ok((metric(&server, "ludus_sessions").await? == 2.0).then_some(())) })
        .await?;
    tokio::time::timeout(
        Duration::from_millis(SHUTDOWN_TIMEOUT_MS + MARGIN_MS),
        server.shutdown(),
    )
    .await
    .map_err(|_| anyhow::anyhow!("shutdown overran its timeout"))??;
    let (_, silent_close) = silent.expect_close().await?;
    assert_eq!(silent_close, Some(CloseCode::ServerShutdown));
    let (_, player_close) = player.connection.expect_close().await?;
    assert_eq!(player_close, Some(CloseCode::ServerShutdown));
    Ok(())
}

#[tokio::test]
async fn the_kernel_holds_a_bounded_amount_for_a_client_that_stops_reading() -> anyhow::Result<()> {
    let server = TestServer::start_with(firehose_config(), firehose_registry());
    // Default buffers on the client side, as a real client has.
    let (connection, _) = fall_behind(&server, None).await?;
    // Everything the server accepted for the client: what the client's kernel holds, the
    // server's kernel send buffer (Linux doubles the requested size, and one write may overshoot
    // it), and the outbox queue at the moment it passed its bound (one frame over it).
    let sent = metric(&server, "ludus_bytes_sent_total").await? as usize;
    let frame = FIREHOSE_EVENT_BYTES + 1024;
    let bound = connection.receive_buffer_bytes()?
        + 2 * SEND_BUFFER_BYTES
        + KERNEL_OVERSHOOT_BYTES
        + MAX_QUEUED_BYTES
        + frame;
    assert!(sent <= bound, "{sent} bytes sent, bound {bound}");
    let kicked = r#"ludus_sessions_closed_total{reason="too_slow"}"#;
    eventually(|| async { Ok((metric(&server, kicked).await? == 1.0).then_some(())) }).await?;
    Ok(())
}

#[tokio::test]
async fn a_client_kicked_for_unread_frames_reads_its_close_frame_next() -> anyhow::Result<()> {
    let server = TestServer::start_with(firehose_config(), firehose_registry());
    let (mut connection, _) = fall_behind(&server, Some(4096)).await?;
    // The client reads again, inside the close grace: what the kernels held and at most one
    // partly written frame, then the close frame, never the queue that made it too slow.
    let mut bytes_before_close = 0;
    for _ in 0..10_000 {
        match connection.receive_message().await? {
            Some(Message::Binary(bytes)) => bytes_before_close += bytes.len(),
            Some(Message::Close(frame)) => {
                let close = frame.and_then(|frame| CloseCode::from_code(u16::from(frame.code)));
                assert_eq!(close, Some(CloseCode::TooSlow));
                assert!(
                    bytes_before_close < MAX_QUEUED_BYTES,
                    "{bytes_before_close} bytes read before the close frame"
                );
                return Ok(());
            }
            None => anyhow::bail!("no close frame before the end of the stream"),
            Some(_) => {}
        }
    }
    anyhow::bail!("no close frame")
}

#[tokio::test]
async fn a_client_that_stops_reading_and_sending_is_too_slow_even_if_idle_first(
) -> anyhow::Result<()> {
    let mut config = test_config();
    config.session.heartbeat_interval_ms = 50;
    config.session.idle_timeout_ms = 300;
    config.session.slow_client_timeout_ms = 1_000;
    config.session.flow_window_ms = 100; // two ticks at 20 Hz: paused almost at once
                                         // The kick is watched through the room listing: no seat may stay for a resume.
    config.rooms.resume_window_ms = 0;
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let seat = matchmake(&server, arena::NAME).await?;
    let mut connection = Connection::open(&seat.ws_url).await?;
    connection.hello(&seat.token).await?;
    // Neither reads (so no pong answers the heartbeat) nor sends: idle at 300 ms, while the
    // slow-client timeout would take a second more.
    wait_until_left(&server, &seat.room_id).await?;
    connection
        .expect_refusal(ErrorCode::ServerBusy, CloseCode::TooSlow)
        .await?;
    let too_slow = r#"ludus_sessions_closed_total{reason="too_slow"}"#;
    eventually(|| async { Ok((metric(&server, too_slow).await? == 1.0).then_some(())) }).await?;
    let idle = r#"ludus_sessions_closed_total{reason="idle_timeout"}"#;
    assert_eq!(metric(&server, idle).await?, 0.0);
    Ok(())
}
