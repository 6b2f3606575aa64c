//! The wire format of a [`PeerMessage`]: how one bundle becomes bytes and back.
//!
//! This is Odradek's own format, spoken only between Odradek brokers; Kafka's wire
//! protocol is for clients. The transport (`bin/src/peers.rs`) puts each encoded bundle
//! in a frame of its own (a `u32` length, then these bytes), so the format itself has
//! no outer length and a decoder is handed exactly one bundle.
//!
//! Rules every field follows:
//!
//! - integers are fixed width and big-endian (`i32` is 4 bytes, `i64` and `u64` 8), as
//!   Kafka writes its own; no `usize` ever reaches the wire;
//! - a boolean is one byte, `0` or `1`; anything else is an error;
//! - a string is a `u32` byte length and that many bytes of UTF-8; `bytes` (a record
//!   batch) is a `u32` length and the bytes;
//! - a list is a `u32` count and the elements one after the other;
//! - an `Option` is a flag byte (`0` absent, `1` present) and then the value if present;
//! - an enum is a one-byte tag and then the fields of that variant.
//!
//! ```text
//! PeerMessage   := version:u8 (= 3)
//!                  broker:Option<BrokerInfo>
//!                  raft:[RaftMessage]  leaders:[LeaderInfo]  forwards:[Forward]
//! BrokerInfo    := id:i32 endpoints:[ClientEndpoint]
//! ClientEndpoint := listener:string host:string port:i32
//! RaftMessage   := GroupId Message
//! GroupId       := 0                                     Metadata
//!                | 1 topic:string partition:i32          Partition
//! Message       := 0 leader_epoch:i32 prev_end_offset:i64 prev_epoch:i32
//!                    entries:[Entry] high_watermark:i64 log_start_offset:i64
//!                    follower_losses:u32                                          Append
//!                | 1 leader_epoch:i32 losses:u32 AppendResult                     AppendResponse
//!                | 2 leader_epoch:i32 last_epoch:i32 end_offset:i64 pre_vote:bool Vote
//!                | 3 leader_epoch:i32 pre_vote:bool granted:bool                  VoteResponse
//! Entry         := base_offset:i64 last_offset:i64 leader_epoch:i32 data:bytes
//! AppendResult  := 0 durable_end_offset:i64 end_offset:i64                        Accepted
//!                | 1 prev_end_offset:i64 hint_epoch:i32 hint_end_offset:i64       Diverged
//!                | 2                                                              StaleEpoch
//! LeaderInfo    := topic:string partition:i32 leader_epoch:i32 in_sync:[i32] high_watermark:i64
//! Forward       := 0 request:u64 record:string                                    Propose
//!                | 1 request:u64 error:Option<string> offset:i64                  Proposed
//! ```
//!
//! The version byte comes first so that a later format can be told apart: a decoder
//! refuses a version it does not know rather than misreading it.
//!
//! **A decoder must survive anything.** The bytes come from the network, and a buggy or
//! hostile peer, or a frame cut short, must give an error, never a panic and never a
//! huge allocation. So every count and length is checked against the bytes that are
//! actually left *before* anything is allocated for it: a list of `n` elements whose
//! smallest encoding is `m` bytes needs at least `n * m` bytes left. A 6-byte frame
//! that claims four billion Raft messages is refused at once. The decoder checks form,
//! not meaning: an entry whose `last_offset` is below its `base_offset` decodes fine,
//! and the receiving state machine judges it like any other input.

use bytes::Bytes;

use super::{BrokerInfo, ClientEndpoint, Forward, GroupId, LeaderInfo, PeerMessage, RaftMessage};
use crate::raft::{
    Append, AppendResponse, AppendResult, Entry, Message, VoteRequest, VoteResponse,
};
use crate::topics::TopicPartition;

/// The format version this broker writes, and the only one it reads.
pub const PEER_FORMAT_VERSION: u8 = 3;

/// Why bytes are not a [`PeerMessage`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PeerDecodeError {
    /// The first byte names a format this broker does not speak.
    #[error(
        "unsupported bundle format version {found} (this broker reads version {PEER_FORMAT_VERSION})"
    )]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// The bytes end in the middle of a field.
    #[error("bundle truncated in {what}: {needed} bytes needed at byte {at}, {remaining} left")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Where it starts.
        at: usize,
        /// Its size.
        needed: usize,
        /// What was left.
        remaining: usize,
    },
    /// A list count or a length that the bytes left cannot possibly hold.
    #[error("{what}: {count} cannot fit in the {remaining} bytes left")]
    TooLong {
        /// The list or string.
        what: &'static str,
        /// The count or length claimed.
        count: u32,
        /// The bytes left after it.
        remaining: usize,
    },
    /// An enum tag, option flag or boolean with a value the format does not define.
    #[error("{what}: unknown tag {tag}")]
    UnknownTag {
        /// The enum or flag.
        what: &'static str,
        /// The byte found.
        tag: u8,
    },
    /// A string that is not UTF-8.
    #[error("{what}: not valid UTF-8")]
    InvalidUtf8 {
        /// The string.
        what: &'static str,
    },
    /// Bytes left over after a whole bundle: the frame and the bundle disagree.
    #[error("{count} bytes left over after the bundle")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

