//! Range and consistency checks over a merged [`ServerConfig`]: one list of problems, each
//! naming its dotted field, so [`super::Loaded::validate`] can say where the value came from.

use super::{LobbyAuthMode, ServerConfig};

/// What a registered game allows, so overrides can only narrow it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GameLimits<'a> {
    /// The room type name.
    pub name: &'a str,
    /// The game's largest number of seats.
    pub max_players: u32,
}

/// Shortest operator token accepted, in bytes: long enough that guessing is hopeless.
pub const MIN_OPERATOR_TOKEN_BYTES: usize = 24;
/// Shortest HMAC secret accepted for player tokens, in bytes (RFC 7518 §3.2 asks for a key as
/// long as the hash).
pub const MIN_JWT_SECRET_BYTES: usize = 32;
/// Player-token algorithms the lobby accepts by name.
pub const JWT_ALGORITHMS: [&str; 12] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "EdDSA",
];

fn check_range<T: PartialOrd + std::fmt::Display>(
    found: &mut Vec<(String, String)>,
    field: &str,
    value: T,
    min: T,
    max: T,
    unit: &str,
) {
    if value < min || value > max {
        found.push((
            field.to_owned(),
            format!("must be between {min} and {max}{unit}, got {value}"),
        ));
    }
}

pub(super) fn problems(config: &ServerConfig, games: &[GameLimits<'_>]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let server = &config.server;
    if let Some(url) = &server.public_url {
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
            found.push((
                "server.public_url".to_owned(),
                format!("must be an http:// or https:// URL, got `{url}`"),
            ));
        }
    }
    if let Some(secret) = &server.secret {
        if secret.len() < 16 {
            found.push((
                "server.secret".to_owned(),
                format!("must be at least 16 bytes, got {}", secret.len()),
            ));
        }
    }
    check_range(&mut found, "server.workers", server.workers, 0, 256, "");
    check_range(
        &mut found,
        "server.room_threads",
        server.room_threads,
        0,
        256,
        "",
    );
    check_range(
        &mut found,
        "server.shutdown_timeout_ms",
        server.shutdown_timeout_ms,
        100,
        300_000,
        " ms",
    );
    let session = &config.session;
    check_range(
        &mut found,
        "session.max_message_bytes",
        session.max_message_bytes,
        64,
        1 << 20,
        " bytes",
    );
    check_range(
        &mut found,
        "session.hello_timeout_ms",
        session.hello_timeout_ms,
        100,
        60_000,
        " ms",
    );
    check_range(
        &mut found,
        "session.heartbeat_interval_ms",
        session.heartbeat_interval_ms,
        50,
        60_000,
        " ms",
    );
    check_range(
        &mut found,
        "session.input_rate_per_sec",
        session.input_rate_per_sec,
        1,
        10_000,
        "",
    );
    check_range(
        &mut found,
        "session.input_burst",
        session.input_burst,
        1,
        10_000,
        "",
    );
    check_range(
        &mut found,
        "session.flow_window_ms",
        session.flow_window_ms,
        100,
        60_000,
        " ms",
    );
    check_range(
        &mut found,
        "session.slow_client_timeout_ms",
        session.slow_client_timeout_ms,
        100,
        600_000,
        " ms",
    );
    if session.idle_timeout_ms <= session.heartbeat_interval_ms {
        found.push((
            "session.idle_timeout_ms".to_owned(),
            format!(
                "must exceed session.heartbeat_interval_ms ({} ms), got {} ms",
                session.heartbeat_interval_ms, session.idle_timeout_ms
            ),
        ));
    }
    let rooms = &config.rooms;
    check_range(
        &mut found,
        "rooms.seat_reservation_ms",
        rooms.seat_reservation_ms,
        1_000,
        600_000,
        " ms",
    );
    check_range(
        &mut found,
        "rooms.empty_grace_ms",
        rooms.empty_grace_ms,
        0,
        86_400_000,
        " ms",
    );
    check_range(
        &mut found,
        "rooms.max_rooms",
        rooms.max_rooms,
        1,
        1_000_000,
        "",
    );
    check_range(
        &mut found,
        "rooms.max_queued_inputs_per_player",
        rooms.max_queued_inputs_per_player,
        1,
        1_000,
        "",
    );
    let cluster = &config.cluster;
    match (&cluster.regions_file, &cluster.node_id) {
        (Some(_), None) => found.push((
            "cluster.node_id".to_owned(),
            "is required when cluster.regions_file is set".to_owned(),
        )),
        (None, Some(_)) => found.push((
            "cluster.regions_file".to_owned(),
            "is required when cluster.node_id is set".to_owned(),
        )),
        _ => {}
    }
    if cluster.node_id.is_some() && config.server.secret.is_none() {
        found.push((
            "server.secret".to_owned(),
            "is required in a cluster: every node must sign seat tokens with the same secret"
                .to_owned(),
        ));
    }
    check_range(
        &mut found,
        "cluster.lease_ms",
        cluster.lease_ms,
        1_000,
        600_000,
        " ms",
    );
    check_range(
        &mut found,
        "cluster.request_timeout_ms",
        cluster.request_timeout_ms,
        100,
        60_000,
        " ms",
    );
    check_range(
        &mut found,
        "cluster.drain_timeout_ms",
        cluster.drain_timeout_ms,
        0,
        3_600_000,
        " ms",
    );
    for (name, section) in &config.room_types {
        let Some(game) = games.iter().find(|game| game.name == name) else {
            let registered: Vec<&str> = games.iter().map(|game| game.name).collect();
            found.push((
                format!("room_types.{name}"),
                format!(
                    "unknown room type `{name}`; registered: {}",
                    registered.join(", ")
                ),
            ));
            continue;
        };
        if let Some(tick_hz) = section.tick_hz {
            check_range(
                &mut found,
                &format!("room_types.{name}.tick_hz"),
                tick_hz,
                1,
                240,
                " Hz",
            );
        }
        let windows = [
            ("resume_window_ms", section.resume_window_ms),
            ("checkpoint_interval_ms", section.checkpoint_interval_ms),
        ];
        for (field, window) in windows {
            if let Some(window) = window {
                check_range(
                    &mut found,
                    &format!("room_types.{name}.{field}"),
                    window,
                    0,
                    600_000,
                    " ms",
                );
            }
        }
        if let Some(max_players) = section.max_players {
            check_range(
                &mut found,
                &format!("room_types.{name}.max_players"),
                max_players,
                1,
                game.max_players,
                " (the game's maximum)",
            );
        }
    }
    security_problems(config, &mut found);
    found
}

