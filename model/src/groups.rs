//! Consumer-group histories and the safety checks on them.
//!
//! A group workload records three kinds of events besides the sends and polls of
//! [`crate::history`]: the assignment a member received (a successful SyncGroup), the
//! offset commits it made, and the committed offsets it read back (OffsetFetch).
//! [`check_groups`] decides whether they are allowed:
//!
//! 1. **One owner per partition per generation.** Two members never hold the same
//!    partition in one generation of a group ([`GroupViolationKind::SharedOwnership`]).
//!    A coordinator that forgets to bump the generation at a rebalance shows up here:
//!    the old and the new owner both believe they are in generation N.
//! 2. **One assignment per member per generation.** A member told two different
//!    assignments in the same generation ([`GroupViolationKind::ReassignedInGeneration`]).
//! 3. **Generations only rise for a member** ([`GroupViolationKind::GenerationWentBack`]).
//! 4. **Acknowledged commits are not lost.** The committed offset of a partition is a
//!    register. An OffsetFetch must return the value of some commit that may have
//!    happened before it (acknowledged or indefinite, invoked before the fetch
//!    completed) and that is not older than an acknowledged commit that completed
//!    before the fetch began ([`GroupViolationKind::CommitLost`]). A coordinator that
//!    acknowledges a commit before it is replicated and durable shows up here after a
//!    crash or failover.
//!
//! The checker never sees the broker: it trusts only what members were told.
//!
//! ```
//! use odradek_model::groups::{CommitOutcome, GroupHistory, check_groups};
//! use odradek_model::history::PartitionKey;
//!
//! let p0 = PartitionKey { topic: "t".into(), partition: 0 };
//! let mut history = GroupHistory::default();
//! history.assigned("g", "a", 1, vec![p0.clone()], 10);
//! history.commit("g", "a", 1, p0.clone(), 5, 20, 30, CommitOutcome::Ok);
//! history.fetched("g", p0, Some(5), 40, 50);
//! assert!(check_groups(&history).is_empty());
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::history::PartitionKey;

/// How an offset commit ended, as the member saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The coordinator acknowledged it.
    Ok,
    /// It certainly did not happen (an error such as ILLEGAL_GENERATION).
    Fail,
    /// Unknown (timeout, lost connection, NOT_COORDINATOR after sending).
    Indefinite,
}

/// A member received its assignment for a generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assignment {
    /// The group.
    pub group: String,
    /// The member id the coordinator gave it.
    pub member: String,
    /// The generation.
    pub generation: i32,
    /// The partitions it was given.
    pub partitions: BTreeSet<PartitionKey>,
    /// When the SyncGroup answer arrived (global ns).
    pub at: u64,
}

/// One offset commit of one partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    /// The group.
    pub group: String,
    /// The member that committed.
    pub member: String,
    /// The generation it committed in.
    pub generation: i32,
    /// The partition.
    pub partition: PartitionKey,
    /// The offset committed (the next one to consume).
    pub offset: i64,
    /// Invocation time (global ns).
    pub invoked_at: u64,
    /// Completion time; `u64::MAX` if the run ended first.
    pub completed_at: u64,
    /// How it ended.
    pub outcome: CommitOutcome,
}

/// A committed offset read back with OffsetFetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The group.
    pub group: String,
    /// The partition.
    pub partition: PartitionKey,
    /// The offset returned; `None` when the group had no offset for it.
    pub offset: Option<i64>,
    /// Invocation time (global ns).
    pub invoked_at: u64,
    /// Completion time (global ns).
    pub completed_at: u64,
}

/// Everything a group workload recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupHistory {
    /// Assignments, in the order recorded.
    pub assignments: Vec<Assignment>,
    /// Commits, in the order recorded.
    pub commits: Vec<Commit>,
    /// Offset fetches that succeeded, in the order recorded.
    pub fetches: Vec<Fetched>,
}

