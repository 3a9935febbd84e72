//! Chaos: rooms outlive their nodes. Three node processes (eu-1, eu-2 in `eu`, us-1 in `us`)
//! and their own `nats-server`, under a swarm of real bots playing `arena` rooms, suffer in turn:
//!
//! 1. `kill -9` of a random node (seeded; the seed is printed) every 10 s for 60 s, each
//!    restarted on the same address so the cluster is back to three nodes;
//! 2. `SIGSTOP` of the busiest node for longer than its lease, then `SIGCONT`;
//! 3. a restart of NATS (same port, same store);
//! 4. a rolling drain: per node, `POST /v1/admin/drain`, wait for 0 rooms, `SIGTERM`, restart,
//!    wait until it is live again.
//!
//! After each fault every room must deliver state to some bot again within [`ROOM_BACK_WITHIN`]
//! of the fault. Throughout, the swarm's ledger checks that within an epoch ticks strictly
//! increase and epochs never go back (per bot), that no `(room, epoch)` is served by two
//! nodes, and that no seat is held by two live connections; at the end every bot must be back
//! in its room. Failover and drain figures (drop → back per bot) are printed for
//! `RELIABILITY.md`.
//!
//! Every wait is bounded; sleeps only space the faults. Knobs, to replay or isolate a failure:
//! `CHAOS_SEED=<n>` (the victims), `CHAOS_PHASES=kill,pause,nats,drain` (which phases, in this
//! order), `CHAOS_DOWN_MS=<ms>` (how long a killed node stays down). On a failure, or always
//! with `CHAOS_KEEP_LOGS=1`, the node logs are copied to `/tmp/ludus-chaos-<seed>/` (`RUST_LOG`
//! sets their level, default info).

use ludus_bots::cli::LoadArgs;
use ludus_bots::invariants::Spread;
use ludus_bots::ledger::Ledger;
use ludus_bots::stats::Counter;
use ludus_bots::swarm::{self, Gates, RunOptions, Scenario, SwarmHandle};
use ludus_protocol::ProtocolVersion;
use ludus_tests::process_cluster::ProcessCluster;
use ludus_tests::{eventually_within, operator_post};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

const LAYOUT: [(&str, &str); 3] = [("eu-1", "eu"), ("eu-2", "eu"), ("us-1", "us")];
/// The node lease: short, so failovers fit the test's time budget.
const LEASE_MS: u64 = 2_000;
const ROOMS: u32 = 12;
const PLAYERS: u32 = 4;
const BOTS: usize = (ROOMS * PLAYERS) as usize;
/// Inputs per bot per second: enough to keep rooms busy, light for a 2-core CI machine.
const INPUT_HZ: f64 = 5.0;

/// Every room delivers state again within this of a fault (detection by lease, restore,
/// redirect, resume and back-off, on a loaded CI machine).
const ROOM_BACK_WITHIN: Duration = Duration::from_secs(10);
/// Every bot is back in its room within this of a fault (its back-off may add a wait of up to
/// 2 s after its room came back).
const BOTS_BACK_WITHIN: Duration = Duration::from_secs(25);
/// A started node holds its lease and sees every node.
const LIVE_WITHIN: Duration = Duration::from_secs(20);
/// A draining node hands all its rooms on.
const DRAINED_WITHIN: Duration = Duration::from_secs(20);
/// A `SIGTERM`ed node exits (it has no rooms left after the drain).
const EXIT_WITHIN: Duration = Duration::from_secs(20);

const KILL_EVERY: Duration = Duration::from_secs(10);
const KILLS: u32 = 6;
/// How long a killed node stays down by default: a supervisor restarting a crashed process
/// after a back-off longer than the lease (`CHAOS_DOWN_MS` sets another, e.g. 1500 for a restart
/// inside the lease).
const DOWN_FOR: Duration = Duration::from_millis(LEASE_MS + 1_000);
/// How long a node stays frozen: well past its lease, so its rooms are restored elsewhere.
const PAUSED_FOR: Duration = Duration::from_millis(2 * LEASE_MS);

/// The whole test, a safety net over the bounded steps.
const TEST_WITHIN: Duration = Duration::from_secs(300);

