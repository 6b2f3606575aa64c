//! The broker node: one state machine that owns every replica on a broker and answers
//! client requests, driven one [`Event`] at a time through the [`NodeIo`] seam. It is a
//! router: it decides which handler, replica or coordinator an event belongs to and
//! runs the effects that come back.
//!
//! ```text
//!  Event::Client{id, request} ─► produce.rs / fetch.rs / list_offsets.rs / admin.rs /
//!                                 offset_for_leader_epoch.rs / describe_cluster.rs /
//!                                 describe_log_dirs.rs /
//!                                 group_hosting.rs (the coordinator's requests)
//!  Event::Peer{from, bundle}  ─► drive.rs: each Raft message to its Replica, then drive it
//!  Event::Disk(completion)    ─► the Replica whose sync it was, then drive it
//!  Event::Timer(id)           ─► fetch deadline, Raft tick, maintenance, log cleaner step,
//!                                 coordinator wake
//!  end of every event         ─► coordinator effects run, outbox flushed (one bundle per broker)
//! ```
//!
//! The node never blocks and never reaches past the seam. A request that needs a
//! durable change (a produce with acks≠0, a topic creation) waits until a quorum holds
//! it durably (a group of one: until its own fsync); nothing is acknowledged that a
//! crash can lose. docs/architecture.md walks a produce and a fetch end to end.

use std::collections::BTreeMap;

use kafka_protocol::messages::{RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use odradek_log::io::{Disk, DiskCompletion, Duration, Instant, Io, TimerId};
use odradek_log::partition::LogConfig;

use crate::driven::DrivenPartitions;
use crate::error::ErrorCode;
use crate::group::{Coordinator, GroupConfig};
use crate::group_host::GroupHost;
use crate::io_waits::{IoOwner, IoWaits, TimerPurpose};
use crate::metadata::{Applied, ClusterState, MetadataAppendError, MetadataLog, MetadataRecord};
use crate::metadata_waits::{MetadataWait, MetadataWaits, TopicChanges};
use crate::node_error::NodeError;
use crate::outbox::Outbox;
use crate::peer::{BrokerId, ClientEndpoint, GroupId, PeerMessage};
use crate::peer_directory::PeerDirectory;
use crate::pending_forwards::PendingForwards;
use crate::producer_id_pool::ProducerIdPool;
use crate::raft::RaftConfig;
use crate::replica::{PartitionOpenError, Replica, ReplicaInit};
use crate::request::{Request, RequestId};
use crate::topics::{Topic, TopicPartition, partition_dir};
pub use crate::waiting::WAITING_REQUESTS_MAX;
use crate::waiting::{PendingFetch, PendingProduce, Waiting};

/// Everything that can happen to a node.
// A request is moved once from the driver into the node; boxing it would only add an
// allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A client sent a request.
    Client {
        /// The driver's id for it; the response carries the same id.
        id: RequestId,
        /// The request.
        request: Request,
    },
    /// A timer the node asked for came due.
    Timer(TimerId),
    /// An asynchronous disk operation completed.
    Disk(DiskCompletion),
    /// Another broker of the cluster sent a bundle.
    Peer {
        /// The sender's `node.id`, as the transport authenticated it.
        from: BrokerId,
        /// The bundle.
        message: PeerMessage,
    },
}

/// The seam as the node sees it: [`Io`] plus the way back to clients.
pub trait NodeIo: Io {
    /// Delivers the response to request `id`. Called exactly once per client request,
    /// except a Produce with `acks=0`, which is never answered (Kafka's rule).
    fn respond(&mut self, id: RequestId, response: ResponseKind);

    /// Sends `message` to broker `to`, best effort: it may be lost, delayed, duplicated
    /// or reordered, and nothing says so. Sending to an unknown broker drops it.
    fn send(&mut self, to: BrokerId, message: PeerMessage);
}

/// The node's configuration. Field names follow Kafka's broker config keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// `node.id`.
    pub node_id: i32,
    /// Where clients are told to connect, one endpoint per client listener (from
    /// `advertised.listeners`); a request is answered with the endpoints of the
    /// listener it came through ([`crate::Request::listener`]).
    pub endpoints: Vec<ClientEndpoint>,
    /// The data directory as the operator configured it (`log.dirs`), as
    /// DescribeLogDirs names it; the node reaches its files through the seam only.
    pub log_dir: String,
    /// `auto.create.topics.enable`.
    pub auto_create_topics_enable: bool,
    /// `num.partitions`: partitions of an auto-created topic, and of a CreateTopics
    /// that asks for the default (-1).
    pub num_partitions: i32,
    /// `default.replication.factor`.
    pub default_replication_factor: i16,
    /// `min.insync.replicas` (broker default).
    pub min_insync_replicas: i32,
    /// Broker-wide log defaults (`log.segment.bytes`, `log.retention.ms`, ...).
    pub log: LogConfig,
    /// `log.retention.check.interval.ms`.
    pub retention_check_interval_ms: i64,
    /// `log.cleaner.enable`: whether compacted topics are cleaned.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.backoff.ms`: how long the cleaner sleeps when nothing is dirty
    /// enough.
    pub log_cleaner_backoff_ms: i64,
    /// Bytes the cleaner reads and writes per step (one step per
    /// [`CLEANER_STEP_INTERVAL_MS`] while a pass runs): its I/O budget, so that a pass
    /// never holds the event loop long.
    pub log_cleaner_step_bytes: u64,
    /// The metadata quorum's voters (`controller.quorum.voters`), this node included.
    /// Every voter is also a broker that hosts replicas. Empty means a single-node
    /// cluster of this node alone.
    pub voters: Vec<BrokerId>,
    /// How often the node ticks every Raft group it is in.
    pub raft_tick_ms: i64,
    /// Raft's election timeout, in ticks: a follower that hears no leader for a random
    /// time in `[T, 2T)` ticks starts an election.
    pub election_timeout_ticks: u64,
    /// The group coordinator's settings (`offsets.topic.num.partitions`, session
    /// timeouts, `offsets.retention.minutes`, ...).
    pub group: GroupConfig,
    /// `offsets.topic.replication.factor`, capped at the number of brokers.
    pub offsets_topic_replication_factor: i16,
    /// `offsets.topic.segment.bytes`: `__consumer_offsets`' segments, small enough that
    /// the cleaner gets closed segments to compact.
    pub offsets_topic_segment_bytes: i32,
    /// The authorizer in force (`authorizer.class.name` set to Kafka's
    /// StandardAuthorizer, with `super.users` and `allow.everyone.if.no.acl.found`);
    /// `None`: every request is allowed and ACL requests are refused.
    pub authorizer: Option<crate::acl::Authorizer>,
    /// Records `odradek format` left for the cluster's first metadata (Kafka's
    /// bootstrap records: `--add-scram` users): appended right after the cluster-init
    /// record, by whichever broker writes that, so they are written once per cluster.
    pub bootstrap_records: Vec<MetadataRecord>,
    /// Deliberate bugs of every Raft group on this node, for the simulator's mutation
    /// tests (docs/decisions/0005-mutants.md); all off by default.
    #[cfg(feature = "mutants")]
    pub raft_mutants: crate::raft::RaftMutants,
}

