//! Metadata records this broker forwarded to the controller and not yet answered
//! (`forward.rs` does the forwarding: topic creations and config changes), with the
//! requests waiting on each. Generic over what a waiter is, so that this leaf needs
//! nothing of the node's.

use std::collections::BTreeMap;

use odradek_log::io::Instant;

use crate::request::RequestId;

/// One forwarded record, taken out when it is answered or given up.
pub(crate) struct PendingForward<W> {
    /// The topic being created; `None` for a config change.
    pub(crate) topic: Option<String>,
    /// Requests to handle again once it is applied.
    pub(crate) waiters: Vec<(RequestId, W)>,
    /// When to give up waiting for the answer.
    deadline: Instant,
}

/// The forwards not answered yet, by the id the controller's answer names.
pub(crate) struct PendingForwards<W> {
    pending: BTreeMap<u64, PendingForward<W>>,
    next_id: u64,
}

impl<W> Default for PendingForwards<W> {
    fn default() -> PendingForwards<W> {
        PendingForwards {
            pending: BTreeMap::new(),
            next_id: 0,
        }
    }
}

impl<W> PendingForwards<W> {
    /// The id of the forward creating `name`, if one is pending.
    pub(crate) fn find(&self, name: &str) -> Option<u64> {
        self.pending
            .iter()
            .find(|(_, forward)| forward.topic.as_deref() == Some(name))
            .map(|(&id, _)| id)
    }

    /// Notes a new forward (creating `topic`, or a config change), given up at
    /// `deadline`; its id.
    pub(crate) fn start(&mut self, topic: Option<&str>, deadline: Instant) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let forward = PendingForward {
            topic: topic.map(str::to_string),
            waiters: Vec::new(),
            deadline,
        };
        self.pending.insert(id, forward);
        id
    }

    /// Request `request` waits on pending forward `id`.
    pub(crate) fn wait_on(&mut self, id: u64, request: RequestId, wait: W) {
        self.pending
            .get_mut(&id)
            .expect("a forward being waited on is pending")
            .waiters
            .push((request, wait));
    }

    /// Forward `id`, answered: taken out (`None` for a duplicate or late answer).
    pub(crate) fn take(&mut self, id: u64) -> Option<PendingForward<W>> {
        self.pending.remove(&id)
    }

    /// The forwards whose deadline is at or before `now`, taken out in id order.
    pub(crate) fn take_overdue(&mut self, now: Instant) -> Vec<PendingForward<W>> {
        let overdue: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, forward)| forward.deadline <= now)
            .map(|(&id, _)| id)
            .collect();
        overdue
            .into_iter()
            .map(|id| self.pending.remove(&id).expect("listed"))
            .collect()
    }
}
