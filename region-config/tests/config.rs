//! Loading region files: the examples load, and every bad fixture fails with the exact
//! `file:line: field: message` an operator will read.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ludus_regions::{from_str, line_of_field, load, ConfigError, NodeId, Problem, RegionName};

fn crate_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Loads `tests/fixtures/<name>` with `<name>` as the file name in messages.
fn load_fixture(name: &str) -> Result<ludus_regions::RegionConfig, ConfigError> {
    let path = crate_path(&format!("tests/fixtures/{name}"));
    let text = std::fs::read_to_string(&path).expect("fixture is readable");
    from_str(&text, name)
}

/// Every bad fixture and the message it must produce.
const BAD_FIXTURES: &[(&str, &str)] = &[
    ("bad-unknown-node-region.toml", "bad-unknown-node-region.toml:25: nodes[2].region: unknown region `ap`"),
    ("bad-unknown-fallback.toml", "bad-unknown-fallback.toml:5: regions.eu.fallbacks[1]: unknown region `ap`"),
    ("bad-unknown-default-region.toml", "bad-unknown-default-region.toml:2: default_region: unknown region `mars`"),
    ("bad-duplicate-node-id.toml", "bad-duplicate-node-id.toml:24: nodes[2].id: duplicate node id `eu-1`, first defined on line 10"),
    ("bad-zero-weight.toml", "bad-zero-weight.toml:28: nodes[2].weight: weight must be a positive integer, got 0"),
    ("bad-negative-weight.toml", "bad-negative-weight.toml:14: nodes[0].weight: weight must be a positive integer, got -3"),
    ("bad-ws-url-scheme.toml", "bad-ws-url-scheme.toml:12: nodes[0].ws_url: url `http://127.0.0.1:7801` must use scheme `ws` or `wss`, got `http`"),
    ("bad-malformed-url.toml", "bad-malformed-url.toml:20: nodes[1].http_url: malformed url `http://127.0.0.1:99999`: invalid port number"),
    ("bad-nats-url-scheme.toml", "bad-nats-url-scheme.toml:5: cluster.nats_url: url `http://127.0.0.1:4222` must use scheme `nats` or `tls`, got `http`"),
    ("bad-fallback-cycle.toml", "bad-fallback-cycle.toml:8: regions.us.fallbacks[0]: fallback cycle ap -> eu -> us -> ap"),
    ("bad-empty-region.toml", "bad-empty-region.toml:9: regions.ap: region `ap` has no nodes"),
    ("bad-unknown-field.toml", "bad-unknown-field.toml:22: nodes[1].wieght: unknown field `wieght`, expected one of `id`, `region`, `ws_url`, `http_url`, `weight`"),
    ("bad-wrong-type.toml", "bad-wrong-type.toml:14: nodes[0].weight: invalid type: string \"heavy\", expected i64"),
    ("bad-missing-field.toml", "bad-missing-field.toml:6: nodes[0]: missing field `http_url`"),
    ("bad-toml-syntax.toml", "bad-toml-syntax.toml:4: unclosed table, expected `]`"),
    ("bad-unsupported-version.toml", "bad-unsupported-version.toml:1: version: unsupported version 2, this build reads version 1"),
    ("bad-duplicate-alias.toml", "bad-duplicate-alias.toml:8: regions.us.aliases[1]: alias `fra` already names region `eu`"),
    ("bad-invalid-node-id.toml", "bad-invalid-node-id.toml:7: nodes[0].id: invalid name `eu.1`: use 1 to 64 ASCII letters, digits, `-` or `_`"),
    ("bad-node-timeout.toml", "bad-node-timeout.toml:6: cluster.node_timeout_ms: node_timeout_ms must be greater than heartbeat_interval_ms (2000), got 1500"),
    ("bad-tick-hz.toml", "bad-tick-hz.toml:11: regions.us.room_types.arena.tick_hz: tick_hz must be between 1 and 240, got 0"),
];

#[test]
fn every_bad_fixture_fails_with_file_line_field_and_reason() {
    for (fixture, expected_message) in BAD_FIXTURES {
        let error = load_fixture(fixture).expect_err(fixture);
        assert_eq!(&error.to_string(), expected_message, "fixture {fixture}");
    }
}