impl Default for NodeConfig {
    fn default() -> NodeConfig {
        NodeConfig {
            node_id: 1,
            endpoints: vec![ClientEndpoint {
                listener: "PLAINTEXT".to_string(),
                host: "127.0.0.1".to_string(),
                port: 9092,
            }],
            log_dir: "odradek-data".to_string(),
            auto_create_topics_enable: true,
            num_partitions: 1,
            default_replication_factor: 1,
            min_insync_replicas: 1,
            log: LogConfig::default(),
            retention_check_interval_ms: 300_000,
            log_cleaner_enable: true,
            log_cleaner_backoff_ms: 15_000,
            log_cleaner_step_bytes: 1 << 20,
            voters: Vec::new(),
            raft_tick_ms: 100,
            election_timeout_ticks: 10,
            group: GroupConfig::default(),
            offsets_topic_replication_factor: 3,
            offsets_topic_segment_bytes: 104_857_600,
            authorizer: None,
            bootstrap_records: Vec::new(),
            #[cfg(feature = "mutants")]
            raft_mutants: crate::raft::RaftMutants::default(),
        }
    }
}

/// How often the cleaner takes a step while a pass runs.
pub const CLEANER_STEP_INTERVAL_MS: u64 = 10;

/// The broker node. See the module documentation.
pub struct Node {
    pub(crate) config: NodeConfig,
    /// The data directory's `meta.properties`.
    identity: crate::identity::Identity,
    pub(crate) cluster: ClusterState,
    pub(crate) metadata: MetadataLog,
    pub(crate) partitions: BTreeMap<TopicPartition, Replica>,
    /// Disk operations in flight and timers set.
    pub(crate) io_waits: IoWaits,
    /// Requests waiting on the metadata log or for a controller.
    pub(crate) metadata_waits: MetadataWaits,
    /// Topic creations and deletions appended but not applied yet.
    pub(crate) topic_changes: TopicChanges,
    /// Produces waiting for their batches to be durable or committed.
    pub(crate) pending_produces: Waiting<PendingProduce>,
    /// Fetches waiting for bytes or their deadline.
    pub(crate) parked_fetches: Waiting<PendingFetch>,
    /// The producer ids InitProducerId hands out.
    pub(crate) producer_ids: ProducerIdPool,
    /// Set when the node cannot go on (its metadata log failed); the driver stops it.
    pub(crate) fatal: Option<String>,
    /// Set by [`Node::shutdown`]: the node ignores every later event.
    stopped: bool,
    /// Bundles being collected for each broker; sent at the end of the event.
    pub(crate) outbox: Outbox,
    /// Partitions driven during the event, settled at its end.
    pub(crate) driven: DrivenPartitions,
    /// What the peers' gossip says: where clients reach them, what they lead.
    pub(crate) peers: PeerDirectory,
    /// Set while [`Node::open`] runs.
    opening: bool,
    /// The consumer-group coordinator of the offsets partitions this node leads.
    pub(crate) groups: GroupHost,
    /// The partition the cleaner worked on last, and whether its pass goes on: the
    /// next is looked for after it, so every compacted partition gets its turn.
    pub(crate) cleaning: Option<(TopicPartition, bool)>,
    /// Topic creations forwarded to the controller and not answered yet.
    pub(crate) forwards: PendingForwards<MetadataWait>,
    /// Group requests whose answers show only what their principal may see, until
    /// the coordinator answers them (see group_authorization.rs).
    pub(crate) group_views: BTreeMap<RequestId, crate::group_view::GroupView>,
}

