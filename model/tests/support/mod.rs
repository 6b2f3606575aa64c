//! Test support: legal histories from a simulated log, and mutations that break them.
//!
//! A generator draws every decision from [`Choices`]: a tape of numbers that proptest
//! generates and shrinks (an exhausted tape answers 0, the simplest choice), or a seeded
//! SplitMix64 stream for the large, fixed benchmark history.

#![allow(dead_code)] // each test file uses part of this module

use std::collections::BTreeMap;

use odradek_model::history::{Call, History, Operation, Outcome, PartitionKey, ProcessId, Reply};

/// Where the generators' decisions come from.
pub struct Choices {
    tape: Vec<u32>,
    position: usize,
    /// SplitMix64 state, when the choices are seeded rather than taped.
    seed: Option<u64>,
}

impl Choices {
    /// Decisions read from a tape; 0 once it runs out.
    pub fn from_tape(tape: Vec<u32>) -> Choices {
        Choices {
            tape,
            position: 0,
            seed: None,
        }
    }

    /// Decisions drawn from SplitMix64 (Steele, Lea & Flood 2014) seeded with `seed`.
    pub fn from_seed(seed: u64) -> Choices {
        Choices {
            tape: Vec::new(),
            position: 0,
            seed: Some(seed),
        }
    }

    fn next_raw(&mut self) -> u64 {
        if let Some(state) = &mut self.seed {
            *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = *state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            return z ^ (z >> 31);
        }
        let raw = self.tape.get(self.position).copied().unwrap_or(0);
        self.position += 1;
        u64::from(raw)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        assert!(n > 0);
        (self.next_raw() % n as u64) as usize
    }

    /// True with probability `percent`/100 (a tape of zeros says yes to anything > 0).
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// The shape of a generated workload.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Client processes; each has at most one operation in flight.
    pub processes: usize,
    /// Partitions of topic `t`.
    pub partitions: usize,
    /// Scheduler steps (each invokes, applies or completes one operation, or settles
    /// a lost-track send).
    pub steps: usize,
    /// Percent of sends and polls whose completion is indefinite.
    pub indefinite_percent: usize,
    /// Percent of operations that fail before taking effect.
    pub fail_percent: usize,
    /// Percent of new operations that are polls.
    pub poll_percent: usize,
    /// At most this many records per poll (not for final reads).
    pub records_per_poll_max: usize,
    /// End with one complete read of every partition.
    pub final_reads: bool,
}

impl Workload {
    /// A small workload for property tests.
    pub fn small(final_reads: bool) -> Workload {
        Workload {
            processes: 4,
            partitions: 2,
            steps: 120,
            indefinite_percent: 10,
            fail_percent: 5,
            poll_percent: 40,
            records_per_poll_max: 6,
            final_reads,
        }
    }
}

pub fn key(partition: usize) -> PartitionKey {
    PartitionKey {
        topic: "t".into(),
        partition: i32::try_from(partition).expect("few partitions"),
    }
}

/// An operation a process has in flight.
struct InFlight {
    index: usize,
    partition: usize,
    call: Call,
    effect: Option<Effect>,
}

/// What the operation did when it took effect on the log.
enum Effect {
    Sent(i64),
    Polled(Vec<(i64, u64)>),
    OutOfRange,
}

fn offset_of(position: usize) -> i64 {
    i64::try_from(position).expect("small logs")
}

