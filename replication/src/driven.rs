//! The partitions driven during one event whose waiters the router settles at its end
//! (see `drive.rs`): a leaf, so that the router and the driver share it without
//! importing each other.

use std::collections::{BTreeMap, VecDeque};

use crate::topics::TopicPartition;

/// Partitions driven during the current event whose waiters (or groups) the router
/// settles at its end, in the order they were first driven, each with whether its high
/// watermark moved or its leadership was lost since.
///
/// A bundle from a peer can drive thousands of partitions in one event, so noting and
/// taking are logarithmic, not a scan: a queue in first-driven order, and the position
/// of each partition not yet taken.
#[derive(Debug, Default)]
pub(crate) struct DrivenPartitions {
    queue: VecDeque<(TopicPartition, bool)>,
    /// Where each partition in the queue is, counted from the first ever queued.
    positions: BTreeMap<TopicPartition, u64>,
    /// How many were taken: the first entry of the queue is at this position.
    taken: u64,
}

impl DrivenPartitions {
    /// Notes that `key` was driven.
    pub(crate) fn note(&mut self, key: &TopicPartition, waiters_may_move: bool) {
        if let Some(&position) = self.positions.get(key) {
            let index = usize::try_from(position - self.taken).expect("a queue index");
            self.queue[index].1 |= waiters_may_move;
            return;
        }
        let position = self.taken + self.queue.len() as u64;
        self.positions.insert(key.clone(), position);
        self.queue.push_back((key.clone(), waiters_may_move));
    }

    /// Whether every partition noted was taken.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The first partition noted and not yet taken.
    pub(crate) fn take_first(&mut self) -> Option<(TopicPartition, bool)> {
        let (key, waiters_may_move) = self.queue.pop_front()?;
        self.positions.remove(&key);
        self.taken += 1;
        Some((key, waiters_may_move))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_come_out_once_in_first_driven_order_with_their_flags_merged() {
        let (a, b, c) = (
            TopicPartition::new("t", 0),
            TopicPartition::new("t", 1),
            TopicPartition::new("s", 0),
        );
        let mut driven = DrivenPartitions::default();
        driven.note(&b, false);
        driven.note(&a, false);
        driven.note(&b, true);
        assert_eq!(driven.take_first(), Some((b.clone(), true)));
        driven.note(&c, false);
        driven.note(&b, false); // taken already: queued again
        driven.note(&a, true);
        assert_eq!(driven.take_first(), Some((a, true)));
        assert_eq!(driven.take_first(), Some((c, false)));
        assert_eq!(driven.take_first(), Some((b, false)));
        assert_eq!(driven.take_first(), None);
        assert!(driven.is_empty());
    }
}