impl Node {
    /// Opens the node's data directory: replays the metadata log, opens (and recovers)
    /// every partition's log, removes directories of topics deleted before a crash, and
    /// schedules retention.
    pub fn open(io: &mut impl NodeIo, config: NodeConfig) -> Result<Node, NodeError> {
        let now_ms = io.wall_clock_ms();
        let voters = quorum_voters(&config);
        #[cfg(feature = "mutants")]
        let (format_lost_directory, serve_stale_metadata) = (
            config.log.mutants.format_lost_directory,
            config.log.mutants.serve_before_metadata_caught_up,
        );
        #[cfg(not(feature = "mutants"))]
        let (format_lost_directory, serve_stale_metadata) = (false, false);
        let random_seed = io.random();
        let identity = crate::identity::open_identity(
            io,
            config.node_id,
            voters.len(),
            format_lost_directory,
            random_seed,
        )?;
        let metadata = MetadataLog::open(
            io,
            config.node_id,
            &voters,
            raft_config(&config),
            random_seed,
            now_ms,
            !serve_stale_metadata,
        )?;
        let mut node = Node::new(config, identity, metadata, random_seed);
        // One voter: the member elects itself now and everything durable in the log is
        // committed, so the node starts with all its topics and partitions. In a
        // cluster, with what it applied before it stopped (its saved commit point);
        // the rest arrives when the quorum's leader teaches the high watermark.
        node.drive_metadata(io);
        if let Some(fatal) = node.fatal.take() {
            return Err(NodeError::MetadataAppend(fatal));
        }
        if voters.len() == 1 {
            node.init_single_broker(io)?;
        }
        if let Some(fatal) = node.fatal.take() {
            return Err(NodeError::MetadataAppend(fatal));
        }
        node.opening = false;
        // Ids reserved before a restart may have been handed out: start a new block.
        node.producer_ids
            .start_at(node.cluster.producer_ids_reserved_until);
        node.schedule_maintenance(io);
        node.schedule_raft_tick(io);
        node.schedule_cleaner(io, CLEANER_STEP_INTERVAL_MS);
        node.settle_event(io);
        node.check_invariants();
        Ok(node)
    }

    /// A node over its opened identity and metadata log, with nothing applied yet.
    fn new(
        config: NodeConfig,
        identity: crate::identity::Identity,
        metadata: MetadataLog,
        random_seed: u64,
    ) -> Node {
        let group_config = config.group.clone();
        Node {
            config,
            identity,
            cluster: ClusterState::default(),
            metadata,
            partitions: BTreeMap::new(),
            io_waits: IoWaits::default(),
            metadata_waits: MetadataWaits::default(),
            topic_changes: TopicChanges::default(),
            pending_produces: Waiting::default(),
            parked_fetches: Waiting::default(),
            producer_ids: ProducerIdPool::default(),
            fatal: None,
            stopped: false,
            outbox: Outbox::default(),
            driven: DrivenPartitions::default(),
            peers: PeerDirectory::default(),
            opening: true,
            // Derived from the seed already drawn, so that the coordinator adds no
            // draw to the node's random stream.
            groups: GroupHost::new(group_config, random_seed ^ 0x9e37_79b9_7f4a_7c15),
            cleaning: None,
            forwards: PendingForwards::default(),
            group_views: BTreeMap::new(),
        }
    }

    /// A single broker is its own cluster: at its first start it writes the
    /// cluster-init record, durably, and at every start it removes the directories of
    /// topics deleted before a crash.
    fn init_single_broker(&mut self, io: &mut impl NodeIo) -> Result<(), NodeError> {
        if self.cluster.cluster_id.is_none() {
            let cluster_id = self.new_cluster_id(io);
            let record = MetadataRecord::ClusterInit {
                cluster_id,
                node_id: self.config.node_id,
            };
            // No event loop runs yet to deliver sync completions, so start-up makes
            // the first record durable the blocking way before serving anyone.
            let now_ms = io.wall_clock_ms();
            let bootstrap = self.config.bootstrap_records.clone();
            for record in std::iter::once(record).chain(bootstrap) {
                self.metadata
                    .append(io, record, now_ms)
                    .map_err(|error| NodeError::MetadataAppend(error.to_string()))?;
            }
            self.metadata
                .flush_now(io, now_ms)
                .map_err(|error| NodeError::MetadataAppend(error.to_string()))?;
            self.drive_metadata(io);
        }
        remove_orphan_partition_dirs(io, &self.cluster)
    }

    /// Handles one event. The driver calls this for every event, one at a time.
    pub fn handle(&mut self, io: &mut impl NodeIo, event: Event) {
        if self.fatal.is_some() || self.stopped {
            return;
        }
        match event {
            Event::Client { id, request } => self.handle_request(io, id, request),
            Event::Timer(timer) => self.handle_timer(io, timer),
            Event::Disk(completion) => self.handle_disk(io, completion),
            Event::Peer { from, message } => self.handle_peer(io, from, message),
        }
        self.settle_event(io);
        self.flush_outbox(io);
        self.check_invariants();
    }

    /// Why the node stopped serving, if it did. The driver exits the process so that
    /// recovery runs on restart (a failed fsync cannot be retried safely).
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// Clean shutdown: makes everything appended durable (blocking) and closes every
    /// log, sealing its active segment so the next start need not re-check it.
    /// Acknowledged data was durable already; this only saves work at the next start.
    /// The node serves nothing afterwards.
    pub fn shutdown(&mut self, io: &mut impl NodeIo) {
        for (key, mut partition) in std::mem::take(&mut self.partitions) {
            // A log with a sync in flight cannot be flushed the blocking way; closing it
            // unsealed only means the next start re-checks its active segment.
            if !partition.log().sync_in_flight()
                && let Err(error) = partition.log_mut().flush_now(io)
            {
                tracing::warn!("shutdown flush of {key:?}: {error}");
            }
            if let Err(error) = partition.close(io) {
                tracing::warn!("closing {key:?}: {error}");
            }
        }
        self.stopped = true;
    }

