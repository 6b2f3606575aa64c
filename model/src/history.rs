//! Histories: what clients asked of the system and what they saw, as the checkers read it.
//!
//! A simulated (or real) run records every client operation twice: when it is invoked
//! and when it completes. The completion says one of three things, and the difference
//! matters to every checker:
//!
//! - [`Outcome::Ok`]: the operation happened, with this result;
//! - [`Outcome::Fail`]: the operation certainly did not happen (the broker refused it
//!   before doing anything: a bad request, an unknown topic);
//! - [`Outcome::Indefinite`]: nobody knows (a timeout, a lost connection, a crash of the
//!   broker while the request was in flight). It may have happened, at any moment after
//!   its invocation, or never.
//!
//! Operations are on one partition each, so the linearizability checker can split the
//! history by partition and check each part alone (P-compositionality: a history is
//! linearizable iff each per-object sub-history is, Herlihy & Wing 1990 §3.3).
//!
//! Records carry a unique `u64` value chosen by the workload, so every check can tell
//! which send a polled record came from.

use std::fmt;

/// A client process of the workload. One process has at most one operation in flight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProcessId(pub u64);

/// A partition of a topic: the object a linearizability check is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionKey {
    /// The topic.
    pub topic: String,
    /// The partition number.
    pub partition: i32,
}

impl fmt::Display for PartitionKey {
    /// `topic-partition`, as Kafka writes a `TopicPartition`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// What a client asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// Append one record with this (workload-unique) value.
    Send {
        /// The record's value.
        value: u64,
    },
    /// Read records from `offset` on (a Fetch starting there).
    Poll {
        /// The first offset asked for.
        offset: i64,
    },
}

/// The value a poll records for a control record the broker wrote itself (the
/// leader-change marker a new leader appends, which takes an offset but holds no
/// client's record). Real consumers skip such records; the simulator's clients record
/// them with this value so that the offsets of a poll stay dense. No send ever sends
/// it. Only a check with broker markers allowed accepts it
/// ([`crate::linearizability::LinearizabilityOptions::broker_markers`]).
pub const MARKER: u64 = u64::MAX;

/// What a client saw when an operation completed successfully.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The record was appended at this offset.
    Sent {
        /// The offset the broker acknowledged.
        offset: i64,
    },
    /// The records returned, in the order returned, as (offset, value).
    Polled {
        /// Records with offsets at or after the requested one.
        records: Vec<(i64, u64)>,
    },
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It happened, with this reply.
    Ok(Reply),
    /// It certainly did not happen; the text says why (for reports).
    Fail(String),
    /// It may or may not have happened; the text says why (for reports).
    Indefinite(String),
}

/// One client operation: its call, when it was invoked and completed, and how it ended.
/// Times are the simulator's global nanoseconds, used for real-time order only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Position in the history (invocation order); unique.
    pub index: usize,
    /// Who invoked it.
    pub process: ProcessId,
    /// Which partition it is about.
    pub partition: PartitionKey,
    /// What was asked.
    pub call: Call,
    /// Global time of the invocation.
    pub invoked_at: u64,
    /// Global time of the completion; `None` if the run ended first (treated as
    /// [`Outcome::Indefinite`]).
    pub completed_at: Option<u64>,
    /// How it ended; `None` together with `completed_at: None`.
    pub outcome: Option<Outcome>,
}

impl Operation {
    /// Whether the operation is known to have taken effect.
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Some(Outcome::Ok(_)))
    }

    /// Whether the operation may have taken effect without anyone knowing
    /// (indefinite, or never completed).
    pub fn is_indefinite(&self) -> bool {
        matches!(self.outcome, None | Some(Outcome::Indefinite(_)))
    }
}

/// How many polled records [`Operation`]'s `Display` shows before eliding the rest.
const DISPLAY_RECORDS_MAX: usize = 4;

impl fmt::Display for Operation {
    /// One line for reports: `#12 p3 send 17 -> ok offset 4 [1000..1400]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} p{} ", self.index, self.process.0)?;
        match &self.call {
            Call::Send { value } => write!(f, "send {value}")?,
            Call::Poll { offset } => write!(f, "poll from {offset}")?,
        }
        match &self.outcome {
            Some(Outcome::Ok(Reply::Sent { offset })) => write!(f, " -> ok offset {offset}")?,
            Some(Outcome::Ok(Reply::Polled { records })) => {
                write!(f, " -> ok {} records [", records.len())?;
                for (position, (offset, value)) in
                    records.iter().take(DISPLAY_RECORDS_MAX).enumerate()
                {
                    let separator = if position == 0 { "" } else { " " };
                    write!(f, "{separator}{offset}:{value}")?;
                }
                if records.len() > DISPLAY_RECORDS_MAX {
                    let (offset, value) = records.last().expect("not empty");
                    write!(f, " .. {offset}:{value}")?;
                }
                write!(f, "]")?;
            }
            Some(Outcome::Fail(why)) => write!(f, " -> fail ({why})")?,
            Some(Outcome::Indefinite(why)) => write!(f, " -> indefinite ({why})")?,
            None => write!(f, " -> never completed")?,
        }
        match self.completed_at {
            Some(completed_at) => write!(f, " [{}..{completed_at}]", self.invoked_at),
            None => write!(f, " [{}..]", self.invoked_at),
        }
    }
}

