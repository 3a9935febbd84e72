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
    assert!(
        metric(
            &server,
            "ludus_room_type_tick_duration_seconds_count{room_type=\"arena\"}"
        )
        .await?
            > 0.0
    );
    assert!(metric(&server, "ludus_process_cpu_seconds").await? > 0.0);
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

/// Every room id of the dashboard listing sorted by `sort`, `limit` rooms a page.
async fn walk_pages(base: &str, sort: &str, limit: usize) -> anyhow::Result<Vec<String>> {
    let mut order = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/v1/dashboard/rooms?sort={sort}&limit={limit}");
        if let Some(cursor) = &cursor {
            url.push_str(&format!("&cursor={cursor}"));
        }
        let page = operator_get(&url).await?;
        let rooms = page["rooms"].as_array().cloned().unwrap_or_default();
        anyhow::ensure!(rooms.len() <= limit, "more than the limit: {page}");
        order.extend(
            rooms
                .iter()
                .filter_map(|room| room["room_id"].as_str().map(str::to_owned)),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(order),
        }
    }
}

#[tokio::test]
async fn rooms_are_filtered_sorted_by_players_and_paged() -> anyhow::Result<()> {
    let server = TestServer::start();
    let base = server.http_url();
    let mut seated = Vec::new();
    for (room_id, players) in [("alpha-1", 2), ("beta-1", 1), ("alpha-2", 0)] {
        let created = post(
            &format!("{base}/v1/rooms"),
            serde_json::json!({ "room_type": "arena", "room_id": room_id }),
        )
        .await?;
        assert_eq!(created.status, 201, "{}", created.body);
        for _ in 0..players {
            let seat: Seat = serde_json::from_value(reserve(&server, room_id).await?.body)?;
            seated.push(Player::join(&seat).await?);
        }
    }

    // Most players first, one room a page, each cursor passed back as received (polled: a
    // room lists a join just after its welcome goes out).
    eventually(|| async {
        let order = walk_pages(&base, "players", 1).await?;
        Ok((order == ["alpha-1", "beta-1", "alpha-2"]).then_some(()))
    })
    .await?;

    let alphas = operator_get(&format!("{base}/v1/dashboard/rooms?q=alpha")).await?;
    let ids: Vec<&str> = alphas["rooms"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|room| room["room_id"].as_str())
        .collect();
    assert_eq!(ids, ["alpha-1", "alpha-2"]);

    for bad in ["limit=0", "limit=101", "cursor=nonsense", "sort=loudest"] {
        let url = format!("{base}/v1/dashboard/rooms?{bad}");
        let answer = send_with(Method::GET, &url, Some(TEST_OPERATOR_TOKEN), None).await?;
        assert_eq!(
            (answer.status, answer.error_code()),
            (400, Some("invalid_request")),
            "{bad}: {}",
            answer.body
        );
    }
    drop(seated);
    Ok(())
}

#[tokio::test]
async fn a_node_serves_a_bounded_number_of_streams_and_frees_a_slot_when_one_closes(
) -> anyhow::Result<()> {
    let server = TestServer::start();
    let url = format!("{}/v1/dashboard/stream", server.http_url());
    let open = || async {
        let response = reqwest::Client::new()
            .get(&url)
            .bearer_auth(TEST_OPERATOR_TOKEN)
            .send()
            .await?;
        anyhow::Ok(response)
    };
    let mut streams = Vec::new();
    for _ in 0..ludus_server::http::dashboard::MAX_STREAMS {
        let stream = open().await?;
        assert_eq!(stream.status(), 200);
        streams.push(stream);
    }
    let refused = open().await?;
    assert_eq!(refused.status(), 503);
    let body: serde_json::Value = refused.json().await?;
    assert_eq!(body["error"]["code"], "too_many_streams");
    // A client that goes away frees its slot once the server notices (at its next event).
    drop(streams.pop());
    eventually(|| async {
        let stream = open().await?;
        Ok((stream.status() == 200).then_some(stream))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn with_an_operator_listener_the_dashboard_reads_its_data_there_only() -> anyhow::Result<()> {
    let operator_listener = bind_loopback();
    let operator_url = format!("http://{}", operator_listener.local_addr()?);
    let server = TestServer::start_on(
        ludus_server::Listeners {
            api: bind_loopback(),
            operator: Some(operator_listener),
        },
        test_config(),
        ludus_server::game::GameRegistry::builtin(),
    );
    for base in [server.http_url(), operator_url.clone()] {
        let (status, _) = get_text(&format!("{base}/dashboard")).await?;
        assert_eq!(status, 200, "/dashboard on {base}");
    }
    let (status, _) = get_text(&format!("{}/play", server.http_url())).await?;
    assert_eq!(status, 200);
    let (status, _) = get_text(&format!("{operator_url}/play")).await?;
    assert_eq!(status, 404, "players do not come to the operator listener");
    let on_players = send_with(
        Method::GET,
        &format!("{}/v1/dashboard/overview", server.http_url()),
        Some(TEST_OPERATOR_TOKEN),
        None,
    )
    .await?;
    assert_eq!(
        (on_players.status, on_players.error_code()),
        (404, Some("not_found"))
    );
    operator_get(&format!("{operator_url}/v1/dashboard/overview")).await?;
    Ok(())
}
