//! Multi-node behaviour: each test starts its own `nats-server` and real nodes in two regions.

use ludus_protocol::{ClientMessage, CloseCode, Hello, ServerMessage, Value, PROTOCOL_VERSION};
use ludus_regions::{NodeId, Placement, RegionName};
use ludus_tests::cluster::{TestCluster, LEASE_MS};
use ludus_tests::resume::{CaughtUp, Dropped};
use ludus_tests::*;
use std::time::Duration;

/// Recovery after a NATS restart includes the client's reconnect back-off; allow for a loaded
/// CI machine.
const RECOVERY: Duration = Duration::from_secs(30);

const LAYOUT: [(&str, &str); 3] = [("eu-1", "eu"), ("eu-2", "eu"), ("us-1", "us")];

/// The node the ring gives `room_id` in `region` with every node up.
fn ring_owner(cluster: &TestCluster, room_id: &str, region: &str) -> anyhow::Result<String> {
    let regions = ludus_regions::load(cluster.regions_file())?;
    let placement = Placement::with_all_nodes(&regions);
    Ok(placement
        .owner(room_id, &RegionName::new(region))
        .map(NodeId::to_string)
        .unwrap_or_default())
}

async fn create_room_on(
    node: &TestServer,
    room_id: &str,
    region: &str,
) -> anyhow::Result<HttpAnswer> {
    post(
        &format!("{}/v1/rooms", node.http_url()),
        serde_json::json!({ "room_type": "arena", "room_id": room_id, "region": region }),
    )
    .await
}

async fn seat_on(node: &TestServer, room_id: &str) -> anyhow::Result<Seat> {
    let answer = reserve(node, room_id).await?;
    anyhow::ensure!(answer.status == 200, "seat refused: {}", answer.body);
    Ok(serde_json::from_value(answer.body)?)
}

async fn listed_ids(node: &TestServer) -> anyhow::Result<Vec<String>> {
    let rooms = get_json(&format!("{}/v1/rooms", node.http_url())).await?;
    Ok(rooms["rooms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|room| room["room_id"].as_str().map(str::to_owned))
        .collect())
}

/// Rooms hosted across the cluster, as each node's `/healthz` counts its own actors.
async fn rooms_hosted(cluster: &TestCluster) -> anyhow::Result<u64> {
    let mut hosting = 0;
    for (node, _) in LAYOUT {
        let health = get_json(&format!("{}/healthz", cluster.node(node).http_url())).await?;
        hosting += health["rooms"].as_u64().unwrap_or_default();
    }
    Ok(hosting)
}

/// A room id whose ring owner in `region` is `node`.
fn id_owned_by(cluster: &TestCluster, node: &str, region: &str) -> anyhow::Result<String> {
    ids_owned_by(cluster, node, region, 1)?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no id owned by {node}"))
}

/// `count` room ids whose ring owner in `region` is `node`.
fn ids_owned_by(
    cluster: &TestCluster,
    node: &str,
    region: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    for index in 0..1_000 {
        let candidate = format!("{node}-room-{index}");
        if ring_owner(cluster, &candidate, region)? == node {
            found.push(candidate);
            if found.len() == count {
                return Ok(found);
            }
        }
    }
    anyhow::bail!("fewer than {count} ids owned by {node}")
}

#[tokio::test]
async fn a_room_created_on_one_node_lands_on_the_ring_owner_and_the_client_plays_there(
) -> anyhow::Result<()> {
    let cluster = TestCluster::start(&LAYOUT).await?;
    let room_id = id_owned_by(&cluster, "eu-2", "eu")?;
    let created = create_room_on(cluster.node("eu-1"), &room_id, "eu").await?;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["node"], "eu-2");
    let seat = seat_on(cluster.node("us-1"), &room_id).await?;
    assert_eq!(seat.node, "eu-2");
    assert!(seat
        .ws_url
        .contains(&cluster.node("eu-2").addr().to_string()));
    let mut player = Player::join(&seat).await?;
    let me = player.id();
    let seq = player.input(arena_move(0.5, 0.5)).await?;
    player
        .tick_until(40, |state| state.ack(me) == Some(seq))
        .await?;
    Ok(())
}

