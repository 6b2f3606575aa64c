//! The nemesis: the faults a seed plans and when and where they strike. It draws the
//! seed's fault plan, numbers the nemesis events (`--nemesis-skip`, `--nemeses-max`),
//! keeps the streams of the classes drawn on their own (media rot, misdirected writes,
//! the disk wipe) and which replicas those may damage, and breaks what it is handed
//! ([`Targets`]): nodes, disks, clocks, links. What follows for a node's process (a
//! clean restart, a wiped disk) it returns as a [`NodeEffect`] for the supervisor;
//! what happened, as a timeline entry.
//!
//! The fault model is in the world's module documentation (process faults) and in
//! `disk.rs`, `network.rs` and `clock.rs`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use odradek_log::mem_disk::MemDisk;
use odradek_replication::hard_state::decode_hard_state;

use crate::clock::WALL_STEP_MS_MAX;
use crate::counters::Counters;
use crate::event::Event;
use crate::faults::{FaultClass, FaultPlan, FaultSet, Nemesis};
use crate::network::{Endpoint, Network};
use crate::node::SimNode;
use crate::rng::SimRng;
use crate::scheduler::Scheduler;
use crate::supervision::Supervisor;
use crate::timeline::TimelineKind;
use crate::trace::{Trace, TraceKind};

const MS: u64 = 1_000_000;

/// The random streams of the plan and of the classes drawn on their own (so that
/// adding draws to one leaves the others as they were).
pub(crate) mod stream {
    /// The fault plan, then the workload and the node configuration.
    pub const PLAN: u64 = 1;
    /// Media rot: whether a seed has it, when it strikes and where (its own stream,
    /// so that seeds drawn before it existed keep their plans and workloads).
    pub const ROT: u64 = 4;
    /// Misdirected writes, likewise.
    pub const MISDIRECT: u64 = 5;
    /// The disk wipe, likewise.
    pub const WIPE: u64 = 6;
}

/// What a fault plan is drawn from.
pub(crate) struct PlanConfig<'a> {
    /// The seed.
    pub seed: u64,
    /// Nodes.
    pub nodes: u32,
    /// Fault classes the seed may draw from.
    pub faults: &'a FaultSet,
    /// Classes switched off after the draw (`None`: keep what the seed drew).
    pub keep_faults: Option<&'a FaultSet>,
    /// Nemesis events from this number on are skipped.
    pub nemeses_max: Option<u64>,
    /// Nemesis events skipped by number.
    pub nemesis_skip: BTreeSet<u64>,
}

/// The seed's faults: the plan, the streams of the classes drawn on their own, the
/// numbering of nemesis events, and the replicas damage may strike.
pub(crate) struct FaultInjector {
    plan: FaultPlan,
    /// Draws of media rot: when, which node, which byte.
    rot_rng: SimRng,
    /// Draws of misdirected writes: when, which node, which partition, where to.
    misdirect_rng: SimRng,
    /// Draws of the disk wipe: when, which node.
    wipe_rng: SimRng,
    /// Per partition directory, the one node whose replica rot (or a misdirected
    /// write) may strike.
    rot_targets: BTreeMap<String, u32>,
    /// Nemesis events drawn so far (skipped ones too): the next one's number.
    drawn: u64,
    /// Nemesis events applied.
    applied: u64,
    nemeses_max: Option<u64>,
    nemesis_skip: BTreeSet<u64>,
}

/// What the nemesis breaks, lent to it for one event.
pub(crate) struct Targets<'a> {
    /// Global time now.
    pub now: u64,
    /// The world's random stream (shared with the network and the supervisor).
    pub rng: &'a mut SimRng,
    /// The nodes.
    pub nodes: &'a mut Supervisor,
    /// The links.
    pub network: &'a mut Network,
    /// Where follow-ups and next events go.
    pub queue: &'a mut Scheduler<Event>,
    /// The process and nemesis counters.
    pub counters: &'a mut Counters,
    /// The trace.
    pub trace: &'a mut Trace,
    /// Clients in the run.
    pub clients: u32,
    /// The end of the safety phase: no fault is scheduled after it.
    pub duration_ns: u64,
}

/// What follows a nemesis event for a node's process: the supervisor's part.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NodeEffect {
    /// The node shut down cleanly: stop it, then start it again after a delay drawn
    /// from the world's stream (after the stop's own draws) between these bounds.
    Restart {
        /// The node.
        node: u32,
        /// Bounds of the delay.
        delay_ns: (u64, u64),
    },
    /// The node's disk is lost: it loses power if up, its disk is replaced by an empty
    /// one seeded with `memdisk_seed`, and it is started again at `restart_at`.
    Wipe {
        /// The node.
        node: u32,
        /// Seed of the new disk.
        memdisk_seed: u64,
        /// When the supervisor starts it again.
        restart_at: u64,
    },
}

/// What one nemesis event did.
#[derive(Debug)]
pub(crate) struct Injected {
    /// Its timeline entry (a `TimelineKind::Nemesis`).
    pub note: TimelineKind,
    /// What the supervisor does next, if anything.
    pub then: Option<NodeEffect>,
    /// Whether the next event of its kind is to be scheduled now (after `then`).
    pub schedule_next: bool,
}

