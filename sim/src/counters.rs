//! The run's process and nemesis counters by name (`process.crash`, `net.clog`, ...):
//! what the fault report prints beside the disks', the network's and BUGGIFY's own.

use std::collections::BTreeMap;

/// Counts by name, in name order.
#[derive(Debug, Default)]
pub struct Counters {
    counts: BTreeMap<&'static str, u64>,
}

impl Counters {
    /// Counters that print even at zero.
    pub fn with_zeroes(names: &[&'static str]) -> Counters {
        Counters {
            counts: names.iter().map(|&name| (name, 0)).collect(),
        }
    }

    /// One more of `name`.
    pub fn count(&mut self, name: &'static str) {
        *self.counts.entry(name).or_insert(0) += 1;
    }

    /// `times` more of `name` (nothing, not even a zero entry, if `times` is 0).
    pub fn add(&mut self, name: &'static str, times: u64) {
        if times > 0 {
            *self.counts.entry(name).or_insert(0) += times;
        }
    }

    /// Every count, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.counts.iter().map(|(name, count)| (*name, *count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroes_print_and_counts_add_up() {
        let mut counters = Counters::with_zeroes(&["b", "a"]);
        counters.count("b");
        counters.add("c", 2);
        counters.add("d", 0);
        let all: Vec<_> = counters.iter().collect();
        assert_eq!(all, [("a", 0), ("b", 1), ("c", 2)]);
    }
}
