//! Micro-benchmarks of the wire codec: what one message costs to encode and decode.
//!
//! The server decodes every client frame (`decode_client`) and encodes one delta per room per
//! tick (`encode_server`); bots and test clients decode every server frame (`decode_batch`).
//! These benches put a number on each, on the messages that dominate traffic in the `arena`
//! demo game: a direction input, and a delta for a room of 10 players where every player moved
//! and every input was acknowledged. They measure the codec alone: no socket, no actor, no
//! entity store (`server/benches/tick.rs` measures the server's whole per-tick path).
//!
//! Run: `cargo bench -p ludus-protocol --bench codec -- --warm-up-time 1 --measurement-time 3`.

use criterion::{criterion_main, Criterion, Throughput};
use ludus_protocol::{
    codec, ClientMessage, Delta, EntityId, EntityUpdate, Input, InputAck, PlayerId, ServerMessage,
    Value,
};
use std::collections::BTreeMap;
use std::hint::black_box;

/// Players in the benchmarked room: the room size `scripts/bench` uses.
const PLAYERS: u32 = 10;

/// An `arena` input, as the bots send it 20 times a second.
fn typical_input() -> ClientMessage {
    ClientMessage::Input(Input {
        seq: 1_234,
        ack_tick: 5_678,
        payload: Value::Map(vec![
            (Value::from("dx"), Value::F64(0.6)),
            (Value::from("dy"), Value::F64(-0.8)),
        ]),
    })
}

/// One tick of a busy 10-player `arena` room: every player moved (`x`, `y` as `f32`) and had
/// one input acknowledged.
fn typical_delta() -> ServerMessage {
    let upserts = (0..PLAYERS)
        .map(|index| {
            let position = index as f32 * 10.0;
            let fields = BTreeMap::from([
                ("x".to_owned(), Value::F32(position + 0.25)),
                ("y".to_owned(), Value::F32(position + 0.75)),
            ]);
            EntityUpdate {
                id: EntityId(index),
                kind: None,
                fields,
            }
        })
        .collect();
    let acks = (0..PLAYERS)
        .map(|index| InputAck {
            player: PlayerId(u64::from(index) + 1),
            seq: 1_234,
        })
        .collect();
    ServerMessage::Delta(Delta {
        epoch: 1,
        tick: 5_679,
        base_tick: 5_678,
        upserts,
        removed: Vec::new(),
        left: Vec::new(),
        acks,
        events: Vec::new(),
    })
}

fn client_input(c: &mut Criterion) {
    let input = typical_input();
    let bytes = codec::encode_client(&input);
    eprintln!("codec/client_input: {} bytes", bytes.len());
    let mut group = c.benchmark_group("codec/client_input");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode_client", |b| {
        b.iter(|| codec::encode_client(black_box(&input)))
    });
    group.bench_function("decode_client", |b| {
        b.iter(|| codec::decode_client(black_box(&bytes)))
    });
    group.finish();
}

fn server_delta(c: &mut Criterion) {
    let delta = typical_delta();
    let part = codec::encode_server(&delta);
    let frame = codec::batch_frame(&[&part]);
    // Guard: a bench that decodes an error measures the wrong thing.
    assert_eq!(
        codec::decode_batch(&frame).ok(),
        Some(vec![delta.clone()]),
        "the benchmarked frame must decode to the delta"
    );
    eprintln!("codec/delta_10_players: frame of {} bytes", frame.len());
    let mut group = c.benchmark_group("codec/delta_10_players");
    group.throughput(Throughput::Bytes(frame.len() as u64));
    group.bench_function("encode_server+batch_frame", |b| {
        b.iter(|| {
            let part = codec::encode_server(black_box(&delta));
            codec::batch_frame(&[&part])
        })
    });
    group.bench_function("decode_batch", |b| {
        b.iter(|| codec::decode_batch(black_box(&frame)))
    });
    group.finish();
}

/// Holds criterion's group function, which the macro declares `pub` without a doc: at the
/// crate root the workspace's `missing_docs` lint would flag it.
mod group {
    criterion::criterion_group!(benches, super::client_input, super::server_delta);
}

criterion_main!(group::benches);
