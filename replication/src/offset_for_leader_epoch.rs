//! OffsetForLeaderEpoch (API 23, KIP-279 and KIP-320): where an epoch ended in the
//! leader's log.
//!
//! A consumer that read records of epoch E up to offset P, and then sees a new leader,
//! asks the new leader "where does epoch E end in your log?" If the answer is below P,
//! the records it read past that point were cut by the leader change (a truncation),
//! and it must go back. Kafka followers ask the same question to find where their log
//! diverges from the leader's; ours replicate by Raft (`raft/replicate.rs`), so here
//! the question only ever comes from clients, and only the leader answers it.
//!
//! ```text
//!  epoch cache  (1, 0) (3, 10) (4, 20)      log end 25
//!  asked 1 ─► (1, 10)   the next epoch starts at 10
//!  asked 2 ─► (1, 10)   2 never led: the largest epoch below it, ending where 3 starts
//!  asked 4 ─► (4, 25)   the current epoch ends at the log end
//!  asked 9 ─► (-1, -1)  an epoch this log has never seen
//! ```

use kafka_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderPartition;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochResponse, RequestKind, ResponseKind};

use crate::acl::Operation;
use crate::error::ErrorCode;
use crate::node::{Node, NodeIo};
use crate::request::{Request, RequestId};
use crate::topics::TopicPartition;

/// Kafka's "no epoch" and "no offset" (`UNDEFINED_EPOCH`, `UNDEFINED_EPOCH_OFFSET`).
const UNDEFINED: (i32, i64) = (-1, -1);

impl Node {
    pub(crate) fn handle_offset_for_leader_epoch(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::OffsetForLeaderEpoch(asked) = &request.body else {
            unreachable!("routed by kind")
        };
        let mut response = OffsetForLeaderEpochResponse::default();
        for topic in &asked.topics {
            let authorized =
                self.allows_topic(&request, Operation::Describe, topic.topic.0.as_str());
            let mut result = OffsetForLeaderTopicResult::default().with_topic(topic.topic.clone());
            for wanted in &topic.partitions {
                let key = TopicPartition::new(topic.topic.0.as_str(), wanted.partition);
                let answer = if authorized {
                    self.epoch_end_offset(&key, wanted)
                } else {
                    EpochEndOffset::default()
                        .with_partition(wanted.partition)
                        .with_error_code(ErrorCode::TopicAuthorizationFailed.code())
                        .with_leader_epoch(-1)
                        .with_end_offset(-1)
                };
                result.partitions.push(answer);
            }
            response.topics.push(result);
        }
        io.respond(id, ResponseKind::OffsetForLeaderEpoch(response));
    }

    /// One partition's answer: an error when this broker does not lead it in the
    /// epoch the client believes current (Kafka's fencing, as for a fetch), else the
    /// end of the asked epoch.
    fn epoch_end_offset(
        &self,
        key: &TopicPartition,
        wanted: &OffsetForLeaderPartition,
    ) -> EpochEndOffset {
        let answer = EpochEndOffset::default().with_partition(wanted.partition);
        let Some(partition) = self.partitions.get(key) else {
            return answer.with_error_code(self.missing_partition_error(key).code());
        };
        if let Err(code) = partition.check_serving(wanted.current_leader_epoch) {
            return answer.with_error_code(code.code());
        }
        let log = partition.log();
        let (leader_epoch, end_offset) = end_offset_for_epoch(
            partition.epoch_starts(),
            wanted.leader_epoch,
            log.log_start_offset(),
            log.log_end_offset(),
        );
        // Asked only after a leader change: rare, and what to look at when a client
        // reports a truncation.
        tracing::debug!(
            "OffsetForLeaderEpoch {key:?}: epoch {} ends at {end_offset} (as epoch {leader_epoch})",
            wanted.leader_epoch
        );
        answer
            .with_leader_epoch(leader_epoch)
            .with_end_offset(end_offset)
    }
}

/// Kafka's answer for `requested` over an epoch cache of `(epoch, start_offset)`
/// pairs and a log covering `[log_start, log_end)`: the largest epoch at or below
/// `requested` with the offset where the next higher epoch starts (the log end for the
/// latest epoch). An epoch older than every cached one ends where the oldest cached
/// epoch starts, and keeps its own number: Kafka's cache no longer knows what came
/// before, only that it ended there. An undefined or never-seen newer epoch is
/// undefined.
pub(crate) fn end_offset_for_epoch(
    epochs: &[(i32, i64)],
    requested: i32,
    log_start: i64,
    log_end: i64,
) -> (i32, i64) {
    if requested == UNDEFINED.0 {
        return UNDEFINED;
    }
    if epochs
        .last()
        .is_some_and(|&(latest, _)| latest == requested)
    {
        return (requested, log_end);
    }
    let Some(higher) = epochs.iter().position(|&(epoch, _)| epoch > requested) else {
        return UNDEFINED;
    };
    // The cache may remember the start of the epoch before the log start below it;
    // Kafka's cache moves that start up to the log start when retention moves it.
    let end = epochs[higher].1.max(log_start);
    match higher.checked_sub(1) {
        Some(floor) => (epochs[floor].0, end),
        None => (requested, end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CACHE: &[(i32, i64)] = &[(1, 0), (3, 10), (4, 20)];

    #[test]
    fn kip_320_end_offsets_as_kafka_answers_them() {
        assert_eq!(end_offset_for_epoch(CACHE, 1, 0, 25), (1, 10));
        assert_eq!(end_offset_for_epoch(CACHE, 2, 0, 25), (1, 10));
        assert_eq!(end_offset_for_epoch(CACHE, 3, 0, 25), (3, 20));
        assert_eq!(end_offset_for_epoch(CACHE, 4, 0, 25), (4, 25));
        assert_eq!(end_offset_for_epoch(CACHE, 5, 0, 25), UNDEFINED);
        assert_eq!(end_offset_for_epoch(CACHE, -1, 0, 25), UNDEFINED);
        // Older than every cached epoch: it ended where the oldest one starts.
        assert_eq!(end_offset_for_epoch(CACHE, 0, 0, 25), (0, 0));
    }

    #[test]
    fn kip_320_after_retention_the_oldest_epoch_starts_at_the_log_start() {
        // Retention moved the start to 15; epoch 3 holds offset 14, recorded at 10.
        let cache = &[(3, 10), (4, 20)];
        assert_eq!(end_offset_for_epoch(cache, 1, 15, 25), (1, 15));
        assert_eq!(end_offset_for_epoch(cache, 3, 15, 25), (3, 20));
        // An empty log after a reset remembers only the epoch before its start.
        assert_eq!(end_offset_for_epoch(&[(7, 49)], 7, 50, 50), (7, 50));
        assert_eq!(end_offset_for_epoch(&[], 3, 0, 0), UNDEFINED);
    }
}
