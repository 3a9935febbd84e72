//! Micro-benchmarks of a room's per-tick CPU path, outside actix.
//!
//! The swarm runs in `BENCHMARKS.md` report server CPU per delivered delta, which lumps
//! together sockets, actors, simulation and encoding. These benches isolate the two parts
//! that `Room::tick` pays on every tick, so a regression (or a win) shows up as a number:
//!
//! - `tick_delta`: recording a tick's changes in the real [`EntityStore`], `take_changes`,
//!   building the [`Delta`] and encoding it once with `codec::encode_server` + `batch_frame`,
//!   exactly as `Room::fan_out` does, for rooms of 10, 100 and 1,000 entities.
//!   `encode_only` repeats just the encoding of one such delta, to split store cost from codec
//!   cost.
//! - `fan_out`: what the room then pays per member: a clone of the shared `Bytes` frame, or,
//!   for a member with a private extra (an `event` or `error`), assembling its own batch frame
//!   from the shared delta part and the extra with `codec::batch_frame`.
//!
//! Workload: every entity is an `arena` player (`x`, `y` as `f32`, `score`). Each tick half of
//! them move (a different half every tick), have their input acknowledged, and one in twenty
//! scores, which also broadcasts a `coin` event, as `arena` does. Not measured: the game's
//! own logic, the mailbox `try_send`, and the session's WebSocket write.
//! - `encode_version`: one real `arena` tick of 10 moving players (the game, its schema and the
//!   simulation as a room runs them), encoded by `encoding::delta_frame` in protocol version 1
//!   and in version 2: what a room pays per tick for each version in use.
//!
//! Run: `cargo bench -p ludus-server --bench tick -- --warm-up-time 1 --measurement-time 3`.

use bytes::Bytes;
use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use ludus_protocol::{
    codec, Delta, EntityId, Event, InputAck, PlayerId, ProtocolVersion, RoomId, ServerMessage,
    Value,
};
use ludus_server::encoding;
use ludus_server::entities::EntityStore;
use ludus_server::game::{GameRegistry, RoomOptions};
use ludus_server::simulation::{Simulation, TickOutput};
use std::hint::black_box;
use std::time::Duration;

/// Room sizes, in entities, for `tick_delta`.
const ROOM_SIZES: [u32; 3] = [10, 100, 1_000];
/// Recipients per tick, for `fan_out`.
const RECIPIENT_COUNTS: [u32; 3] = [10, 100, 1_000];
/// One entity in this many scores each tick.
const SCORER_EVERY: u32 = 20;

/// A room's entity store and tick counter, driven the way `arena` drives it.
struct BenchRoom {
    store: EntityStore,
    ids: Vec<EntityId>,
    tick: u64,
}

impl BenchRoom {
    /// A room of `entities` players whose creation has already been sent.
    fn new(entities: u32) -> Self {
        let mut store = EntityStore::new();
        let ids = (0..entities)
            .map(|index| {
                let start = index as f32;
                store.spawn(
                    "player",
                    [
                        ("x", Value::F32(start)),
                        ("y", Value::F32(start)),
                        ("score", Value::from(0u32)),
                    ],
                )
            })
            .collect();
        store.take_changes();
        Self {
            store,
            ids,
            tick: 1,
        }
    }

    /// Applies one tick's changes and builds its delta, as the simulation does.
    fn step(&mut self) -> Delta {
        self.tick += 1;
        let tick = self.tick;
        let step = tick as f32 * 0.5;
        let mut acks = Vec::new();
        let mut events = Vec::new();
        for (index, id) in (0u32..).zip(&self.ids) {
            let player = PlayerId(u64::from(index) + 1);
            if (u64::from(index) + tick) % 2 == 0 {
                let start = index as f32;
                self.store.set(*id, "x", Value::F32(start + step));
                self.store.set(*id, "y", Value::F32(start - step));
                // A realistic seq: it grows with the tick, so its encoded size does too.
                let seq = u32::try_from(tick).unwrap_or(u32::MAX);
                acks.push(InputAck { player, seq });
            }
            if u64::from(index % SCORER_EVERY) == tick % u64::from(SCORER_EVERY) {
                let score = u32::try_from(tick / u64::from(SCORER_EVERY)).unwrap_or(u32::MAX);
                self.store.set(*id, "score", score);
                events.push(Value::Map(vec![
                    (Value::from("type"), Value::from("coin")),
                    (Value::from("player"), Value::from(player.0)),
                    (Value::from("score"), Value::from(score)),
                ]));
            }
        }
        let changes = self.store.take_changes();
        Delta {
            epoch: 1,
            tick,
            base_tick: tick - 1,
            upserts: changes.upserts,
            removed: changes.removed,
            left: Vec::new(),
            acks,
            events,
        }
    }
}

/// The shared delta part and frame, as `Room::fan_out` builds them.
fn encode_delta(delta: Delta) -> (Vec<u8>, Bytes) {
    let delta_part = codec::encode_server(&ServerMessage::Delta(delta));
    let shared = Bytes::from(codec::batch_frame(&[&delta_part]));
    (delta_part, shared)
}

