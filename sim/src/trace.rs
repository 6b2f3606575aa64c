//! The trace: every event the simulator processes, folded into one 64-bit hash (and,
//! when asked, kept as text lines). Two runs of the same seed on the same commit must
//! give the same hash; the determinism tests compare exactly that.
//!
//! The hash is FNV-1a over little-endian words, not `std`'s `DefaultHasher`, whose
//! output may change between Rust releases.

pub use odradek_log::mixing::Fnv64;

/// Lines kept at most when a textual trace is asked for (a bound on memory).
pub const TRACE_LINES_MAX: usize = 1_000_000;

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
    pub fn event(&mut self, at_ns: u64, kind: u8, words: &[u64]) {
        self.events += 1;
        self.hash.word(at_ns);
        self.hash.bytes(&[kind]);
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
}
