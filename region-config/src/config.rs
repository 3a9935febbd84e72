//! The validated region config and the one path that produces it: [`load`] / [`from_str`].
//!
//! Loading is parse, then validate, then build: [`crate::schema`] reads the text with serde,
//! [`Validator`] checks every rule and converts to the types below, and the first broken rule
//! becomes a [`ConfigError`] naming file, line and field. A [`RegionConfig`] therefore always
//! satisfies these invariants, which [`crate::placement`] relies on:
//!
//! - every node's region and every fallback is a configured region, and so is `default_region`;
//! - node ids are unique and every region has at least one node;
//! - following fallbacks never returns to the region it started from;
//! - weights are positive, URLs parse and use the right scheme.
//!
//! This module does no I/O beyond reading the one file in [`load`] and never looks at the
//! environment: the caller decides where the file comes from.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroU32;
use std::path::Path;
use std::time::Duration;

use url::Url;

use crate::error::{ConfigError, Problem};
use crate::schema::{ClusterSchema, FileSchema, NodeSchema, RegionSchema, RoomTypeSchema};
use crate::source_map::{line_of_offset, TomlSourceMap};
use crate::{is_valid_name, NodeId, RegionName};

/// The only `version` this build reads.
pub const SUPPORTED_VERSION: i64 = 1;

/// Default for `cluster.heartbeat_interval_ms`.
pub const DEFAULT_HEARTBEAT_INTERVAL_MS: u32 = 1_000;
/// Default for `cluster.node_timeout_ms`.
pub const DEFAULT_NODE_TIMEOUT_MS: u32 = 5_000;
/// Default for `max_players` in a room type.
pub const DEFAULT_MAX_PLAYERS: u32 = 8;
/// Default for `tick_hz` in a room type.
pub const DEFAULT_TICK_HZ: u32 = 20;
/// Default node `weight`.
pub const DEFAULT_WEIGHT: u32 = 1;

/// A validated region file: regions, their nodes and cluster settings.
///
/// ```
/// use ludus_regions::{from_str, RegionName};
///
/// let config = from_str(
///     r#"
///     version = 1
///     default_region = "eu"
///
///     [regions.eu]
///     aliases = ["DE"]
///
///     [[nodes]]
///     id = "eu-1"
///     region = "eu"
///     ws_url = "ws://127.0.0.1:7801"
///     http_url = "http://127.0.0.1:7802"
///     "#,
///     "regions.toml",
/// )?;
/// assert_eq!(config.default_region(), &RegionName::new("eu"));
/// assert_eq!(config.resolve_region("de"), Some(&RegionName::new("eu")));
/// assert_eq!(config.nodes().len(), 1);
/// # Ok::<(), ludus_regions::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RegionConfig {
    default_region: RegionName,
    cluster: ClusterConfig,
    regions: BTreeMap<RegionName, Region>,
    nodes: Vec<Node>,
}

/// One `[regions.<name>]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Region {
    /// The region's name (its table key).
    pub name: RegionName,
    /// Other names clients may use for it (country or edge codes), matched ignoring ASCII case.
    pub aliases: Vec<String>,
    /// Regions tried, in order, when this one has no live node; see
    /// [`RegionConfig::fallback_order`] for the full, transitive order.
    pub fallbacks: Vec<RegionName>,
    /// Defaults for rooms of each type created in this region, by room type name.
    pub room_types: BTreeMap<String, RoomTypeDefaults>,
}

/// Defaults for one room type in one region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoomTypeDefaults {
    /// Players admitted to one room, 1–1024.
    pub max_players: u32,
    /// Simulation ticks per second, 1–240.
    pub tick_hz: u32,
}

/// One `[[nodes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Node {
    /// Unique id; part of the placement hash.
    pub id: NodeId,
    /// The region the node serves.
    pub region: RegionName,
    /// Public WebSocket URL (`ws` or `wss`).
    pub ws_url: Url,
    /// HTTP URL of the node's API (`http` or `https`).
    pub http_url: Url,
    /// Relative capacity: the node gets about `weight / total weight of its region` of the
    /// region's rooms.
    pub weight: NonZeroU32,
}

