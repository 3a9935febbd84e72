//! Live drain in a real cluster (own `nats-server`, real nodes, a real client): a drained node
//! hands its room, stopped at a tick boundary, to the next owner; the player gets 4017
//! `room_moving`, resumes there through the old node's redirect with no tick lost, and the room
//! ticks on in the next epoch. SIGTERM drains too, and a drained node takes no new rooms.

use ludus_protocol::{CloseCode, RoomState, ServerMessage};
use ludus_tests::cluster::TestCluster;
use ludus_tests::resume::Dropped;
use ludus_tests::*;
use std::time::{Duration, Instant};

const LAYOUT: [(&str, &str); 3] = [("eu-1", "eu"), ("eu-2", "eu"), ("us-1", "us")];

/// A handover plus the resume, on a loaded CI machine.
const BACK_WITHIN: Duration = Duration::from_secs(15);

/// Plays (acking every tick) until the server closes; answers the close code.
async fn play_until_closed(player: &mut Player) -> anyhow::Result<Option<CloseCode>> {
    for _ in 0..2_000 {
        match player.connection.receive().await? {
            Received::Batch(messages) => {
                for message in messages {
                    match message {
                        ServerMessage::Delta(delta) => player.state.apply(&delta)?,
                        ServerMessage::Snapshot(snapshot) => {
                            player.state = RoomState::from_snapshot(snapshot)
                        }
                        _ => {}
                    }
                }
                player.ack().await?;
            }
            Received::Closed(frame) => {
                return Ok(frame.and_then(|frame| CloseCode::from_code(u16::from(frame.code))))
            }
        }
    }
    anyhow::bail!("the room never closed")
}

/// What a resume after a handover brought.
struct Moved {
    /// The player, continuing on the new owner.
    player: Player,
    /// The welcome's epoch.
    epoch: u64,
    /// The URL the new owner answered on.
    url: String,
    /// From the close to the resumed state.
    back_after: Duration,
}

/// Resumes through `url` after a 4017 and checks that nothing was lost.
async fn resume_after_move(dropped: Dropped, url: &str) -> anyhow::Result<Moved> {
    let closed_at = Instant::now();
    let last_tick = dropped.player.state.tick();
    let (connection, messages, url) =
        eventually_within(BACK_WITHIN, || async { dropped.try_resume_at(url).await }).await?;
    let back_after = closed_at.elapsed();
    let mut messages = messages.into_iter();
    let Some(ServerMessage::Welcome(welcome)) = messages.next() else {
        anyhow::bail!("a welcome first")
    };
    assert!(welcome.resumed, "the seat travelled with the room");
    assert_eq!(welcome.player, dropped.player.id());
    assert_eq!(
        welcome.ticks_lost,
        Some(0),
        "a handed-over room continues from the exact state its members last saw"
    );
    let Some(ServerMessage::Snapshot(snapshot)) = messages.next() else {
        anyhow::bail!("a new epoch answers with a snapshot")
    };
    // The last tick the old owner ran; a member behind its flow window saw less of it.
    assert!(
        snapshot.tick >= last_tick,
        "the new owner starts from the old one's last tick: {} < {last_tick}",
        snapshot.tick
    );
    let epoch = welcome.epoch;
    let Dropped { mut player, .. } = dropped;
    player.state = RoomState::from_snapshot(snapshot);
    player.connection = connection;
    player.welcome = welcome;
    player.ack().await?;
    Ok(Moved {
        player,
        epoch,
        url,
        back_after,
    })
}

