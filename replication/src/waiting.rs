//! Client requests that wait on partitions: produces until their batches are durable
//! (or committed), fetches until enough bytes arrive or their deadline passes.
//!
//! Both are kept by request id in a [`Waiting`], bounded by [`WAITING_REQUESTS_MAX`];
//! when a partition moves, the waiters on it are taken out, and the handler that
//! settles them puts back those still waiting. Taken in request-id order, so answers
//! go out in the same order whatever drove the partition.

use std::collections::BTreeMap;

use odradek_log::io::Instant;

use crate::request::{Request, RequestId};
use crate::topics::TopicPartition;

/// Most client requests that may wait at once for durability or data; beyond it
/// new waiting requests are answered with an error at once.
pub const WAITING_REQUESTS_MAX: usize = 100_000;

/// A waiting request: says which partitions can settle it.
pub(crate) trait WaitsOn {
    /// Whether progress (or failure) of `key` may settle this request.
    fn waits_on(&self, key: &TopicPartition) -> bool;
}

/// Waiting requests of one kind, by id.
pub(crate) struct Waiting<W> {
    by_id: BTreeMap<RequestId, W>,
}

impl<W> Default for Waiting<W> {
    fn default() -> Waiting<W> {
        Waiting {
            by_id: BTreeMap::new(),
        }
    }
}

impl<W: WaitsOn> Waiting<W> {
    /// Whether no more requests may wait.
    pub(crate) fn is_full(&self) -> bool {
        self.by_id.len() >= WAITING_REQUESTS_MAX
    }

    /// How many requests wait.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Keeps request `id` waiting. The caller checked [`Waiting::is_full`] for a new
    /// request; a request taken out and put back never overflows.
    pub(crate) fn wait(&mut self, id: RequestId, waiter: W) {
        let replaced = self.by_id.insert(id, waiter);
        assert!(replaced.is_none(), "request {id:?} waits twice");
        assert!(self.by_id.len() <= WAITING_REQUESTS_MAX);
    }

    /// Takes out request `id`, if it still waits.
    pub(crate) fn take(&mut self, id: RequestId) -> Option<W> {
        self.by_id.remove(&id)
    }

    /// Takes out every request that `key` may settle, in id order.
    pub(crate) fn take_waiting_on(&mut self, key: &TopicPartition) -> Vec<(RequestId, W)> {
        let ids: Vec<RequestId> = self
            .by_id
            .iter()
            .filter(|(_, waiter)| waiter.waits_on(key))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter()
            .map(|id| (id, self.by_id.remove(&id).expect("listed")))
            .collect()
    }
}

/// A produce waiting for its batches to become durable.
pub(crate) struct PendingProduce {
    pub(crate) response: kafka_protocol::messages::ProduceResponse,
    pub(crate) waits: Vec<ProduceWait>,
}

impl WaitsOn for PendingProduce {
    fn waits_on(&self, key: &TopicPartition) -> bool {
        self.waits.iter().any(|wait| wait.key == *key)
    }
}

/// One partition's part of a waiting produce.
pub(crate) struct ProduceWait {
    /// Where its answer goes in the response: topic index, partition index.
    pub(crate) topic_index: usize,
    pub(crate) partition_index: usize,
    pub(crate) key: TopicPartition,
    /// The offset after the partition's last appended batch.
    pub(crate) end_offset: i64,
    /// The leader epoch it was appended in. If this node stops leading in that epoch
    /// before the wait is over, the batches may be cut by the next leader: the
    /// answer is NOT_LEADER_OR_FOLLOWER (the client retries; idempotence dedups).
    pub(crate) leader_epoch: i32,
    /// `acks=all` waits for the high watermark (a quorum holds the batches durably);
    /// `acks=1` only for the leader's own fsync.
    pub(crate) committed: bool,
}

/// A fetch parked until enough bytes arrive or its deadline passes.
pub(crate) struct PendingFetch {
    pub(crate) request: Request,
    pub(crate) deadline: Instant,
    pub(crate) partitions: Vec<TopicPartition>,
}

impl WaitsOn for PendingFetch {
    fn waits_on(&self, key: &TopicPartition) -> bool {
        self.partitions.contains(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct On(Vec<TopicPartition>);

    impl WaitsOn for On {
        fn waits_on(&self, key: &TopicPartition) -> bool {
            self.0.contains(key)
        }
    }

    #[test]
    fn waiters_on_a_partition_are_taken_out_in_request_order() {
        let a = TopicPartition::new("a", 0);
        let b = TopicPartition::new("b", 0);
        let mut waiting = Waiting::default();
        waiting.wait(RequestId(3), On(vec![a.clone()]));
        waiting.wait(RequestId(1), On(vec![a.clone(), b.clone()]));
        waiting.wait(RequestId(2), On(vec![b.clone()]));
        let taken: Vec<RequestId> = waiting
            .take_waiting_on(&a)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(taken, vec![RequestId(1), RequestId(3)]);
        assert_eq!(waiting.len(), 1);
        assert!(waiting.take(RequestId(3)).is_none());
        assert!(waiting.take(RequestId(2)).is_some());
    }
}
