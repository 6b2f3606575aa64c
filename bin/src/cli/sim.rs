//! `odradek sim`: run the deterministic simulator (`sim/`, guide in docs/simulation.md).
//!
//! ```text
//! odradek sim --seed N  [--faults all] [--duration 60] [--nodes 1] [--verbose]
//!                       [--html FILE] [--no-shrink]
//!                       [--keep-faults C] [--nemeses-max K] [--nemesis-skip I,J]
//! odradek sim --seeds N [--start S] [--threads T] ...
//! ```
//!
//! Exit status: 0 pass, 10 safety violation, 11 liveness failure, 12 crash (a panic in
//! the simulated code), 2 usage. A failing seed prints the command that reproduces it,
//! then shrinks the run (`odradek_sim::shrink`) and prints the command of the smallest
//! run found that fails the same way. `--html` writes the run's timeline as a page
//! (`odradek_sim::html`).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::anyhow;
use odradek_sim::{FaultSet, Options, RunReport, SeedsSummary, ShrinkLimits, Verdict};

use crate::cli::UsageError;

/// Exit status of a safety violation.
pub const EXIT_SAFETY: u8 = 10;
/// Exit status of a liveness failure.
pub const EXIT_LIVENESS: u8 = 11;
/// Exit status of a crash (panic) in the simulated code.
pub const EXIT_CRASH: u8 = 12;

/// A run that did not pass; `main` turns it into the exit status.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SimFailed {
    /// The exit status.
    pub code: u8,
    /// What failed.
    pub message: String,
}

/// Flags of `odradek sim`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Run this seed (default: $ODRADEK_SEED, else a fresh seed that is printed).
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run this many seeds across all cores and summarise.
    #[arg(long)]
    seeds: Option<u64>,
    /// First seed of --seeds.
    #[arg(long, default_value_t = 0, requires = "seeds")]
    start: u64,
    /// Threads for --seeds (default: every core).
    #[arg(long, requires = "seeds")]
    threads: Option<usize>,
    /// Broker nodes: 1, or a cluster of 2 to 7 (3 and 5 are the usual ones).
    #[arg(long, default_value_t = 1)]
    nodes: u32,
    /// Fault classes: presets none, all, disk, network, process, clock, buggify, or
    /// single classes (crash, kill, pause, restart, sync-error, read-flip, ...),
    /// comma-separated. Each seed turns on a random subset (swarm testing).
    #[arg(long, default_value = "all")]
    faults: String,
    /// Simulated seconds of the safety phase (faults on).
    #[arg(long, default_value_t = 60.0)]
    duration: f64,
    /// Simulated seconds the liveness phase may take after faults heal.
    #[arg(long, default_value_t = 30.0)]
    liveness_bound: f64,
    /// Plain producers (retries may duplicate; duplicates are then not reported).
    #[arg(long)]
    non_idempotent: bool,
    /// Add two or three consumer-group members (join, sync, heartbeat, commit, fetch
    /// committed offsets) and check what the group told them.
    #[arg(long)]
    groups: bool,
    /// Give every seed the compaction workload (a compacted topic written with keys and
    /// tombstones, read over and over); without it one seed in three has it.
    #[arg(long, conflicts_with = "no_compaction")]
    compaction: bool,
    /// No seed runs the compaction workload (seeds pinned before it existed).
    #[arg(long)]
    no_compaction: bool,
    /// Give every seed the config-change workload (topic and broker configs changed at
    /// run time, one request at a time); without it one seed in three has it.
    #[arg(long, conflicts_with = "no_config_changes")]
    config_changes: bool,
    /// No seed runs the config-change workload (seeds pinned before it existed).
    #[arg(long)]
    no_config_changes: bool,
    /// Give every seed the delete-records workload (a topic of its own, written,
    /// trimmed with DeleteRecords and read from its start, over and over); without
    /// it one seed in three has it.
    #[arg(long, conflicts_with = "no_delete_records")]
    delete_records: bool,
    /// No seed runs the delete-records workload (seeds pinned before it existed).
    #[arg(long)]
    no_delete_records: bool,
    /// Print every event of the trace (single seed only).
    #[arg(long, conflicts_with = "seeds")]
    verbose: bool,
    /// Print the history checkers' full report even when the run passes.
    #[arg(long)]
    show_check: bool,
    /// Write the run's timeline (operations, nemesis, nodes, what a check marked) as
    /// a self-contained HTML page to FILE (single seed only).
    #[arg(long, value_name = "FILE", conflicts_with = "seeds")]
    html: Option<PathBuf>,
    /// Do not shrink a failing seed's run (single seed only; --seeds never shrinks).
    #[arg(long)]
    no_shrink: bool,
    /// Runs a shrink may spend at most.
    #[arg(long, default_value_t = odradek_sim::shrink::SHRINK_RUNS_MAX)]
    shrink_runs: u32,
    /// After the seed drew its faults from --faults, keep only these classes on (same
    /// words as --faults); the others are switched off, the rest of the run's draws
    /// stay as they were. Shrunk commands use it.
    #[arg(long, value_name = "CLASSES")]
    keep_faults: Option<String>,
    /// Apply only the first K nemesis events (numbered from 0 in the order they come,
    /// repairs not counted); later ones are skipped.
    #[arg(long, value_name = "K")]
    nemeses_max: Option<u64>,
    /// Skip the nemesis events with these numbers (comma-separated).
    #[arg(long, value_name = "NUMBERS", value_delimiter = ',')]
    nemesis_skip: Vec<u64>,
}

