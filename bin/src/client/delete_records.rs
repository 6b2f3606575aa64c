//! DeleteRecords, as `odradek delete-records` uses it: each partition's request goes to
//! its leader, and a leader change is followed (refresh the metadata, ask again).

use std::time::Duration;

use kafka_protocol::messages::DeleteRecordsRequest;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};

use super::{Client, ClientError, ClientResult, topic_name};

/// How often a partition is asked again after a retriable error.
const ATTEMPTS_MAX: u32 = 10;
/// The pause before asking again.
const RETRY_BACKOFF: Duration = Duration::from_millis(200);
/// How long the broker may take (DeleteRecords' timeout_ms).
const REQUEST_TIMEOUT_MS: i32 = 30_000;

impl Client {
    /// Deletes partition `partition` of `topic` below `offset` (-1: below the high
    /// watermark); the partition's low watermark afterwards.
    pub async fn delete_records(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> ClientResult<i64> {
        let mut attempt = 1;
        loop {
            match self.delete_records_once(topic, partition, offset).await {
                Err(error) if error.is_retriable() && attempt < ATTEMPTS_MAX => {
                    attempt += 1;
                    tokio::time::sleep(RETRY_BACKOFF).await;
                }
                result => return result,
            }
        }
    }

    async fn delete_records_once(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> ClientResult<i64> {
        self.refresh_metadata(&[topic.to_string()]).await?;
        let connection = self.broker(self.leader_id(topic, partition)?).await?;
        let request = DeleteRecordsRequest::default()
            .with_topics(vec![
                DeleteRecordsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![
                        DeleteRecordsPartition::default()
                            .with_partition_index(partition)
                            .with_offset(offset),
                    ]),
            ])
            .with_timeout_ms(REQUEST_TIMEOUT_MS);
        let response = connection.request(&request).await?;
        let answer = response
            .topics
            .iter()
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| ClientError::Other(format!("no answer for {topic}-{partition}")))?;
        if answer.error_code != 0 {
            let context = format!("delete records of {topic}-{partition}");
            return Err(ClientError::kafka(context, answer.error_code, None));
        }
        Ok(answer.low_watermark)
    }
}