impl FaultInjector {
    /// Draws the seed's fault plan from `plan_rng` (the plan's stream, which goes on
    /// to draw the workload) and the classes drawn on their own from their streams.
    pub(crate) fn draw(config: PlanConfig<'_>, plan_rng: &mut SimRng) -> FaultInjector {
        let seed = config.seed;
        let mut plan = FaultPlan::draw(config.faults, plan_rng);
        let mut rot_rng = SimRng::new(seed, stream::ROT);
        plan.draw_rot(config.faults, config.nodes, &mut rot_rng);
        let mut misdirect_rng = SimRng::new(seed, stream::MISDIRECT);
        plan.draw_misdirect(config.faults, config.nodes, &mut misdirect_rng);
        let mut wipe_rng = SimRng::new(seed, stream::WIPE);
        plan.draw_wipe(config.faults, config.nodes, &mut wipe_rng);
        if let Some(keep) = config.keep_faults {
            plan.keep_only(keep);
        }
        FaultInjector {
            plan,
            rot_rng,
            misdirect_rng,
            wipe_rng,
            rot_targets: BTreeMap::new(),
            drawn: 0,
            applied: 0,
            nemeses_max: config.nemeses_max,
            nemesis_skip: config.nemesis_skip,
        }
    }

    /// The seed's fault plan.
    pub(crate) fn plan(&self) -> &FaultPlan {
        &self.plan
    }

    /// Nemesis events applied so far (skipped ones and repairs not counted).
    pub(crate) fn applied(&self) -> u64 {
        self.applied
    }

    /// Per partition directory, the one node whose replica rot may have struck.
    pub(crate) fn rot_targets(&self) -> &BTreeMap<String, u32> {
        &self.rot_targets
    }

    /// Schedules the first event of every class the plan has.
    pub(crate) fn schedule_first(&mut self, targets: &mut Targets<'_>) {
        let plan = &self.plan;
        let kinds = [
            (plan.crash_every_ns, Nemesis::Crash),
            (plan.kill_every_ns, Nemesis::Kill),
            (plan.pause_every_ns, Nemesis::Pause),
            (plan.restart_every_ns, Nemesis::Restart),
            (plan.partition_every_ns, Nemesis::Partition),
            (plan.clog_every_ns, Nemesis::Clog),
            (plan.enospc_every_ns, Nemesis::DiskFull),
            (plan.clock_step_every_ns, Nemesis::ClockStep),
            (plan.wall_step_every_ns, Nemesis::WallStep),
        ];
        for (every, nemesis) in kinds {
            if every.is_some() {
                self.schedule_next(nemesis, targets);
            }
        }
        self.schedule_on_own_stream(Nemesis::Rot, targets);
        self.schedule_on_own_stream(Nemesis::Misdirect, targets);
        self.schedule_on_own_stream(Nemesis::Wipe, targets);
    }

    /// Schedules the next event of a class drawn from a stream of its own (rot,
    /// misdirected writes, the wipe), from that stream.
    fn schedule_on_own_stream(&mut self, nemesis: Nemesis, targets: &mut Targets<'_>) {
        let (every, rng, event) = match nemesis {
            Nemesis::Rot => (self.plan.rot_every_ns, &mut self.rot_rng, Event::Rot),
            Nemesis::Misdirect => (
                self.plan.misdirect_every_ns,
                &mut self.misdirect_rng,
                Event::Misdirect,
            ),
            Nemesis::Wipe => (self.plan.wipe_after_ns, &mut self.wipe_rng, Event::Wipe),
            _ => unreachable!("{nemesis:?} draws from the world's stream"),
        };
        let Some(mean) = every else {
            return;
        };
        let at = targets.now + rng.range(1, 2 * mean);
        if at < targets.duration_ns {
            targets.queue.schedule(at, event);
        }
    }

    /// The plan's mean interval between events of a class on the world's stream.
    fn mean_interval(&self, nemesis: Nemesis) -> Option<u64> {
        let plan = &self.plan;
        match nemesis {
            Nemesis::Crash => plan.crash_every_ns,
            Nemesis::Kill => plan.kill_every_ns,
            Nemesis::Pause => plan.pause_every_ns,
            Nemesis::Restart => plan.restart_every_ns,
            Nemesis::Partition => plan.partition_every_ns,
            Nemesis::Clog => plan.clog_every_ns,
            Nemesis::DiskFull => plan.enospc_every_ns,
            Nemesis::ClockStep => plan.clock_step_every_ns,
            Nemesis::WallStep => plan.wall_step_every_ns,
            Nemesis::Repair
            | Nemesis::DiskSpace
            | Nemesis::Rot
            | Nemesis::Misdirect
            | Nemesis::Wipe => None,
        }
    }

    /// Schedules the next event of `nemesis` (a class on the world's stream), if it
    /// falls inside the safety phase.
    pub(crate) fn schedule_next(&mut self, nemesis: Nemesis, targets: &mut Targets<'_>) {
        let Some(mean) = self.mean_interval(nemesis) else {
            return;
        };
        let at = targets.now + targets.rng.range(1, 2 * mean);
        if at < targets.duration_ns {
            targets.queue.schedule(at, Event::Nemesis(nemesis));
        }
    }