fn tick_delta(c: &mut Criterion) {
    let mut group = c.benchmark_group("tick_delta");
    for entities in ROOM_SIZES {
        group.throughput(Throughput::Elements(u64::from(entities)));
        let mut room = BenchRoom::new(entities);
        let (_, sample_frame) = encode_delta(room.step());
        eprintln!(
            "tick_delta: {entities} entities -> frame of {} bytes",
            sample_frame.len()
        );
        group.bench_with_input(
            BenchmarkId::new("build_and_encode", entities),
            &entities,
            |b, _| b.iter(|| encode_delta(room.step()).1),
        );
        let message = ServerMessage::Delta(room.step());
        group.bench_with_input(
            BenchmarkId::new("encode_only", entities),
            &message,
            |b, message| {
                b.iter(|| {
                    let delta_part = codec::encode_server(black_box(message));
                    Bytes::from(codec::batch_frame(&[&delta_part]))
                })
            },
        );
    }
    group.finish();
}

fn fan_out(c: &mut Criterion) {
    // The frame of a 10-player room, the size `scripts/bench` plays.
    let (delta_part, shared) = encode_delta(BenchRoom::new(10).step());
    let extra = codec::encode_server(&ServerMessage::Event(Event {
        payload: Value::Map(vec![
            (Value::from("type"), Value::from("hint")),
            (Value::from("text"), Value::from("a coin is near")),
        ]),
    }));
    let player_extras = vec![extra];
    eprintln!(
        "fan_out: shared frame of {} bytes, private extra of {} bytes",
        shared.len(),
        player_extras[0].len()
    );
    let mut group = c.benchmark_group("fan_out");
    for recipients in RECIPIENT_COUNTS {
        group.throughput(Throughput::Elements(u64::from(recipients)));
        group.bench_with_input(
            BenchmarkId::new("shared_clone", recipients),
            &recipients,
            |b, &recipients| {
                b.iter(|| {
                    for _ in 0..recipients {
                        black_box(shared.clone());
                    }
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("private_extra", recipients),
            &recipients,
            |b, &recipients| {
                b.iter(|| {
                    for _ in 0..recipients {
                        let parts: Vec<&[u8]> = std::iter::once(&delta_part)
                            .chain(&player_extras)
                            .map(Vec::as_slice)
                            .collect();
                        black_box(Bytes::from(codec::batch_frame(&parts)));
                    }
                })
            },
        );
    }
    group.finish();
}

/// An `arena` room of `players` who all sent a move this tick, stepped once: its output and
/// the simulation to encode it against.
fn arena_tick(players: u64) -> (Simulation, TickOutput) {
    let options = RoomOptions {
        room_id: RoomId::parse("bench").expect("valid id"),
        max_players: 16,
    };
    let registry = GameRegistry::builtin();
    let arena = registry.get("arena").expect("arena is built in");
    let game = (arena.factory)(&options);
    let mut simulation =
        Simulation::new(game, 1, 7, Duration::from_millis(50), 1024).expect("arena starts");
    for player in 1..=players {
        simulation
            .join(PlayerId(player * 7919), "bot")
            .expect("join");
    }
    let mut output = simulation.step().expect("step");
    for tick in 1..=20u32 {
        for player in 1..=players {
            let angle = f64::from(tick) * 0.1 + player as f64;
            let payload = Value::Map(vec![
                (Value::from("dx"), Value::F64(angle.cos())),
                (Value::from("dy"), Value::F64(angle.sin())),
            ]);
            simulation
                .queue_input(PlayerId(player * 7919), tick, payload)
                .expect("queued");
        }
        output = simulation.step().expect("step");
    }
    (simulation, output)
}

fn encode_version(c: &mut Criterion) {
    let (simulation, output) = arena_tick(10);
    let mut group = c.benchmark_group("encode_version");
    group.throughput(Throughput::Elements(10));
    for version in ProtocolVersion::ALL {
        let frame = encoding::delta_frame(&simulation, &output.delta, &output.roster, version);
        eprintln!(
            "encode_version: arena, 10 moving players, v{} frame of {} bytes",
            version.number(),
            frame.shared.len()
        );
        group.bench_with_input(
            BenchmarkId::new("arena_10_moving", format!("v{}", version.number())),
            &version,
            |b, &version| {
                b.iter(|| {
                    encoding::delta_frame(
                        black_box(&simulation),
                        black_box(&output.delta),
                        &output.roster,
                        version,
                    )
                })
            },
        );
    }
    group.finish();
}

/// Holds criterion's group function, which the macro declares `pub` without a doc: at the
/// crate root the workspace's `missing_docs` lint would flag it.
mod group {
    criterion::criterion_group!(
        benches,
        super::tick_delta,
        super::fan_out,
        super::encode_version
    );
}

criterion_main!(group::benches);
