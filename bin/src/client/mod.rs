//! A small async Kafka client over tokio and the `kafka-protocol` codecs, for the
//! `topics`, `produce`, `consume` and `bench` commands.
//!
//! ```text
//!   Client ── bootstrap Connection ── Metadata ──► brokers {id → host:port}
//!     │                                            leaders {(topic, partition) → id}
//!     ├─ broker(id) / leader(topic, p) ──► Connection (opened lazily, shared)
//!     └─ admin calls (CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs)
//!        go to the controller the metadata names
//! ```
//!
//! - [`connection`]: one socket, pipelined requests, version negotiation.
//! - [`records`]: building RecordBatch v2 bytes and walking/decoding fetched ones.
//! - [`partitioner`]: Kafka's default key partitioner (murmur2), so keys land where the
//!   Java client and librdkafka's `murmur2_random` would put them.
//! - [`error`]: errors with Kafka codes by name.
//!
//! Nothing here assumes one broker: requests for a partition go to its leader as the
//! last Metadata answer named it, and a `NOT_LEADER_OR_FOLLOWER` style error is a
//! retriable [`ClientError`] after which callers call [`Client::refresh_metadata`].

pub mod acls;
pub mod configs;
pub mod connection;
pub mod delete_records;
pub mod error;
pub mod partitioner;
pub mod records;
pub mod scram;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use bytes::Bytes;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeConfigsRequest, FetchRequest, FetchResponse, InitProducerIdRequest, ListOffsetsRequest,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

pub use connection::{Connection, ConnectionOptions, Pending};
pub use error::{ClientError, ClientResult, ErrorCode};

/// DescribeConfigs resource type of a topic.
const RESOURCE_TYPE_TOPIC: i8 = 2;
/// DescribeConfigs `config_source` of a value nobody set (Kafka's `DEFAULT_CONFIG`).
pub const CONFIG_SOURCE_DEFAULT: i8 = 5;
/// How long the broker may take over an admin request.
const ADMIN_TIMEOUT_MS: i32 = 30_000;

/// One partition as Metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Partition index.
    pub partition: i32,
    /// Broker id of the leader, -1 if none.
    pub leader: i32,
    /// The leader's epoch.
    pub leader_epoch: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// Replicas that are offline.
    pub offline: Vec<i32>,
    /// Per-partition error (e.g. LEADER_NOT_AVAILABLE).
    pub error: ErrorCode,
}

/// One topic as Metadata describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// Topic id (all zero before Metadata v10).
    pub topic_id: [u8; 16],
    /// Whether the topic is internal (`__consumer_offsets`).
    pub is_internal: bool,
    /// Topic-level error (e.g. UNKNOWN_TOPIC_OR_PARTITION).
    pub error: ErrorCode,
    /// Partitions, sorted by index.
    pub partitions: Vec<PartitionMetadata>,
}

impl TopicMetadata {
    /// The replication factor: the replica count of partition 0 (as kafka-topics shows).
    pub fn replication_factor(&self) -> usize {
        self.partitions.first().map_or(0, |p| p.replicas.len())
    }
}

/// A topic to create.
#[derive(Clone, Debug, Default)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partition count; `None` takes the broker's `num.partitions`.
    pub partitions: Option<i32>,
    /// Replication factor; `None` takes the broker's `default.replication.factor`.
    pub replication_factor: Option<i16>,
    /// Topic config overrides (`retention.ms`, ...).
    pub configs: Vec<(String, String)>,
}

/// One config entry from DescribeConfigs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config key.
    pub name: String,
    /// Value, if not sensitive.
    pub value: Option<String>,
    /// Where the value comes from (Kafka's `ConfigSource` numbering).
    pub source: i8,
}

impl ConfigEntry {
    /// Whether the value is the built-in default (kafka-topics leaves those out).
    pub fn is_default(&self) -> bool {
        self.source == CONFIG_SOURCE_DEFAULT
    }
}

/// Where ListOffsets should look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset.
    Earliest,
    /// The offset the next record will get (the high watermark).
    Latest,
}

impl OffsetSpec {
    fn timestamp(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
        }
    }
}

/// What the broker said about one partition of a produce request.
#[derive(Debug)]
pub struct PartitionAck {
    /// Partition.
    pub partition: i32,
    /// Offset of the first record, or why the batch was refused.
    pub result: ClientResult<i64>,
}