/// A whole history, built as the run goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    operations: Vec<Operation>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Records an invocation; returns its index, to pass to [`History::complete`].
    pub fn invoke(
        &mut self,
        process: ProcessId,
        partition: PartitionKey,
        call: Call,
        at: u64,
    ) -> usize {
        let index = self.operations.len();
        self.operations.push(Operation {
            index,
            process,
            partition,
            call,
            invoked_at: at,
            completed_at: None,
            outcome: None,
        });
        index
    }

    /// Records the completion of operation `index`. Panics if it completed already or
    /// completes before it was invoked: both are bugs in the recorder.
    pub fn complete(&mut self, index: usize, outcome: Outcome, at: u64) {
        let operation = &mut self.operations[index];
        assert!(
            operation.outcome.is_none(),
            "operation {index} completed twice"
        );
        assert!(
            at >= operation.invoked_at,
            "operation {index} completed before its invocation"
        );
        operation.completed_at = Some(at);
        operation.outcome = Some(outcome);
    }

    /// Every operation, in invocation order.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// The partitions the history touches, sorted.
    pub fn partitions(&self) -> Vec<PartitionKey> {
        let mut partitions: Vec<PartitionKey> = self
            .operations
            .iter()
            .map(|o| o.partition.clone())
            .collect();
        partitions.sort();
        partitions.dedup();
        partitions
    }

    /// The operations on one partition, in invocation order.
    pub fn on_partition<'a>(
        &'a self,
        partition: &'a PartitionKey,
    ) -> impl Iterator<Item = &'a Operation> + 'a {
        self.operations
            .iter()
            .filter(move |o| &o.partition == partition)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PartitionKey {
        PartitionKey {
            topic: "t".into(),
            partition: 0,
        }
    }

    #[test]
    fn invoke_then_complete() {
        let mut history = History::new();
        let send = history.invoke(ProcessId(1), key(), Call::Send { value: 7 }, 10);
        let poll = history.invoke(ProcessId(2), key(), Call::Poll { offset: 0 }, 11);
        history.complete(send, Outcome::Ok(Reply::Sent { offset: 0 }), 20);
        assert!(history.operations()[send].is_ok());
        assert!(
            history.operations()[poll].is_indefinite(),
            "never completed"
        );
        assert_eq!(history.partitions(), vec![key()]);
    }

    #[test]
    fn operations_display_on_one_line() {
        let mut history = History::new();
        let send = history.invoke(ProcessId(3), key(), Call::Send { value: 17 }, 1000);
        history.complete(send, Outcome::Ok(Reply::Sent { offset: 4 }), 1400);
        let poll = history.invoke(ProcessId(2), key(), Call::Poll { offset: 0 }, 1500);
        let records = (0..6).map(|offset| (offset, 10 + offset as u64)).collect();
        history.complete(poll, Outcome::Ok(Reply::Polled { records }), 1600);
        history.invoke(ProcessId(1), key(), Call::Send { value: 9 }, 1700);
        let lines: Vec<String> = history.operations().iter().map(|o| o.to_string()).collect();
        assert_eq!(
            lines,
            [
                "#0 p3 send 17 -> ok offset 4 [1000..1400]",
                "#1 p2 poll from 0 -> ok 6 records [0:10 1:11 2:12 3:13 .. 5:15] [1500..1600]",
                "#2 p1 send 9 -> never completed [1700..]",
            ]
        );
        assert_eq!(key().to_string(), "t-0");
    }

    #[test]
    #[should_panic(expected = "completed twice")]
    fn completing_twice_is_a_recorder_bug() {
        let mut history = History::new();
        let send = history.invoke(ProcessId(1), key(), Call::Send { value: 7 }, 10);
        history.complete(send, Outcome::Fail("refused".into()), 20);
        history.complete(send, Outcome::Fail("refused".into()), 21);
    }
}
