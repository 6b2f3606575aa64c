//! The sequential specification of one partition log: what a single, never-failing,
//! never-concurrent Kafka partition would answer.
//!
//! The state is the log itself: the values of its records in offset order, starting at
//! the log start offset (0 for a new partition; more once retention deletes segments).
//!
//! | call               | legal reply                                                      | new state       |
//! |--------------------|------------------------------------------------------------------|-----------------|
//! | `Send { value }`   | `Sent { offset }` with `offset == end_offset`                    | `value` appended |
//! | `Poll { offset }`  | `Polled { records }` = `log[offset .. offset + k]` for some `k` ≥ 0, with `start_offset <= offset <= end_offset` | unchanged |
//!
//! A fetch may return fewer records than exist (a size limit, a batch boundary, a
//! follower that has not caught up), never different ones, never with gaps, never
//! starting elsewhere than the requested offset. Polling below the log start or beyond
//! the end is refused by a real broker (`OFFSET_OUT_OF_RANGE`), so such a poll can only
//! end in [`Outcome::Fail`](crate::history::Outcome::Fail): an `Ok` reply to it is
//! illegal. Offsets are dense: Odradek has neither compaction nor transaction markers
//! yet, so every offset from the log start to the end holds a record.
//!
//! ## Broker markers
//!
//! A replicated partition's new leader appends a control record of its own (Kafka's
//! leader-change marker): it takes an offset, and no client sent it. A log built
//! [`LogSpec::with_markers`] allows them: the broker may append [`MARKER`] records at
//! any moment, which the specification does lazily, when an operation first needs
//! them: a send acknowledged beyond the end offset fills the gap with markers, a poll
//! may start beyond the end (its consumer seeked past markers to the high watermark),
//! and a poll may read markers beyond the end. Data records beyond the end stay
//! illegal, and so does a marker where the log holds a record. Without markers (one
//! node, and every test that does not ask) offsets are dense, as the table says.
//!
//! The linearizability checker ([`crate::linearizability`]) asks this specification
//! whether a reply fits a state, through [`LogSpec::step`] or its in-place form
//! [`LogSpec::apply`].

use crate::history::{Call, MARKER, Reply};

/// The state of one partition log, as the specification sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogSpec {
    /// The offset of `values[0]`: the log start offset.
    start_offset: i64,
    /// The records' values, in offset order.
    values: Vec<u64>,
    /// The broker may append [`MARKER`] records of its own.
    markers: bool,
}

/// Why a reply cannot be the answer of the specification in a given state.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SpecViolation {
    /// A `Send` answered with a poll's reply, or the other way round: a recorder bug.
    #[error("reply {reply:?} does not answer call {call:?}")]
    ReplyDoesNotFitCall {
        /// The call.
        call: Call,
        /// The reply recorded for it.
        reply: Reply,
    },
    /// A send was acknowledged at an offset other than the log's end.
    #[error("send acknowledged at offset {acknowledged} but the log end offset is {end_offset}")]
    SentAtWrongOffset {
        /// The offset the broker acknowledged.
        acknowledged: i64,
        /// Where the append would land.
        end_offset: i64,
    },
    /// A poll below the log start offset succeeded.
    #[error("poll at offset {offset} succeeded below the log start offset {start_offset}")]
    PollBelowStart {
        /// The offset asked for.
        offset: i64,
        /// The log start offset.
        start_offset: i64,
    },
    /// A poll beyond the log end offset succeeded.
    #[error("poll at offset {offset} succeeded beyond the log end offset {end_offset}")]
    PollBeyondEnd {
        /// The offset asked for.
        offset: i64,
        /// The log end offset.
        end_offset: i64,
    },
    /// A polled record is not the record the log holds at that position.
    #[error(
        "poll returned ({offset}, {value}) as record {position} but the log holds {expected:?} there"
    )]
    PollMismatch {
        /// Which returned record (0 = the first).
        position: usize,
        /// The returned offset.
        offset: i64,
        /// The returned value.
        value: u64,
        /// What the log holds at `requested + position` as (offset, value), if anything.
        expected: Option<(i64, u64)>,
    },
}

impl LogSpec {
    /// An empty log starting at offset 0: a new partition.
    pub fn new() -> LogSpec {
        LogSpec::default()
    }

    /// An empty log whose first record will get offset `start_offset`.
    pub fn starting_at(start_offset: i64) -> LogSpec {
        assert!(start_offset >= 0, "log start offset {start_offset} < 0");
        LogSpec {
            start_offset,
            values: Vec::new(),
            markers: false,
        }
    }

    /// The same log, where the broker may append markers of its own (see the module
    /// documentation) if `markers`.
    pub fn with_markers(mut self, markers: bool) -> LogSpec {
        self.markers = markers;
        self
    }

    /// The log start offset: the offset of the first record.
    pub fn start_offset(&self) -> i64 {
        self.start_offset
    }

