//! The operator side of the trust boundary, over real sockets: operator routes need an operator
//! token (finding 1), what operators send into rooms is bounded in size, depth and per-tick
//! bytes (findings 2 and 5), and listings are paged with bounded metadata (finding 6).

use ludus_protocol::Value;
use ludus_server::game::GameRegistry;
use ludus_tests::*;
use reqwest::Method;

/// A second token the test servers accept, as during a rotation.
const ROTATED_TOKEN: &str = "ludus-test-operator-token-rotated-9876";

fn rotating_config() -> ludus_server::config::ServerConfig {
    let mut config = test_config();
    config.operator.tokens = vec![TEST_OPERATOR_TOKEN.to_owned(), ROTATED_TOKEN.to_owned()];
    config
}

/// `depth` nested arrays around a number.
fn nested(depth: usize) -> serde_json::Value {
    (0..depth).fold(serde_json::json!(1), |inner, _| serde_json::json!([inner]))
}

#[tokio::test]
async fn every_operator_route_needs_a_valid_operator_token() -> anyhow::Result<()> {
    let server = TestServer::start_with(rotating_config(), GameRegistry::builtin());
    let base = server.http_url();
    let routes: Vec<(Method, String, Option<serde_json::Value>)> = vec![
        (
            Method::POST,
            "/v1/rooms/{room}/messages".to_owned(),
            Some(serde_json::json!({"payload": {"text": "hi"}})),
        ),
        (
            Method::POST,
            "/v1/regions/local/announce".to_owned(),
            Some(serde_json::json!({"payload": "maintenance"})),
        ),
        (Method::DELETE, "/v1/rooms/{room}".to_owned(), None),
    ];
    for (method, path, body) in routes {
        let room = create_room(&server, "arena", 16).await?;
        let url = format!("{base}{}", path.replace("{room}", &room));
        let matrix = [
            (None, 401, Some("unauthorized")),
            (Some("wrong-token-0123456789abcdef"), 403, Some("forbidden")),
            (Some(ROTATED_TOKEN), 202, None),
            (Some(TEST_OPERATOR_TOKEN), 202, None),
        ];
        for (token, status, code) in matrix {
            // A disposed room is gone: give the last row a fresh one.
            let url = if method == Method::DELETE && token == Some(TEST_OPERATOR_TOKEN) {
                let fresh = create_room(&server, "arena", 16).await?;
                format!("{base}{}", path.replace("{room}", &fresh))
            } else {
                url.clone()
            };
            let answer = send_with(method.clone(), &url, token, body.clone()).await?;
            assert_eq!(
                (answer.status, answer.error_code()),
                (status, code),
                "{method} {path} with {token:?}: {}",
                answer.body
            );
        }
    }
    assert!(metric(&server, "ludus_http_refused_total{reason=\"forbidden\"}").await? >= 3.0);
    Ok(())
}

#[tokio::test]
async fn operator_routes_can_live_on_their_own_listener() -> anyhow::Result<()> {
    let operator_listener = bind_loopback();
    let operator_url = format!("http://{}", operator_listener.local_addr()?);
    let server = TestServer::start_on(
        ludus_server::Listeners {
            api: bind_loopback(),
            operator: Some(operator_listener),
        },
        test_config(),
        GameRegistry::builtin(),
    );
    let room = create_room(&server, "arena", 16).await?;
    let on_api = operator_delete(&format!("{}/v1/rooms/{room}", server.http_url())).await?;
    assert_eq!(
        (on_api.status, on_api.error_code()),
        (404, Some("not_found"))
    );
    let players_route = post(
        &format!("{operator_url}/v1/matchmake"),
        serde_json::json!({"room_type": "arena"}),
    )
    .await?;
    assert_eq!(players_route.status, 404, "{}", players_route.body);
    let on_operator = operator_delete(&format!("{operator_url}/v1/rooms/{room}")).await?;
    assert_eq!(on_operator.status, 202, "{}", on_operator.body);
    let (status, text) = get_text(&format!("{operator_url}/metrics")).await?;
    assert_eq!(status, 200);
    assert!(text.contains("ludus_rooms"));
    Ok(())
}

#[tokio::test]
async fn payloads_deeper_than_clients_accept_are_refused_and_the_deepest_allowed_decodes(
) -> anyhow::Result<()> {
    let server = TestServer::start();
    let mut player = Player::matchmake(&server, "arena").await?;
    let url = format!(
        "{}/v1/rooms/{}/messages",
        server.http_url(),
        player.welcome.room
    );
    let too_deep = operator_post(&url, serde_json::json!({"payload": nested(40)})).await?;
    assert_eq!(
        (too_deep.status, too_deep.error_code()),
        (400, Some("invalid_request")),
        "{}",
        too_deep.body
    );
    let announce = format!("{}/v1/regions/local/announce", server.http_url());
    let too_deep = operator_post(&announce, serde_json::json!({"payload": nested(17)})).await?;
    assert_eq!(too_deep.status, 400, "{}", too_deep.body);
    let deepest = operator_post(&url, serde_json::json!({"payload": nested(16)})).await?;
    assert_eq!(deepest.status, 202, "{}", deepest.body);
    // The client's own decoder (depth limit 32) reads every frame, the deep event included.
    for _ in 0..40 {
        if let Some(delta) = player.next_tick().await? {
            if !delta.events.is_empty() {
                return Ok(());
            }
        }
    }
    anyhow::bail!("the deepest allowed payload never arrived")
}

