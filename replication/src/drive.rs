//! The node drives its replicas: after anything touches a Raft member (a tick, a peer
//! message, a leader's append, a sync completion) the node calls [`Replica::drive`] and
//! acts on what it reports, the same way for every group:
//!
//! 1. A new hard state (epoch, vote) is written to the replica's `raft-state` file and
//!    fsynced before anything else happens (inside [`Replica::drive`]). Hard states
//!    change once per election, so a blocking write is cheap enough. If it fails the
//!    node stops (like a failed metadata sync): it cannot promise its vote any more.
//! 2. Messages go into the outbox of their destination broker ([`crate::outbox`]),
//!    sent at the end of the event, one bundle per broker.
//! 3. A requested log sync starts a group-commit round (or joins the one in flight).
//! 4. Then what is particular to the group. The metadata log applies what committed.
//!    A data partition whose high watermark moved or whose leadership was lost, and any
//!    offsets partition, is noted in `driven.rs`'s `DrivenPartitions`: at the end of the event the
//!    router (`node.rs`) answers its waiting produces and parked fetches and loads or
//!    unloads its groups. Driving never calls back into the request handlers, so a
//!    request's path goes down (handler, drive, replica, Raft, log) and its answer
//!    comes from the router.

use odradek_log::io::Duration;

use crate::group::OFFSETS_TOPIC_NAME;
use crate::io_waits::TimerPurpose;
use crate::metadata::MetadataRecord;
use crate::node::{Node, NodeIo};
use crate::peer::{BrokerId, GroupId, PeerMessage, RaftMessage};
use crate::replica::Replica;
use crate::topics::TopicPartition;

impl Node {
    /// Acts on everything partition `key`'s member has ready; see the module docs.
    pub(crate) fn drive_partition(&mut self, io: &mut impl NodeIo, key: &TopicPartition) {
        if let Some(offset) = self
            .partitions
            .get_mut(key)
            .and_then(|partition| partition.take_damage())
            && self.repair_partition(io, key, offset)
        {
            return; // the new replica was driven already
        }
        let now_ms = io.wall_clock_ms();
        let Some(partition) = self.partitions.get_mut(key) else {
            return;
        };
        let driven = match partition.drive(io, &mut self.outbox, now_ms) {
            Ok(driven) => driven,
            Err(fatal) => {
                self.fatal = Some(fatal);
                return;
            }
        };
        if driven.sync {
            self.start_partition_sync(io, key);
        }
        let waiters_may_move = driven.advanced || driven.lost_leadership;
        if waiters_may_move || key.topic == OFFSETS_TOPIC_NAME {
            self.driven.note(key, waiters_may_move);
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
        let Some(partition) = self.partitions.get_mut(key) else {
            return false;
        };
        if !cut_damage(io, key, partition, offset) {
            return false;
        }
        let damaged = self.partitions.remove(key).expect("present");
        let replicas = damaged.replicas().to_vec();
        let log_config = damaged.log().config().clone();
        self.io_waits.forget_partition(key);
        if let Err(error) = damaged.close(io) {
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
        let driven = match self
            .metadata
            .replica_mut()
            .drive(io, &mut self.outbox, now_ms)
        {
            Ok(driven) => driven,
            Err(fatal) => {
                self.fatal = Some(fatal);
                return;
            }
        };
        if let Some(error) = self.metadata.raft().storage_failure() {
            // The metadata member stopped (a read of its log failed, say): without it
            // this broker learns no more metadata, so it stops, and recovery runs
            // when it is started again, like after a failed metadata sync.
            self.fatal = Some(format!(
                "metadata log failed ({error}); stopping so that recovery runs on restart"
            ));
            return;
        }
        if driven.sync {
            self.start_metadata_sync(io);
        }
        self.apply_committed_metadata(io);
        if self.metadata.raft().leader_id().is_some() {
            self.release_held_metadata(io);
        }
        self.init_cluster_if_first_leader(io, now_ms);
    }

    /// A new leader of a cluster of several brokers whose log has no `cluster-init`
    /// record (the cluster's first election) writes one.
    fn init_cluster_if_first_leader(&mut self, io: &mut impl NodeIo, now_ms: i64) {
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
            let bootstrap = self.config.bootstrap_records.clone();
            for record in std::iter::once(record).chain(bootstrap) {
                if let Err(error) = self.metadata.append(io, record, now_ms) {
                    tracing::warn!("cannot write the cluster-init or a bootstrap record: {error}");
                    break;
                }
            }
            self.start_metadata_sync(io);
        }
    }

    /// Starts the Raft tick timer if some group has other voters and it is not
    /// running. One timer ticks every group of the node.
    pub(crate) fn schedule_raft_tick(&mut self, io: &mut impl NodeIo) {
        let alone = self.metadata.raft().voters().len() <= 1
            && self.partitions.values().all(|p| p.replicas().len() <= 1);
        if self.io_waits.raft_ticking() || alone {
            return;
        }
        let period = Duration::from_millis(self.config.raft_tick_ms.max(1) as u64);
        let at = io.now() + period;
        self.set_timer(io, at, TimerPurpose::RaftTick);
    }

    /// One tick for every group with other voters.
    pub(crate) fn tick_groups(&mut self, io: &mut impl NodeIo) {
        self.expire_forwards(io);
        self.release_held_metadata(io);
        self.gossip_on_tick(io);
        let now_ms = io.wall_clock_ms();
        if self.metadata.raft().voters().len() > 1 {
            self.metadata.replica_mut().tick(io, now_ms);
            self.drive_metadata(io);
        }
        let keys: Vec<TopicPartition> = self
            .partitions
            .iter()
            .filter(|(_, p)| p.replicas().len() > 1)
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            let partition = self.partitions.get_mut(&key).expect("listed");
            partition.tick(io, now_ms);
            self.drive_partition(io, &key);
        }
    }

