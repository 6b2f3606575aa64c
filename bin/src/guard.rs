//! A structural check of a request body before `kafka-protocol` decodes it.
//!
//! Why this exists: `kafka-protocol` 0.18 decodes an array by reading its element count
//! off the wire and calling `Vec::with_capacity(count)` before it reads one element. An
//! 8-byte Metadata request claiming 2³¹ topics asks the allocator for ~150 GB; the
//! allocation fails and Rust aborts the process (an allocation failure is not a panic
//! and cannot be caught). Upstream knows (kafka-protocol-rs pull requests 152, 161, 200,
//! open at the time of writing). Until a fixed release exists, the front end walks the
//! body first and refuses any array that claims more elements than bytes remain (every
//! element takes at least one byte on the wire), so the codec never sees such a count.
//!
//! This is not a codec: it produces nothing, it only skips. It follows the field layout
//! of each request version in the table of [`crate::versions`]; the tests encode every
//! advertised version with the codec's client side and require the walk to accept it and
//! end exactly at the end of the body, so a layout slip here shows up as a failing test,
//! not as a refused client.
//!
//! Tagged fields are skipped by their declared size. The codec reads the few tags it
//! knows (only Fetch's `ClusterId` and `ReplicaState` among the versions served) by type
//! rather than by size, but neither contains an array, so a lying size cannot lead the
//! codec to an array this walk did not check.

use kafka_protocol::messages::ApiKey;

/// Why a body was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// The body ended inside a field.
    #[error("request body ends early")]
    Truncated,
    /// A length or count below -1.
    #[error("negative length {0}")]
    NegativeLength(i64),
    /// An array claims more elements than there are bytes left.
    #[error("array claims {count} elements with only {remaining} bytes left")]
    ArrayTooLong {
        /// The claimed element count.
        count: u64,
        /// Bytes left in the body at that point.
        remaining: usize,
    },
    /// No walk is written for this API; the front end refuses what it cannot check.
    #[error("no structural check for {0:?} v{1}")]
    Unchecked(ApiKey, i16),
}

/// Checks `body` (the bytes after the request header) of request `key` at `version`.
pub fn check(key: ApiKey, version: i16, body: &[u8]) -> Result<(), Malformed> {
    walk(key, version, body).map(|_| ())
}

/// Walks `body`; returns how many bytes follow the last field, or `None` for an API with
/// no arrays, which is not walked.
fn walk(key: ApiKey, version: i16, body: &[u8]) -> Result<Option<usize>, Malformed> {
    // The version from which each request is flexible, and the walk of its fields.
    let (flexible_from, fields): (i16, FieldsWalk) = match key {
        // No arrays at all: the codec cannot be made to over-allocate.
        ApiKey::ApiVersions
        | ApiKey::InitProducerId
        | ApiKey::SaslHandshake
        | ApiKey::SaslAuthenticate => return Ok(None),
        ApiKey::Produce => (9, produce_request),
        ApiKey::Fetch => (12, fetch_request),
        ApiKey::ListOffsets => (6, list_offsets_request),
        ApiKey::Metadata => (9, metadata_request),
        ApiKey::CreateTopics => (5, create_topics_request),
        ApiKey::DeleteTopics => (4, delete_topics_request),
        ApiKey::DescribeConfigs => (4, describe_configs_request),
        ApiKey::AlterConfigs => (2, alter_configs_request),
        ApiKey::IncrementalAlterConfigs => (1, incremental_alter_configs_request),
        ApiKey::CreatePartitions => (2, create_partitions_request),
        ApiKey::FindCoordinator => (3, find_coordinator_request),
        ApiKey::JoinGroup => (6, join_group_request),
        ApiKey::SyncGroup => (4, sync_group_request),
        ApiKey::Heartbeat => (4, heartbeat_request),
        ApiKey::LeaveGroup => (4, leave_group_request),
        ApiKey::OffsetCommit => (8, offset_commit_request),
        ApiKey::OffsetFetch => (6, offset_fetch_request),
        ApiKey::DescribeGroups => (5, describe_groups_request),
        ApiKey::ListGroups => (3, list_groups_request),
        ApiKey::DeleteGroups => (2, delete_groups_request),
        ApiKey::OffsetForLeaderEpoch => (4, offset_for_leader_epoch_request),
        ApiKey::DescribeCluster => (0, describe_cluster_request),
        ApiKey::DescribeLogDirs => (2, describe_log_dirs_request),
        ApiKey::OffsetDelete => (i16::MAX, offset_delete_request),
        ApiKey::DeleteRecords => (2, delete_records_request),
        ApiKey::CreateAcls => (2, create_acls_request),
        ApiKey::DescribeAcls => (2, describe_acls_request),
        ApiKey::DeleteAcls => (2, delete_acls_request),
        ApiKey::AlterUserScramCredentials => (0, alter_user_scram_credentials_request),
        ApiKey::DescribeUserScramCredentials => (0, describe_user_scram_credentials_request),
        ApiKey::DescribeClientQuotas => (1, describe_client_quotas_request),
        other => return Err(Malformed::Unchecked(other, version)),
    };
    Walk::new(body, version >= flexible_from).run(|w| fields(w, version))
}

