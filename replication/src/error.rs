//! Kafka error codes, and the one place where our errors become them.
//!
//! Numbers and names are Kafka's own (the protocol guide's error table), so a reader can
//! look any of them up there. Only codes the node actually returns are listed.

use odradek_log::batch::BatchError;
use odradek_log::io::DiskError;
use odradek_log::partition::{AppendError, ReadError};

/// A Kafka protocol error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(i16)]
pub enum ErrorCode {
    /// No error.
    None = 0,
    /// The requested offset is outside the range the partition holds.
    OffsetOutOfRange = 1,
    /// A batch failed its CRC or is otherwise malformed.
    CorruptMessage = 2,
    /// The topic or partition does not exist on this broker.
    UnknownTopicOrPartition = 3,
    /// The partition has no leader right now (retriable).
    LeaderNotAvailable = 5,
    /// This broker does not lead the partition.
    NotLeaderOrFollower = 6,
    /// The request took longer than its timeout.
    RequestTimedOut = 7,
    /// A batch is larger than `max.message.bytes`.
    MessageTooLarge = 10,
    /// The group coordinator is not available yet (`__consumer_offsets` is being
    /// created, or its partition has no leader): ask FindCoordinator again later.
    CoordinatorNotAvailable = 15,
    /// This broker does not coordinate the group (any more).
    NotCoordinator = 16,
    /// Fewer replicas are in sync than `min.insync.replicas` asks for an acks=all write.
    NotEnoughReplicas = 19,
    /// The topic name is not legal, or reserved.
    InvalidTopicException = 17,
    /// `acks` is not -1, 0 or 1.
    InvalidRequiredAcks = 21,
    /// The client asked for an API version we do not implement.
    UnsupportedVersion = 35,
    /// CreateTopics for a name that exists.
    TopicAlreadyExists = 36,
    /// A partition count that is not positive.
    InvalidPartitions = 37,
    /// A replication factor the cluster cannot meet.
    InvalidReplicationFactor = 38,
    /// A manual replica assignment that names unknown brokers.
    InvalidReplicaAssignment = 39,
    /// A configuration key or value we refuse.
    InvalidConfig = 40,
    /// A metadata change sent to a broker that is not the controller (the metadata
    /// quorum's leader); the client refreshes its metadata and asks the controller.
    NotController = 41,
    /// The request is malformed or asks for something we do not support.
    InvalidRequest = 42,
    /// The topic's configuration forbids it (DeleteRecords on a compact-only topic).
    PolicyViolation = 44,
    /// The principal may not do this to the topic.
    TopicAuthorizationFailed = 29,
    /// The principal may not do this to the group.
    GroupAuthorizationFailed = 30,
    /// The principal may not do this to the cluster.
    ClusterAuthorizationFailed = 31,
    /// The principal may not use this transactional id.
    TransactionalIdAuthorizationFailed = 53,
    /// ACL requests to a broker that runs no authorizer.
    SecurityDisabled = 54,
    /// An idempotent producer skipped or reordered sequence numbers.
    OutOfOrderSequenceNumber = 45,
    /// An idempotent producer with an old epoch.
    InvalidProducerEpoch = 47,
    /// The partition's log failed (a failed fsync, an unreadable segment).
    KafkaStorageError = 56,
    /// A fetch session id we never handed out (we create no fetch sessions).
    FetchSessionIdNotFound = 70,
    /// The leader epoch the client sent is newer than ours.
    UnknownLeaderEpoch = 74,
    /// The leader epoch the client sent is older than ours.
    FencedLeaderEpoch = 75,
    /// A new leader's high watermark has not caught up with its election yet
    /// (KIP-207): ListOffsets cannot promise monotonic offsets; retriable.
    OffsetNotAvailable = 78,
    /// A record inside a batch is refused (here: transactional batches).
    InvalidRecord = 87,
    /// A topic id that does not exist.
    UnknownTopicId = 100,
    /// A SASL mechanism this broker does not know or enable.
    UnsupportedSaslMechanism = 33,
    /// A resource (a user's SCRAM credential) that does not exist.
    ResourceNotFound = 91,
    /// The same resource twice in one request.
    DuplicateResource = 92,
    /// A SCRAM credential Kafka would refuse (iterations out of range, empty user...).
    UnacceptableCredential = 93,
}

impl ErrorCode {
    /// The code as it goes on the wire.
    pub fn code(self) -> i16 {
        self as i16
    }
}

impl From<&BatchError> for ErrorCode {
    fn from(error: &BatchError) -> ErrorCode {
        match error {
            BatchError::UnsupportedMagic { .. } => ErrorCode::InvalidRecord,
            BatchError::Truncated { .. }
            | BatchError::InvalidLength { .. }
            | BatchError::CrcMismatch { .. }
            | BatchError::InvalidHeader { .. } => ErrorCode::CorruptMessage,
        }
    }
}

impl From<&AppendError> for ErrorCode {
    fn from(error: &AppendError) -> ErrorCode {
        match error {
            AppendError::Batch(batch) => ErrorCode::from(batch),
            AppendError::TooLarge { .. } => ErrorCode::MessageTooLarge,
            AppendError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
            AppendError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
            AppendError::KeylessRecord => ErrorCode::InvalidRecord,
            AppendError::Disk(DiskError::NoSpace) | AppendError::Disk(_) | AppendError::Failed => {
                ErrorCode::KafkaStorageError
            }
        }
    }
}

impl From<&ReadError> for ErrorCode {
    fn from(error: &ReadError) -> ErrorCode {
        match error {
            ReadError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
            ReadError::Corrupt { .. } | ReadError::Disk(_) | ReadError::Failed => {
                ErrorCode::KafkaStorageError
            }
        }
    }
}
