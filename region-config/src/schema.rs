//! The region file exactly as written: serde structs, before validation.
//!
//! These types are private on purpose. Numbers are read as `i64` and URLs as strings so that a
//! zero weight or an `http://` WebSocket URL reaches [`crate::config`]'s validation, which can
//! name the line and say what is wrong, instead of failing inside serde with a generic "invalid
//! value". Validation turns them into the public types in [`crate::config`]. Every struct denies
//! unknown fields so a typo (`wieght`) is an error, not a silently ignored setting.
//!
//! The field docs here are the reference for the file format; `README.md` mirrors them for
//! operators.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileSchema {
    /// Format version. Required; must be 1. A future incompatible format bumps it so an old
    /// binary refuses a new file instead of misreading it.
    pub(crate) version: i64,
    /// Region used when a client names none (or an unknown one). Required; must be a key of
    /// `regions`.
    pub(crate) default_region: String,
    /// Cluster-wide settings. Optional; every field has a default.
    #[serde(default)]
    pub(crate) cluster: ClusterSchema,
    /// Regions by name (`[regions.eu]`). Names: 1–64 ASCII letters, digits, `-`, `_`.
    #[serde(default)]
    pub(crate) regions: BTreeMap<String, RegionSchema>,
    /// Nodes (`[[nodes]]`), in any order; the order only matters for messages (`nodes[2]`).
    #[serde(default)]
    pub(crate) nodes: Vec<NodeSchema>,
}

/// `[cluster]`: how nodes find and watch each other.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterSchema {
    /// NATS server the nodes use for membership and cross-node messages, `nats://` or `tls://`.
    /// Optional; without it every node runs alone and only its own rooms exist.
    pub(crate) nats_url: Option<String>,
    /// Milliseconds between a node's heartbeats. Optional, default 1000, range 50–60000. Lower
    /// detects failures sooner at the cost of more NATS traffic.
    pub(crate) heartbeat_interval_ms: Option<i64>,
    /// Milliseconds without a heartbeat after which a node is considered dead and its rooms are
    /// placed elsewhere. Optional, default 5000, range 100–600000, must exceed
    /// `heartbeat_interval_ms`. Lower fails over sooner but risks evicting a slow, live node.
    pub(crate) node_timeout_ms: Option<i64>,
}

/// `[regions.<name>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegionSchema {
    /// Other names clients may use for this region, e.g. country or edge codes `["DE", "FRA"]`.
    /// Optional, default empty. Matched ignoring ASCII case; must be unique across regions and
    /// must not equal another region's name.
    #[serde(default)]
    pub(crate) aliases: Vec<String>,
    /// Regions to try, in order, when this one has no live node. Optional, default empty (rooms
    /// preferring this region fail to place when it is down). Followed transitively: a
    /// fallback's own fallbacks are tried after it. Must not form a cycle.
    #[serde(default)]
    pub(crate) fallbacks: Vec<String>,
    /// Room-type defaults for rooms created in this region (`[regions.eu.room_types.arena]`).
    /// Optional, default empty.
    #[serde(default)]
    pub(crate) room_types: BTreeMap<String, RoomTypeSchema>,
}

/// `[regions.<name>.room_types.<type>]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoomTypeSchema {
    /// Players admitted to one room. Optional, default 8, range 1–1024. Each player costs one
    /// delta encode fan-out per tick.
    pub(crate) max_players: Option<i64>,
    /// Simulation ticks per second. Optional, default 20, range 1–240. CPU and bandwidth per room
    /// grow linearly with it.
    pub(crate) tick_hz: Option<i64>,
}

/// `[[nodes]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NodeSchema {
    /// Unique node id. Required; 1–64 ASCII letters, digits, `-`, `_`. Part of the placement
    /// hash: renaming a node moves its rooms.
    pub(crate) id: String,
    /// Region the node serves. Required; must be a key of `regions`.
    pub(crate) region: String,
    /// Public WebSocket URL clients connect to, `ws://` or `wss://`. Required.
    pub(crate) ws_url: String,
    /// HTTP URL of the node's API (health, metrics), `http://` or `https://`. Required.
    pub(crate) http_url: String,
    /// Relative capacity. Optional, default 1, range 1–4294967295. A node receives about
    /// `weight / sum of weights in its region` of the region's rooms.
    pub(crate) weight: Option<i64>,
}
