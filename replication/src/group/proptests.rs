//! A property test: random clients join, sync, heartbeat, leave, commit, restart and
//! go silent while time passes, commits are delayed and the coordinator fails over;
//! after every step the coordinator's invariants (`Coordinator::check_invariants`) must hold.
//!
//! The clients' assignment encoding is ours (the coordinator treats assignments as
//! opaque bytes): one byte per partition of topic "t" the member owns. The leader
//! splits the partitions round-robin over the member list of its JoinGroup answer.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::{DeleteGroupsRequest, GroupId, RequestKind, ResponseKind};
use proptest::prelude::*;

use super::tests::{Harness, test_config, text};
use super::*;

const GROUP: &str = "g";
const TOPIC: &str = "t";
const TOPIC_PARTITIONS: u8 = 3;
const CLIENTS: usize = 4;

const NONE: i16 = 0;
const NOT_COORDINATOR: i16 = 16;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const MEMBER_ID_REQUIRED: i16 = 79;

#[derive(Clone, Debug)]
enum Op {
    /// The client does what a consumer's poll loop would do next: join, sync or
    /// heartbeat.
    Poll(usize),
    Join(usize),
    Sync(usize),
    Heartbeat(usize),
    Leave(usize),
    Commit {
        client: usize,
        partition: u8,
        offset: u16,
    },
    /// A commit outside group management (generation -1, no member id).
    SimpleCommit {
        partition: u8,
        offset: u16,
    },
    /// The client's process restarts: it forgets its member id (a static member keeps
    /// its instance id).
    Restart(usize),
    Advance {
        ms: u16,
    },
    /// Stop (or resume) committing appends at once.
    DelayCommits(bool),
    CommitLog,
    FailOver {
        keep_uncommitted: bool,
    },
    Delete,
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0..CLIENTS;
    prop_oneof![
        12 => client.clone().prop_map(Op::Poll),
        2 => client.clone().prop_map(Op::Join),
        2 => client.clone().prop_map(Op::Sync),
        3 => client.clone().prop_map(Op::Heartbeat),
        1 => client.clone().prop_map(Op::Leave),
        3 => (client.clone(), 0..TOPIC_PARTITIONS, any::<u16>())
            .prop_map(|(client, partition, offset)| Op::Commit { client, partition, offset }),
        1 => (0..TOPIC_PARTITIONS, any::<u16>())
            .prop_map(|(partition, offset)| Op::SimpleCommit { partition, offset }),
        1 => client.prop_map(Op::Restart),
        4 => (0u16..3_000).prop_map(|ms| Op::Advance { ms }),
        1 => (0u16..40_000).prop_map(|ms| Op::Advance { ms }),
        1 => any::<bool>().prop_map(Op::DelayCommits),
        1 => Just(Op::CommitLog),
        1 => any::<bool>().prop_map(|keep_uncommitted| Op::FailOver { keep_uncommitted }),
        1 => Just(Op::Delete),
    ]
}

/// What one client knows.
#[derive(Clone, Debug, Default)]
struct Client {
    instance_id: Option<String>,
    member_id: String,
    generation: i32,
    /// The member list, when the last JoinGroup made this client leader.
    leader_of: Option<Vec<String>>,
    skip_assignment: bool,
    /// Has its assignment for `generation`.
    synced: bool,
    /// Was told to rejoin.
    needs_rejoin: bool,
    join: Option<RequestId>,
    sync: Option<RequestId>,
}

/// The checks' memory of what the coordinator acknowledged.
#[derive(Debug, Default)]
struct Model {
    /// Commit requests in flight: id → (partition, offset) pairs.
    commits: BTreeMap<RequestId, Vec<(i32, i64)>>,
    /// The acknowledged offset of each partition.
    acknowledged: BTreeMap<i32, i64>,
    /// Partitions whose last commit failed in a way that may or may not have written it.
    indefinite: BTreeSet<i32>,
    /// Per generation, which client owns each partition (from SyncGroup answers).
    owners: BTreeMap<i32, BTreeMap<u8, usize>>,
    /// The highest generation whose assignment was acknowledged (hence durable).
    durable_generation: i32,
    /// The last generation seen, to check that it only rises between failovers.
    last_generation: Option<i32>,
    deletes: Vec<RequestId>,
}