    /// The API keys this node answers; the front end routes exactly these to it and
    /// answers ApiVersions itself.
    pub fn handles(api_key: kafka_protocol::messages::ApiKey) -> bool {
        use kafka_protocol::messages::ApiKey;
        matches!(
            api_key,
            ApiKey::Produce
                | ApiKey::Fetch
                | ApiKey::ListOffsets
                | ApiKey::Metadata
                | ApiKey::CreateTopics
                | ApiKey::DeleteTopics
                | ApiKey::CreatePartitions
                | ApiKey::InitProducerId
                | ApiKey::DescribeConfigs
                | ApiKey::IncrementalAlterConfigs
                | ApiKey::AlterConfigs
                | ApiKey::FindCoordinator
                | ApiKey::JoinGroup
                | ApiKey::SyncGroup
                | ApiKey::Heartbeat
                | ApiKey::LeaveGroup
                | ApiKey::OffsetCommit
                | ApiKey::OffsetFetch
                | ApiKey::DescribeGroups
                | ApiKey::ListGroups
                | ApiKey::DeleteGroups
                | ApiKey::OffsetForLeaderEpoch
                | ApiKey::DescribeCluster
                | ApiKey::DescribeLogDirs
                | ApiKey::OffsetDelete
                | ApiKey::DeleteRecords
                | ApiKey::CreateAcls
                | ApiKey::DescribeAcls
                | ApiKey::DeleteAcls
                | ApiKey::AlterUserScramCredentials
                | ApiKey::DescribeUserScramCredentials
                | ApiKey::DescribeClientQuotas
        )
    }

    /// The node's configuration.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// The id a cluster-init record names: the one the directory was formatted with,
    /// or a new random one.
    pub(crate) fn new_cluster_id(&self, io: &mut impl NodeIo) -> String {
        match &self.identity.cluster_id {
            Some(id) => id.clone(),
            None => crate::identity::random_id(io),
        }
    }

    /// The cluster metadata as applied so far.
    pub fn cluster(&self) -> &ClusterState {
        &self.cluster
    }

    /// The group coordinator (the groups of the offsets partitions this node leads).
    pub fn coordinator(&self) -> &Coordinator {
        self.groups.coordinator()
    }

    /// A partition, if this node has it.
    pub fn partition(&self, topic_partition: &TopicPartition) -> Option<&Replica> {
        self.partitions.get(topic_partition)
    }

    /// The metadata log and its quorum member (for checkers and tools).
    pub fn metadata(&self) -> &crate::metadata::MetadataLog {
        &self.metadata
    }

    /// Every partition this node holds a replica of.
    pub fn partitions(&self) -> impl Iterator<Item = (&TopicPartition, &Replica)> {
        self.partitions.iter()
    }

    /// The batches of `key` from its log start offset up to its high watermark, as
    /// `(base offset, last offset, partition leader epoch, CRC)`: what a checker
    /// compares across replicas, which must agree below their high watermarks. `None`
    /// if this node has no replica of `key`, or its log cannot be read.
    pub fn committed_batches(
        &mut self,
        disk: &mut impl Disk,
        key: &TopicPartition,
    ) -> Option<Vec<(i64, i64, i32, u32)>> {
        let log = self.committed_log(disk, key)?;
        let mut bytes = &log[..];
        let mut batches = Vec::new();
        while !bytes.is_empty() {
            let header = odradek_log::batch::BatchHeader::parse(bytes).ok()?;
            let size = usize::try_from(header.size_bytes()).ok()?.min(bytes.len());
            batches.push((
                header.base_offset,
                header.last_offset(),
                header.partition_leader_epoch,
                header.crc,
            ));
            bytes = &bytes[size..];
        }
        Some(batches)
    }

    /// The whole batches of `key` from its log start offset up to its high watermark,
    /// as stored (for checkers and tests). `None` if this node has no replica of
    /// `key`, or its log cannot be read.
    pub fn committed_log(&mut self, disk: &mut impl Disk, key: &TopicPartition) -> Option<Vec<u8>> {
        let partition = self.partitions.get_mut(key)?;
        let high_watermark = partition.high_watermark();
        let mut offset = partition.log().log_start_offset();
        let mut log = Vec::new();
        while offset < high_watermark {
            let read = partition
                .log_mut()
                .read(disk, offset, high_watermark, 1 << 20)
                .ok()?;
            if read.next_offset <= offset {
                // Nothing whole below the high watermark from here.
                break;
            }
            log.extend_from_slice(&read.bytes);
            offset = read.next_offset;
        }
        Some(log)
    }

    /// Panics if the node's state contradicts itself. Cheap enough to run after
    /// every event (TigerBeetle's habit).
    pub fn check_invariants(&self) {
        if self.fatal.is_some() {
            // Stopping: a step may have been cut short, and the driver drops this
            // state without using it.
            return;
        }
        for (key, partition) in &self.partitions {
            let log = partition.log();
            // A follower may know a high watermark above what it holds durably (the
            // leader's quorum holds it); a group of one has only its own disk.
            assert!(
                partition.replicas().len() > 1
                    || partition.high_watermark() <= log.durable_offset(),
                "{key:?}: high watermark {} above durable offset {}",
                partition.high_watermark(),
                log.durable_offset()
            );
            assert!(
                log.log_start_offset() <= log.log_end_offset(),
                "{key:?}: start after end"
            );
            let topic = self.cluster.topics.get(&key.topic);
            assert!(
                topic.is_some_and(|t| key.partition < t.partitions),
                "{key:?}: partition without a topic"
            );
        }
        self.groups.check_invariants(|partition| {
            let key = TopicPartition::new(crate::group::OFFSETS_TOPIC_NAME, partition);
            self.partitions.get(&key)?.check_leader().ok()
        });
        assert!(self.driven.is_empty(), "driven partitions left unsettled");
    }