/// The top-level fields of one request at one version (its tagged fields excepted).
type FieldsWalk = fn(&mut Walk<'_>, i16) -> Result<(), Malformed>;

/// The fields of a Produce request at version `v`.
fn produce_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    w.string()?; // transactional_id
    w.skip(2 + 4)?; // acks, timeout_ms
    w.array(|w| {
        if v <= 12 {
            w.string()?; // name
        }
        if v >= 13 {
            w.skip(16)?; // topic_id
        }
        w.array(|w| {
            w.skip(4)?; // index
            w.bytes()?; // records
            w.tagged_fields()
        })?;
        w.tagged_fields()
    })
}

/// The fields of a Fetch request at version `v`.
fn fetch_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    if v <= 14 {
        w.skip(4)?; // replica_id
    }
    w.skip(4 + 4 + 4 + 1)?; // max_wait_ms, min_bytes, max_bytes, isolation_level
    if v >= 7 {
        w.skip(4 + 4)?; // session_id, session_epoch
    }
    w.array(|w| {
        if v <= 12 {
            w.string()?; // topic
        }
        if v >= 13 {
            w.skip(16)?; // topic_id
        }
        w.array(|w| {
            w.skip(4)?; // partition
            if v >= 9 {
                w.skip(4)?; // current_leader_epoch
            }
            w.skip(8)?; // fetch_offset
            if v >= 12 {
                w.skip(4)?; // last_fetched_epoch
            }
            if v >= 5 {
                w.skip(8)?; // log_start_offset
            }
            w.skip(4)?; // partition_max_bytes
            w.tagged_fields()
        })?;
        w.tagged_fields()
    })?;
    if v >= 7 {
        w.array(|w| {
            if v <= 12 {
                w.string()?; // topic
            } else {
                w.skip(16)?; // topic_id
            }
            w.array(|w| w.skip(4))?; // partitions
            w.tagged_fields()
        })?;
    }
    if v >= 11 {
        w.string()?; // rack_id
    }
    Ok(())
}

/// The fields of a ListOffsets request at version `v`.
fn list_offsets_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    w.skip(4)?; // replica_id
    if v >= 2 {
        w.skip(1)?; // isolation_level
    }
    w.array(|w| {
        w.string()?; // name
        w.array(|w| {
            w.skip(4)?; // partition_index
            if v >= 4 {
                w.skip(4)?; // current_leader_epoch
            }
            w.skip(8)?; // timestamp
            w.tagged_fields()
        })?;
        w.tagged_fields()
    })?;
    if v >= 10 {
        w.skip(4)?; // timeout_ms
    }
    Ok(())
}

/// The fields of a Metadata request at version `v`.
fn metadata_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    w.array(|w| {
        if v >= 10 {
            w.skip(16)?; // topic_id
        }
        w.string()?; // name
        w.tagged_fields()
    })?;
    if v >= 4 {
        w.skip(1)?; // allow_auto_topic_creation
    }
    if (8..=10).contains(&v) {
        w.skip(1)?; // include_cluster_authorized_operations
    }
    if v >= 8 {
        w.skip(1)?; // include_topic_authorized_operations
    }
    Ok(())
}

