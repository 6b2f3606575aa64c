//! Shrinking (`odradek_sim::shrink`, run by `odradek sim` when a seed fails): the
//! shrunk run of a mutant's failing seed is no larger in any dimension and smaller in
//! one, fails the same way, is deterministic, and its flags mean the same options when
//! the binary parses them. The binary shrinks a failing seed by itself and prints a
//! command that fails the same way.

use std::process::{Command, Output};

use odradek_sim::{
    FaultSet, Mutants, Options, RunReport, RunSize, ShrinkLimits, Shrunk, TimelineKind,
};

/// Seeds a mutant gets to fail (as in `sim/tests/mutants.rs`).
const SEEDS_MAX: u64 = 50;
/// Runs a shrink may spend here (the command line's default is 200).
const SHRINK_RUNS_MAX: u32 = 60;

fn options(faults: &str) -> Options {
    Options {
        faults: FaultSet::parse(faults).expect("valid"),
        duration_ns: 20_000_000_000,
        ..Options::default()
    }
}

fn first_failure(options: &Options) -> (u64, RunReport) {
    (0..SEEDS_MAX)
        .map(|seed| (seed, odradek_sim::run(seed, options)))
        .find(|(_, report)| !report.verdict.is_pass())
        .expect("the mutant fails within the seeds of sim/tests/mutants.rs")
}

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_odradek"))
        .arg("sim")
        .args(args)
        .output()
        .expect("odradek sim runs")
}

fn line<'a>(stdout: &'a str, prefix: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in\n{stdout}"))
}

/// The checks every shrink must pass; `healthy` is `shrunk.options` without the mutant.
fn check_shrunk(
    seed: u64,
    original: &Options,
    failed: &RunReport,
    shrunk: &Shrunk,
    healthy: &Options,
) {
    let before = RunSize::of(original, failed);
    eprintln!(
        "seed {seed}: {} -> {} in {} runs: {}",
        before,
        shrunk.after,
        shrunk.runs,
        shrunk.options.to_flags()
    );
    assert_eq!(shrunk.before, before);
    assert!(shrunk.runs <= SHRINK_RUNS_MAX);
    assert!(
        shrunk.after.fits_in(&before),
        "{} vs {before}",
        shrunk.after
    );
    assert!(
        shrunk.after != before,
        "nothing got smaller: {}",
        shrunk.after
    );
    assert!(shrunk.options.duration_ns <= original.duration_ns);
    assert_eq!(shrunk.verdict.kind(), failed.verdict.kind());

    // The shrunk options are a run: it fails the same way, twice the same.
    let first = odradek_sim::run(seed, &shrunk.options);
    let second = odradek_sim::run(seed, &shrunk.options);
    assert_eq!(first.verdict.kind(), failed.verdict.kind());
    assert_eq!(first.trace_hash, shrunk.trace_hash);
    assert_eq!(second.trace_hash, first.trace_hash);
    assert_eq!(RunSize::of(&shrunk.options, &first), shrunk.after);
    let drawn: Vec<u64> = first
        .timeline
        .iter()
        .filter_map(|event| match event.kind {
            TimelineKind::Nemesis { number, .. } => number,
            _ => None,
        })
        .collect();
    for number in &shrunk.options.nemesis_skip {
        assert!(
            drawn.contains(number),
            "--nemesis-skip {number} names no event"
        );
    }

    // The flags round-trip through the command line's parser: the binary (which has no
    // mutants) runs the same options as `healthy` in process.
    let flags = shrunk.options.to_flags();
    let mut args = vec![
        "--seed".to_string(),
        seed.to_string(),
        "--no-shrink".to_string(),
    ];
    args.extend(flags.split_whitespace().map(str::to_string));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = sim(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let in_process = odradek_sim::run(seed, healthy);
    assert_eq!(
        line(&stdout, "trace-hash: "),
        format!("{:016x}", in_process.trace_hash),
        "odradek sim {}",
        args.join(" ")
    );
}

#[test]
fn a_lying_fsync_failure_shrinks() {
    let original = Options {
        fsync_lies: true,
        ..options("crash,torn-writes")
    };
    let (seed, failed) = first_failure(&original);
    let limits = ShrinkLimits {
        runs_max: SHRINK_RUNS_MAX,
    };
    let shrunk = odradek_sim::shrink(seed, &original, &failed, &limits);
    assert!(shrunk.options.fsync_lies, "the mutant stays selected");
    let healthy = Options {
        fsync_lies: false,
        ..shrunk.options.clone()
    };
    check_shrunk(seed, &original, &failed, &shrunk, &healthy);
    let again = odradek_sim::shrink(seed, &original, &failed, &limits);
    assert_eq!(
        again.options.to_flags(),
        shrunk.options.to_flags(),
        "deterministic"
    );
}

#[test]
fn a_failure_with_every_fault_class_shrinks() {
    let original = Options {
        mutants: Mutants {
            serve_above_high_watermark: true,
            ..Mutants::default()
        },
        ..options("all")
    };
    let (seed, failed) = first_failure(&original);
    let shrunk = odradek_sim::shrink(
        seed,
        &original,
        &failed,
        &ShrinkLimits {
            runs_max: SHRINK_RUNS_MAX,
        },
    );
    let healthy = Options {
        mutants: Mutants::default(),
        ..shrunk.options.clone()
    };
    check_shrunk(seed, &original, &failed, &shrunk, &healthy);
}

#[test]
fn the_binary_shrinks_a_failing_seed_and_prints_the_command() {
    // A 10 ms liveness bound fails every seed: a failure without a mutant.
    let output = sim(&[
        "--seed",
        "1",
        "--faults",
        "crash,partition",
        "--duration",
        "5",
        "--liveness-bound",
        "0.01",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(11), "{stdout}");
    assert_eq!(
        line(&stdout, "reproduce with: "),
        "odradek sim --seed 1 --nodes 1 --faults partition,crash --duration 5 --liveness-bound 0.01"
    );
    assert!(line(&stdout, "shrunk from ").contains("still liveness"));
    let command = line(&stdout, "shrunk: ");
    let args: Vec<&str> = command
        .strip_prefix("odradek sim ")
        .expect("a command")
        .split_whitespace()
        .collect();
    let rerun = sim(&[args.as_slice(), &["--no-shrink"]].concat());
    let rerun_stdout = String::from_utf8_lossy(&rerun.stdout);
    assert_eq!(rerun.status.code(), Some(11), "{command}: {rerun_stdout}");
    assert_eq!(
        line(&rerun_stdout, "trace-hash: "),
        line(&stdout, "shrunk trace-hash: ")
    );
    assert!(!rerun_stdout.contains("shrunk"), "--no-shrink");
}

#[test]
fn a_passing_seed_is_not_shrunk() {
    let output = sim(&["--seed", "3", "--duration", "2"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(!stdout.contains("shrink"));
}