    fn handle_request(&mut self, io: &mut impl NodeIo, id: RequestId, request: Request) {
        match &request.body {
            RequestKind::Produce(_) => self.handle_produce(io, id, request),
            RequestKind::Fetch(_) => self.handle_fetch(io, id, request),
            RequestKind::ListOffsets(_) => self.handle_list_offsets(io, id, request),
            RequestKind::Metadata(_) => {
                if let Some(request) = self.hold_for_controller(io, id, request) {
                    self.handle_metadata(io, id, request, true);
                }
            }
            RequestKind::CreateTopics(_) => self.handle_create_topics(io, id, request),
            RequestKind::DeleteTopics(_) => self.handle_delete_topics(io, id, request),
            RequestKind::CreatePartitions(_) => self.handle_create_partitions(io, id, request),
            RequestKind::InitProducerId(_) => self.handle_init_producer_id(io, id, request),
            RequestKind::DescribeConfigs(_) => self.handle_describe_configs(io, id, request),
            RequestKind::IncrementalAlterConfigs(_) => {
                self.handle_incremental_alter_configs(io, id, request)
            }
            RequestKind::AlterConfigs(_) => self.handle_alter_configs(io, id, request),
            RequestKind::FindCoordinator(_) => self.handle_find_coordinator(io, id, request, true),
            RequestKind::OffsetForLeaderEpoch(_) => {
                self.handle_offset_for_leader_epoch(io, id, request)
            }
            RequestKind::DescribeCluster(_) => self.handle_describe_cluster(io, id, request),
            RequestKind::DescribeLogDirs(_) => self.handle_describe_log_dirs(io, id, request),
            RequestKind::DeleteRecords(_) => self.handle_delete_records(io, id, request),
            RequestKind::CreateAcls(_) => self.handle_create_acls(io, id, request),
            RequestKind::DescribeAcls(_) => self.handle_describe_acls(io, id, request),
            RequestKind::DeleteAcls(_) => self.handle_delete_acls(io, id, request),
            RequestKind::AlterUserScramCredentials(_) => {
                self.handle_alter_user_scram_credentials(io, id, request)
            }
            RequestKind::DescribeUserScramCredentials(_) => {
                self.handle_describe_user_scram_credentials(io, id, request)
            }
            RequestKind::DescribeClientQuotas(_) => {
                self.handle_describe_client_quotas(io, id, request)
            }
            body if Coordinator::handles(body) => self.handle_group_request(io, id, request),
            other => panic!(
                "the front end routed a request the node does not handle: {:?}",
                std::mem::discriminant(other)
            ),
        }
    }

    fn handle_timer(&mut self, io: &mut impl NodeIo, timer: TimerId) {
        let Some(purpose) = self.io_waits.fired(timer) else {
            return;
        };
        match purpose {
            TimerPurpose::FetchDeadline(id) => self.fetch_deadline(io, id),
            TimerPurpose::Maintenance => {
                self.run_maintenance(io);
                self.schedule_maintenance(io);
            }
            TimerPurpose::Clean => self.run_cleaner(io),
            TimerPurpose::RaftTick => {
                self.tick_groups(io);
                self.schedule_raft_tick(io);
            }
            TimerPurpose::GroupWake(_) => self.group_wake(io),
        }
    }

    fn handle_disk(&mut self, io: &mut impl NodeIo, completion: DiskCompletion) {
        let Some(owner) = self.io_waits.completed(completion.io) else {
            // The partition was deleted while its sync was in flight.
            return;
        };
        match owner {
            IoOwner::Metadata => {
                let now_ms = io.wall_clock_ms();
                self.metadata.on_sync_complete(io, &completion, now_ms);
                if let Some(error) = self.metadata.failure() {
                    self.fatal = Some(format!(
                        "metadata log sync failed ({error}); stopping so that recovery runs on restart"
                    ));
                    return;
                }
                self.drive_metadata(io);
                self.start_metadata_sync(io);
            }
            IoOwner::Partition(key) => {
                let Some(partition) = self.partitions.get_mut(&key) else {
                    return;
                };
                let advanced = partition.on_log_sync_complete(&completion);
                if partition.log().failure().is_some() {
                    self.fail_waiters(io, &key);
                    return;
                }
                // BUGGIFY: run maintenance (time-based roll, retention) now rather
                // than at its timer, between two sync rounds.
                if io.buggify("maintenance-early") {
                    let now_ms = io.wall_clock_ms();
                    let high_watermark = partition.high_watermark();
                    if let Err(error) =
                        partition
                            .log_mut()
                            .maintain_below(io, now_ms, high_watermark)
                    {
                        tracing::warn!("early maintenance of {key:?}: {error}");
                    }
                }
                if advanced {
                    let now_ms = io.wall_clock_ms();
                    partition.on_log_synced(io, now_ms);
                }
                self.drive_partition(io, &key);
                self.start_partition_sync(io, &key);
            }
        }
    }

    /// Starts a group-commit round on a partition if it has undurable bytes and no
    /// round in flight.
    pub(crate) fn start_partition_sync(&mut self, io: &mut impl NodeIo, key: &TopicPartition) {
        let Some(partition) = self.partitions.get_mut(key) else {
            return;
        };
        for io_id in partition.start_sync(io) {
            self.io_waits.own(io_id, IoOwner::Partition(key.clone()));
        }
    }

    pub(crate) fn start_metadata_sync(&mut self, io: &mut impl NodeIo) {
        for io_id in self.metadata.start_sync(io) {
            self.io_waits.own(io_id, IoOwner::Metadata);
        }
    }

    /// Appends a metadata record and starts making it durable. Returns the offset a
    /// waiter must see durable.
    pub(crate) fn append_metadata(
        &mut self,
        io: &mut impl NodeIo,
        record: MetadataRecord,
    ) -> Result<i64, MetadataAppendError> {
        let now_ms = io.wall_clock_ms();
        let offset = self.metadata.append(io, record, now_ms)?;
        self.drive_metadata(io);
        self.start_metadata_sync(io);
        Ok(offset)
    }