/// The fields of a CreateTopics request (the same at every version).
fn create_topics_request(w: &mut Walk<'_>, _v: i16) -> Result<(), Malformed> {
    w.array(|w| {
        w.string()?; // name
        w.skip(4 + 2)?; // num_partitions, replication_factor
        w.array(|w| {
            w.skip(4)?; // partition_index
            w.array(|w| w.skip(4))?; // broker_ids
            w.tagged_fields()
        })?;
        w.array(|w| {
            w.string()?; // name
            w.string()?; // value
            w.tagged_fields()
        })?;
        w.tagged_fields()
    })?;
    w.skip(4 + 1) // timeout_ms, validate_only
}

/// The fields of a DeleteTopics request at version `v`.
fn delete_topics_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    if v >= 6 {
        w.array(|w| {
            w.string()?; // name
            w.skip(16)?; // topic_id
            w.tagged_fields()
        })?;
    } else {
        w.array(|w| w.string())?; // topic_names
    }
    w.skip(4) // timeout_ms
}

/// The fields of a DescribeConfigs request at version `v`.
fn describe_configs_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    w.array(|w| {
        w.skip(1)?; // resource_type
        w.string()?; // resource_name
        w.array(|w| w.string())?; // configuration_keys
        w.tagged_fields()
    })?;
    w.skip(1)?; // include_synonyms
    if v >= 3 {
        w.skip(1)?; // include_documentation
    }
    Ok(())
}

/// The fields of an AlterConfigs request (the same at every version).
fn alter_configs_request(w: &mut Walk<'_>, _v: i16) -> Result<(), Malformed> {
    alter_configs_fields(w, false)
}

/// The fields of an IncrementalAlterConfigs request (the same at every version).
fn incremental_alter_configs_request(w: &mut Walk<'_>, _v: i16) -> Result<(), Malformed> {
    alter_configs_fields(w, true)
}

/// AlterConfigs' fields; the incremental request adds an operation byte before each
/// value.
fn alter_configs_fields(w: &mut Walk<'_>, incremental: bool) -> Result<(), Malformed> {
    w.array(|w| {
        w.skip(1)?; // resource_type
        w.string()?; // resource_name
        w.array(|w| {
            w.string()?; // name
            if incremental {
                w.skip(1)?; // config_operation
            }
            w.string()?; // value (nullable)
            w.tagged_fields()
        })?;
        w.tagged_fields()
    })?;
    w.skip(1) // validate_only
}

/// The fields of a CreatePartitions request (the same at every version).
fn create_partitions_request(w: &mut Walk<'_>, _v: i16) -> Result<(), Malformed> {
    w.array(|w| {
        w.string()?; // name
        w.skip(4)?; // count
        w.array(|w| {
            w.array(|w| w.skip(4))?; // broker_ids
            w.tagged_fields()
        })?;
        w.tagged_fields()
    })?;
    w.skip(4 + 1) // timeout_ms, validate_only
}

/// The fields of a FindCoordinator request at version `v`.
fn find_coordinator_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    if v <= 3 {
        w.string()?; // key
    }
    if v >= 1 {
        w.skip(1)?; // key_type
    }
    if v >= 4 {
        w.array(|w| w.string())?; // coordinator_keys
    }
    Ok(())
}

/// The fields of a JoinGroup request at version `v`.
fn join_group_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    w.string()?; // group_id
    w.skip(4)?; // session_timeout_ms
    if v >= 1 {
        w.skip(4)?; // rebalance_timeout_ms
    }
    w.string()?; // member_id
    if v >= 5 {
        w.string()?; // group_instance_id
    }
    w.string()?; // protocol_type
    w.array(|w| {
        w.string()?; // name
        w.bytes()?; // metadata
        w.tagged_fields()
    })?;
    if v >= 8 {
        w.string()?; // reason
    }
    Ok(())
}