impl GroupHistory {
    /// Records that `member` of `group` was assigned `partitions` in `generation`.
    pub fn assigned(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        partitions: Vec<PartitionKey>,
        at: u64,
    ) {
        self.assignments.push(Assignment {
            group: group.to_string(),
            member: member.to_string(),
            generation,
            partitions: partitions.into_iter().collect(),
            at,
        });
    }

    /// Records one partition's commit.
    #[allow(clippy::too_many_arguments)]
    pub fn commit(
        &mut self,
        group: &str,
        member: &str,
        generation: i32,
        partition: PartitionKey,
        offset: i64,
        invoked_at: u64,
        completed_at: u64,
        outcome: CommitOutcome,
    ) {
        self.commits.push(Commit {
            group: group.to_string(),
            member: member.to_string(),
            generation,
            partition,
            offset,
            invoked_at,
            completed_at,
            outcome,
        });
    }

    /// Records one partition's committed offset as an OffsetFetch returned it.
    pub fn fetched(
        &mut self,
        group: &str,
        partition: PartitionKey,
        offset: Option<i64>,
        invoked_at: u64,
        completed_at: u64,
    ) {
        self.fetches.push(Fetched {
            group: group.to_string(),
            partition,
            offset,
            invoked_at,
            completed_at,
        });
    }
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupViolationKind {
    /// Two members own one partition in one generation.
    SharedOwnership,
    /// One member got two different assignments in one generation.
    ReassignedInGeneration,
    /// A member saw a generation lower than one it saw before.
    GenerationWentBack,
    /// An OffsetFetch returned a value older than an acknowledged commit.
    CommitLost,
}

/// One violation, with a sentence saying what and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupViolation {
    /// Which rule.
    pub kind: GroupViolationKind,
    /// The group.
    pub group: String,
    /// What happened, for a person.
    pub explanation: String,
}

impl fmt::Display for GroupViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "group {}: {:?}: {}",
            self.group, self.kind, self.explanation
        )
    }
}

/// Checks every rule of the module docs; an empty list means the history is allowed.
pub fn check_groups(history: &GroupHistory) -> Vec<GroupViolation> {
    let mut violations = Vec::new();
    check_ownership(history, &mut violations);
    check_generations(history, &mut violations);
    check_commits(history, &mut violations);
    violations
}

fn check_ownership(history: &GroupHistory, violations: &mut Vec<GroupViolation>) {
    // (group, generation) → member → its first assignment in that generation.
    let mut seen: BTreeMap<(&str, i32), BTreeMap<&str, &Assignment>> = BTreeMap::new();
    for assignment in &history.assignments {
        let members = seen
            .entry((assignment.group.as_str(), assignment.generation))
            .or_default();
        if let Some(earlier) = members.get(assignment.member.as_str()) {
            if earlier.partitions != assignment.partitions {
                violations.push(GroupViolation {
                    kind: GroupViolationKind::ReassignedInGeneration,
                    group: assignment.group.clone(),
                    explanation: format!(
                        "member {} was assigned {} at {} ns and {} at {} ns, both in generation {}",
                        assignment.member,
                        list(&earlier.partitions),
                        earlier.at,
                        list(&assignment.partitions),
                        assignment.at,
                        assignment.generation
                    ),
                });
            }
            continue;
        }
        for (other, earlier) in members.iter() {
            let shared: BTreeSet<PartitionKey> = earlier
                .partitions
                .intersection(&assignment.partitions)
                .cloned()
                .collect();
            if !shared.is_empty() {
                violations.push(GroupViolation {
                    kind: GroupViolationKind::SharedOwnership,
                    group: assignment.group.clone(),
                    explanation: format!(
                        "members {other} (at {} ns) and {} (at {} ns) both own {} in generation {}",
                        earlier.at,
                        assignment.member,
                        assignment.at,
                        list(&shared),
                        assignment.generation
                    ),
                });
            }
        }
        members.insert(assignment.member.as_str(), assignment);
    }
}