/// What one fault cost.
struct Figure {
    fault: String,
    /// Fault → every room delivering state again.
    rooms_back: Duration,
    /// Drop → back of each bot the fault cut.
    drops: Spread,
}

/// The cluster, the running swarm and the figures so far.
struct Chaos {
    cluster: ProcessCluster,
    swarm: SwarmHandle,
    /// Each bot's room, from the end of the ramp-up.
    rooms_of_bots: BTreeMap<String, String>,
    figures: Vec<Figure>,
    rng: fastrand::Rng,
}

fn ledger(chaos: &Chaos) -> &Ledger {
    &chaos.swarm.stats.ledger
}

impl Chaos {
    fn rooms(&self) -> BTreeSet<String> {
        self.rooms_of_bots.values().cloned().collect()
    }

    /// Waits until every room delivered state since `fault`, then until every bot is connected
    /// in its room again; records the figures of the fault.
    async fn recover(
        &mut self,
        fault: String,
        at: Instant,
        drops_before: usize,
        rooms_back_early: Option<Duration>,
    ) -> anyhow::Result<()> {
        let rooms = self.rooms();
        let ledger = &self.swarm.stats.ledger;
        let back = eventually_within(ROOM_BACK_WITHIN.saturating_sub(at.elapsed()), || async {
            let playing = ledger.rooms_with_state_since(at);
            Ok(rooms.is_subset(&playing).then_some(()))
        })
        .await;
        if back.is_err() {
            let playing = ledger.rooms_with_state_since(at);
            let silent: Vec<String> = rooms.difference(&playing).cloned().collect();
            let directory = self.cluster.directory_dump(&silent).await;
            anyhow::bail!(
                "{fault}: rooms {silent:?} delivered no state within {ROOM_BACK_WITHIN:?}\n\
                 NATS holds:\n  {}\nbots: {:?}",
                directory.join("\n  "),
                ledger.places()
            );
        }
        let rooms_back = rooms_back_early.unwrap_or_else(|| at.elapsed());
        self.wait_bots_back(&fault, at).await?;
        let samples = ledger.drop_to_back_ms();
        let drops = Spread::of(samples.get(drops_before..).unwrap_or_default());
        eprintln!(
            "chaos: {fault}: rooms back after {} ms; {} bots dropped, back p50 {} / p99 {} / max {} ms",
            rooms_back.as_millis(),
            drops.count,
            drops.p50_ms,
            drops.p99_ms,
            drops.max_ms
        );
        self.figures.push(Figure {
            fault,
            rooms_back,
            drops,
        });
        Ok(())
    }

    /// Watches the rooms from the fault at `at` until `until` (while the fault lasts: a node
    /// down or frozen), and returns when every room was delivering state again, if that
    /// happened by then; so the figure is not rounded up to the fault's length.
    async fn rooms_back_during(&self, at: Instant, until: Instant) -> Option<Duration> {
        let rooms = self.rooms();
        let mut back = None;
        loop {
            let now = Instant::now();
            if back.is_none() && rooms.is_subset(&ledger(self).rooms_with_state_since(at)) {
                back = Some(now.duration_since(at));
            }
            if now >= until {
                return back;
            }
            tokio::time::sleep(Duration::from_millis(50).min(until - now)).await;
        }
    }

    /// Waits until every bot is connected in the room it started in.
    async fn wait_bots_back(&self, when: &str, since: Instant) -> anyhow::Result<()> {
        let ledger = ledger(self);
        let all_back = || {
            let places = ledger.places();
            self.rooms_of_bots.iter().all(|(bot, room)| {
                places
                    .get(bot)
                    .is_some_and(|place| place.connected && &place.room == room)
            })
        };
        eventually_within(BOTS_BACK_WITHIN.saturating_sub(since.elapsed()), || async {
            Ok(all_back().then_some(()))
        })
        .await
        .map_err(|_| {
            let away: Vec<_> = ledger
                .places()
                .into_iter()
                .filter(|(bot, place)| {
                    !place.connected || self.rooms_of_bots.get(bot) != Some(&place.room)
                })
                .collect();
            anyhow::anyhow!("{when}: bots not back in their rooms: {away:?}")
        })
    }