#[tokio::test]
async fn matchmaking_on_any_node_places_by_region_and_joins_open_rooms() -> anyhow::Result<()> {
    let cluster = TestCluster::start(&LAYOUT).await?;
    let url = format!("{}/v1/matchmake", cluster.node("us-1").http_url());
    let first = post(
        &url,
        serde_json::json!({"room_type": "arena", "region": "eu"}),
    )
    .await?;
    let first: Seat = serde_json::from_value(first.body.clone())
        .map_err(|_| anyhow::anyhow!("{}", first.body))?;
    assert_eq!(first.region, "eu");
    assert!(first.node.starts_with("eu-"));
    Player::join(&first).await?;
    // The directory is eventually consistent: wait until eu-1's replica has the room.
    eventually(|| async {
        Ok(listed_ids(cluster.node("eu-1"))
            .await?
            .contains(&first.room_id)
            .then_some(()))
    })
    .await?;
    // The same request through another node, with the region as an edge alias header, joins the
    // open room rather than creating one.
    let answer = reqwest::Client::new()
        .post(format!("{}/v1/matchmake", cluster.node("eu-1").http_url()))
        .header("x-ludus-region", "DE")
        .json(&serde_json::json!({"room_type": "arena"}))
        .send()
        .await?;
    let second: Seat = answer.json().await?;
    assert_eq!(
        second.room_id, first.room_id,
        "joined the open room: {}",
        second.placement
    );
    let us: Seat = serde_json::from_value(
        post(
            &url,
            serde_json::json!({"room_type": "arena", "region": "US"}),
        )
        .await?
        .body,
    )?;
    assert_eq!((us.node.as_str(), us.region.as_str()), ("us-1", "us"));
    let unknown = post(
        &url,
        serde_json::json!({"room_type": "arena", "region": "mars"}),
    )
    .await?;
    assert_eq!(
        (unknown.status, unknown.error_code()),
        (400, Some("unknown_region"))
    );
    Ok(())
}

#[tokio::test]
async fn listing_on_any_node_shows_every_room_and_they_stay_listed() -> anyhow::Result<()> {
    let cluster = TestCluster::start(&LAYOUT).await?;
    let mut ids = Vec::new();
    for (node, region) in LAYOUT {
        let room_id = id_owned_by(&cluster, node, region)?;
        let created = create_room_on(cluster.node("eu-1"), &room_id, region).await?;
        assert_eq!(created.body["node"], node, "{}", created.body);
        ids.push(room_id);
    }
    ids.sort();
    for (node, _) in LAYOUT {
        let server = cluster.node(node);
        eventually(|| async {
            let mut listed = listed_ids(server).await?;
            listed.sort();
            Ok((listed == ids).then_some(()))
        })
        .await?;
    }
    // Leases are renewed: after two lease periods every room is still listed everywhere.
    tokio::time::sleep(Duration::from_millis(2 * LEASE_MS)).await;
    for (node, _) in LAYOUT {
        let mut listed = listed_ids(cluster.node(node)).await?;
        listed.sort();
        assert_eq!(listed, ids, "{node} still lists every room");
    }
    let eu_only = get_json(&format!(
        "{}/v1/rooms?region=eu",
        cluster.node("us-1").http_url()
    ))
    .await?;
    assert_eq!(eu_only["rooms"].as_array().map(Vec::len), Some(2));
    Ok(())
}

/// `seat`'s room URL on `wrong` (a node that does not host it), once `wrong` lists the room.
async fn url_on_wrong_node(
    cluster: &TestCluster,
    seat: &Seat,
    host: &str,
    wrong: &str,
) -> anyhow::Result<String> {
    eventually(|| async {
        let listed = listed_ids(cluster.node(wrong)).await?;
        Ok(listed.contains(&seat.room_id).then_some(()))
    })
    .await?;
    Ok(seat.ws_url.replace(
        &cluster.node(host).addr().to_string(),
        &cluster.node(wrong).addr().to_string(),
    ))
}

/// Sends `hello` on `wrong` and expects a redirect to `seat`'s node (`host`) and close 4012.
async fn expect_redirect(
    mut wrong: Connection,
    hello: &ClientMessage,
    seat: &Seat,
    host: &str,
) -> anyhow::Result<String> {
    wrong.send(hello).await?;
    let Received::Batch(messages) = wrong.receive().await? else {
        anyhow::bail!("closed without redirect")
    };
    let Some(ServerMessage::Redirect(redirect)) = messages.into_iter().next() else {
        anyhow::bail!("expected a redirect")
    };
    assert_eq!(redirect.node, host);
    assert_eq!(redirect.ws_url, seat.ws_url);
    let (_, close) = wrong.expect_close().await?;
    assert_eq!(close, Some(CloseCode::Redirect));
    Ok(redirect.ws_url)
}

