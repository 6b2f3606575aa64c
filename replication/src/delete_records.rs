//! DeleteRecords (API 21): moves partitions' log start offsets forward, what
//! `kafka-delete-records` and `Admin.deleteRecords` ask for.
//!
//! ```text
//!  client ── DeleteRecords(t-0 below 500) ──► leader of t-0
//!    checks: leads t-0, its policy deletes, 500 <= high watermark (-1: the high watermark)
//!    delete-records record ──► metadata log (appended, or forwarded to the controller)
//!  every broker applies it: its replica of t-0 starts at 500 for clients (Fetch below
//!  is OFFSET_OUT_OF_RANGE, ListOffsets earliest says 500) and deletes the whole
//!  segments below 500 once it has committed them
//!  the leader's broker, once applied ──► answer: low watermark 500
//! ```
//!
//! Kafka's leader moves its own start and each follower moves its own as it fetches;
//! here the replicas do not fetch, they replicate through Raft, so the point is written
//! where every broker reads it: the metadata log (replicated, and replayed at start, so a
//! restarted replica keeps it). The log still holds the segment with the new start in
//! it, and Raft replicates from the log's own start, so nothing of replication changes.

use kafka_protocol::messages::RequestKind;

use crate::acl::Operation;
use crate::error::ErrorCode;
use crate::metadata::{MetadataRecord, RecordsDeletion};
use crate::metadata_waits::MetadataWait;
use crate::node::{Node, NodeIo};
use crate::records_answer::RecordsAnswer;
use crate::replica::Replica;
use crate::request::{Request, RequestId};
use crate::topics::TopicPartition;

/// The offset a DeleteRecords request names to mean "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

/// What one partition of a request needs.
enum Deletion {
    /// Nothing to write: its start is already at or past the offset (this one).
    Done(i64),
    /// A record moving its start to this offset.
    Write(i64),
}

impl Node {
    pub(crate) fn handle_delete_records(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::DeleteRecords(delete) = &request.body else {
            unreachable!("routed by kind")
        };
        let mut answer = RecordsAnswer::default();
        for topic in &delete.topics {
            let authorized = self.allows_topic(&request, Operation::Delete, topic.name.0.as_str());
            answer.push_topic(topic.name.clone());
            for wanted in &topic.partitions {
                let key = TopicPartition::new(topic.name.0.as_str(), wanted.partition_index);
                let deletion = if authorized {
                    self.deletion(&key, wanted.offset)
                } else {
                    Err(ErrorCode::TopicAuthorizationFailed)
                };
                match deletion {
                    Ok(Deletion::Done(start)) => answer.push_partition(key.partition, Ok(start)),
                    Ok(Deletion::Write(offset)) => answer.push_written(RecordsDeletion {
                        id: self.cluster.topics[&key.topic].id,
                        topic: key.topic,
                        partition: key.partition,
                        offset,
                    }),
                    Err(error) => answer.push_partition(key.partition, Err(error)),
                }
            }
        }
        self.write_deletions(io, id, answer);
    }

    /// Writes the record of the deletions `answer` holds and waits for it to apply, or
    /// answers at once if there are none.
    fn write_deletions(&mut self, io: &mut impl NodeIo, id: RequestId, mut answer: RecordsAnswer) {
        let deletions = answer.deletions();
        if deletions.is_empty() {
            io.respond(id, answer.into_response());
            return;
        }
        let record = MetadataRecord::DeleteRecords { deletions };
        match self.append_or_forward(io, None, record) {
            Ok(written) => {
                self.wait_for_creation(id, written, MetadataWait::DeleteRecords(answer));
            }
            Err(error) => {
                answer.fail_written(error.error_code());
                io.respond(id, answer.into_response());
            }
        }
    }

    /// What deleting `key`'s records below `offset` needs here: only its leader takes
    /// it, only if its cleanup policy deletes, and only up to its high watermark.
    fn deletion(&mut self, key: &TopicPartition, offset: i64) -> Result<Deletion, ErrorCode> {
        let missing = self.missing_partition_error(key);
        let replica = self.partitions.get(key).ok_or(missing)?;
        if replica.check_leader().is_err() {
            return Err(ErrorCode::NotLeaderOrFollower);
        }
        if !replica.log().config().cleanup_policy.deletes() {
            // Kafka's answer: a compact-only topic keeps every key's newest record.
            return Err(ErrorCode::PolicyViolation);
        }
        deletion_on_leader(replica, offset)
    }

    /// Confirms each written deletion against the applied metadata.
    pub(crate) fn confirm_deletions(&self, answer: &mut RecordsAnswer) {
        let replica_start =
            |key: &TopicPartition| self.partitions.get(key).map(Replica::log_start_offset);
        answer.confirm(&self.cluster, replica_start);
    }
}

/// [`Node::deletion`] on the partition's leader.
fn deletion_on_leader(replica: &Replica, offset: i64) -> Result<Deletion, ErrorCode> {
    let high_watermark = replica.high_watermark();
    let offset = if offset == HIGH_WATERMARK {
        high_watermark
    } else {
        offset
    };
    if !(0..=high_watermark).contains(&offset) {
        return Err(ErrorCode::OffsetOutOfRange);
    }
    let start = replica.log_start_offset();
    Ok(if offset <= start {
        Deletion::Done(start)
    } else {
        Deletion::Write(offset)
    })
}
