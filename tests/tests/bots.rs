//! The bot swarm against a real server on port 0: every bot joins, sees strictly increasing
//! ticks, has its inputs acknowledged, and the JSON report carries the fields documented in
//! `bot-client/README.md`.

use ludus_bots::bot::{run_bot, BotConfig, BotContext, JoinPlan, StopMode};
use ludus_bots::cli::LoadArgs;
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
