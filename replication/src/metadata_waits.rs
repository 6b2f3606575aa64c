//! Requests that wait on the metadata log, and the topic changes it has not applied yet.
//!
//! - [`MetadataWaits`]: requests released once a metadata offset is applied (topic
//!   creations and deletions, new partitions, producer-id blocks, auto-created topics),
//!   and Metadata requests held until the quorum has a leader.
//! - [`TopicChanges`]: names whose create- or delete-topic record is appended (or
//!   forwarded and accepted) but not applied, so that a second request for the same
//!   name waits for the first record instead of writing another.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::ResponseKind;
use odradek_log::io::Instant;

use crate::acls_answer::AclsAnswer;
use crate::config_answer::ConfigsAnswer;
use crate::error::ErrorCode;
use crate::records_answer::RecordsAnswer;
use crate::request::{Request, RequestId};
use crate::scram_answer::ScramAnswer;
use crate::waiting::WAITING_REQUESTS_MAX;

/// What a request waiting for metadata records does once they are applied.
pub(crate) enum MetadataWait {
    /// Answer with this response once the records are applied.
    Respond(ResponseKind),
    /// A CreatePartitions answer, sent once its records are applied: each named topic
    /// must then have at least the partition count asked for, else the record was cut
    /// by a leader change and that topic's answer becomes NOT_CONTROLLER.
    RespondPartitions(
        kafka_protocol::messages::CreatePartitionsResponse,
        Vec<(String, i32)>,
    ),
    /// Handle the request again once the records are applied (auto-created topics).
    Redispatch(Request),
    /// An alter-configs answer, sent once its record is applied and confirmed.
    Configs(ConfigsAnswer),
    /// A DeleteRecords answer, sent once its record is applied and confirmed.
    DeleteRecords(RecordsAnswer),
    /// A CreateAcls or DeleteAcls answer, sent once its record is applied and confirmed.
    Acls(AclsAnswer),
    /// An AlterUserScramCredentials answer, sent once its record is applied and
    /// confirmed.
    Scram(ScramAnswer),
}

impl MetadataWait {
    /// The record this request waits for will not be applied as hoped: what it
    /// changes is answered `error` (a creation's waiter has nothing to mark; it is
    /// handled again and finds the topic missing).
    pub(crate) fn fail_written(&mut self, error: ErrorCode, message: &str) {
        match self {
            MetadataWait::Configs(answer) => answer.fail_written(error, message),
            MetadataWait::DeleteRecords(answer) => answer.fail_written(error),
            MetadataWait::Acls(answer) => answer.fail_written(error, message),
            MetadataWait::Scram(answer) => answer.fail_written(error, message),
            MetadataWait::Respond(_)
            | MetadataWait::RespondPartitions(..)
            | MetadataWait::Redispatch(_) => {}
        }
    }
}

/// A Metadata request waiting for the metadata quorum to have a leader.
pub(crate) struct HeldMetadata {
    pub(crate) id: RequestId,
    pub(crate) request: Request,
    pub(crate) deadline: Instant,
}

/// Requests waiting on the metadata log.
#[derive(Default)]
pub(crate) struct MetadataWaits {
    /// Keyed by the offset that must be applied, in the order they started waiting.
    on_offset: Vec<(i64, RequestId, MetadataWait)>,
    /// Metadata requests looking for the controller while none is known.
    held: Vec<HeldMetadata>,
}

impl MetadataWaits {
    /// Request `id` waits until `offset` is applied.
    pub(crate) fn wait(&mut self, offset: i64, id: RequestId, wait: MetadataWait) {
        self.on_offset.push((offset, id, wait));
    }