/// A history that a real, single-copy log produced: every operation takes effect at
/// one instant between its invocation and its completion (or, when indefinite, at
/// any instant after invocation or never), so it is linearizable by construction.
/// Consumers poll from where they left off, and reset after an error.
pub fn legal_history(choices: &mut Choices, workload: &Workload) -> History {
    let mut history = History::new();
    let mut logs: Vec<Vec<u64>> = vec![Vec::new(); workload.partitions];
    let mut in_flight: Vec<Option<InFlight>> = (0..workload.processes).map(|_| None).collect();
    // Indefinite sends that have not taken effect: they may, later, or never.
    let mut lost_track: Vec<(usize, u64)> = Vec::new();
    let mut positions: BTreeMap<(usize, usize), i64> = BTreeMap::new();
    let mut now: u64 = 0;
    let mut next_value: u64 = 1000;

    for _ in 0..workload.steps {
        // Sometimes two events share an instant: they count as concurrent.
        now += choices.below(3).min(1) as u64;
        if !lost_track.is_empty() && choices.chance(8) {
            let (partition, value) = lost_track.swap_remove(choices.below(lost_track.len()));
            if choices.chance(50) {
                logs[partition].push(value);
            }
            continue;
        }
        let process = choices.below(workload.processes);
        match in_flight[process].take() {
            None => {
                let partition = choices.below(workload.partitions);
                let call = if choices.chance(workload.poll_percent) {
                    let offset = match positions.get(&(process, partition)) {
                        Some(&position) => position,
                        None => offset_of(choices.below(logs[partition].len() + 2)),
                    };
                    Call::Poll { offset }
                } else {
                    next_value += 1;
                    Call::Send { value: next_value }
                };
                let index =
                    history.invoke(ProcessId(process as u64), key(partition), call.clone(), now);
                in_flight[process] = Some(InFlight {
                    index,
                    partition,
                    call,
                    effect: None,
                });
            }
            Some(mut flight) if flight.effect.is_none() => {
                if choices.chance(100 - workload.fail_percent - workload.indefinite_percent / 2) {
                    let log = &mut logs[flight.partition];
                    flight.effect = Some(match flight.call {
                        Call::Send { value } => {
                            log.push(value);
                            Effect::Sent(offset_of(log.len() - 1))
                        }
                        Call::Poll { offset } => {
                            let start = usize::try_from(offset).expect("offsets >= 0");
                            if start > log.len() {
                                Effect::OutOfRange
                            } else {
                                let available =
                                    (log.len() - start).min(workload.records_per_poll_max);
                                let count = if choices.chance(60) {
                                    available
                                } else {
                                    choices.below(available + 1)
                                };
                                Effect::Polled(
                                    (start..start + count)
                                        .map(|position| (offset_of(position), log[position]))
                                        .collect(),
                                )
                            }
                        }
                    });
                    in_flight[process] = Some(flight);
                } else {
                    // Completes without having taken effect (yet).
                    let outcome = if choices.chance(50) {
                        Outcome::Fail("refused".into())
                    } else {
                        if let Call::Send { value } = flight.call {
                            lost_track.push((flight.partition, value));
                        }
                        Outcome::Indefinite("timeout".into())
                    };
                    if let Call::Poll { .. } = flight.call {
                        positions.remove(&(process, flight.partition));
                    }
                    history.complete(flight.index, outcome, now);
                }
            }
            Some(flight) => {
                let effect = flight.effect.expect("took effect");
                let outcome = if choices.chance(workload.indefinite_percent) {
                    if let Call::Poll { .. } = flight.call {
                        // The consumer never saw what it read: it may start over.
                        positions.remove(&(process, flight.partition));
                    }
                    Outcome::Indefinite("response lost".into())
                } else {
                    match (effect, &flight.call) {
                        (Effect::Sent(offset), _) => Outcome::Ok(Reply::Sent { offset }),
                        (Effect::Polled(records), &Call::Poll { offset }) => {
                            let position = records.last().map_or(offset, |(last, _)| last + 1);
                            positions.insert((process, flight.partition), position);
                            Outcome::Ok(Reply::Polled { records })
                        }
                        (Effect::OutOfRange, _) => {
                            positions.remove(&(process, flight.partition));
                            Outcome::Fail("OFFSET_OUT_OF_RANGE".into())
                        }
                        (Effect::Polled(_), Call::Send { .. }) => unreachable!("polls poll"),
                    }
                };
                history.complete(flight.index, outcome, now);
            }
        }
    }

    // The run ends: what is in flight stays so (never completed), or settles.
    for (process, flight) in in_flight.iter_mut().enumerate() {
        let Some(flight) = flight.take() else {
            continue;
        };
        now += 1;
        match (&flight.call, flight.effect) {
            (&Call::Send { value }, None) => lost_track.push((flight.partition, value)),
            (Call::Send { .. }, Some(Effect::Sent(offset))) if choices.chance(50) => {
                history.complete(flight.index, Outcome::Ok(Reply::Sent { offset }), now);
            }
            _ => {}
        }
        positions.remove(&(process, flight.partition));
    }
    for (partition, value) in lost_track {
        if choices.chance(50) {
            logs[partition].push(value);
        }
    }
    if workload.final_reads {
        for (partition, log) in logs.iter().enumerate() {
            now += 1;
            let reader = ProcessId((workload.processes + partition) as u64);
            let index = history.invoke(reader, key(partition), Call::Poll { offset: 0 }, now);
            let records = log
                .iter()
                .enumerate()
                .map(|(position, &value)| (offset_of(position), value))
                .collect();
            now += 1;
            history.complete(index, Outcome::Ok(Reply::Polled { records }), now);
        }
    }
    history
}