/// The largest simulated cluster (every broker is a metadata voter).
const NODES_MAX: u32 = 7;

fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(anyhow!(message.into())))
}

/// Runs `odradek sim`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !(1..=NODES_MAX).contains(&args.nodes) {
        return Err(usage(format!(
            "--nodes {}: a simulated cluster has 1 to {NODES_MAX} brokers",
            args.nodes
        )));
    }
    let faults = FaultSet::parse(&args.faults).map_err(usage)?;
    let keep_faults = match &args.keep_faults {
        Some(text) => Some(FaultSet::parse(text).map_err(usage)?),
        None => None,
    };
    let seconds = |value: f64, flag: &str| {
        if value.is_finite() && value > 0.0 && value <= 86_400.0 {
            Ok(odradek_sim::nanoseconds_of_seconds(value))
        } else {
            Err(usage(format!("{flag} must be between 0 and 86400 seconds")))
        }
    };
    let options = Options {
        nodes: args.nodes,
        faults,
        duration_ns: seconds(args.duration, "--duration")?,
        liveness_bound_ns: seconds(args.liveness_bound, "--liveness-bound")?,
        idempotent: !args.non_idempotent,
        groups: args.groups,
        compaction: (args.compaction || args.no_compaction).then_some(args.compaction),
        config_changes: (args.config_changes || args.no_config_changes)
            .then_some(args.config_changes),
        delete_records: (args.delete_records || args.no_delete_records)
            .then_some(args.delete_records),
        verbose: args.verbose,
        keep_faults,
        nemeses_max: args.nemeses_max,
        nemesis_skip: args.nemesis_skip.iter().copied().collect::<BTreeSet<u64>>(),
        ..Options::default()
    };
    match args.seeds {
        Some(count) => run_many(&args, &options, count),
        None => run_one(&args, &options),
    }
}

fn seed_from_environment(args: &Args) -> anyhow::Result<u64> {
    if let Some(seed) = args.seed {
        return Ok(seed);
    }
    if let Ok(text) = std::env::var("ODRADEK_SEED") {
        return text
            .trim()
            .parse()
            .map_err(|_| usage(format!("ODRADEK_SEED={text:?} is not a number")));
    }
    // No seed given: a fresh one (printed, so the run can be repeated).
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Ok(nanos ^ u64::from(std::process::id()).rotate_left(32))
}

fn rerun_command(seed: u64, options: &Options) -> String {
    format!("odradek sim --seed {seed} {}", options.to_flags())
}

