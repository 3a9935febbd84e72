//! Node configuration: embedded defaults, an optional TOML file, environment overrides and
//! command-line flags, in that order of precedence, validated once before anything starts.
//!
//! Every knob below documents its default, unit and consequence. A bad value stops start-up
//! with a message naming where it came from: `ludus.toml:12: session.max_message_bytes: ...`
//! for the file, `LUDUS__SESSION__MAX_MESSAGE_BYTES: ...` for the environment, `--listen: ...`
//! for a flag.
//!
//! Environment overrides: `LUDUS__<SECTION>__<KEY>=value` (double underscores separate the
//! path, e.g. `LUDUS__SESSION__IDLE_TIMEOUT_MS=30000`); the value is read as TOML (a number, a
//! boolean, or else a string). They arrive as a map so tests control them.

use ludus_regions::{line_of_offset, TomlSourceMap};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Prefix of environment variables that override config fields.
pub const ENV_PREFIX: &str = "LUDUS__";

/// The whole node configuration.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Listening, identity and process-level settings.
    pub server: ServerSection,
    /// Per-connection limits.
    pub session: SessionSection,
    /// Room lifecycle.
    pub rooms: RoomsSection,
    /// Per room type overrides of the game's defaults, keyed by room type name.
    pub room_types: BTreeMap<String, RoomTypeSection>,
    /// Cluster membership; absent, the node runs alone.
    pub cluster: ClusterSection,
}

/// `[cluster]`: joining a multi-node cluster over NATS. Leave `regions_file` unset to run one
/// node alone with the embedded in-memory directory (no NATS needed).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    /// The operator's region file (regions, nodes, NATS URL; see `region-config/README.md`).
    /// Default: none, single-node mode.
    pub regions_file: Option<PathBuf>,
    /// This node's id in the region file. Required with `regions_file`.
    pub node_id: Option<String>,
    /// Lease on each room's directory entry, in milliseconds: a room whose node stops renewing
    /// it (every third of this) disappears from the directory after this long. Default 6000.
    pub lease_ms: u64,
    /// Longest wait for another node to answer (create, reserve, message), in milliseconds.
    /// Default 2000.
    pub request_timeout_ms: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        Self {
            regions_file: None,
            node_id: None,
            lease_ms: 6_000,
            request_timeout_ms: 2_000,
        }
    }
}

/// `[server]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on. Default `127.0.0.1:7878` (loopback only: expose deliberately).
    pub listen: SocketAddr,
    /// Base URL clients reach this node at (`https://eu1.example.com`), used to build the
    /// `ws_url` returned by matchmaking. Default: none, derived from each request's `Host`.
    pub public_url: Option<String>,
    /// Secret for signing seat tokens (at least 16 bytes). Every node of a cluster needs the same
    /// one. Default: none, a random secret per process (tokens die with the process).
    pub secret: Option<String>,
    /// HTTP worker threads: they accept connections, serve the lobby API and answer WebSocket
    /// handshakes (sessions then move to their room's thread). Default 0 = one per core.
    pub workers: usize,
    /// Threads that run room actors, and their players' sessions and sockets. Default 0 = one
    /// per core.
    pub room_threads: usize,
    /// Longest time a graceful shutdown waits for clients to go, in milliseconds. Default 5000.
    pub shutdown_timeout_ms: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            public_url: None,
            secret: None,
            workers: 0,
            room_threads: 0,
            shutdown_timeout_ms: 5_000,
        }
    }
}

