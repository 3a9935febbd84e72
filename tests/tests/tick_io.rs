//! Rooms read their members' sockets once per tick: what a client sends between two ticks is
//! applied at the next one, and the input bound is per seat (PROTOCOL.md §11), so one player's
//! burst costs only that player.

use ludus_protocol::{ErrorCode, ServerMessage};
use ludus_server::config::RoomTypeSection;
use ludus_server::game::GameRegistry;
use ludus_tests::*;

#[tokio::test]
async fn a_burst_of_inputs_within_one_tick_is_bounded_per_seat() -> anyhow::Result<()> {
    let mut config = test_config();
    // Two ticks a second: a burst sent at once surely lands within one tick.
    config.room_types.insert(
        "arena".to_owned(),
        RoomTypeSection {
            tick_hz: Some(2),
            ..Default::default()
        },
    );
    let per_seat = config.rooms.max_queued_inputs_per_player;
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let mut flooder = Player::matchmake(&server, "arena").await?;
    let seat = reserve(&server, &flooder.welcome.room.to_string()).await?;
    let mut calm = Player::join(&serde_json::from_value(seat.body)?).await?;

    let burst = per_seat + 12;
    let mut last_seq = 0;
    for _ in 0..burst {
        last_seq = flooder.input(arena_move(1.0, 0.0)).await?;
    }
    let calm_seq = calm.input(arena_move(0.0, 1.0)).await?;

    // Within a few ticks: the flooder is told its excess was dropped; the calm player's input
    // is applied all the same.
    let mut busy_errors = 0;
    for _ in 0..6 {
        flooder.next_tick().await?;
        busy_errors += flooder
            .private
            .drain(..)
            .filter(|message| {
                matches!(message, ServerMessage::Error(error) if error.code == ErrorCode::ServerBusy)
            })
            .count();
        if busy_errors > 0 {
            break;
        }
    }
    assert!(
        busy_errors > 0,
        "no server_busy for a burst of {burst} inputs"
    );
    let calm_id = calm.id();
    calm.tick_until(10, |state| state.ack(calm_id) >= Some(calm_seq))
        .await?;
    // The flooder's acks never reach inputs it was told were dropped all at once: at most
    // `per_seat` of the burst were applied in its tick.
    flooder.next_tick().await?;
    let acked = flooder.state.ack(flooder.id()).unwrap_or(0);
    assert!(acked < last_seq, "acked {acked} of {last_seq}");
    Ok(())
}

#[tokio::test]
async fn inputs_sent_between_ticks_are_all_applied_in_order() -> anyhow::Result<()> {
    let server = TestServer::start();
    let mut player = Player::matchmake(&server, "arena").await?;
    let mut last = 0;
    for _ in 0..3 {
        last = player.input(arena_move(1.0, 0.0)).await?;
    }
    let id = player.id();
    player
        .tick_until(20, |state| state.ack(id) == Some(last))
        .await?;
    Ok(())
}
