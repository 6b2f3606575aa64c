//! The node's side of replication: driving each partition's Raft member, ticking,
//! routing peer bundles, and sending what the members want sent.
//!
//! After anything touches a member (a tick, a peer message, a produce, a sync
//! completion) the node *drives* it: it takes the member's [`crate::raft::Ready`] and
//! acts on it in the order the core's contract demands.
//!
//! 1. A new hard state (epoch, vote) is written to the replica's `raft-state` file
//!    and fsynced before anything else happens; only then is the member told it is
//!    durable, which releases the messages that depended on it. Hard states change
//!    once per election, so a blocking write is cheap enough. If it fails the node
//!    stops (like a failed metadata sync): it cannot promise its vote any more.
//! 2. Messages go into the outbox of their destination broker. The outbox is sent at
//!    the end of the event, one bundle per broker: every partition's heartbeats to a
//!    broker share one message.
//! 3. A requested log sync starts a group-commit round (or joins the one in flight).
//! 4. The partition's high watermark and epoch are copied from the member; waiting
//!    produces and parked fetches are answered if it moved, or if leadership was lost.

use std::collections::BTreeMap;

use odradek_log::io::{DiskError, Duration};

use crate::group::OFFSETS_TOPIC_NAME;
use crate::metadata::{MetadataLog, MetadataRecord};
use crate::node::{IoOwner, Node, NodeIo, RemoteLeader, TimerPurpose, quorum_voters};
use crate::peer::{BrokerId, BrokerInfo, GroupId, LeaderInfo, PeerMessage, RaftMessage};
use crate::topics::TopicPartition;

/// Every how many Raft ticks a broker gossips its leaderships (once a second by
/// default).
const GOSSIP_EVERY_TICKS: u64 = 10;
use crate::raft::PartitionRaftLog;
use crate::raft::{HardState, Ready};
use crate::replica::{broker_id, raft_node_id, write_hard_state};
use crate::topics::partition_dir;

impl Node {
    /// Acts on everything partition `key`'s member has ready; see the module docs.
    pub(crate) fn drive_partition(&mut self, io: &mut impl NodeIo, key: &TopicPartition) {
        if let Some(offset) = self
            .partitions
            .get_mut(key)
            .and_then(|partition| partition.replica.damaged.take())
            && self.repair_partition(io, key, offset)
        {
            return; // the new replica was driven already
        }
        let now_ms = io.wall_clock_ms();
        let mut sync = false;
        let group = GroupId::Partition(key.clone());
        let dir = partition_dir(&key.topic, key.partition);
        loop {
            let Some(partition) = self.partitions.get_mut(key) else {
                return;
            };
            let ready = partition.raft.take_ready();
            if ready.is_empty() {
                break;
            }
            let hard_state = route_ready(&mut self.outbox, &group, ready, &mut sync);
            if let Some(hard_state) = hard_state {
                if let Err(error) = write_hard_state(io, &dir, hard_state) {
                    self.fatal = Some(hard_state_fatal(&group, &error));
                    return;
                }
                let mut view =
                    PartitionRaftLog::new(&mut partition.log, &mut partition.replica, io, now_ms);
                partition
                    .raft
                    .on_hard_state_persisted(&mut view, hard_state);
            }
        }
        let partition = self.partitions.get_mut(key).expect("checked in the loop");
        let high_watermark = partition.raft.high_watermark();
        let advanced = high_watermark > partition.high_watermark;
        assert!(
            high_watermark >= partition.high_watermark,
            "{key:?}: the high watermark went back from {} to {high_watermark}",
            partition.high_watermark
        );
        partition.high_watermark = high_watermark;
        partition.leader_epoch = partition.raft.leader_epoch();
        let leading = partition.raft.check_leader().ok();
        let lost_leadership = partition.led_epoch.is_some() && partition.led_epoch != leading;
        partition.led_epoch = leading;
        if sync {
            self.start_partition_sync(io, key);
        }
        if advanced || lost_leadership {
            self.resolve_produces(io, key);
            self.wake_fetches(io, key);
        }
        if key.topic == OFFSETS_TOPIC_NAME {
            self.offsets_partition_driven(io, key);
        }
    }

