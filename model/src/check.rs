//! One call that runs every checker over a history: [`check_history`].
//!
//! ```text
//! History ──┬─ per partition ─> linearizability::check_partition ─> Verdict  ─┐
//!           └─ whole history ─> anomalies::find_anomalies ─> Anomalies ────────┴─> CheckReport
//! ```
//!
//! [`CheckReport::is_valid`] is the pass/fail bit (no partition proven illegal, no
//! anomaly); [`CheckReport::has_unknown`] says a partition's search ran out of budget,
//! which is not a pass. [`CheckReport::render`] is the text a failing simulation prints;
//! [`CheckReport::marked`] lists the operations a timeline should highlight.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::anomalies::{Anomaly, AnomalyOptions, Unseen, find_anomalies};
use crate::history::{Call, History, Operation, Outcome, PartitionKey};
use crate::linearizability::{LinearizabilityOptions, Search, Verdict, Violation, check_partition};

/// How many operations of a violation's frontier, or of one anomaly, `render` lists.
const RENDER_OPERATIONS_MAX: usize = 8;
/// How many operations of a violation's linearizable prefix `render` names (the last).
const RENDER_PREFIX_TAIL_MAX: usize = 5;

/// What to check and what to assume.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckOptions {
    /// The linearizability search and its budget.
    pub linearizability: LinearizabilityOptions,
    /// What the anomaly checks may assume about the workload.
    pub anomalies: AnomalyOptions,
    /// Log start offsets of partitions whose log did not start at 0 when the history
    /// began; the others start at 0.
    pub log_start_offsets: BTreeMap<PartitionKey, i64>,
}

impl CheckOptions {
    /// The defaults: pruned search with the default budget, sequential polls, no final
    /// reads.
    pub fn new() -> CheckOptions {
        CheckOptions::default()
    }

    /// The history ends with complete reads of every partition.
    pub fn final_reads(mut self, final_reads: bool) -> CheckOptions {
        self.anomalies.final_reads = final_reads;
        self
    }

    /// Each process polls each partition from where its last poll left off.
    pub fn sequential_polls(mut self, sequential_polls: bool) -> CheckOptions {
        self.anomalies.sequential_polls = sequential_polls;
        self
    }

    /// The broker writes control records of its own that take offsets (a replicated
    /// partition's leader-change markers; polls record them as
    /// [`MARKER`](crate::history::MARKER)).
    pub fn broker_markers(mut self, broker_markers: bool) -> CheckOptions {
        self.linearizability.broker_markers = broker_markers;
        self.anomalies.broker_markers = broker_markers;
        self
    }

    /// The linearizability budget per partition.
    pub fn configurations_max(mut self, configurations_max: u64) -> CheckOptions {
        self.linearizability.configurations_max = configurations_max;
        self
    }

    /// Which linearizability search to run.
    pub fn search(mut self, search: Search) -> CheckOptions {
        self.linearizability.search = search;
        self
    }

    /// `partition`'s log started at `offset` when the history began.
    pub fn log_start_offset(mut self, partition: PartitionKey, offset: i64) -> CheckOptions {
        self.log_start_offsets.insert(partition, offset);
        self
    }
}

/// Counts about the history and the work done.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckStats {
    /// Operations in the history.
    pub operations: usize,
    /// Of which sends.
    pub sends: usize,
    /// Of which polls.
    pub polls: usize,
    /// Operations that completed `Ok`.
    pub ok: usize,
    /// Operations that failed.
    pub failed: usize,
    /// Operations indefinite or never completed.
    pub indefinite: usize,
    /// Configurations the linearizability searches explored, over all partitions.
    pub configurations_explored: u64,
}

/// What the checkers found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// The linearizability verdict of each partition.
    pub partitions: BTreeMap<PartitionKey, Verdict>,
    /// The anomalies kept (a few per kind), worst kinds first within a partition.
    pub anomalies: Vec<Anomaly>,
    /// How many anomalies of each kind there were, by name, including those not kept.
    pub anomaly_counts: BTreeMap<&'static str, usize>,
    /// Acknowledged sends no poll returned, per partition: information, not an error
    /// (with final reads each is also a lost write).
    pub unseen: BTreeMap<PartitionKey, Unseen>,
    /// Counts.
    pub stats: CheckStats,
    /// The operations `render` shows, by index.
    named: BTreeMap<usize, Operation>,
}