#[tokio::test]
async fn a_client_connecting_to_the_wrong_node_is_redirected() -> anyhow::Result<()> {
    let cluster = TestCluster::start(&LAYOUT).await?;
    let room_id = id_owned_by(&cluster, "eu-1", "eu")?;
    create_room_on(cluster.node("eu-2"), &room_id, "eu").await?;
    let seat = seat_on(cluster.node("eu-1"), &room_id).await?;
    let wrong_url = url_on_wrong_node(&cluster, &seat, "eu-1", "us-1").await?;
    let hello = ClientMessage::Hello(Hello {
        protocol: PROTOCOL_VERSION,
        token: seat.token.clone(),
        resume: None,
    });
    let redirected =
        expect_redirect(Connection::open(&wrong_url).await?, &hello, &seat, "eu-1").await?;
    let mut right = Connection::open(&redirected).await?;
    right.hello(&seat.token).await?;
    let Received::Batch(welcome) = right.receive().await? else {
        anyhow::bail!("closed")
    };
    assert!(matches!(welcome.first(), Some(ServerMessage::Welcome(_))));
    Ok(())
}

/// Resume tokens are signed with the cluster's shared secret, so a resume that reaches a node
/// other than the room's owner is checked there and redirected like a fresh `hello`; on the
/// owner it resumes the same seat with the missed deltas.
#[tokio::test]
async fn a_resume_that_reaches_the_wrong_node_is_redirected_and_resumes_on_the_owner(
) -> anyhow::Result<()> {
    let cluster = TestCluster::start(&LAYOUT).await?;
    let room_id = id_owned_by(&cluster, "eu-1", "eu")?;
    create_room_on(cluster.node("eu-1"), &room_id, "eu").await?;
    let seat = seat_on(cluster.node("eu-1"), &room_id).await?;
    let mut player = Player::join(&seat).await?;
    let me = player.id();
    player.input(arena_move(1.0, 0.0)).await?;
    player.next_tick().await?;
    player.connection.cut().await?;
    let wrong_url = url_on_wrong_node(&cluster, &seat, "eu-1", "us-1").await?;
    let dropped = Dropped {
        ws_url: wrong_url.clone(),
        player,
    };
    let hello = dropped.hello()?;
    let redirected =
        expect_redirect(Connection::open(&wrong_url).await?, &hello, &seat, "eu-1").await?;
    let dropped = Dropped {
        ws_url: redirected,
        player: dropped.player,
    };
    let (player, caught_up) = dropped.resume().await?;
    assert_eq!(player.id(), me, "the same seat");
    assert!(
        matches!(caught_up, CaughtUp::Deltas(_)),
        "a resume on the same epoch catches up by delta: {caught_up:?}"
    );
    Ok(())
}

fn event_type(event: &Value) -> Option<&str> {
    event
        .as_map()?
        .iter()
        .find(|(key, _)| key.as_str() == Some("type"))?
        .1
        .as_str()
}

#[tokio::test]
async fn messages_and_announcements_reach_rooms_on_other_nodes() -> anyhow::Result<()> {
    let cluster = TestCluster::start(&LAYOUT).await?;
    let room_id = id_owned_by(&cluster, "eu-2", "eu")?;
    create_room_on(cluster.node("eu-1"), &room_id, "eu").await?;
    let mut player = Player::join(&seat_on(cluster.node("eu-2"), &room_id).await?).await?;
    eventually(|| async {
        Ok(listed_ids(cluster.node("us-1"))
            .await?
            .contains(&room_id)
            .then_some(()))
    })
    .await?;
    let sent = operator_post(
        &format!(
            "{}/v1/rooms/{room_id}/messages",
            cluster.node("us-1").http_url()
        ),
        serde_json::json!({"payload": {"text": "hello from us"}}),
    )
    .await?;
    assert_eq!(sent.status, 202, "{}", sent.body);
    let announced = operator_post(
        &format!("{}/v1/regions/eu/announce", cluster.node("us-1").http_url()),
        serde_json::json!({"payload": "maintenance at noon"}),
    )
    .await?;
    assert_eq!(announced.status, 202, "{}", announced.body);
    let mut seen = Vec::new();
    for _ in 0..60 {
        if let Some(delta) = player.next_tick().await? {
            seen.extend(
                delta
                    .events
                    .iter()
                    .filter_map(|event| event_type(event).map(str::to_owned)),
            );
        }
        if seen.iter().any(|kind| kind == "message")
            && seen.iter().any(|kind| kind == "announcement")
        {
            return Ok(());
        }
    }
    anyhow::bail!("events seen: {seen:?}")
}