fn run_one(args: &Args, options: &Options) -> anyhow::Result<()> {
    let seed = seed_from_environment(args)?;
    if !options.verbose {
        odradek_sim::install_quiet_panic_hook();
    }
    let started = Instant::now();
    let report = odradek_sim::run(seed, options);
    let wall = started.elapsed().as_secs_f64();
    print_report(&report, wall, args.show_check);
    if let Some(path) = &args.html {
        let page = odradek_sim::html::render(&report, &rerun_command(seed, options));
        std::fs::write(path, page)
            .map_err(|error| anyhow!("writing {}: {error}", path.display()))?;
        println!("html: {}", path.display());
    }
    finish(&report, options, args)
}

fn print_report(report: &RunReport, wall_seconds: f64, show_check: bool) {
    let simulated = report.simulated_ns as f64 / 1e9;
    println!("seed: {}", report.seed);
    println!("faults on: {}", report.faults_on);
    println!("workload: {}", report.workload);
    println!("trace-hash: {:016x}", report.trace_hash);
    println!("faults: {}", counters(&report.faults));
    println!("clients: {}", counters(&report.client_stats));
    if let Some(line) = catch_up_line(&report.catch_up_ms) {
        println!("{line}");
    }
    let ops = report.operations;
    println!(
        "ops: {} invoked, {} ok, {} failed, {} indefinite",
        ops.invoked, ops.ok, ops.failed, ops.indefinite
    );
    println!(
        "stats: {} events, {simulated:.1} simulated s, {wall_seconds:.3} wall s, sim/wall {:.0}x",
        report.events,
        simulated / wall_seconds.max(1e-9)
    );
    if let Some(check) = &report.check {
        if show_check || !report.verdict.is_pass() {
            print!("{check}");
        } else if let Some(first) = check.lines().next() {
            println!("check: {first}");
        }
    }
    if let Some(groups) = &report.groups {
        println!("groups: {groups}");
    }
    match &report.verdict {
        Verdict::Pass => println!("verdict: pass"),
        other => println!(
            "verdict: {}: {}",
            other.kind(),
            other.message().unwrap_or_default()
        ),
    }
}