/// A history holding exactly `operations` (indexes must be positions).
pub fn rebuild(operations: &[Operation]) -> History {
    let mut history = History::new();
    for operation in operations {
        let index = history.invoke(
            operation.process,
            operation.partition.clone(),
            operation.call.clone(),
            operation.invoked_at,
        );
        assert_eq!(index, operation.index);
        if let (Some(outcome), Some(at)) = (&operation.outcome, operation.completed_at) {
            history.complete(index, outcome.clone(), at);
        }
    }
    history
}

/// Random operations with random replies: mostly illegal, sometimes not.
pub fn random_history(choices: &mut Choices, operations: usize) -> History {
    let mut history = History::new();
    let values = operations as u64 + 1;
    for value in 0..operations as u64 {
        let process = ProcessId(choices.below(3) as u64);
        let invoked = choices.below(10) as u64;
        let completed = invoked + choices.below(6) as u64;
        let (call, outcome) = if choices.chance(50) {
            let outcome = match choices.below(4) {
                0 => Some(Outcome::Indefinite("timeout".into())),
                1 => Some(Outcome::Fail("refused".into())),
                2 => None,
                _ => Some(Outcome::Ok(Reply::Sent {
                    offset: offset_of(choices.below(4)),
                })),
            };
            (Call::Send { value }, outcome)
        } else {
            let offset = offset_of(choices.below(4));
            let records = (0..choices.below(3))
                .map(|i| (offset + i as i64, choices.below(values as usize) as u64))
                .collect();
            let outcome = if choices.chance(80) {
                Some(Outcome::Ok(Reply::Polled { records }))
            } else {
                Some(Outcome::Indefinite("timeout".into()))
            };
            (Call::Poll { offset }, outcome)
        };
        let index = history.invoke(process, key(0), call, invoked);
        if let Some(outcome) = outcome {
            history.complete(index, outcome, completed);
        }
    }
    history
}

/// Moves every invocation and completion by a few time units (keeping each inside its
/// own order): legal histories near the edge of illegal, and back.
pub fn jitter(choices: &mut Choices, history: &History) -> History {
    let mut operations = history.operations().to_vec();
    for operation in &mut operations {
        let shift =
            |choices: &mut Choices, at: u64| (at + choices.below(7) as u64).saturating_sub(3);
        operation.invoked_at = shift(choices, operation.invoked_at);
        if let Some(completed) = operation.completed_at {
            operation.completed_at = Some(shift(choices, completed).max(operation.invoked_at));
        }
    }
    rebuild(&operations)
}

/// What a mutation must make the checkers say.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// This anomaly (by name), among others perhaps.
    Anomaly(&'static str),
    /// Some partition is not linearizable.
    Illegal,
}

/// Ways to break a legal history, each with a guaranteed symptom.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Swap the values of two records of one poll, one of them acknowledged.
    SwapPolledValues,
    /// Move the acknowledged offset of a send whose value was read.
    ChangeAckedOffset,
    /// Drop a record from the middle of a poll.
    DropMiddleRecord,
    /// Give a record of a poll the value of an earlier record of it.
    DuplicateValue,
    /// Swap two records of a poll.
    ReorderOffsets,
    /// Invoke a read value's send only after the poll that read it completed.
    FutureRead,
    /// Replace a polled value with one never sent.
    PhantomValue,
    /// With final reads: cut every poll of a partition short before a record an
    /// acknowledged send wrote.
    LoseLastWrite,
}

pub const MUTATIONS: [Mutation; 8] = [
    Mutation::SwapPolledValues,
    Mutation::ChangeAckedOffset,
    Mutation::DropMiddleRecord,
    Mutation::DuplicateValue,
    Mutation::ReorderOffsets,
    Mutation::FutureRead,
    Mutation::PhantomValue,
    Mutation::LoseLastWrite,
];

fn ok_records(operation: &Operation) -> Option<&Vec<(i64, u64)>> {
    match &operation.outcome {
        Some(Outcome::Ok(Reply::Polled { records })) => Some(records),
        _ => None,
    }
}

fn ok_records_mut(operation: &mut Operation) -> &mut Vec<(i64, u64)> {
    match &mut operation.outcome {
        Some(Outcome::Ok(Reply::Polled { records })) => records,
        _ => panic!("not an Ok poll"),
    }
}

/// Polls with at least `records_min` records.
fn polls_with(operations: &[Operation], records_min: usize) -> Vec<usize> {
    operations
        .iter()
        .filter(|operation| {
            ok_records(operation).is_some_and(|records| records.len() >= records_min)
        })
        .map(|operation| operation.index)
        .collect()
}

fn pick<T: Clone>(choices: &mut Choices, items: &[T]) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        Some(items[choices.below(items.len())].clone())
    }
}

