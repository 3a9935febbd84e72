//! What the golden-bytes tests of both protocol versions share: the PROTOCOL.md dump format
//! and the example room state the §16 (version 1) and §19.7 (version 2) dumps encode.

use ludus_protocol::{Delta, Entity, EntityId, EntityUpdate, InputAck, PlayerId, Snapshot, Value};
use std::collections::BTreeMap;

/// Lowercase hex, two digits per byte, no separators.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The expected dump as written in a test: hex pairs with any whitespace and `|` separators.
pub fn expected(dump: &str) -> String {
    dump.chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// An entity's fields from `(name, value)` pairs.
pub fn fields(entries: &[(&str, Value)]) -> BTreeMap<String, Value> {
    entries
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect()
}

/// The example room at tick 100: coin 0 and player 42's avatar (entity 5).
pub fn example_snapshot() -> Snapshot {
    Snapshot {
        epoch: 9,
        tick: 100,
        entities: vec![
            Entity {
                id: EntityId(0),
                kind: "coin".to_owned(),
                fields: fields(&[("x", Value::F32(10.0)), ("y", Value::F32(20.0))]),
            },
            Entity {
                id: EntityId(5),
                kind: "player".to_owned(),
                fields: fields(&[
                    ("name", Value::from("ann")),
                    ("player", Value::from(42u64)),
                    ("score", Value::from(0u32)),
                    ("x", Value::F32(12.0)),
                    ("y", Value::F32(20.0)),
                ]),
            },
        ],
        acks: vec![InputAck {
            player: PlayerId(42),
            seq: 0,
        }],
    }
}

/// Player 42 moved onto coin 0 and collected it; coin 6 replaced it; input 7 was applied.
pub fn example_delta() -> Delta {
    Delta {
        epoch: 9,
        tick: 101,
        base_tick: 100,
        upserts: vec![
            EntityUpdate {
                id: EntityId(5),
                kind: None,
                fields: fields(&[("score", Value::from(1u32)), ("x", Value::F32(10.0))]),
            },
            EntityUpdate {
                id: EntityId(6),
                kind: Some("coin".to_owned()),
                fields: fields(&[("x", Value::F32(500.0)), ("y", Value::F32(250.0))]),
            },
        ],
        removed: vec![EntityId(0)],
        left: Vec::new(),
        acks: vec![InputAck {
            player: PlayerId(42),
            seq: 7,
        }],
        events: vec![Value::Map(vec![
            (Value::from("type"), Value::from("coin")),
            (Value::from("player"), Value::from(42u64)),
            (Value::from("score"), Value::from(1u32)),
        ])],
    }
}
