//! The dashboard and the kick route in a cluster: each test starts its own `nats-server` and
//! real nodes in two regions. The overview shows every node from its heartbeats, a kick sent
//! to any node reaches the room's node, and a room page names the node that runs the room.

use ludus_protocol::CloseCode;
use ludus_regions::{NodeId, Placement, RegionName};
use ludus_tests::cluster::TestCluster;
use ludus_tests::*;
use reqwest::Method;

const LAYOUT: [(&str, &str); 3] = [("eu-1", "eu"), ("eu-2", "eu"), ("us-1", "us")];

/// A room id whose ring owner in `region` is `node`.
fn id_owned_by(cluster: &TestCluster, node: &str, region: &str) -> anyhow::Result<String> {
    let regions = ludus_regions::load(cluster.regions_file())?;
    let placement = Placement::with_all_nodes(&regions);
    (0..1_000)
        .map(|index| format!("{node}-room-{index}"))
        .find(|candidate| {
            placement
                .owner(candidate, &RegionName::new(region))
                .map(NodeId::to_string)
                .as_deref()
                == Some(node)
        })
        .ok_or_else(|| anyhow::anyhow!("no id owned by {node}"))
}

async fn operator_get(url: &str) -> anyhow::Result<HttpAnswer> {
    send_with(Method::GET, url, Some(TEST_OPERATOR_TOKEN), None).await
}

#[tokio::test]
async fn the_overview_shows_every_node_and_a_kick_reaches_the_rooms_node() -> anyhow::Result<()> {
    let cluster = TestCluster::start(&LAYOUT).await?;
    let room_id = id_owned_by(&cluster, "eu-2", "eu")?;
    let created = post(
        &format!("{}/v1/rooms", cluster.node("eu-1").http_url()),
        serde_json::json!({ "room_type": "arena", "room_id": room_id, "region": "eu" }),
    )
    .await?;
    assert_eq!(created.status, 201, "{}", created.body);
    let seat: Seat = serde_json::from_value(reserve(cluster.node("eu-2"), &room_id).await?.body)?;
    let mut player = Player::join(&seat).await?;
    player.next_tick().await?;

    // eu-1's overview: three live nodes in two regions, eu-2 hosting the room, one file.
    let overview_url = format!("{}/v1/dashboard/overview", cluster.node("eu-1").http_url());
    let overview = eventually(|| async {
        let overview = operator_get(&overview_url).await?.body;
        let nodes: Vec<serde_json::Value> = overview["regions"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|region| region["nodes"].as_array().cloned().unwrap_or_default())
            .collect();
        let ready = nodes.len() == 3
            && nodes.iter().all(|node| {
                node["live"] == true
                    && node["region_file_agrees"] == true
                    && node["report"]["lease_held"] == true
            })
            && nodes
                .iter()
                .any(|node| node["node"] == "eu-2" && node["rooms"] == 1);
        Ok(ready.then_some(overview))
    })
    .await?;
    assert_eq!(overview["node"], "eu-1");
    assert_eq!(overview["clustered"], true);
    let regions: Vec<&str> = overview["regions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|region| region["region"].as_str())
        .collect();
    assert_eq!(regions, ["eu", "us"]);

    // The room page lives on the room's node; another node says which one.
    let elsewhere = operator_get(&format!(
        "{}/v1/dashboard/rooms/{room_id}",
        cluster.node("eu-1").http_url()
    ))
    .await?;
    assert_eq!(elsewhere.status, 404);
    assert!(
        elsewhere.body["error"]["message"]
            .as_str()
            .is_some_and(|message| message.contains("`eu-2`")),
        "{}",
        elsewhere.body
    );

    // A kick sent to a node in another region reaches eu-2 and closes the player with 4016.
    let kicked = operator_delete(&format!(
        "{}/v1/rooms/{room_id}/players/{}",
        cluster.node("us-1").http_url(),
        player.id().0
    ))
    .await?;
    assert_eq!(kicked.status, 202, "{}", kicked.body);
    assert_eq!(kicked.body["node"], "eu-2");
    let (_, close) = player.connection.expect_close().await?;
    assert_eq!(close, Some(CloseCode::Kicked));
    Ok(())
}