    /// Opens (recovers) this node's replica of `key`: its log, its epoch cache rebuilt
    /// from the batch headers, its hard state.
    pub(crate) fn open_replica(
        &mut self,
        io: &mut impl NodeIo,
        key: &TopicPartition,
        log_config: LogConfig,
        replicas: Vec<BrokerId>,
    ) -> Result<Replica, NodeError> {
        let random_seed = io.random();
        let now_ms = io.wall_clock_ms();
        let dir = partition_dir(&key.topic, key.partition);
        let init = ReplicaInit {
            group: GroupId::Partition(key.clone()),
            dir: dir.clone(),
            log_config,
            repair_from_peers: replicas.len() > 1,
            replicas,
            node_id: self.config.node_id,
            raft_config: raft_config(&self.config),
            random_seed,
        };
        io.recovery_hint(true);
        let opened = Replica::open(io, init, now_ms).map_err(|error| PartitionOpenError {
            dir,
            error: error.to_string(),
        });
        io.recovery_hint(false);
        let mut replica = opened.map_err(NodeError::from)?;
        if let Some(topic) = self.cluster.topics.get(&key.topic) {
            replica.delete_records_below(io, topic.deleted_below(key.partition));
        }
        Ok(replica)
    }

    /// Applies newly committed metadata records, then releases the requests that
    /// waited for them.
    pub(crate) fn apply_committed_metadata(&mut self, io: &mut impl NodeIo) {
        let records = match self.metadata.take_committed(io) {
            Ok(records) => records,
            Err(error) => {
                self.fatal = Some(format!("cannot apply the metadata log: {error}"));
                return;
            }
        };
        for (_, record) in &records {
            if let Err(fatal) = self.note_applying(record) {
                self.fatal = Some(fatal);
                return;
            }
            if self.skips_replayed_record(record) {
                continue;
            }
            match self.cluster.apply(record) {
                Applied::Nothing => {}
                Applied::PartitionsCreated { topic, partitions } => {
                    if !self.open_created_partitions(io, &topic, partitions) {
                        return;
                    }
                    self.schedule_raft_tick(io);
                    self.schedule_cleaner(io, CLEANER_STEP_INTERVAL_MS);
                }
                Applied::TopicDeleted { topic } => {
                    self.peers.forget_topic(&topic.name);
                    self.remove_topic_partitions(io, &topic);
                }
                Applied::RecordsDeleted { partitions } => {
                    self.delete_records_below(io, &partitions);
                }
                Applied::ConfigsAltered { topics, brokers } => {
                    self.reconfigure_replicas(|topic| brokers || topics.iter().any(|t| t == topic));
                    self.schedule_cleaner(io, CLEANER_STEP_INTERVAL_MS);
                }
            }
        }
        self.release_metadata_waits(io);
    }

    /// Mutants `alter_configs_not_replayed` and `deleted_records_not_replayed`: while
    /// the node opens, its metadata log's alter-configs or delete-records records are
    /// not applied.
    #[cfg(feature = "mutants")]
    fn skips_replayed_record(&self, record: &MetadataRecord) -> bool {
        let mutants = &self.config.log.mutants;
        self.opening
            && match record {
                MetadataRecord::AlterConfigs { .. } => mutants.alter_configs_not_replayed,
                MetadataRecord::DeleteRecords { .. } => mutants.deleted_records_not_replayed,
                _ => false,
            }
    }

    #[cfg(not(feature = "mutants"))]
    fn skips_replayed_record(&self, _record: &MetadataRecord) -> bool {
        false
    }

    /// Moves the start clients see of this node's replicas of `partitions` to where the
    /// applied metadata says DeleteRecords moved it.
    fn delete_records_below(&mut self, io: &mut impl NodeIo, partitions: &[TopicPartition]) {
        for key in partitions {
            if let (Some(topic), Some(replica)) = (
                self.cluster.topics.get(&key.topic),
                self.partitions.get_mut(key),
            ) {
                replica.delete_records_below(io, topic.deleted_below(key.partition));
            }
        }
    }

    /// The log settings a topic without overrides runs with on this broker: the
    /// broker's file with the dynamic broker configs applied.
    pub(crate) fn log_defaults(&self) -> LogConfig {
        self.cluster
            .dynamic
            .log_defaults(&self.config.log, self.config.node_id)
    }

    /// Gives every replica of the topics `affected` names its topic's settings as
    /// they are now applied; they take effect from the next append or maintenance.
    fn reconfigure_replicas(&mut self, affected: impl Fn(&str) -> bool) {
        let defaults = self.log_defaults();
        for (key, replica) in &mut self.partitions {
            if let Some(topic) = self.cluster.topics.get(&key.topic)
                && affected(&key.topic)
            {
                replica
                    .log_mut()
                    .set_config(topic.config.effective(&defaults));
            }
        }
    }