// The smallest encoding of each list element, used to refuse impossible counts before
// allocating. A test encodes the smallest value of each and checks these numbers.

/// A [`RaftMessage`]: the Metadata group tag (1), a message tag (1), and a
/// `VoteResponse` (epoch 4 + two flags).
const RAFT_MESSAGE_BYTES_MIN: usize = 1 + 1 + 4 + 1 + 1;
/// An [`Entry`]: two offsets, an epoch and an empty data length.
const ENTRY_BYTES_MIN: usize = 8 + 8 + 4 + 4;
/// A [`ClientEndpoint`]: an empty listener name and host (4 each) and a port.
const ENDPOINT_BYTES_MIN: usize = 4 + 4 + 4;
/// A [`LeaderInfo`]: an empty topic (4), partition, epoch, empty in-sync list, high watermark.
const LEADER_INFO_BYTES_MIN: usize = 4 + 4 + 4 + 4 + 8;
/// An in-sync replica id.
const BROKER_ID_BYTES: usize = 4;
/// A [`Forward`]: tag (1), request id (8), and the smaller of an empty record (4) or an
/// absent error and an offset (1 + 8).
const FORWARD_BYTES_MIN: usize = 1 + 8 + 4;

impl PeerMessage {
    /// Appends the encoding of the bundle to `out` (see the module documentation).
    ///
    /// # Panics
    ///
    /// If a string, record batch or list has more than `u32::MAX` bytes or elements:
    /// such a bundle cannot be framed, and building one is a bug.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(PEER_FORMAT_VERSION);
        match &self.broker {
            None => out.push(0),
            Some(broker) => {
                out.push(1);
                put_i32(out, broker.id);
                put_count(out, broker.endpoints.len());
                for endpoint in &broker.endpoints {
                    put_string(out, &endpoint.listener);
                    put_string(out, &endpoint.host);
                    put_i32(out, endpoint.port);
                }
            }
        }
        put_count(out, self.raft.len());
        for raft in &self.raft {
            put_group(out, &raft.group);
            put_message(out, &raft.message);
        }
        put_count(out, self.leaders.len());
        for leader in &self.leaders {
            put_string(out, &leader.partition.topic);
            put_i32(out, leader.partition.partition);
            put_i32(out, leader.leader_epoch);
            put_count(out, leader.in_sync.len());
            for &id in &leader.in_sync {
                put_i32(out, id);
            }
            put_i64(out, leader.high_watermark);
        }
        put_count(out, self.forwards.len());
        for forward in &self.forwards {
            match forward {
                Forward::Propose { request, record } => {
                    out.push(0);
                    put_u64(out, *request);
                    put_string(out, record);
                }
                Forward::Proposed {
                    request,
                    error,
                    offset,
                } => {
                    out.push(1);
                    put_u64(out, *request);
                    match error {
                        None => out.push(0),
                        Some(error) => {
                            out.push(1);
                            put_string(out, error);
                        }
                    }
                    put_i64(out, *offset);
                }
            }
        }
    }

    /// The encoding of the bundle, in a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Decodes exactly one bundle from `bytes`: anything missing, malformed or left
    /// over is an error. Never panics, and never allocates more than `bytes` could
    /// hold. Record batches are copied out of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<PeerMessage, PeerDecodeError> {
        let mut reader = Reader { bytes, at: 0 };
        let version = reader.u8("version")?;
        if version != PEER_FORMAT_VERSION {
            return Err(PeerDecodeError::UnsupportedVersion { found: version });
        }
        let broker = reader.broker()?;
        let count = reader.count("raft messages", RAFT_MESSAGE_BYTES_MIN)?;
        let mut raft = Vec::with_capacity(count);
        for _ in 0..count {
            let group = reader.group()?;
            let message = reader.message()?;
            raft.push(RaftMessage { group, message });
        }
        let count = reader.count("leaders", LEADER_INFO_BYTES_MIN)?;
        let mut leaders = Vec::with_capacity(count);
        for _ in 0..count {
            leaders.push(reader.leader()?);
        }
        let count = reader.count("forwards", FORWARD_BYTES_MIN)?;
        let mut forwards = Vec::with_capacity(count);
        for _ in 0..count {
            forwards.push(reader.forward()?);
        }
        let left = reader.remaining();
        if left != 0 {
            return Err(PeerDecodeError::TrailingBytes { count: left });
        }
        Ok(PeerMessage {
            broker,
            raft,
            leaders,
            forwards,
        })
    }
}

