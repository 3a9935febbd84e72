//! One owner per room, really (issue 8, D1–D6): every test runs real nodes on loopback and its
//! own `nats-server`, and waits on observable conditions (`/healthz`, listings, close frames)
//! with bounded timeouts.

use ludus_protocol::{CloseCode, ServerMessage};
use ludus_tests::child::ChildNode;
use ludus_tests::cluster::{TestCluster, LEASE_MS, SETTLE_WAIT};
use ludus_tests::*;
use std::path::Path;
use std::time::Duration;

const LAYOUT: [(&str, &str); 3] = [("eu-1", "eu"), ("eu-2", "eu"), ("us-1", "us")];

/// How long after a lease stops being renewed every other node has stopped listing its rooms:
/// a lease of local receipt time, plus a heartbeat of watch delivery and polling slack.
const LAPSE_BOUND: Duration = Duration::from_millis(LEASE_MS + 1_500);

/// How long after a crashed node is started again its old rooms may stay listed elsewhere:
/// well under a lease, since its new registration retires them without waiting for a lapse.
const RESTART_BOUND: Duration = Duration::from_millis(LEASE_MS * 2 / 3);

fn node_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ludus-test-node"))
}

async fn listed_ids(url: &str) -> anyhow::Result<Vec<String>> {
    let rooms = get_json(&format!("{url}/v1/rooms")).await?;
    Ok(rooms["rooms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|room| room["room_id"].as_str().map(str::to_owned))
        .collect())
}

/// Asks `node` over NATS to host `room_id` itself (bypassing placement, as nodes with diverging
/// views would); returns the reply's `result` and `code`.
async fn ask_to_create(
    nats: &async_nats::Client,
    node: &str,
    room_id: &str,
) -> anyhow::Result<(String, String)> {
    let request = serde_json::json!({
        "op": "create", "room_type": "arena", "room_id": room_id,
        "max_players": null, "metadata": null, "reserve": null,
    });
    let answer = tokio::time::timeout(
        WAIT,
        nats.request(
            format!("ludus.node.{node}.rpc"),
            serde_json::to_vec(&request)?.into(),
        ),
    )
    .await??;
    let reply: serde_json::Value = serde_json::from_slice(&answer.payload)?;
    let text = |field: &str| reply[field].as_str().unwrap_or_default().to_owned();
    Ok((text("result"), text("code")))
}

async fn wait_until_settled(url: &str) -> anyhow::Result<()> {
    eventually_within(SETTLE_WAIT, || async {
        let health = get_json(&format!("{url}/healthz")).await?;
        let cluster = &health["cluster"];
        Ok((cluster["lease_held"] == true && cluster["directory_settled"] == true).then_some(()))
    })
    .await
}

#[tokio::test]
async fn concurrent_creates_of_one_id_on_every_node_get_one_201_and_409_room_exists(
) -> anyhow::Result<()> {
    let cluster = TestCluster::start(&LAYOUT).await?;
    for round in 0..5 {
        let room_id = format!("contested-{round}");
        let body = serde_json::json!({ "room_type": "arena", "room_id": room_id, "region": "eu" });
        let creates = LAYOUT.map(|(node, _)| {
            let url = format!("{}/v1/rooms", cluster.node(node).http_url());
            let body = body.clone();
            async move { post(&url, body).await }
        });
        let mut created = 0;
        for answer in futures_util::future::join_all(creates).await {
            let answer = answer?;
            match answer.status {
                201 => created += 1,
                409 => assert_eq!(answer.error_code(), Some("room_exists"), "{}", answer.body),
                other => anyhow::bail!("unexpected {other}: {}", answer.body),
            }
        }
        assert_eq!(created, 1, "exactly one creator of `{room_id}` gets 201");
    }
    Ok(())
}

#[tokio::test]
async fn after_a_broker_restart_a_create_elsewhere_does_not_take_over_a_live_room(
) -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(&LAYOUT).await?;
    let room_id = "survives-the-broker";
    let nats = async_nats::connect(cluster.nats.url()).await?;
    assert_eq!(ask_to_create(&nats, "eu-1", room_id).await?.0, "created");
    let mut player = Player::join(&seat_on(cluster.node("eu-1"), room_id).await?).await?;
    player.next_tick().await?;
    // Right after the restart eu-2's view is unsettled: it must not believe the id is free.
    cluster.nats.restart()?;
    let nats = async_nats::connect(cluster.nats.url()).await?;
    let refused = eventually_within(SETTLE_WAIT, || async {
        match ask_to_create(&nats, "eu-2", room_id).await {
            Ok((result, _)) if result == "created" => {
                anyhow::bail!("eu-2 took over a live room after the broker restart")
            }
            Ok((_, code)) if code == "room_exists" => Ok(Some(())),
            // No responder yet, or `cluster_unavailable` while the directory settles.
            Ok(_) | Err(_) => Ok(None),
        }
    })
    .await;
    refused?;
    player.next_tick().await?;
    // Listings are eventually consistent: us-1 rebuilds its replica after its own reconnect.
    let observer = cluster.node("us-1").http_url();
    eventually_within(SETTLE_WAIT, || async {
        Ok(listed_ids(&observer)
            .await?
            .contains(&room_id.to_owned())
            .then_some(()))
    })
    .await?;
    Ok(())
}

