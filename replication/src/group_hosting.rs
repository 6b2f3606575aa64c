//! The node's side of consumer groups: FindCoordinator, routing group requests to the
//! [`Coordinator`], and carrying out what it asks for on `__consumer_offsets`.
//!
//! ```text
//!  FindCoordinator(group g) ──► p = partition_for(g); leader of __consumer_offsets-p?
//!                                 topic missing: create it (internal), answer once applied
//!                                 no leader yet: COORDINATOR_NOT_AVAILABLE (client retries)
//!  JoinGroup, OffsetCommit, ... ──► Coordinator::handle ──► effects, run at the end of the event:
//!        Respond ─► NodeIo::respond
//!        Append  ─► one batch appended to __consumer_offsets-p as its leader (the same
//!                   path a produce takes), replicated, synced; Coordinator::on_appended
//!        Wake    ─► a timer that calls Coordinator::on_timer
//!  drive_partition(__consumer_offsets-p):
//!        became leader in epoch e ─► read the whole partition, Coordinator::load
//!        stopped leading e        ─► Coordinator::unload (waiters: NOT_COORDINATOR)
//!        high watermark advanced  ─► Coordinator::on_committed (commits answered)
//! ```
//!
//! Effects are queued and run after the handler that produced them returns, so the
//! coordinator is never re-entered while a partition is half driven.

