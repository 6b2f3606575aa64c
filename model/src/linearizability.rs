//! Linearizability of a history against [`LogSpec`], one partition at a time.
//!
//! A history is linearizable if every operation can be given a point in time (its
//! linearization point) inside its own interval, such that performing the operations
//! one at a time in that order on [`LogSpec`] gives exactly the replies the clients saw
//! (Herlihy & Wing 1990). What each outcome allows:
//!
//! - [`Outcome::Ok`]: the point lies between invocation and completion;
//! - [`Outcome::Fail`]: the operation never took effect; it is dropped;
//! - [`Outcome::Indefinite`] (or never completed): the point lies anywhere after the
//!   invocation, or nowhere. An indefinite send may or may not be in the log; an
//!   indefinite poll constrains nothing and is dropped.
//!
//! Operation A must precede B when A completed strictly before B was invoked; equal
//! times count as concurrent.
//!
//! ## P-compositionality
//!
//! Partitions are independent objects, so a history is linearizable iff each
//! partition's sub-history is (Herlihy & Wing 1990 §3.3; Horn & Kroening 2015 use the
//! same split inside one object). [`check_partition`] checks one; the search never
//! sees more than one partition's operations.
//!
//! ## Two searches
//!
//! [`Search::Exhaustive`] is the textbook search of Wing & Gong (1993) with Lowe's
//! (2017) memoisation: depth-first over "linearize one of the minimal pending
//! operations next", remembering each configuration (set of linearized operations as a
//! bitset, log state interned to a number) so that it is never explored twice. It
//! relies on nothing but [`LogSpec::step`], and is exponential in the number of
//! concurrent operations: it is the reference the fast search is tested against.
//!
//! [`Search::Pruned`] (the default) is the same search with four pruning rules that
//! follow from the log's specification. Together they leave at most one move worth
//! trying at every configuration, so the search never backtracks and runs in
//! O(n log n):
//!
//! 1. **Observations fix positions.** Values are unique, and the log only grows, so
//!    every `Ok` reply names records of one final log: an acknowledged send says
//!    "value v is at offset o", a poll says the same of each record it returned. If
//!    two observations disagree (one offset, two values; one value, two offsets), or a
//!    poll's records are not consecutive from the requested offset, or a polled value
//!    was never sent or was sent by a send that failed, no order can help: the history
//!    is illegal before any search starts.
//! 2. **Sends are placed by offset.** The next send to linearize is the one whose value
//!    belongs at the log end offset. If no observation names that offset (a *hole*),
//!    any indefinite send that no one observed may fill it; they are interchangeable
//!    (none has a deadline or a known position), so the earliest invoked is taken.
//!    Linearizing that send as soon as it is allowed never hurts: only sends change
//!    the state, the order of sends is forced, and a longer log satisfies every poll
//!    that a shorter one does.
//! 3. **Polls are linearized eagerly.** An `Ok` poll only needs the log to reach past
//!    its last returned record (or to its requested offset, if it returned nothing);
//!    it does not change the state, so once that holds, linearizing it at once is as
//!    good as any later point.
//! 4. **Nothing is appended past the extent**, the highest offset any `Ok` operation
//!    needs: records there are observed by no one and help no one.
//!
//! An exchange argument shows each rule keeps a linearization if one exists (swap the
//! chosen move to the front of any valid completion). The proptest suite checks the
//! two searches agree on small random histories, legal and not.
//!
//! ## Answers
//!
//! [`Verdict::Ok`] carries a witness: the linearization found, which is replayed
//! through [`LogSpec::apply`] and checked against real-time order before it is
//! returned (a failure there is a bug in this module, and panics).
//! [`Verdict::Illegal`] carries a [`Violation`]: the operation that could not be
//! placed, the operations that explain why, the longest linearizable prefix found and
//! the frontier of pending operations at that point. [`Verdict::Unknown`] is the
//! answer when the search explored more configurations than its budget allows: never
//! a silent pass.

use std::collections::{BTreeMap, BTreeSet};

use crate::history::{Call, History, MARKER, Operation, Outcome, PartitionKey, Reply};
use crate::log_spec::LogSpec;

/// The default cap on configurations explored per partition. The pruned search visits
/// one configuration per operation, so this is far beyond any simulated history; the
/// exhaustive search keeps each configuration in memory (a bitset of the partition's
/// operations), so it should be given small histories or a smaller cap.
pub const CONFIGURATIONS_MAX_DEFAULT: u64 = 1_000_000;

/// Which search to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Search {
    /// The search with the log-specific pruning rules: linear in practice.
    #[default]
    Pruned,
    /// Wing & Gong with Lowe's memoisation and no pruning: exponential, a reference.
    Exhaustive,
}

/// How to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinearizabilityOptions {
    /// The search answers [`Verdict::Unknown`] after exploring more configurations
    /// than this.
    pub configurations_max: u64,
    /// Which search to run.
    pub search: Search,
    /// The broker writes control records of its own that take offsets (a replicated
    /// partition's leader-change markers), recorded by polls as
    /// [`MARKER`](crate::history::MARKER): see [`LogSpec::with_markers`]. The pruned
    /// search treats an offset a poll saw a marker at as written by the broker, and
    /// fills an offset no reply names with a marker rather than a send. The exhaustive
    /// search (a reference for tests) does not model an unobserved marker before an
    /// indefinite send.
    pub broker_markers: bool,
}

impl Default for LinearizabilityOptions {
    fn default() -> LinearizabilityOptions {
        LinearizabilityOptions {
            configurations_max: CONFIGURATIONS_MAX_DEFAULT,
            search: Search::Pruned,
            broker_markers: false,
        }
    }
}

/// The answer for one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Linearizable.
    Ok {
        /// A witness: operation indexes in linearization order. Indefinite sends that
        /// appear took effect; those that do not need never have.
        linearization: Vec<usize>,
        /// Configurations explored.
        explored: u64,
    },
    /// Not linearizable, and why.
    Illegal(Box<Violation>),
    /// The search ran out of budget: nothing is known.
    Unknown {
        /// Configurations explored before giving up.
        explored: u64,
        /// Why the search stopped.
        reason: String,
    },
}

impl Verdict {
    /// Whether the partition is linearizable.
    pub fn is_ok(&self) -> bool {
        matches!(self, Verdict::Ok { .. })
    }

    /// Whether the partition is proven not linearizable.
    pub fn is_illegal(&self) -> bool {
        matches!(self, Verdict::Illegal(_))
    }

    /// Whether the search gave up.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Verdict::Unknown { .. })
    }

    /// Configurations explored to reach the verdict.
    pub fn explored(&self) -> u64 {
        match self {
            Verdict::Ok { explored, .. } | Verdict::Unknown { explored, .. } => *explored,
            Verdict::Illegal(violation) => violation.explored,
        }
    }
}