async fn seat_on(node: &TestServer, room_id: &str) -> anyhow::Result<Seat> {
    let answer = reserve(node, room_id).await?;
    anyhow::ensure!(answer.status == 200, "seat refused: {}", answer.body);
    Ok(serde_json::from_value(answer.body)?)
}

#[tokio::test]
async fn a_crashed_node_restarted_at_once_takes_its_lost_rooms_out_of_every_listing(
) -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(&LAYOUT).await?;
    let nats = async_nats::connect(cluster.nats.url()).await?;
    let room_id = "lost-in-a-crash";
    assert_eq!(ask_to_create(&nats, "eu-1", room_id).await?.0, "created");
    let observer = cluster.node("us-1").http_url();
    eventually(|| async {
        Ok(listed_ids(&observer)
            .await?
            .contains(&room_id.to_owned())
            .then_some(()))
    })
    .await?;
    cluster.kill("eu-1");
    cluster.restart("eu-1")?;
    // The restart registers a new incarnation, which retires every room of the old one at
    // once, before the old lease could even lapse.
    eventually_within(RESTART_BOUND, || async {
        Ok((!listed_ids(&observer).await?.contains(&room_id.to_owned())).then_some(()))
    })
    .await?;
    // And a seat in it is a plain 404 from then on, never a listed room that 404s.
    let seat = reserve(cluster.node("us-1"), room_id).await?;
    assert_eq!(seat.status, 404, "{}", seat.body);
    assert_eq!(seat.error_code(), Some("room_not_found"));
    Ok(())
}

#[tokio::test]
async fn a_crashed_node_s_rooms_leave_every_listing_within_a_lease() -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(&LAYOUT).await?;
    let nats = async_nats::connect(cluster.nats.url()).await?;
    let room_id = "crashed-for-good";
    assert_eq!(ask_to_create(&nats, "eu-1", room_id).await?.0, "created");
    let observer = cluster.node("eu-2").http_url();
    eventually(|| async {
        Ok(listed_ids(&observer)
            .await?
            .contains(&room_id.to_owned())
            .then_some(()))
    })
    .await?;
    cluster.kill("eu-1");
    eventually_within(LAPSE_BOUND, || async {
        Ok((!listed_ids(&observer).await?.contains(&room_id.to_owned())).then_some(()))
    })
    .await?;
    Ok(())
}

/// Reads frames for as long as they keep coming within `quiet`; returns the highest tick seen.
async fn drain(player: &mut Player, quiet: Duration) -> anyhow::Result<u64> {
    let mut highest = player.state.tick();
    for _ in 0..10_000 {
        match tokio::time::timeout(quiet, player.connection.receive()).await {
            Err(_) => return Ok(highest),
            Ok(received) => {
                if let Received::Batch(messages) = received? {
                    for message in messages {
                        if let ServerMessage::Delta(delta) = message {
                            highest = highest.max(delta.tick);
                        }
                    }
                }
            }
        }
    }
    anyhow::bail!("frames never stopped")
}

#[tokio::test]
async fn a_node_paused_past_its_lease_sends_no_stale_frame_and_closes_with_room_moved(
) -> anyhow::Result<()> {
    let cluster =
        TestCluster::start_with_external(&[("eu-1", "eu"), ("us-1", "us")], &[("eu-3", "eu")])
            .await?;
    let paused = ChildNode::spawn(node_binary(), &cluster.external_config("eu-3"))?;
    wait_until_settled(&paused.http_url()).await?;
    let nats = async_nats::connect(cluster.nats.url()).await?;
    let room_id = "paused-owner";
    assert_eq!(ask_to_create(&nats, "eu-3", room_id).await?.0, "created");
    let seat = post(
        &format!("{}/v1/rooms/{room_id}/seats", paused.http_url()),
        serde_json::json!({}),
    )
    .await?;
    anyhow::ensure!(seat.status == 200, "seat refused: {}", seat.body);
    let mut seat: Seat = serde_json::from_value(seat.body)?;
    // The region file names the process with a placeholder URL.
    seat.ws_url = format!("ws://{}/v1/rooms/{room_id}/ws", paused.addr());
    let mut player = Player::join(&seat).await?;
    player.next_tick().await?;

    paused.pause()?;
    // Others see the lease lapse (on their own receipt clock) and may re-create the room.
    let observer = cluster.node("eu-1").http_url();
    eventually_within(LAPSE_BOUND, || async {
        Ok((!listed_ids(&observer).await?.contains(&room_id.to_owned())).then_some(()))
    })
    .await?;
    assert_eq!(ask_to_create(&nats, "eu-1", room_id).await?.0, "created");
    // Every frame the paused node sent before its pause is already here (loopback).
    let last_tick_before_pause = drain(&mut player, Duration::from_millis(300)).await?;

    paused.resume()?;
    match player.connection.receive().await? {
        Received::Closed(frame) => {
            let code = frame.and_then(|frame| CloseCode::from_code(u16::from(frame.code)));
            assert_eq!(code, Some(CloseCode::RoomMoved));
        }
        Received::Batch(messages) => {
            let stale: Vec<u64> = messages
                .iter()
                .filter_map(|message| match message {
                    ServerMessage::Delta(delta) => Some(delta.tick),
                    _ => None,
                })
                .collect();
            anyhow::bail!(
                "the resumed node sent ticks {stale:?} after its lease lapsed \
                 (last before the pause: {last_tick_before_pause})"
            );
        }
    }
    // The rooms check the fence themselves at their next tick, so the client's close can come
    // before the lease task, resumed too, has counted the fence: wait for the count.
    let metrics_url = format!("{}/metrics", paused.http_url());
    eventually(|| async {
        let fences = get_text(&metrics_url).await?.1;
        let counted = fences
            .lines()
            .any(|line| line.starts_with("ludus_cluster_fences_total ") && !line.ends_with(" 0"));
        Ok(counted.then_some(()))
    })
    .await
    .map_err(|_| anyhow::anyhow!("the fence is counted"))?;
    Ok(())
}