#[derive(Default)]
struct ClusterState {
    /// Broker id → `host:port` from the last Metadata answer.
    brokers: HashMap<i32, String>,
    /// Open connections by broker id.
    connections: HashMap<i32, Connection>,
    /// (topic, partition) → leader broker id.
    leaders: HashMap<(String, i32), i32>,
    controller_id: Option<i32>,
}

/// A client for one cluster.
pub struct Client {
    options: ConnectionOptions,
    bootstrap: Connection,
    state: Mutex<ClusterState>,
}

impl Client {
    /// Connects to the first reachable address of `bootstrap_servers` (comma-separated
    /// `host:port` list) and loads the cluster's broker list.
    pub async fn connect(
        bootstrap_servers: &str,
        options: ConnectionOptions,
    ) -> ClientResult<Client> {
        let mut last_error = None;
        for address in bootstrap_servers
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match Connection::connect(address, &options).await {
                Ok(bootstrap) => {
                    let client = Client {
                        options,
                        bootstrap,
                        state: Mutex::new(ClusterState::default()),
                    };
                    client.metadata(Some(&[])).await?;
                    return Ok(client);
                }
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error
            .unwrap_or_else(|| ClientError::Other("no bootstrap server given".to_string())))
    }

    /// Asks for metadata of `topics` (`None`: all topics) and updates the broker and
    /// leader tables. Unknown topics come back with their error code, not as `Err`.
    pub async fn metadata(&self, topics: Option<&[String]>) -> ClientResult<Vec<TopicMetadata>> {
        self.metadata_with(topics, false).await
    }

