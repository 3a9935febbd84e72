//! The bot swarm against a real server on port 0: every bot joins, sees strictly increasing
//! ticks, has its inputs acknowledged, and the JSON report carries the fields documented in
//! `bot-client/README.md`. Sockets cut without a close (`storm`, `soak --drop-fraction`) are
//! resumed with no gap and no mirror mismatch.

use ludus_bots::bot::{run_bot, BotConfig, BotContext, JoinPlan, StopMode};
use ludus_bots::cli::{LoadArgs, SoakArgs, StormArgs};
use ludus_bots::lobby::Lobby;
use ludus_bots::stats::{Counter, DisconnectReason, SwarmStats};
use ludus_bots::swarm::{self, Gates, RunOptions, Scenario};
use ludus_protocol::ProtocolVersion;
use ludus_tests::TestServer;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Semaphore};

const BOTS: usize = 50;
/// How long the bots play; at 20 Hz that is about 60 ticks each.
const PLAY_FOR: Duration = Duration::from_secs(3);
/// Bound on every await of a whole swarm.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bot_joins_sees_increasing_ticks_and_gets_its_inputs_acknowledged() {
    let server = TestServer::start();
    let lobby = Lobby::new(&server.http_url()).expect("harness url is http://host:port");
    // One context (and so one set of totals) per bot, to check each bot, not just the sum.
    let mut bots = Vec::with_capacity(BOTS);
    for index in 0..BOTS {
        let context = Arc::new(BotContext {
            lobby: lobby.clone(),
            stats: Arc::new(SwarmStats::default()),
            join_permits: Semaphore::new(1),
        });
        let config = BotConfig {
            name: format!("bot-{index}"),
            join: JoinPlan::Matchmake {
                room_type: "arena".into(),
            },
            input_hz: 20.0,
            seed: index as u64,
            // Both versions in the same rooms: each is encoded once per tick beside the other.
            protocol: ProtocolVersion::ALL[index % 2],
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let task_context = Arc::clone(&context);
        let task = tokio::spawn(async move { run_bot(&task_context, config, stop_rx).await });
        bots.push((context, stop_tx, task));
    }
    tokio::time::sleep(PLAY_FOR).await;

    for (index, (context, stop_tx, task)) in bots.into_iter().enumerate() {
        if stop_tx.send(StopMode::Leave).is_err() {
            let outcome = tokio::time::timeout(RUN_TIMEOUT, task).await;
            panic!("bot {index} stopped early: {outcome:?}");
        }
        let ended = tokio::time::timeout(RUN_TIMEOUT, task)
            .await
            .expect("bot ends in time")
            .expect("bot task does not panic")
            .unwrap_or_else(|error| panic!("bot {index} failed to join: {error}"));
        assert_eq!(ended, DisconnectReason::ClientLeave, "bot {index}");
        let stats = &context.stats;
        let count = |counter: Counter| stats.get(counter);
        assert_eq!(count(Counter::Joined), 1, "bot {index}");
        assert!(
            count(Counter::DeltasApplied) >= 10,
            "bot {index}: {:?}",
            stats.counters()
        );
        assert_eq!(count(Counter::TickRegressions), 0, "bot {index}");
        assert_eq!(count(Counter::DecodeErrors), 0, "bot {index}");
        assert!(
            count(Counter::InputsAcked) >= 5,
            "bot {index}: {:?}",
            stats.counters()
        );
        assert!(stats.total_latency().count >= 5, "bot {index}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_run_writes_a_report_with_the_documented_fields() {
    let server = TestServer::start();
    let report_path =
        std::env::temp_dir().join(format!("ludus-bots-report-{}.json", std::process::id()));
    let options = RunOptions {
        server: server.http_url(),
        room_type: "arena".into(),
        protocol: ProtocolVersion::V2,
        ramp_interval: Duration::from_millis(5),
        max_pending_joins: 16,
        seed: 1,
        report: Some(report_path.clone()),
        html: None,
        quiet: true,
        gates: Gates {
            max_p99_ms: None,
            max_error_rate: Some(0.0),
        },
    };
    let scenario = Scenario::Load(LoadArgs {
        rooms: 5,
        players: 10,
        input_hz: 20.0,
        duration_s: PLAY_FOR.as_secs_f64(),
    });
    let report = tokio::time::timeout(RUN_TIMEOUT, swarm::run(&options, &scenario))
        .await
        .expect("run ends in time")
        .expect("run succeeds");
    report.write_json(&report_path).expect("report written");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report_path).expect("report readable"))
            .expect("report is JSON");
    let _cleanup = std::fs::remove_file(&report_path);

    assert_eq!(json["scenario"]["name"], "load");
    assert_eq!(json["target_bots"], 50);
    assert_eq!(json["counters"]["joined"], 50);
    assert_eq!(json["counters"]["failed_joins"], 0);
    assert_eq!(json["counters"]["tick_regressions"], 0);
    assert_eq!(json["disconnects"]["client_leave"], 50);
    assert_eq!(json["errors"], 0);
    assert_eq!(json["gates"]["passed"], true);
    for field in ["deltas_per_s", "messages_per_s", "bytes_per_s", "seconds"] {
        assert!(
            json["hold"][field]
                .as_f64()
                .is_some_and(|value| value > 0.0),
            "hold.{field}"
        );
    }
    for field in [
        "count", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms",
    ] {
        assert!(json["latency"][field].is_number(), "latency.{field}");
    }
    let timeline = json["timeline"].as_array().expect("timeline is an array");
    assert!(!timeline.is_empty());
    for field in [
        "t_s",
        "unix_ms",
        "connected",
        "messages_per_s",
        "deltas_per_s",
        "p99_ms",
        "errors",
    ] {
        assert!(timeline[0][field].is_number(), "timeline[].{field}");
    }
    assert!(json["peak_connected"].as_u64().is_some_and(|peak| peak > 0));
}

