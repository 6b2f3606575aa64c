//! The subcommands of `odradek`, one module each.

pub mod acls;
pub mod bench;
pub mod bench_commit;
pub mod broker;
pub mod client_tools;
pub mod configs;
pub mod consume;
pub mod delete_records;
pub mod dump_log;
pub mod format;
pub mod groups;
pub mod produce;
pub mod sim;
pub mod topics;

/// An error in what the user asked for (flags, configuration): exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0:#}")]
pub struct UsageError(pub anyhow::Error);

/// Logs to stderr, filtered by `RUST_LOG` (default: `info`); colours only on a terminal,
/// so log files and test captures stay plain text.
pub fn init_logging() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