use kafka_protocol::messages::find_coordinator_response::Coordinator as CoordinatorEntry;
use kafka_protocol::messages::{BrokerId, FindCoordinatorResponse, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use odradek_log::batch;
use odradek_log::io::Instant;
use odradek_log::partition::AppendOutcome;

use crate::acl::Operation;
use crate::error::ErrorCode;
use crate::forward::Creation;
use crate::group::{Coordinator, Effect, Now, OFFSETS_TOPIC_NAME};
use crate::group_host::Loading;
use crate::io_waits::TimerPurpose;
use crate::metadata_waits::MetadataWait;
use crate::node::{Node, NodeIo};
use crate::request::{Request, RequestId};
use crate::topics::TopicConfig;
use crate::topics::TopicPartition;

/// FindCoordinator's key type for consumer groups (1 is transactions).
const KEY_TYPE_GROUP: i8 = 0;

/// Bytes read at a time when a new leader rebuilds its groups from the log.
const LOAD_READ_BYTES: u32 = 1 << 20;

/// One record of `__consumer_offsets`: key and value, each possibly null.
type KeyValue = (Option<bytes::Bytes>, Option<bytes::Bytes>);

/// Where one FindCoordinator key's coordinator is, or why it cannot be said.
struct Found {
    node_id: i32,
    host: String,
    port: i32,
    error: ErrorCode,
    message: Option<String>,
}

impl Found {
    fn error(error: ErrorCode, message: impl Into<String>) -> Found {
        Found {
            node_id: -1,
            host: String::new(),
            port: -1,
            error,
            message: Some(message.into()),
        }
    }
}

impl Node {
    /// The node's clocks, as the coordinator takes them.
    pub(crate) fn group_now(io: &mut impl NodeIo) -> Now {
        Now {
            instant: io.now(),
            wall_clock_ms: io.wall_clock_ms(),
        }
    }

    /// FindCoordinator (v0-v3: one key; v4+: a list). Creates `__consumer_offsets` the
    /// first time a group coordinator is asked for, as Kafka does, and answers once
    /// the creation is applied.
    pub(crate) fn handle_find_coordinator(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
        may_create: bool,
    ) {
        let RequestKind::FindCoordinator(find) = &request.body else {
            unreachable!("routed by kind")
        };
        if find.key_type == KEY_TYPE_GROUP
            && may_create
            && self.metadata.caught_up()
            && !self.cluster.topics.contains_key(OFFSETS_TOPIC_NAME)
            && let Some(creation) = self.begin_create_offsets_topic(io)
        {
            self.wait_for_creation(id, creation, MetadataWait::Redispatch(request));
            return;
        }
        let keys: Vec<String> = if request.api_version >= 4 {
            find.coordinator_keys
                .iter()
                .map(|key| key.as_str().to_string())
                .collect()
        } else {
            vec![find.key.as_str().to_string()]
        };
        let found: Vec<(String, Found)> = keys
            .into_iter()
            .map(|key| {
                let found = if find.key_type == KEY_TYPE_GROUP
                    && !self.allows_group(&request, Operation::Describe, &key)
                {
                    let message = format!("{} may not describe group {key}", request.principal);
                    Found::error(ErrorCode::GroupAuthorizationFailed, message)
                } else {
                    self.find_coordinator(find.key_type, &key, &request.listener)
                };
                (key, found)
            })
            .collect();
        let mut response = FindCoordinatorResponse::default();
        if request.api_version >= 4 {
            response.coordinators = found
                .into_iter()
                .map(|(key, found)| {
                    CoordinatorEntry::default()
                        .with_key(StrBytes::from_string(key))
                        .with_node_id(BrokerId(found.node_id))
                        .with_host(StrBytes::from_string(found.host))
                        .with_port(found.port)
                        .with_error_code(found.error.code())
                        .with_error_message(found.message.map(StrBytes::from_string))
                })
                .collect();
        } else {
            let (_, found) = found.into_iter().next().expect("one key");
            response = response
                .with_node_id(BrokerId(found.node_id))
                .with_host(StrBytes::from_string(found.host))
                .with_port(found.port)
                .with_error_code(found.error.code())
                .with_error_message(found.message.map(StrBytes::from_string));
        }
        io.respond(id, ResponseKind::FindCoordinator(response));
    }

    fn find_coordinator(&self, key_type: i8, key: &str, listener: &str) -> Found {
        if key_type != KEY_TYPE_GROUP {
            return Found::error(
                ErrorCode::InvalidRequest,
                "transactions are not supported: there is no transaction coordinator",
            );
        }
        let Some(topic) = self.cluster.topics.get(OFFSETS_TOPIC_NAME) else {
            return Found::error(
                ErrorCode::CoordinatorNotAvailable,
                format!("{OFFSETS_TOPIC_NAME} is being created"),
            );
        };
        let partition = Coordinator::partition_for(key, topic.partitions);
        let key = TopicPartition::new(OFFSETS_TOPIC_NAME, partition);
        let leader = match self.partitions.get(&key) {
            Some(local) => local.leader(),
            None => self.peers.leader_of(&key).map(|remote| remote.leader),
        };
        let endpoint = leader.and_then(|leader| {
            self.client_endpoints(listener)
                .into_iter()
                .find(|(node_id, _, _)| *node_id == leader)
        });
        match endpoint {
            Some((node_id, host, port)) => Found {
                node_id,
                host,
                port,
                error: ErrorCode::None,
                message: None,
            },
            None => Found::error(
                ErrorCode::CoordinatorNotAvailable,
                format!("{OFFSETS_TOPIC_NAME}-{partition} has no leader known here yet"),
            ),
        }
    }

    /// Starts creating `__consumer_offsets` here (the controller) or at the controller.
    /// `None` if neither can be done now: the client is told to retry.
    pub(crate) fn begin_create_offsets_topic(&mut self, io: &mut impl NodeIo) -> Option<Creation> {
        let brokers = crate::node::quorum_voters(&self.config).len();
        let replication_factor = i16::try_from(brokers)
            .unwrap_or(i16::MAX)
            .min(self.config.offsets_topic_replication_factor)
            .max(1);
        // Compacted, as Kafka creates it: its size is bounded by the live group and
        // offset keys, not by the number of commits. The coordinator expires offsets
        // itself (offsets.retention.minutes) with tombstones, which the cleaner removes.
        let segment_bytes = self.config.offsets_topic_segment_bytes.to_string();
        let config = TopicConfig::from_entries([
            ("cleanup.policy", "compact"),
            ("segment.bytes", segment_bytes.as_str()),
        ])
        .map_err(|(_, message)| tracing::warn!("offsets.topic.segment.bytes: {message}"))
        .ok()?;
        let partitions = self
            .groups
            .coordinator()
            .config()
            .offsets_topic_num_partitions;
        let record = self.create_topic_record(
            io,
            OFFSETS_TOPIC_NAME,
            partitions,
            replication_factor,
            &config,
        );
        match self.append_or_forward_creation(io, OFFSETS_TOPIC_NAME, record) {
            Ok(creation) => Some(creation),
            Err(error) => {
                tracing::debug!("cannot create {OFFSETS_TOPIC_NAME} now: {error}");
                None
            }
        }
    }

    /// A group request: to the coordinator, whose effects run at the end of the event.
    pub(crate) fn handle_group_request(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        if let Some(refused) = self.group_request_refusal(&request) {
            io.respond(id, refused);
            return;
        }
        let (request, view) = self.authorized_view(request);
        if let Some(view) = view {
            self.group_views.insert(id, view);
        }
        let now = Self::group_now(io);
        self.groups.handle(now, id, &request);
    }

    /// The group coordinator's timer fired.
    pub(crate) fn group_wake(&mut self, io: &mut impl NodeIo) {
        let now = Self::group_now(io);
        self.groups.on_timer(now);
    }

    /// After `__consumer_offsets` partition `key` was driven: loads or unloads its groups
    /// when leadership changed, and reports an advanced high watermark.
    pub(crate) fn offsets_partition_driven(&mut self, io: &mut impl NodeIo, key: &TopicPartition) {
        let Some(partition) = self.partitions.get(key) else {
            return;
        };
        // An offline log (a failed fsync) serves nobody until a restart recovers it:
        // its groups are given up, and whoever waits on them hears NOT_COORDINATOR.
        let leading = partition
            .check_leader()
            .ok()
            .filter(|_| !partition.is_offline());
        let caught_up = partition.raft().leader_caught_up();
        #[cfg(feature = "mutants")]
        let caught_up = caught_up
            || self
                .groups
                .coordinator()
                .config()
                .mutants
                .load_before_committed;
        let high_watermark = partition.high_watermark();
        match self
            .groups
            .follow_leadership(key.partition, leading, caught_up)
        {
            Loading::Settled => {}
            Loading::WaitForCommit => return,
            Loading::Load(epoch) => match self.read_offsets_partition(io, key) {
                Ok(records) => {
                    let now = Self::group_now(io);
                    self.groups.load(now, key.partition, epoch, records);
                }
                Err(error) => {
                    // Unreadable: the groups stay unloaded (clients get NOT_COORDINATOR)
                    // and the next drive tries again.
                    tracing::warn!("cannot load the groups of {key:?}: {error}");
                    return;
                }
            },
        }
        let now = Self::group_now(io);
        self.groups.on_committed(now, key.partition, high_watermark);
    }

    /// Every record of an offsets partition, in log order, as (key, value).
    fn read_offsets_partition(
        &mut self,
        io: &mut impl NodeIo,
        key: &TopicPartition,
    ) -> Result<Vec<KeyValue>, String> {
        let partition = self.partitions.get_mut(key).expect("checked by the caller");
        let end = partition.log().log_end_offset();
        let mut offset = partition.log().log_start_offset();
        let mut records = Vec::new();
        while offset < end {
            let read = match partition.log_mut().read(io, offset, end, LOAD_READ_BYTES) {
                Ok(read) => read,
                Err(error) => {
                    if let odradek_log::ReadError::Corrupt { offset, .. } = error {
                        // Damaged on disk: the next drive repairs it (decision 0010).
                        partition.note_damage(offset);
                    }
                    return Err(format!("read at {offset}: {error:?}"));
                }
            };
            if read.bytes.is_empty() {
                break;
            }
            batch::for_each_record(&read.bytes, |record| {
                if record.offset >= offset {
                    records.push((
                        record.key.map(bytes::Bytes::copy_from_slice),
                        record.value.map(bytes::Bytes::copy_from_slice),
                    ));
                }
                Ok::<(), batch::RecordsError>(())
            })
            .map_err(|error| error.to_string())?;
            offset = read.next_offset;
        }
        Ok(records)
    }

    /// Runs the coordinator's queued effects until none are left (an append may
    /// release waiters at once, which may ask for more).
    pub(crate) fn run_group_effects(&mut self, io: &mut impl NodeIo) {
        let mut touched: Vec<TopicPartition> = Vec::new();
        while self.groups.has_effects() {
            for effect in self.groups.take_effects() {
                match effect {
                    Effect::Respond { id, response } => {
                        let response = match self.group_views.remove(&id) {
                            Some(view) => self.through_view(view, response),
                            None => response,
                        };
                        io.respond(id, response)
                    }
                    Effect::Wake(at) => self.schedule_group_wake(io, at),
                    Effect::Append {
                        partition,
                        records,
                        wait,
                    } => {
                        let key = TopicPartition::new(OFFSETS_TOPIC_NAME, partition);
                        let now = Self::group_now(io);
                        match self.append_offsets_records(io, &key, &records) {
                            Ok(last_offset) => {
                                if !touched.contains(&key) {
                                    touched.push(key);
                                }
                                self.groups.on_appended(now, wait, last_offset)
                            }
                            Err(error) => self.groups.on_append_failed(now, wait, error),
                        }
                    }
                }
            }
            for key in std::mem::take(&mut touched) {
                // Replicating may drive the partition, which may queue more effects.
                self.replicate_partition(io, &key);
                self.start_partition_sync(io, &key);
            }
        }
    }

    fn schedule_group_wake(&mut self, io: &mut impl NodeIo, at: Instant) {
        if self.io_waits.group_wake_set(at) {
            return;
        }
        self.set_timer(io, at, TimerPurpose::GroupWake(at));
    }

    /// Appends one batch of coordinator records to `key` as its leader. Returns the
    /// offset of the batch's last record.
    fn append_offsets_records(
        &mut self,
        io: &mut impl NodeIo,
        key: &TopicPartition,
        records: &[crate::group::OffsetsRecord],
    ) -> Result<i64, ErrorCode> {
        let now_ms = io.wall_clock_ms();
        let Some(partition) = self.partitions.get_mut(key) else {
            return Err(ErrorCode::NotCoordinator);
        };
        if partition.log().failure().is_some() {
            return Err(ErrorCode::KafkaStorageError);
        }
        let Ok(leader_epoch) = partition.raft().check_leader() else {
            return Err(ErrorCode::NotCoordinator);
        };
        let mut bytes = batch::build_batch_with_nullable_values(
            now_ms,
            records
                .iter()
                .map(|record| (Some(record.key.as_ref()), record.value.as_deref())),
        );
        match partition.append_as_leader(io, &mut bytes, leader_epoch, now_ms) {
            Ok(AppendOutcome::Appended { last_offset, .. }) => Ok(last_offset),
            Ok(AppendOutcome::Duplicate { .. }) => {
                unreachable!("coordinator batches carry no producer id")
            }
            Err(error) => Err(ErrorCode::from(&error)),
        }
    }
}
