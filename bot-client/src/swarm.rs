//! The swarm: starts bots at a ramp-up rate, holds the scenario, samples the totals once a
//! second, stops every bot and builds the [`Report`].
//!
//! Steps, in this order: ramp up (creating `load`'s rooms as it goes), wait for joins to settle,
//! hold (with churn for `soak`, the cut and the wait for every resume for `storm`), drain (every
//! bot leaves), final sample. Each step is bounded
//! in time, and the number of bots ever started is bounded by the scenario (plus, for `soak`,
//! churn rate × duration). Ctrl-C ends the ramp or the hold early and still drains and reports.

use crate::bot::{
    run_bot_with, BotConfig, BotContext, BotControl, JoinPlan, StopMode, JOIN_TIMEOUT,
    LEAVE_TIMEOUT,
};
use crate::cli::{IdleArgs, LoadArgs, SoakArgs, StormArgs};
use crate::error::ScenarioError;
use crate::lobby::Lobby;
use crate::report::Report;
use crate::stats::{BotCounters, Counter, SwarmStats};
use ludus_protocol::ProtocolVersion;
use serde::Serialize;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{oneshot, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

mod sampler;
mod storm;
use sampler::{progress_bar, sample, HoldMark};
pub use storm::StormFigures;

/// How often the swarm samples its totals for the timeline and the progress line.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Longest the drain may take: a bot still joining finishes its join, then leaves.
const DRAIN_TIMEOUT: Duration = JOIN_TIMEOUT.saturating_add(LEAVE_TIMEOUT);

/// A scenario with its checked arguments.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Scenario {
    /// See [`LoadArgs`].
    Load(LoadArgs),
    /// See [`SoakArgs`].
    Soak(SoakArgs),
    /// See [`IdleArgs`].
    Idle(IdleArgs),
    /// See [`StormArgs`].
    Storm(StormArgs),
}

impl Scenario {
    /// The scenario's name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Load(_) => "load",
            Self::Soak(_) => "soak",
            Self::Idle(_) => "idle",
            Self::Storm(_) => "storm",
        }
    }

    /// Bots the scenario keeps connected at once.
    pub fn bots(&self) -> u32 {
        match self {
            Self::Load(load) => load.rooms * load.players,
            Self::Soak(soak) => soak.bots,
            Self::Idle(idle) => idle.bots,
            Self::Storm(storm) => storm.bots,
        }
    }

    fn input_hz(&self) -> f64 {
        match self {
            Self::Load(load) => load.input_hz,
            Self::Soak(soak) => soak.input_hz,
            Self::Storm(storm) => storm.input_hz,
            Self::Idle(_) => 0.0,
        }
    }

    fn hold(&self) -> Duration {
        let seconds = match self {
            Self::Load(load) => load.duration_s,
            Self::Soak(soak) => soak.duration_s,
            Self::Idle(idle) => idle.duration_s,
            Self::Storm(storm) => storm.before_s + storm.after_s,
        };
        Duration::from_secs_f64(seconds)
    }
}

/// Pass/fail thresholds checked at the end of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Gates {
    /// Largest acceptable p99 input latency over the run, in milliseconds.
    pub max_p99_ms: Option<f64>,
    /// Largest acceptable errors / join attempts.
    pub max_error_rate: Option<f64>,
}

/// How to run, whatever the scenario.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The server's lobby URL (`http://host:port`).
    pub server: String,
    /// The room type to play.
    pub room_type: String,
    /// Protocol version every bot speaks.
    pub protocol: ProtocolVersion,
    /// Time between two bot starts during the ramp-up.
    pub ramp_interval: Duration,
    /// Bots joining at once at most.
    pub max_pending_joins: u32,
    /// Seed of the random walks and of churn choices.
    pub seed: u64,
    /// Where to write the JSON report.
    pub report: Option<PathBuf>,
    /// Where to write the HTML report.
    pub html: Option<PathBuf>,
    /// Hide the progress line.
    pub quiet: bool,
    /// Exit-code gates.
    pub gates: Gates,
}

struct BotHandle {
    stop_tx: oneshot::Sender<StopMode>,
    /// Cuts the bot's connection abruptly; it then resumes.
    cut: Arc<Notify>,
    task: JoinHandle<()>,
}

