//! What the world's queue holds: one variant per kind of event, with what its handler
//! needs (`world.rs` handles them, the nemesis schedules its own).

use kafka_protocol::messages::ResponseKind;
use odradek_log::io::{Instant, IoId, TimerId};
use odradek_replication::Request;
use odradek_replication::peer::PeerMessage;

use crate::faults::Nemesis;

/// One queued event.
#[derive(Debug)]
pub(crate) enum Event {
    NodeStart {
        node: u32,
    },
    NodeTimer {
        node: u32,
        incarnation: u64,
        at: Instant,
        timer: TimerId,
    },
    NodeSync {
        node: u32,
        incarnation: u64,
        io: IoId,
    },
    /// A bundle from another broker arrives.
    PeerDelivery {
        node: u32,
        from: u32,
        message: Box<PeerMessage>,
    },
    NodeRequest {
        node: u32,
        client: u32,
        correlation: u64,
        acks_zero: bool,
        request: Box<Request>,
    },
    ClientResponse {
        client: u32,
        correlation: u64,
        response: Box<ResponseKind>,
    },
    ClientLost {
        client: u32,
        correlation: u64,
        why: &'static str,
    },
    ClientWake {
        client: u32,
    },
    Nemesis(Nemesis),
    /// Media rot strikes (`FaultInjector::rot`).
    Rot,
    /// A misdirected write is armed (`FaultInjector::misdirect`).
    Misdirect,
    /// A broker loses its disk (`FaultInjector::wipe`).
    Wipe,
    /// An armed crash or kill that found no writes in flight strikes now.
    CrashNow {
        node: u32,
    },
    Heal,
    LivenessDeadline,
}
