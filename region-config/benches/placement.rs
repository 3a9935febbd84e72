//! Micro-benchmarks of room placement: [`Placement::owner`] and [`Placement::place`].
//!
//! Every room creation and every cross-node redirect asks placement which node owns a room.
//! Weighted rendezvous hashing scores every live node of the region (one XXH3 hash and one
//! portable logarithm each), so a lookup's cost grows linearly with the region's node count;
//! the module doc of `placement.rs` claims "tens of nanoseconds" per node. These benches check
//! that claim for regions of 3, 10 and 100 nodes, with `Throughput::Elements(nodes)` so the
//! per-node figure can be read off directly.
//!
//! The config is generated TOML loaded through [`ludus_regions::from_str`], the operator's path:
//! region `eu` holds the benchmarked nodes (weights 1 to 3) and falls back to `us` (one node).
//! Lookups cycle through 1,024 distinct room ids, so no single key's hash is measured alone.
//!
//! Run: `cargo bench -p ludus-regions --bench placement -- --warm-up-time 1 --measurement-time 3`.

use criterion::{criterion_main, BenchmarkId, Criterion, Throughput};
use ludus_regions::{from_str, Placement, RegionConfig, RegionName};
use std::fmt::Write as _;
use std::hint::black_box;

/// Node counts of the benchmarked region.
const NODE_COUNTS: [usize; 3] = [3, 10, 100];
/// Distinct room ids the lookups cycle through (a power of two, for a cheap wrap-around).
const ROOM_IDS: usize = 1_024;

/// A region file with `nodes` nodes in `eu` and one in `us`, its fallback.
fn region_file(nodes: usize) -> String {
    let mut toml_text = String::from(
        "version = 1\ndefault_region = \"eu\"\n\n[regions.eu]\nfallbacks = [\"us\"]\n\n[regions.us]\n",
    );
    let node_specs = (0..nodes)
        .map(|index| (format!("eu-{index}"), "eu", 1 + index % 3))
        .chain(std::iter::once(("us-0".to_owned(), "us", 1)));
    for (port, (id, region, weight)) in (7_800..).zip(node_specs) {
        // expect: writing into a String cannot fail.
        write!(
            toml_text,
            "\n[[nodes]]\nid = \"{id}\"\nregion = \"{region}\"\n\
             ws_url = \"ws://127.0.0.1:{port}\"\nhttp_url = \"http://127.0.0.1:{port}\"\n\
             weight = {weight}\n"
        )
        .expect("writing into a String cannot fail");
    }
    toml_text
}

fn config_with(nodes: usize) -> RegionConfig {
    // expect: the generated file is valid by construction; a failure is a bug in this bench.
    from_str(&region_file(nodes), "bench-regions.toml").expect("generated region file is valid")
}

fn lookups(c: &mut Criterion) {
    let room_ids: Vec<String> = (0..ROOM_IDS).map(|index| format!("room-{index}")).collect();
    let eu = RegionName::new("eu");
    let mut group = c.benchmark_group("placement");
    for nodes in NODE_COUNTS {
        let placement = Placement::with_all_nodes(&config_with(nodes));
        group.throughput(Throughput::Elements(nodes as u64));
        let mut next_room = 0;
        group.bench_with_input(
            BenchmarkId::new("owner", nodes),
            &placement,
            |b, placement| {
                b.iter(|| {
                    next_room = (next_room + 1) % ROOM_IDS;
                    placement.owner(black_box(&room_ids[next_room]), &eu)
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("place", nodes),
            &placement,
            |b, placement| {
                b.iter(|| {
                    next_room = (next_room + 1) % ROOM_IDS;
                    placement.place(black_box(&room_ids[next_room]), &eu)
                })
            },
        );
    }
    group.finish();
}

/// Holds criterion's group function, which the macro declares `pub` without a doc: at the
/// crate root the workspace's `missing_docs` lint would flag it.
mod group {
    criterion::criterion_group!(benches, super::lookups);
}

criterion_main!(group::benches);
