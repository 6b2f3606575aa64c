//! What the node waits for from the seam: the owner of every disk operation in flight
//! and the purpose of every timer it set.
//!
//! A completion or a timer arrives as a bare id ([`IoId`], [`TimerId`]); this is where
//! the node finds what it meant. A purpose is forgotten when its timer fires, and the
//! two timers that must not be doubled (the Raft tick, one coordinator wake per
//! instant) are tracked here so that a second request for them sets nothing.

use std::collections::{BTreeMap, BTreeSet};

use odradek_log::io::{Instant, IoId, TimerId};

use crate::request::RequestId;
use crate::topics::TopicPartition;

/// Who started an asynchronous disk operation, so its completion finds its way back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum IoOwner {
    Metadata,
    Partition(TopicPartition),
}

/// Why a timer was set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerPurpose {
    /// A parked fetch's `max_wait_ms` ran out.
    FetchDeadline(RequestId),
    /// Time to run retention and time-based segment rolls.
    Maintenance,
    /// Time to tick every Raft group with more than one voter.
    RaftTick,
    /// Time for the log cleaner's next step.
    Clean,
    /// The group coordinator asked to be woken at this instant.
    GroupWake(Instant),
}

/// Disk operations in flight and timers set, by id.
#[derive(Default)]
pub(crate) struct IoWaits {
    owners: BTreeMap<IoId, IoOwner>,
    timers: BTreeMap<TimerId, TimerPurpose>,
    next_timer: u64,
    /// Whether the Raft tick timer is set.
    raft_ticking: bool,
    /// Whether the cleaner's timer is set.
    cleaner_set: bool,
    /// Instants a coordinator wake-up timer is set for.
    group_wakes: BTreeSet<Instant>,
}

impl IoWaits {
    /// Notes that `owner` started disk operation `io`.
    pub(crate) fn own(&mut self, io: IoId, owner: IoOwner) {
        self.owners.insert(io, owner);
    }

    /// The owner of the completed operation `io`; `None` once its owner was forgotten
    /// (a partition deleted or reopened while its sync was in flight).
    pub(crate) fn completed(&mut self, io: IoId) -> Option<IoOwner> {
        self.owners.remove(&io)
    }

    /// Forgets the operations in flight of a partition that is gone.
    pub(crate) fn forget_partition(&mut self, key: &TopicPartition) {
        self.owners
            .retain(|_, owner| !matches!(owner, IoOwner::Partition(k) if k == key));
    }

    /// A new timer id for `purpose`; the caller asks the seam for it.
    pub(crate) fn timer(&mut self, purpose: TimerPurpose) -> TimerId {
        let timer = TimerId(self.next_timer);
        self.next_timer += 1;
        self.timers.insert(timer, purpose);
        match purpose {
            TimerPurpose::RaftTick => self.raft_ticking = true,
            TimerPurpose::Clean => self.cleaner_set = true,
            TimerPurpose::GroupWake(at) => {
                self.group_wakes.insert(at);
            }
            TimerPurpose::FetchDeadline(_) | TimerPurpose::Maintenance => {}
        }
        timer
    }

    /// What `timer` was set for, once: it is forgotten here.
    pub(crate) fn fired(&mut self, timer: TimerId) -> Option<TimerPurpose> {
        let purpose = self.timers.remove(&timer)?;
        match purpose {
            TimerPurpose::RaftTick => self.raft_ticking = false,
            TimerPurpose::Clean => self.cleaner_set = false,
            TimerPurpose::GroupWake(at) => {
                self.group_wakes.remove(&at);
            }
            TimerPurpose::FetchDeadline(_) | TimerPurpose::Maintenance => {}
        }
        Some(purpose)
    }

    /// Whether the Raft tick timer is set.
    pub(crate) fn raft_ticking(&self) -> bool {
        self.raft_ticking
    }

    /// Whether the cleaner's timer is set.
    pub(crate) fn cleaner_set(&self) -> bool {
        self.cleaner_set
    }

    /// Whether a coordinator wake-up timer is set for `at`.
    pub(crate) fn group_wake_set(&self, at: Instant) -> bool {
        self.group_wakes.contains(&at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timer_purpose_is_answered_once_and_the_tick_flag_follows_it() {
        let mut waits = IoWaits::default();
        let tick = waits.timer(TimerPurpose::RaftTick);
        let maintenance = waits.timer(TimerPurpose::Maintenance);
        assert_ne!(tick, maintenance);
        assert!(waits.raft_ticking());
        assert_eq!(waits.fired(tick), Some(TimerPurpose::RaftTick));
        assert!(!waits.raft_ticking());
        assert_eq!(waits.fired(tick), None);
        assert_eq!(waits.fired(maintenance), Some(TimerPurpose::Maintenance));
    }

    #[test]
    fn a_group_wake_is_set_until_it_fires() {
        let mut waits = IoWaits::default();
        let at = Instant::from_nanos(5);
        assert!(!waits.group_wake_set(at));
        let timer = waits.timer(TimerPurpose::GroupWake(at));
        assert!(waits.group_wake_set(at));
        waits.fired(timer);
        assert!(!waits.group_wake_set(at));
    }

    #[test]
    fn a_forgotten_partition_owns_no_completion() {
        let mut waits = IoWaits::default();
        let key = TopicPartition::new("t", 0);
        waits.own(IoId(1), IoOwner::Partition(key.clone()));
        waits.own(IoId(2), IoOwner::Metadata);
        waits.forget_partition(&key);
        assert_eq!(waits.completed(IoId(1)), None);
        assert_eq!(waits.completed(IoId(2)), Some(IoOwner::Metadata));
    }
}
