//! Which node owns a room: weighted rendezvous hashing, one candidate set per region.
//!
//! Every node and the operator CLI must compute the same owner for the same room id and the same
//! membership, on any machine and after any upgrade, or two nodes would both host (or both
//! refuse) a room. So this module is pure (config and live node ids in, node out, no I/O, no
//! clock, no randomness) and its hash is defined here byte for byte.
//!
//! # Algorithm: weighted rendezvous (highest random weight)
//!
//! For room id `r` and each live node `n` of the region:
//!
//! ```text
//! node_seed(n)  = xxh3_64_with_seed(utf8(n.id), PLACEMENT_SEED)
//! h(n, r)       = xxh3_64_with_seed(utf8(r), node_seed(n))
//! u(n, r)       = ((h >> 12) + 0.5) / 2^52                  // uniform in (0, 1), exact in f64
//! score(n, r)   = n.weight / -ln(u(n, r))
//! owner(r)      = the node with the highest score; on an exact tie, the smallest node id
//! ```
//!
//! `-ln(u)` is exponentially distributed, so `weight / -ln(u)` makes a node win with probability
//! exactly `weight / total weight` (the "logarithmic method" of weighted rendezvous hashing).
//! Because each node's score depends only on the room and that node, adding a node moves only
//! the rooms it now wins (about `its weight / new total weight`, all onto it), and removing a
//! node moves only its own rooms, to the runners-up, leaving everyone else's order intact.
//!
//! Why rendezvous rather than a ring of virtual nodes: a ring gives each node a share that is
//! off by about `1 / sqrt(virtual nodes)`, so balance within a few percent needs hundreds of
//! points per unit of weight, memory that grows with weight, and rebuilding on every membership
//! change. Rendezvous is exact in expectation, keeps no state besides the node list, and costs
//! one hash and one logarithm per node of the region per lookup (tens of nanoseconds each);
//! placement runs once per room creation, and regions hold tens of nodes, so that is cheap.
//!
//! # Why the hash is stable
//!
//! - XXH3 (64-bit) has a frozen specification since xxHash 0.8.0; `xxhash-rust` implements it
//!   over the explicit bytes above, never through std's `Hash` trait, whose output for a value is
//!   not promised stable, and never with `DefaultHasher`, whose algorithm may change.
//! - `f64::ln` is documented by Rust as having non-deterministic precision (it calls the
//!   platform's math library), so [`natural_log`] is computed here with only `+ - * /` on `f64`,
//!   which IEEE 754 rounds identically everywhere (Rust never fuses them into FMA on its own).
//! - The golden-value tests in `tests/placement.rs` pin concrete owners so a change to any of
//!   this fails CI instead of silently reshuffling live rooms.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt;

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::error::PlacementError;
use crate::{NodeId, RegionConfig, RegionName};

/// Seed of the node-id hash (`"LudusPl1"` in ASCII). Changing it reshuffles every room.
pub const PLACEMENT_SEED: u64 = u64::from_be_bytes(*b"LudusPl1");

/// Owners of rooms for one membership: the config's nodes that are currently live.
///
/// Build a new `Placement` whenever membership changes; it is cheap (one hash per node).
///
/// ```
/// use ludus_regions::{from_str, NodeId, Placement, PlacementReason, RegionName};
///
/// let config = from_str(
///     r#"
///     version = 1
///     default_region = "eu"
///     [regions.eu]
///     fallbacks = ["us"]
///     [regions.us]
///     [[nodes]]
///     id = "eu-1"
///     region = "eu"
///     ws_url = "ws://127.0.0.1:7801"
///     http_url = "http://127.0.0.1:7802"
///     [[nodes]]
///     id = "us-1"
///     region = "us"
///     ws_url = "ws://127.0.0.1:7811"
///     http_url = "http://127.0.0.1:7812"
///     "#,
///     "regions.toml",
/// )?;
/// let eu = RegionName::new("eu");
///
/// let everyone = Placement::with_all_nodes(&config);
/// assert_eq!(everyone.owner("room-17", &eu), Some(&NodeId::new("eu-1")));
///
/// // eu-1 is down: rooms preferring eu go to the first fallback with a live node.
/// let us_only = Placement::new(&config, [&NodeId::new("us-1")]);
/// let decision = us_only.place("room-17", &eu)?;
/// assert_eq!(decision.node, NodeId::new("us-1"));
/// assert_eq!(decision.reason, PlacementReason::Fallback { unavailable: vec![eu] });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Placement {
    /// Live nodes of each configured region, sorted by id (empty when none is live).
    live_nodes_by_region: BTreeMap<RegionName, Vec<LiveNode>>,
    /// [`RegionConfig::fallback_order`] of each region, computed once.
    fallback_orders: BTreeMap<RegionName, Vec<RegionName>>,
}

