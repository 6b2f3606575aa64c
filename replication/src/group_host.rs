//! The node's hold on the group coordinator: the [`Coordinator`], the effects it asked
//! for that the node has not run yet, and which offsets partitions have their groups
//! loaded, in which leader epoch.
//!
//! Every call into the coordinator goes through here, and its effects queue here until
//! the router runs them at the end of the event (`group_hosting.rs`), so the coordinator
//! is never re-entered while a partition is half driven.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::ErrorCode;
use crate::group::{Coordinator, Effect, GroupConfig, Now, OFFSETS_TOPIC_NAME, WaitId};
use crate::request::{Request, RequestId};

/// What a change of an offsets partition's leadership asks of the node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Loading {
    /// Nothing to load: the groups are loaded in the epoch led, or none is led.
    Settled,
    /// Leading in this epoch: read the whole partition and call [`GroupHost::load`].
    Load(i32),
    /// Leading, but records past the high watermark may still be cut by a later
    /// leader; groups built from them could hand out a generation twice. The groups
    /// load once the marker of this epoch commits.
    WaitForCommit,
}

/// The coordinator, its queued effects and its loaded partitions.
pub(crate) struct GroupHost {
    coordinator: Coordinator,
    /// What the coordinator asked for, run at the end of the current event.
    effects: Vec<Effect>,
    /// Offsets partitions whose groups are loaded, with the leader epoch they were
    /// loaded in.
    loaded: BTreeMap<i32, i32>,
}

impl GroupHost {
    /// A host with nothing loaded.
    pub(crate) fn new(config: GroupConfig, member_id_seed: u64) -> GroupHost {
        GroupHost {
            coordinator: Coordinator::new(config, member_id_seed),
            effects: Vec::new(),
            loaded: BTreeMap::new(),
        }
    }

    /// The coordinator, for reading.
    pub(crate) fn coordinator(&self) -> &Coordinator {
        &self.coordinator
    }

    /// A group request.
    pub(crate) fn handle(&mut self, now: Now, id: RequestId, request: &Request) {
        let host = request.client_host.as_str();
        let effects = self.coordinator.handle(now, id, request, host);
        self.effects.extend(effects);
    }

    /// The coordinator's wake-up timer fired.
    pub(crate) fn on_timer(&mut self, now: Now) {
        let effects = self.coordinator.on_timer(now);
        self.effects.extend(effects);
    }

    /// Offsets partition `partition` was driven: it is led in epoch `leading` (`None`:
    /// not led, or offline), and `caught_up` says whether this epoch's marker is
    /// committed. Unloads groups loaded in another epoch, and says what loading needs.
    pub(crate) fn follow_leadership(
        &mut self,
        partition: i32,
        leading: Option<i32>,
        caught_up: bool,
    ) -> Loading {
        let loaded = self.loaded.get(&partition).copied();
        if loaded.is_some() && loaded != leading {
            self.loaded.remove(&partition);
            let effects = self.coordinator.unload(partition);
            self.effects.extend(effects);
        }
        if leading.is_none() && self.coordinator.is_loading(partition) {
            let effects = self.coordinator.unload(partition);
            self.effects.extend(effects);
        }
        match leading {
            Some(epoch) if loaded != leading && caught_up => Loading::Load(epoch),
            Some(_) if loaded != leading => {
                self.coordinator.begin_loading(partition);
                Loading::WaitForCommit
            }
            _ => Loading::Settled,
        }
    }

    /// Loads `partition`'s groups from its records (log order) as its leader in
    /// `epoch`.
    pub(crate) fn load(
        &mut self,
        now: Now,
        partition: i32,
        epoch: i32,
        records: Vec<(Option<Bytes>, Option<Bytes>)>,
    ) {
        let effects = self.coordinator.load(now, partition, records);
        self.effects.extend(effects);
        self.loaded.insert(partition, epoch);
    }

    /// `partition`'s high watermark is `high_watermark`; nothing if its groups are not
    /// loaded.
    pub(crate) fn on_committed(&mut self, now: Now, partition: i32, high_watermark: i64) {
        if self.loaded.contains_key(&partition) {
            let effects = self
                .coordinator
                .on_committed(now, partition, high_watermark);
            self.effects.extend(effects);
        }
    }

    /// The records of `wait` were appended; the last at `last_offset`.
    pub(crate) fn on_appended(&mut self, now: Now, wait: WaitId, last_offset: i64) {
        let effects = self.coordinator.on_appended(now, wait, last_offset);
        self.effects.extend(effects);
    }

    /// The records of `wait` could not be appended.
    pub(crate) fn on_append_failed(&mut self, now: Now, wait: WaitId, error: ErrorCode) {
        let effects = self.coordinator.on_append_failed(now, wait, error);
        self.effects.extend(effects);
    }

    /// The queued effects, in the order asked for; the queue is left empty.
    pub(crate) fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Whether effects wait to be run.
    pub(crate) fn has_effects(&self) -> bool {
        !self.effects.is_empty()
    }

    /// Panics if the host contradicts itself or the node: `leader_epoch(p)` is the
    /// epoch this node leads offsets partition `p` in.
    pub(crate) fn check_invariants(&self, leader_epoch: impl Fn(i32) -> Option<i32>) {
        for (&partition, &epoch) in &self.loaded {
            assert!(
                self.coordinator.is_loaded(partition),
                "{OFFSETS_TOPIC_NAME}-{partition}: loaded but unknown"
            );
            assert_eq!(
                leader_epoch(partition),
                Some(epoch),
                "{OFFSETS_TOPIC_NAME}-{partition}: groups loaded by a node that does not lead it in epoch {epoch}"
            );
        }
        assert!(self.effects.is_empty(), "group effects left unrun");
        self.coordinator.check_invariants();
    }
}
