//! Jepsen's Kafka anomalies: named, explained faults found by looking at a whole
//! history at once, without a search.
//!
//! Linearizability ([`crate::linearizability`]) says whether a history is allowed. These
//! checks say *what kind* of wrong it is, in the words Jepsen's Kafka analyses use, and
//! catch a few things linearizability cannot see (a client that skips records between
//! its polls, a write nobody ever read). Each [`Anomaly`] names its partition, the
//! operations involved and a sentence explaining it.
//!
//! Definitions, for one partition. An *observation* is an `Ok` reply's statement that
//! value `v` is at offset `o`: an acknowledged send states it of its own value, a poll
//! of each record it returned. Failed and indefinite operations observe nothing.
//!
//! - **inconsistent offsets**: one offset observed with two or more values.
//! - **duplicate**: one value observed at two or more offsets: the write happened twice
//!   (a retried produce written by both attempts, say). Values are unique per history.
//! - **lost write**: an acknowledged send whose value no poll ever returned, although
//!   some `Ok` poll *read across* its acknowledged offset `o`: it asked for an offset at
//!   or below `o` and returned a record at or beyond `o`, so it saw what the log held at
//!   `o`, and that was not this value. (A poll that merely returned a higher offset is
//!   not enough: polls may start anywhere, and one starting past `o` proves nothing
//!   about `o`.) With [`AnomalyOptions::final_reads`], which promises the history ends
//!   with complete reads of every partition, an acknowledged send never read at all is
//!   a lost write.
//! - **unseen**: acknowledged sends whose value no poll returned. Not an error by
//!   itself (nobody may have looked), so it is a count with examples per partition,
//!   [`Unseen`]; with `final_reads` each one is also a lost write.
//! - **poll-skip** and **nonmonotonic poll**, from a consumer's *position*: a poll
//!   starts at its requested offset; each record it returns should be at the position,
//!   after which the position is that record's offset + 1. A record past the position
//!   skips offsets (Odradek's offsets are dense: no compaction, no transaction markers
//!   yet, so every skipped offset held a record); a record before it goes backwards
//!   (offsets within a poll not strictly increasing, or a first record below the
//!   requested offset). Both are checked within every poll. With
//!   [`AnomalyOptions::sequential_polls`] (the default) they are also checked *between*
//!   polls: a process is one consumer that polls each partition from where its previous
//!   `Ok` poll on it left off (the offset after its last record, or the same requested
//!   offset if it returned nothing). Asking for more skips, asking for less goes back.
//!   A failed or indefinite poll in between resets the position, since a consumer may
//!   legitimately reset after an error (`OFFSET_OUT_OF_RANGE`, a timeout). A workload
//!   whose consumers seek at will turns `sequential_polls` off.
//! - **nonmonotonic send**: a process's `Ok` send to a partition acknowledged at an
//!   offset not above that of its previous `Ok` send to the partition. One process has
//!   one operation in flight, so its sends are ordered in real time and a log must
//!   give them increasing offsets.
//! - **phantom**: a polled value no send on that partition wrote (`Ok` or indefinite),
//!   and **read of failed send**: a polled value whose send failed, so was certainly
//!   never written.
//!
//! References: Jepsen's Kafka workload (jepsen.tests.kafka) and its analyses of Redpanda
//! (2022) and Bufstream (2024) name lost write, duplicate, poll-skip, nonmonotonic poll,
//! nonmonotonic send, inconsistent offsets and unseen; the definitions above are this
//! project's, adapted to explicit-offset polls.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{Call, History, MARKER, Operation, Outcome, PartitionKey, ProcessId, Reply};

/// Default cap on the anomalies kept per kind (all are counted).
pub const ANOMALIES_PER_KIND_MAX_DEFAULT: usize = 20;
/// Default number of unseen sends listed as examples per partition.
pub const UNSEEN_EXAMPLES_MAX_DEFAULT: usize = 5;

/// What the checks may assume about the workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnomalyOptions {
    /// The history ends with complete reads of every partition, after every write had
    /// settled: an acknowledged send never read is then a lost write.
    pub final_reads: bool,
    /// Each process polls each partition from where its previous `Ok` poll left off,
    /// so skips and rewinds between polls are anomalies.
    pub sequential_polls: bool,
    /// At most this many anomalies of each kind are kept; [`Anomalies::counts`] has
    /// them all.
    pub anomalies_per_kind_max: usize,
    /// At most this many unseen sends are listed per partition.
    pub unseen_examples_max: usize,
    /// The broker writes control records of its own, which polls record as
    /// [`MARKER`]: they take offsets (so count for inconsistent offsets and positions)
    /// and are no client's value (so never a duplicate or a phantom).
    pub broker_markers: bool,
}

impl Default for AnomalyOptions {
    fn default() -> AnomalyOptions {
        AnomalyOptions {
            final_reads: false,
            sequential_polls: true,
            anomalies_per_kind_max: ANOMALIES_PER_KIND_MAX_DEFAULT,
            unseen_examples_max: UNSEEN_EXAMPLES_MAX_DEFAULT,
            broker_markers: false,
        }
    }
}

