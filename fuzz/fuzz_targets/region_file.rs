//! Fuzzes the region-file loader, [`ludus_regions::from_str`]: TOML text in, a validated
//! [`RegionConfig`] or a [`ConfigError`] out.
//!
//! Every server node and the `ludus-regions` CLI (`check`, `place`, `diff`) load the operator's
//! region file through this one function ([`ludus_regions::load`] only adds the file read). A
//! typo in that file must end in an error naming file, line and field, never in a panic that
//! takes a node down at start-up. So for any text the target checks that:
//!
//! - `from_str` returns instead of panicking (serde, `toml_edit`'s source map, the path walk that
//!   finds a field's line, the fallback cycle search);
//! - an error renders, and its line lies within the text (1 up to the line count);
//! - an accepted config keeps the invariants that [`ludus_regions::Placement`] relies on, as the
//!   doc of `region-config/src/config.rs` promises them: every region has a node in it, so with
//!   every node live each region places a room on one of its own nodes; fallback orders start at
//!   the region and list no region twice; every name and alias resolves to its own region.
//!
//! Only valid UTF-8 is fed in, as `load` reads the file with `read_to_string`, which refuses the
//! rest before the parser sees it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ludus_regions::{ConfigError, Placement, PlacementReason, RegionConfig};
use std::collections::BTreeSet;

const FILE_NAME: &str = "fuzz.toml";

fuzz_target!(|bytes: &[u8]| {
    let Ok(toml_text) = std::str::from_utf8(bytes) else {
        return;
    };
    match ludus_regions::from_str(toml_text, FILE_NAME) {
        Ok(config) => check_invariants(&config),
        Err(error) => check_error(&error, toml_text),
    }
});

fn check_error(error: &ConfigError, toml_text: &str) {
    let message = error.to_string();
    assert!(
        message.starts_with(FILE_NAME),
        "message names no file: {message}"
    );
    let line = match error {
        ConfigError::Parse { line, .. } | ConfigError::Invalid { line, .. } => *line,
        ConfigError::Read { .. } => panic!("from_str reads no file, yet: {message}"),
    };
    let line_count = 1 + toml_text.matches('\n').count();
    assert!(
        (1..=line_count).contains(&line),
        "line {line} outside 1..={line_count}: {message}"
    );
}

fn check_invariants(config: &RegionConfig) {
    let default_region = config.default_region();
    assert!(
        config.region(default_region).is_some(),
        "default region {default_region} unknown"
    );
    let mut node_ids = BTreeSet::new();
    for node in config.nodes() {
        assert!(node_ids.insert(&node.id), "node id {} twice", node.id);
        assert!(
            config.region(&node.region).is_some(),
            "node {} in unknown region",
            node.id
        );
    }
    let placement = Placement::with_all_nodes(config);
    for region in config.regions() {
        let order = config.fallback_order(&region.name);
        assert_eq!(
            order.first(),
            Some(&region.name),
            "fallback order of {}",
            region.name
        );
        let distinct: BTreeSet<_> = order.iter().collect();
        assert_eq!(
            distinct.len(),
            order.len(),
            "fallback order of {} repeats",
            region.name
        );

        let decision = match placement.place("room-1", &region.name) {
            Ok(decision) => decision,
            Err(error) => panic!(
                "region {} cannot place with every node live: {error}",
                region.name
            ),
        };
        assert_eq!(decision.reason, PlacementReason::Preferred);
        assert_eq!(decision.region, region.name);

        assert_eq!(
            config.resolve_region(region.name.as_str()),
            Some(&region.name)
        );
        for alias in &region.aliases {
            assert_eq!(
                config.resolve_region(alias),
                Some(&region.name),
                "alias {alias}"
            );
        }
    }
}
