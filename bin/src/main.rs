//! `odradek`: the broker binary and its command-line tools.
//!
//! Each subcommand is one module under `cli/` with an `Args` struct and a `run`
//! function, plus one variant of [`Command`]. A subcommand returns an error for
//! anything that went wrong; a [`cli::UsageError`] (bad flags or configuration) exits
//! with status 2, corruption found by `dump-log` with status 3, any other error with
//! status 1; `sim` exits with its own statuses (10 safety, 11 liveness, 12 crash).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bootstrap_records;
mod cli;
mod client;
mod config;
mod disk;
mod driver;
mod guard;
mod json;
mod peers;
mod security;
mod server;
mod versions;
mod wire;

/// Odradek: a Kafka-compatible distributed log.
#[derive(Parser)]
#[command(name = "odradek", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker.
    Broker(cli::broker::Args),
    /// Format a new broker's data directory (like kafka-storage format); a broker of a
    /// cluster starts only on a formatted directory.
    Format(cli::format::Args),
    /// Create, list, describe, delete and alter topics (like kafka-topics).
    Topics(cli::topics::Args),
    /// List, describe and delete consumer groups, reset their offsets (like
    /// kafka-consumer-groups).
    Groups(cli::groups::Args),
    /// Describe and change topic and broker configs at run time (like kafka-configs).
    Configs(cli::configs::Args),
    /// Move partitions' log start offsets forward (like kafka-delete-records).
    DeleteRecords(cli::delete_records::Args),
    /// Add, list and remove ACLs (like kafka-acls).
    Acls(cli::acls::Args),
    /// Write lines from standard input as records (like kafka-console-producer).
    Produce(cli::produce::Args),
    /// Print records of a topic (like kafka-console-consumer, without a group).
    Consume(cli::consume::Args),
    /// Measure produce or consume throughput and latency.
    Bench(cli::bench::Args),
    /// Decode segment files and check every batch's CRC (exit status 3 on corruption).
    DumpLog(cli::dump_log::Args),
    /// Run the deterministic simulator (exit status 10 safety, 11 liveness, 12 crash).
    Sim(cli::sim::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging();
    let result = match cli.command {
        Command::Broker(args) => cli::broker::run(args),
        Command::Format(args) => cli::format::run(args),
        Command::Topics(args) => cli::topics::run(args),
        Command::Groups(args) => cli::groups::run(args),
        Command::Configs(args) => cli::configs::run(args),
        Command::DeleteRecords(args) => cli::delete_records::run(args),
        Command::Acls(args) => cli::acls::run(args),
        Command::Produce(args) => cli::produce::run(args),
        Command::Consume(args) => cli::consume::run(args),
        Command::Bench(args) => cli::bench::run(args),
        Command::DumpLog(args) => cli::dump_log::run(args),
        Command::Sim(args) => cli::sim::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("odradek: error: {error:#}");
            if error.is::<cli::UsageError>() {
                ExitCode::from(2)
            } else if let Some(failed) = error.downcast_ref::<cli::sim::SimFailed>() {
                ExitCode::from(failed.code)
            } else if error.is::<cli::dump_log::CorruptionFound>() {
                ExitCode::from(cli::dump_log::EXIT_CORRUPT)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks the command definitions only in debug builds, at the first parse:
    /// check them here, in whatever profile the tests run.
    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
