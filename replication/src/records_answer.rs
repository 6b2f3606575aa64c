//! The answer to a DeleteRecords request while its metadata record waits to be applied:
//! one result per partition in the request's order, and the deletions that must be
//! applied before they are answered as done.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsResponse, ResponseKind, TopicName};

use crate::error::ErrorCode;
use crate::metadata::{ClusterState, RecordsDeletion};
use crate::topics::TopicPartition;

/// Results of every partition of one request.
#[derive(Default)]
pub(crate) struct RecordsAnswer {
    topics: Vec<DeleteRecordsTopicResult>,
    /// Deletions written, with where their result is: (topic, partition) indexes.
    written: Vec<(usize, usize, RecordsDeletion)>,
}

impl RecordsAnswer {
    /// The next topic of the request; its partitions follow.
    pub(crate) fn push_topic(&mut self, name: TopicName) {
        self.topics
            .push(DeleteRecordsTopicResult::default().with_name(name));
    }

    /// The next partition of the last topic: its start is `Ok(low watermark)`, or it
    /// was refused.
    pub(crate) fn push_partition(&mut self, partition: i32, result: Result<i64, ErrorCode>) {
        let (low_watermark, error) = match result {
            Ok(low_watermark) => (low_watermark, ErrorCode::None),
            Err(error) => (-1, error),
        };
        let topic = self.topics.last_mut().expect("a topic first");
        topic.partitions.push(
            DeleteRecordsPartitionResult::default()
                .with_partition_index(partition)
                .with_low_watermark(low_watermark)
                .with_error_code(error.code()),
        );
    }

    /// The next partition of the last topic is written as `deletion`: done once applied.
    pub(crate) fn push_written(&mut self, deletion: RecordsDeletion) {
        self.push_partition(deletion.partition, Ok(deletion.offset));
        let topic = self.topics.len() - 1;
        let partition = self.topics[topic].partitions.len() - 1;
        self.written.push((topic, partition, deletion));
    }

    /// The deletions written, for the metadata record.
    pub(crate) fn deletions(&self) -> Vec<RecordsDeletion> {
        self.written.iter().map(|(_, _, d)| d.clone()).collect()
    }

    /// Confirms each written deletion against the applied metadata: its low watermark is
    /// where this broker's replica now starts (`replica_start`), at least the applied
    /// point; or an error if the record did not apply.
    pub(crate) fn confirm(
        &mut self,
        cluster: &ClusterState,
        replica_start: impl Fn(&TopicPartition) -> Option<i64>,
    ) {
        for (topic, partition, deletion) in &self.written {
            let result = &mut self.topics[*topic].partitions[*partition];
            let key = TopicPartition::new(deletion.topic.as_str(), deletion.partition);
            match applied_start(cluster, deletion) {
                Ok(start) => {
                    result.low_watermark = replica_start(&key).unwrap_or(start).max(start);
                }
                Err(error) => {
                    result.low_watermark = -1;
                    result.error_code = error.code();
                }
            }
        }
    }

    /// Every written deletion failed with `error` (its record was not written, or its
    /// forward was refused or went unanswered).
    pub(crate) fn fail_written(&mut self, error: ErrorCode) {
        for (topic, partition, _) in &self.written {
            let result = &mut self.topics[*topic].partitions[*partition];
            result.low_watermark = -1;
            result.error_code = error.code();
        }
        self.written.clear();
    }

    /// The response, by topic in the request's order.
    pub(crate) fn into_response(self) -> ResponseKind {
        ResponseKind::DeleteRecords(DeleteRecordsResponse::default().with_topics(self.topics))
    }
}

/// Where the applied metadata has the deleted partition's start: at or past the
/// deletion's offset, or an error if the record did not apply (its topic was deleted,
/// or a leader change cut the record: the client may try again).
fn applied_start(cluster: &ClusterState, deletion: &RecordsDeletion) -> Result<i64, ErrorCode> {
    let topic = cluster
        .topics
        .get(&deletion.topic)
        .filter(|topic| topic.id == deletion.id)
        .ok_or(ErrorCode::UnknownTopicOrPartition)?;
    let start = topic.deleted_below(deletion.partition);
    if start < deletion.offset {
        return Err(ErrorCode::RequestTimedOut);
    }
    Ok(start)
}
