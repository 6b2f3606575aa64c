//! Why a node could not start: the one error type of opening a broker's data
//! directory, its identity, its metadata log and its partitions.

use odradek_log::io::DiskError;

use crate::metadata::MetadataError;
use crate::replica::PartitionOpenError;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The metadata log could not be opened or replayed.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A partition's log could not be opened.
    #[error("partition {dir}: {error}")]
    Partition {
        /// The partition's directory.
        dir: String,
        /// Why.
        error: String,
    },
    /// The data directory belongs to another node.
    #[error("data directory belongs to node {found}, but this is node {expected}")]
    WrongNode {
        /// Our node id.
        expected: i32,
        /// The node id recorded in the data directory.
        found: i32,
    },
    /// The data directory could not be initialised.
    #[error("data directory: {0}")]
    Disk(#[from] DiskError),
    /// The first metadata record could not be written.
    #[error("metadata log: {0}")]
    MetadataAppend(String),
    /// `meta.properties` cannot be read.
    #[error("data directory: {0}")]
    BadIdentity(String),
    /// A broker of a cluster found a directory nobody formatted (decision 0010).
    #[error(
        "the data directory is not formatted, and node {node_id} is one of a cluster: an \
         empty directory cannot tell a new broker from one whose disk was lost, and a lost \
         broker that starts empty as the same member can let a leader that lacks \
         acknowledged records win with its vote. A new broker's directory is formatted once, \
         with `odradek format` and the broker's own flags. Do not format the directory of a \
         broker that lost its disk: the cluster goes on without it while a majority of its \
         brokers is up (see docs/replication.md, \"A broker that lost its disk\")"
    )]
    Unformatted {
        /// This broker's id.
        node_id: i32,
    },
    /// `odradek format` found the directory formatted already.
    #[error("the data directory is formatted already, for node {node_id}")]
    AlreadyFormatted {
        /// The node id `meta.properties` names.
        node_id: i32,
    },
    /// `odradek format` found something in the directory.
    #[error(
        "the data directory is not empty (it holds {entry:?}): formatting it would give \
         what it holds a new identity"
    )]
    NotEmpty {
        /// The first entry found.
        entry: String,
    },
}

impl From<PartitionOpenError> for NodeError {
    fn from(error: PartitionOpenError) -> NodeError {
        NodeError::Partition {
            dir: error.dir,
            error: error.error,
        }
    }
}