/// `[cluster]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// NATS server for membership and cross-node messages (`nats` or `tls`); `None` means every
    /// node runs alone.
    pub nats_url: Option<Url>,
    /// Time between a node's heartbeats.
    pub heartbeat_interval: Duration,
    /// Silence after which a node is considered dead; always longer than `heartbeat_interval`.
    pub node_timeout: Duration,
}

impl RegionConfig {
    /// The region used when a client names none.
    pub fn default_region(&self) -> &RegionName {
        &self.default_region
    }

    /// Cluster settings.
    pub fn cluster(&self) -> &ClusterConfig {
        &self.cluster
    }

    /// Every region, ordered by name.
    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        self.regions.values()
    }

    /// The region called `name` (exact name, not an alias).
    pub fn region(&self, name: &RegionName) -> Option<&Region> {
        self.regions.get(name)
    }

    /// Every node, in file order.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// The nodes of one region, in file order.
    pub fn nodes_in<'config>(
        &'config self,
        region: &'config RegionName,
    ) -> impl Iterator<Item = &'config Node> {
        self.nodes.iter().filter(move |node| &node.region == region)
    }

    /// The region a client's region string means: an exact region name, else an alias compared
    /// ignoring ASCII case (`de`, `DE`). `None` when it matches nothing; callers usually fall back
    /// to [`default_region`](Self::default_region).
    pub fn resolve_region(&self, name_or_alias: &str) -> Option<&RegionName> {
        if let Some((name, _)) = self.regions.get_key_value(name_or_alias) {
            return Some(name);
        }
        self.regions
            .values()
            .find(|region| {
                region
                    .aliases
                    .iter()
                    .any(|alias| alias.eq_ignore_ascii_case(name_or_alias))
            })
            .map(|region| &region.name)
    }

    /// The order in which regions are tried for rooms preferring `region`: the region itself,
    /// then each of its fallbacks in the order written, each immediately followed by its own
    /// fallbacks (depth first), skipping regions already listed. Empty for an unknown region.
    ///
    /// ```
    /// # use ludus_regions::{from_str, RegionName};
    /// # let node = |id: &str, region: &str| format!(
    /// #     "[[nodes]]\nid = \"{id}\"\nregion = \"{region}\"\nws_url = \"ws://h\"\nhttp_url = \"http://h\"\n");
    /// let text = format!(
    ///     "version = 1\ndefault_region = \"eu\"\n\
    ///      [regions.eu]\nfallbacks = [\"us\", \"ap\"]\n\
    ///      [regions.us]\nfallbacks = [\"sa\"]\n\
    ///      [regions.ap]\n[regions.sa]\n{}{}{}{}",
    ///     node("e", "eu"), node("u", "us"), node("a", "ap"), node("s", "sa"));
    /// let config = from_str(&text, "regions.toml")?;
    /// let order: Vec<_> = config.fallback_order(&RegionName::new("eu"))
    ///     .iter().map(|region| region.to_string()).collect();
    /// assert_eq!(order, ["eu", "us", "sa", "ap"]);
    /// # Ok::<(), ludus_regions::ConfigError>(())
    /// ```
    pub fn fallback_order(&self, region: &RegionName) -> Vec<RegionName> {
        let mut order = Vec::new();
        self.push_fallbacks_depth_first(region, &mut order);
        order
    }

    fn push_fallbacks_depth_first(&self, region_name: &RegionName, order: &mut Vec<RegionName>) {
        let Some(region) = self.regions.get(region_name) else {
            return;
        };
        if order.contains(region_name) {
            return;
        }
        order.push(region_name.clone());
        for fallback in &region.fallbacks {
            self.push_fallbacks_depth_first(fallback, order);
        }
    }
}

/// Reads and validates the region file at `path`. Messages name the file as `path` displays.
///
/// ```no_run
/// let config = ludus_regions::load("region-config/examples/three-nodes-two-regions.toml")?;
/// println!("{} regions", config.regions().count());
/// # Ok::<(), ludus_regions::ConfigError>(())
/// ```
pub fn load(path: impl AsRef<Path>) -> Result<RegionConfig, ConfigError> {
    let path = path.as_ref();
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(toml_text) => from_str(&toml_text, &file),
        Err(source) => Err(ConfigError::Read { file, source }),
    }
}

