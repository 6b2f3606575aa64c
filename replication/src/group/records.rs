//! The records of `__consumer_offsets`, in Kafka's own on-disk format, so that Kafka's
//! tools (`kafka-dump-log --offsets-decoder`) read what Odradek writes and Odradek reads
//! what they write.
//!
//! Every record has a key and, unless it is a tombstone, a value. Both start with a
//! big-endian `int16` version that says which schema follows (Kafka's
//! `GroupMetadataManager.readMessageKey`/`readOffsetMessageValue`/`readGroupMessageValue`,
//! schemas in `core/src/main/resources/common/message/*.json`):
//!
//! ```text
//! key version 0 or 1  OffsetCommitKey    group: string, topic: string, partition: int32
//! key version 2       GroupMetadataKey   group: string
//!
//! OffsetCommitValue   v0: offset int64, metadata string, commit_timestamp int64
//!                     v1: v0 + expire_timestamp int64          (written when the commit
//!                                                               carried retention_time_ms)
//!                     v2: v0
//!                     v3: offset, leader_epoch int32, metadata, commit_timestamp
//! GroupMetadataValue  v0: protocol_type string, generation int32, protocol string?,
//!                         leader string?, members [member_id, client_id, client_host,
//!                         session_timeout int32, subscription bytes, assignment bytes]
//!                     v1: members gain rebalance_timeout int32 (after client_host)
//!                     v2: current_state_timestamp int64 (after leader)
//!                     v3: members gain group_instance_id string? (after member_id)
//! ```
//!
//! Strings are an `int16` length and UTF-8 bytes (`-1` for a null `string?`), bytes an
//! `int32` length, arrays an `int32` count: the classic (non-flexible) encoding. Odradek
//! writes key v1 / v2, OffsetCommitValue v3 (v1 when the commit carried a retention
//! time, as Kafka does) and GroupMetadataValue v3, and reads every version above.

use bytes::{BufMut, Bytes, BytesMut};

/// The key of an OffsetCommit record, as Kafka writes it.
const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// The key of a GroupMetadata record.
const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// The OffsetCommitValue version written when the commit has no expire timestamp.
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// The OffsetCommitValue version that carries an explicit expire timestamp.
const OFFSET_COMMIT_VALUE_VERSION_EXPIRE: i16 = 1;
/// The GroupMetadataValue version written.
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// Why a key or value could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes end before the schema does.
    #[error("record truncated at byte {at}")]
    Truncated {
        /// Where the read stopped.
        at: usize,
    },
    /// A version this decoder does not know (for example the records of Kafka's newer
    /// consumer group protocol, KIP-848, whose keys have versions 3 and up).
    #[error("unknown {what} version {version}")]
    UnknownVersion {
        /// Which schema: "key", "offset commit value", "group metadata value".
        what: &'static str,
        /// The version read.
        version: i16,
    },
    /// A string that is not UTF-8, or a negative length where null is not allowed.
    #[error("malformed {what} at byte {at}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// Where.
        at: usize,
    },
}

/// The key of a `__consumer_offsets` record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordKey {
    /// A committed offset of one partition (key versions 0 and 1).
    OffsetCommit {
        /// The group's id.
        group: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// The metadata of a group (key version 2).
    GroupMetadata {
        /// The group's id.
        group: String,
    },
}

impl RecordKey {
    /// The group this record belongs to.
    pub fn group(&self) -> &str {
        match self {
            RecordKey::OffsetCommit { group, .. } | RecordKey::GroupMetadata { group } => group,
        }
    }

    /// The key's bytes: key v1 for an offset commit, v2 for group metadata.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self {
            RecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                out.put_i16(OFFSET_COMMIT_KEY_VERSION);
                put_string(&mut out, group);
                put_string(&mut out, topic);
                out.put_i32(*partition);
            }
            RecordKey::GroupMetadata { group } => {
                out.put_i16(GROUP_METADATA_KEY_VERSION);
                put_string(&mut out, group);
            }
        }
        out.freeze()
    }

    /// Decodes a key of any version Kafka's classic coordinator writes.
    pub fn decode(bytes: &[u8]) -> Result<RecordKey, RecordError> {
        let mut reader = Reader::new(bytes);
        let version = reader.i16()?;
        let key = match version {
            0 | 1 => RecordKey::OffsetCommit {
                group: reader.string("group")?,
                topic: reader.string("topic")?,
                partition: reader.i32()?,
            },
            2 => RecordKey::GroupMetadata {
                group: reader.string("group")?,
            },
            version => {
                return Err(RecordError::UnknownVersion {
                    what: "key",
                    version,
                });
            }
        };
        Ok(key)
    }
}

