//! The `ludus-server` binary's configuration front door, run as an operator runs it:
//! `--check-config` with files, environment overrides and flags, checking exit codes and the
//! `origin: field: message` error format. Also pins `server/ludus.example.toml` to the defaults.

use ludus_server::config::{self, ServerConfig};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BINARY: &str = env!("CARGO_BIN_EXE_ludus-server");

fn example_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ludus.example.toml")
}

/// The binary with `--check-config`, a clean `LUDUS__*` environment and no `LUDUS_CONFIG`, so
/// the developer's shell cannot change the outcome.
fn check_config() -> Command {
    let mut command = Command::new(BINARY);
    command.arg("--check-config").env_remove("LUDUS_CONFIG");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with(config::ENV_PREFIX) {
            command.env_remove(name);
        }
    }
    command
}

fn run(command: &mut Command) -> (Option<i32>, String, String) {
    // expect: the binary was built by cargo for this very test.
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("ludus-server runs");
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// A temporary config file holding `text`, removed when dropped.
struct TempConfig(tempfile::NamedTempFile);

impl TempConfig {
    fn with_text(text: &str) -> Self {
        let mut file = tempfile::Builder::new()
            .suffix(".toml")
            .tempfile()
            .expect("temp dir is writable");
        std::io::Write::write_all(&mut file, text.as_bytes()).expect("temp file is writable");
        Self(file)
    }
}

#[test]
fn the_example_file_passes_check_config() {
    let (code, stdout, stderr) = run(check_config().arg("--config").arg(example_file()));
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(stdout.contains("max_message_bytes = 4096"), "{stdout}");
}

#[test]
fn the_example_file_is_exactly_the_defaults() {
    let loaded = config::load(Some(&example_file()), &[]).expect("example parses");
    assert_eq!(loaded.config, ServerConfig::default());
    let validated = loaded
        .validate(&ludus_server::game::GameRegistry::builtin().limits())
        .expect("example is valid");
    assert_eq!(validated, ServerConfig::default());
}

#[test]
fn an_out_of_range_value_in_a_file_exits_2_naming_file_line_and_field() {
    let file =
        TempConfig::with_text("[server]\nworkers = 2\n\n[session]\nmax_message_bytes = 10\n");
    let (code, _, stderr) = run(check_config().arg("--config").arg(file.0.path()));
    assert_eq!(code, Some(2), "stderr: {stderr}");
    let location = format!("{}:5: session.max_message_bytes:", file.0.path().display());
    assert!(
        stderr.contains(&location),
        "expected `{location}` in: {stderr}"
    );
}

#[test]
fn an_out_of_range_environment_override_exits_2_naming_the_variable() {
    let (code, _, stderr) = run(check_config().env("LUDUS__SESSION__MAX_MESSAGE_BYTES", "1"));
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("LUDUS__SESSION__MAX_MESSAGE_BYTES: session.max_message_bytes:"),
        "{stderr}"
    );
}

#[test]
fn setting_an_unknown_field_exits_2() {
    let (code, _, stderr) = run(check_config().args(["--set", "nope=1"]));
    assert_eq!(code, Some(2), "stderr: {stderr}");
    assert!(stderr.contains("--set nope: nope:"), "{stderr}");
}

#[test]
fn flags_override_the_file() {
    let (code, stdout, stderr) = run(check_config()
        .arg("--config")
        .arg(example_file())
        .args(["--listen", "127.0.0.1:9000"])
        .args(["--set", "rooms.max_rooms=7"]));
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(stdout.contains("listen = \"127.0.0.1:9000\""), "{stdout}");
    assert!(stdout.contains("max_rooms = 7"), "{stdout}");
}

#[test]
fn the_production_example_passes_check_config_with_its_secrets_from_the_environment() {
    let production = Path::new(env!("CARGO_MANIFEST_DIR")).join("ludus.production.toml");
    let (code, stdout, stderr) = run(check_config()
        .arg("--config")
        .arg(&production)
        .env("LUDUS__SERVER__SECRET", "production-seat-secret-0123456789")
        .env(
            "LUDUS__OPERATOR__TOKENS",
            r#"["production-operator-token-0123456789"]"#,
        ));
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(stdout.contains("auth = \"jwt\""), "{stdout}");
    assert!(
        !stdout.contains("production-operator-token") && !stdout.contains("production-seat"),
        "secrets are redacted: {stdout}"
    );
}