#[test]
fn every_bad_fixture_on_disk_has_an_expected_message() {
    let fixtures_dir = crate_path("tests/fixtures");
    for entry in std::fs::read_dir(fixtures_dir).expect("fixtures dir") {
        let file_name = entry
            .expect("dir entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if file_name.starts_with("bad-") {
            assert!(
                BAD_FIXTURES
                    .iter()
                    .any(|(fixture, _)| *fixture == file_name),
                "{file_name} has no expected message in BAD_FIXTURES"
            );
        }
    }
}

#[test]
fn semantic_errors_expose_a_matchable_problem() {
    let error = load_fixture("bad-zero-weight.toml").expect_err("zero weight");
    let ConfigError::Invalid {
        line,
        field,
        problem,
        ..
    } = error
    else {
        panic!("expected an invalid-field error, got {error:?}");
    };
    assert_eq!((line, field.as_str()), (28, "nodes[2].weight"));
    assert_eq!(problem, Problem::NonPositiveWeight { found: 0 });

    let error = load_fixture("bad-fallback-cycle.toml").expect_err("cycle");
    assert!(matches!(
        error,
        ConfigError::Invalid { problem: Problem::FallbackCycle { ref cycle }, .. } if cycle.len() == 4
    ));
}

#[test]
fn schema_errors_are_parse_errors_with_the_field() {
    let error = load_fixture("bad-unknown-field.toml").expect_err("unknown field");
    assert!(matches!(
        error,
        ConfigError::Parse { line: 22, field: Some(ref field), .. } if field == "nodes[1].wieght"
    ));
}

#[test]
fn examples_load_with_defaults_applied() {
    let single =
        load(crate_path("examples/single-node.toml")).expect("single-node example is valid");
    assert_eq!(single.nodes().len(), 1);
    assert_eq!(single.cluster().nats_url, None);
    assert_eq!(
        single.cluster().heartbeat_interval,
        Duration::from_millis(1000)
    );
    assert_eq!(single.cluster().node_timeout, Duration::from_millis(5000));

    let three = load(crate_path("examples/three-nodes-two-regions.toml"))
        .expect("three-node example is valid");
    let eu = RegionName::new("eu");
    assert_eq!(three.nodes().len(), 3);
    assert_eq!(three.nodes_in(&eu).count(), 2);
    assert_eq!(
        three.fallback_order(&eu),
        [eu.clone(), RegionName::new("us")]
    );
    assert_eq!(three.resolve_region("fra"), Some(&eu));
    assert_eq!(three.resolve_region("eu"), Some(&eu));
    assert_eq!(three.resolve_region("mars"), None);
    let eu_2 = three
        .nodes()
        .iter()
        .find(|node| node.id == NodeId::new("eu-2"))
        .expect("eu-2");
    assert_eq!(eu_2.weight.get(), 2);
    assert_eq!(eu_2.ws_url.as_str(), "ws://127.0.0.1:7811/");
    let arena = &three.region(&eu).expect("eu").room_types["arena"];
    assert_eq!((arena.max_players, arena.tick_hz), (16, 20));
}

#[test]
fn missing_file_is_a_read_error_naming_the_path() {
    let error = load("does/not/exist.toml").expect_err("missing file");
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error
        .to_string()
        .starts_with("does/not/exist.toml: cannot read region file: "));
}

#[test]
fn line_of_field_finds_keys_tables_and_array_elements() {
    let text = "version = 1\n\
                [server]\n\
                tick_hz = 20\n\
                [regions.eu]\n\
                fallbacks = [\n  \"us\",\n  \"ap\",\n]\n\
                [[nodes]]\n\
                id = \"a\"\n\
                [[nodes]]\n\
                id = \"b\"\n\
                inline = { port = 7801 }\n";
    assert_eq!(line_of_field(text, "version"), Some(1));
    assert_eq!(line_of_field(text, "server.tick_hz"), Some(3));
    assert_eq!(line_of_field(text, "regions.eu"), Some(4));
    assert_eq!(line_of_field(text, "regions.eu.fallbacks[1]"), Some(7));
    assert_eq!(line_of_field(text, "nodes[0]"), Some(9));
    assert_eq!(line_of_field(text, "nodes[1].id"), Some(12));
    assert_eq!(line_of_field(text, "nodes[1].inline.port"), Some(13));
    assert_eq!(line_of_field(text, "nodes[2].id"), None);
    assert_eq!(line_of_field(text, "server.missing"), None);
    assert_eq!(line_of_field(text, "nodes[x]"), None);
    assert_eq!(line_of_field("not = = toml", "not"), None);
}