#[tokio::test]
async fn a_peer_with_another_region_file_is_reported_until_it_reloads_the_shared_one(
) -> anyhow::Result<()> {
    let cluster =
        TestCluster::start_with_external(&[("eu-1", "eu"), ("us-1", "us")], &[("eu-3", "eu")])
            .await?;
    let dir = tempfile::tempdir()?;
    let other_file = dir.path().join("regions.toml");
    let shared = std::fs::read_to_string(cluster.regions_file())?;
    std::fs::write(
        &other_file,
        format!("{shared}\n# edited on one node only\n"),
    )?;
    let mut config = cluster.external_config("eu-3");
    config.cluster.regions_file = Some(other_file.clone());
    let other = ChildNode::spawn(node_binary(), &config)?;
    let reporter = cluster.node("eu-1");
    let health = eventually_within(SETTLE_WAIT, || async {
        let health = get_json(&format!("{}/healthz", reporter.http_url())).await?;
        let reported = health["cluster"]["region_file_mismatches"]
            .as_array()
            .is_some_and(|mismatches| !mismatches.is_empty());
        Ok(reported.then_some(health))
    })
    .await?;
    assert_eq!(
        health["cluster"]["region_file_mismatches"][0]["node"],
        "eu-3"
    );
    let mismatched = eventually(|| async {
        let value = metric(reporter, "ludus_cluster_region_file_mismatched_peers").await?;
        Ok((value >= 1.0).then_some(value))
    })
    .await?;
    assert_eq!(mismatched, 1.0);
    // The operator fixes the file and sends SIGHUP: the next heartbeat carries the shared hash.
    std::fs::write(&other_file, shared)?;
    other.hang_up()?;
    eventually_within(SETTLE_WAIT, || async {
        let health = get_json(&format!("{}/healthz", reporter.http_url())).await?;
        let cleared = health["cluster"]["region_file_mismatches"]
            .as_array()
            .is_some_and(Vec::is_empty);
        let metric_cleared =
            metric(reporter, "ludus_cluster_region_file_mismatched_peers").await? == 0.0;
        Ok((cleared && metric_cleared).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_room_written_by_a_node_with_a_skewed_clock_stays_listed() -> anyhow::Result<()> {
    let cluster = TestCluster::start(&LAYOUT).await?;
    let nats = async_nats::connect(cluster.nats.url()).await?;
    let room_id = "written-an-hour-ago";
    assert_eq!(ask_to_create(&nats, "eu-1", room_id).await?.0, "created");
    // Rewrite the entry as eu-1 would with its wall clock an hour behind: every time in it
    // (and any field a peer might once have judged freshness by) is an hour old.
    let store = async_nats::jetstream::new(nats)
        .get_key_value("ludus_directory")
        .await?;
    let key = format!("room.{room_id}");
    let entry = store.entry(key.as_str()).await?.expect("room entry");
    let mut record: serde_json::Value = serde_json::from_slice(&entry.value)?;
    let hour_ago = record["info"]["created_at_ms"]
        .as_u64()
        .unwrap_or_default()
        .saturating_sub(3_600_000);
    record["info"]["created_at_ms"] = hour_ago.into();
    record["renewed_at_ms"] = hour_ago.into();
    store
        .update(
            key.as_str(),
            serde_json::to_vec(&record)?.into(),
            entry.revision,
        )
        .await?;
    // Once a peer has the skewed entry, it lists it: freshness is judged on local receipt time.
    let observer = cluster.node("us-1").http_url();
    eventually(|| async {
        let rooms = get_json(&format!("{observer}/v1/rooms")).await?;
        let skewed_listed = rooms["rooms"].as_array().into_iter().flatten().any(|room| {
            room["room_id"] == room_id && room["created_at_ms"].as_u64() == Some(hour_ago)
        });
        Ok(skewed_listed.then_some(()))
    })
    .await?;
    Ok(())
}
