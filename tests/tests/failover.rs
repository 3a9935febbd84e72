//! Failover in a real cluster (own `nats-server`, real nodes, a real client): `kill -9` of the
//! node hosting a room, or a broker outage long enough to fence it, brings the room back on a
//! live node from its last checkpoint, in the next epoch, and the player resumes its seat there
//! through any node.

use ludus_protocol::{CloseCode, RoomState, ServerMessage};
use ludus_server::checkpoint::Checkpoint;
use ludus_server::cluster::checkpoints::BUCKET;
use ludus_tests::cluster::TestCluster;
use ludus_tests::resume::Dropped;
use ludus_tests::*;
use std::time::{Duration, Instant};

const LAYOUT: [(&str, &str); 3] = [("eu-1", "eu"), ("eu-2", "eu"), ("us-1", "us")];

/// Detection (a lease) plus restore, redirect and resume, on a loaded CI machine.
const BACK_WITHIN: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_killed_nodes_room_is_restored_elsewhere_and_its_player_resumes_its_seat(
) -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(&LAYOUT).await?;
    let seat = matchmake(cluster.node("eu-1"), "arena").await?;
    let host = cluster.host_of(LAYOUT.map(|(node, _)| node), &seat.ws_url)?;
    let survivor = LAYOUT
        .iter()
        .map(|(node, _)| *node)
        .find(|node| *node != host)
        .ok_or_else(|| anyhow::anyhow!("a survivor"))?;
    let mut player = Player::join(&seat).await?;
    let me = player.id();
    let epoch = player.welcome.epoch;

    // Play until a checkpoint holds an applied input of ours.
    let client = async_nats::connect(cluster.nats.url()).await?;
    let jetstream = async_nats::jetstream::new(client);
    let store = eventually(|| async { Ok(jetstream.get_key_value(BUCKET).await.ok()) }).await?;
    let mut checkpointed = None;
    for _ in 0..200 {
        player.input(arena_move(1.0, 0.0)).await?;
        player.next_tick().await?;
        if let Some(bytes) = store.get(&seat.room_id).await? {
            let checkpoint = Checkpoint::decode(&bytes)?;
            let applied = checkpoint
                .seats
                .iter()
                .find(|seat| seat.player == me)
                .map_or(0, |seat| seat.applied_seq);
            if applied >= 2 {
                checkpointed = Some((checkpoint.simulation.tick, applied));
                break;
            }
        }
    }
    let (checkpoint_tick, applied) =
        checkpointed.ok_or_else(|| anyhow::anyhow!("no checkpoint with our inputs"))?;
    let last_tick = player.state.tick();

    cluster.kill(host);
    let killed_at = Instant::now();
    let dropped = Dropped {
        ws_url: seat.ws_url.clone(),
        player,
    };
    let survivor_url = seat.ws_url.replace(
        url_host(&seat.ws_url)?,
        &cluster.node(survivor).addr().to_string(),
    );
    let (mut connection, messages, _) = eventually_within(BACK_WITHIN, || async {
        dropped.try_resume_at(&survivor_url).await
    })
    .await?;
    let back_after = killed_at.elapsed();
    let Some(ServerMessage::Welcome(welcome)) = messages.first() else {
        anyhow::bail!("a welcome first")
    };
    assert!(welcome.resumed, "the seat is taken back, not a new one");
    assert_eq!(welcome.player, me);
    assert_ne!(welcome.epoch, epoch, "a restored room is a new epoch");
    let ticks_lost = welcome
        .ticks_lost
        .ok_or_else(|| anyhow::anyhow!("the welcome says how many ticks were lost"))?;
    assert_eq!(ticks_lost, last_tick.saturating_sub(checkpoint_tick));
    let Some(ServerMessage::Snapshot(snapshot)) = messages.get(1) else {
        anyhow::bail!("a restored room answers with a snapshot")
    };
    assert!(
        snapshot.tick >= checkpoint_tick,
        "the room continues from its checkpoint: {} < {checkpoint_tick}",
        snapshot.tick
    );
    let state = RoomState::from_snapshot(snapshot.clone());
    assert!(
        state
            .entities()
            .any(|entity| entity.fields.get("player").and_then(|p| p.as_u64()) == Some(me.0)),
        "the player's entity came back"
    );
    assert_eq!(state.ack(me), Some(applied), "its acknowledged inputs too");
    // The room ticks on from there.
    let Received::Batch(next) = connection.receive().await? else {
        anyhow::bail!("closed after the resume")
    };
    let ticked = next.iter().any(
        |message| matches!(message, ServerMessage::Delta(delta) if delta.tick > checkpoint_tick),
    );
    assert!(ticked, "the restored room sends the next tick: {next:?}");
    eprintln!(
        "restored on a survivor and resumed {} ms after the kill ({ticks_lost} ticks lost)",
        back_after.as_millis()
    );
    Ok(())
}

/// `host:port` of a `ws://host:port/...` URL.
fn url_host(url: &str) -> anyhow::Result<&str> {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| anyhow::anyhow!("not a URL: {url}"))
}

#[tokio::test]
async fn a_room_fenced_by_a_long_broker_outage_comes_back_from_its_checkpoint() -> anyhow::Result<()>
{
    let mut cluster = TestCluster::start(&LAYOUT).await?;
    let seat = matchmake(cluster.node("eu-1"), "arena").await?;
    let mut player = Player::join(&seat).await?;
    let epoch = player.welcome.epoch;
    let client = async_nats::connect(cluster.nats.url()).await?;
    let jetstream = async_nats::jetstream::new(client);
    let store = eventually(|| async { Ok(jetstream.get_key_value(BUCKET).await.ok()) }).await?;
    for _ in 0..400 {
        player.next_tick().await?;
        if store.get(&seat.room_id).await?.is_some() {
            break;
        }
    }
    anyhow::ensure!(
        store.get(&seat.room_id).await?.is_some(),
        "no checkpoint written"
    );

    // Longer than the fence (0.8 of the lease): the holder stops the room, since it can no
    // longer prove nobody else holds it.
    cluster.nats.stop();
    let close = loop {
        match player.connection.receive().await? {
            Received::Batch(messages) => {
                for message in messages {
                    if let ServerMessage::Delta(delta) = message {
                        player.state.apply(&delta)?;
                    }
                }
            }
            Received::Closed(frame) => {
                break frame.and_then(|frame| CloseCode::from_code(u16::from(frame.code)))
            }
        }
    };
    assert_eq!(
        close,
        Some(CloseCode::RoomMoved),
        "the holder fenced the room"
    );
    cluster.nats.restart()?;

    // The directory is on disk: the fenced room's entry survived the broker, its incarnation
    // lapses when its node registers anew, and failover restores it from the checkpoint.
    let dropped = Dropped {
        ws_url: seat.ws_url.clone(),
        player,
    };
    let (_, messages, _) = eventually_within(BACK_WITHIN, || async {
        dropped.try_resume_at(&seat.ws_url).await
    })
    .await?;
    let Some(ServerMessage::Welcome(welcome)) = messages.first() else {
        anyhow::bail!("a welcome first")
    };
    assert!(welcome.resumed, "the seat came back with the room");
    assert!(welcome.epoch > epoch, "restored in a later epoch");
    assert!(
        welcome.ticks_lost.is_some(),
        "the welcome says what was lost"
    );
    Ok(())
}
