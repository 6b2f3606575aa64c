//! One client process of the run, whichever kind it is: the workload's clients
//! (`workload.rs`) and the consumer-group members (`group.rs`). The world drives them
//! all through this one type.

use kafka_protocol::messages::ResponseKind;

use crate::compaction::KeyedClient;
use crate::config_changes::ConfigClient;
use crate::group::GroupMember;
use crate::trim::TrimClient;
use crate::workload::{Admin, Consumer, Ctx, FinalReader, MetadataClient, Producer, Shared};

/// One client process.
pub enum Client {
    /// Creates the topics.
    Admin(Admin),
    /// Writes.
    Producer(Producer),
    /// Reads.
    Consumer(Consumer),
    /// Reads everything at the end.
    FinalReader(FinalReader),
    /// Reads through a consumer group.
    GroupMember(GroupMember),
    /// Keeps the clients' metadata (leaders, controller) fresh in a cluster.
    Metadata(MetadataClient),
    /// Writes and reads the compacted topic.
    Keyed(Box<KeyedClient>),
    /// Changes topic and broker configs at run time.
    Config(Box<ConfigClient>),
    /// Writes, trims and reads the delete-records workload's topic.
    Trim(Box<TrimClient>),
}

impl Client {
    /// A timer the client asked for came due (or the phase changed).
    pub fn tick(&mut self, ctx: &mut Ctx<'_>) {
        match self {
            Client::Admin(c) => c.tick(ctx),
            Client::Producer(c) => c.tick(ctx),
            Client::Consumer(c) => c.tick(ctx),
            Client::FinalReader(c) => c.tick(ctx),
            Client::GroupMember(c) => c.tick(ctx),
            Client::Metadata(c) => c.tick(ctx),
            Client::Keyed(c) => c.tick(ctx),
            Client::Config(c) => c.tick(ctx),
            Client::Trim(c) => c.tick(ctx),
        }
    }

    /// A response arrived (maybe late, maybe a duplicate).
    pub fn on_response(&mut self, ctx: &mut Ctx<'_>, correlation: u64, response: &ResponseKind) {
        match self {
            Client::Admin(c) => c.on_response(ctx, correlation, response),
            Client::Producer(c) => c.on_response(ctx, correlation, response),
            Client::Consumer(c) => c.on_response(ctx, correlation, response),
            Client::FinalReader(c) => c.on_response(ctx, correlation, response),
            Client::GroupMember(c) => c.on_response(ctx, correlation, response),
            Client::Metadata(c) => c.on_response(ctx, correlation, response),
            Client::Keyed(c) => c.on_response(ctx, correlation, response),
            Client::Config(c) => c.on_response(ctx, correlation, response),
            Client::Trim(c) => c.on_response(ctx, correlation, response),
        }
    }

    /// A request timed out or its connection broke.
    pub fn on_lost(&mut self, ctx: &mut Ctx<'_>, correlation: u64, why: &str) {
        match self {
            Client::Admin(c) => c.on_lost(ctx, correlation),
            Client::Producer(c) => c.on_lost(ctx, correlation, why),
            Client::Consumer(c) => c.on_lost(ctx, correlation, why),
            Client::FinalReader(c) => c.on_lost(ctx, correlation),
            Client::GroupMember(c) => c.on_lost(ctx, correlation),
            Client::Metadata(c) => c.on_lost(ctx, correlation),
            Client::Keyed(c) => c.on_lost(ctx, correlation),
            Client::Config(c) => c.on_lost(ctx, correlation),
            Client::Trim(c) => c.on_lost(ctx, correlation),
        }
    }

    /// Whether the client has finished what the liveness phase asks of it.
    pub fn is_done(&self, shared: &Shared) -> bool {
        match self {
            Client::Admin(_) => shared.topics_ready,
            Client::Producer(c) => c.is_done(shared),
            Client::Consumer(c) => c.is_done(shared),
            Client::FinalReader(c) => c.is_done(),
            Client::GroupMember(c) => c.is_done(shared),
            Client::Metadata(_) => true,
            Client::Keyed(c) => c.is_done(shared.phase),
            Client::Config(c) => c.is_done(shared.phase),
            Client::Trim(c) => c.is_done(shared.phase),
        }
    }

    /// What the client still waits for (for a liveness failure report).
    pub fn describe(&self) -> String {
        match self {
            Client::GroupMember(c) => c.describe(),
            Client::Metadata(_) => "metadata client".to_string(),
            Client::Admin(c) => c.describe(),
            Client::Producer(c) => c.describe(),
            Client::Consumer(c) => c.describe(),
            Client::FinalReader(c) => c.describe(),
            Client::Keyed(c) => c.describe(),
            Client::Config(c) => c.describe(),
            Client::Trim(c) => c.describe(),
        }
    }
}