/// The fields of a SyncGroup request at version `v`.
fn sync_group_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    w.string()?; // group_id
    w.skip(4)?; // generation_id
    w.string()?; // member_id
    if v >= 3 {
        w.string()?; // group_instance_id
    }
    if v >= 5 {
        w.string()?; // protocol_type
        w.string()?; // protocol_name
    }
    w.array(|w| {
        w.string()?; // member_id
        w.bytes()?; // assignment
        w.tagged_fields()
    })
}

/// The fields of a Heartbeat request at version `v`.
fn heartbeat_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    w.string()?; // group_id
    w.skip(4)?; // generation_id
    w.string()?; // member_id
    if v >= 3 {
        w.string()?; // group_instance_id
    }
    Ok(())
}

/// The fields of a LeaveGroup request at version `v`.
fn leave_group_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    w.string()?; // group_id
    if v <= 2 {
        return w.string(); // member_id
    }
    w.array(|w| {
        w.string()?; // member_id
        w.string()?; // group_instance_id
        if v >= 5 {
            w.string()?; // reason
        }
        w.tagged_fields()
    })
}

/// The fields of a OffsetCommit request at version `v`.
fn offset_commit_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    w.string()?; // group_id
    w.skip(4)?; // generation_id_or_member_epoch
    w.string()?; // member_id
    if v >= 7 {
        w.string()?; // group_instance_id
    }
    if v <= 4 {
        w.skip(8)?; // retention_time_ms
    }
    w.array(|w| {
        w.string()?; // name
        w.array(|w| {
            w.skip(4 + 8)?; // partition_index, committed_offset
            if v >= 6 {
                w.skip(4)?; // committed_leader_epoch
            }
            w.string()?; // committed_metadata
            w.tagged_fields()
        })?;
        w.tagged_fields()
    })
}

/// The fields of a OffsetFetch request at version `v`.
fn offset_fetch_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    let topics = |w: &mut Walk<'_>| {
        w.array(|w| {
            w.string()?; // name
            w.array(|w| w.skip(4))?; // partition_indexes
            w.tagged_fields()
        })
    };
    if v <= 7 {
        w.string()?; // group_id
        topics(w)?;
    } else {
        w.array(|w| {
            w.string()?; // group_id
            topics(w)?;
            w.tagged_fields()
        })?;
    }
    if v >= 7 {
        w.skip(1)?; // require_stable
    }
    Ok(())
}

/// The fields of a DescribeGroups request at version `v`.
fn describe_groups_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    w.array(|w| w.string())?; // groups
    if v >= 3 {
        w.skip(1)?; // include_authorized_operations
    }
    Ok(())
}

/// The fields of a ListGroups request at version `v`.
fn list_groups_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    if v >= 4 {
        w.array(|w| w.string())?; // states_filter
    }
    if v >= 5 {
        w.array(|w| w.string())?; // types_filter
    }
    Ok(())
}

/// The fields of a DeleteGroups request (the same at every version).
fn delete_groups_request(w: &mut Walk<'_>, _v: i16) -> Result<(), Malformed> {
    w.array(|w| w.string()) // groups_names
}

/// The fields of an OffsetForLeaderEpoch request at version `v`.
fn offset_for_leader_epoch_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    if v >= 3 {
        w.skip(4)?; // replica_id
    }
    w.array(|w| {
        w.string()?; // topic
        w.array(|w| {
            w.skip(4 + 4 + 4)?; // partition, current_leader_epoch, leader_epoch
            w.tagged_fields()
        })?;
        w.tagged_fields()
    })
}

/// The fields of a DescribeCluster request at version `v` (no arrays, walked so that
/// its end is checked like every other's).
fn describe_cluster_request(w: &mut Walk<'_>, v: i16) -> Result<(), Malformed> {
    w.skip(1)?; // include_cluster_authorized_operations
    if v >= 1 {
        w.skip(1)?; // endpoint_type
    }
    if v >= 2 {
        w.skip(1)?; // include_fenced_brokers
    }
    Ok(())
}