#[tokio::test]
async fn a_drained_nodes_room_moves_with_its_state_and_its_player_resumes_without_a_gap(
) -> anyhow::Result<()> {
    let mut cluster = TestCluster::start_configured(&LAYOUT, &[], |config| {
        config.cluster.drain_on_shutdown = true;
    })
    .await?;
    let seat = matchmake(cluster.node("eu-1"), "arena").await?;
    let host = cluster.host_of(LAYOUT.map(|(node, _)| node), &seat.ws_url)?;
    let mut player = Player::join(&seat).await?;
    let me = player.id();
    let first_epoch = player.welcome.epoch;
    for _ in 0..5 {
        player.input(arena_move(1.0, 0.0)).await?;
        player.next_tick().await?;
    }

    // A seat reserved before the drain and taken after it: the reservation moves with the room.
    let reserved = reserve(cluster.node(host), &seat.room_id).await?;
    assert_eq!(reserved.status, 200, "{:?}", reserved.body);
    let late_seat: Seat = serde_json::from_value(reserved.body)?;

    // POST /v1/admin/drain needs the operator token.
    let drain_url = format!("{}/v1/admin/drain", cluster.node(host).http_url());
    let refused = post(&drain_url, serde_json::json!({})).await?;
    assert_eq!(refused.status, 401, "{:?}", refused.body);
    let answer = operator_post(&drain_url, serde_json::json!({})).await?;
    assert_eq!(answer.status, 202, "{:?}", answer.body);
    assert_eq!(answer.body["draining"], true);

    let close = play_until_closed(&mut player).await?;
    assert_eq!(close, Some(CloseCode::RoomMoving));
    let dropped = Dropped {
        ws_url: seat.ws_url.clone(),
        player,
    };
    // Through the old node: it redirects to the new owner.
    let moved = resume_after_move(dropped, &seat.ws_url).await?;
    assert_eq!(
        moved.epoch,
        first_epoch + 1,
        "the new owner runs the next epoch"
    );
    let owner = cluster.host_of(LAYOUT.map(|(node, _)| node), &moved.url)?;
    assert_ne!(owner, host);
    let mut player = moved.player;
    let before = player.state.tick();
    let delta = loop {
        if let Some(delta) = player.next_tick().await? {
            break delta;
        }
    };
    assert_eq!(
        delta.tick,
        before + 1,
        "the next tick follows without a gap"
    );
    assert!(
        player
            .state
            .entities()
            .any(|entity| entity.fields.get("player").and_then(|p| p.as_u64()) == Some(me.0)),
        "the player's entity moved with the room"
    );
    eprintln!(
        "moved to {owner}, resumed {} ms after the close",
        moved.back_after.as_millis()
    );

    // The late seat, taken through the old node: redirected, and reserved on the new owner.
    let mut late = Connection::open(&late_seat.ws_url).await?;
    late.hello(&late_seat.token).await?;
    let Received::Batch(answer) = late.receive().await? else {
        anyhow::bail!("closed instead of redirecting")
    };
    let Some(ServerMessage::Redirect(redirect)) = answer.first() else {
        anyhow::bail!("the old node redirects a join: {answer:?}")
    };
    assert_eq!(
        cluster.host_of(LAYOUT.map(|(node, _)| node), &redirect.ws_url)?,
        owner
    );
    let mut late = Connection::open(&redirect.ws_url).await?;
    late.hello(&late_seat.token).await?;
    let Received::Batch(answer) = late.receive().await? else {
        anyhow::bail!("closed instead of welcoming")
    };
    assert!(
        matches!(answer.first(), Some(ServerMessage::Welcome(_))),
        "the reservation moved with the room: {answer:?}"
    );

    // The drained node holds nothing, says so, and places new rooms elsewhere.
    let drained = cluster.node(host);
    eventually(|| async {
        let health = get_json(&format!("{}/healthz", drained.http_url())).await?;
        Ok((health["rooms"] == 0 && health["draining"] == true).then_some(()))
    })
    .await?;
    assert!(metric(drained, "ludus_handoffs_total{outcome=\"moved\"}").await? >= 1.0);
    for _ in 0..4 {
        let seat = matchmake(drained, "arena").await?;
        assert_ne!(
            cluster.host_of(LAYOUT.map(|(node, _)| node), &seat.ws_url)?,
            host,
            "a draining node takes no new room"
        );
    }

    // SIGTERM of the new owner drains it too: the room moves once more, to the third node.
    let (shutdown, close) = tokio::join!(cluster.shutdown(owner), play_until_closed(&mut player));
    shutdown?;
    assert_eq!(close?, Some(CloseCode::RoomMoving));
    let dropped = Dropped {
        ws_url: moved.url.clone(),
        player,
    };
    let third = LAYOUT
        .iter()
        .map(|(node, _)| *node)
        .find(|node| *node != host && *node != owner)
        .ok_or_else(|| anyhow::anyhow!("a third node"))?;
    // The owner is gone by now: resume through the third node, which redirects to itself or
    // answers directly.
    let third_url = moved.url.replace(
        &url_host(&moved.url)?,
        &cluster.node(third).addr().to_string(),
    );
    let again = resume_after_move(dropped, &third_url).await?;
    assert_eq!(again.epoch, first_epoch + 2);
    Ok(())
}

/// `host:port` of a `ws://host:port/...` URL.
fn url_host(url: &str) -> anyhow::Result<String> {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("not a URL: {url}"))
}