/// Runs the linearizability checker on every partition and the anomaly checks on the
/// whole history. Panics if two sends carry one value (the workload's promise).
pub fn check_history(history: &History, options: &CheckOptions) -> CheckReport {
    let mut stats = history_stats(history);
    let mut partitions = BTreeMap::new();
    for partition in history.partitions() {
        let start_offset = options
            .log_start_offsets
            .get(&partition)
            .copied()
            .unwrap_or(0);
        let verdict = check_partition(history, &partition, start_offset, &options.linearizability);
        stats.configurations_explored += verdict.explored();
        partitions.insert(partition, verdict);
    }
    let anomalies = find_anomalies(history, &options.anomalies);

    let mut report = CheckReport {
        partitions,
        anomalies: anomalies.found,
        anomaly_counts: anomalies.counts,
        unseen: anomalies.unseen,
        stats,
        named: BTreeMap::new(),
    };
    report.named = report.named_operations(history);
    report
}

/// The counts of the history's operations by call and outcome; panics if two sends
/// carry one value (the checks rely on unique values).
fn history_stats(history: &History) -> CheckStats {
    let mut stats = CheckStats::default();
    let mut senders: BTreeMap<u64, usize> = BTreeMap::new();
    for (position, operation) in history.operations().iter().enumerate() {
        assert_eq!(operation.index, position, "history indexes are positions");
        stats.operations += 1;
        match operation.call {
            Call::Send { value } => {
                stats.sends += 1;
                if let Some(other) = senders.insert(value, operation.index) {
                    panic!(
                        "value {value} sent by both #{other} and #{}: the workload must send unique values",
                        operation.index
                    );
                }
            }
            Call::Poll { .. } => stats.polls += 1,
        }
        match operation.outcome {
            Some(Outcome::Ok(_)) => stats.ok += 1,
            Some(Outcome::Fail(_)) => stats.failed += 1,
            Some(Outcome::Indefinite(_)) | None => stats.indefinite += 1,
        }
    }
    stats
}

impl CheckReport {
    /// No partition proven non-linearizable and no anomaly. Unknown verdicts do not
    /// make a report invalid; check [`CheckReport::has_unknown`] too.
    pub fn is_valid(&self) -> bool {
        !self.partitions.values().any(Verdict::is_illegal) && self.anomaly_counts.is_empty()
    }

    /// Some partition's search ran out of budget.
    pub fn has_unknown(&self) -> bool {
        self.partitions.values().any(Verdict::is_unknown)
    }

    /// Every operation a timeline should mark: those of each violation (stuck, related,
    /// frontier) and of each anomaly kept.
    pub fn marked(&self) -> BTreeSet<usize> {
        let mut marked = BTreeSet::new();
        for verdict in self.partitions.values() {
            if let Verdict::Illegal(violation) = verdict {
                marked.extend(violation.marked());
            }
        }
        for anomaly in &self.anomalies {
            marked.extend(anomaly.operations.iter().copied());
        }
        marked
    }

    /// A compact text for people: a summary line, each partition's verdict, each
    /// anomaly with its operations (invoke and completion times, call and outcome).
    pub fn render(&self) -> String {
        let mut text = String::new();
        self.render_summary(&mut text);
        for (partition, verdict) in &self.partitions {
            match verdict {
                Verdict::Ok { explored, .. } => {
                    let _ = writeln!(
                        text,
                        "{partition}: linearizable ({explored} configurations)"
                    );
                }
                Verdict::Unknown { explored, reason } => {
                    let _ = writeln!(
                        text,
                        "{partition}: UNKNOWN after {explored} configurations: {reason}"
                    );
                }
                Verdict::Illegal(violation) => {
                    let _ = writeln!(text, "{partition}: NOT LINEARIZABLE");
                    self.render_violation(&mut text, violation);
                }
            }
        }
        if !self.anomaly_counts.is_empty() {
            self.render_anomalies(&mut text);
        }
        for (partition, unseen) in &self.unseen {
            let examples: Vec<String> = unseen
                .examples
                .iter()
                .map(|index| format!("#{index}"))
                .collect();
            let _ = writeln!(
                text,
                "unseen on {partition}: {} acknowledged sends never read (e.g. {})",
                unseen.count,
                examples.join(", ")
            );
        }
        text
    }

