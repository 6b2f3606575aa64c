//! Pinned simulator seeds: each one failed once, the bug was fixed, and the seed must
//! keep passing. A seed is reproduced on the command line with the flags in its
//! comment (`odradek sim --seed N ...`).
//!
//! A change to the simulator or the workload changes what a seed does, so a pinned seed
//! may stop exercising its bug; the comment says what it found, so a new seed can be
//! searched for (run the old code over `--seeds` with the same flags).

use odradek_sim::{FaultSet, Options, Verdict};

fn options(faults: &str, duration_seconds: u64) -> Options {
    Options {
        faults: FaultSet::parse(faults).expect("valid fault classes"),
        duration_ns: duration_seconds * 1_000_000_000,
        ..Options::default()
    }
}

fn assert_passes(seed: u64, options: &Options) {
    let report = odradek_sim::run(seed, options);
    assert_eq!(
        report.verdict,
        Verdict::Pass,
        "reproduce with: odradek sim --seed {seed} {}",
        options.to_flags()
    );
}

/// `odradek sim --seed 4 --faults disk`: a bit flipped in a batch's base offset (which
/// the CRC does not cover) between the header check and the read of the whole batch was
/// served: offsets like 2^24 + 159, far above the high watermark. Fixed in
/// `PartitionLog::read` (commit "log: a read serves only bytes whose base offset and
/// leader epoch it checked"). Seeds 15, 20 and 27 found it too.
#[test]
fn seed_4_disk_base_offset_flipped_between_reads() {
    assert_passes(4, &options("disk", 60));
    assert_passes(15, &options("disk", 60));
}

/// `odradek sim --seed 14 --faults clock`: the simulator's own bug. A clock running
/// slow advanced by rounding many 1 ns steps down to nothing, so a timer re-armed at
/// "1 ns later" forever (50 million events). Clocks now compute local time from an
/// anchor.
#[test]
fn seed_14_clock_slow_clock_livelock() {
    assert_passes(14, &options("clock", 60));
}