/// Parses and validates a region file held in memory; `file_name` is only used in messages.
///
/// ```
/// let error = ludus_regions::from_str("version = 2\ndefault_region = \"eu\"\n", "regions.toml")
///     .expect_err("version 2 is not supported");
/// assert_eq!(
///     error.to_string(),
///     "regions.toml:1: version: unsupported version 2, this build reads version 1",
/// );
/// ```
pub fn from_str(toml_text: &str, file_name: &str) -> Result<RegionConfig, ConfigError> {
    let validator = Validator {
        file_name,
        toml_text,
        source_map: TomlSourceMap::parse(toml_text),
    };
    let schema: FileSchema =
        toml::from_str(toml_text).map_err(|error| validator.parse_error(&error))?;
    validator.validate(schema)
}

/// Checks a [`FileSchema`] rule by rule and builds the [`RegionConfig`]; the first broken rule
/// becomes the error.
struct Validator<'text> {
    file_name: &'text str,
    toml_text: &'text str,
    /// `None` only if `toml_edit` rejects text that `toml` accepted (TOML 1.1 syntax); lines then
    /// degrade to 1 rather than failing the load.
    source_map: Option<TomlSourceMap<'text>>,
}

impl Validator<'_> {
    fn parse_error(&self, error: &toml::de::Error) -> ConfigError {
        let offset = error.span().map_or(0, |span| span.start);
        ConfigError::Parse {
            file: self.file_name.to_owned(),
            line: line_of_offset(self.toml_text, offset),
            field: self
                .source_map
                .as_ref()
                .and_then(|source_map| source_map.field_at_offset(offset)),
            message: error.message().to_owned(),
        }
    }

    fn invalid(&self, field: String, problem: Problem) -> ConfigError {
        ConfigError::Invalid {
            file: self.file_name.to_owned(),
            line: self.line_of(&field),
            field,
            problem,
        }
    }

    /// Line of `field`, or of its closest written parent when the field took its default.
    fn line_of(&self, field: &str) -> usize {
        let Some(source_map) = &self.source_map else {
            return 1;
        };
        let mut path = field;
        loop {
            if let Some(line) = source_map.line_of_field(path) {
                return line;
            }
            match path.rfind(['.', '[']) {
                Some(end) => path = &path[..end],
                None => return 1,
            }
        }
    }

    fn validate(&self, schema: FileSchema) -> Result<RegionConfig, ConfigError> {
        if schema.version != SUPPORTED_VERSION {
            let problem = Problem::UnsupportedVersion {
                found: schema.version,
            };
            return Err(self.invalid("version".to_owned(), problem));
        }
        let cluster = self.cluster(schema.cluster)?;
        let regions = self.regions(schema.regions)?;
        let default_region =
            self.region_reference("default_region", &schema.default_region, &regions)?;
        let nodes = self.nodes(schema.nodes, &regions)?;
        self.check_no_empty_region(&regions, &nodes)?;
        self.check_no_fallback_cycle(&regions)?;
        Ok(RegionConfig {
            default_region,
            cluster,
            regions,
            nodes,
        })
    }

    fn cluster(&self, cluster: ClusterSchema) -> Result<ClusterConfig, ConfigError> {
        let nats_url = cluster
            .nats_url
            .map(|url| {
                self.url(
                    "cluster.nats_url",
                    &url,
                    &["nats", "tls"],
                    "`nats` or `tls`",
                )
            })
            .transpose()?;
        let heartbeat_interval_ms = self.in_range(
            "cluster.heartbeat_interval_ms",
            "heartbeat_interval_ms",
            cluster.heartbeat_interval_ms,
            DEFAULT_HEARTBEAT_INTERVAL_MS,
            50..=60_000,
        )?;
        let node_timeout_ms = self.in_range(
            "cluster.node_timeout_ms",
            "node_timeout_ms",
            cluster.node_timeout_ms,
            DEFAULT_NODE_TIMEOUT_MS,
            100..=600_000,
        )?;
        if node_timeout_ms <= heartbeat_interval_ms {
            let problem = Problem::TimeoutNotAboveHeartbeat {
                heartbeat_interval_ms,
                node_timeout_ms,
            };
            return Err(self.invalid("cluster.node_timeout_ms".to_owned(), problem));
        }
        Ok(ClusterConfig {
            nats_url,
            heartbeat_interval: Duration::from_millis(u64::from(heartbeat_interval_ms)),
            node_timeout: Duration::from_millis(u64::from(node_timeout_ms)),
        })
    }

    fn regions(
        &self,
        regions: BTreeMap<String, RegionSchema>,
    ) -> Result<BTreeMap<RegionName, Region>, ConfigError> {
        let known_names: BTreeSet<&str> = regions.keys().map(String::as_str).collect();
        // Aliases already claimed, lowercased, and the region claiming each. Region names are
        // checked separately, not seeded in here: two names may differ only in case (`EU`, `eu`),
        // and one lowercased key cannot remember both owners.
        let mut alias_owners: HashMap<String, RegionName> = HashMap::new();
        let mut validated = BTreeMap::new();
        for (name, region) in &regions {
            let field = format!("regions.{name}");
            let region_name = RegionName::new(self.name(&field, name)?);
            for (index, alias) in region.aliases.iter().enumerate() {
                let alias_field = format!("{field}.aliases[{index}]");
                self.name(&alias_field, alias)?;
                let other_region_named_so = regions
                    .keys()
                    .find(|other| *other != name && other.eq_ignore_ascii_case(alias))
                    .map(|other| RegionName::new(other.as_str()));
                let owner = match other_region_named_so {
                    Some(other_region) => other_region,
                    None => alias_owners
                        .entry(alias.to_ascii_lowercase())
                        .or_insert_with(|| region_name.clone())
                        .clone(),
                };
                if owner != region_name {
                    let problem = Problem::DuplicateAlias {
                        alias: alias.clone(),
                        region: owner,
                    };
                    return Err(self.invalid(alias_field, problem));
                }
            }
            let mut fallbacks = Vec::new();
            for (index, fallback) in region.fallbacks.iter().enumerate() {
                let fallback_field = format!("{field}.fallbacks[{index}]");
                if !known_names.contains(fallback.as_str()) {
                    let problem = Problem::UnknownRegion {
                        name: fallback.clone(),
                    };
                    return Err(self.invalid(fallback_field, problem));
                }
                fallbacks.push(RegionName::new(fallback.as_str()));
            }
            let mut room_types = BTreeMap::new();
            for (room_type, defaults) in &region.room_types {
                let room_type_field = format!("{field}.room_types.{room_type}");
                self.name(&room_type_field, room_type)?;
                room_types.insert(
                    room_type.clone(),
                    self.room_type(&room_type_field, defaults)?,
                );
            }
            let validated_region = Region {
                name: region_name.clone(),
                aliases: region.aliases.clone(),
                fallbacks,
                room_types,
            };
            validated.insert(region_name, validated_region);
        }
        Ok(validated)
    }

    fn room_type(
        &self,
        field: &str,
        room_type: &RoomTypeSchema,
    ) -> Result<RoomTypeDefaults, ConfigError> {
        let max_players = self.in_range(
            &format!("{field}.max_players"),
            "max_players",
            room_type.max_players,
            DEFAULT_MAX_PLAYERS,
            1..=1024,
        )?;
        let tick_hz = self.in_range(
            &format!("{field}.tick_hz"),
            "tick_hz",
            room_type.tick_hz,
            DEFAULT_TICK_HZ,
            1..=240,
        )?;
        Ok(RoomTypeDefaults {
            max_players,
            tick_hz,
        })
    }

    fn nodes(
        &self,
        nodes: Vec<NodeSchema>,
        regions: &BTreeMap<RegionName, Region>,
    ) -> Result<Vec<Node>, ConfigError> {
        let mut first_line_of_id: HashMap<String, usize> = HashMap::new();
        let mut validated = Vec::with_capacity(nodes.len());
        for (index, node) in nodes.into_iter().enumerate() {
            let field = format!("nodes[{index}]");
            let id_field = format!("{field}.id");
            let id = NodeId::new(self.name(&id_field, &node.id)?);
            if let Some(&first_line) = first_line_of_id.get(&node.id) {
                let problem = Problem::DuplicateNodeId {
                    id: node.id,
                    first_line,
                };
                return Err(self.invalid(id_field, problem));
            }
            first_line_of_id.insert(node.id, self.line_of(&id_field));
            validated.push(Node {
                id,
                region: self.region_reference(&format!("{field}.region"), &node.region, regions)?,
                ws_url: self.url(
                    &format!("{field}.ws_url"),
                    &node.ws_url,
                    &["ws", "wss"],
                    "`ws` or `wss`",
                )?,
                http_url: self.url(
                    &format!("{field}.http_url"),
                    &node.http_url,
                    &["http", "https"],
                    "`http` or `https`",
                )?,
                weight: self.weight(&format!("{field}.weight"), node.weight)?,
            });
        }
        Ok(validated)
    }

    fn weight(&self, field: &str, weight: Option<i64>) -> Result<NonZeroU32, ConfigError> {
        let found = weight.unwrap_or(i64::from(DEFAULT_WEIGHT));
        if found <= 0 {
            return Err(self.invalid(field.to_owned(), Problem::NonPositiveWeight { found }));
        }
        u32::try_from(found)
            .ok()
            .and_then(NonZeroU32::new)
            .ok_or_else(|| {
                let problem = Problem::OutOfRange {
                    setting: "weight",
                    found,
                    min: 1,
                    max: i64::from(u32::MAX),
                };
                self.invalid(field.to_owned(), problem)
            })
    }

    fn check_no_empty_region(
        &self,
        regions: &BTreeMap<RegionName, Region>,
        nodes: &[Node],
    ) -> Result<(), ConfigError> {
        let populated: BTreeSet<&RegionName> = nodes.iter().map(|node| &node.region).collect();
        match regions.keys().find(|name| !populated.contains(name)) {
            Some(empty) => Err(self.invalid(
                format!("regions.{empty}"),
                Problem::EmptyRegion {
                    name: empty.clone(),
                },
            )),
            None => Ok(()),
        }
    }

    /// Depth-first search over fallback edges; a region met again while still on the current
    /// path closes a cycle, reported at the fallback entry that closes it.
    fn check_no_fallback_cycle(
        &self,
        regions: &BTreeMap<RegionName, Region>,
    ) -> Result<(), ConfigError> {
        let mut finished = BTreeSet::new();
        for start in regions.keys() {
            let mut path = Vec::new();
            if let Some((cycle, closing_field)) =
                find_cycle(regions, start, &mut path, &mut finished)
            {
                return Err(self.invalid(closing_field, Problem::FallbackCycle { cycle }));
            }
        }
        Ok(())
    }

    fn region_reference(
        &self,
        field: &str,
        name: &str,
        regions: &BTreeMap<RegionName, Region>,
    ) -> Result<RegionName, ConfigError> {
        let region_name = RegionName::new(name);
        if regions.contains_key(&region_name) {
            return Ok(region_name);
        }
        let problem = Problem::UnknownRegion {
            name: name.to_owned(),
        };
        Err(self.invalid(field.to_owned(), problem))
    }

    fn name<'name>(&self, field: &str, name: &'name str) -> Result<&'name str, ConfigError> {
        if is_valid_name(name) {
            return Ok(name);
        }
        let problem = Problem::InvalidName {
            name: name.to_owned(),
        };
        Err(self.invalid(field.to_owned(), problem))
    }

    fn url(
        &self,
        field: &str,
        url: &str,
        schemes: &[&str],
        expected: &'static str,
    ) -> Result<Url, ConfigError> {
        let parsed = Url::parse(url).map_err(|error| {
            let problem = Problem::MalformedUrl {
                url: url.to_owned(),
                reason: error.to_string(),
            };
            self.invalid(field.to_owned(), problem)
        })?;
        if schemes.contains(&parsed.scheme()) {
            return Ok(parsed);
        }
        let problem = Problem::WrongScheme {
            url: url.to_owned(),
            expected,
            found: parsed.scheme().to_owned(),
        };
        Err(self.invalid(field.to_owned(), problem))
    }

    /// `value` (or `default` when absent) converted to `T`, or an out-of-range error.
    fn in_range<T>(
        &self,
        field: &str,
        setting: &'static str,
        value: Option<i64>,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: Copy + Into<i64> + TryFrom<i64>,
    {
        let Some(found) = value else {
            return Ok(default);
        };
        let (min, max) = ((*range.start()).into(), (*range.end()).into());
        match T::try_from(found) {
            Ok(converted) if (min..=max).contains(&found) => Ok(converted),
            _ => {
                let problem = Problem::OutOfRange {
                    setting,
                    found,
                    min,
                    max,
                };
                Err(self.invalid(field.to_owned(), problem))
            }
        }
    }
}