#[derive(Debug, Clone)]
struct LiveNode {
    id: NodeId,
    weight: f64,
    seed: u64,
}

/// Where a room goes and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementDecision {
    /// The node that owns the room.
    pub node: NodeId,
    /// The region the node is in.
    pub region: RegionName,
    /// Whether that is the preferred region.
    pub reason: PlacementReason,
}

/// Why a [`PlacementDecision`] chose its region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementReason {
    /// The preferred region has a live node.
    Preferred,
    /// The preferred region (and maybe earlier fallbacks) had no live node.
    Fallback {
        /// Regions skipped for having no live node, in the order tried; the first is the
        /// preferred region.
        unavailable: Vec<RegionName>,
    },
}

impl fmt::Display for PlacementReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlacementReason::Preferred => formatter.write_str("preferred region"),
            PlacementReason::Fallback { unavailable } => {
                formatter.write_str("fallback because ")?;
                for (position, region) in unavailable.iter().enumerate() {
                    let separator = if position == 0 { "" } else { ", " };
                    write!(formatter, "{separator}region `{region}`")?;
                }
                let verb = if unavailable.len() == 1 {
                    "has"
                } else {
                    "have"
                };
                write!(formatter, " {verb} no live node")
            }
        }
    }
}

impl Placement {
    /// Placement over the nodes of `config` whose ids are in `live_node_ids`. Ids the config
    /// does not know are ignored: without a region and weight they cannot own rooms.
    pub fn new<'id>(
        config: &RegionConfig,
        live_node_ids: impl IntoIterator<Item = &'id NodeId>,
    ) -> Self {
        let live: BTreeSet<&NodeId> = live_node_ids.into_iter().collect();
        let mut live_nodes_by_region: BTreeMap<RegionName, Vec<LiveNode>> = config
            .regions()
            .map(|region| (region.name.clone(), Vec::new()))
            .collect();
        for node in config.nodes().iter().filter(|node| live.contains(&node.id)) {
            let live_node = LiveNode {
                id: node.id.clone(),
                weight: f64::from(node.weight.get()),
                seed: xxh3_64_with_seed(node.id.as_str().as_bytes(), PLACEMENT_SEED),
            };
            live_nodes_by_region
                .entry(node.region.clone())
                .or_default()
                .push(live_node);
        }
        for nodes in live_nodes_by_region.values_mut() {
            nodes.sort_by(|left, right| left.id.cmp(&right.id));
        }
        let fallback_orders = config
            .regions()
            .map(|region| (region.name.clone(), config.fallback_order(&region.name)))
            .collect();
        Self {
            live_nodes_by_region,
            fallback_orders,
        }
    }

    /// The same placement with `node` no longer live: where a room goes when its owner did not
    /// answer (it may have died before membership noticed).
    pub fn without(&self, node: &NodeId) -> Self {
        let mut placement = self.clone();
        for nodes in placement.live_nodes_by_region.values_mut() {
            nodes.retain(|live| &live.id != node);
        }
        placement
    }

    /// Placement with every configured node live: what the operator CLI reasons about.
    pub fn with_all_nodes(config: &RegionConfig) -> Self {
        Self::new(config, config.nodes().iter().map(|node| &node.id))
    }

    /// The live node of `region` that owns `room_id`, ignoring fallbacks; `None` when the region
    /// is unknown or has no live node. The key hashed is the room id's UTF-8 bytes.
    pub fn owner(&self, room_id: &str, region: &RegionName) -> Option<&NodeId> {
        let nodes = self.live_nodes_by_region.get(region)?;
        let mut best: Option<(&LiveNode, f64)> = None;
        for node in nodes {
            let node_score = score(node, room_id);
            // Strictly greater: on an exact tie the earlier (smaller) id keeps the room.
            if best.is_none_or(|(_, best_score)| node_score > best_score) {
                best = Some((node, node_score));
            }
        }
        best.map(|(node, _)| &node.id)
    }

    /// Places `room_id`, preferring `preferred_region` and otherwise walking its
    /// [fallback order](RegionConfig::fallback_order) to the first region with a live node.
    pub fn place(
        &self,
        room_id: &str,
        preferred_region: &RegionName,
    ) -> Result<PlacementDecision, PlacementError> {
        let order = self.fallback_orders.get(preferred_region).ok_or_else(|| {
            PlacementError::UnknownRegion {
                region: preferred_region.clone(),
            }
        })?;
        let mut unavailable = Vec::new();
        for region in order {
            let Some(node) = self.owner(room_id, region) else {
                unavailable.push(region.clone());
                continue;
            };
            let reason = if unavailable.is_empty() {
                PlacementReason::Preferred
            } else {
                PlacementReason::Fallback { unavailable }
            };
            return Ok(PlacementDecision {
                node: node.clone(),
                region: region.clone(),
                reason,
            });
        }
        Err(PlacementError::NoLiveNode {
            region: preferred_region.clone(),
            tried: unavailable,
        })
    }
}

