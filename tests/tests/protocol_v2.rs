//! Protocol version 2 against a real server: version 1 and version 2 clients share a room and
//! mirror the same state (quantization happens in the server's state, so "the same" is exact).

use ludus_protocol::v2::Quantization;
use ludus_protocol::{PlayerId, RoomState, Value};
use ludus_tests::compact::CompactPlayer;
use ludus_tests::{arena_move, create_room, reserve, Player, Seat, TestServer};

/// Ticks a test may read before giving up (5 s of arena ticks).
const MAX_TICKS: usize = 100;

async fn seat(server: &TestServer, room_id: &str) -> anyhow::Result<Seat> {
    let answer = reserve(server, room_id).await?;
    anyhow::ensure!(answer.status == 200, "reserve failed: {}", answer.body);
    Ok(serde_json::from_value(answer.body)?)
}

fn position(state: &RoomState, player: PlayerId) -> Option<(f32, f32)> {
    let entity = state.entities().find(|entity| {
        entity.kind == "player" && entity.fields.get("player") == Some(&Value::from(player.0))
    })?;
    let read = |name: &str| match entity.fields.get(name) {
        Some(Value::F32(value)) => Some(*value),
        _ => None,
    };
    Some((read("x")?, read("y")?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_and_version_2_players_in_one_room_mirror_the_same_state() -> anyhow::Result<()> {
    let server = TestServer::start();
    let room_id = create_room(&server, "arena", 4).await?;
    let mut plain = Player::join(&seat(&server, &room_id).await?).await?;
    let mut compact = CompactPlayer::join(&seat(&server, &room_id).await?).await?;
    plain.input(arena_move(1.0, 0.3)).await?;
    compact.input(arena_move(-0.2, 1.0)).await?;

    // Read ticks until both mirrors stand at the same tick, after both moves took effect.
    let (plain_id, compact_id) = (plain.id(), compact.id());
    let start = (
        position(compact.state(), plain_id),
        position(compact.state(), compact_id),
    );
    for _ in 0..MAX_TICKS {
        if plain.state.tick() < compact.state().tick() {
            plain.next_tick().await?;
        } else {
            compact.next_tick().await?;
        }
        let moved = position(compact.state(), plain_id) != start.0
            && position(compact.state(), compact_id) != start.1;
        if moved && plain.state.tick() == compact.state().tick() {
            break;
        }
    }
    assert_eq!(plain.state.tick(), compact.state().tick());
    assert_eq!(
        plain.state.entities().collect::<Vec<_>>(),
        compact.state().entities().collect::<Vec<_>>()
    );
    for player in [plain_id, compact_id] {
        assert_eq!(plain.state.ack(player), compact.state().ack(player));
    }

    // Both see positions on the arena's grid: quantized by the server, not by the wire.
    let grid = Quantization::new(0.0, 1000.0, 0.05)?;
    for player in [plain_id, compact_id] {
        let (x, y) = position(&plain.state, player).expect("player entity");
        assert_eq!(grid.snap(f64::from(x)), x);
        assert_eq!(grid.snap(f64::from(y)), y);
    }
    assert_ne!(position(compact.state(), compact_id), start.1, "moved");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_moving_player_costs_a_version_2_client_about_20_bytes_a_tick() -> anyhow::Result<()> {
    let server = TestServer::start();
    let room_id = create_room(&server, "arena", 4).await?;
    let mut compact = CompactPlayer::join(&seat(&server, &room_id).await?).await?;
    compact.input(arena_move(1.0, 1.0)).await?;
    for _ in 0..20 {
        compact.next_tick().await?;
    }
    // One moving player and its ack: a v1 frame of this is about 100 bytes. The median skips
    // the first frames (the new player in full) and coin pickups (an event, a new coin).
    let mut sizes = compact.delta_frame_bytes.clone();
    sizes.sort_unstable();
    let median = sizes.get(sizes.len() / 2).copied().unwrap_or(usize::MAX);
    assert!(median <= 20, "v2 delta frames of {sizes:?} bytes");
    Ok(())
}
