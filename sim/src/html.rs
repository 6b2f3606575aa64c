//! The HTML report of one run (`odradek sim --seed N --html FILE`): a page a person
//! opens in a browser to see what happened. One self-contained file: inline CSS and
//! SVG, tooltips from SVG `<title>`s, no script, nothing fetched.
//!
//! ```text
//!   header: seed, verdict, the command, faults on, workload, counts
//!   violation: the verdict's explanation, the marked operations (links into the SVG)
//!   timeline of the whole run (scrolls sideways; lane names stay on the left):
//!     axis (simulated ms) ── phase lines ── red line where a check failed
//!     nemesis: process | network | disk | clock   markers, and bars for episodes
//!     node 0 ...                                  up (green) / down (grey) / paused
//!     p1 client 1 (producer) ...                  one lane per history process:
//!                                                 bars from invoke to completion,
//!                                                 ok / fail / indefinite, marked red
//!   close-up: the same lanes around the violation, with each bar labelled
//!   the history checkers' report, the event list
//! ```
//!
//! The whole-run view merges runs of narrow bars of one outcome into one bar (its
//! tooltip counts them), more coarsely while it would weigh more than
//! [`OVERVIEW_BYTES_TARGET`] (then bars of different outcomes merge too, grey);
//! marked operations are always drawn alone. The close-up draws every operation in
//! its window, unless that would weigh more than [`DETAIL_BYTES_TARGET`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use odradek_model::history::{Call, Operation, Outcome, Reply};

use crate::RunReport;
use crate::faults::Nemesis;
use crate::timeline::{TimelineEvent, TimelineKind};

/// What the whole-run view aims to stay under.
pub const OVERVIEW_BYTES_TARGET: usize = 1_000_000;
/// What the close-up aims to stay under; the rest of the page is small.
pub const DETAIL_BYTES_TARGET: usize = 500_000;

const MS: u64 = 1_000_000;
const LABEL_WIDTH_PX: u64 = 210;
const ROW_HEIGHT_PX: u64 = 14;
const BAR_HEIGHT_PX: u64 = 10;
const AXIS_HEIGHT_PX: u64 = 28;
/// Pixels per simulated millisecond of the whole-run view, unless the run is so short
/// or so long that the width leaves these bounds.
const OVERVIEW_PX_PER_MS: f64 = 0.25;
const OVERVIEW_WIDTH_PX_MIN: f64 = 1_200.0;
const OVERVIEW_WIDTH_PX_MAX: f64 = 30_000.0;
/// Bars narrower than this (and as close to the previous one) merge in the whole-run
/// view; doubled while the view is over budget, at most `MERGE_DOUBLINGS_MAX` times.
const OVERVIEW_MERGE_PX: f64 = 3.0;
const MERGE_DOUBLINGS_MAX: u32 = 8;
/// The close-up's window at most, and its width.
const DETAIL_WINDOW_NS_MAX: u64 = 4_000 * MS;
const DETAIL_PAD_NS_MIN: u64 = 20 * MS;
const DETAIL_WIDTH_PX: f64 = 8_000.0;
const DETAIL_PX_PER_MS_MAX: f64 = 400.0;
/// Rows of the marked operations' table, and lines of the event list, at most.
const MARKED_ROWS_MAX: usize = 200;
const EVENT_LINES_MAX: usize = 2_000;
/// Roughly how wide a character of a bar's label is, to decide whether it fits.
const CHAR_WIDTH_PX: f64 = 6.2;
/// Ticks of the time axis at least this far apart.
const TICK_SPACING_PX: f64 = 90.0;