    /// Decision 0010: partition `key`'s log lost a batch it may have acknowledged (the
    /// batch at `offset` failed its checks on every read). The replica marks itself
    /// recovering, cuts its log there and starts again (reopened from disk, as after a
    /// crash) as a member that neither votes nor campaigns until a leader has restored
    /// it; the leader sends what was cut.
    /// Waiting produces and parked fetches are answered as for any lost leadership. A
    /// partition with one replica has nobody to restore it from: the batch stays, and
    /// reads of it keep failing with KAFKA_STORAGE_ERROR. Whether the replica was
    /// rebuilt (and driven).
    fn repair_partition(
        &mut self,
        io: &mut impl NodeIo,
        key: &TopicPartition,
        offset: i64,
    ) -> bool {
        let dir = partition_dir(&key.topic, key.partition);
        let Some(partition) = self.partitions.get_mut(key) else {
            return false;
        };
        if partition.replicas.len() < 2 {
            // No other replica has it: nothing to confirm or repair (the read that
            // found it logged it, and answered KAFKA_STORAGE_ERROR).
            return false;
        }
        if !partition.log.damage_confirmed(io, offset) {
            return false; // a read fault, not damage on the medium
        }
        tracing::warn!(
            "{key:?}: the batch at offset {offset} is damaged on disk; cutting the log there to fetch it again from the leader"
        );
        if let Err(error) = partition.mark_recovering(io, &dir) {
            // Nothing changed: the damage is found again at the next read.
            tracing::error!("{key:?}: cannot mark the replica recovering: {error}");
            return false;
        }
        if let Err(error) = partition.cut_damage(io, offset) {
            // Reopened all the same, as after a crash: recovery runs, the flag is set.
            tracing::error!("{key:?}: cutting the damage at offset {offset}: {error}");
        }
        let damaged = self.partitions.remove(key).expect("present");
        let replicas = damaged.replicas.clone();
        let log_config = damaged.log.config().clone();
        self.io_owners
            .retain(|_, owner| *owner != IoOwner::Partition(key.clone()));
        if let Err(error) = damaged.log.close(io) {
            tracing::warn!("{key:?}: closing the damaged log: {error}");
        }
        self.fail_waiters(io, key);
        match self.open_replica(io, key, log_config, replicas) {
            Ok(replica) => {
                self.partitions.insert(key.clone(), replica);
                self.drive_partition(io, key);
            }
            // Offline until a restart opens it; requests get KAFKA_STORAGE_ERROR.
            Err(error) => {
                tracing::error!("{key:?}: cannot reopen after cutting the damage: {error}")
            }
        }
        true
    }

    /// Acts on everything the metadata quorum's member has ready, like
    /// [`Node::drive_partition`], then applies what it committed. A leader of a
    /// cluster whose log has no `cluster-init` record yet (its first election) writes
    /// one.
    pub(crate) fn drive_metadata(&mut self, io: &mut impl NodeIo) {
        let now_ms = io.wall_clock_ms();
        let mut sync = false;
        let group = GroupId::Metadata;
        loop {
            let ready = self
                .metadata
                .with_raft(io, now_ms, |raft, _| raft.take_ready());
            if ready.is_empty() {
                break;
            }
            let hard_state = route_ready(&mut self.outbox, &group, ready, &mut sync);
            if let Some(hard_state) = hard_state {
                if let Err(error) = write_hard_state(io, &MetadataLog::dir(), hard_state) {
                    self.fatal = Some(hard_state_fatal(&group, &error));
                    return;
                }
                self.metadata.with_raft(io, now_ms, |raft, view| {
                    raft.on_hard_state_persisted(view, hard_state)
                });
            }
        }
        if let Some(error) = self.metadata.raft().storage_failure() {
            // The metadata member stopped (a read of its log failed, say): without it
            // this broker learns no more metadata, so it stops, and recovery runs
            // when it is started again, like after a failed metadata sync.
            self.fatal = Some(format!(
                "metadata log failed ({error}); stopping so that recovery runs on restart"
            ));
            return;
        }
        if sync {
            self.start_metadata_sync(io);
        }
        self.apply_committed_metadata(io);
        if self.metadata.raft().leader_id().is_some() {
            self.release_held_metadata(io);
        }
        let cluster_of_several = self.metadata.raft().voters().len() > 1;
        if cluster_of_several
            && self.metadata.is_leader()
            && self.cluster.cluster_id.is_none()
            && self.metadata.pending_records().next().is_none()
        {
            let record = MetadataRecord::ClusterInit {
                cluster_id: self.new_cluster_id(io),
                node_id: self.config.node_id,
            };
            if let Err(error) = self.metadata.append(io, record, now_ms) {
                tracing::warn!("cannot write the cluster-init record: {error}");
            }
            self.start_metadata_sync(io);
        }
    }

