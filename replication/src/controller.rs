//! Metadata requests that look for the controller while no broker knows one.
//!
//! An admin client finds the controller with a Metadata request that names no topic,
//! then sends CreateTopics there. While the metadata quorum elects a leader (at a
//! cluster's start, or after the controller failed) a broker knows none. Answering
//! `controller_id` -1 made librdkafka's admin client wait without asking again until
//! its request timed out, 20-25 s (issue 15); naming a broker that is not the
//! controller gets the CreateTopics a NOT_CONTROLLER, which librdkafka hands to the
//! application. So such a request waits here until the quorum has a leader, for at
//! most twice the longest election timeout, and is then answered: with the leader, or,
//! if there still is none, naming this broker (decision 0011). Requests that name
//! topics are answered at once: producers and consumers need partition leaders, which
//! their own Raft groups elect, not the controller.
//!
//! ```text
//!  Metadata(topics: [])  ── no leader known ──► held (deadline)
//!  drive_metadata: leader known ────────────────► every held request answered
//!  Raft tick: deadline passed ──────────────────► answered, naming this broker
//! ```

use kafka_protocol::messages::RequestKind;
use odradek_log::io::Duration;

use crate::metadata_waits::HeldMetadata;
use crate::node::{Node, NodeIo};
use crate::request::{Request, RequestId};

impl Node {
    /// Holds `request` (a Metadata request) if it looks for the controller while none
    /// is known; gives it back otherwise.
    pub(crate) fn hold_for_controller(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) -> Option<Request> {
        let RequestKind::Metadata(metadata) = &request.body else {
            unreachable!("only metadata requests wait for the controller")
        };
        // v0 reads an empty list as "every topic".
        let names_no_topic = request.api_version >= 1
            && metadata
                .topics
                .as_ref()
                .is_some_and(|topics| topics.is_empty());
        let cluster = self.metadata.raft().voters().len() > 1;
        let known = self.metadata.raft().leader_id().is_some();
        if !cluster || known || !names_no_topic || !self.metadata_waits.can_hold() {
            return Some(request);
        }
        let deadline = io.now() + self.controller_wait();
        self.metadata_waits.hold(HeldMetadata {
            id,
            request,
            deadline,
        });
        None
    }

    /// Answers the held requests: all of them once the quorum has a leader, else those
    /// whose deadline passed.
    pub(crate) fn release_held_metadata(&mut self, io: &mut impl NodeIo) {
        let now = io.now();
        let known = self.metadata.raft().leader_id().is_some();
        let due = self
            .metadata_waits
            .take_held(|held| known || held.deadline <= now);
        for held in due {
            self.handle_metadata(io, held.id, held.request, true);
        }
    }

    /// Twice the longest election timeout: an election that takes longer than that
    /// lacks a quorum, and the client is better told so.
    fn controller_wait(&self) -> Duration {
        let ticks = 4 * self.config.election_timeout_ticks;
        Duration::from_millis(ticks * self.config.raft_tick_ms.max(1) as u64)
    }
}