    /// What this node notes as `record` applies: the creation or deletion it was
    /// waiting for is done. A cluster-init record naming another cluster than the one
    /// this directory was formatted for is fatal (the `Err` says why).
    fn note_applying(&mut self, record: &MetadataRecord) -> Result<(), String> {
        match record {
            MetadataRecord::CreateTopic { name, .. } => {
                self.topic_changes.created(name);
            }
            MetadataRecord::DeleteTopic { name, .. } => {
                self.topic_changes.deleted(name);
            }
            MetadataRecord::ClusterInit { cluster_id, .. } => {
                if let Some(formatted) = &self.identity.cluster_id
                    && formatted != cluster_id
                    && self.cluster.cluster_id.is_none()
                {
                    // Formatted for another cluster: its voters point elsewhere.
                    return Err(format!(
                        "this broker's data directory was formatted for cluster \
                         {formatted}, but its metadata quorum is cluster {cluster_id}"
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Opens this node's replicas of `topic`'s new `partitions`. False if one failed
    /// at start-up, which is fatal (set).
    fn open_created_partitions(
        &mut self,
        io: &mut impl NodeIo,
        topic: &str,
        partitions: impl IntoIterator<Item = i32>,
    ) -> bool {
        let log_config = self.cluster.topics[topic]
            .config
            .effective(&self.log_defaults());
        for partition in partitions {
            let replicas = self.cluster.topics[topic].replicas_of(partition, self.config.node_id);
            if !replicas.contains(&self.config.node_id) {
                continue;
            }
            let key = TopicPartition::new(topic, partition);
            match self.open_replica(io, &key, log_config.clone(), replicas) {
                Ok(replica) => {
                    self.partitions.insert(key.clone(), replica);
                    self.drive_partition(io, &key);
                }
                Err(error) if self.opening => {
                    // At start-up a partition that cannot open fails the start, as it
                    // always did: the driver retries, or the operator sees why.
                    self.fatal = Some(format!("cannot open {key:?}: {error}"));
                    return false;
                }
                Err(error) => {
                    // The topic exists but this partition is offline until a restart
                    // opens it; requests to it get KAFKA_STORAGE_ERROR.
                    tracing::warn!("cannot create {key:?}: {error}");
                }
            }
        }
        true
    }

    /// Answers (or handles again) every request whose metadata records are applied.
    pub(crate) fn release_metadata_waits(&mut self, io: &mut impl NodeIo) {
        let applied = self.metadata.applied_offset();
        // A record this node appended and a new leader cut is answered now (it is
        // confirmed against the applied state, so as NOT_CONTROLLER).
        let metadata = &self.metadata;
        let ready = self
            .metadata_waits
            .take_ready(applied, |offset| metadata.was_cut(offset));
        for (id, wait) in ready {
            self.run_metadata_wait(io, id, wait);
        }
        // A create-topic record this node appended, or was told of, whose offset is now
        // applied without the topic appearing was cut by a leader change.
        let topics = &self.cluster.topics;
        self.topic_changes
            .forget_cut(applied, |name| topics.contains_key(name));
    }

    /// A topic creation or deletion answered once its record's offset is applied
    /// really happened only if the applied state shows it: a leader change may have
    /// cut the record and put another at its offset. Such a topic is answered
    /// NOT_CONTROLLER (retriable: the client asks the controller again); so is a topic
    /// said to exist already on the word of such a record.
    fn confirm_applied(&self, response: &mut ResponseKind) {
        let not_controller = ErrorCode::NotController.code();
        match response {
            ResponseKind::CreateTopics(created) => {
                let already_exists = ErrorCode::TopicAlreadyExists.code();
                for topic in &mut created.topics {
                    if (topic.error_code == 0 || topic.error_code == already_exists)
                        && !self.cluster.topics.contains_key(topic.name.0.as_str())
                    {
                        topic.error_code = not_controller;
                        topic.error_message = Some(StrBytes::from_static_str(
                            "the creation was not committed; retry",
                        ));
                    }
                }
            }
            ResponseKind::DeleteTopics(deleted) => {
                for topic in &mut deleted.responses {
                    let name = topic.name.as_ref().map(|name| name.0.as_str());
                    if topic.error_code == 0
                        && name.is_some_and(|name| self.cluster.topics.contains_key(name))
                    {
                        topic.error_code = not_controller;
                        topic.error_message = Some(StrBytes::from_static_str(
                            "the deletion was not committed; retry",
                        ));
                    }
                }
            }
            _ => {}
        }
    }

    /// [`Node::confirm_applied`] for CreatePartitions, whose answer does not carry the
    /// counts asked for: a topic whose applied partition count is below `counts` had
    /// its record cut, and is answered NOT_CONTROLLER.
    fn confirm_partitions(
        &self,
        response: &mut kafka_protocol::messages::CreatePartitionsResponse,
        counts: &[(String, i32)],
    ) {
        for result in &mut response.results {
            let name = result.name.0.as_str();
            let asked = counts.iter().find(|(topic, _)| topic == name);
            let applied = self.cluster.topics.get(name).map(|topic| topic.partitions);
            if result.error_code == 0
                && let Some((_, count)) = asked
                && applied.is_none_or(|applied| applied < *count)
            {
                result.error_code = ErrorCode::NotController.code();
                result.error_message = Some(StrBytes::from_static_str(
                    "the new partitions were not committed; retry",
                ));
            }
        }
    }

    /// Runs what a request waiting on the metadata log does once it may go on.
    pub(crate) fn run_metadata_wait(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        wait: MetadataWait,
    ) {
        match wait {
            MetadataWait::Respond(mut response) => {
                self.confirm_applied(&mut response);
                io.respond(id, response);
            }
            MetadataWait::RespondPartitions(mut response, counts) => {
                self.confirm_partitions(&mut response, &counts);
                io.respond(id, ResponseKind::CreatePartitions(response));
            }
            MetadataWait::Configs(mut answer) => {
                answer.confirm(&self.cluster);
                io.respond(id, answer.into_response());
            }
            MetadataWait::DeleteRecords(mut answer) => {
                self.confirm_deletions(&mut answer);
                io.respond(id, answer.into_response());
            }
            MetadataWait::Acls(mut answer) => {
                answer.confirm(&self.cluster);
                io.respond(id, answer.into_response());
            }
            MetadataWait::Scram(mut answer) => {
                answer.confirm(&self.cluster);
                io.respond(id, answer.into_response());
            }
            MetadataWait::Redispatch(request) => match &request.body {
                RequestKind::Metadata(_) => self.handle_metadata(io, id, request, false),
                RequestKind::FindCoordinator(_) => {
                    self.handle_find_coordinator(io, id, request, false)
                }
                _ => unreachable!("only metadata and find-coordinator are redispatched"),
            },
        }
    }

    fn remove_topic_partitions(&mut self, io: &mut impl NodeIo, topic: &Topic) {
        let keys: Vec<TopicPartition> = self
            .partitions
            .keys()
            .filter(|key| key.topic == topic.name)
            .cloned()
            .collect();
        for key in keys {
            let partition = self.partitions.remove(&key).expect("listed");
            self.io_waits.forget_partition(&key);
            if let Err(error) = partition.delete(io) {
                // Left for the orphan sweep at the next start.
                tracing::warn!(
                    "deleting {}: {error}",
                    partition_dir(&key.topic, key.partition)
                );
            }
            self.fail_waiters(io, &key);
        }
    }

    /// Allocates a timer id for `purpose` at `at`.
    pub(crate) fn set_timer(
        &mut self,
        io: &mut impl NodeIo,
        at: Instant,
        purpose: TimerPurpose,
    ) -> TimerId {
        let timer = self.io_waits.timer(purpose);
        io.set_timer(at, timer);
        timer
    }

    fn schedule_maintenance(&mut self, io: &mut impl NodeIo) {
        let interval = Duration::from_millis(self.config.retention_check_interval_ms.max(1) as u64);
        let at = io.now() + interval;
        self.set_timer(io, at, TimerPurpose::Maintenance);
    }

    fn run_maintenance(&mut self, io: &mut impl NodeIo) {
        let now_ms = io.wall_clock_ms();
        for (key, partition) in self.partitions.iter_mut() {
            let high_watermark = partition.high_watermark();
            if let Err(error) = partition
                .log_mut()
                .maintain_below(io, now_ms, high_watermark)
            {
                tracing::warn!("retention on {key:?}: {error}");
            }
            // A follower deletes what DeleteRecords removed once it has committed it.
            partition.delete_deleted_segments(io);
        }
        let keys: Vec<TopicPartition> = self.partitions.keys().cloned().collect();
        for key in keys {
            // A time-based roll creates a file whose directory entry must be synced.
            self.start_partition_sync(io, &key);
        }
    }

    /// The error for a request that names partition `key`, of which this node has no
    /// open replica. Only a broker whose metadata is caught up says a topic or
    /// partition it does not know is unknown: before, it may exist (decision 0011),
    /// and NOT_LEADER_OR_FOLLOWER makes every client refresh its metadata and retry. A
    /// partition that exists but is not hosted here gets the same answer, as in
    /// Kafka; one hosted here whose log could not be opened is a storage error.
    pub(crate) fn missing_partition_error(&self, key: &TopicPartition) -> ErrorCode {
        let node_id = self.config.node_id;
        match self.cluster.topics.get(&key.topic) {
            Some(topic) if (0..topic.partitions).contains(&key.partition) => {
                if topic.replicas_of(key.partition, node_id).contains(&node_id) {
                    ErrorCode::KafkaStorageError
                } else {
                    ErrorCode::NotLeaderOrFollower
                }
            }
            _ if !self.metadata.caught_up() => ErrorCode::NotLeaderOrFollower,
            _ => ErrorCode::UnknownTopicOrPartition,
        }
    }

    /// What every event ends with before its bundles go out: the driven partitions are
    /// settled and the coordinator's effects run, until neither leaves more of the
    /// other (an effect appends and drives a partition; settling loads groups).
    fn settle_event(&mut self, io: &mut impl NodeIo) {
        loop {
            self.settle_driven(io);
            if !self.groups.has_effects() {
                return;
            }
            self.run_group_effects(io);
        }
    }

    /// Answers the waiters of every partition driven during the event whose high
    /// watermark moved or whose leadership was lost, and loads or unloads the groups of
    /// driven offsets partitions. Settling may drive partitions again (a group load
    /// appends): those are settled too before the event ends.
    fn settle_driven(&mut self, io: &mut impl NodeIo) {
        while let Some((key, waiters_may_move)) = self.driven.take_first() {
            if waiters_may_move {
                self.resolve_produces(io, &key);
                self.wake_fetches(io, &key);
            }
            if key.topic == crate::group::OFFSETS_TOPIC_NAME {
                self.offsets_partition_driven(io, &key);
            }
        }
    }

    /// Parked fetches and waiting produces on `key` are answered with errors: the
    /// partition's log failed or the partition is gone.
    pub(crate) fn fail_waiters(&mut self, io: &mut impl NodeIo, key: &TopicPartition) {
        self.resolve_produces(io, key);
        self.wake_fetches(io, key);
        if key.topic == crate::group::OFFSETS_TOPIC_NAME {
            // The coordinator gives the offline partition's groups up: its pending
            // commits and syncs are answered NOT_COORDINATOR.
            self.offsets_partition_driven(io, key);
        }
    }
}

/// Removes partition directories whose topic is gone (a delete interrupted by a
/// crash). Only directories named like `<legal topic>-<number>` are touched.
fn remove_orphan_partition_dirs(
    disk: &mut impl Disk,
    cluster: &ClusterState,
) -> Result<(), NodeError> {
    for name in disk.read_dir("")? {
        let Some((topic, partition)) = name.rsplit_once('-') else {
            continue;
        };
        let Ok(partition) = partition.parse::<i32>() else {
            continue;
        };
        if topic == crate::topics::METADATA_TOPIC
            || crate::topics::validate_topic_name(topic).is_err()
        {
            continue;
        }
        let live = cluster
            .topics
            .get(topic)
            .is_some_and(|t| partition >= 0 && partition < t.partitions);
        if !live {
            tracing::warn!("removing directory {name} of a deleted topic");
            disk.remove_dir_all(&name)?;
        }
    }
    Ok(())
}

/// The Raft settings of every group on a node with `config`.
pub(crate) fn raft_config(config: &NodeConfig) -> RaftConfig {
    RaftConfig {
        election_timeout_ticks: config.election_timeout_ticks,
        #[cfg(feature = "mutants")]
        mutants: config.raft_mutants,
        ..RaftConfig::default()
    }
}

/// The metadata quorum's voters: `controller.quorum.voters`, or this node alone.
pub(crate) fn quorum_voters(config: &NodeConfig) -> Vec<BrokerId> {
    if config.voters.is_empty() {
        vec![config.node_id]
    } else {
        config.voters.clone()
    }
}

pub use crate::identity::NODE_IDENTITY_FILE;