fn check_generations(history: &GroupHistory, violations: &mut Vec<GroupViolation>) {
    let mut latest: BTreeMap<(&str, &str), (i32, u64)> = BTreeMap::new();
    let mut ordered: Vec<&Assignment> = history.assignments.iter().collect();
    ordered.sort_by_key(|a| a.at);
    for assignment in ordered {
        let key = (assignment.group.as_str(), assignment.member.as_str());
        if let Some(&(generation, at)) = latest.get(&key)
            && assignment.generation < generation
        {
            violations.push(GroupViolation {
                kind: GroupViolationKind::GenerationWentBack,
                group: assignment.group.clone(),
                explanation: format!(
                    "member {} was in generation {generation} at {at} ns and in generation {} at {} ns",
                    assignment.member, assignment.generation, assignment.at
                ),
            });
        }
        latest.insert(key, (assignment.generation, assignment.at));
    }
}

fn check_commits(history: &GroupHistory, violations: &mut Vec<GroupViolation>) {
    let mut by_key: BTreeMap<(&str, &PartitionKey), Vec<&Commit>> = BTreeMap::new();
    for commit in &history.commits {
        by_key
            .entry((commit.group.as_str(), &commit.partition))
            .or_default()
            .push(commit);
    }
    for fetch in &history.fetches {
        let commits = by_key
            .get(&(fetch.group.as_str(), &fetch.partition))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        // Acknowledged commits that completed before the fetch began: the fetch must
        // not return anything older than any of them.
        let before: Vec<&Commit> = commits
            .iter()
            .copied()
            .filter(|c| c.outcome == CommitOutcome::Ok && c.completed_at < fetch.invoked_at)
            .collect();
        if before.is_empty() {
            continue;
        }
        // Candidates: commits that may have taken effect before the fetch answered and
        // are not superseded in real time by one of `before`.
        let explained = commits.iter().any(|candidate| {
            candidate.outcome != CommitOutcome::Fail
                && candidate.invoked_at < fetch.completed_at
                && Some(candidate.offset) == fetch.offset
                && before.iter().all(|acked| {
                    std::ptr::eq(*acked, *candidate) || candidate.completed_at >= acked.invoked_at
                })
        });
        if !explained {
            let newest = before
                .iter()
                .max_by_key(|c| c.completed_at)
                .expect("not empty");
            violations.push(GroupViolation {
                kind: GroupViolationKind::CommitLost,
                group: fetch.group.clone(),
                explanation: format!(
                    "OffsetFetch of {} at {}..{} ns returned {}, but member {} had offset {} acknowledged at {} ns (generation {})",
                    fetch.partition,
                    fetch.invoked_at,
                    fetch.completed_at,
                    fetch
                        .offset
                        .map_or("no offset".to_string(), |o| o.to_string()),
                    newest.member,
                    newest.offset,
                    newest.completed_at,
                    newest.generation
                ),
            });
        }
    }
}

