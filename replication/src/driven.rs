//! The partitions driven during one event whose waiters the router settles at its end
//! (see `drive.rs`): a leaf, so that the router and the driver share it without
//! importing each other.

use crate::topics::TopicPartition;

/// Partitions driven during the current event whose waiters (or groups) the router
/// settles at its end, in the order they were first driven, each with whether its high
/// watermark moved or its leadership was lost since.
#[derive(Debug, Default)]
pub(crate) struct DrivenPartitions {
    driven: Vec<(TopicPartition, bool)>,
}

impl DrivenPartitions {
    /// Notes that `key` was driven.
    pub(crate) fn note(&mut self, key: &TopicPartition, waiters_may_move: bool) {
        match self.driven.iter_mut().find(|(driven, _)| driven == key) {
            Some((_, moved)) => *moved |= waiters_may_move,
            None => self.driven.push((key.clone(), waiters_may_move)),
        }
    }

    /// Whether every partition noted was taken.
    pub(crate) fn is_empty(&self) -> bool {
        self.driven.is_empty()
    }

    /// The first partition noted and not yet taken.
    pub(crate) fn take_first(&mut self) -> Option<(TopicPartition, bool)> {
        (!self.driven.is_empty()).then(|| self.driven.remove(0))
    }
}
