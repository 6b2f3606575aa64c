//! Topic creations, config changes, record deletions and ACL changes started at a broker
//! that is not the controller.
//!
//! Only the metadata quorum's leader (the controller) appends metadata records. A client
//! that sends CreateTopics to another broker gets NOT_CONTROLLER and goes to the
//! controller itself (Kafka's admin clients do). But some creations start as a side
//! effect of a request a client may send to any broker: auto-creating a topic on
//! Produce or Metadata, and creating `__consumer_offsets` on the first FindCoordinator.
//! And Kafka's admin clients send config changes to any broker (KIP-590: the broker
//! forwards them); DeleteRecords goes to each partition's leader, which need not be the
//! controller; and ACL changes go to any broker (as Kafka's admin clients send them).
//! Those are forwarded:
//!
//! ```text
//!  broker 2 (not controller)                     broker 1 (controller)
//!  Produce to new topic t
//!    record = create-topic t ... (placed here)
//!    ── Forward::Propose{request 7, record} ───►  t exists or is being created?
//!                                                 no: append the record
//!    ◄── Forward::Proposed{7, offset 42} ─────────  (answer at once; the record commits
//!                                                    through Raft like any other)
//!  park the Produce until this broker has applied
//!  the metadata log past offset 42, then handle it again
//! ```
//!
//! The answer does not say the record committed: the asker waits until its own copy
//! of the metadata log has applied past the offset. If the controller lost leadership
//! and the record was cut, something else is applied at that offset, the request is
//! handled again without creating, and the client is told the topic is unknown: it
//! retries, which forwards again. Lost bundles are covered by a deadline: a forward
//! unanswered after [`FORWARD_TIMEOUT_MS`] is given up the same way.

use odradek_log::io::Duration;

use crate::error::ErrorCode;
use crate::metadata::{MetadataAppendError, MetadataRecord};
use crate::metadata_waits::MetadataWait;
use crate::node::{Node, NodeIo};
use crate::peer::{BrokerId, Forward};
use crate::pending_forwards::PendingForward;
use crate::request::RequestId;

/// How long a forwarded creation may stay unanswered.
pub(crate) const FORWARD_TIMEOUT_MS: u64 = 3_000;

/// How a topic creation was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Creation {
    /// This node appended the record at this offset of the metadata log.
    Appended(i64),
    /// This node asked the controller; the forward's id.
    Forwarded(u64),
}

impl Node {
    /// Appends `record` (a create-topic record for `name`) if this node is the
    /// controller, else forwards it to the controller. `Err` if neither is possible
    /// (the log refused it, or no controller is known).
    pub(crate) fn append_or_forward_creation(
        &mut self,
        io: &mut impl NodeIo,
        name: &str,
        record: MetadataRecord,
    ) -> Result<Creation, MetadataAppendError> {
        if let Some(offset) = self.topic_changes.creation(name) {
            return Ok(Creation::Appended(offset));
        }
        if let Some(request) = self.forwards.find(name) {
            return Ok(Creation::Forwarded(request));
        }
        let creation = self.append_or_forward(io, Some(name), record)?;
        if let Creation::Appended(offset) = creation {
            self.topic_changes.note_creating(name, offset);
        }
        Ok(creation)
    }

    /// Appends `record` if this node is the controller, else forwards it to the
    /// controller (`topic`: the topic it creates, if it is a creation).
    pub(crate) fn append_or_forward(
        &mut self,
        io: &mut impl NodeIo,
        topic: Option<&str>,
        record: MetadataRecord,
    ) -> Result<Creation, MetadataAppendError> {
        match self.append_metadata(io, record.clone()) {
            Ok(offset) => Ok(Creation::Appended(offset)),
            Err(MetadataAppendError::NotController {
                leader: Some(controller),
            }) if controller != self.config.node_id => {
                let deadline = io.now() + Duration::from_millis(FORWARD_TIMEOUT_MS);
                let request = self.forwards.start(topic, deadline);
                self.outbox.push_forward(
                    controller,
                    Forward::Propose {
                        request,
                        record: record.encode(),
                    },
                );
                Ok(Creation::Forwarded(request))
            }
            Err(error) => Err(error),
        }
    }