/// `[session]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSection {
    /// Largest client message accepted, in bytes; larger frames close the session with 4006.
    /// Default 4096.
    pub max_message_bytes: usize,
    /// Time a new connection has to send `hello`, in milliseconds; then 4007. Default 5000.
    pub hello_timeout_ms: u64,
    /// Interval between server WebSocket pings, in milliseconds. Default 5000.
    pub heartbeat_interval_ms: u64,
    /// Close a session from which nothing (not even a pong) arrived for this long, in
    /// milliseconds, with 4007. Default 15000; must exceed the heartbeat interval.
    pub idle_timeout_ms: u64,
    /// Sustained client messages per second allowed. Default 60 (three per tick at 20 Hz).
    pub input_rate_per_sec: u32,
    /// Messages allowed in a burst above the rate. Default 30.
    pub input_burst: u32,
    /// Flow-control window as time, converted to ticks per room: the server stops sending to a
    /// client whose unacknowledged frames span this long. Default 2000 ms (40 ticks at 20 Hz).
    pub flow_window_ms: u64,
    /// Close a client paused by flow control for this long with 4008, in milliseconds.
    /// Default 10000.
    pub slow_client_timeout_ms: u64,
}

impl Default for SessionSection {
    fn default() -> Self {
        Self {
            max_message_bytes: 4096,
            hello_timeout_ms: 5_000,
            heartbeat_interval_ms: 5_000,
            idle_timeout_ms: 15_000,
            input_rate_per_sec: 60,
            input_burst: 30,
            flow_window_ms: 2_000,
            slow_client_timeout_ms: 10_000,
        }
    }
}

/// `[rooms]`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomsSection {
    /// How long a reserved seat (and its token) stays valid, in milliseconds. Default 15000;
    /// at least 1000 because token expiry has one-second resolution.
    pub seat_reservation_ms: u64,
    /// How long an empty room (no players, no reservations) lives before it is disposed, in
    /// milliseconds. Default 30000.
    pub empty_grace_ms: u64,
    /// Rooms this node hosts at most; creation beyond answers 503. Default 10000.
    pub max_rooms: usize,
    /// Inputs one room holds between two ticks, per seat; excess inputs are dropped with
    /// `server_busy`. Default 8.
    pub max_queued_inputs_per_player: usize,
}

impl Default for RoomsSection {
    fn default() -> Self {
        Self {
            seat_reservation_ms: 15_000,
            empty_grace_ms: 30_000,
            max_rooms: 10_000,
            max_queued_inputs_per_player: 8,
        }
    }
}

/// `[room_types.<name>]`: overrides of a registered game's defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomTypeSection {
    /// Ticks per second (1 to 240).
    pub tick_hz: Option<u16>,
    /// Seats per room (1 to 10000).
    pub max_players: Option<u32>,
}

impl SessionSection {
    /// The hello timeout as a duration.
    pub fn hello_timeout(&self) -> Duration {
        Duration::from_millis(self.hello_timeout_ms)
    }
    /// The heartbeat interval as a duration.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }
    /// The idle timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms)
    }
    /// The slow-client timeout as a duration.
    pub fn slow_client_timeout(&self) -> Duration {
        Duration::from_millis(self.slow_client_timeout_ms)
    }
}

/// One override of a config field, from the environment or a flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Override {
    /// Dotted field path (`session.max_message_bytes`).
    pub field: String,
    /// The value as text, read as TOML (falling back to a plain string).
    pub value: String,
    /// Where it came from, for error messages (`LUDUS__SESSION__MAX_MESSAGE_BYTES`, `--listen`).
    pub origin: String,
}

