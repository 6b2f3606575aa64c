//! The Kafka error codes the group coordinator answers with, and where append failures
//! of `__consumer_offsets` become them.
//!
//! Numbers and names are Kafka's own (the protocol guide's error table). The crate-wide
//! [`crate::error::ErrorCode`] lists the codes of the partition and topic handlers; the
//! coordinator's codes live here so that the coordinator can grow without touching it.

use crate::error::ErrorCode;

/// A Kafka protocol error code that the group coordinator returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(i16)]
pub enum GroupErrorCode {
    /// An unexpected failure (here: a failed append of group metadata).
    UnknownServerError = -1,
    /// No error.
    None = 0,
    /// An OffsetCommit's metadata string is longer than `offset.metadata.max.bytes`.
    OffsetMetadataTooLarge = 12,
    /// The coordinator is loading the group's offsets partition (retriable).
    CoordinatorLoadInProgress = 14,
    /// The coordinator cannot serve the group right now (retriable; the client looks
    /// the coordinator up again).
    CoordinatorNotAvailable = 15,
    /// This broker does not lead the group's `__consumer_offsets` partition.
    NotCoordinator = 16,
    /// The generation id the member sent is not the group's current one.
    IllegalGeneration = 22,
    /// The member's protocol type or protocols do not fit the group's.
    InconsistentGroupProtocol = 23,
    /// The group id is empty where a group id is required.
    InvalidGroupId = 24,
    /// The member id is not a member of the group.
    UnknownMemberId = 25,
    /// The session timeout is outside `group.min/max.session.timeout.ms`.
    InvalidSessionTimeout = 26,
    /// The group is rebalancing: the member must rejoin.
    RebalanceInProgress = 27,
    /// An offset commit's records were too large to append.
    InvalidCommitOffsetSize = 28,
    /// DeleteGroups of a group that still has members.
    NonEmptyGroup = 68,
    /// DeleteGroups of a group that does not exist.
    GroupIdNotFound = 69,
    /// OffsetDelete of a topic the group's members subscribe to (KIP-496).
    GroupSubscribedToTopic = 86,
    /// KIP-394: a new dynamic member must rejoin with the member id it was handed.
    MemberIdRequired = 79,
    /// The group already has `group.max.size` members.
    GroupMaxSizeReached = 81,
    /// KIP-345: another member with the same `group.instance.id` replaced this one.
    FencedInstanceId = 82,
    /// OffsetFetch with `require_stable`: a commit for the partition is in flight.
    UnstableOffsetCommit = 88,
}

impl GroupErrorCode {
    /// The code as it goes on the wire.
    pub fn code(self) -> i16 {
        self as i16
    }
}

/// What an OffsetCommit answers when its append failed with `error`: Kafka's
/// `GroupMetadataManager.storeOffsets` mapping (a lost leadership becomes
/// NOT_COORDINATOR, so that the client looks the coordinator up again).
pub(crate) fn offset_commit_append_error(error: ErrorCode) -> i16 {
    match error {
        ErrorCode::UnknownTopicOrPartition | ErrorCode::NotEnoughReplicas => {
            GroupErrorCode::CoordinatorNotAvailable.code()
        }
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => {
            GroupErrorCode::NotCoordinator.code()
        }
        ErrorCode::MessageTooLarge => GroupErrorCode::InvalidCommitOffsetSize.code(),
        other => other.code(),
    }
}

/// What a SyncGroup (or a static member's rejoin) answers when the append of the
/// group's metadata failed with `error`: Kafka's `GroupMetadataManager.storeGroup`
/// mapping.
pub(crate) fn store_group_append_error(error: ErrorCode) -> i16 {
    match error {
        ErrorCode::UnknownTopicOrPartition | ErrorCode::NotEnoughReplicas => {
            GroupErrorCode::CoordinatorNotAvailable.code()
        }
        ErrorCode::NotLeaderOrFollower | ErrorCode::KafkaStorageError => {
            GroupErrorCode::NotCoordinator.code()
        }
        // The rebalance is abandoned: the members rejoin.
        ErrorCode::RequestTimedOut => GroupErrorCode::RebalanceInProgress.code(),
        ErrorCode::MessageTooLarge => GroupErrorCode::UnknownServerError.code(),
        other => other.code(),
    }
}