    /// Parks request `id` until creation `creation` is applied here, then `wait`
    /// runs.
    pub(crate) fn wait_for_creation(
        &mut self,
        id: RequestId,
        creation: Creation,
        wait: MetadataWait,
    ) {
        match creation {
            Creation::Appended(offset) => self.metadata_waits.wait(offset, id, wait),
            Creation::Forwarded(request) => self.forwards.wait_on(request, id, wait),
        }
    }

    /// Forwards from broker `from`: proposals (we are its controller) and answers
    /// (it was ours).
    pub(crate) fn handle_forwards(
        &mut self,
        io: &mut impl NodeIo,
        from: BrokerId,
        forwards: Vec<Forward>,
    ) {
        for forward in forwards {
            match forward {
                Forward::Propose { request, record } => {
                    let answer = self.propose_forwarded(io, &record);
                    let (error, offset) = match answer {
                        Ok(offset) => (None, offset),
                        Err(reason) => (Some(reason), -1),
                    };
                    self.outbox.push_forward(
                        from,
                        Forward::Proposed {
                            request,
                            error,
                            offset,
                        },
                    );
                }
                Forward::Proposed {
                    request,
                    error,
                    offset,
                } => {
                    // A duplicate or late answer finds nothing pending.
                    let Some(pending) = self.forwards.take(request) else {
                        continue;
                    };
                    match error {
                        None => {
                            if let Some(name) = &pending.topic {
                                self.topic_changes.note_creating(name, offset);
                            }
                            for (id, wait) in pending.waiters {
                                self.metadata_waits.wait(offset, id, wait);
                            }
                        }
                        Some(reason) => {
                            tracing::debug!("the controller refused {:?}: {reason}", pending.topic);
                            let refusal = (ErrorCode::NotController, reason);
                            self.give_up_forward(io, pending, refusal);
                        }
                    }
                }
            }
        }
        self.release_metadata_waits(io);
    }

    /// The controller's side: appends a forwarded config change, or a create-topic
    /// record unless the topic exists or is being created. Returns the offset the
    /// asker must see applied.
    fn propose_forwarded(&mut self, io: &mut impl NodeIo, text: &str) -> Result<i64, String> {
        let record = MetadataRecord::decode(text)?;
        if !self.metadata.is_leader() {
            return Err("not the controller".to_string());
        }
        let name = match &record {
            MetadataRecord::CreateTopic { name, .. } => name,
            // Validated by the asker; applying skips what no longer fits (a topic
            // deleted since), and the asker confirms against what applied.
            MetadataRecord::AlterConfigs { .. }
            | MetadataRecord::DeleteRecords { .. }
            | MetadataRecord::CreateAcls { .. }
            | MetadataRecord::DeleteAcls { .. }
            | MetadataRecord::ScramCredentials { .. } => {
                return self
                    .append_metadata(io, record)
                    .map_err(|error| error.to_string());
            }
            _ => {
                return Err(
                    "only topic creations, config changes, record deletions, ACL and credential changes are forwarded"
                        .into(),
                );
            }
        };
        if self.cluster.topics.contains_key(name) {
            // Applied here; the asker waits until it has applied as far.
            return Ok(self.metadata.applied_offset() - 1);
        }
        if let Some(offset) = self.topic_changes.creation(name) {
            return Ok(offset);
        }
        let name = name.clone();
        let offset = self
            .append_metadata(io, record)
            .map_err(|error| error.to_string())?;
        self.topic_changes.note_creating(&name, offset);
        Ok(offset)
    }

    /// Forwards whose answer is overdue are given up (see the module docs).
    pub(crate) fn expire_forwards(&mut self, io: &mut impl NodeIo) {
        for pending in self.forwards.take_overdue(io.now()) {
            let overdue = (
                ErrorCode::RequestTimedOut,
                "the controller did not answer in time".to_string(),
            );
            self.give_up_forward(io, pending, overdue);
        }
    }

    /// Handles the waiters of a forward that will not be answered as hoped: each runs
    /// now. A creation's waiter is handled again without creating and tells its
    /// client the topic is not there (yet); a config change is answered `error`.
    fn give_up_forward(
        &mut self,
        io: &mut impl NodeIo,
        pending: PendingForward<MetadataWait>,
        (error, message): (ErrorCode, String),
    ) {
        for (id, mut wait) in pending.waiters {
            wait.fail_written(error, &message);
            self.run_metadata_wait(io, id, wait);
        }
    }
}