/// The fields of an AlterUserScramCredentials request (v0, flexible).
fn alter_user_scram_credentials_request(w: &mut Walk<'_>, _v: i16) -> Result<(), Malformed> {
    w.array(|w| {
        w.string()?; // name
        w.skip(1)?; // mechanism
        w.tagged_fields()
    })?; // deletions
    w.array(|w| {
        w.string()?; // name
        w.skip(1 + 4)?; // mechanism, iterations
        w.bytes()?; // salt
        w.bytes()?; // salted_password
        w.tagged_fields()
    }) // upsertions
}

/// The fields of a DescribeUserScramCredentials request (v0, flexible).
fn describe_user_scram_credentials_request(w: &mut Walk<'_>, _v: i16) -> Result<(), Malformed> {
    w.array(|w| {
        w.string()?; // name
        w.tagged_fields()
    }) // users (nullable)
}

/// The fields of a DescribeClientQuotas request (flexible from v1).
fn describe_client_quotas_request(w: &mut Walk<'_>, _v: i16) -> Result<(), Malformed> {
    w.array(|w| {
        w.string()?; // entity_type
        w.skip(1)?; // match_type
        w.string()?; // match (nullable)
        w.tagged_fields()
    })?; // components
    w.skip(1) // strict
}

/// The fields of a DescribeLogDirs request (the same at every version).
fn describe_log_dirs_request(w: &mut Walk<'_>, _v: i16) -> Result<(), Malformed> {
    w.array(|w| {
        w.string()?; // topic
        w.array(|w| w.skip(4))?; // partitions
        w.tagged_fields()
    })
}

/// The fields of an OffsetDelete request (v0, the only version, is not flexible).
fn offset_delete_request(w: &mut Walk<'_>, _v: i16) -> Result<(), Malformed> {
    w.string()?; // group_id
    w.array(|w| {
        w.string()?; // name
        w.array(|w| w.skip(4))?; // partitions
        w.tagged_fields()
    })
}

/// The fields of a DeleteRecords request (the same at every version).
fn delete_records_request(w: &mut Walk<'_>, _v: i16) -> Result<(), Malformed> {
    w.array(|w| {
        w.string()?; // name
        w.array(|w| {
            w.skip(4 + 8)?; // partition_index, offset
            w.tagged_fields()
        })?;
        w.tagged_fields()
    })?;
    w.skip(4) // timeout_ms
}

/// The fields of a CreateAcls request (v1 and later: each creation has a pattern type).
fn create_acls_request(w: &mut Walk<'_>, _v: i16) -> Result<(), Malformed> {
    w.array(|w| {
        acl_fields(w)?;
        w.tagged_fields()
    })
}

/// The fields of a DescribeAcls request (v1 and later): one filter.
fn describe_acls_request(w: &mut Walk<'_>, _v: i16) -> Result<(), Malformed> {
    acl_fields(w)
}

/// The fields of a DeleteAcls request (v1 and later).
fn delete_acls_request(w: &mut Walk<'_>, _v: i16) -> Result<(), Malformed> {
    w.array(|w| {
        acl_fields(w)?;
        w.tagged_fields()
    })
}

/// One ACL binding or filter: resource type, name, pattern type, principal, host,
/// operation, permission (a filter's strings may be null).
fn acl_fields(w: &mut Walk<'_>) -> Result<(), Malformed> {
    w.skip(1)?; // resource_type
    w.string()?; // resource_name
    w.skip(1)?; // pattern_type
    w.string()?; // principal
    w.string()?; // host
    w.skip(1 + 1) // operation, permission_type
}

/// A cursor that skips fields of one message, in its flexible or classic encoding.
struct Walk<'a> {
    rest: &'a [u8],
    flexible: bool,
}

impl<'a> Walk<'a> {
    fn new(body: &'a [u8], flexible: bool) -> Walk<'a> {
        Walk {
            rest: body,
            flexible,
        }
    }

    /// Walks the top-level fields with `fields`, then the message's tagged fields;
    /// returns how many bytes are left after them.
    fn run(
        mut self,
        fields: impl FnOnce(&mut Self) -> Result<(), Malformed>,
    ) -> Result<Option<usize>, Malformed> {
        fields(&mut self)?;
        self.tagged_fields()?;
        Ok(Some(self.rest.len()))
    }

    fn skip(&mut self, len: usize) -> Result<(), Malformed> {
        match self.rest.get(len..) {
            Some(rest) => {
                self.rest = rest;
                Ok(())
            }
            None => Err(Malformed::Truncated),
        }
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], Malformed> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(Malformed::Truncated)?;
        self.rest = rest;
        Ok(*head)
    }