    /// The first line of [`CheckReport::render`]: the counts, and the verdict.
    fn render_summary(&self, text: &mut String) {
        let stats = &self.stats;
        let status = if !self.is_valid() {
            "INVALID"
        } else if self.has_unknown() {
            "UNKNOWN"
        } else {
            "valid"
        };
        let _ = writeln!(
            text,
            "checked {} operations on {} partitions ({} sends, {} polls; {} ok, {} failed, {} indefinite): {status}",
            stats.operations,
            self.partitions.len(),
            stats.sends,
            stats.polls,
            stats.ok,
            stats.failed,
            stats.indefinite
        );
    }

    /// A partition's violation: its explanation, the operations it names, and the end
    /// of the linearizable prefix.
    fn render_violation(&self, text: &mut String, violation: &Violation) {
        let _ = writeln!(text, "  {}", violation.explanation);
        self.render_operation(text, "stuck", violation.operation);
        for &index in &violation.related {
            self.render_operation(text, "related", index);
        }
        let others: Vec<usize> = violation
            .frontier
            .iter()
            .copied()
            .filter(|&index| index != violation.operation)
            .collect();
        for &index in others.iter().take(RENDER_OPERATIONS_MAX) {
            self.render_operation(text, "pending", index);
        }
        if others.len() > RENDER_OPERATIONS_MAX {
            let _ = writeln!(
                text,
                "    ... and {} more pending",
                others.len() - RENDER_OPERATIONS_MAX
            );
        }
        if !violation.prefix.is_empty() {
            let tail_start = violation
                .prefix
                .len()
                .saturating_sub(RENDER_PREFIX_TAIL_MAX);
            let tail: Vec<String> = violation.prefix[tail_start..]
                .iter()
                .map(|index| format!("#{index}"))
                .collect();
            let _ = writeln!(
                text,
                "    linearized first: {} operations, ending {}",
                violation.prefix.len(),
                tail.join(" ")
            );
        }
    }

    /// The anomaly counts by kind, then each anomaly kept with its operations.
    fn render_anomalies(&self, text: &mut String) {
        let counts: Vec<String> = self
            .anomaly_counts
            .iter()
            .map(|(name, count)| format!("{name} {count}"))
            .collect();
        let _ = writeln!(text, "anomalies: {}", counts.join(", "));
        for anomaly in &self.anomalies {
            let _ = writeln!(
                text,
                "  {} on {}: {}",
                anomaly.kind.name(),
                anomaly.partition,
                anomaly.explanation
            );
            for &index in anomaly.operations.iter().take(RENDER_OPERATIONS_MAX) {
                self.render_operation(text, "", index);
            }
            if anomaly.operations.len() > RENDER_OPERATIONS_MAX {
                let _ = writeln!(
                    text,
                    "    ... and {} more operations",
                    anomaly.operations.len() - RENDER_OPERATIONS_MAX
                );
            }
        }
        let kept = self.anomalies.len();
        let total: usize = self.anomaly_counts.values().sum();
        if total > kept {
            let _ = writeln!(text, "  ... {} more anomalies not shown", total - kept);
        }
    }

    /// The operations `render` may print, from the history: those of each violation
    /// (stuck, related, the frontier it lists) and of each anomaly it lists.
    fn named_operations(&self, history: &History) -> BTreeMap<usize, Operation> {
        let mut named = BTreeSet::new();
        for verdict in self.partitions.values() {
            if let Verdict::Illegal(violation) = verdict {
                named.insert(violation.operation);
                named.extend(violation.related.iter().copied());
                named.extend(
                    violation
                        .frontier
                        .iter()
                        .take(RENDER_OPERATIONS_MAX)
                        .copied(),
                );
            }
        }
        for anomaly in &self.anomalies {
            named.extend(
                anomaly
                    .operations
                    .iter()
                    .take(RENDER_OPERATIONS_MAX)
                    .copied(),
            );
        }
        named
            .into_iter()
            .map(|index| (index, history.operations()[index].clone()))
            .collect()
    }