fn assignment_for(members: &[String], member: &str) -> Vec<u8> {
    let index = members.iter().position(|m| m == member).expect("a member");
    (0..TOPIC_PARTITIONS)
        .filter(|p| usize::from(*p) % members.len() == index)
        .collect()
}

struct World {
    h: Harness,
    clients: Vec<Client>,
    model: Model,
}

impl World {
    fn new() -> World {
        let config = GroupConfig {
            group_initial_rebalance_delay_ms: 0,
            ..test_config()
        };
        let clients = (0..CLIENTS)
            .map(|i| Client {
                // Half the clients are static members (KIP-345).
                instance_id: i.is_multiple_of(2).then(|| format!("instance-{i}")),
                generation: -1,
                ..Client::default()
            })
            .collect();
        World {
            h: Harness::new(config),
            clients,
            model: Model::default(),
        }
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Poll(i) => {
                let client = &self.clients[i];
                let next = if client.join.is_some() || client.sync.is_some() {
                    None
                } else if client.generation <= 0 || client.needs_rejoin {
                    Some(Op::Join(i))
                } else if !client.synced {
                    Some(Op::Sync(i))
                } else {
                    Some(Op::Heartbeat(i))
                };
                if let Some(next) = next {
                    self.step(&next);
                    return;
                }
            }
            Op::Join(i) => {
                if self.clients[i].join.is_none() {
                    let client = &self.clients[i];
                    let (member_id, instance_id) =
                        (client.member_id.clone(), client.instance_id.clone());
                    let id = self.h.join_with(
                        7,
                        GROUP,
                        &member_id,
                        instance_id.as_deref(),
                        &[("range", b"m")],
                    );
                    self.clients[i].join = Some(id);
                }
            }
            Op::Sync(i) => {
                let client = self.clients[i].clone();
                if client.sync.is_none() && client.join.is_none() && client.generation > 0 {
                    let assignments: Vec<(String, Vec<u8>)> =
                        match (&client.leader_of, client.skip_assignment) {
                            (Some(members), false) => members
                                .iter()
                                .map(|m| (m.clone(), assignment_for(members, m)))
                                .collect(),
                            _ => Vec::new(),
                        };
                    let borrowed: Vec<(&str, &[u8])> = assignments
                        .iter()
                        .map(|(m, a)| (m.as_str(), a.as_slice()))
                        .collect();
                    let id = self.h.sync_with(
                        GROUP,
                        client.generation,
                        &client.member_id,
                        client.instance_id.as_deref(),
                        &borrowed,
                    );
                    self.clients[i].sync = Some(id);
                }
            }
            Op::Heartbeat(i) => {
                let client = self.clients[i].clone();
                if !client.member_id.is_empty() {
                    let code = self.h.heartbeat_with(
                        GROUP,
                        client.generation,
                        &client.member_id,
                        client.instance_id.as_deref(),
                    );
                    match code {
                        25 | 82 => self.forget(i),
                        22 | 27 => self.clients[i].needs_rejoin = true,
                        _ => {}
                    }
                }
            }
            Op::Leave(i) => {
                let client = self.clients[i].clone();
                if !client.member_id.is_empty() || client.instance_id.is_some() {
                    self.h
                        .leave(GROUP, &[(&client.member_id, client.instance_id.as_deref())]);
                    self.forget(i);
                }
            }
            Op::Commit {
                client,
                partition,
                offset,
            } => {
                let c = self.clients[client].clone();
                if c.generation > 0 {
                    let id = self.h.commit_offsets(
                        GROUP,
                        c.generation,
                        &c.member_id,
                        &[(TOPIC, i32::from(partition), i64::from(offset), "md")],
                    );
                    self.model
                        .commits
                        .insert(id, vec![(i32::from(partition), i64::from(offset))]);
                }
            }
            Op::SimpleCommit { partition, offset } => {
                let id = self.h.commit_offsets(
                    GROUP,
                    -1,
                    "",
                    &[(TOPIC, i32::from(partition), i64::from(offset), "")],
                );
                self.model
                    .commits
                    .insert(id, vec![(i32::from(partition), i64::from(offset))]);
            }
            Op::Restart(i) => self.forget(i),
            Op::Advance { ms } => self.h.advance(i64::from(ms)),
            Op::DelayCommits(delay) => {
                self.h.auto_commit = !delay;
                if !delay {
                    self.h.commit(0);
                }
            }
            Op::CommitLog => self.h.commit(0),
            Op::FailOver { keep_uncommitted } => {
                self.h.fail_over_in_place(keep_uncommitted);
                self.read_answers();
                // What was durable survives the failover.
                if let Some(group) = self.h.coordinator.group(GROUP) {
                    assert!(
                        group.generation_id() >= self.model.durable_generation,
                        "failover lost generation {} (restored {})",
                        self.model.durable_generation,
                        group.generation_id()
                    );
                } else {
                    assert_eq!(self.model.durable_generation, 0, "failover lost the group");
                }
                self.model.last_generation = None;
            }
            Op::Delete => {
                let request =
                    DeleteGroupsRequest::default().with_groups_names(vec![GroupId(text(GROUP))]);
                let id = self.h.send(2, RequestKind::DeleteGroups(request));
                self.model.deletes.push(id);
                if self.h.coordinator.group(GROUP).is_none() {
                    // Deleted in memory at once; durable when answered. Commits in
                    // flight are deleted too, though answered NONE (as in Kafka: their
                    // records precede the tombstones).
                    self.forget_offsets();
                    self.model.commits.clear();
                    // A group of the same name starts again at generation 0.
                    self.model.owners.clear();
                }
            }
        }
        self.read_answers();
        self.check();
    }

    /// The group may be gone: its offsets and generation are no longer known.
    fn forget_offsets(&mut self) {
        for partition in std::mem::take(&mut self.model.acknowledged).into_keys() {
            self.model.indefinite.insert(partition);
        }
        self.model.durable_generation = 0;
        self.model.last_generation = None;
    }

    fn forget(&mut self, i: usize) {
        let client = &mut self.clients[i];
        client.member_id.clear();
        client.generation = -1;
        client.leader_of = None;
    }

    /// Updates the clients and the model from the answers that arrived.
    fn read_answers(&mut self) {
        for i in 0..CLIENTS {
            if let Some(id) = self.clients[i].join
                && let Some(answer) = self.h.answers.get(&id)
            {
                let ResponseKind::JoinGroup(answer) = answer else {
                    panic!("a JoinGroup answer")
                };
                let client = &mut self.clients[i];
                client.join = None;
                match answer.error_code {
                    NONE => {
                        client.member_id = answer.member_id.to_string();
                        client.generation = answer.generation_id;
                        client.synced = false;
                        client.needs_rejoin = false;
                        client.skip_assignment = answer.skip_assignment;
                        client.leader_of = (answer.leader == answer.member_id).then(|| {
                            answer
                                .members
                                .iter()
                                .map(|m| m.member_id.to_string())
                                .collect()
                        });
                    }
                    MEMBER_ID_REQUIRED => client.member_id = answer.member_id.to_string(),
                    25 | 82 | 22 => {
                        client.member_id.clear();
                        client.generation = -1;
                    }
                    _ => {}
                }
            }
            if let Some(id) = self.clients[i].sync
                && let Some(answer) = self.h.answers.get(&id)
            {
                let ResponseKind::SyncGroup(answer) = answer.clone() else {
                    panic!("a SyncGroup answer")
                };
                let generation = self.clients[i].generation;
                self.clients[i].sync = None;
                match answer.error_code {
                    NONE => self.clients[i].synced = true,
                    25 | 82 => self.forget(i),
                    _ => self.clients[i].needs_rejoin = true,
                }
                if answer.error_code == NONE {
                    self.model.durable_generation = self.model.durable_generation.max(generation);
                    let owners = self.model.owners.entry(generation).or_default();
                    for partition in answer.assignment.iter() {
                        let owner = owners.entry(*partition).or_insert(i);
                        assert_eq!(
                            *owner, i,
                            "partition {partition} owned by clients {owner} and {i} in generation {generation}"
                        );
                    }
                }
            }
        }
        let answered: Vec<RequestId> = self
            .model
            .commits
            .keys()
            .copied()
            .filter(|id| self.h.answers.contains_key(id))
            .collect();
        for id in answered {
            let partitions = self.model.commits.remove(&id).expect("listed");
            let codes = self.h.commit_codes(id);
            for ((partition, offset), code) in partitions.into_iter().zip(codes) {
                match code {
                    NONE => {
                        self.model.acknowledged.insert(partition, offset);
                        self.model.indefinite.remove(&partition);
                    }
                    // The records may have been appended: the offset is now unknown
                    // until the next acknowledged commit.
                    NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE => {
                        self.model.indefinite.insert(partition);
                    }
                    _ => {}
                }
            }
        }
        let deletes = std::mem::take(&mut self.model.deletes);
        for id in deletes {
            match self.h.answers.get(&id) {
                None => self.model.deletes.push(id),
                Some(ResponseKind::DeleteGroups(answer)) => {
                    let code = answer.results[0].error_code;
                    if code == NONE {
                        self.model.indefinite.clear();
                    }
                }
                Some(other) => panic!("a DeleteGroups answer, got {other:?}"),
            }
        }
    }

    fn check(&mut self) {
        self.h.coordinator.check_invariants();
        let Some(group) = self.h.coordinator.group(GROUP) else {
            for partition in self.model.acknowledged.keys() {
                assert!(
                    self.model.indefinite.contains(partition),
                    "acknowledged offset of partition {partition} gone with the group"
                );
            }
            return;
        };
        // Generations only rise (between failovers and deletes).
        if let Some(last) = self.model.last_generation {
            assert!(
                group.generation_id() >= last,
                "generation went from {last} to {}",
                group.generation_id()
            );
        }
        self.model.last_generation = Some(group.generation_id());
        // The stored assignments of the members never overlap.
        let mut owned = BTreeSet::new();
        for (member_id, _, assignment) in group.members() {
            for partition in assignment.iter() {
                assert!(
                    owned.insert(*partition),
                    "partition {partition} assigned twice (to {member_id} too)"
                );
            }
        }
        // Acknowledged commits are what OffsetFetch returns.
        let committed = group.committed_offsets();
        for (partition, offset) in &self.model.acknowledged {
            if self.model.indefinite.contains(partition) {
                continue;
            }
            assert_eq!(
                committed.get(&(TOPIC, *partition)),
                Some(offset),
                "acknowledged offset of partition {partition}"
            );
        }
    }

    /// Lets the world settle: appends committed, time passes. Every request must then
    /// have its answer.
    fn settle(&mut self) {
        self.h.auto_commit = true;
        self.h.commit(0);
        for _ in 0..200 {
            self.h.advance(5_000);
            self.read_answers();
            self.check();
        }
        let unanswered: Vec<RequestId> = (1..=self.h.sent_requests())
            .map(RequestId)
            .filter(|id| !self.h.answers.contains_key(id))
            .collect();
        assert!(unanswered.is_empty(), "never answered: {unanswered:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn group_invariants_hold_under_random_operations(ops in proptest::collection::vec(op(), 1..120)) {
        let mut world = World::new();
        for op in &ops {
            world.step(op);
        }
        world.settle();
    }
}

#[test]
fn assignment_for_splits_partitions_round_robin() {
    let members = vec!["a".to_string(), "b".to_string()];
    assert_eq!(assignment_for(&members, "a"), vec![0, 2]);
    assert_eq!(assignment_for(&members, "b"), vec![1]);
}
