//! Per-node simulated clocks.
//!
//! # Fault model (clock)
//!
//! Every node has its own clock, driven by the simulator's global time (nanoseconds
//! since the start of the run), which no node can read:
//!
//! - **drift**: the node's clock runs `drift_ppm` parts per million fast or slow
//!   (drawn per node and seed, within ±`DRIFT_PPM_MAX`);
//! - **forward step**: the monotonic clock jumps ahead (NTP slew gone wrong, a VM
//!   migrated): timers that were due later come due at once;
//! - **stall**: the monotonic clock stops for a while and then resumes from where it
//!   stopped (it never catches up): timers come due late;
//! - **wall-clock step**: `wall_clock_ms` jumps forward or *backward* by up to
//!   `WALL_STEP_MS_MAX`; record timestamps and `segment.ms` rolls see it.
//!
//! The monotonic clock (`Io::now`) never goes back, whatever happens; the wall clock
//! may. A timer asked for at a local instant is turned into a global time assuming the
//! current rate; if the clock is behind when the event is due (a stall), the event is
//! put back until the clock really passes the instant, so a timer never fires early.

use odradek_log::io::Instant;

/// Largest drift drawn, in parts per million (real quartz: tens of ppm; VMs: worse).
pub const DRIFT_PPM_MAX: i64 = 1000;
/// Largest wall-clock step, either way. Kept well below `retention.ms` on purpose:
/// the sim runs with retention off, and a step of days would make retention delete
/// acknowledged records, which is Kafka's rule, not a bug.
pub const WALL_STEP_MS_MAX: i64 = 10 * 60 * 1000;
/// The wall clock at global time zero (2023-11-14T22:13:20Z).
pub const WALL_CLOCK_ORIGIN_MS: i64 = 1_700_000_000_000;

/// One node's clock. Local time is computed from an anchor (a global time and the
/// local time then) at the node's rate, never accumulated step by step: rounding a
/// slow clock's many tiny steps down would stop it for good.
#[derive(Clone, Debug)]
pub struct NodeClock {
    anchor_local_ns: u64,
    anchor_global_ns: u64,
    last_global_ns: u64,
    drift_ppm: i64,
    stalled_until_ns: u64,
    wall_offset_ms: i64,
}

impl NodeClock {
    /// A clock with this drift, starting at local time `start_ns`.
    pub fn new(drift_ppm: i64, start_ns: u64) -> NodeClock {
        assert!(drift_ppm.abs() <= DRIFT_PPM_MAX);
        NodeClock {
            anchor_local_ns: start_ns,
            anchor_global_ns: 0,
            last_global_ns: 0,
            drift_ppm,
            stalled_until_ns: 0,
            wall_offset_ms: 0,
        }
    }

    fn rate(&self) -> u128 {
        (1_000_000 + self.drift_ppm) as u128
    }

    /// Local time at global time `global_ns` (not before the anchor).
    fn local_at(&self, global_ns: u64) -> u64 {
        let from = self.anchor_global_ns.max(self.stalled_until_ns);
        if global_ns <= from {
            return self.anchor_local_ns;
        }
        let elapsed = u128::from(global_ns - from) * self.rate() / 1_000_000;
        self.anchor_local_ns.saturating_add(elapsed as u64)
    }

    /// Moves the clock to global time `global_ns` (never backwards).
    pub fn advance_to(&mut self, global_ns: u64) {
        self.last_global_ns = self.last_global_ns.max(global_ns);
    }

    /// The monotonic clock.
    pub fn now(&self) -> Instant {
        Instant::from_nanos(self.local_at(self.last_global_ns))
    }

    /// The wall clock, in milliseconds since the Unix epoch.
    pub fn wall_clock_ms(&self) -> i64 {
        WALL_CLOCK_ORIGIN_MS + (self.now().as_nanos() / 1_000_000) as i64 + self.wall_offset_ms
    }

    /// The earliest global time at which the local clock reaches `at`, assuming no
    /// stall and no step from now on (the caller re-checks when that time comes).
    pub fn global_time_of(&self, at: Instant) -> u64 {
        if at.as_nanos() <= self.local_at(self.last_global_ns) {
            return self.last_global_ns;
        }
        let from = self.anchor_global_ns.max(self.stalled_until_ns);
        let ahead = u128::from(at.as_nanos() - self.anchor_local_ns);
        let global = (ahead * 1_000_000).div_ceil(self.rate());
        from.saturating_add(global as u64).max(self.last_global_ns)
    }

    /// Makes the current instant the anchor (before a step or a stall).
    fn reanchor(&mut self) {
        self.anchor_local_ns = self.local_at(self.last_global_ns);
        self.anchor_global_ns = self.last_global_ns.max(self.anchor_global_ns);
        self.stalled_until_ns = self.stalled_until_ns.max(self.anchor_global_ns);
        if self.stalled_until_ns > self.last_global_ns {
            // Still stalled: the anchor is the stall's local time, kept as it is.
            return;
        }
        self.stalled_until_ns = 0;
    }

    /// Jumps the monotonic clock forward.
    pub fn step_forward(&mut self, by_ns: u64) {
        self.reanchor();
        self.anchor_local_ns = self.anchor_local_ns.saturating_add(by_ns);
    }

    /// Stops the monotonic clock until global time `until_ns`.
    pub fn stall_until(&mut self, until_ns: u64) {
        self.reanchor();
        self.stalled_until_ns = self.stalled_until_ns.max(until_ns);
    }

    /// Steps the wall clock (may be negative).
    pub fn step_wall(&mut self, by_ms: i64) {
        self.wall_offset_ms += by_ms;
    }

    /// Ends any stall (faults heal).
    pub fn heal(&mut self, global_ns: u64) {
        self.advance_to(global_ns);
        self.reanchor();
        self.stalled_until_ns = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drift_and_stall_never_go_back() {
        let mut clock = NodeClock::new(500, 0);
        clock.advance_to(1_000_000_000);
        assert_eq!(clock.now().as_nanos(), 1_000_500_000);
        clock.stall_until(2_000_000_000);
        clock.advance_to(1_500_000_000);
        assert_eq!(clock.now().as_nanos(), 1_000_500_000);
        clock.advance_to(3_000_000_000);
        assert_eq!(clock.now().as_nanos(), 2_001_000_000);
    }

    #[test]
    fn a_slow_clock_advances_in_tiny_steps() {
        let mut clock = NodeClock::new(-1000, 0);
        for global in 1..=10_000 {
            clock.advance_to(global);
        }
        assert_eq!(clock.now().as_nanos(), 9_990);
        let at = Instant::from_nanos(20_000);
        let global = clock.global_time_of(at);
        clock.advance_to(global);
        assert!(clock.now() >= at);
        clock.advance_to(global - 1);
        assert!(clock.now() >= at, "advance_to never goes back");
    }

    #[test]
    fn timer_conversion_is_not_early() {
        let mut clock = NodeClock::new(-700, 5);
        clock.advance_to(10_000);
        let at = Instant::from_nanos(clock.now().as_nanos() + 1_234_567);
        let global = clock.global_time_of(at);
        clock.advance_to(global);
        assert!(clock.now() >= at);
    }
}
