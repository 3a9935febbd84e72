//! Room checkpoints in a real cluster (own `nats-server`, real nodes, a real client): a playing
//! room writes its state to JetStream, the checkpoint restores to exactly the state the client
//! saw at that tick, and a room that ends for good takes its checkpoint with it.

use ludus_protocol::{Entity, RoomState};
use ludus_server::checkpoint::Checkpoint;
use ludus_server::cluster::checkpoints::BUCKET;
use ludus_server::game::{GameRegistry, RoomOptions};
use ludus_server::simulation::Simulation;
use ludus_tests::cluster::TestCluster;
use ludus_tests::*;
use std::collections::BTreeMap;
use std::time::Duration;

const LAYOUT: [(&str, &str); 3] = [("eu-1", "eu"), ("eu-2", "eu"), ("us-1", "us")];

/// Ticks of play recorded while waiting for a checkpoint of one of them (at 20 Hz and one
/// checkpoint a second, several land in this span).
const RECORDED_TICKS: usize = 200;

fn entities(state: &RoomState) -> Vec<Entity> {
    state.entities().cloned().collect()
}

async fn read_checkpoint(
    store: &async_nats::jetstream::kv::Store,
    room_id: &str,
) -> anyhow::Result<Option<Checkpoint>> {
    let Some(bytes) = store.get(room_id).await? else {
        return Ok(None);
    };
    Ok(Some(Checkpoint::decode(&bytes)?))
}

#[tokio::test]
async fn a_playing_room_checkpoints_its_exact_state_and_forgets_it_when_it_ends(
) -> anyhow::Result<()> {
    let cluster = TestCluster::start(&LAYOUT).await?;
    let entry = cluster.node("eu-1");
    let seat = matchmake(entry, "arena").await?;
    let mut player = Player::join(&seat).await?;
    let me = player.id();
    let client = async_nats::connect(cluster.nats.url()).await?;
    let jetstream = async_nats::jetstream::new(client);
    let store = eventually(|| async { Ok(jetstream.get_key_value(BUCKET).await.ok()) }).await?;

    // Play, remembering the mirror at every tick, until a checkpoint of a remembered tick
    // (taken after our inputs were applied) is in the bucket.
    let mut seen: BTreeMap<u64, Vec<Entity>> = BTreeMap::new();
    let mut found = None;
    for step in 0..RECORDED_TICKS {
        let seq = player.input(arena_move(1.0, 0.5)).await?;
        player.next_tick().await?;
        seen.insert(player.state.tick(), entities(&player.state));
        if step % 5 != 4 {
            continue;
        }
        if let Some(checkpoint) = read_checkpoint(&store, &seat.room_id).await? {
            let applied = checkpoint
                .seats
                .iter()
                .find(|seat| seat.player == me)
                .map(|seat| seat.applied_seq);
            if seen.contains_key(&checkpoint.simulation.tick) && applied.is_some_and(|a| a > 1) {
                found = Some((checkpoint, seq));
                break;
            }
        }
    }
    let (checkpoint, _) = found.ok_or_else(|| anyhow::anyhow!("no checkpoint of a played tick"))?;
    assert_eq!(checkpoint.room_id, seat.room_id);
    assert_eq!(checkpoint.room_type, "arena");
    assert_eq!(checkpoint.epoch, player.welcome.epoch);
    let tick = checkpoint.simulation.tick;
    assert_eq!(
        checkpoint.simulation.entities, seen[&tick],
        "the checkpoint holds what every client saw at tick {tick}"
    );
    let seat_record = checkpoint
        .seats
        .iter()
        .find(|seat| seat.player == me)
        .ok_or_else(|| anyhow::anyhow!("the player's seat is in the checkpoint"))?;
    assert!(!seat_record.away);
    assert_eq!(seat_record.session, player.welcome.session);

    // The checkpoint restores into a simulation holding the same state at the same tick.
    let registry = GameRegistry::builtin();
    let arena = registry
        .get("arena")
        .ok_or_else(|| anyhow::anyhow!("arena"))?;
    let game = (arena.factory)(&RoomOptions {
        room_id: ludus_protocol::RoomId::parse(&seat.room_id)?,
        max_players: arena.max_players,
    });
    let restored = Simulation::restore(
        game,
        &checkpoint.simulation,
        &checkpoint.seats,
        checkpoint.epoch + 1,
        Duration::from_millis(50),
        64,
    )?;
    assert_eq!(restored.tick(), tick);
    assert_eq!(restored.snapshot().entities, seen[&tick]);

    let mut written = 0.0;
    for (node, _) in LAYOUT {
        written += metric(
            cluster.node(node),
            "ludus_checkpoints_total{outcome=\"written\"}",
        )
        .await?;
    }
    assert!(written >= 1.0, "ludus_checkpoints_total counts the writes");

    // Disposed for good (through any node): no node may bring it back.
    let disposed =
        operator_delete(&format!("{}/v1/rooms/{}", entry.http_url(), seat.room_id)).await?;
    assert_eq!(disposed.status, 202, "{}", disposed.body);
    eventually(|| async {
        let gone = store.get(&seat.room_id).await?.is_none();
        Ok(gone.then_some(()))
    })
    .await?;
    Ok(())
}