/// D2: between a node's death and membership noticing it, placement still names it; creations
/// and matchmaking for its region must go to the region's live node instead of failing or
/// leaving the region.
#[tokio::test]
async fn during_detection_rooms_placed_on_a_dead_node_go_to_the_regions_live_node(
) -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(&LAYOUT).await?;
    let orphans = ids_owned_by(&cluster, "eu-2", "eu", 3)?;
    cluster.kill("eu-2");
    // Still within detection: us-1 sees eu-2 as live.
    assert_eq!(
        cluster.live_nodes("us-1").await?,
        3,
        "the test must run before detection"
    );
    for room_id in &orphans {
        let created = create_room_on(cluster.node("us-1"), room_id, "eu").await?;
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(created.body["node"], "eu-1", "{}", created.body);
    }
    for _ in 0..4 {
        let matched = post(
            &format!("{}/v1/matchmake", cluster.node("us-1").http_url()),
            serde_json::json!({"room_type": "arena", "region": "eu"}),
        )
        .await?;
        assert_eq!(matched.status, 200, "{}", matched.body);
        assert_eq!(matched.body["region"], "eu", "{}", matched.body);
    }
    Ok(())
}

#[tokio::test]
async fn killing_a_node_removes_it_from_placement_and_new_rooms_go_to_survivors(
) -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(&LAYOUT).await?;
    let orphan_id = id_owned_by(&cluster, "eu-2", "eu")?;
    cluster.kill("eu-2");
    cluster.wait_for_live("eu-1", 2).await?;
    cluster.wait_for_live("us-1", 2).await?;
    let explained = get_json(&format!(
        "{}/v1/placement?room={orphan_id}&region=eu",
        cluster.node("us-1").http_url()
    ))
    .await?;
    assert_eq!(explained["ring_owner"], "eu-2");
    assert_eq!(explained["placed_on"], "eu-1");
    assert!(
        explained["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("down"),
        "{explained}"
    );
    for index in 0..6 {
        let created = create_room_on(cluster.node("us-1"), &format!("after-{index}"), "eu").await?;
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(created.body["node"], "eu-1");
    }
    let leaves = metric(
        cluster.node("eu-1"),
        "ludus_cluster_membership_changes_total{change=\"leave\"}",
    )
    .await?;
    assert!(leaves >= 1.0, "the leave was counted");
    // With the whole region down, matchmaking for it falls back to `us` and says so.
    cluster.kill("eu-1");
    cluster.wait_for_live("us-1", 1).await?;
    let fallback: Seat = serde_json::from_value(
        post(
            &format!("{}/v1/matchmake", cluster.node("us-1").http_url()),
            serde_json::json!({"room_type": "arena", "region": "eu"}),
        )
        .await?
        .body,
    )?;
    assert_eq!(
        (fallback.node.as_str(), fallback.region.as_str()),
        ("us-1", "us")
    );
    assert!(
        fallback.placement.contains("fallback"),
        "{}",
        fallback.placement
    );
    Ok(())
}

#[tokio::test]
async fn racing_creators_of_one_room_end_with_exactly_one_live_room() -> anyhow::Result<()> {
    let cluster = TestCluster::start(&LAYOUT).await?;
    let creates = LAYOUT.map(|(node, _)| create_room_on(cluster.node(node), "contested", "eu"));
    let answers = futures_util::future::join_all(creates).await;
    let mut created = 0;
    for answer in answers {
        let answer = answer?;
        match answer.status {
            201 => created += 1,
            409 => assert_eq!(answer.error_code(), Some("room_exists")),
            other => anyhow::bail!("unexpected {other}: {}", answer.body),
        }
    }
    assert_eq!(created, 1, "exactly one creator gets 201 (D1)");
    assert_eq!(
        rooms_hosted(&cluster).await?,
        1,
        "exactly one actor across the cluster"
    );
    Ok(())
}

