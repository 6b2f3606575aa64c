//! The records `odradek format` leaves in a data directory for the cluster's first
//! metadata (Kafka's bootstrap records: the `--add-scram` users), one encoded metadata
//! record per line. `format` writes them; the broker reads them at start and the node
//! appends them once per cluster (docs/security.md, "SASL"). A leaf both commands use.

use std::path::Path;

use anyhow::Context;
use odradek_replication::metadata::MetadataRecord;

/// The file in a data directory that holds the bootstrap records.
pub const BOOTSTRAP_RECORDS_FILE: &str = "bootstrap.records";

/// Writes `records` to `data_dir`'s bootstrap records file.
pub fn write(data_dir: &Path, records: &[MetadataRecord]) -> anyhow::Result<()> {
    let path = data_dir.join(BOOTSTRAP_RECORDS_FILE);
    let text: String = records
        .iter()
        .map(|record| format!("{}\n", record.encode()))
        .collect();
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The bootstrap records `format` left in `data_dir` (none if it left none).
pub fn read(data_dir: &Path) -> anyhow::Result<Vec<MetadataRecord>> {
    let path = data_dir.join(BOOTSTRAP_RECORDS_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            MetadataRecord::decode(line)
                .map_err(|error| anyhow::anyhow!("{}: {error}", path.display()))
        })
        .collect()
}