    /// A nemesis event of a class on the world's stream comes due: draws the node it
    /// aims at and its number, and applies it unless it is to be skipped.
    pub(crate) fn inject(&mut self, nemesis: Nemesis, targets: &mut Targets<'_>) -> Injected {
        let now = targets.now;
        let index = targets.rng.below(targets.nodes.len() as u64) as u32;
        let follow_up = matches!(nemesis, Nemesis::Repair | Nemesis::DiskSpace);
        let number = (!follow_up).then(|| {
            self.drawn += 1;
            self.drawn - 1
        });
        let muted = nemesis
            .class()
            .is_some_and(|class| self.plan.is_muted(class));
        if let Some(number) = number
            && (muted
                || self.nemeses_max.is_some_and(|max| number >= max)
                || self.nemesis_skip.contains(&number))
        {
            return skipped(nemesis, index, number, muted, targets);
        }
        if !follow_up {
            self.applied += 1;
        }
        targets
            .trace
            .event(now, TraceKind::Nemesis, &[nemesis.tag(), u64::from(index)]);
        targets
            .trace
            .line(now, || format!("nemesis: {nemesis:?} on node {index}"));
        let (applied, then) = apply(nemesis, index, targets);
        Injected {
            note: TimelineKind::Nemesis {
                number,
                nemesis,
                node: index,
                skipped: false,
                until_ns: applied.until_ns,
                detail: applied.detail,
            },
            then,
            schedule_next: !follow_up,
        }
    }

    /// Misdirected write (disk fault model, `disk.rs`): arms one node's disk so that
    /// its next write into a segment of one data partition lands on the record data
    /// of a durable batch (as [`FaultInjector::rot`] picks them) instead, and its own
    /// place keeps what it held. Both partitions are then this node's to be damaged
    /// for the whole run (`rot_targets`), so that the other replicas can repair them.
    /// Every draw comes from the misdirect stream. What the node must do: what it
    /// must do for rot, for the batch that never landed (acknowledged maybe, as its
    /// sync succeeded) as for the one overwritten.
    pub(crate) fn misdirect(&mut self, targets: &mut Targets<'_>) -> Injected {
        self.schedule_on_own_stream(Nemesis::Misdirect, targets);
        let index = self.misdirect_rng.below(targets.nodes.len() as u64) as u32;
        let pick_dir = self.misdirect_rng.next_u64();
        let pick_landing = self.misdirect_rng.next_u64();
        let muted = self.plan.is_muted(FaultClass::Misdirect);
        let disk = targets.nodes.node(index).io.disk.inner();
        let dirs = self.misdirect_dirs(disk, index);
        let landings = if targets.nodes.wiped().is_some() {
            Vec::new()
        } else {
            record_rot_candidates(disk, index, &self.rot_targets)
        };
        let detail = if dirs.is_empty() || landings.is_empty() {
            "nothing to misdirect".to_string()
        } else if muted {
            "skipped: its class is switched off".to_string()
        } else {
            let dir = dirs[(pick_dir % dirs.len() as u64) as usize].clone();
            let landing = landings[(pick_landing % landings.len() as u64) as usize].clone();
            let landing_dir = landing.0.split_once('/').map_or("", |(d, _)| d).to_string();
            self.rot_targets.insert(dir.clone(), index);
            self.rot_targets.insert(landing_dir, index);
            let detail = format!(
                "the next write into {dir}/ lands on {} at byte {}",
                landing.0, landing.1
            );
            let disk = &mut targets.nodes.node_mut(index).io.disk;
            disk.arm_misdirect(dir, landing);
            targets.counters.count("disk.misdirect-armed");
            targets.trace.event(
                targets.now,
                TraceKind::Misdirect,
                &[u64::from(index), pick_dir, pick_landing],
            );
            detail
        };
        own_stream(Nemesis::Misdirect, index, muted, detail, None, targets)
    }

