//! The HTML timeline of a run (`odradek sim --seed N --html FILE`, rendered by
//! `odradek_sim::html::render`): a failing run's page marks the operations a check
//! named and explains the violation, a passing run's page marks nothing, both are
//! well formed, and a busy minute stays small enough to open.
//!
//! Mutants cannot be selected on the command line, so the mutant's page is rendered in
//! process; the flag itself is run through the binary with a passing seed and with a
//! seed that fails its (deliberately tiny) liveness bound.

use std::path::PathBuf;
use std::process::{Command, Output};

use odradek_sim::{FaultSet, Mutants, Options, RunReport};

/// Seeds the mutant gets to fail (as in `sim/tests/mutants.rs`).
const SEEDS_MAX: u64 = 50;
/// What a page may weigh.
const PAGE_BYTES_MAX: usize = 2_000_000;
/// What every marked operation's bar carries (`class="op <outcome> marked" id="op-N"`).
const MARKED_BAR: &str = " marked\" id=\"op-";

fn options(faults: &str, duration_seconds: u64) -> Options {
    Options {
        faults: FaultSet::parse(faults).expect("valid"),
        duration_ns: duration_seconds * 1_000_000_000,
        ..Options::default()
    }
}

/// Tags open and close in order (void elements aside), and every `<` starts a tag:
/// enough of well-formedness to catch a missing end tag or a missing escape.
fn assert_well_formed(page: &str) {
    const VOID: &[&str] = &["meta", "br", "hr", "img", "input", "link"];
    assert!(page.starts_with("<!DOCTYPE html>"));
    let mut open: Vec<&str> = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find('<') {
        let tail = &rest[start + 1..];
        let end = tail.find('>').expect("a tag ends");
        let tag = &tail[..end];
        rest = &tail[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            let expected = open
                .pop()
                .unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(name, expected, "</{name}> closes <{expected}>");
            continue;
        }
        let name = tag
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()),
            "a stray '<' before {:?}",
            &tag[..tag.len().min(40)]
        );
        if !tag.ends_with('/') && !VOID.contains(&name) {
            open.push(name);
        }
    }
    assert!(open.is_empty(), "never closed: {open:?}");
}

/// The escaped first line of the verdict's explanation.
fn explanation(report: &RunReport) -> String {
    let message = report.verdict.message().expect("a failure");
    odradek_sim::html::escape(message.lines().next().unwrap_or_default())
}

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_odradek"))
        .arg("sim")
        .args(args)
        .output()
        .expect("odradek sim runs")
}

fn page_path(name: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("odradek-sim-html-{}-{name}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn a_mutant_run_marks_what_the_check_named_and_explains_it() {
    let broken = Options {
        mutants: Mutants {
            serve_above_high_watermark: true,
            ..Mutants::default()
        },
        // The main history's checker marks operations; the compaction, config-change
        // and delete-records workloads' checkers name records, not operations.
        compaction: Some(false),
        config_changes: Some(false),
        delete_records: Some(false),
        ..options("sync-latency", 20)
    };
    let (seed, report) = (0..SEEDS_MAX)
        .map(|seed| (seed, odradek_sim::run(seed, &broken)))
        .find(|(_, report)| !report.verdict.is_pass())
        .expect("the mutant fails within the seeds of sim/tests/mutants.rs");
    assert_eq!(report.verdict.exit_code(), 10, "{:?}", report.verdict);
    assert!(
        !report.marked.is_empty(),
        "the failed check names the poll that got the bad response"
    );
    let page = odradek_sim::html::render(&report, &format!("odradek sim --seed {seed}"));
    assert_well_formed(&page);
    assert!(page.contains("<svg"));
    assert!(page.contains("<span class=\"verdict safety\">safety</span>"));
    assert!(
        page.contains(&explanation(&report)),
        "the explanation is on the page"
    );
    for index in report.marked.keys() {
        assert!(
            page.contains(&format!("{MARKED_BAR}{index}\"")),
            "marked operation #{index} has a marked bar"
        );
    }
    let first = report.marked.keys().next().expect("not empty");
    assert!(
        page.contains(&format!("href=\"#detail-op-{first}\"")),
        "the table links the first marked operation to its close-up bar"
    );
    assert!(page.contains("Close-up"));
    assert!(page.contains("class=\"violation-line\""));
    assert!(page.len() < PAGE_BYTES_MAX, "{} bytes", page.len());
}

#[test]
fn the_flag_writes_a_page_without_marks_for_a_passing_seed() {
    let path = page_path("pass.html");
    let output = sim(&[
        "--seed",
        "3",
        "--duration",
        "5",
        "--html",
        path.to_str().expect("utf-8"),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let page = std::fs::read_to_string(&path).expect("the page was written");
    let _ = std::fs::remove_file(&path);
    assert_well_formed(&page);
    assert!(page.contains("<svg"));
    assert!(page.contains("odradek sim --seed 3 --nodes 1 --faults all --duration 5"));
    assert!(page.contains("class=\"op ok"), "operations are drawn");
    assert!(page.contains("node 0"), "the node has a lane");
    assert!(!page.contains(MARKED_BAR), "a passing run marks nothing");
    assert!(!page.contains("Violation"));
    assert!(!page.contains("<script"));
}

#[test]
fn the_flag_writes_a_page_for_a_failing_seed_too() {
    // A 10 ms liveness bound fails every seed: a failure without a mutant.
    let path = page_path("liveness.html");
    let output = sim(&[
        "--seed",
        "1",
        "--duration",
        "5",
        "--liveness-bound",
        "0.01",
        "--no-shrink",
        "--html",
        path.to_str().expect("utf-8"),
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(11), "{stdout}");
    let page = std::fs::read_to_string(&path).expect("written for a failing run too");
    let _ = std::fs::remove_file(&path);
    assert_well_formed(&page);
    assert!(page.contains("Violation: liveness"));
    assert!(page.contains("not done 10 ms after faults healed"));
}

#[test]
fn a_busy_minute_stays_small() {
    let report = odradek_sim::run(2, &options("crash,torn-writes", 60));
    let page = odradek_sim::html::render(&report, "odradek sim --seed 2");
    eprintln!(
        "{} operations: {} bytes",
        report.operations.invoked,
        page.len()
    );
    assert_well_formed(&page);
    assert!(page.len() < PAGE_BYTES_MAX, "{} bytes", page.len());
}