/// One anomaly: what kind, where, who, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anomaly {
    /// What went wrong, with its particulars.
    pub kind: AnomalyKind,
    /// The partition it happened on.
    pub partition: PartitionKey,
    /// The operations involved, sorted by index.
    pub operations: Vec<usize>,
    /// A sentence explaining it.
    pub explanation: String,
}

/// The kinds of anomaly, with what identifies each occurrence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnomalyKind {
    /// An acknowledged value that should have been read and never was.
    LostWrite {
        /// The value.
        value: u64,
        /// The offset it was acknowledged at.
        offset: i64,
    },
    /// A value at more than one offset.
    Duplicate {
        /// The value.
        value: u64,
        /// The offsets it was observed at, ascending.
        offsets: Vec<i64>,
    },
    /// A consumer's position jumped forward over records.
    PollSkip {
        /// The consumer.
        process: ProcessId,
        /// Where it should have continued.
        expected_offset: i64,
        /// Where it did.
        offset: i64,
        /// Between two polls (`true`) or within one (`false`).
        between_polls: bool,
    },
    /// A consumer's position went backwards.
    NonmonotonicPoll {
        /// The consumer.
        process: ProcessId,
        /// Where it should have continued.
        expected_offset: i64,
        /// Where it did.
        offset: i64,
        /// Between two polls (`true`) or within one (`false`).
        between_polls: bool,
    },
    /// A process's later send acknowledged at an offset not above its earlier one.
    NonmonotonicSend {
        /// The producer.
        process: ProcessId,
        /// The offset of its previous `Ok` send.
        previous_offset: i64,
        /// The offset of this one.
        offset: i64,
    },
    /// One offset, several values.
    InconsistentOffsets {
        /// The offset.
        offset: i64,
        /// The values observed there, ascending.
        values: Vec<u64>,
    },
    /// A polled value that no send on the partition wrote.
    Phantom {
        /// The value.
        value: u64,
        /// The first offset it was read at.
        offset: i64,
    },
    /// A polled value whose send failed.
    ReadOfFailedSend {
        /// The value.
        value: u64,
        /// The first offset it was read at.
        offset: i64,
    },
}

impl AnomalyKind {
    /// The kind's name as Jepsen spells it (`lost-write`, `poll-skip`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            AnomalyKind::LostWrite { .. } => "lost-write",
            AnomalyKind::Duplicate { .. } => "duplicate",
            AnomalyKind::PollSkip { .. } => "poll-skip",
            AnomalyKind::NonmonotonicPoll { .. } => "nonmonotonic-poll",
            AnomalyKind::NonmonotonicSend { .. } => "nonmonotonic-send",
            AnomalyKind::InconsistentOffsets { .. } => "inconsistent-offsets",
            AnomalyKind::Phantom { .. } => "phantom",
            AnomalyKind::ReadOfFailedSend { .. } => "read-of-failed-send",
        }
    }
}

/// Acknowledged sends no poll returned, on one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unseen {
    /// How many.
    pub count: usize,
    /// The first few, by operation index.
    pub examples: Vec<usize>,
}

/// Everything the anomaly checks found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Anomalies {
    /// The anomalies kept (at most [`AnomalyOptions::anomalies_per_kind_max`] per
    /// kind), by partition, then kind, then operation.
    pub found: Vec<Anomaly>,
    /// How many of each kind there were, by name, including those not kept.
    pub counts: BTreeMap<&'static str, usize>,
    /// Unseen acknowledged sends per partition (partitions with none are left out).
    pub unseen: BTreeMap<PartitionKey, Unseen>,
}

impl Anomalies {
    /// Whether no anomaly was found (unseen sends do not count).
    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    fn record(&mut self, anomaly: Anomaly, per_kind_max: usize) {
        let count = self.counts.entry(anomaly.kind.name()).or_insert(0);
        *count += 1;
        if *count <= per_kind_max {
            self.found.push(anomaly);
        }
    }
}

/// Runs every check over the whole history.
pub fn find_anomalies(history: &History, options: &AnomalyOptions) -> Anomalies {
    let mut anomalies = Anomalies::default();
    // Where each value was sent, over all partitions, to explain misrouted reads.
    let mut sent_to: BTreeMap<u64, &Operation> = BTreeMap::new();
    for operation in history.operations() {
        if let Call::Send { value } = operation.call {
            sent_to.insert(value, operation);
        }
    }
    for partition in history.partitions() {
        let operations: Vec<&Operation> = history.on_partition(&partition).collect();
        let mut found = PartitionChecks {
            partition: &partition,
            operations: &operations,
            sent_to: &sent_to,
            options,
            anomalies: Vec::new(),
        }
        .run(&mut anomalies.unseen);
        found.sort_by_key(|anomaly| (kind_rank(&anomaly.kind), anomaly.operations.clone()));
        for anomaly in found {
            anomalies.record(anomaly, options.anomalies_per_kind_max);
        }
    }
    anomalies
}