/// `weight / -ln(u)` for this node and room; see the module doc.
fn score(node: &LiveNode, room_id: &str) -> f64 {
    let hash = xxh3_64_with_seed(room_id.as_bytes(), node.seed);
    node.weight / -natural_log(unit_interval(hash))
}

/// Maps a hash to `((hash >> 12) + 0.5) / 2^52`: uniform in the open interval (0, 1). Keeping
/// 52 bits leaves room for the `+ 0.5` within f64's 53-bit significand, so both operations are
/// exact and the result is never 0 or 1 (with 53 bits, the top value would round up to 1.0 and
/// its logarithm to 0).
fn unit_interval(hash: u64) -> f64 {
    const TWO_POW_52: f64 = 4_503_599_627_370_496.0;
    // `as` is exact here: the value has at most 52 significant bits.
    ((hash >> 12) as f64 + 0.5) / TWO_POW_52
}

/// Natural logarithm of a positive, normal `x`, bit-identical on every platform.
///
/// Splits `x = m * 2^e` with `m` in `[sqrt(2)/2, sqrt(2))` by reading the IEEE bits, then
/// `ln(m) = 2 * atanh(s)` with `s = (m - 1) / (m + 1)`, `|s| < 0.1716`, summed as the odd series
/// `2 * (s + s^3/3 + s^5/5 + …)`; 13 terms bring the truncation error below 1e-17. Only IEEE
/// basic operations are used, which round identically everywhere, unlike `f64::ln`.
fn natural_log(x: f64) -> f64 {
    const MANTISSA_BITS: u32 = 52;
    const EXPONENT_BIAS: i64 = 1023;
    const SERIES_TERMS: u32 = 13;
    let bits = x.to_bits();
    let mut exponent = ((bits >> MANTISSA_BITS) & 0x7ff) as i64 - EXPONENT_BIAS;
    let mantissa_bits = bits & ((1 << MANTISSA_BITS) - 1);
    let mut mantissa = f64::from_bits(mantissa_bits | ((EXPONENT_BIAS as u64) << MANTISSA_BITS));
    if mantissa > std::f64::consts::SQRT_2 {
        mantissa /= 2.0;
        exponent += 1;
    }
    let s = (mantissa - 1.0) / (mantissa + 1.0);
    let s_squared = s * s;
    let mut series = 0.0;
    for term in (0..SERIES_TERMS).rev() {
        series = series * s_squared + 1.0 / f64::from(2 * term + 1);
    }
    exponent as f64 * std::f64::consts::LN_2 + 2.0 * s * series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_log_matches_std_within_rounding() {
        let samples =
            (0..10_000u64).map(|index| unit_interval(index.wrapping_mul(0x9e37_79b9_7f4a_7c15)));
        for x in samples.chain([
            unit_interval(0),
            unit_interval(u64::MAX),
            0.5,
            0.75,
            1.5,
            1e-300,
        ]) {
            let ours = natural_log(x);
            let reference = x.ln();
            let tolerance = 4.0 * f64::EPSILON * reference.abs().max(1e-300);
            assert!(
                (ours - reference).abs() <= tolerance,
                "ln({x}) = {ours}, std says {reference}"
            );
        }
    }

    #[test]
    fn unit_interval_never_reaches_zero_or_one() {
        assert!(unit_interval(0) > 0.0);
        assert!(unit_interval(u64::MAX) < 1.0);
        assert!(-natural_log(unit_interval(u64::MAX)) > 0.0);
    }

    #[test]
    fn placement_seed_spells_its_name() {
        assert_eq!(PLACEMENT_SEED.to_be_bytes(), *b"LudusPl1");
    }

    #[test]
    fn fallback_reason_names_every_skipped_region() {
        let reason = PlacementReason::Fallback {
            unavailable: vec![RegionName::new("eu"), RegionName::new("us")],
        };
        assert_eq!(
            reason.to_string(),
            "fallback because region `eu`, region `us` have no live node"
        );
    }
}
