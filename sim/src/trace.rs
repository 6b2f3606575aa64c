//! The trace: every event the simulator processes, folded into one 64-bit hash (and,
//! when asked, kept as text lines). Two runs of the same seed on the same commit must
//! give the same hash; the determinism tests compare exactly that.
//!
//! The hash is FNV-1a over little-endian words, not `std`'s `DefaultHasher`, whose
//! output may change between Rust releases.

pub use odradek_log::mixing::Fnv64;

/// Lines kept at most when a textual trace is asked for (a bound on memory).
pub const TRACE_LINES_MAX: usize = 1_000_000;

/// What an entry of the trace records: its tag, hashed with it. The numbers are part
/// of every seed's trace hash (the determinism tests and pinned hashes compare them),
/// so a kind keeps its number for good and a new kind takes a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum TraceKind {
    /// A node tried to open: (node, opened).
    NodeStart = 1,
    /// A node's timer fired: (node, timer).
    NodeTimer = 2,
    /// A sync a node started completed: (node, io, succeeded).
    NodeSync = 3,
    /// A client's request reached a node: (node, correlation, request id or 0 if the
    /// node was down).
    NodeRequest = 4,
    /// A response reached its client: (client, correlation).
    ClientResponse = 5,
    /// A client lost a request (timeout, connection refused or reset): (client,
    /// correlation).
    ClientLost = 6,
    /// A client woke up: (client).
    ClientWake = 7,
    /// A client sent a request: (client, correlation, copies on the network).
    ClientSend = 8,
    /// The run moved to a phase: (the phase's number, [`crate::workload::Phase`]).
    Phase = 9,
    /// A node answered a request: (node, correlation, digest of the response).
    NodeResponse = 10,
    /// The nemesis acted: (its tag, node).
    Nemesis = 11,
    /// An armed crash or kill struck: (node, power loss).
    Crash = 12,
    /// A nemesis event was drawn and skipped: (its tag, node, its number).
    NemesisSkipped = 13,
    /// A broker sent a bundle to a peer: (from, to, copies on the network).
    PeerSend = 14,
    /// A bundle from a peer reached a broker: (node, from).
    PeerDelivery = 15,
    /// Media rot struck: (node, byte).
    Rot = 16,
    /// A misdirected write was armed: (node, draw of the partition, draw of the landing).
    Misdirect = 17,
    /// A broker's disk was wiped: (node, seed of the new disk).
    Wipe = 18,
}

/// The run's trace.
#[derive(Debug, Default)]
pub struct Trace {
    hash: Fnv64,
    events: u64,
    lines: Option<Vec<String>>,
    echo: bool,
}

impl Trace {
    /// A trace that keeps text lines if `keep_lines`, and prints them if `echo`.
    pub fn new(keep_lines: bool, echo: bool) -> Trace {
        Trace {
            hash: Fnv64::default(),
            events: 0,
            lines: keep_lines.then(Vec::new),
            echo,
        }
    }

    /// Whether text is wanted (callers skip formatting otherwise: it is the slow part).
    pub fn wants_text(&self) -> bool {
        self.lines.is_some() || self.echo
    }

    /// Records one event: its time, a kind tag and some words that identify it.
    pub fn event(&mut self, at_ns: u64, kind: TraceKind, words: &[u64]) {
        self.events += 1;
        self.hash.word(at_ns);
        self.hash.bytes(&[kind as u8]);
        for word in words {
            self.hash.word(*word);
        }
    }

    /// Adds a line of text for the event just recorded (not hashed: the words are).
    pub fn line(&mut self, at_ns: u64, text: impl FnOnce() -> String) {
        if !self.wants_text() {
            return;
        }
        let line = format!(
            "{:>10}.{:06}ms {}",
            at_ns / 1_000_000,
            at_ns % 1_000_000,
            text()
        );
        if self.echo {
            println!("{line}");
        }
        if let Some(lines) = &mut self.lines
            && lines.len() < TRACE_LINES_MAX
        {
            lines.push(line);
        }
    }

    /// The hash of every event so far.
    pub fn hash(&self) -> u64 {
        self.hash.finish()
    }

    /// Events recorded.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The kept lines, if any.
    pub fn take_lines(&mut self) -> Vec<String> {
        self.lines.take().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_known_value() {
        // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c.
        let mut h = Fnv64::default();
        h.bytes(b"a");
        assert_eq!(h.finish(), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn kinds_keep_the_numbers_every_trace_hash_was_made_with() {
        let numbered = [
            (TraceKind::NodeStart, 1),
            (TraceKind::NodeTimer, 2),
            (TraceKind::NodeSync, 3),
            (TraceKind::NodeRequest, 4),
            (TraceKind::ClientResponse, 5),
            (TraceKind::ClientLost, 6),
            (TraceKind::ClientWake, 7),
            (TraceKind::ClientSend, 8),
            (TraceKind::Phase, 9),
            (TraceKind::NodeResponse, 10),
            (TraceKind::Nemesis, 11),
            (TraceKind::Crash, 12),
            (TraceKind::NemesisSkipped, 13),
            (TraceKind::PeerSend, 14),
            (TraceKind::PeerDelivery, 15),
            (TraceKind::Rot, 16),
            (TraceKind::Misdirect, 17),
            (TraceKind::Wipe, 18),
        ];
        for (kind, number) in numbered {
            assert_eq!(kind as u8, number, "{kind:?}");
        }
    }

    #[test]
    fn an_event_hashes_its_time_its_kind_as_one_byte_and_its_words() {
        let mut trace = Trace::new(false, false);
        trace.event(7, TraceKind::ClientWake, &[3]);
        let mut expected = Fnv64::default();
        expected.word(7);
        expected.bytes(&[7]);
        expected.word(3);
        assert_eq!(trace.hash(), expected.finish());
        assert_eq!(trace.events(), 1);
    }
}