    /// An unsigned varint exactly as the codec reads it: at most five bytes, the fifth
    /// taken whole even if its continuation bit is set.
    fn unsigned_varint(&mut self) -> Result<u32, Malformed> {
        let mut value: u32 = 0;
        for index in 0..5 {
            let [byte] = self.take::<1>()?;
            value |= u32::from(byte & 0x7f) << (index * 7);
            if byte < 0x80 {
                break;
            }
        }
        Ok(value)
    }

    /// A length-prefixed run of bytes: `STRING`/`NULLABLE_STRING` (i16 prefix) or their
    /// compact forms (varint length + 1, 0 for null).
    fn string(&mut self) -> Result<(), Malformed> {
        if self.flexible {
            self.compact_run()
        } else {
            let len = i16::from_be_bytes(self.take()?);
            self.classic_run(i64::from(len))
        }
    }

    /// `BYTES`/`NULLABLE_BYTES`/`RECORDS` (i32 prefix) or their compact forms.
    fn bytes(&mut self) -> Result<(), Malformed> {
        if self.flexible {
            self.compact_run()
        } else {
            let len = i32::from_be_bytes(self.take()?);
            self.classic_run(i64::from(len))
        }
    }

    fn classic_run(&mut self, len: i64) -> Result<(), Malformed> {
        match len {
            -1 => Ok(()),
            len if len < -1 => Err(Malformed::NegativeLength(len)),
            len => self.skip(usize::try_from(len).map_err(|_| Malformed::Truncated)?),
        }
    }

    fn compact_run(&mut self) -> Result<(), Malformed> {
        match self.unsigned_varint()? {
            0 => Ok(()),
            len_plus_one => {
                self.skip(usize::try_from(len_plus_one - 1).map_err(|_| Malformed::Truncated)?)
            }
        }
    }

    /// An array (nullable or not) whose elements `element` walks.
    fn array(
        &mut self,
        mut element: impl FnMut(&mut Self) -> Result<(), Malformed>,
    ) -> Result<(), Malformed> {
        let count: u64 = if self.flexible {
            match self.unsigned_varint()? {
                0 => return Ok(()),
                count_plus_one => u64::from(count_plus_one - 1),
            }
        } else {
            match i32::from_be_bytes(self.take()?) {
                -1 => return Ok(()),
                count if count < -1 => return Err(Malformed::NegativeLength(i64::from(count))),
                count => u64::from(count.unsigned_abs()),
            }
        };
        let remaining = self.rest.len();
        if count > remaining as u64 {
            return Err(Malformed::ArrayTooLong { count, remaining });
        }
        for _ in 0..count {
            element(self)?;
        }
        Ok(())
    }

