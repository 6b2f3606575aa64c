//! A fake broker that speaks just enough Kafka to test and measure the client side on
//! its own: ApiVersions (optionally only up to v2, to exercise the v3 → lower fallback),
//! Metadata, CreateTopics, Produce (batches are CRC-checked and counted, then dropped),
//! ListOffsets and Fetch (served from one prebuilt batch, rebased to each offset asked,
//! so a consumer can read a log of any length at memcpy speed).
//!
//! Each connection has a reader thread that decodes requests and a writer thread that
//! answers them in order, after `produce_delay` for Produce, so requests pile up when a
//! client pipelines and `max_outstanding` shows by how much.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, CreateTopicsResponse, FetchResponse,
    ListOffsetsResponse, MetadataResponse, ProduceResponse, RequestKind, ResponseHeader,
    ResponseKind,
};
use kafka_protocol::protocol::{Encodable, StrBytes, decode_request_header_from_buffer};

/// Knobs of the fake.
#[derive(Clone, Debug)]
pub struct FakeOptions {
    /// Highest ApiVersions version served; a v3 request above it gets UNSUPPORTED_VERSION.
    pub api_versions_max: i16,
    /// How long each Produce waits before it is answered.
    pub produce_delay: Duration,
    /// End offset of every partition's log, for ListOffsets and Fetch.
    pub log_end_offset: i64,
    /// Records per prebuilt fetch batch, and bytes per record value.
    pub fetch_batch_records: usize,
    pub fetch_record_bytes: usize,
}

impl Default for FakeOptions {
    fn default() -> Self {
        FakeOptions {
            api_versions_max: 3,
            produce_delay: Duration::ZERO,
            log_end_offset: 0,
            fetch_batch_records: 1000,
            fetch_record_bytes: 100,
        }
    }
}

/// What the fake saw.
#[derive(Default)]
pub struct Stats {
    pub records_produced: AtomicU64,
    pub produce_requests: AtomicU64,
    /// Most requests read but not yet answered on one connection.
    pub max_outstanding: AtomicU64,
    pub api_versions_seen: Mutex<Vec<i16>>,
    pub topics: Mutex<HashMap<String, i32>>,
}

pub struct FakeBroker {
    pub port: u16,
    pub stats: Arc<Stats>,
}

impl FakeBroker {
    /// Starts the fake on a free port of 127.0.0.1; it runs until the test process ends.
    pub fn start(options: FakeOptions) -> FakeBroker {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared {
            options,
            port,
            stats: stats.clone(),
            fetch_batch: Mutex::new(None),
        });
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, shared));
            }
        });
        FakeBroker { port, stats }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

struct Shared {
    options: FakeOptions,
    port: u16,
    stats: Arc<Stats>,
    fetch_batch: Mutex<Option<Vec<u8>>>,
}

struct Answer {
    due: Instant,
    correlation_id: i32,
    header_version: i16,
    version: i16,
    response: ResponseKind,
}