/// The order kinds are reported in: the worst first.
fn kind_rank(kind: &AnomalyKind) -> u8 {
    match kind {
        AnomalyKind::LostWrite { .. } => 0,
        AnomalyKind::Duplicate { .. } => 1,
        AnomalyKind::InconsistentOffsets { .. } => 2,
        AnomalyKind::Phantom { .. } => 3,
        AnomalyKind::ReadOfFailedSend { .. } => 4,
        AnomalyKind::PollSkip { .. } => 5,
        AnomalyKind::NonmonotonicPoll { .. } => 6,
        AnomalyKind::NonmonotonicSend { .. } => 7,
    }
}

/// Who observed a (value, offset) pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Observer {
    /// The send of the value was acknowledged at the offset.
    Acknowledged(usize),
    /// A poll returned the pair.
    Read(usize),
}

impl Observer {
    fn index(self) -> usize {
        match self {
            Observer::Acknowledged(index) | Observer::Read(index) => index,
        }
    }
}

/// "offset 6" or "offsets 6 to 9".
fn offsets(first: i64, last: i64) -> String {
    if first == last {
        format!("offset {first}")
    } else {
        format!("offsets {first} to {last}")
    }
}

/// "acknowledged to send #3; read by polls #7, #9".
fn describe_observers(observers: &BTreeSet<Observer>) -> String {
    let acknowledged: Vec<String> = observers
        .iter()
        .filter_map(|observer| match observer {
            Observer::Acknowledged(index) => Some(format!("#{index}")),
            Observer::Read(_) => None,
        })
        .collect();
    let read: Vec<String> = observers
        .iter()
        .filter_map(|observer| match observer {
            Observer::Read(index) => Some(format!("#{index}")),
            Observer::Acknowledged(_) => None,
        })
        .collect();
    let mut parts = Vec::new();
    if !acknowledged.is_empty() {
        parts.push(format!("acknowledged to send {}", acknowledged.join(", ")));
    }
    if !read.is_empty() {
        let polls = if read.len() == 1 { "poll" } else { "polls" };
        parts.push(format!("read by {polls} {}", read.join(", ")));
    }
    parts.join("; ")
}

/// A span of `spans` (sorted, from [`PartitionChecks::read_spans`]) that reaches
/// across `offset`, if any.
fn covering(spans: &[(i64, i64, usize)], offset: i64) -> Option<(i64, i64, usize)> {
    // Spans starting at or before `offset`; any reaching it will do. Linear in
    // the worst case, but only called for sends nobody read.
    let starting = spans.partition_point(|&(start, _, _)| start <= offset);
    spans[..starting]
        .iter()
        .find(|&&(_, end, _)| end >= offset)
        .copied()
}

struct PartitionChecks<'a> {
    partition: &'a PartitionKey,
    operations: &'a [&'a Operation],
    sent_to: &'a BTreeMap<u64, &'a Operation>,
    options: &'a AnomalyOptions,
    anomalies: Vec<Anomaly>,
}

