//! The room directory: which rooms live on this node, their actor addresses and listing info.
//!
//! A shared map (`DashMap`) because it is truly shared: every HTTP worker thread reads it to list
//! rooms, matchmake and route WebSocket hellos, and every room actor (on the room threads) writes
//! its own entry when members come and go. Sharded locking keeps those threads from contending on
//! one lock, and no lock is ever held across an `.await` or an actor call.
//!
//! Lifetime rule: an entry is inserted when its room actor starts and removed when that actor
//! stops, so a listed room always has an actor and an actor is always listed.

use crate::cluster::fence::Fence;
use crate::paging::{select_page, select_page_by, Cursor, PageRequest, RankedCursor};
use crate::room::Room;
use crate::stats::TickSummary;
use actix::{Addr, ArbiterHandle};
use dashmap::DashMap;
use ludus_protocol::RoomId;
use serde::{Deserialize, Serialize};

/// What a listing shows about one room.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// The room's id.
    pub room_id: RoomId,
    /// Its type (`arena`, `tictactoe`).
    pub room_type: String,
    /// Seated players.
    pub players: u32,
    /// Seats reserved but not yet taken.
    pub reserved: u32,
    /// Seats in total.
    pub max_players: u32,
    /// Metadata given at creation.
    pub metadata: serde_json::Value,
    /// The game's own summary (e.g. `{"status": "waiting"}`).
    pub state: serde_json::Value,
    /// Creation time, Unix milliseconds.
    pub created_at_ms: u64,
    /// The room's epoch (changes when a room is re-created or moves).
    pub epoch: u64,
    /// The epoch it had before a failover restored it on this node from a checkpoint: resume
    /// tokens of that epoch still take their seats back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_from_epoch: Option<u64>,
}

impl RoomInfo {
    /// Whether a seat is free (counting reservations).
    pub fn has_free_seat(&self) -> bool {
        self.seats_taken() < self.max_players
    }

    /// Seats taken or reserved (saturating: listings from other nodes are not trusted to add up).
    pub fn seats_taken(&self) -> u32 {
        self.players.saturating_add(self.reserved)
    }
}

struct Entry {
    addr: Addr<Room>,
    thread: ArbiterHandle,
    info: RoomInfo,
    /// The room's recent ticks, refreshed once a second (for the operator dashboard only: it
    /// stays out of [`RoomInfo`], which players and other nodes see).
    load: TickSummary,
}

/// Rooms on this node.
#[derive(Default)]
pub struct RoomDirectory {
    rooms: DashMap<RoomId, Entry>,
    /// Checked by every room before it sends a tick; closed by the cluster's lease task when
    /// this node can no longer prove it holds its rooms (never, outside a cluster).
    fence: Fence,
}

/// The room id is already taken.
#[derive(Debug, Clone, thiserror::Error)]
#[error("room `{0}` already exists")]
pub struct RoomExists(pub RoomId);

impl RoomDirectory {
    /// An empty directory.
    pub fn new() -> Self {
        Self::default()
    }

    /// The fence rooms check before sending.
    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Starts a room on `thread` with `start` and lists it, unless the id is taken. The shard
    /// lock is held only while the actor is spawned (which does not wait for the actor).
    pub fn insert_with(
        &self,
        info: RoomInfo,
        thread: ArbiterHandle,
        start: impl FnOnce(&ArbiterHandle) -> Addr<Room>,
    ) -> Result<(), RoomExists> {
        match self.rooms.entry(info.room_id.clone()) {
            dashmap::Entry::Occupied(_) => Err(RoomExists(info.room_id)),
            dashmap::Entry::Vacant(vacant) => {
                let addr = start(&thread);
                vacant.insert(Entry {
                    addr,
                    thread,
                    info,
                    load: TickSummary::default(),
                });
                Ok(())
            }
        }
    }

    /// Unlists a room (called by the room itself as it stops).
    pub fn remove(&self, room_id: &RoomId) {
        self.rooms.remove(room_id);
    }

