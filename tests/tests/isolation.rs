//! A panic in one room's game logic ends that room with `room_crashed` and leaves every other
//! room (on the same room thread, too) running.

use ludus_protocol::{CloseCode, PlayerId, Value};
use ludus_server::game::{arena, Game, GameContext, GameRegistry, InputRejected, RoomType};
use ludus_tests::*;
use std::sync::Arc;
use std::time::Duration;

/// A game that panics in its tick once a player has asked it to (the simulation's unit tests
/// cover a panic in the input hook; this covers the tick).
#[derive(Default)]
struct Fragile {
    asked_to_break: bool,
}

impl Game for Fragile {
    fn on_input(
        &mut self,
        _: &mut GameContext<'_>,
        _: PlayerId,
        _: &Value,
    ) -> Result<(), InputRejected> {
        self.asked_to_break = true;
        Ok(())
    }
    fn on_tick(&mut self, _: &mut GameContext<'_>, _: Duration) {
        assert!(!self.asked_to_break, "fragile game broke on purpose");
    }
}

#[tokio::test]
async fn a_panicking_room_ends_alone_with_room_crashed() -> anyhow::Result<()> {
    let mut registry = GameRegistry::builtin();
    registry.register(RoomType {
        name: "fragile".to_owned(),
        tick_hz: 20,
        max_players: 4,
        factory: Arc::new(|_| Box::<Fragile>::default()),
    });
    let mut config = test_config();
    config.server.room_threads = 1; // both rooms share one thread
    let server = TestServer::start_with(config, registry);
    let mut survivor = Player::matchmake(&server, arena::NAME).await?;
    let mut victim = Player::matchmake(&server, "fragile").await?;
    victim.input(Value::Nil).await?;
    let (_, close) = victim.connection.expect_close().await?;
    assert_eq!(close, Some(CloseCode::RoomCrashed));
    for _ in 0..5 {
        survivor.next_tick().await?;
    }
    assert_eq!(metric(&server, "ludus_room_crashes_total").await?, 1.0);
    let rooms = get_json(&format!("{}/v1/rooms", server.http_url())).await?;
    assert_eq!(
        rooms["rooms"].as_array().map(Vec::len),
        Some(1),
        "only the crashed room is gone"
    );
    Ok(())
}
