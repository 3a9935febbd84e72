//! The operator dashboard's server side over real sockets: its data routes need the operator
//! token, show the rooms and seats real players made, stream live overviews, and kicking a
//! player closes its socket with 4016 and frees its seat. (The page itself is tested in a real
//! browser: `tests/browser/`.)

use ludus_protocol::CloseCode;
use ludus_tests::*;
use reqwest::Method;

async fn operator_get(url: &str) -> anyhow::Result<serde_json::Value> {
    let answer = send_with(Method::GET, url, Some(TEST_OPERATOR_TOKEN), None).await?;
    anyhow::ensure!(answer.status == 200, "GET {url}: {}", answer.body);
    Ok(answer.body)
}

#[tokio::test]
async fn dashboard_routes_need_the_operator_token() -> anyhow::Result<()> {
    let server = TestServer::start();
    let base = server.http_url();
    for path in [
        "/v1/dashboard/overview",
        "/v1/dashboard/stream",
        "/v1/dashboard/rooms",
        "/v1/dashboard/rooms/r-any",
    ] {
        let url = format!("{base}{path}");
        let none = send_with(Method::GET, &url, None, None).await?;
        assert_eq!(
            (none.status, none.error_code()),
            (401, Some("unauthorized"))
        );
        let wrong = send_with(Method::GET, &url, Some("wrong-token-0123456789ab"), None).await?;
        assert_eq!((wrong.status, wrong.error_code()), (403, Some("forbidden")));
    }
    let kick = format!("{base}/v1/rooms/r-any/players/1");
    let none = send_with(Method::DELETE, &kick, None, None).await?;
    assert_eq!(none.status, 401);
    // The pages themselves are public: they hold no secret and ask for the token.
    let (status, page) = get_text(&format!("{base}/dashboard")).await?;
    assert_eq!(status, 200);
    assert!(page.contains("operator dashboard"));
    Ok(())
}

#[tokio::test]
async fn the_dashboard_lists_rooms_and_seats_and_a_kick_closes_with_4016() -> anyhow::Result<()> {
    let server = TestServer::start();
    let base = server.http_url();
    let mut ann = Player::matchmake(&server, "arena").await?;
    let mut bob = Player::matchmake(&server, "arena").await?;
    let room_id = ann.welcome.room.to_string();
    assert_eq!(bob.welcome.room.to_string(), room_id);
    for _ in 0..3 {
        ann.next_tick().await?;
        bob.next_tick().await?;
    }

    let listed = eventually(|| async {
        let page = operator_get(&format!("{base}/v1/dashboard/rooms?sort=players")).await?;
        let busy = page["rooms"][0].clone();
        Ok((busy["players"] == 2 && busy["ticks"]["ticks"].as_u64() > Some(0)).then_some(busy))
    })
    .await?;
    assert_eq!(listed["room_id"], room_id.as_str());

    let room = operator_get(&format!("{base}/v1/dashboard/rooms/{room_id}")).await?;
    let seats = room["seats"].as_array().cloned().unwrap_or_default();
    let players: Vec<u64> = seats
        .iter()
        .filter_map(|seat| seat["player"].as_u64())
        .collect();
    assert!(
        players.contains(&ann.id().0) && players.contains(&bob.id().0),
        "{room}"
    );
    assert!(seats.iter().all(|seat| seat["status"] == "connected"));
    assert!(room["state"]["entities"].is_array(), "{room}");

    let kicked =
        operator_delete(&format!("{base}/v1/rooms/{room_id}/players/{}", bob.id().0)).await?;
    assert_eq!(kicked.status, 202, "{}", kicked.body);
    let (_, close) = bob.connection.expect_close().await?;
    assert_eq!(close, Some(CloseCode::Kicked));
    // The seat is gone, not held for a resume; the other player plays on.
    eventually(|| async {
        let room = operator_get(&format!("{base}/v1/dashboard/rooms/{room_id}")).await?;
        Ok((room["seats"].as_array().map(Vec::len) == Some(1)).then_some(()))
    })
    .await?;
    ann.next_tick().await?;
    let again =
        operator_delete(&format!("{base}/v1/rooms/{room_id}/players/{}", bob.id().0)).await?;
    assert_eq!(
        (again.status, again.error_code()),
        (404, Some("player_not_found"))
    );
    assert_eq!(metric(&server, "ludus_players_kicked_total").await?, 1.0);
    assert!(metric(&server, "ludus_room_type_players{room_type=\"arena\"}").await? >= 1.0);
    Ok(())
}

#[tokio::test]
async fn the_stream_sends_an_overview_every_second() -> anyhow::Result<()> {
    let server = TestServer::start();
    let _player = Player::matchmake(&server, "arena").await?;
    let mut response = reqwest::Client::new()
        .get(format!("{}/v1/dashboard/stream", server.http_url()))
        .bearer_auth(TEST_OPERATOR_TOKEN)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    let events = tokio::time::timeout(WAIT, async {
        while text.matches("event: overview\n").count() < 2 {
            match response.chunk().await? {
                Some(chunk) => text.push_str(&String::from_utf8_lossy(&chunk)),
                None => anyhow::bail!("the stream ended early: {text}"),
            }
        }
        Ok(())
    })
    .await;
    events??;
    let first = text
        .lines()
        .find_map(|line| line.strip_prefix("data: "))
        .ok_or_else(|| anyhow::anyhow!("no data line in {text}"))?;
    let overview: serde_json::Value = serde_json::from_str(first)?;
    assert_eq!(overview["regions"][0]["nodes"][0]["rooms"], 1);
    assert_eq!(overview["drain"]["supported"], false);
    Ok(())
}