fn serve(stream: TcpStream, shared: Arc<Shared>) {
    stream.set_nodelay(true).ok();
    let outstanding = Arc::new(AtomicU64::new(0));
    let (answers, queue) = mpsc::channel::<Answer>();
    let writer_stream = stream.try_clone().expect("clone socket");
    let writer_outstanding = outstanding.clone();
    std::thread::spawn(move || {
        let mut out = BufWriter::with_capacity(1 << 20, writer_stream);
        let mut frame = BytesMut::new();
        let mut next = queue.recv().ok();
        while let Some(answer) = next {
            let now = Instant::now();
            if answer.due > now {
                if out.flush().is_err() {
                    return;
                }
                std::thread::sleep(answer.due - now);
            }
            frame.clear();
            frame.put_i32(0);
            ResponseHeader::default()
                .with_correlation_id(answer.correlation_id)
                .encode(&mut frame, answer.header_version)
                .expect("header");
            answer
                .response
                .encode(&mut frame, answer.version)
                .expect("response encodes");
            let size = (frame.len() - 4) as i32;
            frame[..4].copy_from_slice(&size.to_be_bytes());
            if out.write_all(&frame).is_err() {
                return;
            }
            writer_outstanding.fetch_sub(1, Ordering::Relaxed);
            next = match queue.try_recv() {
                Ok(answer) => Some(answer),
                Err(mpsc::TryRecvError::Disconnected) => None,
                Err(mpsc::TryRecvError::Empty) => {
                    if out.flush().is_err() {
                        return;
                    }
                    queue.recv().ok()
                }
            };
        }
        let _ = out.flush();
    });
    let mut input = BufReader::with_capacity(1 << 20, stream);
    loop {
        let mut size = [0u8; 4];
        if input.read_exact(&mut size).is_err() {
            return;
        }
        let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
        if input.read_exact(&mut body).is_err() {
            return;
        }
        let mut body = Bytes::from(body);
        let header = decode_request_header_from_buffer(&mut body).expect("request header");
        let key = ApiKey::try_from(header.request_api_key).expect("known api");
        let version = header.request_api_version;
        let mut due = Instant::now();
        let (response, version) = if key == ApiKey::ApiVersions {
            shared.stats.api_versions_seen.lock().unwrap().push(version);
            api_versions(&shared.options, version)
        } else {
            let request = RequestKind::decode(key, &mut body, version)
                .unwrap_or_else(|e| panic!("fake broker: cannot decode {key:?} v{version}: {e}"));
            match request {
                RequestKind::Produce(produce) => {
                    shared
                        .stats
                        .produce_requests
                        .fetch_add(1, Ordering::Relaxed);
                    due += shared.options.produce_delay;
                    let response = produce_answer(&shared, &produce);
                    if produce.acks == 0 {
                        continue;
                    }
                    (response, version)
                }
                other => (answer(&shared, other), version),
            }
        };
        let now_outstanding = outstanding.fetch_add(1, Ordering::Relaxed) + 1;
        shared
            .stats
            .max_outstanding
            .fetch_max(now_outstanding, Ordering::Relaxed);
        let answer = Answer {
            due,
            correlation_id: header.correlation_id,
            header_version: key.response_header_version(header.request_api_version),
            version,
            response,
        };
        if answers.send(answer).is_err() {
            return;
        }
    }
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

fn api_versions(options: &FakeOptions, version: i16) -> (ResponseKind, i16) {
    let range = |key: ApiKey, min: i16, max: i16| {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(min)
            .with_max_version(max)
    };
    if version > options.api_versions_max {
        // What Kafka does: UNSUPPORTED_VERSION in a v0 body that lists ApiVersions.
        let response = ApiVersionsResponse::default()
            .with_error_code(35)
            .with_api_keys(vec![range(
                ApiKey::ApiVersions,
                0,
                options.api_versions_max,
            )]);
        return (ResponseKind::ApiVersions(response), 0);
    }
    let response = ApiVersionsResponse::default().with_api_keys(vec![
        range(ApiKey::Produce, 3, 9),
        range(ApiKey::Fetch, 4, 12),
        range(ApiKey::ListOffsets, 1, 7),
        range(ApiKey::Metadata, 0, 12),
        range(ApiKey::ApiVersions, 0, options.api_versions_max),
        range(ApiKey::CreateTopics, 2, 7),
    ]);
    (ResponseKind::ApiVersions(response), version)
}

fn produce_answer(
    shared: &Shared,
    produce: &kafka_protocol::messages::ProduceRequest,
) -> ResponseKind {
    let mut response = ProduceResponse::default();
    for topic in &produce.topic_data {
        let mut topic_response = TopicProduceResponse::default().with_name(topic.name.clone());
        for partition in &topic.partition_data {
            let records = partition.records.clone().unwrap_or_default();
            let batches = odradek_log::batch::split_batches(&records, 8 << 20)
                .expect("the client sends valid batches");
            let count: u64 = batches.iter().map(|(_, _, h)| h.record_count as u64).sum();
            let base = shared
                .stats
                .records_produced
                .fetch_add(count, Ordering::Relaxed);
            topic_response.partition_responses.push(
                PartitionProduceResponse::default()
                    .with_index(partition.index)
                    .with_base_offset(base as i64),
            );
        }
        response.responses.push(topic_response);
    }
    ResponseKind::Produce(response)
}

fn answer(shared: &Shared, request: RequestKind) -> ResponseKind {
    match request {
        RequestKind::Metadata(metadata) => {
            let topics = shared.stats.topics.lock().unwrap();
            let names: Vec<String> = match &metadata.topics {
                Some(wanted) if !wanted.is_empty() => wanted
                    .iter()
                    .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                    .collect(),
                _ => topics.keys().cloned().collect(),
            };
            let mut response = MetadataResponse::default()
                .with_brokers(vec![
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(1))
                        .with_host(text("127.0.0.1"))
                        .with_port(shared.port as i32),
                ])
                .with_controller_id(BrokerId(1));
            for name in names {
                let mut topic = MetadataResponseTopic::default()
                    .with_name(Some(kafka_protocol::messages::TopicName(text(&name))));
                match topics.get(&name) {
                    None => topic.error_code = 3,
                    Some(&partitions) => {
                        topic.partitions = (0..partitions)
                            .map(|p| {
                                MetadataResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_leader_id(BrokerId(1))
                                    .with_replica_nodes(vec![BrokerId(1)])
                                    .with_isr_nodes(vec![BrokerId(1)])
                            })
                            .collect();
                    }
                }
                response.topics.push(topic);
            }
            ResponseKind::Metadata(response)
        }
        RequestKind::CreateTopics(create) => {
            let mut topics = shared.stats.topics.lock().unwrap();
            let mut response = CreateTopicsResponse::default();
            for topic in create.topics {
                let name = topic.name.0.to_string();
                let error = if topics.contains_key(&name) { 36 } else { 0 };
                topics.entry(name).or_insert(topic.num_partitions.max(1));
                response.topics.push(
                    CreatableTopicResult::default()
                        .with_name(topic.name)
                        .with_error_code(error),
                );
            }
            ResponseKind::CreateTopics(response)
        }
        RequestKind::ListOffsets(list) => {
            let mut response = ListOffsetsResponse::default();
            for topic in list.topics {
                response.topics.push(
                    ListOffsetsTopicResponse::default()
                        .with_name(topic.name)
                        .with_partitions(
                            topic
                                .partitions
                                .iter()
                                .map(|p| {
                                    let offset = if p.timestamp == -2 {
                                        0
                                    } else {
                                        shared.options.log_end_offset
                                    };
                                    ListOffsetsPartitionResponse::default()
                                        .with_partition_index(p.partition_index)
                                        .with_offset(offset)
                                })
                                .collect(),
                        ),
                );
            }
            ResponseKind::ListOffsets(response)
        }
        RequestKind::Fetch(fetch) => {
            let mut response = FetchResponse::default();
            for topic in fetch.topics {
                let mut topic_response =
                    FetchableTopicResponse::default().with_topic(topic.topic.clone());
                for partition in topic.partitions {
                    let records = fetch_records(
                        shared,
                        partition.fetch_offset,
                        partition.partition_max_bytes,
                    );
                    topic_response.partitions.push(
                        PartitionData::default()
                            .with_partition_index(partition.partition)
                            .with_high_watermark(shared.options.log_end_offset)
                            .with_last_stable_offset(shared.options.log_end_offset)
                            .with_records(Some(records)),
                    );
                }
                response.responses.push(topic_response);
            }
            ResponseKind::Fetch(response)
        }
        other => panic!("fake broker: no answer for {other:?}"),
    }
}

/// Whole prebuilt batches from `offset` on, rebased, up to `max_bytes` (at least one).
fn fetch_records(shared: &Shared, offset: i64, max_bytes: i32) -> Bytes {
    let options = &shared.options;
    let mut template = shared.fetch_batch.lock().unwrap();
    let template = template.get_or_insert_with(|| {
        let value = vec![b'v'; options.fetch_record_bytes];
        let values: Vec<&[u8]> = (0..options.fetch_batch_records)
            .map(|_| &value[..])
            .collect();
        odradek_log::batch::build_batch(0, None, &values)
    });
    let records_per_batch = options.fetch_batch_records as i64;
    let mut out = BytesMut::new();
    let mut base = offset;
    while base < options.log_end_offset
        && (out.is_empty() || out.len() + template.len() <= max_bytes as usize)
    {
        let at = out.len();
        out.extend_from_slice(template);
        odradek_log::batch::assign(&mut out[at..], base, 0);
        base += records_per_batch;
    }
    out.freeze()
}