/// Visits `region`'s fallbacks depth first with `path` holding the current chain; returns the
/// cycle (first and last equal) and the field of the fallback entry closing it. Regions in
/// `finished` were fully explored without a cycle and are skipped.
fn find_cycle(
    regions: &BTreeMap<RegionName, Region>,
    region: &RegionName,
    path: &mut Vec<RegionName>,
    finished: &mut BTreeSet<RegionName>,
) -> Option<(Vec<RegionName>, String)> {
    if finished.contains(region) {
        return None;
    }
    path.push(region.clone());
    let fallbacks = regions
        .get(region)
        .map_or(&[][..], |found| &found.fallbacks[..]);
    for (index, fallback) in fallbacks.iter().enumerate() {
        if let Some(position) = path.iter().position(|on_path| on_path == fallback) {
            let mut cycle = path[position..].to_vec();
            cycle.push(fallback.clone());
            return Some((cycle, format!("regions.{region}.fallbacks[{index}]")));
        }
        if let Some(found) = find_cycle(regions, fallback, path, finished) {
            return Some(found);
        }
    }
    path.pop();
    finished.insert(region.clone());
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, region: &str) -> String {
        format!("[[nodes]]\nid = \"{id}\"\nregion = \"{region}\"\nws_url = \"ws://h\"\nhttp_url = \"http://h\"\n")
    }

    /// The alias invariant the `region_file` fuzz target checks (every alias resolves to its own
    /// region) failed here: with regions `EU` and `eu`, the alias `EU` of `eu` was accepted
    /// although the name `EU` shadows it, so `resolve_region("EU")` never reached `eu`. Both
    /// names lowercase to `eu`, and the owner map kept only one of them.
    #[test]
    fn alias_equal_to_a_region_name_differing_only_in_case_from_its_own_is_rejected() {
        let text = format!(
            "version = 1\ndefault_region = \"eu\"\n[regions.EU]\n[regions.eu]\naliases = [\"EU\"]\n{}{}",
            node("a", "EU"),
            node("b", "eu"),
        );
        let error =
            from_str(&text, "regions.toml").expect_err("alias `EU` is shadowed by region `EU`");
        assert_eq!(
            error.to_string(),
            "regions.toml:5: regions.eu.aliases[0]: alias `EU` already names region `EU`"
        );
    }

    /// Found by the `region_file` fuzz target: the source map built for error messages made
    /// `toml_edit` panic on this text instead of the load returning a parse error.
    #[test]
    fn syntax_error_that_panicked_toml_edit_is_a_parse_error() {
        let error = from_str("==\n.=", "regions.toml").expect_err("not TOML");
        assert!(
            matches!(
                error,
                ConfigError::Parse {
                    line: 1,
                    field: None,
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn alias_equal_to_its_own_region_name_in_another_case_is_accepted() {
        let text = format!(
            "version = 1\ndefault_region = \"eu\"\n[regions.eu]\naliases = [\"EU\"]\n{}",
            node("a", "eu"),
        );
        let config = from_str(&text, "regions.toml").expect("an alias may restate its own name");
        assert_eq!(config.resolve_region("Eu"), Some(&RegionName::new("eu")));
    }
}