/// The running bots.
struct Swarm {
    context: Arc<BotContext>,
    protocol: ProtocolVersion,
    input_hz: f64,
    seed: u64,
    started: u64,
    bots: Vec<BotHandle>,
    /// Bots told to stop during churn, still finishing.
    stopping: Vec<JoinHandle<()>>,
}

impl Swarm {
    fn spawn(&mut self, join: JoinPlan) {
        let index = self.started;
        self.started += 1;
        let config = BotConfig {
            name: format!("bot-{index}"),
            join,
            input_hz: self.input_hz,
            protocol: self.protocol,
            // Distinct, repeatable seeds per bot (golden-ratio increment, as splitmix does).
            seed: self.seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let cut = Arc::new(Notify::new());
        let control = BotControl {
            stop_rx,
            cut: Arc::clone(&cut),
        };
        let context = Arc::clone(&self.context);
        let task = tokio::spawn(async move {
            match run_bot_with(&context, config, control).await {
                Ok(reason) => tracing::trace!(bot = index, %reason, "bot ended"),
                Err(error) => tracing::debug!(bot = index, ?error, "bot failed to join"),
            }
        });
        self.bots.push(BotHandle { stop_tx, cut, task });
    }

    /// Cuts the connection of the bot at `position` without a close; it resumes and stays.
    fn cut(&mut self, position: usize) {
        if let Some(bot) = self.bots.get(position) {
            bot.cut.notify_one();
        }
    }

    /// Stops the bot at `position` (churn); a new one is started by the caller.
    fn stop(&mut self, position: usize, mode: StopMode) {
        if position < self.bots.len() {
            let bot = self.bots.swap_remove(position);
            // A bot that already ended has dropped its receiver; nothing to stop then.
            let _already_ended = bot.stop_tx.send(mode).is_err();
            self.stopping.push(bot.task);
        }
    }

    /// Forgets bots whose task ended on its own (disconnected or failed to join).
    fn prune(&mut self) {
        self.bots.retain(|bot| !bot.task.is_finished());
        self.stopping.retain(|task| !task.is_finished());
    }

    /// Every bot leaves; waits up to [`DRAIN_TIMEOUT`], then aborts the rest. Returns how many
    /// were aborted.
    async fn drain(self) -> u64 {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        let mut tasks = self.stopping;
        for bot in self.bots {
            let _already_ended = bot.stop_tx.send(StopMode::Leave).is_err();
            tasks.push(bot.task);
        }
        let mut aborted = 0;
        for mut task in tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                aborted += 1;
            }
        }
        aborted
    }
}

/// Ctrl-C, or the embedding program's stop, polled from several steps; remembers that it fired.
struct Interrupt {
    signal: Pin<Box<dyn std::future::Future<Output = std::io::Result<()>> + Send>>,
    stop: Arc<Notify>,
    /// Ctrl-C was pressed (reported as `interrupted`).
    fired: bool,
    /// The embedding program asked the swarm to end (a planned end, not an interruption).
    stopped: bool,
}

impl Interrupt {
    fn new(stop: Arc<Notify>) -> Self {
        Self {
            signal: Box::pin(tokio::signal::ctrl_c()),
            stop,
            fired: false,
            stopped: false,
        }
    }

    /// Resolves when Ctrl-C is pressed or a stop is asked (at once if either happened).
    async fn wait(&mut self) {
        if self.fired || self.stopped {
            return;
        }
        tokio::select! {
            signal = self.signal.as_mut() => {
                // If the handler cannot be installed, never fire rather than stop at once.
                if signal.is_err() {
                    self.stop.notified().await;
                    self.stopped = true;
                } else {
                    self.fired = true;
                }
            }
            () = self.stop.notified() => self.stopped = true,
        }
    }
}

/// What a program running a swarm inside itself (a chaos test) shares with it: the totals and
/// ledger it reads while the bots play, and a stop that ends the hold (the bots then leave and
/// the report is built, as after Ctrl-C but not counted as an interruption).
#[derive(Clone, Debug, Default)]
pub struct SwarmHandle {
    /// The swarm's totals and ledger.
    pub stats: Arc<SwarmStats>,
    /// `notify_one` ends the ramp-up or the hold.
    pub stop: Arc<Notify>,
}

