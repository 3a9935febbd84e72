//! What a room sends, encoded once per protocol version in use: the pure part of the fan-out.
//!
//! A room's members may speak protocol version 1 (named field maps) or 2 (packed, see
//! `ludus_protocol::v2`). Each tick the room encodes its delta **at most once per version**, and
//! only for versions some member speaks, then hands every member of that version the same bytes.
//! [`PerVersion`] is that cache; [`delta_frame`] and [`snapshot_part`] are the encoders. No actix
//! here, so both are tested as plain functions.
//!
//! Version 2 encoding cannot fail for a state the [`Simulation`] holds: the entity store
//! normalizes every value through the schema the encoder packs with, and only live entities are
//! updated. A failure is therefore a server bug, reported by a panic naming the invariant.

use crate::simulation::Simulation;
use bytes::Bytes;
use ludus_protocol::v2::{self, Roster};
use ludus_protocol::{codec, Delta, ProtocolVersion, ServerMessage};
use std::cell::OnceCell;

/// One value per protocol version, computed on first use.
#[derive(Debug)]
pub struct PerVersion<T> {
    v1: OnceCell<T>,
    v2: OnceCell<T>,
}

impl<T> Default for PerVersion<T> {
    fn default() -> Self {
        Self {
            v1: OnceCell::new(),
            v2: OnceCell::new(),
        }
    }
}

impl<T> PerVersion<T> {
    /// The value for `version`, computing it with `encode` the first time.
    pub fn get_or_init(&self, version: ProtocolVersion, encode: impl FnOnce() -> T) -> &T {
        match version {
            ProtocolVersion::V1 => self.v1.get_or_init(encode),
            ProtocolVersion::V2 => self.v2.get_or_init(encode),
        }
    }
}

/// A tick's delta in one protocol version.
#[derive(Debug)]
pub struct DeltaFrame {
    /// The delta message alone, to batch with a member's private messages.
    pub part: Vec<u8>,
    /// `[delta]`: the frame every member without private messages gets.
    pub shared: Bytes,
}

/// Encodes the tick's `delta` (with its `roster` change) for `version`.
pub fn delta_frame(
    simulation: &Simulation,
    delta: &Delta,
    roster: &Roster,
    version: ProtocolVersion,
) -> DeltaFrame {
    let part = match version {
        ProtocolVersion::V1 => codec::encode_delta(delta),
        ProtocolVersion::V2 => {
            let kind_of = |id| simulation.entity_kind(id);
            v2::encode_delta(simulation.schema(), delta, roster, kind_of)
                // expect: see the module doc; the store normalized every value it holds.
                .expect("a room's delta always fits its own schema")
        }
    };
    let shared = Bytes::from(codec::batch_frame(&[&part]));
    DeltaFrame { part, shared }
}

/// Encodes the room's current state as a snapshot message for `version`.
pub fn snapshot_part(simulation: &Simulation, version: ProtocolVersion) -> Vec<u8> {
    let snapshot = simulation.snapshot();
    match version {
        ProtocolVersion::V1 => codec::encode_server(&ServerMessage::Snapshot(snapshot)),
        ProtocolVersion::V2 => v2::encode_snapshot(simulation.schema(), &snapshot)
            // expect: see the module doc; the store normalized every value it holds.
            .expect("a room's state always fits its own schema"),
    }
}
