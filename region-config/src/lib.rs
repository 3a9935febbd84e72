//! Ludus operator configuration: regions, nodes, their validation, and room placement.
//!
//! Operators describe the cluster in one TOML region file (see `README.md` and
//! `examples/`). Every node loads the same file and computes room owners with [`Placement`], and
//! so does the `ludus-regions` CLI, so they all agree on where a room lives without asking each
//! other. This crate is a leaf: no async runtime, no network, no environment lookups; the server
//! supplies the live membership.
//!
//! Use it in this order:
//!
//! 1. [`load`] (or [`from_str`]) the file into a [`RegionConfig`]; errors name file, line, field.
//! 2. Resolve a client's region string with [`RegionConfig::resolve_region`].
//! 3. Build a [`Placement`] from the config and the live node ids; rebuild it when membership
//!    changes; call [`Placement::place`] (with fallbacks) or [`Placement::owner`] (one region).
//!
//! [`line_of_field`] and [`TomlSourceMap`] are schema-agnostic, for other TOML files that want
//! the same `file:line: field: message` errors.

mod config;
mod diff;
mod error;
mod ids;
mod placement;
mod schema;
mod source_map;

pub use config::{
    from_str, load, ClusterConfig, Node, Region, RegionConfig, RoomTypeDefaults,
    DEFAULT_HEARTBEAT_INTERVAL_MS, DEFAULT_MAX_PLAYERS, DEFAULT_NODE_TIMEOUT_MS, DEFAULT_TICK_HZ,
    DEFAULT_WEIGHT, SUPPORTED_VERSION,
};
pub use diff::{diff, sample_room_id, RegionDiff, DIFF_SAMPLE_SIZE};
pub use error::{ConfigError, PlacementError, Problem};
pub use ids::{is_valid_name, NodeId, RegionName};
pub use placement::{Placement, PlacementDecision, PlacementReason, PLACEMENT_SEED};
pub use source_map::{line_of_field, line_of_offset, TomlSourceMap};
pub use url::Url;