    /// The data partition directories on `disk` (node `index`) a misdirected write may
    /// start from: those with segments whose replicas damage may strike on this node.
    fn misdirect_dirs(&self, disk: &MemDisk, index: u32) -> Vec<String> {
        disk.file_paths()
            .iter()
            .filter(|path| path.ends_with(".log"))
            .filter_map(|path| path.split_once('/').map(|(dir, _)| dir.to_string()))
            .filter(|dir| !dir.starts_with("__"))
            .filter(|dir| {
                self.rot_targets
                    .get(dir)
                    .is_none_or(|&target| target == index)
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Disk wipe (process fault model, in the world's module documentation): one
    /// broker's disk is lost for good, once per run (`None` once it was). The broker
    /// loses power and its disk is replaced by an empty one that nobody formatted.
    /// What the broker must do: refuse to start on it (`NodeError::Unformatted`), so
    /// that it never votes or acknowledges again as the member it was. What the others
    /// must do: go on without it and keep every acknowledged record, as a majority of
    /// every group it was in is left. Every draw comes from the wipe stream. The wipe
    /// waits while another node's replica may hold damage (rot or a misdirected write
    /// struck it, `rot_targets`): with one replica lost and another recovering, a group
    /// of three has one left. For the same reason rot and misdirected writes strike no
    /// record data after it.
    pub(crate) fn wipe(&mut self, targets: &mut Targets<'_>) -> Option<Injected> {
        if targets.nodes.wiped().is_some() {
            return None;
        }
        let index = self.wipe_target(targets.nodes);
        let memdisk_seed = self.wipe_rng.next_u64();
        let delay = self.wipe_rng.log_range(MS, 3_000 * MS);
        let muted = self.plan.is_muted(FaultClass::Wipe);
        let damaged_elsewhere = self
            .rot_targets
            .iter()
            .find(|&(_, &owner)| owner != index)
            .map(|(dir, &owner)| (dir.clone(), owner));
        let mut then = None;
        let detail = if let Some((dir, owner)) = damaged_elsewhere {
            self.schedule_on_own_stream(Nemesis::Wipe, targets);
            format!("waits: node {owner}'s replica of {dir} may hold damage")
        } else if muted {
            "skipped: its class is switched off".to_string()
        } else {
            targets.counters.count("process.wipe");
            targets.trace.event(
                targets.now,
                TraceKind::Wipe,
                &[u64::from(index), memdisk_seed],
            );
            then = Some(NodeEffect::Wipe {
                node: index,
                memdisk_seed,
                restart_at: targets.now + delay,
            });
            "power loss; the disk is replaced by an empty, unformatted one".to_string()
        };
        Some(own_stream(
            Nemesis::Wipe,
            index,
            muted,
            detail,
            then,
            targets,
        ))
    }

    /// The broker a wipe strikes: any, or half the time the one that holds the most
    /// (whose loss leaves the others with the least).
    fn wipe_target(&mut self, nodes: &Supervisor) -> u32 {
        let mut index = self.wipe_rng.below(nodes.len() as u64) as u32;
        if self.wipe_rng.below(2) == 0 {
            let held = |node: &SimNode| {
                node.node.as_ref().map_or(0, |n| {
                    n.partitions()
                        .map(|(_, p)| p.log().log_end_offset())
                        .sum::<i64>()
                })
            };
            if let Some(most) = nodes
                .iter()
                .max_by_key(|node| (held(node), Reverse(node.index)))
            {
                index = most.index;
            }
        }
        index
    }

    /// Media rot (disk fault model, `disk.rs`): one bit changes at rest. In five
    /// strikes of eight it hits a durable batch's record data in a data partition,
    /// where recovery can tell it was durable (the segment's durable index files or
    /// the partition's synced-through record say so), in any segment, the active one
    /// included; in two, one copy of a Raft hard state whose other copy holds the same
    /// state; in one, the slot of a synced-through record that the other slot makes
    /// up for, or an index file of a sealed segment that record covers whole. Every
    /// draw comes from the rot stream. Rot strikes the record data of only one replica
    /// per partition for the whole run: two damaged copies of one committed batch out
    /// of three are more than three replicas can repair. What the node must do: never
    /// serve the batch, and repair it from the other replicas without letting its vote
    /// elect a leader that lacks records it helped commit; read the hard state from
    /// the copy that is whole (decision 0010).
    pub(crate) fn rot(&mut self, targets: &mut Targets<'_>) -> Injected {
        self.schedule_on_own_stream(Nemesis::Rot, targets);
        let index = self.rot_rng.below(targets.nodes.len() as u64) as u32;
        let pick = self.rot_rng.next_u64();
        let bit = self.rot_rng.below(8) as u8;
        // Two strikes in eight hit a hard state, one a synced-through record slot or an
        // index file, the rest record data.
        let kind = self.rot_rng.below(8);
        let muted = self.plan.is_muted(FaultClass::Rot);
        let disk = targets.nodes.node(index).io.disk.inner();
        let candidates = match kind {
            0 | 1 => hard_state_rot_candidates(disk),
            2 => {
                let mut candidates = synced_record_rot_candidates(disk);
                candidates.extend(index_rot_candidates(disk));
                candidates
            }
            _ if targets.nodes.wiped().is_some() => Vec::new(),
            _ => record_rot_candidates(disk, index, &self.rot_targets),
        };
        let detail = if candidates.is_empty() {
            "nothing to rot".to_string()
        } else if muted {
            "skipped: its class is switched off".to_string()
        } else {
            let (path, start, len) = candidates[(pick % candidates.len() as u64) as usize].clone();
            let byte = start + (pick >> 32) % len;
            self.count_rot(kind, &path, index, targets);
            let disk = &mut targets.nodes.node_mut(index).io.disk;
            disk.rot(&path, byte, 1 << bit);
            targets.counters.count("disk.rot");
            targets
                .trace
                .event(targets.now, TraceKind::Rot, &[u64::from(index), byte]);
            format!("{path} byte {byte} bit {bit}")
        };
        own_stream(Nemesis::Rot, index, muted, detail, None, targets)
    }

    /// Counts a strike of rot of `kind` (as [`FaultInjector::rot`] draws it) at
    /// `path` on node `index`; record data makes this replica the partition's damaged
    /// one.
    fn count_rot(&mut self, kind: u64, path: &str, index: u32, targets: &mut Targets<'_>) {
        if kind < 2 {
            targets.counters.count("disk.rot-hard-state");
        } else if kind == 2 && path.ends_with("index") {
            targets.counters.count("disk.rot-index");
        } else if kind == 2 {
            targets.counters.count("disk.rot-synced-record");
        } else {
            let dir = path.split_once('/').map_or("", |(dir, _)| dir).to_string();
            let disk = targets.nodes.node(index).io.disk.inner();
            let later_segment = disk.file_paths().into_iter().any(|other| {
                other.starts_with(&format!("{dir}/"))
                    && other.ends_with(".log")
                    && other.as_str() > path
            });
            if !later_segment {
                // Only the synced-through record proves it durable.
                targets.counters.count("disk.rot-active-segment");
            }
            self.rot_targets.insert(dir, index);
        }
    }
}

/// What applying one nemesis event did, for its timeline entry.
struct Applied {
    /// Particulars.
    detail: String,
    /// When the episode ends, if it has a length.
    until_ns: Option<u64>,
}

impl Applied {
    /// An event without a length.
    fn once(detail: impl Into<String>) -> Applied {
        Applied {
            detail: detail.into(),
            until_ns: None,
        }
    }

    /// An episode that lasts until `until_ns`.
    fn until(until_ns: u64, detail: impl Into<String>) -> Applied {
        Applied {
            detail: detail.into(),
            until_ns: Some(until_ns),
        }
    }
}

/// A nemesis event drawn and not applied (`--nemesis-skip`, `--nemeses-max`, or a
/// class switched off by `--keep-faults`): the run is the same up to here; the next
/// event of its kind is still scheduled.
fn skipped(
    nemesis: Nemesis,
    index: u32,
    number: u64,
    muted: bool,
    targets: &mut Targets<'_>,
) -> Injected {
    let now = targets.now;
    targets.trace.event(
        now,
        TraceKind::NemesisSkipped,
        &[nemesis.tag(), u64::from(index), number],
    );
    targets.trace.line(now, || {
        format!("nemesis #{number}: {nemesis:?} on node {index} skipped")
    });
    Injected {
        note: TimelineKind::Nemesis {
            number: Some(number),
            nemesis,
            node: index,
            skipped: true,
            until_ns: None,
            detail: if muted {
                "skipped: its class is switched off".to_string()
            } else {
                "skipped".to_string()
            },
        },
        then: None,
        schedule_next: true,
    }
}

/// Traces an event of a class drawn from a stream of its own (rot, misdirected
/// writes, the wipe) on node `index`, and makes its timeline entry.
fn own_stream(
    nemesis: Nemesis,
    index: u32,
    muted: bool,
    detail: String,
    then: Option<NodeEffect>,
    targets: &mut Targets<'_>,
) -> Injected {
    let name = nemesis.class().map_or("?", FaultClass::name);
    targets.trace.line(targets.now, || {
        format!("nemesis: {name} on node {index}: {detail}")
    });
    Injected {
        note: TimelineKind::Nemesis {
            number: None,
            nemesis,
            node: index,
            skipped: muted,
            until_ns: None,
            detail,
        },
        then,
        schedule_next: false,
    }
}

/// Applies a nemesis event of a class on the world's stream to node `index`.
fn apply(nemesis: Nemesis, index: u32, t: &mut Targets<'_>) -> (Applied, Option<NodeEffect>) {
    let applied = match nemesis {
        Nemesis::Crash | Nemesis::Kill => arm_crash(nemesis == Nemesis::Crash, index, t),
        Nemesis::Restart => return restart(index, t),
        Nemesis::Pause => pause(index, t),
        Nemesis::Partition if t.nodes.len() > 1 && t.rng.below(2) == 0 => {
            let (how, cut) = partition_peers(index, t);
            let repair_at = schedule_repair(t);
            Applied::until(repair_at, format!("{how}: {cut} links between brokers cut"))
        }
        Nemesis::Partition => partition_clients(index, t),
        Nemesis::Repair => {
            t.network.repair();
            Applied::once("every cut link repaired")
        }
        Nemesis::Clog if t.nodes.len() > 1 && t.rng.below(2) == 0 => clog_peers(index, t),
        Nemesis::Clog => clog_client(index, t),
        Nemesis::DiskFull => disk_full(index, t),
        Nemesis::DiskSpace => {
            for node in t.nodes.iter_mut() {
                node.io.disk.set_full(false);
            }
            Applied::once("disks have space again")
        }
        Nemesis::ClockStep => clock_step(index, t),
        Nemesis::WallStep => wall_step(index, t),
        Nemesis::Rot => unreachable!("rot has its own event (FaultInjector::rot)"),
        Nemesis::Misdirect => unreachable!("it has its own event (FaultInjector::misdirect)"),
        Nemesis::Wipe => unreachable!("it has its own event (FaultInjector::wipe)"),
    };
    (applied, None)
}

/// Crash or kill, armed, not fired: it strikes the next time the node starts a sync
/// (writes in flight, the interesting moment), or after a short while anyway.
fn arm_crash(power_loss: bool, index: u32, t: &mut Targets<'_>) -> Applied {
    if !t.nodes.node(index).is_up() {
        return Applied::once("the node is down: nothing to do");
    }
    t.nodes.node_mut(index).crash_armed = Some(power_loss);
    let fallback = t.now + t.rng.log_range(10 * MS, 1_000 * MS);
    t.queue.schedule(fallback, Event::CrashNow { node: index });
    Applied::once(format!(
        "armed: strikes at the node's next sync, at the latest at {} ms",
        fallback / MS
    ))
}

/// A clean shutdown; the supervisor stops the node and opens it again.
fn restart(index: u32, t: &mut Targets<'_>) -> (Applied, Option<NodeEffect>) {
    let sim_node = t.nodes.node_mut(index);
    let Some(node) = sim_node.node.as_mut() else {
        return (Applied::once("the node is down: nothing to do"), None);
    };
    node.shutdown(&mut sim_node.io);
    t.counters.count("process.restart");
    let then = NodeEffect::Restart {
        node: index,
        delay_ns: (MS, 500 * MS),
    };
    (Applied::once("clean shutdown, then open"), Some(then))
}

/// No event reaches the node for a while.
fn pause(index: u32, t: &mut Targets<'_>) -> Applied {
    if !t.nodes.node(index).is_up() {
        return Applied::once("the node is down: nothing to do");
    }
    let until = t.now + t.rng.log_range(10 * MS, 3_000 * MS);
    let sim_node = t.nodes.node_mut(index);
    sim_node.paused_until_ns = sim_node.paused_until_ns.max(until);
    let until_ns = sim_node.paused_until_ns;
    t.counters.count("process.pause");
    Applied::until(until_ns, "no events reach the node until then")
}

/// Schedules the repair of a partition's cut links (at the latest when the safety
/// phase ends); returns when.
fn schedule_repair(t: &mut Targets<'_>) -> u64 {
    let until = t.now + t.rng.log_range(50 * MS, 5_000 * MS);
    let repair_at = until.min(t.duration_ns);
    t.queue.schedule(repair_at, Event::Nemesis(Nemesis::Repair));
    repair_at
}

/// Cuts the links between node `index` and the clients, one of three ways.
fn partition_clients(index: u32, t: &mut Targets<'_>) -> Applied {
    let node = Endpoint::Node(index);
    let mode = t.rng.below(3);
    let mut cut = 0;
    for client in 0..t.clients {
        let all = mode != 1;
        if !all && t.rng.below(2) == 0 {
            continue;
        }
        let client = Endpoint::Client(client);
        // Mode 2 is asymmetric: requests still arrive, responses are lost.
        if mode != 2 {
            t.network.cut(client, node);
        }
        t.network.cut(node, client);
        cut += 1;
    }
    if cut > 0 {
        t.counters.count(match mode {
            0 => "net.partition-isolate",
            1 => "net.partition-some",
            _ => "net.partition-asymmetric",
        });
    }
    let repair_at = schedule_repair(t);
    let how = match mode {
        0 => "isolated from every client",
        1 => "cut from some clients",
        _ => "responses to every client lost (asymmetric)",
    };
    Applied::until(repair_at, format!("{how}: {cut} clients"))
}

/// Cuts links between brokers around node `index`, one of four ways; returns how
/// and how many directed links were cut.
fn partition_peers(index: u32, t: &mut Targets<'_>) -> (&'static str, u32) {
    let nodes = t.nodes.len() as u32;
    let mode = t.rng.below(4);
    let mut cut = 0;
    let network = &mut *t.network;
    let rng = &mut *t.rng;
    let mut cut_link = |from: u32, to: u32| {
        network.cut(Endpoint::Node(from), Endpoint::Node(to));
        cut += 1;
    };
    let how = match mode {
        0 => {
            for other in (0..nodes).filter(|&o| o != index) {
                cut_link(index, other);
                cut_link(other, index);
            }
            "one broker isolated from its peers"
        }
        1 => {
            // Two halves: `index` and a random set of others against the rest.
            let mut side: Vec<bool> = (0..nodes).map(|_| rng.below(2) == 0).collect();
            side[index as usize] = true;
            for a in 0..nodes {
                for b in 0..nodes {
                    if side[a as usize] != side[b as usize] {
                        cut_link(a, b);
                    }
                }
            }
            "brokers split in two"
        }
        2 => {
            // Asymmetric: what the broker sends is lost, what it receives arrives.
            let outgoing = rng.below(2) == 0;
            for other in (0..nodes).filter(|&o| o != index) {
                if outgoing {
                    cut_link(index, other);
                } else {
                    cut_link(other, index);
                }
            }
            if outgoing {
                "one broker's outgoing peer links cut"
            } else {
                "one broker's incoming peer links cut"
            }
        }
        _ => {
            for a in 0..nodes {
                for b in 0..nodes {
                    if a != b && rng.below(3) == 0 {
                        cut_link(a, b);
                    }
                }
            }
            "random directed peer links cut"
        }
    };
    t.counters.count(match mode {
        0 => "peer.partition-isolate",
        1 => "peer.partition-halves",
        2 => "peer.partition-asymmetric",
        _ => "peer.partition-random",
    });
    (how, cut)
}

/// Holds the link from node `index` to another broker for a while.
fn clog_peers(index: u32, t: &mut Targets<'_>) -> Applied {
    let peers = t.nodes.len() as u64;
    let other = (index + 1 + t.rng.below(peers - 1) as u32) % peers as u32;
    let until = t.now + t.rng.log_range(10 * MS, 3_000 * MS);
    t.network
        .hold(Endpoint::Node(index), Endpoint::Node(other), until);
    t.counters.count("peer.clog");
    Applied::until(until, format!("link node {index} -> node {other} held"))
}

/// Holds one link between node `index` and a client, either way, for a while.
fn clog_client(index: u32, t: &mut Targets<'_>) -> Applied {
    let client = t.rng.below(u64::from(t.clients)) as u32;
    let node = Endpoint::Node(index);
    let towards_node = t.rng.below(2) == 0;
    let (from, to) = if towards_node {
        (Endpoint::Client(client), node)
    } else {
        (node, Endpoint::Client(client))
    };
    let until = t.now + t.rng.log_range(10 * MS, 3_000 * MS);
    t.network.hold(from, to, until);
    t.counters.count("net.clog");
    let detail = if towards_node {
        format!("link client {client} -> node {index} held")
    } else {
        format!("link node {index} -> client {client} held")
    };
    Applied::until(until, detail)
}

/// An ENOSPC episode on node `index`; its end is scheduled.
fn disk_full(index: u32, t: &mut Targets<'_>) -> Applied {
    t.nodes.node_mut(index).io.disk.set_full(true);
    t.counters.count("disk.enospc-episode");
    let until = t.now + t.rng.log_range(10 * MS, 2_000 * MS);
    t.queue.schedule(until, Event::Nemesis(Nemesis::DiskSpace));
    Applied::until(until, "writes fail with ENOSPC")
}

/// The monotonic clock of node `index` steps forward or stalls.
fn clock_step(index: u32, t: &mut Targets<'_>) -> Applied {
    let now = t.now;
    let clock = &mut t.nodes.node_mut(index).io.clock;
    clock.advance_to(now);
    if t.rng.below(2) == 0 {
        let step = t.rng.log_range(MS, 5_000 * MS);
        clock.step_forward(step);
        t.counters.count("clock.step");
        Applied::once(format!("monotonic clock steps {} ms forward", step / MS))
    } else {
        let until = now + t.rng.log_range(MS, 2_000 * MS);
        clock.stall_until(until);
        t.counters.count("clock.stall");
        Applied::until(until, "monotonic clock stalls")
    }
}

/// The wall clock of node `index` steps.
fn wall_step(index: u32, t: &mut Targets<'_>) -> Applied {
    let step = t.rng.range(0, 2 * WALL_STEP_MS_MAX as u64 + 1) as i64 - WALL_STEP_MS_MAX;
    t.nodes.node_mut(index).io.clock.step_wall(step);
    t.counters.count("clock.wall-step");
    Applied::once(format!("wall clock steps {step} ms"))
}

/// Where media rot may strike a batch's record data on `disk` (node `index`): the
/// batches of [`crate::disk::durable_record_data`] in data partitions whose replicas
/// rot has struck on this node only, if at all.
fn record_rot_candidates(
    disk: &MemDisk,
    index: u32,
    rot_targets: &BTreeMap<String, u32>,
) -> Vec<(String, u64, u64)> {
    crate::disk::durable_record_data(disk)
        .into_iter()
        .filter(|(path, _, _)| {
            let dir = path.split_once('/').map_or("", |(dir, _)| dir);
            rot_targets.get(dir).is_none_or(|&target| target == index)
        })
        .collect()
}

/// Where media rot may strike a synced-through record on `disk`: a slot whose loss
/// leaves the record vouching for as much as before (the older slot, or either when
/// both say the same), so that no damaged batch becomes one recovery takes for a
/// torn write.
fn synced_record_rot_candidates(disk: &MemDisk) -> Vec<(String, u64, u64)> {
    let name = odradek_log::synced::SYNCED_THROUGH_FILE;
    let mut candidates = Vec::new();
    for path in disk.file_paths() {
        if !path.ends_with(&format!("/{name}")) {
            continue;
        }
        let Some(bytes) = disk.durable_contents(&path) else {
            continue;
        };
        let Some(answer) = odradek_log::synced::synced_through(&bytes) else {
            continue;
        };
        let slots = odradek_log::synced::decode_slots(&bytes);
        for k in 0..2u64 {
            if slots[k as usize].is_some()
                && slots[1 - k as usize].is_some_and(|(_, offset)| offset >= answer)
            {
                let (start, len) = odradek_log::synced::slot_range(k);
                candidates.push((path.clone(), start, len));
            }
        }
    }
    candidates
}

/// Where media rot may strike a segment's index files on `disk`: either file of a
/// sealed segment of a data partition whose batches all lie below the partition's
/// durable synced-through record, so that the record still proves them durable when
/// recovery no longer trusts the index files.
fn index_rot_candidates(disk: &MemDisk) -> Vec<(String, u64, u64)> {
    let paths = disk.file_paths();
    let mut candidates = Vec::new();
    for path in &paths {
        let Some(stem) = path.strip_suffix(".log") else {
            continue;
        };
        let Some((dir, name)) = stem.split_once('/') else {
            continue;
        };
        if dir.starts_with("__") {
            continue;
        }
        let synced_through = crate::disk::durable_synced_through(disk, dir);
        // The segment ends where the next one begins.
        let Ok(base) = name.parse::<i64>() else {
            continue;
        };
        let next_base = paths
            .iter()
            .filter_map(|other| other.strip_prefix(&format!("{dir}/"))?.strip_suffix(".log"))
            .filter_map(|other| other.parse::<i64>().ok())
            .filter(|&other| other > base)
            .min();
        if next_base.is_none_or(|next| next > synced_through) {
            continue;
        }
        for suffix in ["index", "timeindex"] {
            let index_path = format!("{stem}.{suffix}");
            if let Some(bytes) = disk.durable_contents(&index_path)
                && !bytes.is_empty()
            {
                candidates.push((index_path, 0, bytes.len() as u64));
            }
        }
    }
    candidates
}

/// Where media rot may strike a Raft hard state on `disk`: either copy of a group
/// (partition or metadata) whose two copies hold the same state now, so that the other
/// one answers for it (decision 0010, item 4).
fn hard_state_rot_candidates(disk: &MemDisk) -> Vec<(String, u64, u64)> {
    let name = odradek_replication::hard_state::HARD_STATE_FILE;
    let copy = odradek_replication::hard_state::HARD_STATE_COPY_FILE;
    let mut candidates = Vec::new();
    for path in disk.file_paths() {
        let Some(dir) = path.strip_suffix(&format!("/{name}")) else {
            continue;
        };
        let copy_path = format!("{dir}/{copy}");
        let (Some(first), Some(second)) = (
            disk.durable_contents(&path),
            disk.durable_contents(&copy_path),
        ) else {
            continue;
        };
        if first == second && decode_hard_state(&first).is_some() {
            candidates.push((path.clone(), 0, first.len() as u64));
            candidates.push((copy_path, 0, second.len() as u64));
        }
    }
    candidates
}

#[cfg(test)]
mod tests {
    use odradek_replication::NodeConfig;

    use super::*;
    use crate::network::NetworkFaults;

    /// Draws seed `seed`'s faults from `faults` and schedules their first events;
    /// returns the plan and the first events in queue order.
    fn first_events(seed: u64, faults: &FaultSet) -> (FaultPlan, Vec<(u64, String)>) {
        let config = PlanConfig {
            seed,
            nodes: 3,
            faults,
            keep_faults: None,
            nemeses_max: None,
            nemesis_skip: BTreeSet::new(),
        };
        let mut plan_rng = SimRng::new(seed, stream::PLAN);
        let mut injector = FaultInjector::draw(config, &mut plan_rng);
        let mut rng = SimRng::new(seed, 2);
        let mut nodes = Supervisor::new(Vec::new(), NodeConfig::default());
        let mut network = Network::new(NetworkFaults::default());
        let mut queue = Scheduler::new();
        let mut counters = Counters::default();
        let mut trace = Trace::new(false, false);
        let mut targets = Targets {
            now: 0,
            rng: &mut rng,
            nodes: &mut nodes,
            network: &mut network,
            queue: &mut queue,
            counters: &mut counters,
            trace: &mut trace,
            clients: 4,
            duration_ns: 60_000 * MS,
        };
        injector.schedule_first(&mut targets);
        let mut events = Vec::new();
        while let Some(event) = queue.pop() {
            events.push((queue.now(), format!("{event:?}")));
        }
        (injector.plan().clone(), events)
    }

    #[test]
    fn a_seed_plans_the_same_faults_every_time() {
        for seed in 1..20 {
            let (plan, events) = first_events(seed, &FaultSet::all());
            let (again, events_again) = first_events(seed, &FaultSet::all());
            assert_eq!(format!("{plan:?}"), format!("{again:?}"), "seed {seed}");
            assert_eq!(events, events_again, "seed {seed}");
        }
    }

    #[test]
    fn the_plan_and_its_events_keep_to_the_fault_set() {
        let only = FaultSet::parse("pause,clog").expect("a fault set");
        for seed in 1..40 {
            let (plan, events) = first_events(seed, &only);
            assert!(plan.crash_every_ns.is_none() && plan.kill_every_ns.is_none());
            assert!(plan.rot_every_ns.is_none() && plan.wipe_after_ns.is_none());
            for (at, event) in events {
                assert!(
                    at < 60_000 * MS,
                    "seed {seed}: {event} after the safety phase"
                );
                assert!(
                    event == "Nemesis(Pause)" || event == "Nemesis(Clog)",
                    "seed {seed}: {event} outside the fault set"
                );
            }
        }
    }
}