/// The value of an OffsetCommit record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetCommitValue {
    /// The committed offset.
    pub offset: i64,
    /// The leader epoch of the committed offset's record, -1 when unknown (v3).
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When the coordinator accepted the commit (wall clock, ms since the epoch).
    pub commit_timestamp_ms: i64,
    /// An explicit expiry (v1 only: commits of OffsetCommit v2–v4 with a
    /// `retention_time_ms`). `None` means offsets retention decides.
    pub expire_timestamp_ms: Option<i64>,
}

impl OffsetCommitValue {
    /// The value's bytes: v1 when it has an expire timestamp, else v3.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        match self.expire_timestamp_ms {
            Some(expire_timestamp_ms) => {
                out.put_i16(OFFSET_COMMIT_VALUE_VERSION_EXPIRE);
                out.put_i64(self.offset);
                put_string(&mut out, &self.metadata);
                out.put_i64(self.commit_timestamp_ms);
                out.put_i64(expire_timestamp_ms);
            }
            None => {
                out.put_i16(OFFSET_COMMIT_VALUE_VERSION);
                out.put_i64(self.offset);
                out.put_i32(self.leader_epoch);
                put_string(&mut out, &self.metadata);
                out.put_i64(self.commit_timestamp_ms);
            }
        }
        out.freeze()
    }

    /// Decodes versions 0 to 3.
    pub fn decode(bytes: &[u8]) -> Result<OffsetCommitValue, RecordError> {
        let mut reader = Reader::new(bytes);
        let version = reader.i16()?;
        if !(0..=3).contains(&version) {
            return Err(RecordError::UnknownVersion {
                what: "offset commit value",
                version,
            });
        }
        let offset = reader.i64()?;
        let leader_epoch = if version >= 3 { reader.i32()? } else { -1 };
        let metadata = reader.string("metadata")?;
        let commit_timestamp_ms = reader.i64()?;
        let expire_timestamp_ms = if version == 1 {
            Some(reader.i64()?).filter(|at| *at != -1)
        } else {
            None
        };
        Ok(OffsetCommitValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp_ms,
            expire_timestamp_ms,
        })
    }
}

/// One member inside a GroupMetadata record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberMetadataValue {
    /// The member id the coordinator handed out.
    pub member_id: String,
    /// KIP-345's `group.instance.id` of a static member (v3).
    pub group_instance_id: Option<String>,
    /// The client's `client.id`.
    pub client_id: String,
    /// The client's host, as the broker saw it.
    pub client_host: String,
    /// `max.poll.interval.ms` for consumers (v1; v0 records use the session timeout).
    pub rebalance_timeout_ms: i32,
    /// `session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's selected protocol.
    pub subscription: Bytes,
    /// What the leader assigned to the member (opaque to the coordinator).
    pub assignment: Bytes,
}

/// The value of a GroupMetadata record: a group as of its last completed rebalance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// "consumer", "connect", ...; empty for a group that never had members.
    pub protocol_type: String,
    /// The generation id.
    pub generation_id: i32,
    /// The selected protocol (assignor); null for an empty group.
    pub protocol_name: Option<String>,
    /// The leader's member id; null for an empty group.
    pub leader: Option<String>,
    /// When the group entered its current state (wall clock ms), -1 when unknown (v2).
    pub current_state_timestamp_ms: i64,
    /// The members.
    pub members: Vec<MemberMetadataValue>,
}