    /// The node hosting the most bots now.
    fn busiest_node(&self) -> anyhow::Result<String> {
        let mut bots_per_node: BTreeMap<String, usize> = BTreeMap::new();
        for place in ledger(self).places().values() {
            if let Some(node) = self.cluster.node_of_url(&place.node) {
                *bots_per_node.entry(node).or_default() += 1;
            }
        }
        bots_per_node
            .into_iter()
            .max_by_key(|(_, bots)| *bots)
            .map(|(node, _)| node)
            .ok_or_else(|| anyhow::anyhow!("no bot on any node"))
    }

    /// 1: `kill -9` of a random node every [`KILL_EVERY`], restarted after [`DOWN_FOR`].
    async fn kills(&mut self) -> anyhow::Result<()> {
        let ids = self.cluster.ids();
        for round in 0..KILLS {
            let slot_end = Instant::now() + KILL_EVERY;
            let victim = ids[self.rng.usize(..ids.len())].clone();
            let drops_before = ledger(self).drop_to_back_ms().len();
            self.cluster.kill(&victim)?;
            let at = Instant::now();
            let early = self.rooms_back_during(at, at + down_for()).await;
            self.cluster.start_node(&victim)?;
            self.recover(
                format!("kill -9 {victim} (round {round})"),
                at,
                drops_before,
                early,
            )
            .await?;
            self.cluster.wait_until_live(&victim, LIVE_WITHIN).await?;
            tokio::time::sleep_until(slot_end.into()).await;
        }
        Ok(())
    }

    /// 2: `SIGSTOP` of the busiest node for twice its lease, then `SIGCONT`.
    async fn pause(&mut self) -> anyhow::Result<()> {
        let victim = self.busiest_node()?;
        let drops_before = ledger(self).drop_to_back_ms().len();
        let moved_before = self.swarm.stats.get(Counter::RoomMovedCloses);
        self.cluster.pause(&victim)?;
        let at = Instant::now();
        let early = self.rooms_back_during(at, at + PAUSED_FOR).await;
        self.cluster.resume(&victim)?;
        self.recover(
            format!("SIGSTOP {victim} for {PAUSED_FOR:?}"),
            at,
            drops_before,
            early,
        )
        .await?;
        self.cluster.wait_until_live(&victim, LIVE_WITHIN).await?;
        let moved = self.swarm.stats.get(Counter::RoomMovedCloses) - moved_before;
        eprintln!("chaos: {victim} fenced its rooms: {moved} closes 4013 room_moved");
        Ok(())
    }

    /// 3: NATS stops and starts again on the same port and store.
    async fn nats_restart(&mut self) -> anyhow::Result<()> {
        let drops_before = ledger(self).drop_to_back_ms().len();
        let at = Instant::now();
        self.cluster.nats.restart()?;
        self.recover("NATS restart".to_owned(), at, drops_before, None)
            .await?;
        for id in self.cluster.ids() {
            self.cluster.wait_until_live(&id, LIVE_WITHIN).await?;
        }
        Ok(())
    }

    /// 4: per node, drain, wait for 0 rooms, `SIGTERM`, restart, wait until live.
    async fn rolling_drain(&mut self) -> anyhow::Result<()> {
        for id in self.cluster.ids() {
            let drops_before = ledger(self).drop_to_back_ms().len();
            let url = format!("{}/v1/admin/drain", self.cluster.http_url(&id)?);
            let at = Instant::now();
            let answer = operator_post(&url, serde_json::json!({})).await?;
            anyhow::ensure!(
                answer.status == 202 && answer.body["draining"] == true,
                "drain {id}: {} {}",
                answer.status,
                answer.body
            );
            let cluster = &self.cluster;
            eventually_within(DRAINED_WITHIN, || async {
                let health = cluster.health(&id).await?;
                Ok(health
                    .filter(|health| health["draining"] == true && health["rooms"] == 0)
                    .map(|_| ()))
            })
            .await
            .map_err(|_| anyhow::anyhow!("drain {id}: rooms left after {DRAINED_WITHIN:?}"))?;
            self.recover(format!("drain {id}"), at, drops_before, None)
                .await?;
            let exited = self.cluster.terminate(&id, EXIT_WITHIN).await?;
            anyhow::ensure!(exited.success(), "drained {id} exited with {exited}");
            self.cluster.start_node(&id)?;
            self.cluster.wait_until_live(&id, LIVE_WITHIN).await?;
        }
        Ok(())
    }
}