fn put_i32(out: &mut Vec<u8>, value: i32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_i64(out: &mut Vec<u8>, value: i64) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_be_bytes());
}

fn put_bool(out: &mut Vec<u8>, value: bool) {
    out.push(u8::from(value));
}

/// A list count or byte length, as a `u32`.
fn put_count(out: &mut Vec<u8>, count: usize) {
    let count = u32::try_from(count).expect("a peer bundle list or string over u32::MAX");
    out.extend_from_slice(&count.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_count(out, bytes.len());
    out.extend_from_slice(bytes);
}

fn put_string(out: &mut Vec<u8>, value: &str) {
    put_bytes(out, value.as_bytes());
}

fn put_group(out: &mut Vec<u8>, group: &GroupId) {
    match group {
        GroupId::Metadata => out.push(0),
        GroupId::Partition(partition) => {
            out.push(1);
            put_string(out, &partition.topic);
            put_i32(out, partition.partition);
        }
    }
}

fn put_message(out: &mut Vec<u8>, message: &Message) {
    match message {
        Message::Append(append) => {
            out.push(0);
            put_i32(out, append.leader_epoch);
            put_i64(out, append.prev_end_offset);
            put_i32(out, append.prev_epoch);
            put_count(out, append.entries.len());
            for entry in &append.entries {
                put_i64(out, entry.base_offset);
                put_i64(out, entry.last_offset);
                put_i32(out, entry.leader_epoch);
                put_bytes(out, &entry.data);
            }
            put_i64(out, append.high_watermark);
            put_i64(out, append.log_start_offset);
            put_u32(out, append.follower_losses);
        }
        Message::AppendResponse(response) => {
            out.push(1);
            put_i32(out, response.leader_epoch);
            put_u32(out, response.losses);
            match response.result {
                AppendResult::Accepted {
                    durable_end_offset,
                    end_offset,
                } => {
                    out.push(0);
                    put_i64(out, durable_end_offset);
                    put_i64(out, end_offset);
                }
                AppendResult::Diverged {
                    prev_end_offset,
                    hint_epoch,
                    hint_end_offset,
                } => {
                    out.push(1);
                    put_i64(out, prev_end_offset);
                    put_i32(out, hint_epoch);
                    put_i64(out, hint_end_offset);
                }
                AppendResult::StaleEpoch => out.push(2),
            }
        }
        Message::Vote(vote) => {
            out.push(2);
            put_i32(out, vote.leader_epoch);
            put_i32(out, vote.last_epoch);
            put_i64(out, vote.end_offset);
            put_bool(out, vote.pre_vote);
        }
        Message::VoteResponse(response) => {
            out.push(3);
            put_i32(out, response.leader_epoch);
            put_bool(out, response.pre_vote);
            put_bool(out, response.granted);
        }
    }
}

/// A cursor over the bytes of one bundle. Every read checks the bytes left first.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, needed: usize, what: &'static str) -> Result<&'a [u8], PeerDecodeError> {
        let remaining = self.remaining();
        if needed > remaining {
            return Err(PeerDecodeError::Truncated {
                what,
                at: self.at,
                needed,
                remaining,
            });
        }
        let taken = &self.bytes[self.at..self.at + needed];
        self.at += needed;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], PeerDecodeError> {
        let taken = self.take(N, what)?;
        Ok(taken.try_into().expect("take returned N bytes"))
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, PeerDecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn i32(&mut self, what: &'static str) -> Result<i32, PeerDecodeError> {
        Ok(i32::from_be_bytes(self.array(what)?))
    }

    fn i64(&mut self, what: &'static str) -> Result<i64, PeerDecodeError> {
        Ok(i64::from_be_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, PeerDecodeError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, PeerDecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A boolean or an option's presence flag: exactly `0` or `1`.
    fn flag(&mut self, what: &'static str) -> Result<bool, PeerDecodeError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            tag => Err(PeerDecodeError::UnknownTag { what, tag }),
        }
    }

    /// A list count, refused unless `count` elements of at least `element_bytes_min`
    /// bytes each fit in what is left. After this check, allocating `count` elements
    /// costs at most a small multiple of the input's size.
    fn count(
        &mut self,
        what: &'static str,
        element_bytes_min: usize,
    ) -> Result<usize, PeerDecodeError> {
        assert!(element_bytes_min > 0);
        let count = u32::from_be_bytes(self.array(what)?);
        let remaining = self.remaining();
        let fits = usize::try_from(count)
            .ok()
            .and_then(|count| count.checked_mul(element_bytes_min))
            .is_some_and(|needed| needed <= remaining);
        if !fits {
            return Err(PeerDecodeError::TooLong {
                what,
                count,
                remaining,
            });
        }
        Ok(usize::try_from(count).expect("checked above"))
    }

    /// A `u32` length and that many bytes, borrowed.
    fn slice(&mut self, what: &'static str) -> Result<&'a [u8], PeerDecodeError> {
        let length = self.count(what, 1)?;
        self.take(length, what)
    }

    fn string(&mut self, what: &'static str) -> Result<String, PeerDecodeError> {
        let bytes = self.slice(what)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_string()),
            Err(_) => Err(PeerDecodeError::InvalidUtf8 { what }),
        }
    }

    /// The sending broker's address, if the bundle carries it.
    fn broker(&mut self) -> Result<Option<BrokerInfo>, PeerDecodeError> {
        if !self.flag("broker flag")? {
            return Ok(None);
        }
        let id = self.i32("broker id")?;
        let count = self.count("broker endpoints", ENDPOINT_BYTES_MIN)?;
        let mut endpoints = Vec::with_capacity(count);
        for _ in 0..count {
            endpoints.push(ClientEndpoint {
                listener: self.string("endpoint listener")?,
                host: self.string("endpoint host")?,
                port: self.i32("endpoint port")?,
            });
        }
        Ok(Some(BrokerInfo { id, endpoints }))
    }

    /// One [`LeaderInfo`].
    fn leader(&mut self) -> Result<LeaderInfo, PeerDecodeError> {
        let topic = self.string("leader topic")?;
        let partition = self.i32("leader partition")?;
        let leader_epoch = self.i32("leader epoch")?;
        let in_sync_count = self.count("in-sync replicas", BROKER_ID_BYTES)?;
        let mut in_sync = Vec::with_capacity(in_sync_count);
        for _ in 0..in_sync_count {
            in_sync.push(self.i32("in-sync replica")?);
        }
        let high_watermark = self.i64("leader high watermark")?;
        Ok(LeaderInfo {
            partition: TopicPartition { topic, partition },
            leader_epoch,
            in_sync,
            high_watermark,
        })
    }

    /// One [`Forward`].
    fn forward(&mut self) -> Result<Forward, PeerDecodeError> {
        match self.u8("forward tag")? {
            0 => Ok(Forward::Propose {
                request: self.u64("propose request")?,
                record: self.string("propose record")?,
            }),
            1 => Ok(Forward::Proposed {
                request: self.u64("proposed request")?,
                error: if self.flag("proposed error flag")? {
                    Some(self.string("proposed error")?)
                } else {
                    None
                },
                offset: self.i64("proposed offset")?,
            }),
            tag => Err(PeerDecodeError::UnknownTag {
                what: "forward",
                tag,
            }),
        }
    }

    fn group(&mut self) -> Result<GroupId, PeerDecodeError> {
        match self.u8("group tag")? {
            0 => Ok(GroupId::Metadata),
            1 => Ok(GroupId::Partition(TopicPartition {
                topic: self.string("group topic")?,
                partition: self.i32("group partition")?,
            })),
            tag => Err(PeerDecodeError::UnknownTag { what: "group", tag }),
        }
    }

    fn message(&mut self) -> Result<Message, PeerDecodeError> {
        match self.u8("message tag")? {
            0 => {
                let leader_epoch = self.i32("append leader epoch")?;
                let prev_end_offset = self.i64("append prev end offset")?;
                let prev_epoch = self.i32("append prev epoch")?;
                let count = self.count("append entries", ENTRY_BYTES_MIN)?;
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    entries.push(Entry {
                        base_offset: self.i64("entry base offset")?,
                        last_offset: self.i64("entry last offset")?,
                        leader_epoch: self.i32("entry leader epoch")?,
                        data: Bytes::copy_from_slice(self.slice("entry data")?),
                    });
                }
                Ok(Message::Append(Append {
                    leader_epoch,
                    prev_end_offset,
                    prev_epoch,
                    entries,
                    high_watermark: self.i64("append high watermark")?,
                    log_start_offset: self.i64("append log start offset")?,
                    follower_losses: self.u32("append follower losses")?,
                }))
            }
            1 => {
                let leader_epoch = self.i32("append response leader epoch")?;
                let losses = self.u32("append response losses")?;
                let result = match self.u8("append result tag")? {
                    0 => AppendResult::Accepted {
                        durable_end_offset: self.i64("accepted durable end offset")?,
                        end_offset: self.i64("accepted end offset")?,
                    },
                    1 => AppendResult::Diverged {
                        prev_end_offset: self.i64("diverged prev end offset")?,
                        hint_epoch: self.i32("diverged hint epoch")?,
                        hint_end_offset: self.i64("diverged hint end offset")?,
                    },
                    2 => AppendResult::StaleEpoch,
                    tag => {
                        return Err(PeerDecodeError::UnknownTag {
                            what: "append result",
                            tag,
                        });
                    }
                };
                Ok(Message::AppendResponse(AppendResponse {
                    leader_epoch,
                    losses,
                    result,
                }))
            }
            2 => Ok(Message::Vote(VoteRequest {
                leader_epoch: self.i32("vote leader epoch")?,
                last_epoch: self.i32("vote last epoch")?,
                end_offset: self.i64("vote end offset")?,
                pre_vote: self.flag("vote pre-vote")?,
            })),
            3 => Ok(Message::VoteResponse(VoteResponse {
                leader_epoch: self.i32("vote response leader epoch")?,
                pre_vote: self.flag("vote response pre-vote")?,
                granted: self.flag("vote response granted")?,
            })),
            tag => Err(PeerDecodeError::UnknownTag {
                what: "raft message",
                tag,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::raft::NO_EPOCH;

    fn partition(topic: &str, number: i32) -> TopicPartition {
        TopicPartition::new(topic, number)
    }

    fn raft(group: GroupId, message: Message) -> RaftMessage {
        RaftMessage { group, message }
    }

    /// A bundle with every variant of every enum in it.
    fn everything() -> PeerMessage {
        PeerMessage {
            broker: Some(BrokerInfo {
                id: 2,
                endpoints: vec![
                    ClientEndpoint {
                        listener: "PLAINTEXT".to_string(),
                        host: "broker-2.example".to_string(),
                        port: 9092,
                    },
                    ClientEndpoint {
                        listener: "SASL_SSL".to_string(),
                        host: "broker-2.example".to_string(),
                        port: 9094,
                    },
                ],
            }),
            raft: vec![
                raft(
                    GroupId::Metadata,
                    Message::Append(Append {
                        leader_epoch: 3,
                        prev_end_offset: 0,
                        prev_epoch: NO_EPOCH,
                        entries: vec![
                            Entry {
                                base_offset: 0,
                                last_offset: 4,
                                leader_epoch: 3,
                                data: Bytes::from_static(b"a record batch"),
                            },
                            Entry {
                                base_offset: 5,
                                last_offset: 5,
                                leader_epoch: 3,
                                data: Bytes::new(),
                            },
                        ],
                        high_watermark: 5,
                        log_start_offset: 0,
                        follower_losses: 0,
                    }),
                ),
                raft(
                    GroupId::Partition(partition("orders", 7)),
                    Message::Append(Append {
                        leader_epoch: 1,
                        prev_end_offset: 10,
                        prev_epoch: 1,
                        entries: Vec::new(),
                        high_watermark: 10,
                        log_start_offset: 2,
                        follower_losses: 3,
                    }),
                ),
                raft(
                    GroupId::Partition(partition("ünïcode-topic", 0)),
                    Message::AppendResponse(AppendResponse {
                        leader_epoch: 3,
                        losses: 1,
                        result: AppendResult::Accepted {
                            durable_end_offset: 4,
                            end_offset: 6,
                        },
                    }),
                ),
                raft(
                    GroupId::Metadata,
                    Message::AppendResponse(AppendResponse {
                        leader_epoch: 3,
                        losses: u32::MAX,
                        result: AppendResult::Diverged {
                            prev_end_offset: 9,
                            hint_epoch: 2,
                            hint_end_offset: 7,
                        },
                    }),
                ),
                raft(
                    GroupId::Metadata,
                    Message::AppendResponse(AppendResponse {
                        leader_epoch: 8,
                        losses: 0,
                        result: AppendResult::StaleEpoch,
                    }),
                ),
                raft(
                    GroupId::Metadata,
                    Message::Vote(VoteRequest {
                        leader_epoch: 4,
                        last_epoch: 3,
                        end_offset: 6,
                        pre_vote: true,
                    }),
                ),
                raft(
                    GroupId::Partition(partition("orders", 0)),
                    Message::VoteResponse(VoteResponse {
                        leader_epoch: 4,
                        pre_vote: false,
                        granted: true,
                    }),
                ),
            ],
            leaders: vec![LeaderInfo {
                partition: partition("orders", 7),
                leader_epoch: 1,
                in_sync: vec![1, 2, 3],
                high_watermark: 10,
            }],
            forwards: vec![
                Forward::Propose {
                    request: 42,
                    record: "create-topic orders 8".to_string(),
                },
                Forward::Proposed {
                    request: 42,
                    error: None,
                    offset: 17,
                },
                Forward::Proposed {
                    request: u64::MAX,
                    error: Some("not the controller".to_string()),
                    offset: -1,
                },
            ],
        }
    }

    fn round_trip(message: &PeerMessage) {
        let bytes = message.to_bytes();
        assert_eq!(bytes[0], PEER_FORMAT_VERSION);
        assert_eq!(PeerMessage::decode(&bytes).as_ref(), Ok(message));
    }

    #[test]
    fn every_variant_round_trips() {
        round_trip(&PeerMessage::default());
        round_trip(&everything());
        for one in everything().raft {
            round_trip(&PeerMessage {
                raft: vec![one],
                ..PeerMessage::default()
            });
        }
        for forward in everything().forwards {
            round_trip(&PeerMessage {
                forwards: vec![forward],
                ..PeerMessage::default()
            });
        }
    }

    #[test]
    fn the_format_is_pinned() {
        // A vote request in the metadata group, from broker 1 at "h":9092. If this test
        // fails, the format changed: bump PEER_FORMAT_VERSION and the module docs.
        let message = PeerMessage {
            broker: Some(BrokerInfo {
                id: 1,
                endpoints: vec![ClientEndpoint {
                    listener: "P".to_string(),
                    host: "h".to_string(),
                    port: 9092,
                }],
            }),
            raft: vec![raft(
                GroupId::Metadata,
                Message::Vote(VoteRequest {
                    leader_epoch: 2,
                    last_epoch: 1,
                    end_offset: 5,
                    pre_vote: true,
                }),
            )],
            ..PeerMessage::default()
        };
        #[rustfmt::skip]
        let expected: &[u8] = &[
            3,                          // version
            1, 0, 0, 0, 1,              // broker: present, id 1
            0, 0, 0, 1,                 //   one endpoint
            0, 0, 0, 1, b'P',           //     listener "P"
            0, 0, 0, 1, b'h',           //     host "h"
            0, 0, 0x23, 0x84,           //     port 9092
            0, 0, 0, 1,                 // one raft message
            0,                          //   group: metadata
            2,                          //   message: vote
            0, 0, 0, 2,                 //     leader epoch 2
            0, 0, 0, 1,                 //     last epoch 1
            0, 0, 0, 0, 0, 0, 0, 5,     //     end offset 5
            1,                          //     pre-vote
            0, 0, 0, 0,                 // no leaders
            0, 0, 0, 0,                 // no forwards
        ];
        assert_eq!(message.to_bytes(), expected);
    }

    #[test]
    fn minimum_sizes_match_the_smallest_encodings() {
        let encoded_len = |message: PeerMessage| message.to_bytes().len();
        let empty = encoded_len(PeerMessage::default());
        let smallest_raft = PeerMessage {
            raft: vec![raft(
                GroupId::Metadata,
                Message::VoteResponse(VoteResponse {
                    leader_epoch: 0,
                    pre_vote: false,
                    granted: false,
                }),
            )],
            ..PeerMessage::default()
        };
        assert_eq!(encoded_len(smallest_raft), empty + RAFT_MESSAGE_BYTES_MIN);
        let append = |entries| {
            raft(
                GroupId::Metadata,
                Message::Append(Append {
                    leader_epoch: 0,
                    prev_end_offset: 0,
                    prev_epoch: 0,
                    entries,
                    high_watermark: 0,
                    log_start_offset: 0,
                    follower_losses: 0,
                }),
            )
        };
        let no_entry = PeerMessage {
            raft: vec![append(Vec::new())],
            ..PeerMessage::default()
        };
        let one_entry = PeerMessage {
            raft: vec![append(vec![Entry {
                base_offset: 0,
                last_offset: 0,
                leader_epoch: 0,
                data: Bytes::new(),
            }])],
            ..PeerMessage::default()
        };
        assert_eq!(
            encoded_len(one_entry),
            encoded_len(no_entry) + ENTRY_BYTES_MIN
        );
        let smallest_leader = PeerMessage {
            leaders: vec![LeaderInfo {
                partition: partition("", 0),
                leader_epoch: 0,
                in_sync: Vec::new(),
                high_watermark: 0,
            }],
            ..PeerMessage::default()
        };
        assert_eq!(encoded_len(smallest_leader), empty + LEADER_INFO_BYTES_MIN);
        let forwards = [
            Forward::Propose {
                request: 0,
                record: String::new(),
            },
            Forward::Proposed {
                request: 0,
                error: None,
                offset: 0,
            },
        ];
        let smallest_forward = forwards
            .into_iter()
            .map(|forward| {
                encoded_len(PeerMessage {
                    forwards: vec![forward],
                    ..PeerMessage::default()
                })
            })
            .min()
            .unwrap();
        assert_eq!(smallest_forward, empty + FORWARD_BYTES_MIN);
    }

    #[test]
    fn truncation_at_every_byte_is_an_error() {
        let bytes = everything().to_bytes();
        for end in 0..bytes.len() {
            assert!(
                PeerMessage::decode(&bytes[..end]).is_err(),
                "a bundle cut at byte {end} of {} decoded",
                bytes.len()
            );
        }
    }

    #[test]
    fn trailing_bytes_and_unknown_versions_are_refused() {
        let mut bytes = everything().to_bytes();
        bytes.push(0);
        assert_eq!(
            PeerMessage::decode(&bytes),
            Err(PeerDecodeError::TrailingBytes { count: 1 })
        );
        let mut bytes = PeerMessage::default().to_bytes();
        bytes[0] = PEER_FORMAT_VERSION - 1;
        assert_eq!(
            PeerMessage::decode(&bytes),
            Err(PeerDecodeError::UnsupportedVersion {
                found: PEER_FORMAT_VERSION - 1
            })
        );
        assert!(matches!(
            PeerMessage::decode(&[]),
            Err(PeerDecodeError::Truncated {
                what: "version",
                ..
            })
        ));
    }

    #[test]
    fn bad_tags_flags_and_utf8_are_refused() {
        // A broker flag of 2.
        assert_eq!(
            PeerMessage::decode(&[3, 2]),
            Err(PeerDecodeError::UnknownTag {
                what: "broker flag",
                tag: 2
            })
        );
        // An endpoint host that is not UTF-8 (after broker 1, one endpoint, listener "").
        let bytes = [
            3, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0, 0, 0, 0,
        ];
        assert_eq!(
            PeerMessage::decode(&bytes),
            Err(PeerDecodeError::InvalidUtf8 {
                what: "endpoint host"
            })
        );
        // One raft message with group tag 9.
        let bytes = [3, 0, 0, 0, 0, 1, 9, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            PeerMessage::decode(&bytes),
            Err(PeerDecodeError::UnknownTag {
                what: "group",
                tag: 9
            })
        );
    }

    #[test]
    fn a_huge_count_in_a_tiny_frame_is_refused_before_allocating() {
        // Four billion raft messages claimed in a 6-byte frame.
        let bytes = [3, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        assert_eq!(
            PeerMessage::decode(&bytes),
            Err(PeerDecodeError::TooLong {
                what: "raft messages",
                count: u32::MAX,
                remaining: 0
            })
        );
        // A count that would fit if elements were one byte each, but they are not.
        let mut bytes = vec![3, 0, 0, 0, 0, 10];
        bytes.extend_from_slice(&[0; 10 * RAFT_MESSAGE_BYTES_MIN - 1]);
        assert!(matches!(
            PeerMessage::decode(&bytes),
            Err(PeerDecodeError::TooLong { count: 10, .. })
        ));
        // A 4 GiB host name in a 22-byte frame.
        let bytes = [
            3, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0,
        ];
        assert!(matches!(
            PeerMessage::decode(&bytes),
            Err(PeerDecodeError::TooLong {
                what: "endpoint host",
                ..
            })
        ));
    }

    fn any_partition() -> impl Strategy<Value = TopicPartition> {
        (".{0,12}", any::<i32>()).prop_map(|(topic, partition)| TopicPartition { topic, partition })
    }

    fn any_group() -> impl Strategy<Value = GroupId> {
        prop_oneof![
            Just(GroupId::Metadata),
            any_partition().prop_map(GroupId::Partition),
        ]
    }

    fn any_entry() -> impl Strategy<Value = Entry> {
        (
            any::<i64>(),
            any::<i64>(),
            any::<i32>(),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(base_offset, last_offset, leader_epoch, data)| Entry {
                base_offset,
                last_offset,
                leader_epoch,
                data: Bytes::from(data),
            })
    }

    fn any_append_result() -> impl Strategy<Value = AppendResult> {
        prop_oneof![
            (any::<i64>(), any::<i64>()).prop_map(|(durable_end_offset, end_offset)| {
                AppendResult::Accepted {
                    durable_end_offset,
                    end_offset,
                }
            }),
            (any::<i64>(), any::<i32>(), any::<i64>()).prop_map(
                |(prev_end_offset, hint_epoch, hint_end_offset)| AppendResult::Diverged {
                    prev_end_offset,
                    hint_epoch,
                    hint_end_offset,
                }
            ),
            Just(AppendResult::StaleEpoch),
        ]
    }

    fn any_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (
                any::<i32>(),
                any::<i64>(),
                any::<i32>(),
                proptest::collection::vec(any_entry(), 0..4),
                any::<i64>(),
                any::<i64>(),
                any::<u32>(),
            )
                .prop_map(
                    |(
                        leader_epoch,
                        prev_end_offset,
                        prev_epoch,
                        entries,
                        high_watermark,
                        log_start_offset,
                        follower_losses,
                    )| {
                        Message::Append(Append {
                            leader_epoch,
                            prev_end_offset,
                            prev_epoch,
                            entries,
                            high_watermark,
                            log_start_offset,
                            follower_losses,
                        })
                    }
                ),
            (any::<i32>(), any::<u32>(), any_append_result()).prop_map(
                |(leader_epoch, losses, result)| {
                    Message::AppendResponse(AppendResponse {
                        leader_epoch,
                        losses,
                        result,
                    })
                }
            ),
            (any::<i32>(), any::<i32>(), any::<i64>(), any::<bool>()).prop_map(
                |(leader_epoch, last_epoch, end_offset, pre_vote)| {
                    Message::Vote(VoteRequest {
                        leader_epoch,
                        last_epoch,
                        end_offset,
                        pre_vote,
                    })
                }
            ),
            (any::<i32>(), any::<bool>(), any::<bool>()).prop_map(
                |(leader_epoch, pre_vote, granted)| {
                    Message::VoteResponse(VoteResponse {
                        leader_epoch,
                        pre_vote,
                        granted,
                    })
                }
            ),
        ]
    }

    fn any_forward() -> impl Strategy<Value = Forward> {
        prop_oneof![
            (any::<u64>(), ".{0,24}")
                .prop_map(|(request, record)| Forward::Propose { request, record }),
            (any::<u64>(), proptest::option::of(".{0,24}"), any::<i64>()).prop_map(
                |(request, error, offset)| Forward::Proposed {
                    request,
                    error,
                    offset,
                }
            ),
        ]
    }

    fn any_peer_message() -> impl Strategy<Value = PeerMessage> {
        let endpoint =
            (".{0,8}", ".{0,16}", any::<i32>()).prop_map(|(listener, host, port)| ClientEndpoint {
                listener,
                host,
                port,
            });
        let broker = proptest::option::of(
            (any::<i32>(), proptest::collection::vec(endpoint, 0..3))
                .prop_map(|(id, endpoints)| BrokerInfo { id, endpoints }),
        );
        let raft = proptest::collection::vec(
            (any_group(), any_message())
                .prop_map(|(group, message)| RaftMessage { group, message }),
            0..6,
        );
        let leaders = proptest::collection::vec(
            (
                any_partition(),
                any::<i32>(),
                proptest::collection::vec(any::<i32>(), 0..5),
                any::<i64>(),
            )
                .prop_map(|(partition, leader_epoch, in_sync, high_watermark)| {
                    LeaderInfo {
                        partition,
                        leader_epoch,
                        in_sync,
                        high_watermark,
                    }
                }),
            0..4,
        );
        let forwards = proptest::collection::vec(any_forward(), 0..4);
        (broker, raft, leaders, forwards).prop_map(|(broker, raft, leaders, forwards)| {
            PeerMessage {
                broker,
                raft,
                leaders,
                forwards,
            }
        })
    }

    proptest! {
        #[test]
        fn arbitrary_bundles_round_trip(message in any_peer_message()) {
            let bytes = message.to_bytes();
            prop_assert_eq!(PeerMessage::decode(&bytes), Ok(message));
        }

        #[test]
        fn garbage_never_panics(garbage in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = PeerMessage::decode(&garbage);
            // The same garbage behind a valid version byte gets past the first check.
            let mut versioned = vec![PEER_FORMAT_VERSION];
            versioned.extend_from_slice(&garbage);
            let _ = PeerMessage::decode(&versioned);
        }

        #[test]
        fn corrupted_bundles_never_panic(
            message in any_peer_message(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut bytes = message.to_bytes();
            for (at, value) in flips {
                let at = at.index(bytes.len());
                bytes[at] = value;
            }
            if let Ok(decoded) = PeerMessage::decode(&bytes) {
                // Whatever decodes encodes back to the same bytes: no field was skipped.
                prop_assert_eq!(decoded.to_bytes(), bytes);
            }
        }

        #[test]
        fn every_truncation_of_an_arbitrary_bundle_is_an_error(
            message in any_peer_message(),
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = message.to_bytes();
            let end = cut.index(bytes.len());
            prop_assert!(PeerMessage::decode(&bytes[..end]).is_err());
        }
    }
}