/// Runs `scenario` against the server and returns the report (gates already evaluated).
pub async fn run(options: &RunOptions, scenario: &Scenario) -> Result<Report, ScenarioError> {
    run_with(options, scenario, SwarmHandle::default()).await
}

/// [`run`], sharing its totals and a stop with the caller through `handle`.
pub async fn run_with(
    options: &RunOptions,
    scenario: &Scenario,
    handle: SwarmHandle,
) -> Result<Report, ScenarioError> {
    let lobby = Lobby::new(&options.server)?;
    let stats = handle.stats;
    let context = Arc::new(BotContext {
        lobby,
        stats: Arc::clone(&stats),
        join_permits: Semaphore::new(options.max_pending_joins as usize),
    });
    let mut swarm = Swarm {
        context,
        protocol: options.protocol,
        input_hz: scenario.input_hz(),
        seed: options.seed,
        started: 0,
        bots: Vec::with_capacity(scenario.bots() as usize),
        stopping: Vec::new(),
    };
    let started_unix_ms = unix_ms();
    let started_at = Instant::now();
    let (sampler_stop_tx, sampler_stop_rx) = oneshot::channel();
    let sampler = tokio::spawn(sample(
        Arc::clone(&stats),
        progress_bar(options.quiet),
        u64::from(scenario.bots()),
        sampler_stop_rx,
    ));
    let mut interrupt = Interrupt::new(handle.stop);

    let ramp_error = match ramp_up(&mut swarm, options, scenario, &mut interrupt).await {
        Ok(ramp_error) => ramp_error,
        Err(error) => {
            swarm.drain().await;
            let _sampler_gone = sampler_stop_tx.send(()).is_err();
            return Err(error);
        }
    };
    settle_joins(&stats, swarm.started, &mut interrupt).await;

    let hold_start = HoldMark::now(&stats);
    let mut storm_figures = None;
    match scenario {
        Scenario::Soak(soak) => {
            churn(&mut swarm, soak, options, scenario.hold(), &mut interrupt).await
        }
        Scenario::Storm(storm) => {
            storm_figures = Some(storm::hold(&mut swarm, storm, &stats, &mut interrupt).await);
        }
        Scenario::Load(_) | Scenario::Idle(_) => {
            tokio::select! {
                () = tokio::time::sleep(scenario.hold()) => {}
                () = interrupt.wait() => {}
            }
        }
    }
    let hold = hold_start.window_until(&HoldMark::now(&stats));

    let bots_started = swarm.started;
    let bots_aborted = swarm.drain().await;
    // The sampler takes one last sample after every bot flushed.
    let _sampler_gone = sampler_stop_tx.send(()).is_err();
    let timeline = sampler.await.unwrap_or_default();

    let mut report = Report::build(
        &stats,
        options,
        scenario,
        started_unix_ms,
        started_at.elapsed(),
        bots_started,
        bots_aborted,
        interrupt.fired,
        ramp_error,
        hold,
        timeline,
    );
    report.set_storm(storm_figures);
    Ok(report)
}

