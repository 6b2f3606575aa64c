//! Idempotent-producer state: Kafka's duplicate and sequence checks, simplified.
//!
//! For every producer id the log remembers the current producer epoch and the last
//! [`PRODUCER_BATCHES_CACHED_MAX`] batches it appended (first and last sequence, first
//! and last offset). A batch with `producer_id >= 0` is checked before it is written:
//!
//! - epoch below the current one: `InvalidProducerEpoch` (a zombie producer);
//! - epoch above the current one, or an unknown producer: its base sequence must be 0;
//! - same epoch: a batch whose sequence range equals a cached one is a *duplicate*
//!   (the producer retried after a lost response) and is answered with the cached
//!   offsets, nothing is written; otherwise the base sequence must follow the last
//!   sequence (wrapping from `i32::MAX` to 0), else `OutOfOrderSequence`.
//!
//! The map holds at most [`PRODUCERS_MAX`] producers; the least recently used is
//! forgotten first. State is rebuilt on open from the batch headers in the log.

use std::collections::{BTreeMap, VecDeque};

use crate::batch::BatchHeader;
use crate::constants::{PRODUCER_BATCHES_CACHED_MAX, PRODUCERS_MAX};

/// One cached batch of an idempotent producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerBatch {
    /// Sequence number of the batch's first record.
    pub first_sequence: i32,
    /// Sequence number of the batch's last record.
    pub last_sequence: i32,
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of the batch's last record.
    pub last_offset: i64,
    /// The batch's `max_timestamp` as stored (with LogAppendTime, when it was appended).
    pub max_timestamp: i64,
}

/// What the log knows of one idempotent producer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    /// The current producer epoch.
    pub producer_epoch: i16,
    /// Sequence number of the last record appended in this epoch.
    pub last_sequence: i32,
    /// The last batches appended in this epoch, oldest first (at most
    /// [`PRODUCER_BATCHES_CACHED_MAX`]).
    pub batches: Vec<ProducerBatch>,
}

/// The verdict on a batch from an idempotent producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Append it.
    Accept,
    /// Already in the log at these offsets.
    Duplicate {
        base_offset: i64,
        last_offset: i64,
        max_timestamp: i64,
    },
    /// Stale epoch.
    InvalidEpoch { current: i16 },
    /// Gap or reordering.
    OutOfOrder { expected: i32 },
}

#[derive(Clone, Debug)]
struct State {
    producer_epoch: i16,
    batches: VecDeque<ProducerBatch>,
    last_used: u64,
}

/// All producers of one partition, bounded, least recently used evicted first.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProducerStates {
    states: BTreeMap<i64, State>,
    by_last_use: BTreeMap<u64, i64>,
    clock: u64,
}