#[tokio::test]
async fn creators_racing_on_different_nodes_end_with_one_live_room() -> anyhow::Result<()> {
    let cluster = TestCluster::start(&LAYOUT).await?;
    // Each node is asked to host the same room at once, bypassing placement, as nodes with
    // diverging membership views would: only the lease decides.
    let client = async_nats::connect(cluster.nats.url()).await?;
    let request = serde_json::json!({
        "op": "create", "room_type": "arena", "room_id": "contested-everywhere",
        "max_players": null, "metadata": null, "reserve": null,
    });
    let payload = serde_json::to_vec(&request)?;
    let asks = LAYOUT.map(|(node, _)| {
        let client = client.clone();
        let payload = payload.clone();
        async move {
            client
                .request(format!("ludus.node.{node}.rpc"), payload.into())
                .await
        }
    });
    let mut created = 0;
    for answer in futures_util::future::join_all(asks).await {
        let reply: serde_json::Value = serde_json::from_slice(&answer?.payload)?;
        match reply["result"].as_str() {
            Some("created") => created += 1,
            Some("failed") => assert_eq!(reply["code"], "room_exists", "{reply}"),
            _ => anyhow::bail!("unexpected reply {reply}"),
        }
    }
    assert_eq!(created, 1, "exactly one node created the room");
    assert_eq!(
        rooms_hosted(&cluster).await?,
        1,
        "exactly one actor across the cluster"
    );
    Ok(())
}

#[tokio::test]
async fn a_node_that_loses_its_lease_stops_serving_the_room() -> anyhow::Result<()> {
    let cluster = TestCluster::start(&LAYOUT).await?;
    let room_id = id_owned_by(&cluster, "eu-1", "eu")?;
    create_room_on(cluster.node("eu-1"), &room_id, "eu").await?;
    let mut player = Player::join(&seat_on(cluster.node("eu-1"), &room_id).await?).await?;
    // Another node takes the lease, as it would after eu-1 stalled past its lease.
    let client = async_nats::connect(cluster.nats.url()).await?;
    let store = async_nats::jetstream::new(client)
        .get_key_value("ludus_directory")
        .await?;
    let key = format!("room.{room_id}");
    let entry = store.entry(key.as_str()).await?.expect("leased entry");
    let mut record: serde_json::Value = serde_json::from_slice(&entry.value)?;
    // As eu-2 itself would write it: with its own live incarnation. (With eu-1's incarnation
    // the entry would name an incarnation eu-2 does not hold, which failover reads as a lapsed
    // room and hands back to its placement owner, eu-1.)
    let eu2 = store.entry("node.eu-2").await?.expect("eu-2's lease");
    let eu2: serde_json::Value = serde_json::from_slice(&eu2.value)?;
    record["node"] = "eu-2".into();
    record["incarnation"] = eu2["incarnation"].clone();
    store
        .update(
            key.as_str(),
            serde_json::to_vec(&record)?.into(),
            entry.revision,
        )
        .await?;
    let (_, close) = player.connection.expect_close().await?;
    assert_eq!(close, Some(CloseCode::RoomMoved));
    Ok(())
}

#[tokio::test]
async fn stopping_and_restarting_nats_keeps_rooms_playing_and_the_cluster_recovers(
) -> anyhow::Result<()> {
    let mut cluster = TestCluster::start(&LAYOUT).await?;
    let room_id = id_owned_by(&cluster, "eu-1", "eu")?;
    create_room_on(cluster.node("eu-2"), &room_id, "eu").await?;
    let mut player = Player::join(&seat_on(cluster.node("eu-1"), &room_id).await?).await?;
    cluster.nats.stop();
    let matchmake_url = format!("{}/v1/matchmake", cluster.node("eu-2").http_url());
    eventually(|| async {
        let answer = post(&matchmake_url, serde_json::json!({"room_type": "arena"})).await?;
        Ok(
            (answer.status == 503 && answer.error_code() == Some("cluster_unavailable"))
                .then_some(()),
        )
    })
    .await?;
    // An outage shorter than the lease's fence keeps rooms playing (a longer one fences them:
    // see tests/tests/ownership.rs).
    let before = player.state.tick();
    for _ in 0..5 {
        player.next_tick().await?;
    }
    assert!(
        player.state.tick() >= before + 5,
        "the room kept ticking without NATS"
    );
    cluster.nats.restart()?;
    // The holder's entry is there again after the restart (the bucket is on disk; a holder
    // re-creates an entry a broker lost).
    let client = async_nats::connect(cluster.nats.url()).await?;
    let jetstream = async_nats::jetstream::new(client);
    eventually_within(RECOVERY, || async {
        let Ok(store) = jetstream.get_key_value("ludus_directory").await else {
            return Ok(None);
        };
        let entry = store.entry(format!("room.{room_id}")).await.ok().flatten();
        let put = async_nats::jetstream::kv::Operation::Put;
        Ok(entry.filter(|entry| entry.operation == put).map(|_| ()))
    })
    .await?;
    cluster.wait_for_nats().await?;
    cluster.wait_for_live("us-1", 3).await?;
    // And the replicas are rebuilt: a room created after the restart is listed everywhere.
    // A node answers 503 until its own reconnect (with backoff) has resubscribed it, which
    // is what a client sees too: it retries until the cluster accepts work again.
    let fresh = id_owned_by(&cluster, "eu-2", "eu")?;
    let created = eventually_within(RECOVERY, || async {
        let answer = create_room_on(cluster.node("us-1"), &fresh, "eu").await?;
        Ok((answer.status != 503).then_some(answer))
    })
    .await?;
    assert_eq!(created.status, 201, "{}", created.body);
    for (node, _) in LAYOUT {
        let server = cluster.node(node);
        eventually_within(RECOVERY, || async {
            let listed = listed_ids(server).await.unwrap_or_default();
            Ok((listed.contains(&fresh) && listed.contains(&room_id)).then_some(()))
        })
        .await?;
    }
    let seat = post(&matchmake_url, serde_json::json!({"room_type": "arena"})).await?;
    assert_eq!(seat.status, 200, "{}", seat.body);
    player.next_tick().await?;
    Ok(())
}