    /// Takes out, in waiting order, every request whose offset is below `applied` or
    /// whose record was cut (`was_cut(offset)`): the offset may not be reached again
    /// until some other record is written.
    pub(crate) fn take_ready(
        &mut self,
        applied: i64,
        was_cut: impl Fn(i64) -> bool,
    ) -> Vec<(RequestId, MetadataWait)> {
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.on_offset)
            .into_iter()
            .partition(|(offset, _, _)| *offset < applied || was_cut(*offset));
        self.on_offset = waiting;
        ready.into_iter().map(|(_, id, wait)| (id, wait)).collect()
    }

    /// Whether another Metadata request may be held.
    pub(crate) fn can_hold(&self) -> bool {
        self.held.len() < WAITING_REQUESTS_MAX
    }

    /// Holds a Metadata request until the quorum has a leader or `deadline` passes.
    pub(crate) fn hold(&mut self, held: HeldMetadata) {
        assert!(self.can_hold());
        self.held.push(held);
    }

    /// Takes out, in arrival order, the held requests `due` says may go on.
    pub(crate) fn take_held(&mut self, due: impl Fn(&HeldMetadata) -> bool) -> Vec<HeldMetadata> {
        if self.held.is_empty() {
            return Vec::new();
        }
        let (due, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.held).into_iter().partition(due);
        self.held = waiting;
        due
    }
}

/// Topic creations and deletions appended to the metadata log and not applied yet.
#[derive(Default)]
pub(crate) struct TopicChanges {
    /// Names with a create-topic record appended but not yet applied, with its offset.
    creating: BTreeMap<String, i64>,
    /// Names with a delete-topic record appended but not yet applied.
    deleting: BTreeSet<String>,
}

impl TopicChanges {
    /// The offset of the create-topic record of `name` not applied yet, if any.
    pub(crate) fn creation(&self, name: &str) -> Option<i64> {
        self.creating.get(name).copied()
    }

    /// Names being created.
    pub(crate) fn creating(&self) -> impl Iterator<Item = &String> {
        self.creating.keys()
    }

    /// A create-topic record for `name` is at `offset`; a name already noted keeps
    /// the offset it had (the first record applied wins).
    pub(crate) fn note_creating(&mut self, name: &str, offset: i64) {
        self.creating.entry(name.to_string()).or_insert(offset);
    }

    /// Whether a delete-topic record for `name` waits to be applied.
    pub(crate) fn is_deleting(&self, name: &str) -> bool {
        self.deleting.contains(name)
    }

    /// A delete-topic record for `name` was appended.
    pub(crate) fn note_deleting(&mut self, name: &str) {
        self.deleting.insert(name.to_string());
    }

    /// The create-topic record of `name` is being applied.
    pub(crate) fn created(&mut self, name: &str) {
        self.creating.remove(name);
    }

    /// The delete-topic record of `name` is being applied.
    pub(crate) fn deleted(&mut self, name: &str) {
        self.deleting.remove(name);
    }

    /// Forgets creations whose record's offset is applied without the topic
    /// appearing (`exists(name)` false): a leader change cut the record.
    pub(crate) fn forget_cut(&mut self, applied: i64, exists: impl Fn(&str) -> bool) {
        self.creating
            .retain(|name, offset| *offset >= applied && !exists(name));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait() -> MetadataWait {
        MetadataWait::Respond(ResponseKind::ApiVersions(Default::default()))
    }

    #[test]
    fn waits_are_released_once_applied_or_cut_in_waiting_order() {
        let mut waits = MetadataWaits::default();
        waits.wait(5, RequestId(1), wait());
        waits.wait(3, RequestId(2), wait());
        waits.wait(9, RequestId(3), wait());
        waits.wait(4, RequestId(4), wait());
        let ready: Vec<RequestId> = waits
            .take_ready(5, |offset| offset == 9)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ready, vec![RequestId(2), RequestId(3), RequestId(4)]);
        let rest: Vec<RequestId> = waits
            .take_ready(6, |_| false)
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(rest, vec![RequestId(1)]);
    }

    #[test]
    fn a_creation_keeps_its_first_offset_until_applied_or_cut() {
        let mut changes = TopicChanges::default();
        changes.note_creating("a", 7);
        changes.note_creating("a", 9);
        changes.note_creating("b", 8);
        assert_eq!(changes.creation("a"), Some(7));
        changes.forget_cut(8, |_| false);
        assert_eq!(
            changes.creation("a"),
            None,
            "offset 7 applied without the topic"
        );
        assert_eq!(changes.creation("b"), Some(8));
        changes.created("b");
        assert_eq!(changes.creating().count(), 0);
    }
}
