//! Paging of room listings: rooms in a stable order (oldest first, then by id), a page at a
//! time, with an opaque cursor naming the last room of the previous page.
//!
//! Why: one unpaginated listing of 1,500 rooms with 16 KiB of metadata each was 22 MiB per
//! response. A page holds at most [`MAX_PAGE`] rooms, and choosing it keeps only the page's keys
//! in memory ([`select_page`]), however many rooms the node or cluster lists.
//!
//! The operator dashboard sorts by other keys (most players, slowest ticks) with the same
//! selection ([`select_page_by`]) and a [`RankedCursor`]: a rank first, then the listing order.
//! Those keys change while an operator pages, so a room may move between pages; a page never
//! holds a room twice and never more than [`MAX_PAGE`].

use ludus_protocol::RoomId;
use std::collections::BinaryHeap;

/// Rooms per page unless the caller asks for fewer.
pub const DEFAULT_PAGE: usize = 50;
/// Most rooms a page may hold.
pub const MAX_PAGE: usize = 100;

/// Where a room sits in the listing order.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    /// When the room was created, Unix milliseconds.
    pub created_at_ms: u64,
    /// The room.
    pub room_id: RoomId,
}

impl Cursor {
    /// Parses a cursor as [`Cursor::encode`] wrote it.
    pub fn parse(text: &str) -> Option<Self> {
        let (created, room) = text.split_once('.')?;
        Some(Self {
            created_at_ms: created.parse().ok()?,
            room_id: RoomId::parse(room).ok()?,
        })
    }

    /// The cursor as clients pass it back (`next_cursor`): opaque to them.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at_ms, self.room_id)
    }
}

/// Where a room sits in a ranked listing: by `rank` (smallest first), then creation, then id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RankedCursor {
    /// The sort key (e.g. `u64::MAX - players` for most players first).
    pub rank: u64,
    /// Ties keep the listing order.
    pub key: Cursor,
}

impl RankedCursor {
    /// Parses a cursor as [`RankedCursor::encode`] wrote it.
    pub fn parse(text: &str) -> Option<Self> {
        let (rank, key) = text.split_once('.')?;
        Some(Self {
            rank: rank.parse().ok()?,
            key: Cursor::parse(key)?,
        })
    }

    /// The cursor as the dashboard passes it back: opaque to it.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.rank, self.key.encode())
    }
}

/// One page to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    /// List rooms after this one (exclusive); `None` from the start.
    pub after: Option<Cursor>,
    /// Rooms on the page, 1 to [`MAX_PAGE`].
    pub limit: usize,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            after: None,
            limit: DEFAULT_PAGE,
        }
    }
}

/// The keys of one page, in order, and the cursor of the next page if there are more.
///
/// Keeps at most `limit + 1` keys in memory, whatever `keys` yields.
pub fn select_page(
    keys: impl Iterator<Item = Cursor>,
    request: &PageRequest,
) -> (Vec<Cursor>, Option<Cursor>) {
    select_page_by(keys, request.after.as_ref(), request.limit)
}

/// The `limit` smallest keys after `after` (exclusive), in order, and the cursor of the next
/// page if there are more; any key order. Keeps at most `limit + 1` keys in memory.
pub fn select_page_by<K: Ord + Clone>(
    keys: impl Iterator<Item = K>,
    after: Option<&K>,
    limit: usize,
) -> (Vec<K>, Option<K>) {
    let limit = limit.clamp(1, MAX_PAGE);
    // A max-heap of the smallest `limit + 1` keys seen: the largest is evicted first.
    let mut smallest: BinaryHeap<K> = BinaryHeap::with_capacity(limit + 2);
    for key in keys {
        if after.is_some_and(|after| key <= *after) {
            continue;
        }
        smallest.push(key);
        if smallest.len() > limit + 1 {
            smallest.pop();
        }
    }
    let mut page = smallest.into_sorted_vec();
    let more = page.len() > limit;
    page.truncate(limit);
    let next = if more { page.last().cloned() } else { None };
    (page, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(created_at_ms: u64, id: &str) -> Cursor {
        Cursor {
            created_at_ms,
            room_id: RoomId::parse(id).expect("valid id"),
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = key(1_700_000_000_000, "r-abc");
        assert_eq!(Cursor::parse(&cursor.encode()), Some(cursor));
        assert_eq!(Cursor::parse("nonsense"), None);
        assert_eq!(Cursor::parse("12.bad id"), None);
    }

    #[test]
    fn ranked_cursors_round_trip_and_order_by_rank_first() {
        let busy = RankedCursor {
            rank: u64::MAX - 9,
            key: key(5, "r-busy"),
        };
        let quiet = RankedCursor {
            rank: u64::MAX - 1,
            key: key(1, "r-quiet"),
        };
        assert_eq!(RankedCursor::parse(&busy.encode()), Some(busy.clone()));
        assert_eq!(RankedCursor::parse("x.1.r"), None);
        let (page, next) = select_page_by([quiet.clone(), busy.clone()].into_iter(), None, 1);
        assert_eq!(page, vec![busy.clone()]);
        let (page, next) = select_page_by([quiet.clone(), busy].into_iter(), next.as_ref(), 1);
        assert_eq!((page, next), (vec![quiet], None));
    }

    #[test]
    fn pages_follow_creation_then_id_order() {
        let keys = vec![key(3, "c"), key(1, "b"), key(1, "a"), key(2, "z")];
        let first = PageRequest {
            after: None,
            limit: 2,
        };
        let (page, next) = select_page(keys.clone().into_iter(), &first);
        assert_eq!(page, vec![key(1, "a"), key(1, "b")]);
        let second = PageRequest {
            after: next,
            limit: 2,
        };
        let (page, next) = select_page(keys.into_iter(), &second);
        assert_eq!(page, vec![key(2, "z"), key(3, "c")]);
        assert_eq!(next, None);
    }

    proptest! {
        #[test]
        fn walking_the_pages_lists_every_room_once(
            created in proptest::collection::vec(0_u64..20, 0..300),
            limit in 1_usize..=MAX_PAGE,
        ) {
            let keys: Vec<Cursor> = created
                .iter()
                .enumerate()
                .map(|(index, at)| key(*at, &format!("r{index}")))
                .collect();
            let mut request = PageRequest { after: None, limit };
            let mut seen = Vec::new();
            loop {
                let (page, next) = select_page(keys.iter().cloned(), &request);
                prop_assert!(page.len() <= limit);
                seen.extend(page);
                match next {
                    Some(next) => request.after = Some(next),
                    None => break,
                }
            }
            let mut expected = keys.clone();
            expected.sort();
            prop_assert_eq!(seen, expected);
        }
    }
}