#[tokio::test]
async fn the_regions_endpoint_lists_live_nodes_and_ping_urls() -> anyhow::Result<()> {
    let cluster = TestCluster::start(&LAYOUT).await?;
    let regions = get_json(&format!("{}/v1/regions", cluster.node("eu-1").http_url())).await?;
    let list = regions["regions"].as_array().cloned().unwrap_or_default();
    let eu = list
        .iter()
        .find(|region| region["name"] == "eu")
        .expect("eu listed");
    assert_eq!(eu["live_nodes"], 2);
    assert_eq!(eu["default"], true);
    let ping = eu["ping_url"].as_str().expect("ping url");
    let (status, _) = get_text(ping).await?;
    assert_eq!(status, 200);
    Ok(())
}

mod config_errors {
    use ludus_server::cluster::ClusterSettings;
    use ludus_tests::test_config;
    use std::path::Path;

    const NODE: &str = "\n[[nodes]]\nid = \"eu-1\"\nregion = \"eu\"\nws_url = \"ws://127.0.0.1:7801\"\nhttp_url = \"http://127.0.0.1:7801\"\nweight = 1\n";

    fn settings_error(dir: &Path, region_file: &str, node_id: &str) -> String {
        let path = dir.join("regions.toml");
        std::fs::write(&path, region_file).expect("temp dir is writable");
        let mut config = test_config();
        config.cluster.regions_file = Some(path);
        config.cluster.node_id = Some(node_id.to_owned());
        match ClusterSettings::from_config(&config) {
            Ok(_) => "no error".to_owned(),
            Err(error) => error.to_string(),
        }
    }

    #[test]
    fn cluster_config_errors_name_the_file_line_and_field() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("regions.toml");
        let header = "version = 1\ndefault_region = \"eu\"\n\n[cluster]\nnats_url = \"nats://127.0.0.1:4222\"\n\n[regions.eu]\n";
        assert_eq!(
            settings_error(dir.path(), &format!("{header}{NODE}"), "eu-9"),
            format!("cluster.node_id: node `eu-9` is not in {}", file.display())
        );
        let without_nats = "version = 1\ndefault_region = \"eu\"\n\n[regions.eu]\n";
        assert_eq!(
            settings_error(dir.path(), &format!("{without_nats}{NODE}"), "eu-1"),
            format!(
                "{}: cluster.nats_url: a cluster needs a NATS URL",
                file.display()
            )
        );
        let zero_weight = format!("{header}{}", NODE.replace("weight = 1", "weight = 0"));
        let message = settings_error(dir.path(), &zero_weight, "eu-1");
        assert!(
            message.starts_with(&format!("{}:14: nodes[0].weight:", file.display())),
            "{message}"
        );
        assert_eq!(
            settings_error(dir.path(), &format!("{header}{NODE}"), "eu-1"),
            "no error"
        );
    }

    #[test]
    fn a_node_id_without_a_region_file_is_refused() {
        let mut config = test_config();
        config.cluster.node_id = Some("eu-1".to_owned());
        let error = ludus_server::config::load(None, &[])
            .map(|mut loaded| {
                loaded.config = config;
                loaded
            })
            .expect("defaults load")
            .validate(&ludus_server::game::GameRegistry::builtin().limits())
            .expect_err("incomplete cluster config");
        assert_eq!(
            error.to_string(),
            "default: cluster.regions_file: is required when cluster.node_id is set"
        );
    }
}