impl Override {
    /// Overrides from environment variables named `LUDUS__SECTION__KEY`.
    pub fn from_env(vars: &BTreeMap<String, String>) -> Vec<Override> {
        vars.iter()
            .filter_map(|(name, value)| {
                let path = name.strip_prefix(ENV_PREFIX)?;
                let field = path
                    .split("__")
                    .map(str::to_ascii_lowercase)
                    .collect::<Vec<_>>()
                    .join(".");
                Some(Override {
                    field,
                    value: value.clone(),
                    origin: name.clone(),
                })
            })
            .collect()
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read config file: {source}")]
    Read {
        /// The file.
        file: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A field in the file is malformed or unknown, or the TOML is invalid.
    #[error("{file}:{line}: {field}: {message}")]
    File {
        /// The file.
        file: PathBuf,
        /// 1-based line.
        line: usize,
        /// The field (dotted path), or `toml` for a syntax error outside any field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// An override names an unknown field or has a value of the wrong type.
    #[error("{origin}: {field}: {message}")]
    Override {
        /// The environment variable or flag.
        origin: String,
        /// The field it tried to set.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A value has the right type but is out of range or inconsistent.
    #[error("{location}: {field}: {message}")]
    Invalid {
        /// `file:line`, the override's origin, or `default`.
        location: String,
        /// The field (dotted path).
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn toml_value(text: &str) -> toml::Value {
    toml::from_str::<BTreeMap<String, toml::Value>>(&format!("value = {text}"))
        .ok()
        .and_then(|mut table| table.remove("value"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

fn apply_override(config: ServerConfig, item: &Override) -> Result<ServerConfig, ConfigError> {
    let error = |message: String| ConfigError::Override {
        origin: item.origin.clone(),
        field: item.field.clone(),
        message,
    };
    let mut root = toml::Value::try_from(&config).map_err(|e| error(e.to_string()))?;
    let mut cursor = &mut root;
    let segments: Vec<&str> = item.field.split('.').collect();
    let (last, parents) = segments
        .split_last()
        .ok_or_else(|| error("empty field path".to_owned()))?;
    for segment in parents {
        let table = cursor
            .as_table_mut()
            .ok_or_else(|| error(format!("`{segment}` is not inside a table")))?;
        cursor = table
            .entry((*segment).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    }
    let table = cursor
        .as_table_mut()
        .ok_or_else(|| error(format!("`{last}` is not inside a table")))?;
    table.insert((*last).to_owned(), toml_value(&item.value));
    ServerConfig::deserialize(root).map_err(|e| error(e.message().to_owned()))
}

/// Parses the file (if any) and applies the overrides in order; does not validate.
pub fn load(file: Option<&Path>, overrides: &[Override]) -> Result<Loaded, ConfigError> {
    let (config, text) = match file {
        None => (ServerConfig::default(), None),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                file: path.to_owned(),
                source,
            })?;
            let config = toml::from_str::<ServerConfig>(&text).map_err(|error| {
                let offset = error.span().map_or(0, |span| span.start);
                let field = TomlSourceMap::parse(&text)
                    .and_then(|map| map.field_at_offset(offset))
                    .unwrap_or_else(|| "toml".to_owned());
                ConfigError::File {
                    file: path.to_owned(),
                    line: line_of_offset(&text, offset),
                    field,
                    message: error.message().to_owned(),
                }
            })?;
            (config, Some((path.to_owned(), text)))
        }
    };
    let config = overrides.iter().try_fold(config, apply_override)?;
    Ok(Loaded {
        config,
        file: text,
        overrides: overrides.to_vec(),
    })
}

/// A parsed configuration that remembers where each field came from, so validation errors can
/// point at the right place.
#[derive(Debug)]
pub struct Loaded {
    /// The merged configuration.
    pub config: ServerConfig,
    file: Option<(PathBuf, String)>,
    overrides: Vec<Override>,
}

impl Loaded {
    fn locate(&self, field: &str) -> String {
        if let Some(item) = self.overrides.iter().rev().find(|item| item.field == field) {
            return item.origin.clone();
        }
        if let Some((path, text)) = &self.file {
            let line = TomlSourceMap::parse(text).and_then(|map| map.line_of_field(field));
            if let Some(line) = line {
                return format!("{}:{line}", path.display());
            }
        }
        "default".to_owned()
    }

    /// Checks ranges and consistency; `room_types` are the registered game names.
    pub fn validate(self, room_types: &[&str]) -> Result<ServerConfig, ConfigError> {
        if let Some((field, message)) = problems(&self.config, room_types).into_iter().next() {
            return Err(ConfigError::Invalid {
                location: self.locate(&field),
                field,
                message,
            });
        }
        Ok(self.config)
    }
}

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

fn problems(config: &ServerConfig, room_types: &[&str]) -> Vec<(String, String)> {
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
    for (name, section) in &config.room_types {
        if !room_types.contains(&name.as_str()) {
            found.push((
                format!("room_types.{name}"),
                format!(
                    "unknown room type `{name}`; registered: {}",
                    room_types.join(", ")
                ),
            ));
            continue;
        }
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
        if let Some(max_players) = section.max_players {
            check_range(
                &mut found,
                &format!("room_types.{name}.max_players"),
                max_players,
                1,
                10_000,
                "",
            );
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const GAMES: [&str; 2] = ["arena", "tictactoe"];

    /// A temporary config file holding `text`, removed when the handle drops.
    fn write(text: &str) -> (tempfile::NamedTempFile, PathBuf) {
        let mut file = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("temp dir is writable");
        std::io::Write::write_all(&mut file, text.as_bytes()).expect("temp file is writable");
        let path = file.path().to_owned();
        (file, path)
    }

    #[test]
    fn no_file_gives_the_embedded_default() {
        let config = load(None, &[])
            .expect("loads")
            .validate(&GAMES)
            .expect("valid");
        assert_eq!(config, ServerConfig::default());
    }

    #[test]
    fn an_out_of_range_value_names_file_line_and_field() {
        let (_guard, path) = write("[server]\nworkers = 2\n\n[session]\nmax_message_bytes = 10\n");
        let error = load(Some(&path), &[])
            .expect("parses")
            .validate(&GAMES)
            .expect_err("invalid");
        assert_eq!(
            error.to_string(),
            format!(
                "{}:5: session.max_message_bytes: must be between 64 and 1048576 bytes, got 10",
                path.display()
            )
        );
    }

    #[test]
    fn an_unknown_field_names_its_line() {
        let (_guard, path) = write("[session]\nmax_mesage_bytes = 10\n");
        let error = load(Some(&path), &[]).expect_err("unknown field");
        let text = error.to_string();
        assert!(
            text.starts_with(&format!(
                "{}:2: session.max_mesage_bytes: unknown field",
                path.display()
            )),
            "{text}"
        );
    }

    #[test]
    fn a_wrong_type_names_its_line() {
        let (_guard, path) = write("[server]\nlisten = 12\n");
        let error = load(Some(&path), &[]).expect_err("wrong type");
        assert!(
            error
                .to_string()
                .starts_with(&format!("{}:2: server.listen:", path.display())),
            "{error}"
        );
    }

    #[test]
    fn environment_overrides_win_and_are_named_in_errors() {
        let vars = BTreeMap::from([
            (
                "LUDUS__SESSION__IDLE_TIMEOUT_MS".to_owned(),
                "60000".to_owned(),
            ),
            ("LUDUS__ROOMS__MAX_ROOMS".to_owned(), "0".to_owned()),
            ("UNRELATED".to_owned(), "x".to_owned()),
        ]);
        let loaded = load(None, &Override::from_env(&vars)).expect("parses");
        assert_eq!(loaded.config.session.idle_timeout_ms, 60_000);
        let error = loaded.validate(&GAMES).expect_err("max_rooms 0");
        assert_eq!(
            error.to_string(),
            "LUDUS__ROOMS__MAX_ROOMS: rooms.max_rooms: must be between 1 and 1000000, got 0"
        );
    }

    #[test]
    fn an_override_of_an_unknown_field_is_refused() {
        let vars = BTreeMap::from([("LUDUS__SESSION__NOPE".to_owned(), "1".to_owned())]);
        let error = load(None, &Override::from_env(&vars)).expect_err("unknown");
        assert!(
            error
                .to_string()
                .starts_with("LUDUS__SESSION__NOPE: session.nope: unknown field"),
            "{error}"
        );
    }

    #[test]
    fn unknown_room_types_are_refused() {
        let (_guard, path) = write("[room_types.chess]\ntick_hz = 1\n");
        let error = load(Some(&path), &[])
            .expect("parses")
            .validate(&GAMES)
            .expect_err("unknown type");
        assert!(
            error
                .to_string()
                .contains("room_types.chess: unknown room type `chess`"),
            "{error}"
        );
    }
}