/// Why a partition's history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The operation that could not be placed.
    pub operation: usize,
    /// Other operations the explanation names (a send whose value was read too early,
    /// the other side of a contradiction).
    pub related: Vec<usize>,
    /// The longest linearizable prefix found, in linearization order. Empty when the
    /// replies contradict each other whatever the order (pruning rule 1).
    pub prefix: Vec<usize>,
    /// The `Ok` operations invoked but not linearized at the end of that prefix, the
    /// candidates that were all stuck (includes `operation`). Empty with `prefix`.
    pub frontier: Vec<usize>,
    /// Configurations explored.
    pub explored: u64,
    /// One or two sentences a person can act on.
    pub explanation: String,
}

impl Violation {
    /// Every operation to mark on a timeline: the stuck one, the related ones and the
    /// frontier.
    pub fn marked(&self) -> BTreeSet<usize> {
        let mut marked: BTreeSet<usize> = self.related.iter().copied().collect();
        marked.insert(self.operation);
        marked.extend(self.frontier.iter().copied());
        marked
    }
}

/// Checks the operations of `history` on `partition`, whose log starts at
/// `start_offset` (0 for a partition created during the run).
pub fn check_partition(
    history: &History,
    partition: &PartitionKey,
    start_offset: i64,
    options: &LinearizabilityOptions,
) -> Verdict {
    let operations: Vec<&Operation> = history.on_partition(partition).collect();
    check_operations(&operations, start_offset, options)
}

/// Checks `operations`, which must all be on one partition whose log starts at
/// `start_offset`. Panics on a malformed recording (a reply of the wrong kind, an
/// `Ok` without a completion time, two sends of one value): those are recorder bugs.
pub fn check_operations(
    operations: &[&Operation],
    start_offset: i64,
    options: &LinearizabilityOptions,
) -> Verdict {
    assert!(start_offset >= 0, "log start offset {start_offset} < 0");
    if let Some(first) = operations.first() {
        for operation in operations {
            assert_eq!(
                operation.partition, first.partition,
                "check_operations takes one partition at a time (P-compositionality)"
            );
        }
    }
    let mut prepared = Prepared::new(operations);
    prepared.markers = options.broker_markers;
    match options.search {
        Search::Pruned => Pruned::new(&prepared, start_offset, options).run(),
        Search::Exhaustive => exhaustive(&prepared, start_offset, options),
    }
}

/// An operation as the search sees it.
#[derive(Debug)]
struct Entry<'a> {
    operation: &'a Operation,
    /// `Some(completion)` for an `Ok` operation, which must take effect by then;
    /// `None` for an indefinite send, which may take effect at any time, or never.
    deadline: Option<u64>,
    /// The reply, for an `Ok` operation.
    reply: Option<&'a Reply>,
}

impl Entry<'_> {
    fn invoked(&self) -> u64 {
        self.operation.invoked_at
    }

    fn is_ok(&self) -> bool {
        self.deadline.is_some()
    }

    /// An `Ok` poll's records, or an empty slice.
    fn records(&self) -> &[(i64, u64)] {
        match self.reply {
            Some(Reply::Polled { records }) => records,
            _ => &[],
        }
    }
}

/// The operations that matter, sorted by invocation, and the failed sends.
struct Prepared<'a> {
    /// Sorted by (invocation time, index).
    entries: Vec<Entry<'a>>,
    /// Sends that failed, by value: they certainly never took effect.
    failed_sends: BTreeMap<u64, &'a Operation>,
    /// The broker may write markers ([`LinearizabilityOptions::broker_markers`]).
    markers: bool,
}