/// Applies `mutation`, or `None` if the history offers no place for it.
pub fn mutate(
    choices: &mut Choices,
    history: &History,
    mutation: Mutation,
) -> Option<(History, Expect)> {
    let mut operations = history.operations().to_vec();
    let send_of: BTreeMap<u64, usize> = operations
        .iter()
        .filter_map(|operation| match operation.call {
            Call::Send { value } => Some((value, operation.index)),
            Call::Poll { .. } => None,
        })
        .collect();
    let acknowledged = |value: u64| {
        send_of
            .get(&value)
            .is_some_and(|&index| matches!(operations[index].outcome, Some(Outcome::Ok(_))))
    };
    let expect = match mutation {
        Mutation::SwapPolledValues => {
            let mut sites = Vec::new();
            for index in polls_with(&operations, 2) {
                let records = ok_records(&operations[index]).expect("a poll");
                for (i, &(_, value)) in records.iter().enumerate() {
                    if acknowledged(value) {
                        sites.push((index, i));
                    }
                }
            }
            let (index, i) = pick(choices, &sites)?;
            let records = ok_records_mut(&mut operations[index]);
            let mut j = choices.below(records.len() - 1);
            if j >= i {
                j += 1;
            }
            let (vi, vj) = (records[i].1, records[j].1);
            records[i].1 = vj;
            records[j].1 = vi;
            Expect::Anomaly("duplicate")
        }
        Mutation::ChangeAckedOffset => {
            let read: Vec<u64> = operations
                .iter()
                .filter_map(ok_records)
                .flatten()
                .map(|&(_, value)| value)
                .collect();
            let sites: Vec<usize> = read
                .iter()
                .filter(|&&value| acknowledged(value))
                .map(|value| send_of[value])
                .collect();
            let index = pick(choices, &sites)?;
            let shift = 1 + choices.below(3) as i64;
            match &mut operations[index].outcome {
                Some(Outcome::Ok(Reply::Sent { offset })) => *offset += shift,
                _ => unreachable!("acknowledged"),
            }
            Expect::Anomaly("duplicate")
        }
        Mutation::DropMiddleRecord => {
            let index = pick(choices, &polls_with(&operations, 3))?;
            let records = ok_records_mut(&mut operations[index]);
            let middle = 1 + choices.below(records.len() - 2);
            records.remove(middle);
            Expect::Anomaly("poll-skip")
        }
        Mutation::DuplicateValue => {
            let index = pick(choices, &polls_with(&operations, 2))?;
            let records = ok_records_mut(&mut operations[index]);
            let j = 1 + choices.below(records.len() - 1);
            let i = choices.below(j);
            records[j].1 = records[i].1;
            Expect::Anomaly("duplicate")
        }
        Mutation::ReorderOffsets => {
            let index = pick(choices, &polls_with(&operations, 2))?;
            let records = ok_records_mut(&mut operations[index]);
            let j = 1 + choices.below(records.len() - 1);
            let i = choices.below(j);
            records.swap(i, j);
            Expect::Anomaly("nonmonotonic-poll")
        }
        Mutation::FutureRead => {
            let index = pick(choices, &polls_with(&operations, 1))?;
            let records = ok_records(&operations[index]).expect("a poll");
            let (_, value) = records[choices.below(records.len())];
            let completed = operations[index].completed_at.expect("Ok polls completed");
            let send = &mut operations[send_of[&value]];
            send.invoked_at = completed + 1 + choices.below(3) as u64;
            if let Some(send_completed) = &mut send.completed_at {
                *send_completed = (*send_completed).max(send.invoked_at);
            }
            Expect::Illegal
        }
        Mutation::PhantomValue => {
            let index = pick(choices, &polls_with(&operations, 1))?;
            let records = ok_records_mut(&mut operations[index]);
            let i = choices.below(records.len());
            records[i].1 = u64::MAX - i as u64;
            Expect::Anomaly("phantom")
        }
        Mutation::LoseLastWrite => {
            // A read record an acknowledged send wrote; every poll of its partition is
            // cut short before it, which a log may do (polls may return fewer records).
            let sites: Vec<(PartitionKey, i64)> = operations
                .iter()
                .flat_map(|operation| {
                    ok_records(operation)
                        .into_iter()
                        .flatten()
                        .filter(|&&(_, value)| acknowledged(value))
                        .map(|&(offset, _)| (operation.partition.clone(), offset))
                })
                .collect();
            let (partition, offset) = pick(choices, &sites)?;
            for operation in &mut operations {
                if operation.partition == partition && ok_records(operation).is_some() {
                    ok_records_mut(operation).retain(|&(read, _)| read < offset);
                }
            }
            Expect::Anomaly("lost-write")
        }
    };
    Some((rebuild(&operations), expect))
}
