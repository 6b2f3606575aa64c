//! The Kafka API versions this broker advertises in ApiVersions and accepts: one table.
//!
//! Rule (docs/architecture.md): a version is listed here only when `tests/wire.rs` round-trips it
//! against the running binary. Anything outside the table is refused the way Apache
//! Kafka refuses it: an ApiVersions request gets `UNSUPPORTED_VERSION` in a v0 body, any
//! other request closes the connection.
//!
//! Why the edges are where they are:
//! - Produce starts at v3 and Fetch at v4: the first versions that carry RecordBatch v2
//!   (magic 2), the only format the log stores.
//! - Fetch stops at v12: v13 and later name topics by topic id only.
//! - Produce stops at v9 and ListOffsets at v7 (v8 asks for tiered-storage offsets).
//! - DescribeConfigs starts at v1 because the codec crate has no v0.
//! - The group APIs are the versions the coordinator implements (replication/src/group):
//!   OffsetCommit starts at v2 (v0/v1 stored offsets in ZooKeeper or had per-commit
//!   timestamps), OffsetFetch at v1; FindCoordinator stops at v4 (v5+ only add
//!   transaction errors).
//! - OffsetForLeaderEpoch starts at v2 and DescribeLogDirs at v1: the codec crate has
//!   nothing older (Kafka 4 dropped them too, KIP-896).
//! - SaslHandshake v0 is listed although clients use v1: librdkafka refuses SASL with a
//!   broker that does not list v0. After a v0 handshake the tokens come as bare
//!   size-prefixed frames (served too). Both SASL APIs are answered by the connection
//!   itself (bin/src/security/sasl.rs), not the node.

use kafka_protocol::messages::ApiKey;

/// An inclusive range of versions of one API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiRange {
    /// The API.
    pub key: ApiKey,
    /// Lowest version accepted.
    pub min: i16,
    /// Highest version accepted.
    pub max: i16,
}

const fn range(key: ApiKey, min: i16, max: i16) -> ApiRange {
    ApiRange { key, min, max }
}

/// Every API the broker serves, with the versions it serves. ApiVersions is answered by
/// the front end itself; every other entry is routed to the node.
pub const SUPPORTED: &[ApiRange] = &[
    range(ApiKey::Produce, 3, 9),
    range(ApiKey::Fetch, 4, 12),
    range(ApiKey::ListOffsets, 1, 7),
    range(ApiKey::Metadata, 0, 12),
    range(ApiKey::ApiVersions, 0, 3),
    range(ApiKey::CreateTopics, 2, 7),
    range(ApiKey::DeleteTopics, 1, 6),
    range(ApiKey::InitProducerId, 0, 4),
    range(ApiKey::DescribeConfigs, 1, 4),
    range(ApiKey::AlterConfigs, 0, 2),
    range(ApiKey::IncrementalAlterConfigs, 0, 1),
    range(ApiKey::CreatePartitions, 0, 3),
    range(ApiKey::FindCoordinator, 0, 4),
    range(ApiKey::JoinGroup, 0, 9),
    range(ApiKey::SyncGroup, 0, 5),
    range(ApiKey::Heartbeat, 0, 4),
    range(ApiKey::LeaveGroup, 0, 5),
    range(ApiKey::OffsetCommit, 2, 8),
    range(ApiKey::OffsetFetch, 1, 8),
    range(ApiKey::DescribeGroups, 0, 5),
    range(ApiKey::ListGroups, 0, 5),
    range(ApiKey::DeleteGroups, 0, 2),
    range(ApiKey::OffsetForLeaderEpoch, 2, 4),
    range(ApiKey::DescribeCluster, 0, 2),
    range(ApiKey::DescribeLogDirs, 1, 4),
    range(ApiKey::OffsetDelete, 0, 0),
    range(ApiKey::DeleteRecords, 0, 2),
    range(ApiKey::DescribeAcls, 1, 3),
    range(ApiKey::CreateAcls, 1, 3),
    range(ApiKey::DeleteAcls, 1, 3),
    range(ApiKey::SaslHandshake, 0, 1),
    range(ApiKey::SaslAuthenticate, 0, 2),
    range(ApiKey::AlterUserScramCredentials, 0, 0),
    range(ApiKey::DescribeUserScramCredentials, 0, 0),
    range(ApiKey::DescribeClientQuotas, 0, 1),
];

/// The versions of `key` this broker serves, if it serves `key` at all.
pub fn supported_range(key: ApiKey) -> Option<ApiRange> {
    SUPPORTED.iter().copied().find(|entry| entry.key == key)
}

/// Whether the broker serves version `version` of `key`.
pub fn is_supported(key: ApiKey, version: i16) -> bool {
    supported_range(key).is_some_and(|entry| entry.min <= version && version <= entry.max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_range_is_within_what_the_codec_knows() {
        for entry in SUPPORTED {
            let codec = entry.key.valid_versions();
            assert!(entry.min <= entry.max, "{:?}: empty range", entry.key);
            assert!(
                codec.min <= entry.min,
                "{:?}: below the codec's range",
                entry.key
            );
            assert!(
                entry.max <= codec.max,
                "{:?}: above the codec's range",
                entry.key
            );
        }
    }

    #[test]
    fn each_api_is_listed_once() {
        for (index, entry) in SUPPORTED.iter().enumerate() {
            assert!(
                SUPPORTED[index + 1..]
                    .iter()
                    .all(|other| other.key != entry.key),
                "{:?} listed twice",
                entry.key
            );
        }
    }

    #[test]
    fn lookups() {
        assert!(is_supported(ApiKey::ApiVersions, 0));
        assert!(is_supported(ApiKey::ApiVersions, 3));
        assert!(!is_supported(ApiKey::ApiVersions, 4));
        assert!(!is_supported(ApiKey::Fetch, 13));
        assert!(is_supported(ApiKey::JoinGroup, 0));
        assert!(!is_supported(ApiKey::JoinGroup, 10));
        assert!(is_supported(ApiKey::SaslHandshake, 0));
        assert!(!is_supported(ApiKey::SaslHandshake, 2));
    }
}