    /// The log end offset: the offset the next record will get.
    pub fn end_offset(&self) -> i64 {
        self.start_offset + self.len_as_offset()
    }

    /// The records' values in offset order, from the log start offset.
    pub fn values(&self) -> &[u64] {
        &self.values
    }

    /// The value at `offset`, if the log holds that offset.
    pub fn value_at(&self, offset: i64) -> Option<u64> {
        let position = usize::try_from(offset.checked_sub(self.start_offset)?).ok()?;
        self.values.get(position).copied()
    }

    /// Appends a record; returns its offset.
    pub fn append(&mut self, value: u64) -> i64 {
        let offset = self.end_offset();
        self.values.push(value);
        offset
    }

    /// Whether `reply` is a legal answer to `call` in this state. Does not change it.
    pub fn check(&self, call: &Call, reply: &Reply) -> Result<(), SpecViolation> {
        match (call, reply) {
            (Call::Send { .. }, Reply::Sent { offset }) => {
                if *offset == self.end_offset() || (self.markers && *offset > self.end_offset()) {
                    Ok(())
                } else {
                    Err(SpecViolation::SentAtWrongOffset {
                        acknowledged: *offset,
                        end_offset: self.end_offset(),
                    })
                }
            }
            (Call::Poll { offset }, Reply::Polled { records }) => self.check_poll(*offset, records),
            _ => Err(SpecViolation::ReplyDoesNotFitCall {
                call: call.clone(),
                reply: reply.clone(),
            }),
        }
    }

    /// Applies `call` in place. With `Some(reply)` the reply must be legal (see
    /// [`LogSpec::check`]); `None` means the reply was never seen (an indefinite
    /// operation taking effect): a send appends, a poll changes nothing. On error the
    /// state is unchanged.
    pub fn apply(&mut self, call: &Call, reply: Option<&Reply>) -> Result<(), SpecViolation> {
        if let Some(reply) = reply {
            self.check(call, reply)?;
            // The broker's markers that the reply shows beyond the end come first.
            match (call, reply) {
                (Call::Send { .. }, Reply::Sent { offset }) => self.markers_up_to(*offset),
                (Call::Poll { offset }, Reply::Polled { records }) => {
                    self.markers_up_to(*offset);
                    for &(offset, value) in records {
                        if offset >= self.end_offset() && value == MARKER {
                            self.markers_up_to(offset + 1);
                        }
                    }
                }
                _ => {}
            }
        }
        if let Call::Send { value } = call {
            self.append(*value);
        }
        Ok(())
    }

    /// The state after `call` answered with `reply`, or `None` if the specification
    /// could not have answered that.
    pub fn step(&self, call: &Call, reply: &Reply) -> Option<LogSpec> {
        let mut next = self.clone();
        next.apply(call, Some(reply)).ok()?;
        Some(next)
    }

    fn check_poll(&self, requested: i64, records: &[(i64, u64)]) -> Result<(), SpecViolation> {
        if requested < self.start_offset {
            return Err(SpecViolation::PollBelowStart {
                offset: requested,
                start_offset: self.start_offset,
            });
        }
        if requested > self.end_offset() && !self.markers {
            return Err(SpecViolation::PollBeyondEnd {
                offset: requested,
                end_offset: self.end_offset(),
            });
        }
        // Markers the broker may have appended beyond the end before this poll.
        let mut markers_end = self.end_offset().max(requested);
        for (position, &(offset, value)) in records.iter().enumerate() {
            let expected_offset = requested + i64::try_from(position).expect("poll size fits i64");
            if self.markers
                && expected_offset >= self.end_offset()
                && expected_offset == markers_end
                && (offset, value) == (expected_offset, MARKER)
            {
                markers_end += 1;
                continue;
            }
            let expected = self
                .value_at(expected_offset)
                .map(|expected_value| (expected_offset, expected_value));
            if expected != Some((offset, value)) {
                return Err(SpecViolation::PollMismatch {
                    position,
                    offset,
                    value,
                    expected,
                });
            }
        }
        Ok(())
    }

    /// Appends markers until the end offset is `offset` (nothing if it is there).
    fn markers_up_to(&mut self, offset: i64) {
        while self.end_offset() < offset {
            self.values.push(MARKER);
        }
    }