/// Checks of the `[http]`, `[operator]` and `[lobby]` sections and of the signing secrets.
fn security_problems(config: &ServerConfig, found: &mut Vec<(String, String)>) {
    for (index, secret) in config.server.previous_secrets.iter().enumerate() {
        if secret.len() < 16 {
            found.push((
                "server.previous_secrets".to_owned(),
                format!(
                    "secret #{} must be at least 16 bytes, got {}",
                    index + 1,
                    secret.len()
                ),
            ));
        }
    }
    let http = &config.http;
    check_range(
        found,
        "http.body_timeout_ms",
        http.body_timeout_ms,
        100,
        600_000,
        " ms",
    );
    check_range(
        found,
        "http.max_connections",
        http.max_connections,
        1,
        1_000_000,
        "",
    );
    check_range(
        found,
        "http.max_connections_per_ip",
        http.max_connections_per_ip,
        1,
        http.max_connections.max(1),
        " (http.max_connections)",
    );
    check_range(
        found,
        "http.max_websockets",
        http.max_websockets,
        1,
        10_000_000,
        "",
    );
    check_range(
        found,
        "http.max_websockets_per_ip",
        http.max_websockets_per_ip,
        1,
        http.max_websockets.max(1),
        " (http.max_websockets)",
    );
    for origin in &http.allowed_origins {
        if let Err(message) = crate::origin::OriginRule::parse(origin) {
            found.push(("http.allowed_origins".to_owned(), message));
        }
    }
    for token in &config.operator.tokens {
        if token.len() < MIN_OPERATOR_TOKEN_BYTES {
            found.push((
                "operator.tokens".to_owned(),
                format!(
                    "each token must be at least {MIN_OPERATOR_TOKEN_BYTES} bytes, got one of {}",
                    token.len()
                ),
            ));
        }
    }
    if config.operator.listen.is_some() && config.operator.listen == Some(config.server.listen) {
        found.push((
            "operator.listen".to_owned(),
            "must differ from server.listen (leave it unset to serve operator routes there)"
                .to_owned(),
        ));
    }
    let lobby = &config.lobby;
    for (field, value) in [
        ("lobby.seats_per_minute", lobby.seats_per_minute),
        ("lobby.seats_burst", lobby.seats_burst),
        (
            "lobby.seats_per_minute_per_ip",
            lobby.seats_per_minute_per_ip,
        ),
        ("lobby.rooms_per_minute", lobby.rooms_per_minute),
        ("lobby.rooms_burst", lobby.rooms_burst),
        (
            "lobby.rooms_per_minute_per_ip",
            lobby.rooms_per_minute_per_ip,
        ),
        ("lobby.max_outstanding_seats", lobby.max_outstanding_seats),
    ] {
        check_range(found, field, value, 1, 1_000_000, "");
    }
    check_range(
        found,
        "lobby.max_metadata_bytes",
        lobby.max_metadata_bytes,
        0,
        15_000,
        " bytes",
    );
    if !JWT_ALGORITHMS.contains(&lobby.jwt_algorithm.as_str()) {
        found.push((
            "lobby.jwt_algorithm".to_owned(),
            format!(
                "must be one of {}, got `{}`",
                JWT_ALGORITHMS.join(", "),
                lobby.jwt_algorithm
            ),
        ));
    }
    if lobby.auth == LobbyAuthMode::Jwt {
        let hmac = lobby.jwt_algorithm.starts_with("HS");
        match (&lobby.jwt_secret, &lobby.jwt_public_key_file, hmac) {
            (Some(secret), None, true) if secret.len() < MIN_JWT_SECRET_BYTES => found.push((
                "lobby.jwt_secret".to_owned(),
                format!("must be at least {MIN_JWT_SECRET_BYTES} bytes, got {}", secret.len()),
            )),
            (Some(_), None, true) | (None, Some(_), false) => {}
            (None, None, _) => found.push((
                "lobby.auth".to_owned(),
                "`jwt` needs lobby.jwt_secret (HS*) or lobby.jwt_public_key_file (RS*, PS*, ES*, EdDSA)".to_owned(),
            )),
            (Some(_), Some(_), _) => found.push((
                "lobby.jwt_secret".to_owned(),
                "set lobby.jwt_secret or lobby.jwt_public_key_file, not both".to_owned(),
            )),
            (Some(_), None, false) => found.push((
                "lobby.jwt_algorithm".to_owned(),
                format!("`{}` needs lobby.jwt_public_key_file, not a secret", lobby.jwt_algorithm),
            )),
            (None, Some(_), true) => found.push((
                "lobby.jwt_algorithm".to_owned(),
                format!("`{}` needs lobby.jwt_secret, not a public key", lobby.jwt_algorithm),
            )),
        }
    }
    let rooms = &config.rooms;
    check_range(
        found,
        "rooms.max_event_bytes",
        rooms.max_event_bytes,
        16,
        1 << 20,
        " bytes",
    );
    check_range(
        found,
        "rooms.event_bytes_per_tick",
        rooms.event_bytes_per_tick,
        rooms.max_event_bytes,
        1 << 24,
        " bytes (at least rooms.max_event_bytes)",
    );
    check_range(
        found,
        "rooms.resume_window_ms",
        rooms.resume_window_ms,
        0,
        600_000,
        " ms",
    );
    check_range(
        found,
        "rooms.resume_history_bytes",
        rooms.resume_history_bytes,
        0,
        1 << 26,
        " bytes",
    );
    check_range(
        found,
        "rooms.checkpoint_interval_ms",
        rooms.checkpoint_interval_ms,
        0,
        600_000,
        " ms",
    );
    check_range(
        found,
        "rooms.max_checkpoint_bytes",
        rooms.max_checkpoint_bytes,
        1_024,
        700_000,
        " bytes",
    );
    check_range(
        found,
        "rooms.max_queued_event_bytes",
        rooms.max_queued_event_bytes,
        rooms.event_bytes_per_tick,
        1 << 26,
        " bytes (at least rooms.event_bytes_per_tick)",
    );
}