/// Starts the scenario's bots, one per `ramp_interval`. `load` creates each room just before
/// its first bot (a room created long before its players arrive may be disposed as empty);
/// the other scenarios matchmake. Returns why the ramp-up stopped early, if it did.
async fn ramp_up(
    swarm: &mut Swarm,
    options: &RunOptions,
    scenario: &Scenario,
    interrupt: &mut Interrupt,
) -> Result<Option<String>, ScenarioError> {
    let mut ramp = tokio::time::interval(options.ramp_interval);
    // Twice the planned ramp-up plus one join timeout: past that the server is not keeping up
    // (lobby calls are slow), and going on would only stretch the run.
    let ramp_limit = options.ramp_interval.mul_f64(f64::from(scenario.bots())) * 2 + JOIN_TIMEOUT;
    let deadline = Instant::now() + ramp_limit;
    let mut current_room = None;
    for index in 0..scenario.bots() {
        if Instant::now() > deadline {
            let reason = format!("ramp-up exceeded {:.0} s", ramp_limit.as_secs_f64());
            return Ok(Some(give_up(swarm, scenario, index, reason)));
        }
        tokio::select! {
            _ = ramp.tick() => {}
            () = interrupt.wait() => return Ok(None),
        }
        let plan = match scenario {
            Scenario::Load(load) => {
                let room_id = match current_room.take() {
                    Some(room_id) if index % load.players != 0 => room_id,
                    _ => match swarm
                        .context
                        .lobby
                        .create_room(&options.room_type, load.players)
                        .await
                    {
                        Ok(room) => room.room_id,
                        // The server is unreachable: nothing to measure.
                        Err(error) if index == 0 => return Err(ScenarioError::Setup(error)),
                        // The server stopped answering under load: that is a result. The
                        // bots never started count as failed joins, and the run goes on.
                        Err(error) => {
                            let reason = format!("{error}: {}", error_chain_tail(&error));
                            return Ok(Some(give_up(swarm, scenario, index, reason)));
                        }
                    },
                };
                current_room = Some(room_id.clone());
                JoinPlan::Reserve { room_id }
            }
            Scenario::Soak(_) | Scenario::Idle(_) | Scenario::Storm(_) => JoinPlan::Matchmake {
                room_type: options.room_type.clone(),
            },
        };
        swarm.spawn(plan);
    }
    Ok(None)
}

/// Ends the ramp-up early: the bots never started count as failed joins. Returns `reason`.
fn give_up(swarm: &Swarm, scenario: &Scenario, started: u32, reason: String) -> String {
    tracing::warn!(started, %reason, "ramp-up stopped early");
    let never_started = u64::from(scenario.bots().saturating_sub(started));
    let mut unstarted = BotCounters::default();
    unstarted.add(Counter::JoinAttempts, never_started);
    unstarted.add(Counter::FailedJoins, never_started);
    unstarted.flush(&swarm.context.stats);
    reason
}

/// The innermost cause of `error`, for one-line reports.
fn error_chain_tail(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// Waits until every started bot joined or failed, at most one join timeout.
async fn settle_joins(stats: &SwarmStats, started: u64, interrupt: &mut Interrupt) {
    let deadline = Instant::now() + JOIN_TIMEOUT + SAMPLE_EVERY;
    let mut poll = tokio::time::interval(Duration::from_millis(100));
    while Instant::now() < deadline {
        let settled = stats.get(Counter::Joined) + stats.get(Counter::FailedJoins);
        if settled >= started {
            return;
        }
        tokio::select! {
            _ = poll.tick() => {}
            () = interrupt.wait() => return,
        }
    }
}

/// `soak`'s hold: every `1 / churn_per_s` seconds either one bot's connection is cut abruptly
/// (with probability `drop_fraction`; the bot resumes and stays), or one bot leaves and a new
/// one matchmakes.
async fn churn(
    swarm: &mut Swarm,
    soak: &SoakArgs,
    options: &RunOptions,
    hold: Duration,
    interrupt: &mut Interrupt,
) {
    let hold_end = tokio::time::sleep(hold);
    tokio::pin!(hold_end);
    if soak.churn_per_s == 0.0 {
        tokio::select! {
            () = &mut hold_end => {}
            () = interrupt.wait() => {}
        }
        return;
    }
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let mut churn_timer = tokio::time::interval(Duration::from_secs_f64(1.0 / soak.churn_per_s));
    churn_timer.tick().await;
    loop {
        tokio::select! {
            _ = churn_timer.tick() => {
                swarm.prune();
                if swarm.bots.is_empty() {
                    swarm.spawn(JoinPlan::Matchmake { room_type: options.room_type.clone() });
                } else if rng.f64() < soak.drop_fraction {
                    swarm.cut(rng.usize(..swarm.bots.len()));
                } else {
                    swarm.stop(rng.usize(..swarm.bots.len()), StopMode::Leave);
                    swarm.spawn(JoinPlan::Matchmake { room_type: options.room_type.clone() });
                }
            }
            () = &mut hold_end => return,
            () = interrupt.wait() => return,
        }
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
        })
}