/// `storm` against the real server: every bot's socket is cut at once without a close, every
/// bot resumes with the missed deltas, and the mirrors continue with no gap and no mismatch.
async fn storm_resumes_every_bot(protocol: ProtocolVersion, bots: u32) {
    let server = TestServer::start();
    let options = RunOptions {
        server: server.http_url(),
        room_type: "arena".into(),
        protocol,
        ramp_interval: Duration::from_millis(5),
        max_pending_joins: 16,
        seed: 3,
        report: None,
        html: None,
        quiet: true,
        gates: Gates {
            max_p99_ms: None,
            max_error_rate: Some(0.0),
        },
    };
    let scenario = Scenario::Storm(StormArgs {
        bots,
        input_hz: 20.0,
        before_s: 1.0,
        after_s: 1.0,
    });
    let report = tokio::time::timeout(RUN_TIMEOUT, swarm::run(&options, &scenario))
        .await
        .expect("run ends in time")
        .expect("run succeeds");
    let storm = report.storm.clone().expect("storm figures");
    assert_eq!(storm.bots_cut, u64::from(bots), "{report:#?}");
    assert!(storm.all_resumed && !storm.wait_timed_out, "{report:#?}");
    let resume = &report.resume;
    assert_eq!(resume.by_delta, u64::from(bots), "{report:#?}");
    assert_eq!(resume.by_snapshot, 0);
    assert!(resume.refused.is_empty());
    assert_eq!(resume.mismatches, 0);
    assert_eq!(resume.gaps, 0);
    assert_eq!(resume.latency.count, u64::from(bots));
    // Every bot kept its seat (one join each) and played on after the resume.
    assert_eq!(report.counter(Counter::Joined), u64::from(bots));
    assert_eq!(report.counter(Counter::TickRegressions), 0);
    assert_eq!(report.counter(Counter::Resyncs), 0);
    assert_eq!(
        report.disconnects.get("client_leave"),
        Some(&u64::from(bots))
    );
    assert_eq!(report.errors, 0, "{report:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_cut_sockets_resumes_every_bot_with_the_missed_deltas() {
    storm_resumes_every_bot(ProtocolVersion::V2, 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_1_bots_resume_too() {
    storm_resumes_every_bot(ProtocolVersion::V1, 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_drops_are_resumed_in_place_with_no_gap() {
    let server = TestServer::start();
    let options = RunOptions {
        server: server.http_url(),
        room_type: "arena".into(),
        protocol: ProtocolVersion::V2,
        ramp_interval: Duration::from_millis(5),
        max_pending_joins: 16,
        seed: 5,
        report: None,
        html: None,
        quiet: true,
        gates: Gates::default(),
    };
    let scenario = Scenario::Soak(SoakArgs {
        bots: 8,
        input_hz: 20.0,
        duration_s: 2.0,
        churn_per_s: 10.0,
        drop_fraction: 1.0,
    });
    let report = tokio::time::timeout(RUN_TIMEOUT, swarm::run(&options, &scenario))
        .await
        .expect("run ends in time")
        .expect("run succeeds");
    let resume = &report.resume;
    assert!(resume.drops_injected >= 10, "{report:#?}");
    // A bot cut again while it resumes, or when the drain starts, may not complete each one.
    assert!(resume.by_delta + resume.by_snapshot >= resume.drops_injected / 2);
    assert_eq!(resume.mismatches, 0, "{report:#?}");
    assert_eq!(resume.gaps, 0);
    assert!(resume.refused.is_empty(), "{report:#?}");
    assert_eq!(report.bots_started, 8);
    assert_eq!(report.counter(Counter::TickRegressions), 0);
    assert_eq!(report.errors, 0, "{report:#?}");
}
