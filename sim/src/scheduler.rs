//! The world's clock and queue: global simulated time and the events waiting for it.
//! Events come out in time order, and events due at the same time in the order they
//! were scheduled, so that a run is a pure function of its seed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Global time and the queued events of type `E`.
pub struct Scheduler<E> {
    now: u64,
    /// Events scheduled so far: the tie-break of the next one.
    seq: u64,
    queue: BinaryHeap<Reverse<Queued<E>>>,
    /// Events taken off the queue.
    events: u64,
}

/// One queued event, ordered by `(at, seq)` only.
struct Queued<E> {
    at: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Queued<E> {
    fn eq(&self, other: &Queued<E>) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<E> Eq for Queued<E> {}
impl<E> PartialOrd for Queued<E> {
    fn partial_cmp(&self, other: &Queued<E>) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Queued<E> {
    fn cmp(&self, other: &Queued<E>) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

impl<E> Default for Scheduler<E> {
    fn default() -> Scheduler<E> {
        Scheduler::new()
    }
}

impl<E> Scheduler<E> {
    /// An empty queue at time 0.
    pub fn new() -> Scheduler<E> {
        Scheduler {
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: 0,
        }
    }

    /// Global time now: the time of the event taken last.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Events taken off the queue so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Queues `event` at `at`, or now if `at` has passed.
    pub fn schedule(&mut self, at: u64, event: E) {
        let at = at.max(self.now);
        self.seq += 1;
        self.queue.push(Reverse(Queued {
            at,
            seq: self.seq,
            event,
        }));
    }

    /// Takes the next event and moves time to it; `None` when the queue is empty.
    pub fn pop(&mut self) -> Option<E> {
        let Reverse(queued) = self.queue.pop()?;
        assert!(queued.at >= self.now, "time went back");
        self.now = queued.at;
        self.events += 1;
        Some(queued.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_out_by_time_then_by_insertion() {
        let mut scheduler = Scheduler::new();
        scheduler.schedule(20, "late");
        scheduler.schedule(10, "first at 10");
        scheduler.schedule(10, "second at 10");
        scheduler.schedule(5, "early");
        let mut order = Vec::new();
        while let Some(event) = scheduler.pop() {
            order.push((scheduler.now(), event));
        }
        assert_eq!(
            order,
            [
                (5, "early"),
                (10, "first at 10"),
                (10, "second at 10"),
                (20, "late")
            ]
        );
        assert_eq!(scheduler.events(), 4);
    }

    #[test]
    fn an_event_scheduled_in_the_past_runs_now_after_those_already_due() {
        let mut scheduler = Scheduler::new();
        scheduler.schedule(100, 1);
        scheduler.schedule(100, 2);
        assert_eq!(scheduler.pop(), Some(1));
        scheduler.schedule(30, 3);
        assert_eq!(scheduler.pop(), Some(2));
        assert_eq!(scheduler.pop(), Some(3));
        assert_eq!(scheduler.now(), 100, "time never goes back");
        assert_eq!(scheduler.pop(), None);
    }
}