    fn len_as_offset(&self) -> i64 {
        i64::try_from(self.values.len()).expect("log length fits i64")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(offset: i64) -> Reply {
        Reply::Sent { offset }
    }

    fn polled(records: &[(i64, u64)]) -> Reply {
        Reply::Polled {
            records: records.to_vec(),
        }
    }

    #[test]
    fn markers_are_appended_lazily_by_what_the_replies_show() {
        let mut log = LogSpec::new().with_markers(true);
        // A send acknowledged at 2: offsets 0 and 1 held the broker's markers.
        log.apply(&Call::Send { value: 7 }, Some(&sent(2))).unwrap();
        assert_eq!(log.values(), &[MARKER, MARKER, 7]);
        // A poll may read a marker beyond the end, and start beyond it.
        log.apply(&Call::Poll { offset: 3 }, Some(&polled(&[(3, MARKER)])))
            .unwrap();
        log.apply(&Call::Poll { offset: 5 }, Some(&polled(&[])))
            .unwrap();
        assert_eq!(log.end_offset(), 5);
        // Never a record beyond the end, never a marker over a record.
        assert!(
            log.check(&Call::Poll { offset: 5 }, &polled(&[(5, 9)]))
                .is_err()
        );
        assert!(
            log.check(&Call::Poll { offset: 2 }, &polled(&[(2, MARKER)]))
                .is_err()
        );
        // Without markers each of those is illegal.
        let strict = LogSpec::new();
        assert!(strict.check(&Call::Send { value: 7 }, &sent(2)).is_err());
        assert!(
            strict
                .check(&Call::Poll { offset: 1 }, &polled(&[]))
                .is_err()
        );
        assert!(
            strict
                .check(&Call::Poll { offset: 0 }, &polled(&[(0, MARKER)]))
                .is_err()
        );
    }

    fn log_of(values: &[u64]) -> LogSpec {
        let mut log = LogSpec::new();
        for &value in values {
            log.append(value);
        }
        log
    }

    #[test]
    fn sends_append_at_the_end() {
        let log = LogSpec::new();
        let log = log
            .step(&Call::Send { value: 10 }, &sent(0))
            .expect("offset 0");
        let log = log
            .step(&Call::Send { value: 11 }, &sent(1))
            .expect("offset 1");
        assert_eq!(log.values(), &[10, 11]);
        assert_eq!(log.end_offset(), 2);
        assert_eq!(
            log.check(&Call::Send { value: 12 }, &sent(1)),
            Err(SpecViolation::SentAtWrongOffset {
                acknowledged: 1,
                end_offset: 2
            })
        );
        assert!(log.step(&Call::Send { value: 12 }, &sent(3)).is_none());
    }

    #[test]
    fn polls_return_any_prefix_of_the_rest() {
        let log = log_of(&[10, 11, 12]);
        let poll = Call::Poll { offset: 1 };
        for records in [&[][..], &[(1, 11)], &[(1, 11), (2, 12)]] {
            assert_eq!(log.check(&poll, &polled(records)), Ok(()), "{records:?}");
        }
        // A poll changes nothing.
        assert_eq!(log.step(&poll, &polled(&[(1, 11)])), Some(log.clone()));
    }

    #[test]
    fn polls_never_skip_reorder_or_invent() {
        let log = log_of(&[10, 11, 12]);
        let poll = Call::Poll { offset: 0 };
        for records in [
            &[(1, 11)][..],                        // does not start at the requested offset
            &[(0, 10), (2, 12)],                   // gap
            &[(0, 10), (1, 12)],                   // wrong value
            &[(1, 11), (0, 10)],                   // out of order
            &[(0, 10), (1, 11), (2, 12), (3, 13)], // beyond the end
        ] {
            assert!(
                log.check(&poll, &polled(records)).is_err(),
                "{records:?} must be illegal"
            );
        }
    }

    #[test]
    fn polls_at_the_end_are_empty_and_beyond_it_illegal() {
        let log = log_of(&[10, 11]);
        assert_eq!(log.check(&Call::Poll { offset: 2 }, &polled(&[])), Ok(()));
        assert_eq!(
            log.check(&Call::Poll { offset: 3 }, &polled(&[])),
            Err(SpecViolation::PollBeyondEnd {
                offset: 3,
                end_offset: 2
            })
        );
    }

    #[test]
    fn a_log_may_start_past_zero() {
        let mut log = LogSpec::starting_at(100);
        assert_eq!(log.append(7), 100);
        assert_eq!(log.value_at(100), Some(7));
        assert_eq!(log.value_at(99), None);
        assert_eq!(
            log.check(&Call::Poll { offset: 99 }, &polled(&[])),
            Err(SpecViolation::PollBelowStart {
                offset: 99,
                start_offset: 100
            })
        );
        assert_eq!(
            log.check(&Call::Poll { offset: 100 }, &polled(&[(100, 7)])),
            Ok(())
        );
        assert_eq!(log.check(&Call::Send { value: 8 }, &sent(101)), Ok(()));
    }

    #[test]
    fn unseen_replies_still_take_effect() {
        let mut log = LogSpec::new();
        log.apply(&Call::Send { value: 5 }, None)
            .expect("an unseen send appends");
        log.apply(&Call::Poll { offset: 9 }, None)
            .expect("an unseen poll is a no-op");
        assert_eq!(log.values(), &[5]);
    }

    #[test]
    fn a_reply_of_the_wrong_kind_is_refused() {
        let log = LogSpec::new();
        assert!(matches!(
            log.check(&Call::Send { value: 1 }, &polled(&[])),
            Err(SpecViolation::ReplyDoesNotFitCall { .. })
        ));
    }
}
