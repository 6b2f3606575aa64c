//! Seeded randomness for the simulator: one ChaCha8 stream per purpose, derived from
//! the run's seed, and integer-only helpers (probabilities in parts per million), so a
//! seed means the same run on every machine and every build of a commit.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng as _, SeedableRng as _};

/// Probabilities are integers: parts per million.
pub const PPM: u64 = 1_000_000;

/// A seeded random stream.
#[derive(Clone, Debug)]
pub struct SimRng {
    inner: ChaCha8Rng,
}

impl SimRng {
    /// The stream `stream` of the run seeded with `seed` (streams are independent).
    pub fn new(seed: u64, stream: u64) -> SimRng {
        SimRng {
            inner: ChaCha8Rng::seed_from_u64(mix(seed, stream)),
        }
    }

    /// 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.inner.next_u64()
    }

    /// A number in `0..bound` (`bound` > 0). The modulo bias is irrelevant here.
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "below(0)");
        self.next_u64() % bound
    }

    /// A number in `low..high` (`low < high`).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        assert!(low < high, "empty range {low}..{high}");
        low + self.below(high - low)
    }

    /// True with probability `ppm / 1_000_000`.
    pub fn chance(&mut self, ppm: u64) -> bool {
        ppm > 0 && self.below(PPM) < ppm
    }

    /// One element of a non-empty slice.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// A duration in nanoseconds between `low_ns` and `high_ns`, log-uniform-ish: a
    /// random power-of-two scale first, so short and long values both come up often.
    pub fn log_range(&mut self, low_ns: u64, high_ns: u64) -> u64 {
        assert!(low_ns >= 1 && low_ns < high_ns);
        let span_bits = 64 - (high_ns / low_ns).leading_zeros() as u64;
        let scale = self.below(span_bits.max(1));
        let top = (low_ns << scale).min(high_ns);
        self.range(low_ns, top.max(low_ns + 1))
    }
}

/// A 64-bit mixer to derive independent seeds (the workspace's one, in `odradek_log`).
pub use odradek_log::mixing::derive_seed as mix;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = SimRng::new(7, 1);
        let mut b = SimRng::new(7, 1);
        let mut c = SimRng::new(7, 2);
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..4).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..4).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn log_range_stays_in_bounds() {
        let mut rng = SimRng::new(1, 1);
        for _ in 0..1000 {
            let x = rng.log_range(1000, 5_000_000);
            assert!((1000..5_000_000).contains(&x));
        }
    }
}
