//! The swarm end to end against a minimal fake server, so the bot's I/O loop (lobby calls,
//! WebSocket, hello, acks, inputs, leave, reconnect and resume) is tested without the real
//! server. The fake (in `fake_server/`) follows the lobby contract and the protocol closely enough for one bot per room "tick stream"; the
//! real server is exercised by `tests/tests/bots.rs`.

use ludus_bots::cli::{LoadArgs, StormArgs};
use ludus_bots::stats::Counter;
use ludus_bots::swarm::{self, Gates, RunOptions, Scenario};
use ludus_protocol::{ErrorCode, ProtocolVersion};
use std::time::Duration;
use tokio::net::TcpListener;

mod fake_server;
use fake_server::{FakeServer, Faults, ResumeAnswer, NO_FAULTS};

/// The fake server writes version 1 frames only.
const PROTOCOL: ProtocolVersion = ProtocolVersion::V1;

fn load(server: String, rooms: u32, players: u32) -> (RunOptions, Scenario) {
    let options = RunOptions {
        server,
        room_type: "arena".into(),
        protocol: PROTOCOL,
        ramp_interval: Duration::from_millis(2),
        max_pending_joins: 16,
        seed: 7,
        report: None,
        html: None,
        quiet: true,
        gates: Gates {
            max_p99_ms: Some(1000.0),
            max_error_rate: Some(0.0),
        },
    };
    let scenario = Scenario::Load(LoadArgs {
        rooms,
        players,
        input_hz: 25.0,
        duration_s: 1.0,
    });
    (options, scenario)
}

#[tokio::test]
async fn every_bot_joins_plays_gets_its_inputs_acknowledged_and_leaves() {
    let server = FakeServer::start(NO_FAULTS).await;
    let (options, scenario) = load(server.url(), 3, 4);
    let report = tokio::time::timeout(Duration::from_secs(30), swarm::run(&options, &scenario))
        .await
        .expect("bounded run")
        .expect("run succeeds");
    assert_eq!(report.counter(Counter::Joined), 12);
    assert_eq!(report.counter(Counter::FailedJoins), 0);
    assert!(
        report.counter(Counter::InputsAcked) > 12 * 10,
        "{report:#?}"
    );
    assert!(report.counter(Counter::DeltasApplied) > 12 * 20);
    assert_eq!(report.counter(Counter::Gaps), 0);
    assert_eq!(report.counter(Counter::TickRegressions), 0);
    assert_eq!(report.disconnects.get("client_leave"), Some(&12));
    assert_eq!(report.peak_connected, 12);
    assert!(report.latency.count > 0 && report.latency.p99_ms < 1000.0);
    assert!(report.gates.passed, "{:?}", report.gates.failures);
}

#[tokio::test]
async fn gaps_are_detected_and_resynced() {
    let server = FakeServer::start(Faults {
        gap_every: 10,
        ..NO_FAULTS
    })
    .await;
    let (options, scenario) = load(server.url(), 1, 2);
    let report = tokio::time::timeout(Duration::from_secs(30), swarm::run(&options, &scenario))
        .await
        .expect("bounded run")
        .expect("run succeeds");
    let gaps = report.counter(Counter::Gaps);
    assert!(gaps >= 2, "{report:#?}");
    assert_eq!(report.counter(Counter::Resyncs), gaps);
    assert!(report.counter(Counter::Snapshots) > 2);
    assert_eq!(report.counter(Counter::TickRegressions), 0);
}

#[tokio::test]
async fn bots_follow_a_redirect_to_the_node_named() {
    let server = FakeServer::start(Faults {
        redirect_first_hello: true,
        ..NO_FAULTS
    })
    .await;
    let (options, scenario) = load(server.url(), 1, 3);
    let report = tokio::time::timeout(Duration::from_secs(30), swarm::run(&options, &scenario))
        .await
        .expect("bounded run")
        .expect("run succeeds");
    assert_eq!(
        server.redirected.lock().expect("lock").len(),
        3,
        "each bot was redirected once"
    );
    assert_eq!(report.counter(Counter::Joined), 3, "{report:#?}");
    assert_eq!(report.counter(Counter::FailedJoins), 0);
    assert!(report.counter(Counter::DeltasApplied) > 0);
}

#[tokio::test]
async fn an_unreachable_server_fails_setup_with_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let (options, scenario) = load(url, 1, 1);
    let error = swarm::run(&options, &scenario)
        .await
        .expect_err("nothing listens");
    let source = std::error::Error::source(&error).map(ToString::to_string);
    assert!(
        matches!(error, ludus_bots::ScenarioError::Setup(_)),
        "{error}"
    );
    assert!(source.is_some_and(|source| source.contains("POST /v1/rooms")));
}