impl GroupMetadataValue {
    /// The value's bytes, version 3.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.put_i16(GROUP_METADATA_VALUE_VERSION);
        put_string(&mut out, &self.protocol_type);
        out.put_i32(self.generation_id);
        put_nullable_string(&mut out, self.protocol_name.as_deref());
        put_nullable_string(&mut out, self.leader.as_deref());
        out.put_i64(self.current_state_timestamp_ms);
        put_count(&mut out, self.members.len());
        for member in &self.members {
            put_string(&mut out, &member.member_id);
            put_nullable_string(&mut out, member.group_instance_id.as_deref());
            put_string(&mut out, &member.client_id);
            put_string(&mut out, &member.client_host);
            out.put_i32(member.rebalance_timeout_ms);
            out.put_i32(member.session_timeout_ms);
            put_bytes(&mut out, &member.subscription);
            put_bytes(&mut out, &member.assignment);
        }
        out.freeze()
    }

    /// Decodes versions 0 to 3.
    pub fn decode(bytes: &[u8]) -> Result<GroupMetadataValue, RecordError> {
        let mut reader = Reader::new(bytes);
        let version = reader.i16()?;
        if !(0..=3).contains(&version) {
            return Err(RecordError::UnknownVersion {
                what: "group metadata value",
                version,
            });
        }
        let protocol_type = reader.string("protocol type")?;
        let generation_id = reader.i32()?;
        let protocol_name = reader.nullable_string("protocol")?;
        let leader = reader.nullable_string("leader")?;
        let current_state_timestamp_ms = if version >= 2 { reader.i64()? } else { -1 };
        let count = reader.count("members")?;
        let mut members = Vec::with_capacity(count.min(reader.remaining()));
        for _ in 0..count {
            let member_id = reader.string("member id")?;
            let group_instance_id = if version >= 3 {
                reader.nullable_string("group instance id")?
            } else {
                None
            };
            let client_id = reader.string("client id")?;
            let client_host = reader.string("client host")?;
            let rebalance_timeout_ms = if version >= 1 {
                Some(reader.i32()?)
            } else {
                None
            };
            let session_timeout_ms = reader.i32()?;
            let subscription = reader.bytes("subscription")?;
            let assignment = reader.bytes("assignment")?;
            members.push(MemberMetadataValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                // Kafka's rule for v0 records: the rebalance timeout is the session timeout.
                rebalance_timeout_ms: rebalance_timeout_ms.unwrap_or(session_timeout_ms),
                session_timeout_ms,
                subscription,
                assignment,
            });
        }
        Ok(GroupMetadataValue {
            protocol_type,
            generation_id,
            protocol_name,
            leader,
            current_state_timestamp_ms,
            members,
        })
    }
}

fn put_string(out: &mut BytesMut, value: &str) {
    let length = i16::try_from(value.len()).expect("strings of a group record fit an int16 length");
    out.put_i16(length);
    out.put_slice(value.as_bytes());
}

fn put_nullable_string(out: &mut BytesMut, value: Option<&str>) {
    match value {
        Some(value) => put_string(out, value),
        None => out.put_i16(-1),
    }
}

fn put_bytes(out: &mut BytesMut, value: &[u8]) {
    let length = i32::try_from(value.len()).expect("bytes of a group record fit an int32 length");
    out.put_i32(length);
    out.put_slice(value);
}

fn put_count(out: &mut BytesMut, count: usize) {
    out.put_i32(i32::try_from(count).expect("a group record's array fits an int32 count"));
}