    /// Like [`Client::metadata`]; with `allow_auto_create` the broker creates named
    /// topics that do not exist if its `auto.create.topics.enable` says so (what a
    /// producer asks for).
    pub async fn metadata_with(
        &self,
        topics: Option<&[String]>,
        allow_auto_create: bool,
    ) -> ClientResult<Vec<TopicMetadata>> {
        let connection = self.bootstrap.clone();
        let version = connection.version(ApiKey::Metadata)?;
        let topics = match topics {
            // v0 has no null: an empty list means all topics.
            None if version == 0 => Some(Vec::new()),
            None => None,
            Some(names) => Some(
                names
                    .iter()
                    .map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n))))
                    .collect(),
            ),
        };
        let mut request = MetadataRequest::default().with_topics(topics);
        if version >= 4 {
            request.allow_auto_topic_creation = allow_auto_create;
        }
        let response = connection.send(&request, version).await?.wait().await?;
        Ok(self.absorb_metadata(response))
    }

    /// Refreshes the leader table for `topics`.
    pub async fn refresh_metadata(&self, topics: &[String]) -> ClientResult<()> {
        self.metadata(Some(topics)).await.map(|_| ())
    }

    fn absorb_metadata(&self, response: MetadataResponse) -> Vec<TopicMetadata> {
        let mut state = self.state.lock().expect("cluster state lock");
        for broker in &response.brokers {
            let address = format_address(broker.host.as_str(), broker.port);
            let id = broker.node_id.0;
            if state.brokers.get(&id) != Some(&address) {
                state.connections.remove(&id);
            }
            state.brokers.insert(id, address);
        }
        state.controller_id = (response.controller_id.0 >= 0).then_some(response.controller_id.0);
        let mut topics = Vec::with_capacity(response.topics.len());
        for topic in response.topics {
            let name = topic.name.map(|n| n.0.to_string()).unwrap_or_default();
            let mut partitions: Vec<PartitionMetadata> = topic
                .partitions
                .into_iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                    offline: p.offline_replicas.iter().map(|b| b.0).collect(),
                    error: ErrorCode(p.error_code),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            for partition in &partitions {
                state
                    .leaders
                    .insert((name.clone(), partition.partition), partition.leader);
            }
            topics.push(TopicMetadata {
                name,
                topic_id: *topic.topic_id.as_bytes(),
                is_internal: topic.is_internal,
                error: ErrorCode(topic.error_code),
                partitions,
            });
        }
        topics
    }

    /// Metadata of one topic; `Err` if the broker reports an error for it.
    pub async fn topic(&self, name: &str) -> ClientResult<TopicMetadata> {
        let mut topics = self.metadata(Some(&[name.to_string()])).await?;
        let topic = topics
            .pop()
            .ok_or_else(|| ClientError::Other(format!("no metadata for topic {name}")))?;
        if !topic.error.is_ok() {
            return Err(ClientError::kafka(
                format!("topic {name}"),
                topic.error.0,
                None,
            ));
        }
        Ok(topic)
    }

    /// The connection to the bootstrap broker.
    pub fn bootstrap_connection(&self) -> Connection {
        self.bootstrap.clone()
    }

    /// The ids of every broker the last metadata named, sorted.
    pub fn broker_ids(&self) -> Vec<i32> {
        let state = self.state.lock().expect("cluster state lock");
        let mut ids: Vec<i32> = state.brokers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The shared connection to broker `id`, opened on first use.
    pub async fn broker(&self, id: i32) -> ClientResult<Connection> {
        let address =
            {
                let state = self.state.lock().expect("cluster state lock");
                if let Some(connection) = state.connections.get(&id).filter(|c| !c.is_closed()) {
                    return Ok(connection.clone());
                }
                state.brokers.get(&id).cloned().ok_or_else(|| {
                    ClientError::Other(format!("broker {id} is not in the metadata"))
                })?
            };
        let connection = if address == self.bootstrap.address() && !self.bootstrap.is_closed() {
            self.bootstrap.clone()
        } else {
            Connection::connect(&address, &self.options).await?
        };
        let mut state = self.state.lock().expect("cluster state lock");
        // Another task may have connected meanwhile; keep the first.
        let connection = state.connections.entry(id).or_insert(connection).clone();
        Ok(connection)
    }

    /// A new connection of its own to broker `id` (for benchmarks that want several).
    pub async fn dedicated_connection(&self, id: i32) -> ClientResult<Connection> {
        let address = self
            .state
            .lock()
            .expect("cluster state lock")
            .brokers
            .get(&id)
            .cloned()
            .ok_or_else(|| ClientError::Other(format!("broker {id} is not in the metadata")))?;
        Connection::connect(&address, &self.options).await
    }

    /// The leader's broker id for a partition, from the last metadata.
    pub fn leader_id(&self, topic: &str, partition: i32) -> ClientResult<i32> {
        let state = self.state.lock().expect("cluster state lock");
        match state.leaders.get(&(topic.to_string(), partition)) {
            Some(&leader) if leader >= 0 => Ok(leader),
            Some(_) => Err(ClientError::kafka(
                format!("partition {topic}-{partition}"),
                5, // LEADER_NOT_AVAILABLE
                None,
            )),
            None => Err(ClientError::kafka(
                format!("partition {topic}-{partition}"),
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0,
                None,
            )),
        }
    }

    /// Sends one Fetch of `topic` to the leader of each `(partition, offset)` pair's
    /// partition, as the last metadata names it: one request per leader, all in flight
    /// at once.
    pub async fn send_fetches(
        &self,
        topic: &str,
        positions: impl IntoIterator<Item = (i32, i64)>,
        options: FetchOptions,
    ) -> ClientResult<Vec<Pending<FetchResponse>>> {
        let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
        for (partition, offset) in positions {
            by_leader
                .entry(self.leader_id(topic, partition)?)
                .or_default()
                .push((partition, offset));
        }
        let mut pending = Vec::with_capacity(by_leader.len());
        for (leader, wanted) in by_leader {
            let connection = self.broker(leader).await?;
            let version = connection.version(ApiKey::Fetch)?;
            pending.push(
                connection
                    .send(&fetch_request(topic, &wanted, options), version)
                    .await?,
            );
        }
        Ok(pending)
    }

    /// The connection admin requests go to: the controller, or the bootstrap broker
    /// when the metadata names none.
    pub async fn controller(&self) -> ClientResult<Connection> {
        let controller = self.state.lock().expect("cluster state lock").controller_id;
        match controller {
            Some(id) => self.broker(id).await,
            None => Ok(self.bootstrap.clone()),
        }
    }

    /// CreateTopics for one topic. Returns the topic id when the broker sends one.
    pub async fn create_topic(&self, topic: &NewTopic) -> ClientResult<[u8; 16]> {
        let connection = self.controller().await?;
        let version = connection.version(ApiKey::CreateTopics)?;
        // -1 ("broker default") exists from v4 on; older brokers need a number.
        let default = if version >= 4 { -1 } else { 1 };
        let configs = topic
            .configs
            .iter()
            .map(|(k, v)| {
                CreatableTopicConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_value(Some(StrBytes::from_string(v.clone())))
            })
            .collect();
        let request = CreateTopicsRequest::default()
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(topic_name(&topic.name))
                    .with_num_partitions(topic.partitions.unwrap_or(default))
                    .with_replication_factor(topic.replication_factor.unwrap_or(default as i16))
                    .with_configs(configs),
            ])
            .with_timeout_ms(ADMIN_TIMEOUT_MS);
        let response = connection.send(&request, version).await?.wait().await?;
        let result = response
            .topics
            .into_iter()
            .find(|t| t.name.0.as_str() == topic.name)
            .ok_or_else(|| {
                ClientError::Other(format!("no CreateTopics result for {}", topic.name))
            })?;
        if result.error_code != 0 {
            return Err(ClientError::kafka(
                format!("create topic {}", topic.name),
                result.error_code,
                result.error_message.as_deref(),
            ));
        }
        Ok(*result.topic_id.as_bytes())
    }

    /// DeleteTopics for one topic.
    pub async fn delete_topic(&self, name: &str) -> ClientResult<()> {
        let connection = self.controller().await?;
        let version = connection.version(ApiKey::DeleteTopics)?;
        let mut request = DeleteTopicsRequest::default().with_timeout_ms(ADMIN_TIMEOUT_MS);
        if version >= 6 {
            request.topics = vec![DeleteTopicState::default().with_name(Some(topic_name(name)))];
        } else {
            request.topic_names = vec![topic_name(name)];
        }
        let response = connection.send(&request, version).await?.wait().await?;
        let result = response
            .responses
            .into_iter()
            .find(|r| r.name.as_ref().is_some_and(|n| n.0.as_str() == name))
            .ok_or_else(|| ClientError::Other(format!("no DeleteTopics result for {name}")))?;
        if result.error_code != 0 {
            return Err(ClientError::kafka(
                format!("delete topic {name}"),
                result.error_code,
                result.error_message.as_deref(),
            ));
        }
        Ok(())
    }

    /// CreatePartitions: grows `name` to `count` partitions.
    pub async fn create_partitions(&self, name: &str, count: i32) -> ClientResult<()> {
        let connection = self.controller().await?;
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(topic_name(name))
                    .with_count(count)
                    .with_assignments(None),
            ])
            .with_timeout_ms(ADMIN_TIMEOUT_MS);
        let response = connection.request(&request).await?;
        let result = response
            .results
            .into_iter()
            .find(|r| r.name.0.as_str() == name)
            .ok_or_else(|| ClientError::Other(format!("no CreatePartitions result for {name}")))?;
        if result.error_code != 0 {
            return Err(ClientError::kafka(
                format!("alter topic {name}"),
                result.error_code,
                result.error_message.as_deref(),
            ));
        }
        Ok(())
    }

    /// DescribeConfigs of one topic: every entry the broker reports.
    pub async fn describe_topic_configs(&self, name: &str) -> ClientResult<Vec<ConfigEntry>> {
        let connection = self.controller().await?;
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(RESOURCE_TYPE_TOPIC)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_configuration_keys(None),
        ]);
        let response = connection.request(&request).await?;
        let result = response
            .results
            .into_iter()
            .find(|r| r.resource_name.as_str() == name)
            .ok_or_else(|| ClientError::Other(format!("no DescribeConfigs result for {name}")))?;
        if result.error_code != 0 {
            return Err(ClientError::kafka(
                format!("describe configs of topic {name}"),
                result.error_code,
                result.error_message.as_deref(),
            ));
        }
        Ok(result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: c.config_source,
            })
            .collect())
    }

    /// ListOffsets for `partitions` of `topic`, each sent to its leader. Returns
    /// `(partition, offset)` in the order asked.
    pub async fn list_offsets(
        &self,
        topic: &str,
        partitions: &[i32],
        spec: OffsetSpec,
    ) -> ClientResult<Vec<(i32, i64)>> {
        let mut by_leader: HashMap<i32, Vec<i32>> = HashMap::new();
        for &partition in partitions {
            by_leader
                .entry(self.leader_id(topic, partition)?)
                .or_default()
                .push(partition);
        }
        let mut offsets = HashMap::new();
        for (leader, partitions) in by_leader {
            let connection = self.broker(leader).await?;
            let request = ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(topic_name(topic))
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|&p| {
                                    ListOffsetsPartition::default()
                                        .with_partition_index(p)
                                        .with_timestamp(spec.timestamp())
                                })
                                .collect(),
                        ),
                ]);
            let response = connection.request(&request).await?;
            for topic_response in response.topics {
                for p in topic_response.partitions {
                    if p.error_code != 0 {
                        return Err(ClientError::kafka(
                            format!("list offsets of {topic}-{}", p.partition_index),
                            p.error_code,
                            None,
                        ));
                    }
                    offsets.insert(p.partition_index, p.offset);
                }
            }
        }
        partitions
            .iter()
            .map(|p| {
                offsets
                    .get(p)
                    .map(|o| (*p, *o))
                    .ok_or_else(|| ClientError::Other(format!("no offset for {topic}-{p}")))
            })
            .collect()
    }

    /// InitProducerId for an idempotent (non-transactional) producer: `(id, epoch)`.
    pub async fn init_producer_id(&self) -> ClientResult<(i64, i16)> {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(None)
            .with_transaction_timeout_ms(-1);
        let response = self.bootstrap.request(&request).await?;
        if response.error_code != 0 {
            return Err(ClientError::kafka(
                "init producer id",
                response.error_code,
                None,
            ));
        }
        Ok((response.producer_id.0, response.producer_epoch))
    }
}