/// The run's seed: `CHAOS_SEED`, else the clock.
fn seed() -> u64 {
    std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |since| since.as_nanos() as u64)
        })
}

/// Copies the node logs out of the cluster's temporary directory, which the failure is about
/// to delete.
fn keep_logs(cluster: &ProcessCluster, seed: u64) {
    let kept = Path::new("/tmp").join(format!("ludus-chaos-{seed}"));
    let copied = std::fs::create_dir_all(&kept).and_then(|()| {
        for id in cluster.ids() {
            let log = cluster.log_path(&id);
            if log.exists() {
                std::fs::copy(&log, kept.join(format!("{id}.log")))?;
            }
        }
        Ok(())
    });
    match copied {
        Ok(()) => eprintln!("chaos: node logs kept in {}", kept.display()),
        Err(error) => eprintln!("chaos: cannot keep the node logs: {error}"),
    }
}

fn print_figures(figures: &[Figure], prefix: &str, all_drops: &[u64]) {
    let chosen: Vec<_> = figures
        .iter()
        .filter(|figure| figure.fault.starts_with(prefix))
        .collect();
    let rooms_back_max = chosen
        .iter()
        .map(|figure| figure.rooms_back.as_millis())
        .max()
        .unwrap_or(0);
    let drops = Spread::of(all_drops);
    eprintln!(
        "chaos figures [{prefix}]: {} faults; rooms back ≤ {rooms_back_max} ms; drop → back over \
         {} bots: p50 {} ms, p99 {} ms, max {} ms",
        chosen.len(),
        drops.count,
        drops.p50_ms,
        drops.p99_ms,
        drops.max_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_outlive_kills_pauses_a_nats_restart_and_a_rolling_drain() -> anyhow::Result<()> {
    tokio::time::timeout(TEST_WITHIN, chaos())
        .await
        .map_err(|_| anyhow::anyhow!("the chaos test took over {TEST_WITHIN:?}"))?
}

async fn chaos() -> anyhow::Result<()> {
    let seed = seed();
    eprintln!("chaos: seed {seed} (replay with CHAOS_SEED={seed})");
    let started = Instant::now();
    let binary = Path::new(env!("CARGO_BIN_EXE_ludus-test-node"));
    let cluster = ProcessCluster::start(binary, &LAYOUT, LEASE_MS, LIVE_WITHIN).await?;
    let options = RunOptions {
        server: cluster.http_url("eu-1")?,
        room_type: "arena".into(),
        protocol: ProtocolVersion::V2,
        ramp_interval: Duration::from_millis(25),
        max_pending_joins: 8,
        seed,
        report: None,
        html: None,
        quiet: true,
        gates: Gates::default(),
    };
    let scenario = Scenario::Load(LoadArgs {
        rooms: ROOMS,
        players: PLAYERS,
        input_hz: INPUT_HZ,
        // Held until the test stops it.
        duration_s: TEST_WITHIN.as_secs_f64(),
    });
    let swarm = SwarmHandle::default();
    let handle = swarm.clone();
    let running = tokio::spawn(async move { swarm::run_with(&options, &scenario, handle).await });
    let mut chaos = Chaos {
        cluster,
        swarm,
        rooms_of_bots: BTreeMap::new(),
        figures: Vec::new(),
        rng: fastrand::Rng::with_seed(seed),
    };
    let outcome = faults(&mut chaos).await;
    if outcome.is_err() || std::env::var_os("CHAOS_KEEP_LOGS").is_some() {
        keep_logs(&chaos.cluster, seed);
    }
    chaos.swarm.stop.notify_one();
    let report = tokio::time::timeout(Duration::from_secs(60), running)
        .await
        .map_err(|_| anyhow::anyhow!("the swarm did not stop within 60 s"))???;
    // The swarm's view first, whatever happened: it is the evidence of a failure.
    print!("{}", report.summary_table());
    outcome?;

    let drops = ledger(&chaos).drop_to_back_ms();
    let mut offset = 0;
    let mut per_kind: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for figure in &chaos.figures {
        let kind = figure.fault.split(' ').next().unwrap_or("?");
        let end = (offset + figure.drops.count).min(drops.len());
        per_kind
            .entry(kind)
            .or_default()
            .extend_from_slice(drops.get(offset..end).unwrap_or_default());
        offset = end;
    }
    for (kind, samples) in &per_kind {
        print_figures(&chaos.figures, kind, samples);
    }
    eprintln!("chaos: done in {} s", started.elapsed().as_secs());

    let invariants = &report.invariants;
    assert_eq!(
        invariants.violations, 0,
        "invariants violated: {:?}",
        invariants.violation_examples
    );
    assert!(report.gates.passed, "{:?}", report.gates.failures);
    assert_eq!(report.counter(Counter::OrderViolations), 0);
    assert_eq!(report.counter(Counter::ResumeMismatches), 0);
    assert_eq!(report.counter(Counter::DecodeErrors), 0);
    // The faults bit: bots were cut and came back, across more epochs than rooms.
    assert!(invariants.drop_to_back.count > 0, "no bot was ever cut");
    assert!(
        invariants.epochs_seen > ROOMS as usize,
        "no room changed epoch"
    );
    if phase_enabled("drain") {
        assert!(
            report.counter(Counter::RoomMovingCloses) > 0,
            "the drain moved no room (no close 4017)"
        );
        assert_eq!(
            report.counter(Counter::TicksLostOnMove),
            0,
            "a drain hands rooms over with their exact state"
        );
    }
    Ok(())
}

/// Whether `phase` (`kill`, `pause`, `nats`, `drain`) runs: all of them unless `CHAOS_PHASES`
/// names some.
fn phase_enabled(phase: &str) -> bool {
    std::env::var("CHAOS_PHASES").map_or(true, |phases| {
        phases.split(',').any(|name| name.trim() == phase)
    })
}

/// How long a killed node stays down: `CHAOS_DOWN_MS`, else [`DOWN_FOR`].
fn down_for() -> Duration {
    std::env::var("CHAOS_DOWN_MS")
        .ok()
        .and_then(|text| text.parse().ok())
        .map_or(DOWN_FOR, Duration::from_millis)
}

/// Ramp-up, then the four phases in order.
async fn faults(chaos: &mut Chaos) -> anyhow::Result<()> {
    let ramp_started = Instant::now();
    let ledger = &chaos.swarm.stats.ledger;
    eventually_within(Duration::from_secs(30), || async {
        let places = ledger.places();
        let all_in = places.len() == BOTS && places.values().all(|place| place.connected);
        Ok(all_in.then_some(()))
    })
    .await
    .map_err(|_| anyhow::anyhow!("only {} of {BOTS} bots joined", ledger.places().len()))?;
    chaos.rooms_of_bots = ledger
        .places()
        .into_iter()
        .map(|(bot, place)| (bot, place.room))
        .collect();
    anyhow::ensure!(
        chaos.rooms().len() == ROOMS as usize,
        "bots in {:?}",
        chaos.rooms()
    );
    let mut nodes_of_rooms = BTreeMap::new();
    for place in ledger.places().values() {
        nodes_of_rooms.insert(place.room.clone(), chaos.cluster.node_of_url(&place.node));
    }
    eprintln!(
        "chaos: {BOTS} bots in {ROOMS} rooms after {} ms: {nodes_of_rooms:?}",
        ramp_started.elapsed().as_millis()
    );
    if phase_enabled("kill") {
        chaos.kills().await?;
    }
    if phase_enabled("pause") {
        chaos.pause().await?;
    }
    if phase_enabled("nats") {
        chaos.nats_restart().await?;
    }
    if phase_enabled("drain") {
        chaos.rolling_drain().await?;
    }
    chaos.wait_bots_back("the end", Instant::now()).await
}