    /// Updates a room's listing in place.
    pub fn update(&self, room_id: &RoomId, change: impl FnOnce(&mut RoomInfo)) {
        if let Some(mut entry) = self.rooms.get_mut(room_id) {
            change(&mut entry.info);
        }
    }

    /// Replaces a room's tick summary (the room calls it once a second).
    pub fn update_load(&self, room_id: &RoomId, load: TickSummary) {
        if let Some(mut entry) = self.rooms.get_mut(room_id) {
            entry.load = load;
        }
    }

    /// One page of the rooms matching `filter` with their tick summaries, ordered by `rank`
    /// (smallest first, then oldest), and the cursor of the next page; only the page's rooms
    /// are copied.
    pub fn ranked_page(
        &self,
        filter: impl Fn(&RoomInfo) -> bool,
        rank: impl Fn(&RoomInfo, &TickSummary) -> u64,
        after: Option<&RankedCursor>,
        limit: usize,
    ) -> (Vec<(RoomInfo, TickSummary)>, Option<RankedCursor>) {
        let keys = self
            .rooms
            .iter()
            .filter(|entry| filter(&entry.info))
            .map(|entry| RankedCursor {
                rank: rank(&entry.info, &entry.load),
                key: Cursor {
                    created_at_ms: entry.info.created_at_ms,
                    room_id: entry.info.room_id.clone(),
                },
            });
        // The iteration (and its shard locks) ends inside `select_page_by`, before any lookup.
        let (keys, next) = select_page_by(keys, after, limit);
        let rooms = keys
            .iter()
            .filter_map(|key| {
                let entry = self.rooms.get(&key.key.room_id)?;
                Some((entry.info.clone(), entry.load))
            })
            .collect();
        (rooms, next)
    }

    /// The actor of a room.
    pub fn addr(&self, room_id: &RoomId) -> Option<Addr<Room>> {
        self.rooms.get(room_id).map(|entry| entry.addr.clone())
    }

    /// The thread a room runs on, where its players' sessions belong too.
    pub fn thread(&self, room_id: &RoomId) -> Option<ArbiterHandle> {
        self.rooms.get(room_id).map(|entry| entry.thread.clone())
    }

    /// One room's listing.
    pub fn info(&self, room_id: &RoomId) -> Option<RoomInfo> {
        self.rooms.get(room_id).map(|entry| entry.info.clone())
    }

    /// Listings matching `filter`, oldest first.
    pub fn list(&self, filter: impl Fn(&RoomInfo) -> bool) -> Vec<RoomInfo> {
        let mut rooms: Vec<RoomInfo> = self
            .rooms
            .iter()
            .filter(|entry| filter(&entry.info))
            .map(|entry| entry.info.clone())
            .collect();
        rooms.sort_by(|a, b| (a.created_at_ms, &a.room_id).cmp(&(b.created_at_ms, &b.room_id)));
        rooms
    }

    /// One page of the rooms matching `filter`, oldest first, and the cursor of the next
    /// page; only the page's rooms are copied.
    pub fn page(
        &self,
        filter: impl Fn(&RoomInfo) -> bool,
        request: &PageRequest,
    ) -> (Vec<RoomInfo>, Option<Cursor>) {
        let keys = self
            .rooms
            .iter()
            .filter(|entry| filter(&entry.info))
            .map(|entry| Cursor {
                created_at_ms: entry.info.created_at_ms,
                room_id: entry.info.room_id.clone(),
            });
        // The iteration (and its shard locks) ends inside `select_page`, before any lookup.
        let (keys, next) = select_page(keys, request);
        let rooms = keys
            .iter()
            .filter_map(|key| self.info(&key.room_id))
            .collect();
        (rooms, next)
    }

    /// Every room's actor.
    pub fn addrs(&self) -> Vec<Addr<Room>> {
        self.rooms.iter().map(|entry| entry.addr.clone()).collect()
    }

    /// Number of rooms.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Whether there are no rooms.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}