/// `host:port`, with brackets around an IPv6 host.
pub fn format_address(host: &str, port: i32) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A topic name for a request.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// A Produce request carrying one RecordBatch byte string per partition of `topic`.
pub fn produce_request(
    topic: &str,
    batches: Vec<(i32, Bytes)>,
    acks: i16,
    timeout_ms: i32,
) -> ProduceRequest {
    ProduceRequest::default()
        .with_transactional_id(None)
        .with_acks(acks)
        .with_timeout_ms(timeout_ms)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(
                    batches
                        .into_iter()
                        .map(|(partition, records)| {
                            PartitionProduceData::default()
                                .with_index(partition)
                                .with_records(Some(records))
                        })
                        .collect(),
                ),
        ])
}

/// One result per partition of a produce response.
pub fn produce_acks(response: ProduceResponse) -> Vec<PartitionAck> {
    let mut acks = Vec::new();
    for topic in response.responses {
        let name = topic.name.0.to_string();
        for p in topic.partition_responses {
            let result = if p.error_code == 0 {
                Ok(p.base_offset)
            } else {
                Err(ClientError::kafka(
                    format!("produce to {name}-{}", p.index),
                    p.error_code,
                    p.error_message.as_deref(),
                ))
            };
            acks.push(PartitionAck {
                partition: p.index,
                result,
            });
        }
    }
    acks
}