    /// The tagged-field section of a flexible struct; nothing in a classic one.
    fn tagged_fields(&mut self) -> Result<(), Malformed> {
        if !self.flexible {
            return Ok(());
        }
        let count = self.unsigned_varint()?;
        for _ in 0..count {
            let _tag = self.unsigned_varint()?;
            let size = self.unsigned_varint()?;
            self.skip(usize::try_from(size).map_err(|_| Malformed::Truncated)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "../../tests/support/requests.rs"]
#[allow(dead_code)] // the unit tests take only `sample` and `Shape`; tests/wire.rs takes the rest
mod requests;

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::messages::RequestKind;

    use super::requests::{Shape, sample};
    use super::*;
    use crate::versions::SUPPORTED;

    /// Every served version of every API, encoded by the codec: both shapes.
    fn encoded_samples() -> Vec<(ApiKey, i16, Vec<u8>)> {
        let mut samples = Vec::new();
        for entry in SUPPORTED {
            for version in entry.min..=entry.max {
                for exhaustive in [false, true] {
                    let request = sample(
                        entry.key,
                        version,
                        Shape {
                            topic: "orders",
                            exhaustive,
                        },
                    );
                    let mut body = BytesMut::new();
                    request.encode(&mut body, version).unwrap();
                    samples.push((entry.key, version, body.to_vec()));
                }
            }
        }
        samples
    }

    fn decodes(key: ApiKey, version: i16, body: &[u8]) -> bool {
        RequestKind::decode(key, &mut Bytes::copy_from_slice(body), version).is_ok()
    }

    #[test]
    fn every_served_version_walks_to_the_exact_end() {
        for (key, version, body) in encoded_samples() {
            match walk(key, version, &body) {
                Ok(Some(trailing)) => assert_eq!(
                    trailing, 0,
                    "{key:?} v{version}: walk stopped {trailing} bytes early"
                ),
                Ok(None) => assert!(matches!(
                    key,
                    ApiKey::ApiVersions
                        | ApiKey::InitProducerId
                        | ApiKey::SaslHandshake
                        | ApiKey::SaslAuthenticate
                )),
                Err(error) => panic!("{key:?} v{version}: {error} in {body:?}"),
            }
            assert!(decodes(key, version, &body));
        }
    }

    #[test]
    fn a_cut_body_is_refused_unless_the_codec_reads_it_too() {
        for (key, version, body) in encoded_samples() {
            for len in 0..body.len() {
                let cut = &body[..len];
                // APIs without arrays are not walked (None): the codec alone judges them.
                if let Ok(Some(_)) = walk(key, version, cut) {
                    assert!(
                        decodes(key, version, cut),
                        "{key:?} v{version}: accepted a body cut at {len}"
                    );
                }
            }
        }
    }

    /// Plants huge counts everywhere a count could be. If the walk let one through to the
    /// codec, the test process would abort on the allocation.
    #[test]
    fn planted_huge_counts_never_reach_the_codec() {
        let mut refused = 0;
        for (key, version, body) in encoded_samples() {
            for at in 0..body.len() {
                let mut patterns: Vec<Vec<u8>> = vec![
                    vec![0x7f, 0xff, 0xff, 0xff],
                    vec![0x40, 0, 0, 0],
                    vec![0xff, 0xff, 0xff, 0xff, 0x0f],
                ];
                patterns.push(vec![0xff, 0xff, 0xff, 0x07]);
                for pattern in patterns {
                    let mut mutated = body.clone();
                    for (offset, byte) in pattern.iter().enumerate() {
                        if let Some(slot) = mutated.get_mut(at + offset) {
                            *slot = *byte;
                        }
                    }
                    match check(key, version, &mutated) {
                        Ok(()) => {
                            let _ = decodes(key, version, &mutated);
                        }
                        Err(_) => refused += 1,
                    }
                }
            }
        }
        assert!(refused > 0);
    }

    #[test]
    fn apis_without_a_walk_are_refused() {
        assert_eq!(
            check(ApiKey::AlterReplicaLogDirs, 0, &[]),
            Err(Malformed::Unchecked(ApiKey::AlterReplicaLogDirs, 0))
        );
    }

    #[test]
    fn counts_beyond_the_remaining_bytes_are_refused() {
        // Metadata v1: topics array of i32::MAX with nothing after it.
        let body = i32::MAX.to_be_bytes();
        assert_eq!(
            check(ApiKey::Metadata, 1, &body),
            Err(Malformed::ArrayTooLong {
                count: i32::MAX as u64,
                remaining: 0
            })
        );
        // Metadata v9 (flexible): a varint count of 2^28.
        let body = [0x81, 0x80, 0x80, 0x80, 0x01];
        assert!(matches!(
            check(ApiKey::Metadata, 9, &body),
            Err(Malformed::ArrayTooLong { .. })
        ));
        // A null array (-1) is fine.
        let mut body = (-1_i32).to_be_bytes().to_vec();
        body.push(1);
        assert_eq!(check(ApiKey::Metadata, 4, &body), Ok(()));
        // Below -1 is not.
        assert_eq!(
            check(ApiKey::Metadata, 1, &(-2_i32).to_be_bytes()),
            Err(Malformed::NegativeLength(-2))
        );
    }
}