/// The sequence number after `sequence`, wrapping at `i32::MAX` as Kafka does.
pub fn next_sequence(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

impl ProducerStates {
    /// Checks a batch that is about to be appended. `header.producer_id` must be >= 0.
    pub fn check(&self, header: &BatchHeader) -> SequenceCheck {
        assert!(header.producer_id >= 0);
        let Some(state) = self.states.get(&header.producer_id) else {
            return if header.base_sequence == 0 {
                SequenceCheck::Accept
            } else {
                SequenceCheck::OutOfOrder { expected: 0 }
            };
        };
        if header.producer_epoch < state.producer_epoch {
            return SequenceCheck::InvalidEpoch {
                current: state.producer_epoch,
            };
        }
        if header.producer_epoch > state.producer_epoch {
            return if header.base_sequence == 0 {
                SequenceCheck::Accept
            } else {
                SequenceCheck::OutOfOrder { expected: 0 }
            };
        }
        let last_sequence = header.last_sequence();
        if let Some(cached) = state
            .batches
            .iter()
            .find(|b| b.first_sequence == header.base_sequence && b.last_sequence == last_sequence)
        {
            return SequenceCheck::Duplicate {
                base_offset: cached.base_offset,
                last_offset: cached.last_offset,
                max_timestamp: cached.max_timestamp,
            };
        }
        let expected = match state.batches.back() {
            Some(last) => next_sequence(last.last_sequence),
            None => 0,
        };
        if header.base_sequence == expected {
            SequenceCheck::Accept
        } else {
            SequenceCheck::OutOfOrder { expected }
        }
    }

    /// Records a batch that was appended (or found by recovery) with its assigned
    /// offsets in `header`. A batch from an older epoch than the current one is ignored.
    pub fn record(&mut self, header: &BatchHeader) {
        if header.producer_id < 0 {
            return;
        }
        let batch = ProducerBatch {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
        };
        self.clock += 1;
        let now = self.clock;
        match self.states.get_mut(&header.producer_id) {
            Some(state) => {
                if header.producer_epoch < state.producer_epoch {
                    return;
                }
                if header.producer_epoch > state.producer_epoch {
                    state.producer_epoch = header.producer_epoch;
                    state.batches.clear();
                }
                state.batches.push_back(batch);
                while state.batches.len() > PRODUCER_BATCHES_CACHED_MAX {
                    state.batches.pop_front();
                }
                self.by_last_use.remove(&state.last_used);
                state.last_used = now;
                self.by_last_use.insert(now, header.producer_id);
            }
            None => {
                if self.states.len() >= PRODUCERS_MAX
                    && let Some((_, evicted)) = self.by_last_use.pop_first()
                {
                    self.states.remove(&evicted);
                }
                self.states.insert(
                    header.producer_id,
                    State {
                        producer_epoch: header.producer_epoch,
                        batches: VecDeque::from([batch]),
                        last_used: now,
                    },
                );
                self.by_last_use.insert(now, header.producer_id);
            }
        }
        assert!(self.states.len() <= PRODUCERS_MAX);
        assert_eq!(self.states.len(), self.by_last_use.len());
    }

    /// What is known of `producer_id`.
    pub fn entry(&self, producer_id: i64) -> Option<ProducerEntry> {
        let state = self.states.get(&producer_id)?;
        Some(ProducerEntry {
            producer_epoch: state.producer_epoch,
            last_sequence: state.batches.back().map_or(-1, |b| b.last_sequence),
            batches: state.batches.iter().copied().collect(),
        })
    }

    /// Producers known.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.states.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{assign, build_batch, validate};

    fn header(producer: (i64, i16, i32), records: usize, base_offset: i64) -> BatchHeader {
        let values: Vec<&[u8]> = vec![b"v"; records];
        let mut batch = build_batch(0, Some(producer), &values);
        assign(&mut batch, base_offset, 0);
        validate(&batch, 1 << 20).unwrap()
    }

    #[test]
    fn unknown_producer_must_start_at_sequence_zero() {
        let states = ProducerStates::default();
        assert_eq!(
            states.check(&header((1, 0, 0), 1, 0)),
            SequenceCheck::Accept
        );
        assert_eq!(
            states.check(&header((1, 0, 5), 1, 0)),
            SequenceCheck::OutOfOrder { expected: 0 }
        );
    }

    #[test]
    fn retried_batch_is_a_duplicate_with_its_offsets() {
        let mut states = ProducerStates::default();
        states.record(&header((1, 0, 0), 3, 10));
        states.record(&header((1, 0, 3), 2, 13));
        assert_eq!(
            states.check(&header((1, 0, 0), 3, 99)),
            SequenceCheck::Duplicate {
                base_offset: 10,
                last_offset: 12,
                max_timestamp: 0
            }
        );
        assert_eq!(
            states.check(&header((1, 0, 5), 1, 99)),
            SequenceCheck::Accept
        );
        assert_eq!(
            states.check(&header((1, 0, 7), 1, 99)),
            SequenceCheck::OutOfOrder { expected: 5 }
        );
    }

    #[test]
    fn only_the_last_five_batches_are_duplicates() {
        let mut states = ProducerStates::default();
        for i in 0..6 {
            states.record(&header((1, 0, i), 1, i64::from(i)));
        }
        assert_eq!(
            states.check(&header((1, 0, 0), 1, 99)),
            SequenceCheck::OutOfOrder { expected: 6 }
        );
        assert!(matches!(
            states.check(&header((1, 0, 1), 1, 99)),
            SequenceCheck::Duplicate { .. }
        ));
    }

    #[test]
    fn stale_epoch_is_fenced_and_new_epoch_restarts_at_zero() {
        let mut states = ProducerStates::default();
        states.record(&header((1, 2, 0), 1, 0));
        assert_eq!(
            states.check(&header((1, 1, 1), 1, 1)),
            SequenceCheck::InvalidEpoch { current: 2 }
        );
        assert_eq!(
            states.check(&header((1, 3, 4), 1, 1)),
            SequenceCheck::OutOfOrder { expected: 0 }
        );
        assert_eq!(
            states.check(&header((1, 3, 0), 1, 1)),
            SequenceCheck::Accept
        );
    }

    #[test]
    fn sequence_wraps_at_i32_max() {
        let mut states = ProducerStates::default();
        states.record(&header((1, 0, i32::MAX), 1, 0));
        assert_eq!(
            states.check(&header((1, 0, 0), 1, 1)),
            SequenceCheck::Accept
        );
    }

    #[test]
    fn least_recently_used_producer_is_evicted() {
        let mut states = ProducerStates::default();
        for id in 0..PRODUCERS_MAX as i64 {
            states.record(&header((id, 0, 0), 1, id));
        }
        // Touch producer 0 so producer 1 is the least recently used.
        states.record(&header((0, 0, 1), 1, 10_000));
        states.record(&header((1_000_000, 0, 0), 1, 10_001));
        assert_eq!(states.len(), PRODUCERS_MAX);
        assert!(states.entry(0).is_some());
        assert!(states.entry(1).is_none());
    }
}