/// Read uncommitted data (no transactions exist yet).
pub const ISOLATION_READ_UNCOMMITTED: i8 = 0;

/// Fetch options that stay the same across requests.
#[derive(Clone, Copy, Debug)]
pub struct FetchOptions {
    /// How long the broker may wait for `min_bytes`.
    pub max_wait_ms: i32,
    /// Bytes the broker should gather before answering.
    pub min_bytes: i32,
    /// Limit for the whole response.
    pub max_bytes: i32,
    /// Limit per partition.
    pub partition_max_bytes: i32,
}

/// A Fetch request (no fetch session) for `(partition, offset)` pairs of `topic`.
pub fn fetch_request(topic: &str, positions: &[(i32, i64)], options: FetchOptions) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(options.max_wait_ms)
        .with_min_bytes(options.min_bytes)
        .with_max_bytes(options.max_bytes)
        .with_isolation_level(ISOLATION_READ_UNCOMMITTED)
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(
                    positions
                        .iter()
                        .map(|&(partition, offset)| {
                            FetchPartition::default()
                                .with_partition(partition)
                                .with_fetch_offset(offset)
                                .with_partition_max_bytes(options.partition_max_bytes)
                        })
                        .collect(),
                ),
        ])
}

/// Kafka's text form of a topic id: URL-safe base64 without padding (22 characters).
pub fn topic_id_string(id: &[u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    for chunk in id.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for index in 0..chars {
            let sextet = (n >> (18 - 6 * index)) & 0x3f;
            out.push(ALPHABET[sextet as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_ids_print_like_kafka() {
        assert_eq!(topic_id_string(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
        // 0xfb 0xff 0xbf ... exercises the two characters outside A-Za-z0-9.
        let mut id = [0xffu8; 16];
        id[0] = 0xfb;
        let text = topic_id_string(&id);
        assert_eq!(text.len(), 22);
        assert!(text.starts_with("-_"), "{text}");
        let counting: [u8; 16] = std::array::from_fn(|i| i as u8);
        assert_eq!(topic_id_string(&counting), "AAECAwQFBgcICQoLDA0ODw");
    }

    #[test]
    fn ipv6_addresses_get_brackets() {
        assert_eq!(format_address("::1", 9092), "[::1]:9092");
        assert_eq!(format_address("localhost", 9092), "localhost:9092");
    }
}