/// Renders the report of a run as a self-contained HTML page. `command` is the
/// command line that reproduces the run (shown at the top).
pub fn render(report: &RunReport, command: &str) -> String {
    let mut page = String::new();
    let title = format!(
        "odradek sim seed {}: {}",
        report.seed,
        report.verdict.kind()
    );
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    header(&mut page, report, command);
    let lanes = Lanes::of(report);
    let end_ns = run_end_ns(report);
    if !report.verdict.is_pass() {
        violation(&mut page, report, &lanes, end_ns);
    }
    legend(&mut page);
    page.push_str("<h2>The whole run</h2>\n");
    let width = (end_ns as f64 / MS as f64 * OVERVIEW_PX_PER_MS)
        .clamp(OVERVIEW_WIDTH_PX_MIN, OVERVIEW_WIDTH_PX_MAX);
    let overview = View {
        id_prefix: "op-",
        start_ns: 0,
        end_ns,
        px_per_ns: width / end_ns.max(1) as f64,
        labels: false,
    };
    page.push_str(&overview.render_in_budget(
        report,
        &lanes,
        OVERVIEW_MERGE_PX,
        OVERVIEW_BYTES_TARGET,
    ));
    if let Some((start_ns, window_end_ns)) = detail_window(report, end_ns) {
        let span_ns = (window_end_ns - start_ns).max(1);
        let px_per_ms = (DETAIL_WIDTH_PX / (span_ns as f64 / MS as f64)).min(DETAIL_PX_PER_MS_MAX);
        let detail = View {
            id_prefix: "detail-op-",
            start_ns,
            end_ns: window_end_ns,
            px_per_ns: px_per_ms / MS as f64,
            labels: true,
        };
        let _ = writeln!(
            page,
            "<h2 id=\"close-up\">Close-up: {} to {} ms</h2>",
            ms_text(start_ns),
            ms_text(window_end_ns)
        );
        page.push_str(&detail.render_in_budget(
            report,
            &lanes.within(&detail, report, end_ns),
            0.0,
            DETAIL_BYTES_TARGET,
        ));
    }
    if let Some(check) = &report.check {
        let _ = writeln!(
            page,
            "<details><summary>The history checkers' report</summary>\n<pre>{}</pre>\n</details>",
            escape(check)
        );
    }
    event_list(&mut page, &report.timeline);
    page.push_str("</body>\n</html>\n");
    page
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

const STYLE: &str = "
body { font: 13px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
h1 { font-size: 20px; margin: 0 0 8px; } h2 { font-size: 16px; margin: 20px 0 6px; }
code, pre { font: 12px/1.35 ui-monospace, monospace; }
pre { background: #f6f6f6; padding: 8px; overflow-x: auto; white-space: pre-wrap; }
table.facts td { padding: 1px 12px 1px 0; vertical-align: top; }
table.marked { border-collapse: collapse; }
table.marked td, table.marked th { border-bottom: 1px solid #ddd; padding: 2px 10px 2px 0; text-align: left; vertical-align: top; }
.verdict { padding: 1px 8px; border-radius: 3px; color: #fff; }
.verdict.pass { background: #2e7d32; } .verdict.safety, .verdict.crash { background: #c62828; }
.verdict.liveness { background: #ef6c00; }
.legend span { display: inline-block; margin-right: 14px; }
.legend i { display: inline-block; width: 22px; height: 10px; margin-right: 4px; vertical-align: middle; }
.scroll { overflow-x: auto; border: 1px solid #ccc; }
.scroll > div { display: flex; width: max-content; }
svg.names { position: sticky; left: 0; background: #fff; z-index: 1; border-right: 1px solid #ccc; }
svg text { font: 11px ui-monospace, monospace; fill: #222; }
svg text.tick { fill: #666; } svg text.phase { fill: #1565c0; } svg text.fail-label { fill: #c62828; font-weight: bold; }
.grid { stroke: #eee; } .lane { fill: #fafafa; } .lane.alt { fill: #f0f0f0; }
.phase-line { stroke: #1565c0; stroke-dasharray: 4 3; } .violation-line { stroke: #c62828; stroke-width: 2; }
.nemesis-line { stroke: #ef6c00; stroke-opacity: 0.25; }
.op.ok, i.ok { fill: #66bb6a; background: #66bb6a; }
.op.fail, i.fail { fill: #ffca28; background: #ffca28; }
.op.indefinite, i.indefinite { fill: #9575cd; background: #9575cd; }
.op.marked, i.marked { fill: #e53935; background: #e53935; stroke: #7f0000; stroke-width: 1.5; }
.op.mixed, i.mixed { fill: #90a4ae; background: #90a4ae; } .op.group { fill-opacity: 0.75; }
.node-up, i.node-up { fill: #a5d6a7; background: #a5d6a7; } .node-down, i.node-down { fill: #bdbdbd; background: #bdbdbd; }
.node-paused, i.node-paused { fill: #ffb74d; background: #ffb74d; fill-opacity: 0.8; }
.node-failed { fill: #c62828; }
.nemesis { fill: #ef6c00; } .nemesis.skipped { fill: none; stroke: #ef6c00; }
.episode, i.episode { fill: #ffcc80; background: #ffcc80; fill-opacity: 0.7; }
svg text.bar { font-size: 10px; fill: #111; pointer-events: none; }
";

fn header(page: &mut String, report: &RunReport, command: &str) {
    let kind = report.verdict.kind();
    let _ = writeln!(
        page,
        "<h1>odradek sim: seed {} <span class=\"verdict {kind}\">{kind}</span></h1>",
        report.seed
    );
    let _ = writeln!(page, "<p><code>{}</code></p>", escape(command));
    let ops = report.operations;
    let facts = [
        ("trace hash", format!("{:016x}", report.trace_hash)),
        ("faults on", report.faults_on.clone()),
        ("workload", report.workload.clone()),
        (
            "operations",
            format!(
                "{} invoked, {} ok, {} failed, {} indefinite",
                ops.invoked, ops.ok, ops.failed, ops.indefinite
            ),
        ),
        ("nemesis events", report.nemeses.to_string()),
        (
            "simulated",
            format!(
                "{} ms, {} events",
                ms_text(report.simulated_ns),
                report.events
            ),
        ),
    ];
    page.push_str("<table class=\"facts\">\n");
    for (name, value) in facts {
        let _ = writeln!(page, "<tr><td>{name}</td><td>{}</td></tr>", escape(&value));
    }
    page.push_str("</table>\n");
}

fn violation(page: &mut String, report: &RunReport, lanes: &Lanes, end_ns: u64) {
    let _ = writeln!(
        page,
        "<h2 id=\"violation\">Violation: {}</h2>\n<pre class=\"explanation\">{}</pre>",
        report.verdict.kind(),
        escape(report.verdict.message().unwrap_or_default())
    );
    if report.marked.is_empty() {
        page.push_str("<p>No operation is marked: the failed check names none.</p>\n");
        return;
    }
    let window = detail_window(report, end_ns);
    let operations = report_operations(report);
    let _ = writeln!(
        page,
        "<p>{} marked operations (red in the timelines):</p>\n<table class=\"marked\">\n<tr><th>op</th><th>process</th><th>partition</th><th>call</th><th>outcome</th><th>invoked..completed (ms)</th><th>why</th></tr>",
        report.marked.len()
    );
    for (index, why) in report.marked.iter().take(MARKED_ROWS_MAX) {
        let Some(operation) = operations.get(*index) else {
            continue;
        };
        let in_close_up = window.is_some_and(|(start, end)| {
            operation.invoked_at <= end && operation.completed_at.unwrap_or(end_ns) >= start
        });
        let anchor = if in_close_up { "detail-op-" } else { "op-" };
        let _ = writeln!(
            page,
            "<tr class=\"marked-op\"><td><a href=\"#{anchor}{index}\">#{index}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&lanes.name(operation.process.0)),
            escape(&operation.partition.to_string()),
            escape(&call_text(&operation.call)),
            escape(&outcome_text(operation)),
            times_text(operation),
            escape(why)
        );
    }
    page.push_str("</table>\n");
    if report.marked.len() > MARKED_ROWS_MAX {
        let _ = writeln!(
            page,
            "<p>... and {} more marked operations.</p>",
            report.marked.len() - MARKED_ROWS_MAX
        );
    }
}

fn legend(page: &mut String) {
    page.push_str(
        "<p class=\"legend\"><span><i class=\"ok\"></i>ok</span><span><i class=\"fail\"></i>failed (certainly did not happen)</span><span><i class=\"indefinite\"></i>indefinite (may have happened)</span><span><i class=\"marked\"></i>marked by a check</span><span><i class=\"mixed\"></i>merged bars of several outcomes</span><span><i class=\"node-up\"></i>node up</span><span><i class=\"node-down\"></i>node down</span><span><i class=\"node-paused\"></i>node paused</span><span><i class=\"episode\"></i>fault episode</span> Hover for details; times are simulated milliseconds.</p>\n",
    );
}

fn event_list(page: &mut String, timeline: &[TimelineEvent]) {
    let _ = writeln!(
        page,
        "<details><summary>Nemesis, node and phase events ({})</summary>\n<pre>",
        timeline.len()
    );
    for event in timeline.iter().take(EVENT_LINES_MAX) {
        let _ = writeln!(
            page,
            "{:>12} ms  {}",
            ms_text(event.at_ns),
            escape(&event_text(event))
        );
    }
    if timeline.len() > EVENT_LINES_MAX {
        let _ = writeln!(page, "... {} more", timeline.len() - EVENT_LINES_MAX);
    }
    page.push_str("</pre>\n</details>\n");
}

/// The history's operations (none if the run kept no history).
fn report_operations(report: &RunReport) -> &[Operation] {
    report
        .history
        .as_ref()
        .map_or(&[], |history| history.operations())
}

/// The end of the drawn time axis: the run's end, or later if something ends later.
fn run_end_ns(report: &RunReport) -> u64 {
    let mut end = report.simulated_ns;
    for operation in report_operations(report) {
        end = end.max(operation.completed_at.unwrap_or(operation.invoked_at));
    }
    for event in &report.timeline {
        end = end.max(event.at_ns);
    }
    end.max(MS)
}

/// The close-up's window: around the marked operations and the failed check, at most
/// [`DETAIL_WINDOW_NS_MAX`] from the first of them. `None` for a passing run, and for
/// a liveness failure that marks nothing.
fn detail_window(report: &RunReport, end_ns: u64) -> Option<(u64, u64)> {
    // A liveness failure with nothing in flight has nothing to look at closely: the
    // deadline passed between retries.
    if report.verdict.is_pass() || (report.marked.is_empty() && report.verdict.kind() == "liveness")
    {
        return None;
    }
    let operations = report_operations(report);
    let mut times: Vec<u64> = Vec::new();
    for index in report.marked.keys() {
        if let Some(operation) = operations.get(*index) {
            times.push(operation.invoked_at);
            times.push(operation.completed_at.unwrap_or(end_ns));
        }
    }
    times.extend(report.timeline.iter().filter_map(|event| match event.kind {
        TimelineKind::Violation(_) => Some(event.at_ns),
        _ => None,
    }));
    let first = *times.iter().min()?;
    let last = (*times.iter().max()?).min(first + DETAIL_WINDOW_NS_MAX);
    let pad = ((last - first) / 4).max(DETAIL_PAD_NS_MIN);
    Some((first.saturating_sub(pad), (last + pad).min(end_ns)))
}

/// The rows of a view: processes (with their operations) and names.
struct Lanes {
    /// Operations of each process, in invocation order.
    processes: BTreeMap<u64, Vec<usize>>,
    /// Who each process belongs to.
    names: BTreeMap<u64, String>,
    /// Nodes seen in the timeline.
    nodes: BTreeSet<u32>,
}

impl Lanes {
    fn of(report: &RunReport) -> Lanes {
        let mut processes: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for operation in report_operations(report) {
            processes
                .entry(operation.process.0)
                .or_default()
                .push(operation.index);
        }
        let mut nodes = BTreeSet::new();
        for event in &report.timeline {
            match &event.kind {
                TimelineKind::NodeUp { node, .. }
                | TimelineKind::NodeDown { node, .. }
                | TimelineKind::NodeStartFailed { node, .. } => {
                    nodes.insert(*node);
                }
                _ => {}
            }
        }
        Lanes {
            processes,
            names: report.processes.clone(),
            nodes,
        }
    }

    /// Only the processes with an operation in `view`.
    fn within(&self, view: &View, report: &RunReport, end_ns: u64) -> Lanes {
        let operations = report_operations(report);
        Lanes {
            processes: self
                .processes
                .iter()
                .filter(|(_, indexes)| {
                    indexes
                        .iter()
                        .any(|&index| view.overlaps(&operations[index], end_ns))
                })
                .map(|(process, indexes)| (*process, indexes.clone()))
                .collect(),
            names: self.names.clone(),
            nodes: self.nodes.clone(),
        }
    }

    fn name(&self, process: u64) -> String {
        match self.names.get(&process) {
            Some(name) => format!("p{process} {name}"),
            None => format!("p{process}"),
        }
    }
}

/// The four rows of the nemesis lane.
const NEMESIS_ROWS: [&str; 4] = ["process", "network", "disk", "clock"];

fn nemesis_row(nemesis: Nemesis) -> usize {
    match nemesis {
        Nemesis::Crash | Nemesis::Kill | Nemesis::Pause | Nemesis::Restart | Nemesis::Wipe => 0,
        Nemesis::Partition | Nemesis::Repair | Nemesis::Clog => 1,
        Nemesis::DiskFull | Nemesis::DiskSpace | Nemesis::Rot | Nemesis::Misdirect => 2,
        Nemesis::ClockStep | Nemesis::WallStep => 3,
    }
}

/// A time window drawn at a scale.
struct View {
    /// Prefix of the ids of marked operations' bars (the table links to them).
    id_prefix: &'static str,
    start_ns: u64,
    end_ns: u64,
    px_per_ns: f64,
    /// Write the call on bars wide enough.
    labels: bool,
}

/// What a node was doing over an interval.
enum NodeState {
    Up,
    Down,
    Paused,
}

/// One bar of a node's row.
struct NodeInterval {
    state: NodeState,
    from_ns: u64,
    to_ns: u64,
    /// The incarnation (up) or why it went down.
    text: String,
}

/// The states `node` went through in the run, in order: up from each NodeUp to the
/// next NodeDown, down from the start or a NodeDown to the next NodeUp; then its
/// pauses, drawn over the up bars.
fn node_intervals(report: &RunReport, node: u32, end_ns: u64) -> Vec<NodeInterval> {
    let mut current = NodeInterval {
        state: NodeState::Down,
        from_ns: 0,
        to_ns: end_ns,
        text: "not started yet".to_string(),
    };
    let mut intervals = Vec::new();
    let mut pauses = Vec::new();
    for event in &report.timeline {
        let next = match &event.kind {
            TimelineKind::NodeUp {
                node: n,
                incarnation,
            } if *n == node => NodeInterval {
                state: NodeState::Up,
                from_ns: event.at_ns,
                to_ns: end_ns,
                text: format!("incarnation {incarnation}"),
            },
            TimelineKind::NodeDown { node: n, why } if *n == node => NodeInterval {
                state: NodeState::Down,
                from_ns: event.at_ns,
                to_ns: end_ns,
                text: why.clone(),
            },
            TimelineKind::Nemesis {
                nemesis: Nemesis::Pause,
                node: n,
                skipped: false,
                until_ns: Some(until),
                ..
            } if *n == node => {
                pauses.push(NodeInterval {
                    state: NodeState::Paused,
                    from_ns: event.at_ns,
                    to_ns: *until,
                    text: String::new(),
                });
                continue;
            }
            _ => continue,
        };
        intervals.push(NodeInterval {
            to_ns: event.at_ns,
            ..std::mem::replace(&mut current, next)
        });
    }
    intervals.push(current);
    intervals.extend(pauses);
    intervals
}

/// Where row `row` of a view starts, from the top of its SVG.
fn row_y(row: usize) -> u64 {
    AXIS_HEIGHT_PX + row as u64 * ROW_HEIGHT_PX
}

/// The nemesis rows (indexes into `NEMESIS_ROWS`) the run has an event for.
fn nemesis_rows_used(report: &RunReport) -> Vec<usize> {
    (0..NEMESIS_ROWS.len())
        .filter(|row| {
            report.timeline.iter().any(|event| match event.kind {
                TimelineKind::Nemesis { nemesis, .. } => nemesis_row(nemesis) == *row,
                _ => false,
            })
        })
        .collect()
}

/// Every row's name, top to bottom: the nemesis rows, the nodes, the processes.
fn row_names(nemesis_rows: &[usize], lanes: &Lanes) -> Vec<String> {
    let mut names = Vec::new();
    for row in nemesis_rows {
        names.push(format!("nemesis: {}", NEMESIS_ROWS[*row]));
    }
    for node in &lanes.nodes {
        names.push(format!("node {node}"));
    }
    for process in lanes.processes.keys() {
        names.push(lanes.name(*process));
    }
    names
}

/// A run of merged bars in one lane.
struct Group {
    first: usize,
    last: usize,
    /// Operations merged, by outcome class: ok, fail, indefinite.
    counts: [usize; 3],
    x0: f64,
    x1: f64,
}

impl Group {
    fn count(&self) -> usize {
        self.counts.iter().sum()
    }

    /// The outcome class of its operations, or `mixed`.
    fn class(&self) -> &'static str {
        match self.counts {
            [_, 0, 0] => "ok",
            [0, _, 0] => "fail",
            [0, 0, _] => "indefinite",
            _ => "mixed",
        }
    }

    fn add(&mut self, class: &'static str) {
        let slot = match class {
            "ok" => 0,
            "fail" => 1,
            _ => 2,
        };
        self.counts[slot] += 1;
    }
}

impl View {
    fn x(&self, at_ns: u64) -> f64 {
        (at_ns.clamp(self.start_ns, self.end_ns) - self.start_ns) as f64 * self.px_per_ns
    }

    fn width_px(&self) -> f64 {
        self.x(self.end_ns).ceil() + 40.0
    }

    fn overlaps(&self, operation: &Operation, end_ns: u64) -> bool {
        operation.invoked_at <= self.end_ns
            && operation.completed_at.unwrap_or(end_ns) >= self.start_ns
    }

    /// Renders with bars narrower than `merge_px` merged, merging more coarsely while
    /// the result weighs more than `bytes_target` (at most `MERGE_DOUBLINGS_MAX`
    /// times).
    fn render_in_budget(
        &self,
        report: &RunReport,
        lanes: &Lanes,
        merge_px: f64,
        bytes_target: usize,
    ) -> String {
        let mut merge_px = merge_px;
        let mut svg = self.render(report, lanes, merge_px);
        for _ in 0..MERGE_DOUBLINGS_MAX {
            if svg.len() <= bytes_target {
                break;
            }
            merge_px = (merge_px * 2.0).max(OVERVIEW_MERGE_PX);
            svg = self.render(report, lanes, merge_px);
        }
        svg
    }

    fn render(&self, report: &RunReport, lanes: &Lanes, merge_px: f64) -> String {
        let end_ns = run_end_ns(report);
        let nemesis_rows = nemesis_rows_used(report);
        let names = row_names(&nemesis_rows, lanes);
        let height = AXIS_HEIGHT_PX + names.len() as u64 * ROW_HEIGHT_PX + 4;
        let mut svg = String::new();
        self.names_and_lanes(&mut svg, &names, height);
        self.axis(&mut svg, height);
        self.event_lines(&mut svg, report, height);
        self.nemesis_events(&mut svg, report, &nemesis_rows);
        for (position, node) in lanes.nodes.iter().enumerate() {
            let y = row_y(nemesis_rows.len() + position) + 2;
            self.node_row(&mut svg, report, *node, y, end_ns);
        }
        let first_process_row = nemesis_rows.len() + lanes.nodes.len();
        for (position, indexes) in lanes.processes.values().enumerate() {
            let y = row_y(first_process_row + position) + 2;
            self.process_row(&mut svg, report, indexes, y, merge_px);
        }
        svg.push_str("</svg></div></div>\n");
        svg
    }

    /// Opens the two SVGs: the row names (sticky on the left) and the lanes' shaded
    /// backgrounds.
    fn names_and_lanes(&self, svg: &mut String, names: &[String], height: u64) {
        let width = self.width_px();
        let _ = write!(
            svg,
            "<div class=\"scroll\"><div><svg class=\"names\" width=\"{LABEL_WIDTH_PX}\" height=\"{height}\">"
        );
        for (row, name) in names.iter().enumerate() {
            let _ = write!(
                svg,
                "<text x=\"4\" y=\"{}\">{}</text>",
                row_y(row) + BAR_HEIGHT_PX,
                escape(name)
            );
        }
        let _ = write!(
            svg,
            "</svg><svg class=\"lanes\" width=\"{width:.0}\" height=\"{height}\">"
        );
        for row in 0..names.len() {
            let class = if row % 2 == 1 { "lane alt" } else { "lane" };
            let _ = write!(
                svg,
                "<rect class=\"{class}\" x=\"0\" y=\"{}\" width=\"{width:.0}\" height=\"{ROW_HEIGHT_PX}\"/>",
                row_y(row)
            );
        }
    }

    /// Vertical lines across every row: phases, failed checks, and (faintly) every
    /// nemesis event.
    fn event_lines(&self, svg: &mut String, report: &RunReport, height: u64) {
        let lines_top = AXIS_HEIGHT_PX;
        for event in &report.timeline {
            if event.at_ns < self.start_ns || event.at_ns > self.end_ns {
                continue;
            }
            let x = self.x(event.at_ns);
            match &event.kind {
                TimelineKind::Phase(name) => {
                    let _ = write!(
                        svg,
                        "<line class=\"phase-line\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"12\" y2=\"{height}\"/><text class=\"phase\" x=\"{:.1}\" y=\"10\">{}</text>",
                        x + 2.0,
                        escape(name)
                    );
                }
                TimelineKind::Violation(message) => {
                    let first_line = message.lines().next().unwrap_or_default();
                    let _ = write!(
                        svg,
                        "<line class=\"violation-line\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"12\" y2=\"{height}\"><title>{} ms: {}</title></line><text class=\"fail-label\" x=\"{:.1}\" y=\"10\">failed here</text>",
                        ms_text(event.at_ns),
                        escape(first_line),
                        x + 2.0
                    );
                }
                TimelineKind::Nemesis {
                    skipped: false,
                    number: Some(_),
                    ..
                } => {
                    let _ = write!(
                        svg,
                        "<line class=\"nemesis-line\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{lines_top}\" y2=\"{height}\"/>"
                    );
                }
                _ => {}
            }
        }
    }

    /// The nemesis rows: a mark per nemesis event, and a bar for each episode that lasts.
    fn nemesis_events(&self, svg: &mut String, report: &RunReport, nemesis_rows: &[usize]) {
        for event in &report.timeline {
            let TimelineKind::Nemesis {
                nemesis,
                skipped,
                until_ns,
                ..
            } = &event.kind
            else {
                continue;
            };
            let end = until_ns.unwrap_or(event.at_ns);
            if end < self.start_ns || event.at_ns > self.end_ns {
                continue;
            }
            let Some(row) = nemesis_rows
                .iter()
                .position(|row| *row == nemesis_row(*nemesis))
            else {
                continue;
            };
            let y = row_y(row) + 2;
            let tooltip = format!("{} ms: {}", ms_text(event.at_ns), event_text(event));
            let x = self.x(event.at_ns);
            if let Some(until) = until_ns {
                let width = (self.x(*until) - x).max(1.0);
                let _ = write!(
                    svg,
                    "<rect class=\"episode\" x=\"{x:.1}\" y=\"{y}\" width=\"{width:.1}\" height=\"{BAR_HEIGHT_PX}\"><title>{}</title></rect>",
                    escape(&tooltip)
                );
            }
            let class = if *skipped {
                "nemesis skipped"
            } else {
                "nemesis"
            };
            let _ = write!(
                svg,
                "<rect class=\"{class}\" x=\"{:.1}\" y=\"{y}\" width=\"3\" height=\"{BAR_HEIGHT_PX}\"><title>{}</title></rect>",
                x - 1.0,
                escape(&tooltip)
            );
        }
    }

    /// One process's row: its operations, neighbours closer than `merge_px` merged into
    /// one bar (never a marked one).
    fn process_row(
        &self,
        svg: &mut String,
        report: &RunReport,
        indexes: &[usize],
        y: u64,
        merge_px: f64,
    ) {
        let end_ns = run_end_ns(report);
        let operations = report_operations(report);
        // Past a few doublings, neighbours of different outcomes merge too (a
        // `mixed` bar whose tooltip counts each outcome): alternating outcomes would
        // otherwise keep every bar apart.
        let mix_outcomes = merge_px > OVERVIEW_MERGE_PX * 2.0;
        let mut group: Option<Group> = None;
        for &index in indexes {
            let operation = &operations[index];
            if !self.overlaps(operation, end_ns) {
                continue;
            }
            let x0 = self.x(operation.invoked_at);
            let x1 = self.x(operation.completed_at.unwrap_or(end_ns));
            let class = outcome_class(operation);
            let marked = report.marked.contains_key(&index);
            if marked || x1 - x0 >= merge_px || merge_px <= 0.0 {
                self.flush(svg, group.take(), operations, report, y, end_ns);
                self.operation(svg, operation, report, y, end_ns);
                continue;
            }
            match &mut group {
                Some(open)
                    if (mix_outcomes || open.class() == class) && x0 - open.x1 < merge_px =>
                {
                    open.last = index;
                    open.add(class);
                    open.x1 = open.x1.max(x1);
                }
                _ => {
                    self.flush(svg, group.take(), operations, report, y, end_ns);
                    let mut open = Group {
                        first: index,
                        last: index,
                        counts: [0; 3],
                        x0,
                        x1,
                    };
                    open.add(class);
                    group = Some(open);
                }
            }
        }
        self.flush(svg, group.take(), operations, report, y, end_ns);
    }

    fn axis(&self, svg: &mut String, height: u64) {
        // A tick every 1, 2 or 5 times a power of ten nanoseconds, at least
        // `TICK_SPACING_PX` apart.
        let step_nanos = (3..=13)
            .flat_map(|exponent| [1, 2, 5].map(|factor| factor * 10u64.pow(exponent)))
            .find(|step| *step as f64 * self.px_per_ns >= TICK_SPACING_PX)
            .unwrap_or(10u64.pow(13));
        let mut tick = self.start_ns.div_ceil(step_nanos) * step_nanos;
        while tick <= self.end_ns {
            let x = self.x(tick);
            let _ = write!(
                svg,
                "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{}\" y2=\"{height}\"/><text class=\"tick\" x=\"{:.1}\" y=\"24\">{}</text>",
                AXIS_HEIGHT_PX - 4,
                x + 2.0,
                tick_text(tick, step_nanos)
            );
            tick += step_nanos;
        }
    }

    fn node_row(&self, svg: &mut String, report: &RunReport, node: u32, y: u64, end_ns: u64) {
        self.start_failures(svg, report, node, y);
        for interval in node_intervals(report, node, end_ns) {
            if interval.to_ns < self.start_ns
                || interval.from_ns > self.end_ns
                || interval.to_ns <= interval.from_ns
            {
                continue;
            }
            let (class, state) = match interval.state {
                NodeState::Up => ("node-up", format!("up ({})", interval.text)),
                NodeState::Down => ("node-down", format!("down ({})", interval.text)),
                NodeState::Paused => ("node-paused", "paused".to_string()),
            };
            let x0 = self.x(interval.from_ns);
            let width = (self.x(interval.to_ns) - x0).max(1.0);
            let _ = write!(
                svg,
                "<rect class=\"{class}\" x=\"{x0:.1}\" y=\"{y}\" width=\"{width:.1}\" height=\"{BAR_HEIGHT_PX}\"><title>node {node} {}: {}..{} ms</title></rect>",
                escape(&state),
                ms_text(interval.from_ns),
                ms_text(interval.to_ns)
            );
        }
    }

    /// A thin mark at each failed start of `node` within the drawn span.
    fn start_failures(&self, svg: &mut String, report: &RunReport, node: u32, y: u64) {
        for event in &report.timeline {
            if let TimelineKind::NodeStartFailed { node: n, error } = &event.kind
                && *n == node
                && event.at_ns >= self.start_ns
                && event.at_ns <= self.end_ns
            {
                let _ = write!(
                    svg,
                    "<rect class=\"node-failed\" x=\"{:.1}\" y=\"{y}\" width=\"3\" height=\"{BAR_HEIGHT_PX}\"><title>{} ms: node {node} failed to start: {}</title></rect>",
                    self.x(event.at_ns) - 1.0,
                    ms_text(event.at_ns),
                    escape(error)
                );
            }
        }
    }

    fn operation(
        &self,
        svg: &mut String,
        operation: &Operation,
        report: &RunReport,
        y: u64,
        end_ns: u64,
    ) {
        let x0 = self.x(operation.invoked_at);
        let x1 = self.x(operation.completed_at.unwrap_or(end_ns));
        let min_width = if self.labels { 2.0 } else { 1.0 };
        let width = (x1 - x0).max(min_width);
        let class = outcome_class(operation);
        let why = report.marked.get(&operation.index);
        let (marked_class, id) = match why {
            Some(_) => (
                " marked",
                format!(" id=\"{}{}\"", self.id_prefix, operation.index),
            ),
            None => ("", String::new()),
        };
        let mut tooltip = format!(
            "#{} p{} {}: {} -> {} [{} ms]",
            operation.index,
            operation.process.0,
            operation.partition,
            call_text(&operation.call),
            outcome_text(operation),
            times_text(operation)
        );
        if let Some(why) = why {
            tooltip.push_str("\nmarked: ");
            tooltip.push_str(why);
        }
        let _ = write!(
            svg,
            "<rect class=\"op {class}{marked_class}\"{id} x=\"{x0:.1}\" y=\"{y}\" width=\"{width:.1}\" height=\"{BAR_HEIGHT_PX}\"><title>{}</title></rect>",
            escape(&tooltip)
        );
        if self.labels {
            let label = bar_label(operation);
            if label.chars().count() as f64 * CHAR_WIDTH_PX + 4.0 <= width {
                let _ = write!(
                    svg,
                    "<text class=\"bar\" x=\"{:.1}\" y=\"{}\">{}</text>",
                    x0 + 2.0,
                    y + BAR_HEIGHT_PX - 1,
                    escape(&label)
                );
            }
        }
    }

    fn flush(
        &self,
        svg: &mut String,
        group: Option<Group>,
        operations: &[Operation],
        report: &RunReport,
        y: u64,
        end_ns: u64,
    ) {
        let Some(group) = group else {
            return;
        };
        if group.count() == 1 {
            self.operation(svg, &operations[group.first], report, y, end_ns);
            return;
        }
        let first = &operations[group.first];
        let last = &operations[group.last];
        let width = (group.x1 - group.x0).max(1.0);
        let [ok, failed, indefinite] = group.counts;
        let _ = write!(
            svg,
            "<rect class=\"op {} group\" x=\"{:.1}\" y=\"{y}\" width=\"{width:.1}\" height=\"{BAR_HEIGHT_PX}\"><title>{} operations #{}..#{} ({ok} ok, {failed} failed, {indefinite} indefinite) [{}..{} ms]</title></rect>",
            group.class(),
            group.x0,
            group.count(),
            group.first,
            group.last,
            ms_text(first.invoked_at),
            ms_text(last.completed_at.unwrap_or(end_ns))
        );
    }
}

fn outcome_class(operation: &Operation) -> &'static str {
    match operation.outcome {
        Some(Outcome::Ok(_)) => "ok",
        Some(Outcome::Fail(_)) => "fail",
        Some(Outcome::Indefinite(_)) | None => "indefinite",
    }
}

fn call_text(call: &Call) -> String {
    match call {
        Call::Send { value } => format!("send {value}"),
        Call::Poll { offset } => format!("poll from {offset}"),
    }
}

/// How many records of a poll the texts list.
const RECORDS_SHOWN_MAX: usize = 6;

fn outcome_text(operation: &Operation) -> String {
    match &operation.outcome {
        Some(Outcome::Ok(Reply::Sent { offset })) => format!("ok, offset {offset}"),
        Some(Outcome::Ok(Reply::Polled { records })) => {
            let shown: Vec<String> = records
                .iter()
                .take(RECORDS_SHOWN_MAX)
                .map(|(offset, value)| format!("{offset}:{value}"))
                .collect();
            let more = if records.len() > RECORDS_SHOWN_MAX {
                format!(" .. ({} in all)", records.len())
            } else {
                String::new()
            };
            format!("ok, {} records [{}{more}]", records.len(), shown.join(" "))
        }
        Some(Outcome::Fail(why)) => format!("fail ({why})"),
        Some(Outcome::Indefinite(why)) => format!("indefinite ({why})"),
        None => "never completed".to_string(),
    }
}

/// The short text on a bar: `send 17→4`, `poll 5→[5..9]`, `send 17 ✗`, `poll 5 ?`.
fn bar_label(operation: &Operation) -> String {
    let call = match operation.call {
        Call::Send { value } => format!("send {value}"),
        Call::Poll { offset } => format!("poll {offset}"),
    };
    match &operation.outcome {
        Some(Outcome::Ok(Reply::Sent { offset })) => format!("{call}\u{2192}{offset}"),
        Some(Outcome::Ok(Reply::Polled { records })) => match (records.first(), records.last()) {
            (Some((first, _)), Some((last, _))) => {
                format!("{call}\u{2192}[{first}..{last}] {} recs", records.len())
            }
            _ => format!("{call}\u{2192}[]"),
        },
        Some(Outcome::Fail(_)) => format!("{call} \u{2717}"),
        Some(Outcome::Indefinite(_)) | None => format!("{call} ?"),
    }
}

fn times_text(operation: &Operation) -> String {
    match operation.completed_at {
        Some(completed) => format!("{}..{}", ms_text(operation.invoked_at), ms_text(completed)),
        None => format!("{}..", ms_text(operation.invoked_at)),
    }
}

/// Nanoseconds as milliseconds with three decimals: `1234.567`.
fn ms_text(nanoseconds: u64) -> String {
    format!("{}.{:03}", nanoseconds / MS, (nanoseconds % MS) / 1_000)
}

/// A tick's label, as precise as the step needs.
fn tick_text(at_ns: u64, step_ns: u64) -> String {
    if step_ns >= MS {
        format!("{} ms", at_ns / MS)
    } else {
        format!("{} ms", ms_text(at_ns))
    }
}

fn event_text(event: &TimelineEvent) -> String {
    match &event.kind {
        TimelineKind::Nemesis {
            number,
            nemesis,
            node,
            skipped,
            until_ns,
            detail,
        } => {
            let number = number.map(|n| format!(" #{n}")).unwrap_or_default();
            let until = until_ns
                .map(|until| format!(" until {} ms", ms_text(until)))
                .unwrap_or_default();
            let skipped = if *skipped { " (skipped)" } else { "" };
            format!("nemesis{number} {nemesis:?} on node {node}{skipped}: {detail}{until}")
        }
        TimelineKind::NodeUp { node, incarnation } => {
            format!("node {node} up (incarnation {incarnation})")
        }
        TimelineKind::NodeDown { node, why } => format!("node {node} down: {why}"),
        TimelineKind::NodeStartFailed { node, error } => {
            format!("node {node} failed to start: {error}")
        }
        TimelineKind::Phase(name) => format!("phase: {name}"),
        TimelineKind::Violation(message) => format!(
            "check failed: {}",
            message.lines().next().unwrap_or_default()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{OperationCounts, Verdict};
    use odradek_model::history::{History, PartitionKey, ProcessId};

    fn key() -> PartitionKey {
        PartitionKey {
            topic: "t<&>".into(),
            partition: 0,
        }
    }

    fn report(verdict: Verdict, marked: BTreeMap<usize, String>) -> RunReport {
        let mut history = History::new();
        let send = history.invoke(ProcessId(1), key(), Call::Send { value: 7 }, 2 * MS);
        history.complete(send, Outcome::Ok(Reply::Sent { offset: 0 }), 5 * MS);
        let poll = history.invoke(ProcessId(2), key(), Call::Poll { offset: 0 }, 6 * MS);
        history.complete(
            poll,
            Outcome::Ok(Reply::Polled {
                records: vec![(0, 7)],
            }),
            9 * MS,
        );
        let lost = history.invoke(ProcessId(1), key(), Call::Send { value: 8 }, 7 * MS);
        history.complete(lost, Outcome::Indefinite("timed out".into()), 30 * MS);
        RunReport {
            seed: 5,
            verdict,
            trace_hash: 0xabc,
            events: 10,
            simulated_ns: 40 * MS,
            faults_on: "crash".into(),
            faults: BTreeMap::new(),
            client_stats: BTreeMap::new(),
            catch_up_ms: Vec::new(),
            operations: OperationCounts::default(),
            check: Some("checked <3> operations".into()),
            check_unknown: false,
            history: Some(history),
            trace: Vec::new(),
            workload: "w".into(),
            marked,
            groups: None,
            timeline: vec![
                TimelineEvent {
                    at_ns: 0,
                    kind: TimelineKind::NodeUp {
                        node: 0,
                        incarnation: 1,
                    },
                },
                TimelineEvent {
                    at_ns: 10 * MS,
                    kind: TimelineKind::Nemesis {
                        number: Some(0),
                        nemesis: Nemesis::Crash,
                        node: 0,
                        skipped: false,
                        until_ns: None,
                        detail: "armed".into(),
                    },
                },
                TimelineEvent {
                    at_ns: 12 * MS,
                    kind: TimelineKind::NodeDown {
                        node: 0,
                        why: "power loss".into(),
                    },
                },
                TimelineEvent {
                    at_ns: 20 * MS,
                    kind: TimelineKind::Phase("liveness"),
                },
            ],
            nemeses: 1,
            processes: BTreeMap::from([(1, "client 1 (producer)".to_string())]),
        }
    }

    /// 200 processes with 300 operations each over a minute, outcomes alternating
    /// (the worst case for merging bars of one outcome): the page stays in budget.
    #[test]
    fn a_huge_history_stays_in_budget() {
        let mut big = report(Verdict::Pass, BTreeMap::new());
        let mut history = History::new();
        for round in 0..300u64 {
            for process in 0..200u64 {
                let at = round * 200 * MS + process * 1_000;
                let index = history.invoke(
                    ProcessId(process),
                    key(),
                    Call::Send {
                        value: round * 1_000 + process,
                    },
                    at,
                );
                let outcome = match (round + process) % 3 {
                    0 => Outcome::Ok(Reply::Sent { offset: 1 }),
                    1 => Outcome::Fail("refused".into()),
                    _ => Outcome::Indefinite("timed out".into()),
                };
                history.complete(index, outcome, at + 150 * MS);
            }
        }
        big.history = Some(history);
        big.simulated_ns = 61_000 * MS;
        let page = render(&big, "odradek sim --seed 5");
        assert!(
            page.len() < OVERVIEW_BYTES_TARGET + DETAIL_BYTES_TARGET,
            "{} bytes",
            page.len()
        );
        assert!(page.contains("op mixed group"));
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_passing_run_has_lanes_and_no_marks() {
        let page = render(
            &report(Verdict::Pass, BTreeMap::new()),
            "odradek sim --seed 5",
        );
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<svg"));
        assert!(page.contains("p1 client 1 (producer)"));
        assert!(page.contains("nemesis: process"));
        assert!(page.contains("node 0 down (power loss)"));
        assert!(
            page.contains("t&lt;&amp;&gt;-0"),
            "partition names are escaped"
        );
        assert!(!page.contains(" marked\""));
        assert!(!page.contains("t<&>"));
        assert!(!page.contains("Close-up"));
        assert!(!page.contains("<script"));
    }

    #[test]
    fn a_failing_run_marks_and_explains() {
        let marked = BTreeMap::from([(2, "lost <write>".to_string())]);
        let verdict = Verdict::Safety("value 8 was lost & gone".into());
        let page = render(&report(verdict, marked), "odradek sim --seed 5");
        assert!(page.contains("value 8 was lost &amp; gone"));
        assert!(page.contains("class=\"op indefinite marked\" id=\"op-2\""));
        assert!(page.contains("class=\"op indefinite marked\" id=\"detail-op-2\""));
        assert!(page.contains("href=\"#detail-op-2\""));
        assert!(page.contains("lost &lt;write&gt;"));
        assert!(page.contains("Close-up"));
        assert!(page.contains("send 8 ?"), "the close-up labels its bars");
    }
}
