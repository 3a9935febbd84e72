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

mod per_type;
mod sections;
mod security;
mod validate;

pub use per_type::PerRoomType;
pub use sections::{ClusterSection, RoomTypeSection, RoomsSection, ServerSection, SessionSection};
pub use security::{HttpSection, LobbyAuthMode, LobbySection, OperatorSection};
pub use validate::{GameLimits, JWT_ALGORITHMS, MIN_OPERATOR_TOKEN_BYTES};

use ludus_regions::{line_of_offset, TomlSourceMap};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

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
    /// HTTP limits, connection caps and browser origins.
    pub http: HttpSection,
    /// Who may call the operator routes, and where they are served.
    pub operator: OperatorSection,
    /// How players identify to the lobby, and their rate limits.
    pub lobby: LobbySection,
}

impl ServerConfig {
    /// A copy fit to print: every secret and token replaced by `<redacted>`.
    pub fn redacted(&self) -> Self {
        let hide = |_: &String| "<redacted>".to_owned();
        let mut shown = self.clone();
        shown.server.secret = shown.server.secret.as_ref().map(hide);
        shown.server.previous_secrets = shown.server.previous_secrets.iter().map(hide).collect();
        shown.operator.tokens = shown.operator.tokens.iter().map(hide).collect();
        shown.lobby.jwt_secret = shown.lobby.jwt_secret.as_ref().map(hide);
        shown
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

    /// Checks ranges and consistency; `games` are the registered games and what they allow.
    pub fn validate(self, games: &[GameLimits<'_>]) -> Result<ServerConfig, ConfigError> {
        if let Some((field, message)) = validate::problems(&self.config, games).into_iter().next() {
            return Err(ConfigError::Invalid {
                location: self.locate(&field),
                field,
                message,
            });
        }
        Ok(self.config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GAMES: [GameLimits<'static>; 2] = [
        GameLimits {
            name: "arena",
            max_players: 16,
        },
        GameLimits {
            name: "tictactoe",
            max_players: 2,
        },
    ];

    fn validate_text(text: &str) -> Result<ServerConfig, ConfigError> {
        let (_guard, path) = write(text);
        load(Some(&path), &[])?.validate(&GAMES)
    }

    #[test]
    fn an_override_cannot_raise_a_game_above_its_own_maximum() {
        let error = validate_text("[room_types.tictactoe]\nmax_players = 10000\n")
            .expect_err("tictactoe has 2 seats");
        assert!(
            error.to_string().ends_with(
                "room_types.tictactoe.max_players: must be between 1 and 2 (the game's maximum), got 10000"
            ),
            "{error}"
        );
        validate_text("[room_types.arena]\nmax_players = 8\n").expect("lowering is fine");
    }

    #[test]
    fn operator_tokens_must_be_long() {
        let error = validate_text("[operator]\ntokens = [\"short\"]\n").expect_err("short");
        assert!(
            error
                .to_string()
                .contains("operator.tokens: each token must be at least 24 bytes, got one of 5"),
            "{error}"
        );
    }

    #[test]
    fn jwt_mode_needs_a_key_that_fits_its_algorithm() {
        let none = validate_text("[lobby]\nauth = \"jwt\"\n").expect_err("no key");
        assert!(
            none.to_string().contains("lobby.auth: `jwt` needs"),
            "{none}"
        );
        let short = validate_text("[lobby]\nauth = \"jwt\"\njwt_secret = \"short\"\n")
            .expect_err("short secret");
        assert!(
            short
                .to_string()
                .contains("lobby.jwt_secret: must be at least 32 bytes, got 5"),
            "{short}"
        );
        let mismatch = validate_text(
            "[lobby]\nauth = \"jwt\"\njwt_algorithm = \"RS256\"\njwt_secret = \"0123456789abcdef0123456789abcdef\"\n",
        )
        .expect_err("RS256 with a secret");
        assert!(
            mismatch
                .to_string()
                .contains("lobby.jwt_algorithm: `RS256` needs lobby.jwt_public_key_file"),
            "{mismatch}"
        );
        validate_text(
            "[lobby]\nauth = \"jwt\"\njwt_secret = \"0123456789abcdef0123456789abcdef\"\n",
        )
        .expect("HS256 with a long secret");
    }

    #[test]
    fn origins_must_be_scheme_and_host() {
        let error = validate_text("[http]\nallowed_origins = [\"game.example.com/path\"]\n")
            .expect_err("not an origin");
        assert!(
            error.to_string().contains("http.allowed_origins:"),
            "{error}"
        );
        validate_text(
            "[http]\nallowed_origins = [\"https://game.example.com\", \"http://localhost:3000\"]\n",
        )
        .expect("origins");
    }

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
