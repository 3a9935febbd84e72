//! Errors of this crate: loading a region file, and placing a room.
//!
//! A config error always names the file, the 1-based line and the field, because the operator
//! reading it has the file open in an editor. Semantic problems carry a [`Problem`] so callers
//! (and tests) can match the kind instead of parsing the message.

use std::fmt;

use crate::{RegionName, SUPPORTED_VERSION};

/// Why a region file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{file}: cannot read region file: {source}")]
    Read {
        /// The path as given to [`load`](crate::load).
        file: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The text is not valid TOML, or does not fit the schema: an unknown field, a wrong type, a
    /// missing required field. The message is the TOML parser's.
    #[error("{file}:{line}: {}{message}", FieldPrefix(.field.as_deref()))]
    Parse {
        /// The file name used in messages.
        file: String,
        /// 1-based line of the offending text.
        line: usize,
        /// Dotted path of the field at that position, when there is one.
        field: Option<String>,
        /// The parser's description, e.g. ``unknown field `wieght`, expected one of …``.
        message: String,
    },
    /// The file parses but says something inconsistent or out of range.
    #[error("{file}:{line}: {field}: {problem}")]
    Invalid {
        /// The file name used in messages.
        file: String,
        /// 1-based line of the field (of its closest written parent when the field was left to
        /// its default).
        line: usize,
        /// Dotted path of the field, e.g. `nodes[2].weight`.
        field: String,
        /// What is wrong with it.
        problem: Problem,
    },
}

/// Writes `field: ` before a parse message when the field is known.
struct FieldPrefix<'field>(Option<&'field str>);

impl fmt::Display for FieldPrefix<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(field) => write!(formatter, "{field}: "),
            None => Ok(()),
        }
    }
}

/// A semantic problem with one field of a region file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// `version` is not one this build understands.
    #[error("unsupported version {found}, this build reads version {SUPPORTED_VERSION}")]
    UnsupportedVersion {
        /// The version written in the file.
        found: i64,
    },
    /// A region name that is not a `[regions.<name>]` table.
    #[error("unknown region `{name}`")]
    UnknownRegion {
        /// The name as written.
        name: String,
    },
    /// Two nodes share an id.
    #[error("duplicate node id `{id}`, first defined on line {first_line}")]
    DuplicateNodeId {
        /// The repeated id.
        id: String,
        /// Line of the first node with this id.
        first_line: usize,
    },
    /// A node weight of zero or less.
    #[error("weight must be a positive integer, got {found}")]
    NonPositiveWeight {
        /// The weight as written.
        found: i64,
    },
    /// A number outside the range the field accepts.
    #[error("{setting} must be between {min} and {max}, got {found}")]
    OutOfRange {
        /// Name of the setting (last path segment).
        setting: &'static str,
        /// The value as written.
        found: i64,
        /// Smallest accepted value.
        min: i64,
        /// Largest accepted value.
        max: i64,
    },
    /// A URL that does not parse.
    #[error("malformed url `{url}`: {reason}")]
    MalformedUrl {
        /// The URL as written.
        url: String,
        /// The URL parser's reason.
        reason: String,
    },
    /// A URL with a scheme the field does not accept (e.g. `http://` for `ws_url`).
    #[error("url `{url}` must use scheme {expected}, got `{found}`")]
    WrongScheme {
        /// The URL as written.
        url: String,
        /// The accepted schemes, e.g. "`ws` or `wss`".
        expected: &'static str,
        /// The scheme found.
        found: String,
    },
    /// Following fallbacks from a region leads back to it.
    #[error("fallback cycle {}", joined(.cycle, " -> "))]
    FallbackCycle {
        /// The regions on the cycle, first and last equal.
        cycle: Vec<RegionName>,
    },
    /// A region with no node: rooms preferring it could never be placed there.
    #[error("region `{name}` has no nodes")]
    EmptyRegion {
        /// The region.
        name: RegionName,
    },
    /// A node id or region name with characters unsafe in NATS subjects and URLs.
    #[error("invalid name `{name}`: use 1 to 64 ASCII letters, digits, `-` or `_`")]
    InvalidName {
        /// The name as written.
        name: String,
    },
    /// An alias already used by another region (as its name or one of its aliases).
    #[error("alias `{alias}` already names region `{region}`")]
    DuplicateAlias {
        /// The alias as written.
        alias: String,
        /// The region that claimed it first.
        region: RegionName,
    },
    /// Nodes would be declared dead before they had a chance to send a heartbeat.
    #[error(
        "node_timeout_ms must be greater than heartbeat_interval_ms ({heartbeat_interval_ms}), got {node_timeout_ms}"
    )]
    TimeoutNotAboveHeartbeat {
        /// The heartbeat interval in milliseconds.
        heartbeat_interval_ms: u32,
        /// The node timeout in milliseconds.
        node_timeout_ms: u32,
    },
}

/// Why a room could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// The preferred region is not in the config.
    #[error("unknown region `{region}`")]
    UnknownRegion {
        /// The region asked for.
        region: RegionName,
    },
    /// Neither the region nor any of its fallbacks has a live node.
    #[error("no live node in region `{region}` or its fallbacks (tried {})", joined(.tried, ", "))]
    NoLiveNode {
        /// The region asked for.
        region: RegionName,
        /// Every region tried, in order.
        tried: Vec<RegionName>,
    },
}

/// `eu -> us -> eu` or `eu, us`: region names with a separator, for messages.
fn joined(names: &[RegionName], separator: &str) -> String {
    names
        .iter()
        .map(RegionName::as_str)
        .collect::<Vec<_>>()
        .join(separator)
}