    /// A bundle from broker `from`: its gossip is noted, each Raft message goes to its
    /// group's member, forwarded proposals to the controller's side. Messages for
    /// groups this node does not have (a partition not created here yet, or deleted)
    /// are dropped; Raft resends.
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
        self.note_gossip(from, &mut message);
        let now_ms = io.wall_clock_ms();
        let forwards = std::mem::take(&mut message.forwards);
        for RaftMessage { group, message } in message.raft {
            let GroupId::Partition(key) = group else {
                self.metadata.replica_mut().step(io, from, message, now_ms);
                self.drive_metadata(io);
                continue;
            };
            let Some(partition) = self.partitions.get_mut(&key) else {
                continue;
            };
            partition.step(io, from, message, now_ms);
            self.drive_partition(io, &key);
        }
        if !forwards.is_empty() {
            self.handle_forwards(io, from, forwards);
        }
    }

    /// Tells partition `key`'s member that the leader appended to its log directly
    /// (a produce), so it replicates the new batches.
    pub(crate) fn replicate_partition(&mut self, io: &mut impl NodeIo, key: &TopicPartition) {
        let now_ms = io.wall_clock_ms();
        let Some(partition) = self.partitions.get_mut(key) else {
            return;
        };
        partition.replicate(io, now_ms);
        self.drive_partition(io, key);
    }
}

/// The first steps of a repair (decision 0010) on `partition`: confirms the damage at
/// `offset` is on the medium, marks the replica recovering, cuts its log. Whether the
/// replica must now be reopened.
fn cut_damage(
    io: &mut impl NodeIo,
    key: &TopicPartition,
    partition: &mut Replica,
    offset: i64,
) -> bool {
    if partition.replicas().len() < 2 {
        // No other replica has it: nothing to confirm or repair (the read that
        // found it logged it, and answered KAFKA_STORAGE_ERROR).
        return false;
    }
    if !partition.log_mut().damage_confirmed(io, offset) {
        return false; // a read fault, not damage on the medium
    }
    tracing::warn!(
        "{key:?}: the batch at offset {offset} is damaged on disk; cutting the log there to fetch it again from the leader"
    );
    if let Err(error) = partition.mark_recovering(io) {
        // Nothing changed: the damage is found again at the next read.
        tracing::error!("{key:?}: cannot mark the replica recovering: {error}");
        return false;
    }
    if let Err(error) = partition.cut_damage(io, offset) {
        // Reopened all the same, as after a crash: recovery runs, the flag is set.
        tracing::error!("{key:?}: cutting the damage at offset {offset}: {error}");
    }
    true
}