/// The encoded size of a value, as it weighs in a frame.
fn weight(value: &Value) -> usize {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).map_or(0, |()| out.len())
}

#[tokio::test]
async fn a_message_flood_is_refused_at_the_door_and_never_exceeds_the_tick_budget(
) -> anyhow::Result<()> {
    let budget = 8_192;
    let mut config = test_config();
    config.rooms.event_bytes_per_tick = budget;
    config.rooms.max_queued_event_bytes = 32_768;
    // A slow tick drains the queue slowly (two messages per tick, four a second), so the
    // flood fills it however slowly this machine answers requests.
    config.room_types.insert(
        "arena".to_owned(),
        ludus_server::config::RoomTypeSection {
            tick_hz: Some(2),
            ..Default::default()
        },
    );
    let server = TestServer::start_with(config, GameRegistry::builtin());
    let mut player = Player::matchmake(&server, "arena").await?;
    let url = format!(
        "{}/v1/rooms/{}/messages",
        server.http_url(),
        player.welcome.room
    );
    let oversized = operator_post(&url, serde_json::json!({"payload": "x".repeat(15_000)})).await?;
    assert_eq!(
        (oversized.status, oversized.error_code()),
        (413, Some("payload_too_large")),
        "{}",
        oversized.body
    );
    // 40 messages of ~4 KB as fast as the API takes them: the queue holds 8, the rest are
    // told to come back.
    let mut accepted = 0;
    let mut busy = 0;
    for _ in 0..40 {
        let answer = operator_post(&url, serde_json::json!({"payload": "y".repeat(4_000)})).await?;
        match (answer.status, answer.error_code()) {
            (202, _) => accepted += 1,
            (429, Some("room_busy")) => {
                assert!(answer.body["error"]["retry_after"].as_u64().is_some());
                busy += 1;
            }
            other => anyhow::bail!("unexpected answer {other:?}: {}", answer.body),
        }
    }
    assert!(accepted >= 8, "accepted {accepted}");
    assert!(busy > 0, "nothing was refused");
    // Every tick's operator events weigh at most the budget; all accepted ones arrive.
    let mut delivered = 0;
    for _ in 0..200 {
        if delivered == accepted {
            break;
        }
        if let Some(delta) = player.next_tick().await? {
            let bytes: usize = delta.events.iter().map(weight).sum();
            assert!(bytes <= budget, "a tick carried {bytes} bytes of events");
            delivered += delta.events.len();
        }
    }
    assert_eq!(delivered, accepted);
    assert!(metric(&server, "ludus_events_refused_total").await? >= f64::from(busy));
    Ok(())
}

#[tokio::test]
async fn listings_come_in_pages_and_metadata_is_bounded() -> anyhow::Result<()> {
    let server = TestServer::start();
    let base = server.http_url();
    let metadata = serde_json::json!({"label": "m".repeat(1_000)});
    for _ in 0..130 {
        let created = post(
            &format!("{base}/v1/rooms"),
            serde_json::json!({"room_type": "tictactoe", "metadata": metadata}),
        )
        .await?;
        assert_eq!(created.status, 201, "{}", created.body);
    }
    let too_big = post(
        &format!("{base}/v1/rooms"),
        serde_json::json!({"room_type": "arena", "metadata": {"label": "m".repeat(3_000)}}),
    )
    .await?;
    assert_eq!(
        too_big.error_code(),
        Some("payload_too_large"),
        "{}",
        too_big.body
    );
    let too_deep = post(
        &format!("{base}/v1/rooms"),
        serde_json::json!({"room_type": "arena", "metadata": nested(20)}),
    )
    .await?;
    assert_eq!(
        too_deep.error_code(),
        Some("invalid_request"),
        "{}",
        too_deep.body
    );

    let first = get_json(&format!("{base}/v1/rooms")).await?;
    assert_eq!(
        first["rooms"].as_array().map(Vec::len),
        Some(50),
        "default page"
    );
    let (status, _) = get_text(&format!("{base}/v1/rooms?limit=101")).await?;
    assert_eq!(status, 400);
    let (status, _) = get_text(&format!("{base}/v1/rooms?cursor=forged")).await?;
    assert_eq!(status, 400);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let url = match &cursor {
            None => format!("{base}/v1/rooms?limit=100"),
            Some(cursor) => format!("{base}/v1/rooms?limit=100&cursor={cursor}"),
        };
        let page = get_json(&url).await?;
        let rooms = page["rooms"].as_array().cloned().unwrap_or_default();
        assert!(rooms.len() <= 100);
        seen.extend(
            rooms
                .iter()
                .filter_map(|room| room["room_id"].as_str().map(str::to_owned)),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((seen.len(), unique.len()), (130, 130));
    Ok(())
}

#[tokio::test]
async fn errors_never_echo_a_large_input() -> anyhow::Result<()> {
    let server = TestServer::start();
    let answer = post(
        &format!("{}/v1/matchmake", server.http_url()),
        serde_json::json!({"room_type": "a".repeat(16_000)}),
    )
    .await?;
    assert_eq!(answer.error_code(), Some("unknown_room_type"));
    let message = answer.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.chars().count() <= 201, "{} chars", message.len());
    Ok(())
}