fn list(partitions: &BTreeSet<PartitionKey>) -> String {
    let names: Vec<String> = partitions.iter().map(ToString::to_string).collect();
    format!("[{}]", names.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(partition: i32) -> PartitionKey {
        PartitionKey {
            topic: "t".into(),
            partition,
        }
    }

    fn kinds(history: &GroupHistory) -> Vec<GroupViolationKind> {
        check_groups(history).into_iter().map(|v| v.kind).collect()
    }

    #[test]
    fn a_clean_rebalance_passes() {
        let mut h = GroupHistory::default();
        h.assigned("g", "a", 1, vec![p(0), p(1)], 10);
        h.assigned("g", "a", 2, vec![p(0)], 30);
        h.assigned("g", "b", 2, vec![p(1)], 31);
        h.commit("g", "a", 1, p(1), 4, 11, 12, CommitOutcome::Ok);
        h.fetched("g", p(1), Some(4), 32, 33);
        h.commit("g", "b", 2, p(1), 9, 40, 41, CommitOutcome::Ok);
        h.fetched("g", p(1), Some(9), 50, 51);
        assert_eq!(kinds(&h), vec![]);
    }

    #[test]
    fn two_owners_in_one_generation_are_caught() {
        // The coordinator forgot to bump the generation: a still believes it owns 1.
        let mut h = GroupHistory::default();
        h.assigned("g", "a", 1, vec![p(0), p(1)], 10);
        h.assigned("g", "b", 1, vec![p(1)], 20);
        assert_eq!(kinds(&h), vec![GroupViolationKind::SharedOwnership]);
        // Different groups may own the same partition.
        let mut h = GroupHistory::default();
        h.assigned("g", "a", 1, vec![p(0)], 10);
        h.assigned("other", "b", 1, vec![p(0)], 20);
        assert_eq!(kinds(&h), vec![]);
    }

    #[test]
    fn a_member_reassigned_within_a_generation_is_caught() {
        let mut h = GroupHistory::default();
        h.assigned("g", "a", 3, vec![p(0), p(1)], 10);
        h.assigned("g", "a", 3, vec![p(0)], 20);
        assert_eq!(kinds(&h), vec![GroupViolationKind::ReassignedInGeneration]);
        // The same answer twice (a retried SyncGroup) is fine.
        let mut h = GroupHistory::default();
        h.assigned("g", "a", 3, vec![p(0)], 10);
        h.assigned("g", "a", 3, vec![p(0)], 20);
        assert_eq!(kinds(&h), vec![]);
    }

    #[test]
    fn generations_going_back_are_caught() {
        let mut h = GroupHistory::default();
        h.assigned("g", "a", 4, vec![p(0)], 10);
        h.assigned("g", "a", 2, vec![p(0)], 20);
        assert_eq!(kinds(&h), vec![GroupViolationKind::GenerationWentBack]);
    }

    #[test]
    fn a_lost_acknowledged_commit_is_caught() {
        let mut h = GroupHistory::default();
        h.commit("g", "a", 1, p(0), 5, 10, 20, CommitOutcome::Ok);
        h.commit("g", "a", 1, p(0), 8, 30, 40, CommitOutcome::Ok);
        // After a failover the new coordinator returns the older value.
        h.fetched("g", p(0), Some(5), 50, 60);
        assert_eq!(kinds(&h), vec![GroupViolationKind::CommitLost]);
        // Or nothing at all.
        let mut h = GroupHistory::default();
        h.commit("g", "a", 1, p(0), 5, 10, 20, CommitOutcome::Ok);
        h.fetched("g", p(0), None, 50, 60);
        assert_eq!(kinds(&h), vec![GroupViolationKind::CommitLost]);
    }

    #[test]
    fn concurrent_and_indefinite_commits_may_win() {
        let mut h = GroupHistory::default();
        h.commit("g", "a", 1, p(0), 8, 10, 20, CommitOutcome::Ok);
        // b's commit overlapped a's: either may be the last write.
        h.commit("g", "b", 1, p(0), 6, 15, 25, CommitOutcome::Ok);
        h.fetched("g", p(0), Some(6), 30, 31);
        h.fetched("g", p(0), Some(8), 32, 33);
        // An indefinite commit invoked later may have taken effect.
        h.commit(
            "g",
            "a",
            1,
            p(0),
            11,
            40,
            u64::MAX,
            CommitOutcome::Indefinite,
        );
        h.fetched("g", p(0), Some(11), 50, 51);
        // A failed one may not.
        h.commit("g", "a", 1, p(0), 99, 60, 61, CommitOutcome::Fail);
        h.fetched("g", p(0), Some(99), 70, 71);
        assert_eq!(kinds(&h), vec![GroupViolationKind::CommitLost]);
    }

    #[test]
    fn a_commit_superseded_in_real_time_cannot_come_back() {
        let mut h = GroupHistory::default();
        h.commit("g", "a", 1, p(0), 5, 10, 20, CommitOutcome::Ok);
        h.commit("g", "a", 1, p(0), 8, 30, 40, CommitOutcome::Ok);
        // 5 was overwritten by 8 before the fetch began.
        h.fetched("g", p(0), Some(5), 50, 60);
        let violations = check_groups(&h);
        assert_eq!(violations.len(), 1);
        assert!(
            violations[0].explanation.contains("offset 8"),
            "{}",
            violations[0]
        );
    }
}