impl PartitionChecks<'_> {
    fn run(mut self, unseen: &mut BTreeMap<PartitionKey, Unseen>) -> Vec<Anomaly> {
        // Observations, both ways round.
        let mut at_offset: BTreeMap<i64, BTreeMap<u64, BTreeSet<Observer>>> = BTreeMap::new();
        let mut of_value: BTreeMap<u64, BTreeMap<i64, BTreeSet<Observer>>> = BTreeMap::new();
        let markers = self.options.broker_markers;
        let mut observe = |offset: i64, value: u64, observer: Observer| {
            at_offset
                .entry(offset)
                .or_default()
                .entry(value)
                .or_default()
                .insert(observer);
            if markers && value == MARKER {
                return;
            }
            of_value
                .entry(value)
                .or_default()
                .entry(offset)
                .or_default()
                .insert(observer);
        };
        for operation in self.operations {
            match (&operation.call, &operation.outcome) {
                (&Call::Send { value }, Some(Outcome::Ok(Reply::Sent { offset }))) => {
                    observe(*offset, value, Observer::Acknowledged(operation.index));
                }
                (Call::Poll { .. }, Some(Outcome::Ok(Reply::Polled { records }))) => {
                    for &(offset, value) in records {
                        observe(offset, value, Observer::Read(operation.index));
                    }
                }
                _ => {}
            }
        }

        self.inconsistent_offsets(&at_offset);
        self.duplicates(&of_value);
        self.phantoms(&of_value);
        self.lost_and_unseen(&of_value, unseen);
        self.positions();
        self.nonmonotonic_sends();
        self.anomalies
    }

    fn push(
        &mut self,
        kind: AnomalyKind,
        operations: impl IntoIterator<Item = usize>,
        explanation: String,
    ) {
        let operations: BTreeSet<usize> = operations.into_iter().collect();
        self.anomalies.push(Anomaly {
            kind,
            partition: self.partition.clone(),
            operations: operations.into_iter().collect(),
            explanation,
        });
    }

    fn inconsistent_offsets(
        &mut self,
        at_offset: &BTreeMap<i64, BTreeMap<u64, BTreeSet<Observer>>>,
    ) {
        for (&offset, values) in at_offset {
            if values.len() < 2 {
                continue;
            }
            let described: Vec<String> = values
                .iter()
                .map(|(value, observers)| format!("{value} ({})", describe_observers(observers)))
                .collect();
            self.push(
                AnomalyKind::InconsistentOffsets {
                    offset,
                    values: values.keys().copied().collect(),
                },
                values.values().flatten().map(|observer| observer.index()),
                format!(
                    "offset {offset} of {} was seen with {} values: {}",
                    self.partition,
                    values.len(),
                    described.join(", ")
                ),
            );
        }
    }

    fn duplicates(&mut self, of_value: &BTreeMap<u64, BTreeMap<i64, BTreeSet<Observer>>>) {
        for (&value, offsets) in of_value {
            if offsets.len() < 2 {
                continue;
            }
            let described: Vec<String> = offsets
                .iter()
                .map(|(offset, observers)| format!("{offset} ({})", describe_observers(observers)))
                .collect();
            self.push(
                AnomalyKind::Duplicate {
                    value,
                    offsets: offsets.keys().copied().collect(),
                },
                offsets.values().flatten().map(|observer| observer.index()),
                format!(
                    "value {value} is at {} offsets of {}: {}; one send was written more than once",
                    offsets.len(),
                    self.partition,
                    described.join(", ")
                ),
            );
        }
    }

    fn phantoms(&mut self, of_value: &BTreeMap<u64, BTreeMap<i64, BTreeSet<Observer>>>) {
        for (&value, offsets) in of_value {
            let readers: BTreeSet<usize> = offsets
                .values()
                .flatten()
                .filter_map(|observer| match observer {
                    Observer::Read(index) => Some(*index),
                    Observer::Acknowledged(_) => None,
                })
                .collect();
            let Some(&first_reader) = readers.first() else {
                continue;
            };
            let offset = *offsets.keys().next().expect("observed somewhere");
            let send = self.sent_to.get(&value);
            match send {
                Some(send) if &send.partition == self.partition => {
                    if matches!(send.outcome, Some(Outcome::Fail(_))) {
                        self.push(
                            AnomalyKind::ReadOfFailedSend { value, offset },
                            readers.iter().copied().chain([send.index]),
                            format!(
                                "poll #{first_reader} read value {value} at offset {offset}, but its send #{} failed, so it was certainly never written",
                                send.index
                            ),
                        );
                    }
                }
                _ => {
                    let elsewhere = match send {
                        Some(send) => format!(" (#{} sent it to {})", send.index, send.partition),
                        None => String::new(),
                    };
                    self.push(
                        AnomalyKind::Phantom { value, offset },
                        readers.iter().copied(),
                        format!(
                            "poll #{first_reader} read value {value} at offset {offset}, but no send on {} wrote it{elsewhere}",
                            self.partition
                        ),
                    );
                }
            }
        }
    }

    /// Lost writes (acknowledged sends no poll returned, though a poll read across
    /// their offset, or the history ends with final reads), and the count of
    /// acknowledged sends never read, into `unseen`.
    fn lost_and_unseen(
        &mut self,
        of_value: &BTreeMap<u64, BTreeMap<i64, BTreeSet<Observer>>>,
        unseen: &mut BTreeMap<PartitionKey, Unseen>,
    ) {
        let spans = self.read_spans();
        let mut never_read = Unseen::default();
        for operation in self.operations {
            let (Call::Send { value }, Some(Outcome::Ok(Reply::Sent { offset }))) =
                (&operation.call, &operation.outcome)
            else {
                continue;
            };
            let read = of_value.get(value).is_some_and(|offsets| {
                offsets
                    .values()
                    .flatten()
                    .any(|observer| matches!(observer, Observer::Read(_)))
            });
            if read {
                continue;
            }
            never_read.count += 1;
            if never_read.examples.len() < self.options.unseen_examples_max {
                never_read.examples.push(operation.index);
            }
            self.lost_write(operation.index, *value, *offset, covering(&spans, *offset));
        }
        if never_read.count > 0 {
            unseen.insert(self.partition.clone(), never_read);
        }
    }

    /// The spans polls read across, `(requested, last returned, poll)`, sorted.
    fn read_spans(&self) -> Vec<(i64, i64, usize)> {
        let mut spans: Vec<(i64, i64, usize)> = Vec::new();
        for operation in self.operations {
            if let (Call::Poll { offset }, Some(Outcome::Ok(Reply::Polled { records }))) =
                (&operation.call, &operation.outcome)
                && let Some(last) = records.iter().map(|(offset, _)| *offset).max()
                && last >= *offset
            {
                spans.push((*offset, last, operation.index));
            }
        }
        spans.sort_unstable();
        spans
    }

    /// Reports send `index` of `value`, acknowledged at `offset` and never read, as a
    /// lost write if a poll read across its offset (`covered`, the span) or the
    /// history ends with final reads.
    fn lost_write(
        &mut self,
        index: usize,
        value: u64,
        offset: i64,
        covered: Option<(i64, i64, usize)>,
    ) {
        let kind = AnomalyKind::LostWrite { value, offset };
        if let Some((start, end, poll)) = covered {
            self.push(
                kind,
                [index, poll],
                format!(
                    "send #{index} of value {value} was acknowledged at offset {offset}, but no poll ever returned it, though poll #{poll} read across offset {offset} ({})",
                    offsets(start, end)
                ),
            );
        } else if self.options.final_reads {
            self.push(
                kind,
                [index],
                format!(
                    "send #{index} of value {value} was acknowledged at offset {offset}, but no poll ever returned it, and the history ends with complete reads of {}",
                    self.partition
                ),
            );
        }
    }

    /// Poll-skip and nonmonotonic poll, within polls and (with `sequential_polls`)
    /// between a process's successive polls.
    fn positions(&mut self) {
        // Per process, where its next poll should start, and which poll left it there.
        let mut positions: BTreeMap<ProcessId, (i64, usize)> = BTreeMap::new();
        for operation in self.operations {
            let Call::Poll { offset: requested } = operation.call else {
                continue;
            };
            let index = operation.index;
            let process = operation.process;
            let Some(Outcome::Ok(Reply::Polled { records })) = &operation.outcome else {
                // A failed or indefinite poll: the consumer may reset its position.
                positions.remove(&process);
                continue;
            };
            if self.options.sequential_polls
                && let Some(&(expected, previous)) = positions.get(&process)
                && requested != expected
            {
                self.moved_between_polls(operation, requested, (expected, previous));
            }
            let position = self.positions_within_poll(operation, requested, records);
            positions.insert(process, (position, index));
        }
    }

    /// Poll `operation` asked for offset `requested`, but its process's previous poll
    /// left off elsewhere (`left_off`: the offset, and that poll): a skip forward, or
    /// a step back.
    fn moved_between_polls(
        &mut self,
        operation: &Operation,
        requested: i64,
        left_off: (i64, usize),
    ) {
        let (expected, previous) = left_off;
        let index = operation.index;
        let process = operation.process;
        let between = format!(
            "poll #{index} (process {}) asked for offset {requested}, but the process's previous poll #{previous} left off at offset {expected}",
            process.0
        );
        if requested > expected {
            self.push(
                AnomalyKind::PollSkip {
                    process,
                    expected_offset: expected,
                    offset: requested,
                    between_polls: true,
                },
                [previous, index],
                format!(
                    "{between}: {} skipped (a workload that seeks on purpose turns sequential_polls off)",
                    offsets(expected, requested - 1)
                ),
            );
        } else {
            self.push(
                AnomalyKind::NonmonotonicPoll {
                    process,
                    expected_offset: expected,
                    offset: requested,
                    between_polls: true,
                },
                [previous, index],
                format!(
                    "{between}: the consumer went back (a workload that seeks on purpose turns sequential_polls off)"
                ),
            );
        }
    }

    /// The first skip and the first step back among the `records` poll `operation`
    /// returned from offset `requested`; returns where the poll left off.
    fn positions_within_poll(
        &mut self,
        operation: &Operation,
        requested: i64,
        records: &[(i64, u64)],
    ) -> i64 {
        let index = operation.index;
        let process = operation.process;
        let mut position = requested;
        let mut skipped = false;
        let mut went_back = false;
        for &(offset, _) in records {
            if offset > position && !skipped {
                skipped = true;
                self.push(
                    AnomalyKind::PollSkip {
                        process,
                        expected_offset: position,
                        offset,
                        between_polls: false,
                    },
                    [index],
                    format!(
                        "poll #{index} (process {}) from offset {requested} returned offset {offset} where offset {position} came next: {} skipped within one poll",
                        process.0,
                        offsets(position, offset - 1)
                    ),
                );
            } else if offset < position && !went_back {
                went_back = true;
                self.push(
                    AnomalyKind::NonmonotonicPoll {
                        process,
                        expected_offset: position,
                        offset,
                        between_polls: false,
                    },
                    [index],
                    format!(
                        "poll #{index} (process {}) from offset {requested} returned offset {offset} where offset {position} came next: offsets within a poll must strictly increase from the requested one",
                        process.0
                    ),
                );
            }
            position = offset + 1;
        }
        position
    }

    fn nonmonotonic_sends(&mut self) {
        let mut previous: BTreeMap<ProcessId, (i64, usize)> = BTreeMap::new();
        for operation in self.operations {
            let (Call::Send { .. }, Some(Outcome::Ok(Reply::Sent { offset }))) =
                (&operation.call, &operation.outcome)
            else {
                continue;
            };
            let process = operation.process;
            if let Some(&(previous_offset, previous_index)) = previous.get(&process)
                && *offset <= previous_offset
            {
                self.push(
                    AnomalyKind::NonmonotonicSend {
                        process,
                        previous_offset,
                        offset: *offset,
                    },
                    [previous_index, operation.index],
                    format!(
                        "send #{} (process {}) was acknowledged at offset {offset}, not above offset {previous_offset} of the process's previous send #{previous_index}",
                        operation.index, process.0
                    ),
                );
            }
            previous.insert(process, (*offset, operation.index));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(partition: i32) -> PartitionKey {
        PartitionKey {
            topic: "t".into(),
            partition,
        }
    }

    /// Builds histories on partition 0 (unless told), with one time unit per step.
    #[derive(Default)]
    struct Builder {
        history: History,
        now: u64,
    }

    impl Builder {
        fn tick(&mut self) -> u64 {
            self.now += 1;
            self.now
        }

        fn complete(&mut self, index: usize, outcome: Outcome) -> usize {
            let at = self.tick();
            self.history.complete(index, outcome, at);
            index
        }

        fn send_on(&mut self, partition: i32, process: u64, value: u64, outcome: Outcome) -> usize {
            let at = self.tick();
            let index =
                self.history
                    .invoke(ProcessId(process), key(partition), Call::Send { value }, at);
            self.complete(index, outcome)
        }

        fn send(&mut self, process: u64, value: u64, offset: i64) -> usize {
            self.send_on(0, process, value, Outcome::Ok(Reply::Sent { offset }))
        }

        fn poll_with(&mut self, process: u64, offset: i64, outcome: Outcome) -> usize {
            let at = self.tick();
            let index = self
                .history
                .invoke(ProcessId(process), key(0), Call::Poll { offset }, at);
            self.complete(index, outcome)
        }

        fn poll(&mut self, process: u64, offset: i64, records: &[(i64, u64)]) -> usize {
            self.poll_with(
                process,
                offset,
                Outcome::Ok(Reply::Polled {
                    records: records.to_vec(),
                }),
            )
        }

        fn find(&self, options: &AnomalyOptions) -> Anomalies {
            find_anomalies(&self.history, options)
        }

        fn names(&self) -> Vec<&'static str> {
            self.find(&AnomalyOptions::default())
                .found
                .iter()
                .map(|anomaly| anomaly.kind.name())
                .collect()
        }
    }

    fn only(anomalies: &Anomalies) -> &Anomaly {
        assert_eq!(anomalies.found.len(), 1, "{:#?}", anomalies.found);
        &anomalies.found[0]
    }

    #[test]
    fn broker_markers_are_neither_duplicates_nor_phantoms_but_still_take_offsets() {
        let mut h = Builder::default();
        h.send(1, 10, 1);
        h.poll(2, 0, &[(0, MARKER), (1, 10), (2, MARKER)]);
        h.poll(3, 0, &[(0, MARKER), (1, 10)]);
        let markers = AnomalyOptions {
            broker_markers: true,
            ..AnomalyOptions::default()
        };
        assert!(h.find(&markers).is_empty(), "{:?}", h.find(&markers));
        let without = h.find(&AnomalyOptions::default());
        assert!(!without.is_empty());
        // A marker read where a record was acknowledged is still inconsistent.
        h.poll(4, 1, &[(1, MARKER)]);
        assert!(
            h.find(&markers)
                .found
                .iter()
                .any(|a| matches!(a.kind, AnomalyKind::InconsistentOffsets { .. }))
        );
    }

    #[test]
    fn a_clean_history_has_no_anomalies() {
        let mut h = Builder::default();
        h.send(1, 10, 0);
        h.send(1, 11, 1);
        h.poll(2, 0, &[(0, 10)]);
        h.poll(2, 1, &[(1, 11)]);
        h.poll(2, 2, &[]);
        h.poll(2, 2, &[]);
        let anomalies = h.find(&AnomalyOptions {
            final_reads: true,
            ..AnomalyOptions::default()
        });
        assert!(anomalies.is_empty(), "{:#?}", anomalies.found);
        assert!(anomalies.unseen.is_empty());
    }

    #[test]
    fn lost_write_when_a_poll_read_across_its_offset() {
        let mut h = Builder::default();
        let lost = h.send(1, 10, 0);
        h.send(1, 11, 1);
        let poll = h.poll(2, 0, &[(0, 11), (1, 11)]);
        let anomalies = h.find(&AnomalyOptions::default());
        let lost_write = anomalies
            .found
            .iter()
            .find(|anomaly| anomaly.kind.name() == "lost-write")
            .expect("a lost write");
        assert_eq!(
            lost_write.kind,
            AnomalyKind::LostWrite {
                value: 10,
                offset: 0
            }
        );
        assert_eq!(lost_write.operations, vec![lost, poll]);
        assert!(
            lost_write.explanation.contains("read across offset 0"),
            "{}",
            lost_write.explanation
        );
    }

    #[test]
    fn no_lost_write_when_no_poll_read_across_it() {
        let mut h = Builder::default();
        let unseen = h.send(1, 10, 0);
        h.send(1, 11, 1);
        // Starts past offset 0: proves nothing about it.
        h.poll(2, 1, &[(1, 11)]);
        let anomalies = h.find(&AnomalyOptions::default());
        assert!(anomalies.is_empty(), "{:#?}", anomalies.found);
        assert_eq!(
            anomalies.unseen[&key(0)],
            Unseen {
                count: 1,
                examples: vec![unseen]
            }
        );
    }

    #[test]
    fn with_final_reads_an_unseen_write_is_lost() {
        let mut h = Builder::default();
        let lost = h.send(1, 10, 0);
        h.send(1, 11, 1);
        h.poll(2, 1, &[(1, 11)]);
        let anomalies = h.find(&AnomalyOptions {
            final_reads: true,
            ..AnomalyOptions::default()
        });
        let anomaly = only(&anomalies);
        assert_eq!(
            anomaly.kind,
            AnomalyKind::LostWrite {
                value: 10,
                offset: 0
            }
        );
        assert_eq!(anomaly.operations, vec![lost]);
        assert!(
            anomaly.explanation.contains("complete reads of t-0"),
            "{}",
            anomaly.explanation
        );
    }

    #[test]
    fn indefinite_sends_are_never_lost_or_unseen() {
        let mut h = Builder::default();
        h.send_on(0, 1, 10, Outcome::Indefinite("timeout".into()));
        h.send(1, 11, 0);
        h.poll(2, 0, &[(0, 11)]);
        let anomalies = h.find(&AnomalyOptions {
            final_reads: true,
            ..AnomalyOptions::default()
        });
        assert!(anomalies.is_empty(), "{:#?}", anomalies.found);
        assert!(anomalies.unseen.is_empty());
    }

    #[test]
    fn a_duplicate_after_a_retry() {
        let mut h = Builder::default();
        // A timed-out attempt that was written, and the log holds it twice.
        let first = h.send_on(0, 1, 10, Outcome::Indefinite("timeout".into()));
        let poll = h.poll(2, 0, &[(0, 10), (1, 10)]);
        let anomaly = only(&h.find(&AnomalyOptions::default())).clone();
        assert_eq!(
            anomaly.kind,
            AnomalyKind::Duplicate {
                value: 10,
                offsets: vec![0, 1]
            }
        );
        assert_eq!(anomaly.operations, vec![poll]);
        assert!(!anomaly.operations.contains(&first));
        assert!(
            anomaly.explanation.contains("more than once"),
            "{}",
            anomaly.explanation
        );
    }

    #[test]
    fn a_duplicate_between_an_acknowledgement_and_a_poll() {
        let mut h = Builder::default();
        let send = h.send(1, 10, 0);
        h.send(1, 11, 1);
        let poll = h.poll(2, 1, &[(1, 10)]);
        let names = h.names();
        assert!(names.contains(&"duplicate"), "{names:?}");
        assert!(names.contains(&"inconsistent-offsets"), "{names:?}");
        let anomalies = h.find(&AnomalyOptions::default());
        let duplicate = anomalies
            .found
            .iter()
            .find(|anomaly| anomaly.kind.name() == "duplicate")
            .expect("found");
        assert_eq!(duplicate.operations, vec![send, poll]);
        assert!(
            duplicate
                .explanation
                .contains("0 (acknowledged to send #0), 1 (read by poll #2)"),
            "{}",
            duplicate.explanation
        );
    }

    #[test]
    fn inconsistent_offsets() {
        let mut h = Builder::default();
        let a = h.send(1, 10, 0);
        h.send_on(0, 3, 11, Outcome::Indefinite("timeout".into()));
        let p = h.poll(2, 0, &[(0, 11)]);
        let q = h.poll(4, 0, &[(0, 10)]);
        let anomalies = h.find(&AnomalyOptions::default());
        let anomaly = only(&anomalies);
        assert_eq!(
            anomaly.kind,
            AnomalyKind::InconsistentOffsets {
                offset: 0,
                values: vec![10, 11]
            }
        );
        assert_eq!(anomaly.operations, vec![a, p, q]);
        assert_eq!(
            anomaly.explanation,
            "offset 0 of t-0 was seen with 2 values: 10 (acknowledged to send #0; read by poll #3), 11 (read by poll #2)"
        );
    }

    #[test]
    fn poll_skip_within_a_poll() {
        let mut h = Builder::default();
        for (offset, value) in [(0, 10), (1, 11), (2, 12)] {
            h.send(1, value, offset);
        }
        let gap = h.poll(2, 0, &[(0, 10), (2, 12)]);
        let late_start = h.poll(3, 0, &[(1, 11)]);
        let anomalies = h.find(&AnomalyOptions::default());
        let skips: Vec<(&AnomalyKind, &Vec<usize>)> = anomalies
            .found
            .iter()
            .map(|anomaly| (&anomaly.kind, &anomaly.operations))
            .collect();
        assert_eq!(
            skips,
            vec![
                (
                    &AnomalyKind::PollSkip {
                        process: ProcessId(2),
                        expected_offset: 1,
                        offset: 2,
                        between_polls: false
                    },
                    &vec![gap]
                ),
                (
                    &AnomalyKind::PollSkip {
                        process: ProcessId(3),
                        expected_offset: 0,
                        offset: 1,
                        between_polls: false
                    },
                    &vec![late_start]
                ),
            ]
        );
    }

    #[test]
    fn poll_skip_between_polls_unless_reset_or_turned_off() {
        let mut h = Builder::default();
        for (offset, value) in [(0, 10), (1, 11), (2, 12), (3, 13)] {
            h.send(1, value, offset);
        }
        let first = h.poll(2, 0, &[(0, 10), (1, 11)]);
        let second = h.poll(2, 3, &[(3, 13)]);
        let anomaly = only(&h.find(&AnomalyOptions::default())).clone();
        assert_eq!(
            anomaly.kind,
            AnomalyKind::PollSkip {
                process: ProcessId(2),
                expected_offset: 2,
                offset: 3,
                between_polls: true
            }
        );
        assert_eq!(anomaly.operations, vec![first, second]);
        let seeking = AnomalyOptions {
            sequential_polls: false,
            ..AnomalyOptions::default()
        };
        assert!(h.find(&seeking).is_empty());

        // A failed poll in between lets the consumer reset.
        let mut h = Builder::default();
        for (offset, value) in [(0, 10), (1, 11), (2, 12), (3, 13)] {
            h.send(1, value, offset);
        }
        h.poll(2, 0, &[(0, 10)]);
        h.poll_with(2, 9, Outcome::Fail("OFFSET_OUT_OF_RANGE".into()));
        h.poll(2, 3, &[(3, 13)]);
        assert!(h.find(&AnomalyOptions::default()).is_empty());
    }

    #[test]
    fn an_empty_poll_leaves_the_position_where_it_was() {
        let mut h = Builder::default();
        h.send(1, 10, 0);
        h.poll(2, 0, &[]);
        h.poll(2, 0, &[(0, 10)]);
        h.poll(2, 1, &[]);
        assert!(h.find(&AnomalyOptions::default()).is_empty());
    }

    #[test]
    fn nonmonotonic_poll_within_and_between_polls() {
        let mut h = Builder::default();
        for (offset, value) in [(0, 10), (1, 11), (2, 12)] {
            h.send(1, value, offset);
        }
        let reordered = h.poll(2, 0, &[(1, 11), (0, 10)]);
        assert_eq!(
            h.names(),
            vec!["poll-skip", "nonmonotonic-poll"],
            "starting at 1 skips 0, then 0 goes back"
        );
        let anomalies = h.find(&AnomalyOptions::default());
        assert_eq!(
            anomalies.found[1].kind,
            AnomalyKind::NonmonotonicPoll {
                process: ProcessId(2),
                expected_offset: 2,
                offset: 0,
                between_polls: false
            }
        );
        assert_eq!(anomalies.found[1].operations, vec![reordered]);

        let mut h = Builder::default();
        for (offset, value) in [(0, 10), (1, 11), (2, 12)] {
            h.send(1, value, offset);
        }
        let repeated = h.poll(2, 0, &[(0, 10), (0, 10)]);
        assert_eq!(h.names(), vec!["nonmonotonic-poll"], "{repeated}");

        let mut h = Builder::default();
        for (offset, value) in [(0, 10), (1, 11), (2, 12)] {
            h.send(1, value, offset);
        }
        let first = h.poll(2, 0, &[(0, 10), (1, 11)]);
        let rewind = h.poll(2, 1, &[(1, 11)]);
        let anomaly = only(&h.find(&AnomalyOptions::default())).clone();
        assert_eq!(
            anomaly.kind,
            AnomalyKind::NonmonotonicPoll {
                process: ProcessId(2),
                expected_offset: 2,
                offset: 1,
                between_polls: true
            }
        );
        assert_eq!(anomaly.operations, vec![first, rewind]);
    }

    #[test]
    fn nonmonotonic_send() {
        let mut h = Builder::default();
        let first = h.send(1, 10, 1);
        let second = h.send(1, 11, 0);
        // Another process may get lower offsets: that is concurrency, not this anomaly.
        h.send(2, 12, 2);
        let anomaly = only(&h.find(&AnomalyOptions::default())).clone();
        assert_eq!(
            anomaly.kind,
            AnomalyKind::NonmonotonicSend {
                process: ProcessId(1),
                previous_offset: 1,
                offset: 0
            }
        );
        assert_eq!(anomaly.operations, vec![first, second]);
    }

    #[test]
    fn phantoms_and_reads_of_failed_sends() {
        let mut h = Builder::default();
        let failed = h.send_on(0, 1, 10, Outcome::Fail("NOT_LEADER_OR_FOLLOWER".into()));
        let misrouted = h.send_on(1, 1, 11, Outcome::Ok(Reply::Sent { offset: 0 }));
        let poll = h.poll(2, 0, &[(0, 10), (1, 11), (2, 99)]);
        let anomalies = h.find(&AnomalyOptions::default());
        let kinds: Vec<&AnomalyKind> = anomalies
            .found
            .iter()
            .map(|anomaly| &anomaly.kind)
            .collect();
        assert_eq!(
            kinds,
            vec![
                &AnomalyKind::Phantom {
                    value: 11,
                    offset: 1
                },
                &AnomalyKind::Phantom {
                    value: 99,
                    offset: 2
                },
                &AnomalyKind::ReadOfFailedSend {
                    value: 10,
                    offset: 0
                },
            ]
        );
        assert_eq!(anomalies.found[2].operations, vec![failed, poll]);
        assert!(
            anomalies.found[0]
                .explanation
                .contains(&format!("#{misrouted} sent it to t-1")),
            "{}",
            anomalies.found[0].explanation
        );
    }

    #[test]
    fn anomalies_beyond_the_cap_are_counted_not_kept() {
        let mut h = Builder::default();
        for offset in 0..10 {
            h.poll(2, offset, &[(offset, 1000 + offset as u64)]);
        }
        let anomalies = h.find(&AnomalyOptions {
            anomalies_per_kind_max: 3,
            ..AnomalyOptions::default()
        });
        assert_eq!(anomalies.found.len(), 3);
        assert_eq!(anomalies.counts["phantom"], 10);
    }
}