    /// Starts the Raft tick timer if some group has other voters and it is not
    /// running. One timer ticks every group of the node.
    pub(crate) fn schedule_raft_tick(&mut self, io: &mut impl NodeIo) {
        let alone = self.metadata.raft().voters().len() <= 1
            && self.partitions.values().all(|p| p.replicas.len() <= 1);
        if self.raft_ticking || alone {
            return;
        }
        self.raft_ticking = true;
        let period = Duration::from_millis(self.config.raft_tick_ms.max(1) as u64);
        let at = io.now() + period;
        self.set_timer(io, at, TimerPurpose::RaftTick);
    }

    /// One tick for every group with other voters.
    pub(crate) fn tick_groups(&mut self, io: &mut impl NodeIo) {
        self.expire_forwards(io);
        self.release_held_metadata(io);
        if self.gossip_ticks.is_multiple_of(GOSSIP_EVERY_TICKS) {
            self.gossip(io);
        }
        self.gossip_ticks += 1;
        let now_ms = io.wall_clock_ms();
        if self.metadata.raft().voters().len() > 1 {
            self.metadata
                .with_raft(io, now_ms, |raft, view| raft.tick(view));
            self.drive_metadata(io);
        }
        let keys: Vec<TopicPartition> = self
            .partitions
            .iter()
            .filter(|(_, p)| p.replicas.len() > 1)
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            let partition = self.partitions.get_mut(&key).expect("listed");
            let mut view =
                PartitionRaftLog::new(&mut partition.log, &mut partition.replica, &mut *io, now_ms);
            partition.raft.tick(&mut view);
            self.drive_partition(io, &key);
        }
    }

    /// A bundle from broker `from`: each Raft message goes to its group's member.
    /// Messages for groups this node does not have (a partition not created here yet,
    /// or deleted) are dropped; Raft resends.
    pub(crate) fn handle_peer(
        &mut self,
        io: &mut impl NodeIo,
        from: BrokerId,
        mut message: PeerMessage,
    ) {
        if from < 0 || from == self.config.node_id {
            tracing::warn!("a bundle claiming to come from broker {from} was dropped");
            return;
        }
        if let Some(info) = &message.broker
            && info.id == from
        {
            self.peer_endpoints
                .insert(from, (info.host.clone(), info.port));
        }
        for info in std::mem::take(&mut message.leaders) {
            let newer = self
                .remote_leaders
                .get(&info.partition)
                .is_none_or(|known| known.leader_epoch <= info.leader_epoch);
            if newer && self.cluster.topics.contains_key(&info.partition.topic) {
                self.remote_leaders.insert(
                    info.partition.clone(),
                    RemoteLeader {
                        leader: from,
                        leader_epoch: info.leader_epoch,
                        in_sync: info.in_sync,
                    },
                );
            }
        }
        let now_ms = io.wall_clock_ms();
        let forwards = std::mem::take(&mut message.forwards);
        for RaftMessage { group, message } in message.raft {
            let GroupId::Partition(key) = group else {
                self.metadata.with_raft(io, now_ms, |raft, view| {
                    raft.step(view, raft_node_id(from), message)
                });
                self.drive_metadata(io);
                continue;
            };
            let Some(partition) = self.partitions.get_mut(&key) else {
                continue;
            };
            let mut view =
                PartitionRaftLog::new(&mut partition.log, &mut partition.replica, &mut *io, now_ms);
            partition.raft.step(&mut view, raft_node_id(from), message);
            self.drive_partition(io, &key);
        }
        if !forwards.is_empty() {
            self.handle_forwards(io, from, forwards);
        }
    }

    /// Tells every other broker where clients reach this one and which partitions it
    /// leads, with their in-sync replicas: brokers outside a partition's replica set
    /// learn its leader only this way, and followers learn the ISR.
    fn gossip(&mut self, io: &mut impl NodeIo) {
        let lag_ticks = self.replica_lag_ticks();
        let mut leaders = Vec::new();
        for (key, partition) in self.partitions.iter_mut() {
            if partition.is_leader() {
                leaders.push(LeaderInfo {
                    partition: key.clone(),
                    leader_epoch: partition.leader_epoch,
                    in_sync: partition.in_sync_replicas(io, lag_ticks),
                    high_watermark: partition.high_watermark,
                });
            }
        }
        for to in quorum_voters(&self.config) {
            if to != self.config.node_id {
                self.outbox
                    .entry(to)
                    .or_default()
                    .leaders
                    .extend(leaders.iter().cloned());
                self.announce_to.insert(to);
            }
        }
    }

    /// Sends every bundle collected during the event, one per broker.
    pub(crate) fn flush_outbox(&mut self, io: &mut impl NodeIo) {
        let announce_to = std::mem::take(&mut self.announce_to);
        for (to, mut message) in std::mem::take(&mut self.outbox) {
            if !message.is_empty() || announce_to.contains(&to) {
                message.broker = Some(BrokerInfo {
                    id: self.config.node_id,
                    host: self.config.advertised_host.clone(),
                    port: self.config.advertised_port,
                });
                io.send(to, message);
            }
        }
    }

    /// Every broker clients can be sent to, as (id, host, port): this one, and each
    /// peer that said where clients reach it.
    pub(crate) fn client_endpoints(&self) -> Vec<(BrokerId, String, i32)> {
        let mut endpoints = vec![(
            self.config.node_id,
            self.config.advertised_host.clone(),
            self.config.advertised_port,
        )];
        endpoints.extend(
            self.peer_endpoints
                .iter()
                .map(|(&id, (host, port))| (id, host.clone(), *port)),
        );
        endpoints.sort();
        endpoints
    }

    /// Tells partition `key`'s member that the leader appended to its log directly
    /// (a produce), so it replicates the new batches.
    pub(crate) fn replicate_partition(&mut self, io: &mut impl NodeIo, key: &TopicPartition) {
        let now_ms = io.wall_clock_ms();
        let Some(partition) = self.partitions.get_mut(key) else {
            return;
        };
        let mut view =
            PartitionRaftLog::new(&mut partition.log, &mut partition.replica, &mut *io, now_ms);
        partition.raft.replicate(&mut view);
        self.drive_partition(io, key);
    }
}

/// Puts a member's messages into the outbox of their brokers, notes a sync request,
/// and returns the hard state to persist, if any.
fn route_ready(
    outbox: &mut BTreeMap<BrokerId, PeerMessage>,
    group: &GroupId,
    ready: Ready<GroupId>,
    sync: &mut bool,
) -> Option<HardState> {
    for envelope in ready.messages {
        outbox
            .entry(broker_id(envelope.to))
            .or_default()
            .raft
            .push(RaftMessage {
                group: group.clone(),
                message: envelope.message,
            });
    }
    *sync |= ready.sync_log;
    ready.hard_state
}

fn hard_state_fatal(group: &GroupId, error: &DiskError) -> String {
    format!(
        "cannot persist the raft state of {group:?} ({error}); stopping so that recovery runs on restart"
    )
}