fn storm(server: String, bots: u32) -> (RunOptions, Scenario) {
    let (options, _) = load(server, 1, 1);
    let scenario = Scenario::Storm(StormArgs {
        bots,
        input_hz: 25.0,
        before_s: 0.5,
        after_s: 0.5,
    });
    (options, scenario)
}

async fn run_storm(resume: ResumeAnswer, bots: u32) -> ludus_bots::Report {
    let server = FakeServer::start(Faults {
        resume,
        ..NO_FAULTS
    })
    .await;
    let (options, scenario) = storm(server.url(), bots);
    tokio::time::timeout(Duration::from_secs(60), swarm::run(&options, &scenario))
        .await
        .expect("bounded run")
        .expect("run succeeds")
}

#[tokio::test]
async fn a_storm_cuts_every_bot_and_every_bot_resumes_from_the_missed_deltas() {
    let report = run_storm(ResumeAnswer::Deltas, 6).await;
    let storm = report.storm.clone().expect("storm figures");
    assert_eq!(storm.bots_cut, 6, "{report:#?}");
    assert_eq!(storm.resumed, 6);
    assert!(storm.all_resumed && !storm.wait_timed_out);
    assert!(storm.time_to_last_resume_ms.is_some());
    let resume = &report.resume;
    assert_eq!(resume.drops_injected, 6);
    assert_eq!(resume.by_delta, 6);
    assert_eq!(resume.by_snapshot, 0);
    assert_eq!(resume.mismatches, 0);
    assert_eq!(resume.gaps, 0);
    assert_eq!(resume.latency.count, 6);
    assert!(resume.refused.is_empty());
    // Each bot kept its seat: one join each, and the session ended with the run's leave.
    assert_eq!(report.counter(Counter::Joined), 6);
    assert_eq!(report.disconnects.get("client_leave"), Some(&6));
    assert_eq!(report.counter(Counter::TickRegressions), 0);
    assert!(report.counter(Counter::InputsAcked) > 0);
    assert_eq!(report.errors, 0, "{report:#?}");
}

#[tokio::test]
async fn a_resume_answered_with_a_snapshot_is_counted_as_such() {
    let report = run_storm(ResumeAnswer::Snapshot, 3).await;
    assert_eq!(report.resume.by_snapshot, 3, "{report:#?}");
    assert_eq!(report.resume.by_delta, 0);
    assert_eq!(report.resume.mismatches, 0);
    assert_eq!(report.counter(Counter::Resyncs), 0);
    assert_eq!(report.errors, 0);
}

#[tokio::test]
async fn a_refused_resume_falls_back_to_a_new_seat_and_is_counted_by_reason() {
    let report = run_storm(ResumeAnswer::Refuse(ErrorCode::ResumeExpired), 3).await;
    let storm = report.storm.clone().expect("storm figures");
    assert_eq!(storm.resumed, 0, "{report:#?}");
    assert_eq!(storm.not_resumed, 3);
    assert_eq!(report.resume.refused.get("resume_expired"), Some(&3));
    // Three first joins and three new seats after the refusals.
    assert_eq!(report.counter(Counter::Joined), 6);
    assert_eq!(report.counter(Counter::FailedJoins), 0);
    assert_eq!(report.disconnects.get("client_leave"), Some(&3));
    assert_eq!(report.errors, 0);
}

#[tokio::test]
async fn soak_drops_cut_sockets_and_the_bots_resume_in_place() {
    let server = FakeServer::start(NO_FAULTS).await;
    let (options, _) = load(server.url(), 1, 1);
    let scenario = Scenario::Soak(ludus_bots::cli::SoakArgs {
        bots: 3,
        input_hz: 25.0,
        duration_s: 1.0,
        churn_per_s: 10.0,
        drop_fraction: 1.0,
    });
    let report = tokio::time::timeout(Duration::from_secs(60), swarm::run(&options, &scenario))
        .await
        .expect("bounded run")
        .expect("run succeeds");
    let resume = &report.resume;
    assert!(resume.drops_injected >= 5, "{report:#?}");
    assert!(resume.by_delta >= 1);
    assert_eq!(resume.mismatches, 0);
    assert_eq!(resume.gaps, 0);
    // Dropped bots resume instead of being replaced.
    assert_eq!(report.bots_started, 3);
    assert_eq!(report.errors, 0, "{report:#?}");
}
