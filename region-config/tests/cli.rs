//! The `ludus-regions` binary as an operator runs it: exit codes, stdout and stderr.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ludus-regions"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .expect("ludus-regions runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const THREE_NODES: &str = "examples/three-nodes-two-regions.toml";

#[test]
fn check_summarises_a_valid_file() {
    let output = run(&["check", THREE_NODES]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let summary = stdout(&output);
    assert!(summary.starts_with(
        "examples/three-nodes-two-regions.toml: ok, 2 regions, 3 nodes, default region eu\n"
    ));
    assert!(
        summary.contains("region eu: aliases [DE, FRA, NL], fallback order [us], total weight 3\n")
    );
    assert!(
        summary.contains("  node eu-2: weight 2 (66.7% of the region), ws ws://127.0.0.1:7811/")
    );
}

#[test]
fn check_reports_file_line_and_field_on_stderr_with_exit_code_1() {
    let output = run(&["check", "tests/fixtures/bad-zero-weight.toml"]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "");
    assert_eq!(
        stderr(&output),
        "error: tests/fixtures/bad-zero-weight.toml:28: nodes[2].weight: weight must be a positive integer, got 0\n"
    );
}

#[test]
fn place_prints_the_owner_in_the_preferred_region() {
    let output = run(&["place", THREE_NODES, "room-17", "--region", "FRA"]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert_eq!(stdout(&output), "eu-1 (region eu)\n");
}

#[test]
fn place_explains_a_fallback() {
    let output = run(&[
        "place",
        THREE_NODES,
        "room-17",
        "--down",
        "eu-1",
        "--down",
        "eu-2",
    ]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "us-1 (region us, fallback because region `eu` has no live node)\n"
    );
}

#[test]
fn place_fails_when_no_region_has_a_live_node() {
    let output = run(&[
        "place",
        THREE_NODES,
        "room-17",
        "--region",
        "us",
        "--down",
        "us-1",
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: no live node in region `us` or its fallbacks (tried us)\n"
    );
}

#[test]
fn diff_estimates_the_moved_share_per_region() {
    let output = run(&[
        "diff",
        THREE_NODES,
        "tests/fixtures/three-nodes-plus-eu-3.toml",
    ]);
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let report = stdout(&output);
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(
        lines[0],
        "estimated from 100000 synthetic room ids (room-0 .. room-99999), every node live, fallbacks ignored"
    );
    // eu-3 brings weight 1 to a region of weight 3: it should take about a quarter of eu.
    let eu_percent: f64 = lines[1]
        .strip_prefix("region eu: ")
        .and_then(|rest| rest.strip_suffix("% of rooms change owner"))
        .and_then(|percent| percent.parse().ok())
        .unwrap_or_else(|| panic!("unexpected eu line: {}", lines[1]));
    assert!((24.0..26.0).contains(&eu_percent), "eu moved {eu_percent}%");
    assert_eq!(lines[2], "region us: 0.00% of rooms change owner");
}