impl<'a> Prepared<'a> {
    fn new(operations: &[&'a Operation]) -> Prepared<'a> {
        let mut entries = Vec::new();
        let mut failed_sends = BTreeMap::new();
        let mut sent_values: BTreeMap<u64, usize> = BTreeMap::new();
        for &operation in operations {
            if let Call::Send { value } = operation.call
                && let Some(other) = sent_values.insert(value, operation.index)
            {
                panic!(
                    "value {value} sent by both #{other} and #{}: the workload must send unique values",
                    operation.index
                );
            }
            match (&operation.call, &operation.outcome) {
                (_, Some(Outcome::Fail(_))) => {
                    if let Call::Send { value } = operation.call {
                        failed_sends.insert(value, operation);
                    }
                }
                (call, Some(Outcome::Ok(reply))) => {
                    let fits = matches!(
                        (call, reply),
                        (Call::Send { .. }, Reply::Sent { .. })
                            | (Call::Poll { .. }, Reply::Polled { .. })
                    );
                    assert!(
                        fits,
                        "operation #{} recorded reply {reply:?} to call {call:?}",
                        operation.index
                    );
                    let completed_at = operation.completed_at.unwrap_or_else(|| {
                        panic!("operation #{} is Ok but never completed", operation.index)
                    });
                    entries.push(Entry {
                        operation,
                        deadline: Some(completed_at),
                        reply: Some(reply),
                    });
                }
                (Call::Send { .. }, None | Some(Outcome::Indefinite(_))) => {
                    entries.push(Entry {
                        operation,
                        deadline: None,
                        reply: None,
                    });
                }
                // An indefinite poll: nobody saw what it read, so it constrains nothing.
                (Call::Poll { .. }, None | Some(Outcome::Indefinite(_))) => {}
            }
        }
        entries.sort_by_key(|entry| (entry.invoked(), entry.operation.index));
        Prepared {
            entries,
            failed_sends,
            markers: false,
        }
    }

    /// `m`, the bound on the window: the earliest deadline among the `Ok` entries not
    /// yet linearized. Entries invoked at or before it may be linearized next.
    fn window_by_scan(&self, linearized: impl Fn(usize) -> bool) -> u64 {
        self.entries
            .iter()
            .enumerate()
            .filter(|(id, _)| !linearized(*id))
            .filter_map(|(_, entry)| entry.deadline)
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The `Ok` entries invoked by `window` and not linearized, as operation indexes.
    fn frontier(&self, window: u64, linearized: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut frontier: Vec<usize> = self
            .entries
            .iter()
            .enumerate()
            .take_while(|(_, entry)| entry.invoked() <= window)
            .filter(|(id, entry)| entry.is_ok() && !linearized(*id))
            .map(|(_, entry)| entry.operation.index)
            .collect();
        frontier.sort_unstable();
        frontier
    }

    /// Replays a witness on the specification and checks it against real-time order.
    /// Any failure is a bug in the search.
    /// `marker_offsets` are the offsets the search gave to broker markers.
    fn assert_witness(&self, witness: &[usize], start_offset: i64, marker_offsets: &BTreeSet<i64>) {
        let mut log = LogSpec::starting_at(start_offset).with_markers(self.markers);
        let mut invoked_max = 0;
        let mut in_witness = vec![false; self.entries.len()];
        for &id in witness {
            while marker_offsets.contains(&log.end_offset()) {
                log.append(MARKER);
            }
            let entry = &self.entries[id];
            assert!(
                !in_witness[id],
                "witness linearizes #{} twice",
                entry.operation.index
            );
            in_witness[id] = true;
            if let Err(violation) = log.apply(&entry.operation.call, entry.reply) {
                panic!(
                    "witness fails the specification at #{}: {violation}",
                    entry.operation.index
                );
            }
            invoked_max = invoked_max.max(entry.invoked());
            if let Some(deadline) = entry.deadline {
                assert!(
                    deadline >= invoked_max,
                    "witness puts #{} after an operation invoked after it completed",
                    entry.operation.index
                );
            }
        }
        for (id, entry) in self.entries.iter().enumerate() {
            assert!(
                in_witness[id] || !entry.is_ok(),
                "witness leaves out the Ok operation #{}",
                entry.operation.index
            );
        }
    }
}

/// Who says which value is at which offset.
#[derive(Clone, Copy, Debug)]
struct Claim {
    offset: i64,
    value: u64,
    /// The operation index of the send that was acknowledged or the poll that read it.
    by: usize,
    acknowledged: bool,
}

impl Claim {
    fn sentence(&self) -> String {
        if self.acknowledged {
            format!(
                "send #{} of value {} was acknowledged at offset {}",
                self.by, self.value, self.offset
            )
        } else {
            format!(
                "poll #{} read value {} at offset {}",
                self.by, self.value, self.offset
            )
        }
    }
}

/// The claims collected so far (rule 1), by offset and by value: the first of each.
#[derive(Default)]
struct Observed {
    at_offset: BTreeMap<i64, Claim>,
    /// Broker markers are not values: they are left out.
    of_value: BTreeMap<u64, Claim>,
}

impl Observed {
    /// Adds a claim of operation `index`, or returns the contradiction with an earlier
    /// claim: another value at its offset, or its value at another offset.
    fn add(&mut self, claim: Claim, index: usize) -> Result<(), Box<Violation>> {
        let conflict = match self.at_offset.get(&claim.offset) {
            Some(earlier) if earlier.value != claim.value => {
                Some((earlier, "one offset holds one record"))
            }
            _ => match self.of_value.get(&claim.value) {
                Some(earlier) if earlier.offset != claim.offset => {
                    Some((earlier, "one send writes one record"))
                }
                _ => None,
            },
        };
        if let Some((earlier, rule)) = conflict {
            let related = if earlier.by == index {
                Vec::new()
            } else {
                vec![earlier.by]
            };
            return Err(contradiction(
                index,
                related,
                format!("{}, but {}: {rule}", earlier.sentence(), claim.sentence()),
            ));
        }
        self.at_offset.entry(claim.offset).or_insert(claim);
        if claim.value != MARKER {
            self.of_value.entry(claim.value).or_insert(claim);
        }
        Ok(())
    }
}

/// A violation found before any search: operation `operation` contradicts the
/// observations (`related` are the operations on the other side).
fn contradiction(operation: usize, related: Vec<usize>, explanation: String) -> Box<Violation> {
    Box::new(Violation {
        operation,
        related,
        prefix: Vec::new(),
        frontier: Vec::new(),
        explored: 0,
        explanation,
    })
}

/// Where the pruned search stopped.
#[derive(Clone, Copy, Debug)]
struct Stuck {
    /// The `Ok` entry with the earliest deadline not yet linearized.
    bottleneck: usize,
    /// Its deadline: entries invoked after it could not come before it.
    window: u64,
    /// The log end offset reached.
    end_offset: i64,
    /// The send that belonged at `end_offset`, if any, not invoked in time.
    filler: Option<usize>,
    /// Configurations explored.
    explored: u64,
}

/// The pruned search: see the module documentation for its rules.
struct Pruned<'p, 'a> {
    prepared: &'p Prepared<'a>,
    start_offset: i64,
    configurations_max: u64,
}

/// How far the pruned search got: what it linearized, and the cursors that find its
/// next move.
struct Progress {
    linearized: Vec<bool>,
    /// The entries linearized, in order.
    witness: Vec<usize>,
    /// The offsets given to broker markers.
    marker_offsets: BTreeSet<i64>,
    /// The Ok entries by deadline: the first one not linearized bounds the window.
    by_deadline: Vec<usize>,
    deadline_cursor: usize,
    /// Ok polls by how far the log must reach for them.
    polls_by_need: Vec<(i64, usize)>,
    need_cursor: usize,
    /// Polls whose need is met, by invocation: linearizable once in the window.
    ready_polls: BTreeSet<(u64, usize)>,
    end_offset: i64,
    /// Unobserved sends used to fill holes, from the earliest invoked.
    holes_filled: usize,
    /// Configurations explored.
    explored: u64,
}

impl Progress {
    /// The `Ok` entry with the earliest deadline not yet linearized; `None` once all
    /// are.
    fn bottleneck(&mut self) -> Option<usize> {
        while self.deadline_cursor < self.by_deadline.len()
            && self.linearized[self.by_deadline[self.deadline_cursor]]
        {
            self.deadline_cursor += 1;
        }
        self.by_deadline.get(self.deadline_cursor).copied()
    }

    /// Linearizes the earliest invoked poll whose records the log now holds, if it
    /// was invoked by `window` (rule 3); false if there is none.
    fn take_ready_poll(&mut self, entries: &[Entry<'_>], window: u64) -> bool {
        while self.need_cursor < self.polls_by_need.len()
            && self.polls_by_need[self.need_cursor].0 <= self.end_offset
        {
            let id = self.polls_by_need[self.need_cursor].1;
            self.ready_polls.insert((entries[id].invoked(), id));
            self.need_cursor += 1;
        }
        if let Some(&(invoked, id)) = self.ready_polls.first()
            && invoked <= window
        {
            self.ready_polls.pop_first();
            self.linearized[id] = true;
            self.witness.push(id);
            return true;
        }
        false
    }

    /// Gives the end offset to a broker marker, if one stands there: one a poll saw,
    /// or, where the broker writes `markers`, one at an offset no reply names (below
    /// the extent). False if none does.
    fn take_marker(&mut self, placement: &Placement, markers: bool) -> bool {
        // A marker takes no operation and no time; at an offset no reply names, any
        // unobserved send that could fill it is as well left out.
        let end_offset = self.end_offset;
        if end_offset < placement.extent
            && (placement.markers_at.contains(&end_offset)
                || (markers && !placement.filler_at.contains_key(&end_offset)))
        {
            self.marker_offsets.insert(end_offset);
            self.end_offset += 1;
            return true;
        }
        false
    }

    /// The send that belongs at the end offset (rules 2 and 4), and whether it fills
    /// a hole; `None` past the extent or when no send is left for a hole.
    fn filler(&self, placement: &Placement) -> Option<(usize, bool)> {
        if self.end_offset >= placement.extent {
            return None;
        }
        match placement.filler_at.get(&self.end_offset) {
            Some(&id) => Some((id, false)),
            None => placement
                .unobserved
                .get(self.holes_filled)
                .map(|&id| (id, true)),
        }
    }

    /// Linearizes send `id` at the end offset (`hole`: no reply names that offset).
    fn take_send(&mut self, id: usize, hole: bool) {
        debug_assert!(!self.linearized[id], "a send fills one offset");
        self.linearized[id] = true;
        self.witness.push(id);
        self.end_offset += 1;
        if hole {
            self.holes_filled += 1;
        }
    }
}

/// The positions fixed by the observations (rule 1), and what the search needs.
struct Placement {
    /// Entry placed at each observed offset.
    filler_at: BTreeMap<i64, usize>,
    /// Offsets a poll saw a broker marker at.
    markers_at: BTreeSet<i64>,
    /// Indefinite sends no operation observed, by (invocation, index): hole fillers.
    unobserved: Vec<usize>,
    /// One past the highest offset an `Ok` operation needs (rule 4).
    extent: i64,
}

impl<'p, 'a> Pruned<'p, 'a> {
    fn new(
        prepared: &'p Prepared<'a>,
        start_offset: i64,
        options: &LinearizabilityOptions,
    ) -> Pruned<'p, 'a> {
        Pruned {
            prepared,
            start_offset,
            configurations_max: options.configurations_max,
        }
    }

    fn entries(&self) -> &'p [Entry<'a>] {
        &self.prepared.entries
    }

    fn run(&self) -> Verdict {
        match self.place() {
            Ok(placement) => self.search(&placement),
            Err(violation) => Verdict::Illegal(violation),
        }
    }

    /// Rule 1: collect every claim of every `Ok` reply and fix positions, or find the
    /// contradiction that makes any order fail.
    fn place(&self) -> Result<Placement, Box<Violation>> {
        let entries = self.entries();
        // Visit in index order, so that the contradiction reported is the first one
        // recorded whatever the invocation times.
        let mut by_index: Vec<usize> = (0..entries.len()).collect();
        by_index.sort_by_key(|&id| entries[id].operation.index);

        let mut send_of_value: BTreeMap<u64, usize> = BTreeMap::new();
        for (id, entry) in entries.iter().enumerate() {
            if let Call::Send { value } = entry.operation.call {
                send_of_value.insert(value, id);
            }
        }

        let mut observed = Observed::default();
        let mut extent = self.start_offset;
        for &id in &by_index {
            let entry = &entries[id];
            let (claims, needs) = self.claims(entry, &send_of_value)?;
            if let Some(needs) = needs {
                extent = extent.max(needs);
            }
            for claim in claims {
                observed.add(claim, entry.operation.index)?;
            }
        }
        Ok(self.placement(&observed, &send_of_value, extent))
    }

    /// What an entry's `Ok` reply claims (which value is at which offset), and one past
    /// the highest offset it needs (rule 4); the contradiction if the reply alone
    /// makes every order fail. Indefinite sends claim nothing.
    fn claims(
        &self,
        entry: &Entry<'_>,
        send_of_value: &BTreeMap<u64, usize>,
    ) -> Result<(Vec<Claim>, Option<i64>), Box<Violation>> {
        let index = entry.operation.index;
        match (&entry.operation.call, entry.reply) {
            (&Call::Send { value }, Some(&Reply::Sent { offset })) => {
                if offset < self.start_offset {
                    return Err(contradiction(
                        index,
                        Vec::new(),
                        format!(
                            "send #{index} was acknowledged at offset {offset}, below the log start offset {}",
                            self.start_offset
                        ),
                    ));
                }
                let claim = Claim {
                    offset,
                    value,
                    by: index,
                    acknowledged: true,
                };
                Ok((vec![claim], Some(offset + 1)))
            }
            (&Call::Poll { offset: requested }, Some(Reply::Polled { records })) => {
                let claims = self.poll_claims(index, requested, records, send_of_value)?;
                Ok((claims, Some(requested + self.len_as_offset(records.len()))))
            }
            // Indefinite sends claim nothing.
            _ => Ok((Vec::new(), None)),
        }
    }

    /// What `Ok` poll `index` from offset `requested` claims by returning `records`:
    /// a contradiction if it polled below the log start, its records are not
    /// consecutive from `requested`, or one of them no send could have written.
    fn poll_claims(
        &self,
        index: usize,
        requested: i64,
        records: &[(i64, u64)],
        send_of_value: &BTreeMap<u64, usize>,
    ) -> Result<Vec<Claim>, Box<Violation>> {
        if requested < self.start_offset {
            return Err(contradiction(
                index,
                Vec::new(),
                format!(
                    "poll #{index} succeeded at offset {requested}, below the log start offset {}",
                    self.start_offset
                ),
            ));
        }
        let mut claims = Vec::new();
        for (position, &(offset, value)) in records.iter().enumerate() {
            let expected = requested + i64::try_from(position).expect("poll size fits i64");
            if offset != expected {
                return Err(contradiction(
                    index,
                    Vec::new(),
                    format!(
                        "poll #{index} from offset {requested} returned offset {offset} as its record {position}, where the log could only hold offset {expected}: records come back in order, without gaps, from the requested offset"
                    ),
                ));
            }
            match send_of_value.get(&value) {
                Some(_) => {}
                None if value == MARKER && self.prepared.markers => {}
                None => return Err(self.unwritten_read(index, offset, value)),
            }
            claims.push(Claim {
                offset,
                value,
                by: index,
                acknowledged: false,
            });
        }
        Ok(claims)
    }

    /// The contradiction of poll `index` reading `value` at `offset` when no send on
    /// the partition wrote it (none sent it, or its send failed).
    fn unwritten_read(&self, index: usize, offset: i64, value: u64) -> Box<Violation> {
        let (related, why) = match self.prepared.failed_sends.get(&value) {
            Some(failed) => (
                vec![failed.index],
                format!("its send #{} failed, so it was never written", failed.index),
            ),
            None => (Vec::new(), "no send on this partition wrote it".to_string()),
        };
        contradiction(
            index,
            related,
            format!("poll #{index} read value {value} at offset {offset}, but {why}"),
        )
    }

    /// The positions the claims fix, the offsets of markers, and the hole fillers.
    fn placement(
        &self,
        observed: &Observed,
        send_of_value: &BTreeMap<u64, usize>,
        extent: i64,
    ) -> Placement {
        let markers_at: BTreeSet<i64> = observed
            .at_offset
            .iter()
            .filter(|(_, claim)| claim.value == MARKER)
            .map(|(&offset, _)| offset)
            .collect();
        let filler_at: BTreeMap<i64, usize> = observed
            .at_offset
            .iter()
            .filter(|(_, claim)| claim.value != MARKER)
            .map(|(&offset, claim)| (offset, send_of_value[&claim.value]))
            .collect();
        // `entries` is sorted by invocation, so these are too.
        let unobserved: Vec<usize> = self
            .entries()
            .iter()
            .enumerate()
            .filter(|(_, entry)| !entry.is_ok())
            .filter(|(_, entry)| match entry.operation.call {
                Call::Send { value } => !observed.of_value.contains_key(&value),
                Call::Poll { .. } => false,
            })
            .map(|(id, _)| id)
            .collect();
        Placement {
            filler_at,
            markers_at,
            unobserved,
            extent,
        }
    }

    /// Rules 2-4: place sends by offset and polls as soon as they can be.
    fn search(&self, placement: &Placement) -> Verdict {
        let entries = self.entries();
        let mut progress = self.start();
        loop {
            let Some(bottleneck) = progress.bottleneck() else {
                return self.witnessed(&progress);
            };
            let window = entries[bottleneck]
                .deadline
                .expect("only Ok entries have deadlines");
            if progress.explored >= self.configurations_max {
                return Verdict::Unknown {
                    explored: progress.explored,
                    reason: format!(
                        "budget of {} configurations exhausted with {} of {} operations linearized",
                        self.configurations_max,
                        progress.witness.len(),
                        entries.len()
                    ),
                };
            }
            progress.explored += 1;

            // Rule 3: polls whose records the log now holds.
            if progress.take_ready_poll(entries, window) {
                continue;
            }

            // A broker marker at the end offset.
            if progress.take_marker(placement, self.prepared.markers) {
                continue;
            }

            // Rules 2 and 4: the send that belongs at the end offset, if any is needed.
            let filler = progress.filler(placement);
            if let Some((id, hole)) = filler
                && entries[id].invoked() <= window
            {
                progress.take_send(id, hole);
                continue;
            }

            let stuck = Stuck {
                bottleneck,
                window,
                end_offset: progress.end_offset,
                filler: filler.map(|(id, _)| id),
                explored: progress.explored,
            };
            return Verdict::Illegal(Box::new(self.explain(
                placement,
                &stuck,
                &progress.witness,
                &progress.linearized,
            )));
        }
    }

    /// The verdict of a search that linearized every `Ok` entry, its witness checked.
    fn witnessed(&self, progress: &Progress) -> Verdict {
        let linearization: Vec<usize> = progress
            .witness
            .iter()
            .map(|&id| self.entries()[id].operation.index)
            .collect();
        self.prepared.assert_witness(
            &progress.witness,
            self.start_offset,
            &progress.marker_offsets,
        );
        Verdict::Ok {
            linearization,
            explored: progress.explored,
        }
    }

    /// The search's progress before its first move: nothing linearized, the log at
    /// the start offset, the `Ok` entries by deadline and the polls by need.
    fn start(&self) -> Progress {
        let entries = self.entries();
        let mut by_deadline: Vec<usize> = (0..entries.len())
            .filter(|&id| entries[id].is_ok())
            .collect();
        by_deadline.sort_by_key(|&id| (entries[id].deadline, entries[id].operation.index));
        let mut polls_by_need: Vec<(i64, usize)> = entries
            .iter()
            .enumerate()
            .filter_map(|(id, entry)| match (&entry.operation.call, entry.reply) {
                (&Call::Poll { offset }, Some(Reply::Polled { records })) => {
                    Some((offset + self.len_as_offset(records.len()), id))
                }
                _ => None,
            })
            .collect();
        polls_by_need.sort_unstable();
        Progress {
            linearized: vec![false; entries.len()],
            witness: Vec::new(),
            marker_offsets: BTreeSet::new(),
            by_deadline,
            deadline_cursor: 0,
            polls_by_need,
            need_cursor: 0,
            ready_polls: BTreeSet::new(),
            end_offset: self.start_offset,
            holes_filled: 0,
            explored: 0,
        }
    }

    /// Explains why the `Ok` operation with the earliest deadline cannot be placed.
    fn explain(
        &self,
        placement: &Placement,
        stuck_at: &Stuck,
        witness: &[usize],
        linearized: &[bool],
    ) -> Violation {
        let Stuck {
            bottleneck,
            window,
            end_offset,
            filler,
            explored,
        } = *stuck_at;
        let entries = self.entries();
        let stuck = &entries[bottleneck];
        let index = stuck.operation.index;
        let needs = match (&stuck.operation.call, stuck.reply) {
            (Call::Send { .. }, Some(Reply::Sent { offset })) => format!(
                "send #{index} was acknowledged at offset {offset}, so offset {end_offset} had to be written before it completed at {window}"
            ),
            (Call::Poll { offset }, _) if stuck.records().is_empty() => format!(
                "poll #{index} succeeded at offset {offset}, so the log had to reach offset {offset} before it completed at {window}"
            ),
            (Call::Poll { .. }, _) => format!(
                "poll #{index} read up to offset {}, so offset {end_offset} had to be written before it completed at {window}",
                stuck.records().last().expect("not empty").0
            ),
            _ => unreachable!("Ok entries have replies of their call's kind"),
        };
        let hole = !placement.filler_at.contains_key(&end_offset);
        let why = match filler {
            Some(id) if hole => format!(
                "no reply names the record at offset {end_offset}, and the earliest unacknowledged send that could have written it (#{}) was invoked only at {}",
                entries[id].operation.index,
                entries[id].invoked()
            ),
            Some(id) => format!(
                "the record at offset {end_offset} is value {}, whose send #{} was invoked only at {}",
                match entries[id].operation.call {
                    Call::Send { value } => value,
                    Call::Poll { .. } => unreachable!("fillers are sends"),
                },
                entries[id].operation.index,
                entries[id].invoked()
            ),
            None => format!(
                "no reply names the record at offset {end_offset}, and no unacknowledged send is left that could have written it"
            ),
        };
        Violation {
            operation: index,
            related: filler
                .map(|id| vec![entries[id].operation.index])
                .unwrap_or_default(),
            prefix: witness
                .iter()
                .map(|&id| entries[id].operation.index)
                .collect(),
            frontier: self.prepared.frontier(window, |id| linearized[id]),
            explored,
            explanation: format!("{needs}; but {why}"),
        }
    }

    fn len_as_offset(&self, len: usize) -> i64 {
        i64::try_from(len).expect("poll size fits i64")
    }
}

/// Wing & Gong's search with Lowe's memoisation, over [`LogSpec::step`] and nothing else.
fn exhaustive(
    prepared: &Prepared<'_>,
    start_offset: i64,
    options: &LinearizabilityOptions,
) -> Verdict {
    let entries = &prepared.entries;
    let ok_total = entries.iter().filter(|entry| entry.is_ok()).count();
    let mut search = Exhaustive::new(prepared, start_offset);
    loop {
        if search.ok_done == ok_total {
            let witness: Vec<usize> = search.stack.iter().map(|frame| frame.entry).collect();
            prepared.assert_witness(&witness, start_offset, &BTreeSet::new());
            return Verdict::Ok {
                linearization: witness
                    .iter()
                    .map(|&id| entries[id].operation.index)
                    .collect(),
                explored: search.memo.len() as u64,
            };
        }
        if search.memo.len() as u64 > options.configurations_max {
            return Verdict::Unknown {
                explored: search.memo.len() as u64,
                reason: format!(
                    "budget of {} configurations exhausted (exhaustive search)",
                    options.configurations_max
                ),
            };
        }
        let window = prepared.window_by_scan(|id| is_set(&search.linearized, id));
        if search.advance(window) {
            if search.stack.len() > search.longest.len() {
                search.longest = search.stack.iter().map(|frame| frame.entry).collect();
            }
            continue;
        }
        if !search.backtrack() {
            return Verdict::Illegal(Box::new(exhaustive_violation(
                prepared,
                &search.longest,
                start_offset,
                search.memo.len() as u64,
            )));
        }
    }
}

/// Whether entry `id` is in the bitset `bits`.
fn is_set(bits: &[u64], id: usize) -> bool {
    bits[id / 64] & (1 << (id % 64)) != 0
}

/// One move of the exhaustive search: an entry linearized.
struct Frame {
    entry: usize,
    state_before: u32,
    /// Where to resume the scan of candidates after backtracking to this level.
    resume_at: usize,
}

/// The exhaustive search's configuration, its moves and its memory.
struct Exhaustive<'p, 'a> {
    prepared: &'p Prepared<'a>,
    /// Log states, interned: a configuration holds a number, not a log.
    states: Vec<LogSpec>,
    state_ids: BTreeMap<LogSpec, u32>,
    /// Every configuration explored: (entries linearized, as a bitset; log state).
    memo: BTreeSet<(Vec<u64>, u32)>,
    stack: Vec<Frame>,
    linearized: Vec<u64>,
    state: u32,
    /// `Ok` entries linearized.
    ok_done: usize,
    /// Where the scan of candidates for the next move starts.
    scan_from: usize,
    /// The longest prefix linearized so far.
    longest: Vec<usize>,
}

impl<'p, 'a> Exhaustive<'p, 'a> {
    /// The search before its first move: nothing linearized, the log at `start_offset`.
    fn new(prepared: &'p Prepared<'a>, start_offset: i64) -> Exhaustive<'p, 'a> {
        let words = prepared.entries.len().div_ceil(64);
        let states: Vec<LogSpec> =
            vec![LogSpec::starting_at(start_offset).with_markers(prepared.markers)];
        let mut state_ids: BTreeMap<LogSpec, u32> = BTreeMap::new();
        state_ids.insert(states[0].clone(), 0);
        let linearized = vec![0u64; words];
        let state: u32 = 0;
        let mut memo: BTreeSet<(Vec<u64>, u32)> = BTreeSet::new();
        memo.insert((linearized.clone(), state));
        Exhaustive {
            prepared,
            states,
            state_ids,
            memo,
            stack: Vec::new(),
            linearized,
            state,
            ok_done: 0,
            scan_from: 0,
            longest: Vec::new(),
        }
    }

    /// Makes the first move, among the entries invoked by `window` from `scan_from`
    /// on, that the specification allows and that leads to a new configuration; false
    /// if there is none.
    fn advance(&mut self, window: u64) -> bool {
        let entries = &self.prepared.entries;
        let mut id = self.scan_from;
        while id < entries.len() && entries[id].invoked() <= window {
            if !is_set(&self.linearized, id) && self.try_linearize(id) {
                return true;
            }
            id += 1;
        }
        false
    }

    /// Linearizes entry `id` next if the specification allows it there and the
    /// configuration it leads to was never explored.
    fn try_linearize(&mut self, id: usize) -> bool {
        let entry = &self.prepared.entries[id];
        let mut next = self.states[self.state as usize].clone();
        if next.apply(&entry.operation.call, entry.reply).is_err() {
            return false;
        }
        let next_id = match self.state_ids.get(&next) {
            Some(&known) => known,
            None => {
                let fresh = u32::try_from(self.states.len()).expect("states fit u32");
                self.state_ids.insert(next.clone(), fresh);
                self.states.push(next);
                fresh
            }
        };
        self.linearized[id / 64] |= 1 << (id % 64);
        if self.memo.insert((self.linearized.clone(), next_id)) {
            self.stack.push(Frame {
                entry: id,
                state_before: self.state,
                resume_at: id + 1,
            });
            self.state = next_id;
            if entry.is_ok() {
                self.ok_done += 1;
            }
            self.scan_from = 0;
            return true;
        }
        self.linearized[id / 64] &= !(1 << (id % 64));
        false
    }

    /// Undoes the last move, to resume the scan after it; false if there is none
    /// (every order fails).
    fn backtrack(&mut self) -> bool {
        let Some(frame) = self.stack.pop() else {
            return false;
        };
        self.linearized[frame.entry / 64] &= !(1 << (frame.entry % 64));
        if self.prepared.entries[frame.entry].is_ok() {
            self.ok_done -= 1;
        }
        self.state = frame.state_before;
        self.scan_from = frame.resume_at;
        true
    }
}

/// Explains an exhaustive search that found no linearization: the longest prefix and
/// the operation with the earliest deadline that could not follow it.
fn exhaustive_violation(
    prepared: &Prepared<'_>,
    longest: &[usize],
    start_offset: i64,
    explored: u64,
) -> Violation {
    let entries = &prepared.entries;
    let mut in_prefix = vec![false; entries.len()];
    let mut log = LogSpec::starting_at(start_offset).with_markers(prepared.markers);
    for &id in longest {
        in_prefix[id] = true;
        log.apply(&entries[id].operation.call, entries[id].reply)
            .expect("the prefix was linearized");
    }
    let window = prepared.window_by_scan(|id| in_prefix[id]);
    let stuck = entries
        .iter()
        .enumerate()
        .filter(|(id, entry)| !in_prefix[*id] && entry.deadline == Some(window))
        .map(|(_, entry)| entry.operation.index)
        .min()
        .expect("a dead end has an Ok operation left");
    Violation {
        operation: stuck,
        related: Vec::new(),
        prefix: longest
            .iter()
            .map(|&id| entries[id].operation.index)
            .collect(),
        frontier: prepared.frontier(window, |id| in_prefix[id]),
        explored,
        explanation: format!(
            "no order of the operations gets past {} of them: after the longest prefix the log ends at offset {}, and #{stuck} must take effect by {window} but neither it nor any operation allowed before it fits the log",
            longest.len(),
            log.end_offset()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ProcessId;

    fn key() -> PartitionKey {
        PartitionKey {
            topic: "t".into(),
            partition: 0,
        }
    }

    /// A hand-built history: each call names its interval and outcome.
    #[derive(Default)]
    struct Builder {
        history: History,
    }

    impl Builder {
        fn send(
            &mut self,
            process: u64,
            value: u64,
            interval: (u64, u64),
            offset: Option<i64>,
        ) -> usize {
            let index =
                self.history
                    .invoke(ProcessId(process), key(), Call::Send { value }, interval.0);
            let outcome = match offset {
                Some(offset) => Outcome::Ok(Reply::Sent { offset }),
                None => Outcome::Indefinite("timeout".into()),
            };
            self.history.complete(index, outcome, interval.1);
            index
        }

        fn failed_send(&mut self, process: u64, value: u64, interval: (u64, u64)) -> usize {
            let index =
                self.history
                    .invoke(ProcessId(process), key(), Call::Send { value }, interval.0);
            self.history
                .complete(index, Outcome::Fail("refused".into()), interval.1);
            index
        }

        fn pending_send(&mut self, process: u64, value: u64, invoked: u64) -> usize {
            self.history
                .invoke(ProcessId(process), key(), Call::Send { value }, invoked)
        }

        fn poll(
            &mut self,
            process: u64,
            offset: i64,
            interval: (u64, u64),
            records: &[(i64, u64)],
        ) -> usize {
            let index =
                self.history
                    .invoke(ProcessId(process), key(), Call::Poll { offset }, interval.0);
            self.history.complete(
                index,
                Outcome::Ok(Reply::Polled {
                    records: records.to_vec(),
                }),
                interval.1,
            );
            index
        }

        fn check_with(&self, search: Search) -> Verdict {
            let options = LinearizabilityOptions {
                search,
                ..LinearizabilityOptions::default()
            };
            check_partition(&self.history, &key(), 0, &options)
        }

        /// Both searches, which must agree; returns the pruned one's verdict.
        fn check(&self) -> Verdict {
            let pruned = self.check_with(Search::Pruned);
            let exhaustive = self.check_with(Search::Exhaustive);
            assert_eq!(
                pruned.is_ok(),
                exhaustive.is_ok(),
                "searches disagree: pruned {pruned:?}, exhaustive {exhaustive:?}"
            );
            pruned
        }
    }

    /// The pruned search with broker markers allowed (the exhaustive one does not
    /// model unobserved markers; see [`LinearizabilityOptions::broker_markers`]).
    fn check_with_markers(builder: &Builder) -> Verdict {
        let options = LinearizabilityOptions {
            broker_markers: true,
            ..LinearizabilityOptions::default()
        };
        check_partition(&builder.history, &key(), 0, &options)
    }

    #[test]
    fn broker_markers_take_offsets_only_when_allowed() {
        // A leader's marker at 0, a send at 1, a poll that sees both.
        let mut h = Builder::default();
        h.send(1, 10, (10, 20), Some(1));
        h.poll(2, 0, (30, 40), &[(0, MARKER), (1, 10)]);
        assert!(check_with_markers(&h).is_ok());
        assert!(
            !h.check_with(Search::Pruned).is_ok(),
            "no markers: 0 is a hole"
        );

        // Unobserved markers before a send: a gap no reply names.
        let mut h = Builder::default();
        h.send(1, 10, (10, 20), Some(3));
        h.send(1, 11, (30, 40), Some(4));
        assert!(check_with_markers(&h).is_ok());
        assert!(!h.check_with(Search::Pruned).is_ok());

        // A poll that starts past the end (a consumer that seeked over markers to the
        // high watermark) and reads nothing.
        let mut h = Builder::default();
        h.send(1, 10, (10, 20), Some(0));
        h.poll(2, 2, (30, 40), &[]);
        assert!(check_with_markers(&h).is_ok());
        assert!(!h.check_with(Search::Pruned).is_ok());
    }

    #[test]
    fn a_marker_never_stands_where_a_record_was_seen() {
        // The send was acknowledged at 0; a later poll says 0 holds a marker.
        let mut h = Builder::default();
        h.send(1, 10, (10, 20), Some(0));
        h.poll(2, 0, (30, 40), &[(0, MARKER)]);
        assert!(!check_with_markers(&h).is_ok());

        // A record read at 1, then a marker read at 1.
        let mut h = Builder::default();
        h.send(1, 10, (10, 20), Some(1));
        h.poll(2, 1, (30, 40), &[(1, 10)]);
        h.poll(3, 1, (50, 60), &[(1, MARKER)]);
        assert!(!check_with_markers(&h).is_ok());

        // A record seen beyond the end before its send was invoked.
        let mut h = Builder::default();
        h.poll(2, 0, (10, 20), &[(0, MARKER), (1, 11)]);
        h.send(1, 11, (30, 40), Some(1));
        assert!(!check_with_markers(&h).is_ok());
    }

    #[test]
    fn an_indefinite_send_read_after_a_marker_is_placed_after_it() {
        // The witness replay must put the marker before the send the poll saw at 1.
        let mut h = Builder::default();
        h.send(1, 10, (10, 20), None);
        h.poll(2, 0, (30, 40), &[(0, MARKER), (1, 10)]);
        match check_with_markers(&h) {
            Verdict::Ok { linearization, .. } => assert_eq!(linearization, vec![0, 1]),
            other => panic!("expected Ok, got {other:?}"),
        }
    }

    fn violation(verdict: Verdict) -> Violation {
        match verdict {
            Verdict::Illegal(violation) => *violation,
            other => panic!("expected Illegal, got {other:?}"),
        }
    }

    #[test]
    fn an_empty_history_is_linearizable() {
        assert!(Builder::default().check().is_ok());
    }

    #[test]
    fn sequential_sends_and_a_poll() {
        let mut h = Builder::default();
        let a = h.send(1, 10, (0, 1), Some(0));
        let b = h.send(1, 11, (2, 3), Some(1));
        let p = h.poll(2, 0, (4, 5), &[(0, 10), (1, 11)]);
        match h.check() {
            Verdict::Ok { linearization, .. } => assert_eq!(linearization, vec![a, b, p]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn concurrent_sends_may_take_either_order() {
        let mut h = Builder::default();
        // Invoked in one order, acknowledged in the other: fine while they overlap.
        h.send(1, 10, (0, 10), Some(1));
        h.send(2, 11, (1, 9), Some(0));
        h.poll(3, 0, (11, 12), &[(0, 11), (1, 10)]);
        assert!(h.check().is_ok());
    }

    #[test]
    fn reordered_offsets_of_sequential_sends_are_illegal() {
        let mut h = Builder::default();
        let first = h.send(1, 10, (0, 1), Some(1));
        let second = h.send(1, 11, (2, 3), Some(0));
        let v = violation(h.check());
        assert_eq!(v.operation, first, "{v:?}");
        assert_eq!(v.related, vec![second]);
        assert!(
            v.explanation.contains("invoked only at 2"),
            "{}",
            v.explanation
        );
    }

    #[test]
    fn a_concurrent_indefinite_send_explains_a_poll() {
        let mut h = Builder::default();
        let send = h.send(1, 10, (0, 100), None);
        h.poll(2, 0, (5, 6), &[(0, 10)]);
        match h.check() {
            Verdict::Ok { linearization, .. } => assert_eq!(linearization[0], send),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_indefinite_send_invoked_after_the_poll_cannot_explain_it() {
        let mut h = Builder::default();
        let poll = h.poll(2, 0, (5, 6), &[(0, 10)]);
        let send = h.send(1, 10, (7, 100), None);
        let v = violation(h.check());
        assert_eq!(v.operation, poll);
        assert_eq!(v.related, vec![send]);
        assert!(v.prefix.is_empty());
        assert_eq!(v.frontier, vec![poll]);
    }

    #[test]
    fn a_poll_returning_a_value_before_its_send_was_invoked_is_illegal() {
        let mut h = Builder::default();
        let poll = h.poll(2, 0, (0, 5), &[(0, 10)]);
        let send = h.send(1, 10, (6, 7), Some(0));
        let v = violation(h.check());
        assert_eq!(v.operation, poll);
        assert_eq!(v.related, vec![send]);
    }

    #[test]
    fn never_completed_sends_may_or_may_not_have_happened() {
        let mut h = Builder::default();
        h.pending_send(1, 10, 0);
        h.pending_send(2, 11, 1);
        h.poll(3, 0, (2, 3), &[(0, 11)]);
        assert!(h.check().is_ok(), "11 happened, 10 not (yet)");
    }

    #[test]
    fn unobserved_indefinite_sends_fill_holes_below_acknowledged_offsets() {
        let mut h = Builder::default();
        h.send(1, 10, (0, 1), None);
        h.send(2, 11, (0, 1), None);
        h.send(3, 12, (2, 3), Some(2));
        assert!(h.check().is_ok(), "10 and 11 took offsets 0 and 1");

        let mut h = Builder::default();
        h.send(1, 10, (0, 1), None);
        let acked = h.send(3, 12, (2, 3), Some(2));
        let v = violation(h.check());
        assert_eq!(
            v.operation, acked,
            "one indefinite send cannot fill two offsets"
        );
        assert!(v.related.is_empty());
        assert!(
            v.explanation.contains("no unacknowledged send is left"),
            "{}",
            v.explanation
        );
    }

    #[test]
    fn a_hole_filler_must_be_invoked_in_time() {
        let mut h = Builder::default();
        let acked = h.send(1, 12, (0, 3), Some(1));
        let late = h.send(2, 10, (4, 5), None);
        let v = violation(h.check());
        assert_eq!(v.operation, acked);
        assert_eq!(v.related, vec![late]);
    }

    #[test]
    fn failed_sends_never_take_effect() {
        let mut h = Builder::default();
        let failed = h.failed_send(1, 10, (0, 1));
        let poll = h.poll(2, 0, (2, 3), &[(0, 10)]);
        let v = violation(h.check());
        assert_eq!(v.operation, poll);
        assert_eq!(v.related, vec![failed]);
        assert!(v.explanation.contains("failed"), "{}", v.explanation);

        let mut h = Builder::default();
        h.failed_send(1, 10, (0, 1));
        h.send(1, 11, (2, 3), Some(0));
        assert!(h.check().is_ok(), "a failed send leaves no hole");
    }

    #[test]
    fn a_phantom_value_is_illegal() {
        let mut h = Builder::default();
        let poll = h.poll(2, 0, (2, 3), &[(0, 99)]);
        let v = violation(h.check());
        assert_eq!(v.operation, poll);
        assert!(v.explanation.contains("no send"), "{}", v.explanation);
    }

    #[test]
    fn polls_may_return_fewer_records_but_not_more() {
        let mut h = Builder::default();
        h.send(1, 10, (0, 1), Some(0));
        h.send(1, 11, (2, 3), Some(1));
        h.poll(2, 0, (4, 5), &[(0, 10)]);
        h.poll(2, 1, (6, 7), &[]);
        h.poll(2, 2, (8, 9), &[]);
        assert!(h.check().is_ok());

        let mut h = Builder::default();
        h.send(1, 10, (0, 1), Some(0));
        let beyond = h.poll(2, 2, (4, 5), &[]);
        let v = violation(h.check());
        assert_eq!(v.operation, beyond, "an Ok poll beyond the end");
    }

    #[test]
    fn a_poll_with_a_gap_is_illegal() {
        let mut h = Builder::default();
        h.send(1, 10, (0, 1), Some(0));
        h.send(1, 11, (2, 3), Some(1));
        h.send(1, 12, (4, 5), Some(2));
        let poll = h.poll(2, 0, (6, 7), &[(0, 10), (2, 12)]);
        let v = violation(h.check());
        assert_eq!(v.operation, poll);
        assert!(v.explanation.contains("without gaps"), "{}", v.explanation);
    }

    #[test]
    fn two_values_at_one_offset_are_illegal() {
        let mut h = Builder::default();
        let send = h.send(1, 10, (0, 1), Some(0));
        h.send(1, 11, (2, 3), None);
        let poll = h.poll(2, 0, (6, 7), &[(0, 11)]);
        let v = violation(h.check());
        assert_eq!(v.operation, poll);
        assert_eq!(v.related, vec![send]);
    }

    #[test]
    fn a_duplicate_after_a_retry_is_illegal() {
        let mut h = Builder::default();
        // The first attempt timed out but was written; the client's retry is a new
        // operation with a new value, yet the log shows the first value twice.
        h.send(1, 10, (0, 5), None);
        h.send(1, 11, (6, 7), Some(1));
        let poll = h.poll(2, 0, (8, 9), &[(0, 10), (1, 11), (2, 10)]);
        let v = violation(h.check());
        assert_eq!(v.operation, poll);
        assert!(
            v.explanation.contains("one send writes one record"),
            "{}",
            v.explanation
        );
    }

    #[test]
    fn a_stale_read_after_a_later_read_is_linearizable() {
        // Polls have no upper bound: returning fewer records than exist is allowed.
        let mut h = Builder::default();
        h.send(1, 10, (0, 1), Some(0));
        h.send(1, 11, (2, 3), Some(1));
        h.poll(2, 0, (4, 5), &[(0, 10), (1, 11)]);
        h.poll(2, 0, (6, 7), &[(0, 10)]);
        assert!(h.check().is_ok());
    }

    #[test]
    fn a_log_starting_past_zero() {
        let mut h = Builder::default();
        h.send(1, 10, (0, 1), Some(100));
        h.poll(2, 100, (2, 3), &[(100, 10)]);
        let options = LinearizabilityOptions::default();
        assert!(check_partition(&h.history, &key(), 100, &options).is_ok());
        // Against a log starting at 0, offsets 0..99 have no writer.
        assert!(check_partition(&h.history, &key(), 0, &options).is_illegal());
        // Below the start, nothing can be acknowledged.
        assert!(check_partition(&h.history, &key(), 101, &options).is_illegal());
    }

    #[test]
    fn the_budget_yields_unknown_never_a_pass() {
        let mut h = Builder::default();
        for i in 0..100u64 {
            h.send(
                1,
                i,
                (2 * i, 2 * i + 1),
                Some(i64::try_from(i).expect("small")),
            );
        }
        for search in [Search::Pruned, Search::Exhaustive] {
            let options = LinearizabilityOptions {
                configurations_max: 10,
                search,
                broker_markers: false,
            };
            match check_partition(&h.history, &key(), 0, &options) {
                Verdict::Unknown { explored, reason } => {
                    assert!(explored >= 10, "{search:?}: {explored}");
                    assert!(reason.contains("budget"), "{reason}");
                }
                other => panic!("{search:?}: expected Unknown, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_exhaustive_search_reports_its_longest_prefix() {
        let mut h = Builder::default();
        let a = h.send(1, 10, (0, 1), Some(0));
        let b = h.send(1, 11, (2, 3), Some(2));
        let v = violation(h.check_with(Search::Exhaustive));
        assert_eq!(v.prefix, vec![a]);
        assert_eq!(v.operation, b);
        assert_eq!(v.frontier, vec![b]);
    }

    #[test]
    #[should_panic(expected = "unique values")]
    fn two_sends_of_one_value_are_a_workload_bug() {
        let mut h = Builder::default();
        h.send(1, 10, (0, 1), Some(0));
        h.send(2, 10, (0, 1), Some(1));
        h.check_with(Search::Pruned);
    }
}