    fn render_operation(&self, text: &mut String, label: &str, index: usize) {
        let label = if label.is_empty() {
            String::new()
        } else {
            format!("{label}: ")
        };
        match self.named.get(&index) {
            Some(operation) => {
                let _ = writeln!(text, "    {label}{operation}");
            }
            None => {
                let _ = writeln!(text, "    {label}#{index}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{ProcessId, Reply};

    fn key(partition: i32) -> PartitionKey {
        PartitionKey {
            topic: "t".into(),
            partition,
        }
    }

    fn ok_send(history: &mut History, partition: i32, value: u64, at: (u64, u64), offset: i64) {
        let index = history.invoke(ProcessId(1), key(partition), Call::Send { value }, at.0);
        history.complete(index, Outcome::Ok(Reply::Sent { offset }), at.1);
    }

    fn ok_poll(
        history: &mut History,
        partition: i32,
        at: (u64, u64),
        offset: i64,
        records: &[(i64, u64)],
    ) {
        let index = history.invoke(ProcessId(2), key(partition), Call::Poll { offset }, at.0);
        history.complete(
            index,
            Outcome::Ok(Reply::Polled {
                records: records.to_vec(),
            }),
            at.1,
        );
    }

    #[test]
    fn a_valid_history() {
        let mut history = History::new();
        ok_send(&mut history, 0, 10, (0, 1), 0);
        ok_send(&mut history, 1, 20, (0, 1), 0);
        ok_poll(&mut history, 0, (2, 3), 0, &[(0, 10)]);
        let report = check_history(&history, &CheckOptions::new());
        assert!(report.is_valid(), "{}", report.render());
        assert!(!report.has_unknown());
        assert!(report.marked().is_empty());
        assert_eq!(
            report.render(),
            "checked 3 operations on 2 partitions (2 sends, 1 polls; 3 ok, 0 failed, 0 indefinite): valid\n\
             t-0: linearizable (2 configurations)\n\
             t-1: linearizable (1 configurations)\n\
             unseen on t-1: 1 acknowledged sends never read (e.g. #1)\n"
        );
        let final_reads = check_history(&history, &CheckOptions::new().final_reads(true));
        assert!(!final_reads.is_valid(), "t-1's send was never read");
    }

    #[test]
    fn an_invalid_history_renders_its_operations() {
        let mut history = History::new();
        ok_send(&mut history, 0, 10, (0, 1), 1);
        ok_send(&mut history, 0, 11, (2, 3), 0);
        ok_poll(&mut history, 0, (4, 5), 0, &[(0, 11), (1, 10)]);
        let report = check_history(&history, &CheckOptions::new());
        assert!(!report.is_valid());
        assert_eq!(report.marked(), BTreeSet::from([0, 1]));
        let text = report.render();
        assert_eq!(
            text,
            "checked 3 operations on 1 partitions (2 sends, 1 polls; 3 ok, 0 failed, 0 indefinite): INVALID\n\
             t-0: NOT LINEARIZABLE\n  \
               send #0 was acknowledged at offset 1, so offset 0 had to be written before it completed at 1; but the record at offset 0 is value 11, whose send #1 was invoked only at 2\n    \
                 stuck: #0 p1 send 10 -> ok offset 1 [0..1]\n    \
                 related: #1 p1 send 11 -> ok offset 0 [2..3]\n\
             anomalies: nonmonotonic-send 1\n  \
               nonmonotonic-send on t-0: send #1 (process 1) was acknowledged at offset 0, not above offset 1 of the process's previous send #0\n    \
                 #0 p1 send 10 -> ok offset 1 [0..1]\n    \
                 #1 p1 send 11 -> ok offset 0 [2..3]\n"
        );
    }

    #[test]
    fn an_exhausted_budget_is_unknown_not_valid() {
        let mut history = History::new();
        for offset in 0..10 {
            let at = 2 * offset as u64;
            ok_send(&mut history, 0, 100 + offset as u64, (at, at + 1), offset);
        }
        let report = check_history(&history, &CheckOptions::new().configurations_max(3));
        assert!(report.has_unknown());
        assert!(report.is_valid(), "unknown is not invalid");
        assert!(
            report
                .render()
                .contains("t-0: UNKNOWN after 3 configurations"),
            "{}",
            report.render()
        );
        assert!(report.render().starts_with("checked 10 operations"));
    }

    #[test]
    #[should_panic(expected = "unique values")]
    fn one_value_sent_to_two_partitions_is_a_workload_bug() {
        let mut history = History::new();
        ok_send(&mut history, 0, 10, (0, 1), 0);
        ok_send(&mut history, 1, 10, (0, 1), 0);
        check_history(&history, &CheckOptions::new());
    }
}