fn counters(counters: &std::collections::BTreeMap<String, u64>) -> String {
    counters
        .iter()
        .map(|(name, count)| format!("{name}={count}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn finish(report: &RunReport, options: &Options, args: &Args) -> anyhow::Result<()> {
    if report.verdict.is_pass() {
        return Ok(());
    }
    let command = rerun_command(report.seed, options);
    println!("reproduce with: {command}");
    if !args.no_shrink {
        shrink(report, options, args.shrink_runs);
    }
    Err(SimFailed {
        code: report.verdict.exit_code(),
        message: format!(
            "seed {} failed ({}); rerun: {command}",
            report.seed,
            report.verdict.kind()
        ),
    }
    .into())
}

/// Shrinks the failing run and prints what it found.
fn shrink(report: &RunReport, options: &Options, runs_max: u32) {
    println!("shrinking (at most {runs_max} runs; --no-shrink skips this) ...");
    odradek_sim::install_quiet_panic_hook();
    let started = Instant::now();
    let limits = ShrinkLimits { runs_max };
    let shrunk = odradek_sim::shrink(report.seed, options, report, &limits);
    let wall = started.elapsed().as_secs_f64();
    if !shrunk.is_smaller() {
        println!(
            "shrink: nothing smaller fails the same way ({} runs, {wall:.1} wall s)",
            shrunk.runs
        );
        return;
    }
    println!(
        "shrunk from {} to {} ({} runs, {wall:.1} wall s); still {}: {}",
        shrunk.before,
        shrunk.after,
        shrunk.runs,
        shrunk.verdict.kind(),
        shrunk.verdict.headline()
    );
    println!("shrunk trace-hash: {:016x}", shrunk.trace_hash);
    println!("shrunk: {}", rerun_command(report.seed, &shrunk.options));
}

/// `restarts: N caught up, median .., p99 .., max .. simulated ms`: how long
/// restarted cluster brokers took until their metadata caught up (decision 0011).
fn catch_up_line(catch_up_ms: &[u64]) -> Option<String> {
    if catch_up_ms.is_empty() {
        return None;
    }
    let mut sorted = catch_up_ms.to_vec();
    sorted.sort_unstable();
    let at = |fraction: f64| sorted[((sorted.len() - 1) as f64 * fraction).round() as usize];
    Some(format!(
        "restarts: {} caught up with the metadata quorum after median {} ms, p99 {} ms, max {} ms (simulated)",
        sorted.len(),
        at(0.5),
        at(0.99),
        sorted[sorted.len() - 1]
    ))
}

/// Runs `count` seeds from `--start` across threads and prints their summary.
fn run_many(args: &Args, options: &Options, count: u64) -> anyhow::Result<()> {
    if count == 0 {
        return Err(usage("--seeds must be at least 1"));
    }
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    odradek_sim::install_quiet_panic_hook();
    let started = Instant::now();
    let done = Mutex::new(0u64);
    let summary = odradek_sim::run_seeds(args.start, count, threads, options, &|report| {
        let mut done = done.lock().expect("progress lock");
        *done += 1;
        print_seed_done(report, options, *done);
    });
    let wall = started.elapsed().as_secs_f64();
    print_summary(&summary, args.start, threads, wall);
    match worst_exit_code(&summary) {
        None => Ok(()),
        Some(code) => Err(SimFailed {
            code,
            message: format!(
                "{} of {} seeds failed",
                summary.failures.len(),
                summary.runs
            ),
        }
        .into()),
    }
}

/// What `--seeds` prints as each seed ends: a failing seed and how to rerun it, or
/// every thousandth seed's progress on stderr.
fn print_seed_done(report: &RunReport, options: &Options, done: u64) {
    if !report.verdict.is_pass() {
        let message = report.verdict.message().unwrap_or_default();
        let first_line = message.lines().next().unwrap_or_default();
        println!(
            "FAIL seed {} ({}): {first_line}\n  reproduce with: {}",
            report.seed,
            report.verdict.kind(),
            rerun_command(report.seed, options)
        );
    } else if done.is_multiple_of(1000) {
        eprintln!("... {done} seeds done");
    }
}

/// The summary of a `--seeds` run: verdicts, failing seeds, faults fired, catch-up
/// times and speed.
fn print_summary(summary: &SeedsSummary, start: u64, threads: usize, wall: f64) {
    let mut by_kind = std::collections::BTreeMap::new();
    for (_, verdict) in &summary.failures {
        *by_kind.entry(verdict.kind()).or_insert(0u64) += 1;
    }
    println!(
        "seeds: {} from {start} on {threads} threads: {} passed, {} failed {}",
        summary.runs,
        summary.passed,
        summary.failures.len(),
        by_kind
            .iter()
            .map(|(kind, n)| format!("{kind}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if !summary.failures.is_empty() {
        let seeds: Vec<String> = summary
            .failures
            .iter()
            .map(|(seed, verdict)| format!("{seed}({})", verdict.kind()))
            .collect();
        println!("failing seeds: {}", seeds.join(" "));
    }
    if !summary.unknown.is_empty() {
        println!(
            "checker unknown (budget) on {} seeds: {:?}",
            summary.unknown.len(),
            summary.unknown
        );
    }
    let faults: Vec<String> = summary
        .faults
        .iter()
        .map(|(name, total)| {
            format!(
                "{name}={total}/{}",
                summary.seeds_with_fault.get(name).copied().unwrap_or(0)
            )
        })
        .collect();
    println!("faults (fired/seeds): {}", faults.join(" "));
    if let Some(line) = catch_up_line(&summary.catch_up_ms) {
        println!("{line}");
    }
    let simulated = summary.simulated_ns as f64 / 1e9;
    println!(
        "stats: {} ops, {} events, {simulated:.0} simulated s, {wall:.1} wall s, sim/wall {:.0}x, {:.1} seeds/minute/core",
        summary.operations,
        summary.events,
        simulated / wall.max(1e-9),
        summary.runs as f64 / (wall / 60.0) / threads as f64
    );
}

/// The exit status of the worst failure (safety, then crash, then liveness), if any
/// seed failed.
fn worst_exit_code(summary: &SeedsSummary) -> Option<u8> {
    summary
        .failures
        .iter()
        .map(|(_, verdict)| verdict.exit_code())
        .max_by_key(|code| match *code {
            EXIT_SAFETY => 3,
            EXIT_CRASH => 2,
            EXIT_LIVENESS => 1,
            _ => 0,
        })
}