/// A cursor over a record's bytes that never panics on short or hostile input.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, length: usize) -> Result<&'a [u8], RecordError> {
        if self.remaining() < length {
            return Err(RecordError::Truncated { at: self.at });
        }
        let slice = &self.bytes[self.at..self.at + length];
        self.at += length;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut raw = [0u8; N];
        raw.copy_from_slice(self.take(N)?);
        Ok(raw)
    }

    fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn nullable_string(&mut self, what: &'static str) -> Result<Option<String>, RecordError> {
        let at = self.at;
        let length = self.i16()?;
        if length < 0 {
            return if length == -1 {
                Ok(None)
            } else {
                Err(RecordError::Malformed { what, at })
            };
        }
        let raw = self.take(usize::from(length.unsigned_abs()))?;
        let text = std::str::from_utf8(raw).map_err(|_| RecordError::Malformed { what, at })?;
        Ok(Some(text.to_string()))
    }

    fn string(&mut self, what: &'static str) -> Result<String, RecordError> {
        let at = self.at;
        self.nullable_string(what)?
            .ok_or(RecordError::Malformed { what, at })
    }

    fn count(&mut self, what: &'static str) -> Result<usize, RecordError> {
        let at = self.at;
        let count = self.i32()?;
        usize::try_from(count).map_err(|_| RecordError::Malformed { what, at })
    }

    fn bytes(&mut self, what: &'static str) -> Result<Bytes, RecordError> {
        let at = self.at;
        let length = self.i32()?;
        let length = usize::try_from(length).map_err(|_| RecordError::Malformed { what, at })?;
        Ok(Bytes::copy_from_slice(self.take(length)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_commit_key_bytes_match_kafka() {
        // OffsetCommitKey v1 of ("g", "t", 3): version, "g", "t", partition, big-endian.
        let key = RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        let expected: &[u8] = &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3];
        assert_eq!(key.encode().as_ref(), expected);
        assert_eq!(RecordKey::decode(expected).unwrap(), key);
        // Version 0 has the same layout.
        let v0: &[u8] = &[0, 0, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3];
        assert_eq!(RecordKey::decode(v0).unwrap(), key);
    }

    #[test]
    fn group_metadata_key_bytes_match_kafka() {
        let key = RecordKey::GroupMetadata { group: "ab".into() };
        let expected: &[u8] = &[0, 2, 0, 2, b'a', b'b'];
        assert_eq!(key.encode().as_ref(), expected);
        assert_eq!(RecordKey::decode(expected).unwrap(), key);
    }

    #[test]
    fn newer_key_versions_are_reported_unknown() {
        // KIP-848's ConsumerGroupMetadataKey is key version 3.
        let bytes: &[u8] = &[0, 3, 0, 1, b'g'];
        assert_eq!(
            RecordKey::decode(bytes),
            Err(RecordError::UnknownVersion {
                what: "key",
                version: 3
            })
        );
    }

    #[test]
    fn offset_commit_value_v3_bytes_match_kafka() {
        let value = OffsetCommitValue {
            offset: 42,
            leader_epoch: 7,
            metadata: "m".into(),
            commit_timestamp_ms: 1000,
            expire_timestamp_ms: None,
        };
        let mut expected = vec![0, 3];
        expected.extend_from_slice(&42i64.to_be_bytes());
        expected.extend_from_slice(&7i32.to_be_bytes());
        expected.extend_from_slice(&[0, 1, b'm']);
        expected.extend_from_slice(&1000i64.to_be_bytes());
        assert_eq!(value.encode().as_ref(), expected.as_slice());
        assert_eq!(OffsetCommitValue::decode(&expected).unwrap(), value);
    }

    #[test]
    fn offset_commit_value_v1_carries_the_expire_timestamp() {
        let value = OffsetCommitValue {
            offset: 5,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: 10,
            expire_timestamp_ms: Some(20),
        };
        let bytes = value.encode();
        assert_eq!(&bytes[..2], &[0, 1]);
        assert_eq!(bytes.len(), 2 + 8 + 2 + 8 + 8);
        assert_eq!(OffsetCommitValue::decode(&bytes).unwrap(), value);
    }

    #[test]
    fn offset_commit_values_v0_and_v2_decode() {
        let mut v2 = vec![0, 2];
        v2.extend_from_slice(&9i64.to_be_bytes());
        v2.extend_from_slice(&[0, 0]);
        v2.extend_from_slice(&77i64.to_be_bytes());
        let decoded = OffsetCommitValue::decode(&v2).unwrap();
        assert_eq!(decoded.offset, 9);
        assert_eq!(decoded.leader_epoch, -1);
        assert_eq!(decoded.commit_timestamp_ms, 77);
        assert_eq!(decoded.expire_timestamp_ms, None);
        v2[1] = 0;
        assert_eq!(OffsetCommitValue::decode(&v2).unwrap(), decoded);
    }

    fn sample_group() -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation_id: 3,
            protocol_name: Some("range".into()),
            leader: Some("c-1".into()),
            current_state_timestamp_ms: 123,
            members: vec![
                MemberMetadataValue {
                    member_id: "c-1".into(),
                    group_instance_id: Some("i".into()),
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from_static(b"sub"),
                    assignment: Bytes::from_static(b"asg"),
                },
                MemberMetadataValue {
                    member_id: "c-2".into(),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "h".into(),
                    rebalance_timeout_ms: 1,
                    session_timeout_ms: 2,
                    subscription: Bytes::new(),
                    assignment: Bytes::new(),
                },
            ],
        }
    }

    #[test]
    fn group_metadata_value_v3_round_trips_and_has_kafka_layout() {
        let value = sample_group();
        let bytes = value.encode();
        assert_eq!(GroupMetadataValue::decode(&bytes).unwrap(), value);
        // Hand-checked prefix: version 3, "consumer", generation 3, "range", "c-1", 123, 2 members.
        let mut prefix = vec![0, 3, 0, 8];
        prefix.extend_from_slice(b"consumer");
        prefix.extend_from_slice(&3i32.to_be_bytes());
        prefix.extend_from_slice(&[0, 5]);
        prefix.extend_from_slice(b"range");
        prefix.extend_from_slice(&[0, 3]);
        prefix.extend_from_slice(b"c-1");
        prefix.extend_from_slice(&123i64.to_be_bytes());
        prefix.extend_from_slice(&2i32.to_be_bytes());
        // First member: member id, instance id, client id, host, timeouts, bytes.
        prefix.extend_from_slice(&[0, 3]);
        prefix.extend_from_slice(b"c-1");
        prefix.extend_from_slice(&[0, 1, b'i', 0, 1, b'c', 0, 10]);
        prefix.extend_from_slice(b"/127.0.0.1");
        prefix.extend_from_slice(&300_000i32.to_be_bytes());
        prefix.extend_from_slice(&45_000i32.to_be_bytes());
        prefix.extend_from_slice(&3i32.to_be_bytes());
        prefix.extend_from_slice(b"sub");
        assert_eq!(&bytes[..prefix.len()], prefix.as_slice());
    }

    #[test]
    fn empty_group_metadata_has_null_protocol_and_leader() {
        let value = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation_id: 4,
            protocol_name: None,
            leader: None,
            current_state_timestamp_ms: 9,
            members: vec![],
        };
        let bytes = value.encode();
        let mut expected = vec![0, 3, 0, 8];
        expected.extend_from_slice(b"consumer");
        expected.extend_from_slice(&4i32.to_be_bytes());
        expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        expected.extend_from_slice(&9i64.to_be_bytes());
        expected.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(bytes.as_ref(), expected.as_slice());
        assert_eq!(GroupMetadataValue::decode(&bytes).unwrap(), value);
    }

    #[test]
    fn group_metadata_value_v0_uses_the_session_timeout_as_rebalance_timeout() {
        let mut bytes = vec![0, 0, 0, 1, b'x'];
        bytes.extend_from_slice(&1i32.to_be_bytes());
        bytes.extend_from_slice(&[0, 1, b'p', 0, 1, b'm']);
        bytes.extend_from_slice(&1i32.to_be_bytes());
        bytes.extend_from_slice(&[0, 1, b'm', 0, 1, b'c', 0, 1, b'h']);
        bytes.extend_from_slice(&6000i32.to_be_bytes());
        bytes.extend_from_slice(&0i32.to_be_bytes());
        bytes.extend_from_slice(&0i32.to_be_bytes());
        let value = GroupMetadataValue::decode(&bytes).unwrap();
        assert_eq!(value.current_state_timestamp_ms, -1);
        assert_eq!(value.members[0].rebalance_timeout_ms, 6000);
        assert_eq!(value.members[0].group_instance_id, None);
    }

    #[test]
    fn truncated_and_hostile_input_is_an_error_not_a_panic() {
        let bytes = sample_group().encode();
        for cut in 0..bytes.len() {
            assert!(
                GroupMetadataValue::decode(&bytes[..cut]).is_err(),
                "cut {cut}"
            );
        }
        // A member count far beyond the bytes.
        let mut hostile = vec![0, 3, 0, 0];
        hostile.extend_from_slice(&0i32.to_be_bytes());
        hostile.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        hostile.extend_from_slice(&0i64.to_be_bytes());
        hostile.extend_from_slice(&i32::MAX.to_be_bytes());
        assert!(GroupMetadataValue::decode(&hostile).is_err());
        assert!(RecordKey::decode(&[0]).is_err());
        assert!(RecordKey::decode(&[0, 1, 0xff, 0xfe]).is_err());
    }
}
