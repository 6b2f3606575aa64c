//! Whose data directory this is: the file `meta.properties` at its root (Kafka's name
//! and keys), and the rule that a broker of a cluster never starts on a directory
//! nobody formatted.
//!
//! ```text
//! # written by odradek format: the broker that owns this directory
//! version=1
//! node.id=2
//! directory.id=q7Jc0V3bS8yWn1xKe2Lm9A
//! cluster.id=orders-cluster          (only when the operator named one)
//! ```
//!
//! Why a format step (decision 0010, item 5): an empty directory looks the same
//! whether the broker is new or its disk was lost. A broker alone may take it for new,
//! since nobody else holds its data. A broker of a cluster may not: if it had voted or
//! acknowledged entries before its disk was lost, starting empty as the same member
//! lets a leader lacking committed entries win with its vote. So a cluster broker
//! refuses an unformatted directory, and only the operator's `odradek format`, run
//! once when the broker is new, makes one.
//!
//! The directory id names this directory's incarnation: a wiped and formatted
//! directory gets a new one. Nothing reads it yet; voter changes by directory id will
//! (decision 0010, item 5's second half).

use odradek_log::io::{Disk, Io};

use crate::node_error::NodeError;

/// The file at the root of the data directory naming the broker that owns it (Kafka's
/// `meta.properties`).
pub const NODE_IDENTITY_FILE: &str = "meta.properties";

/// What `meta.properties` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `node.id`: the broker that owns the directory.
    pub node_id: i32,
    /// `directory.id`: this incarnation of the directory (absent in directories a
    /// broker created before the format step existed).
    pub directory_id: Option<String>,
    /// `cluster.id`: the cluster the operator formatted the directory for, if named.
    pub cluster_id: Option<String>,
}

impl Identity {
    /// The file's text.
    pub fn render(&self) -> String {
        let mut text = String::from(
            "# written by odradek format: the broker that owns this directory\nversion=1\n",
        );
        text.push_str(&format!("node.id={}\n", self.node_id));
        if let Some(id) = &self.directory_id {
            text.push_str(&format!("directory.id={id}\n"));
        }
        if let Some(id) = &self.cluster_id {
            text.push_str(&format!("cluster.id={id}\n"));
        }
        text
    }

    /// Reads the file's text; the error names what is wrong with it.
    pub fn parse(text: &str) -> Result<Identity, String> {
        let value = |key: &str| {
            text.lines()
                .filter(|line| !line.trim_start().starts_with('#'))
                .find_map(|line| line.split_once('=').filter(|(k, _)| k.trim() == key))
                .map(|(_, v)| v.trim().to_string())
        };
        let node_id = value("node.id")
            .ok_or_else(|| format!("{NODE_IDENTITY_FILE} names no node.id"))?
            .parse::<i32>()
            .map_err(|_| format!("{NODE_IDENTITY_FILE} has a node.id that is not a number"))?;
        if let Some(version) = value("version")
            && version != "1"
        {
            return Err(format!(
                "{NODE_IDENTITY_FILE} has version {version}; this odradek reads version 1"
            ));
        }
        Ok(Identity {
            node_id,
            directory_id: value("directory.id").filter(|id| !id.is_empty()),
            cluster_id: value("cluster.id").filter(|id| !id.is_empty()),
        })
    }
}

/// Reads the directory's identity; `None` if it was never formatted.
pub fn read_identity(disk: &mut impl Disk) -> Result<Option<Identity>, NodeError> {
    if !disk.exists(NODE_IDENTITY_FILE) {
        return Ok(None);
    }
    let bytes = odradek_log::segment::read_whole_file(disk, NODE_IDENTITY_FILE)?;
    Identity::parse(&String::from_utf8_lossy(&bytes))
        .map(Some)
        .map_err(NodeError::BadIdentity)
}

/// Formats the directory for `node_id` (`odradek format`): writes `meta.properties`
/// with `directory_id` (new, from [`random_id`]), durably. Refuses a directory that is
/// formatted already, and one that holds anything else: formatting a directory that
/// holds a broker's data would give that data a new identity.
pub fn format(
    disk: &mut impl Disk,
    node_id: i32,
    cluster_id: Option<&str>,
    directory_id: String,
) -> Result<Identity, NodeError> {
    if let Some(found) = read_identity(disk)? {
        return Err(NodeError::AlreadyFormatted {
            node_id: found.node_id,
        });
    }
    let entries = disk.read_dir("")?;
    if let Some(entry) = entries.iter().find(|name| !name.starts_with('.')) {
        return Err(NodeError::NotEmpty {
            entry: entry.clone(),
        });
    }
    let identity = Identity {
        node_id,
        directory_id: Some(directory_id),
        cluster_id: cluster_id.map(str::to_string),
    };
    odradek_log::partition::write_file_atomically(
        disk,
        "",
        NODE_IDENTITY_FILE,
        identity.render().as_bytes(),
    )?;
    Ok(identity)
}

/// The identity `Node::open` goes on with: the directory's, checked against
/// `node_id`; or, in a directory nobody formatted, a new one if the broker is alone
/// (`voters` = 1), and a refusal if it is one of a cluster. A new directory id comes
/// from `random_seed` (a draw `Node::open` makes anyway), so that opening draws
/// nothing more from the node's random stream than it did before the format step.
pub(crate) fn open_identity(
    disk: &mut impl Disk,
    node_id: i32,
    voters: usize,
    format_lost_directory: bool,
    random_seed: u64,
) -> Result<Identity, NodeError> {
    match read_identity(disk)? {
        Some(found) if found.node_id != node_id => Err(NodeError::WrongNode {
            expected: node_id,
            found: found.node_id,
        }),
        Some(found) => Ok(found),
        None if voters > 1 && !format_lost_directory => Err(NodeError::Unformatted { node_id }),
        None => {
            let bits = [
                random_seed ^ 0x6a09_e667_f3bc_c908,
                random_seed.rotate_left(32) ^ 0xbb67_ae85_84ca_a73b,
            ];
            format(disk, node_id, None, encode_id(bits))
        }
    }
}

/// A new random id: 22 characters of URL-safe base64 from 128 random bits, like
/// Kafka's cluster and directory ids.
pub fn random_id(io: &mut impl Io) -> String {
    encode_id([io.random(), io.random()])
}

/// 22 characters of URL-safe base64 from `bits` (the first is a letter or digit).
pub fn encode_id(mut bits: [u64; 2]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut id = String::with_capacity(22);
    for index in 0..22 {
        let word = &mut bits[index / 11];
        // Never a leading '-', which would read as a flag on a command line.
        let letters = if index == 0 { 62 } else { 64 };
        id.push(ALPHABET[((*word & 63) % letters) as usize] as char);
        *word >>= 6;
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_and_reads_old_files() {
        let identity = Identity {
            node_id: 3,
            directory_id: Some("dir".to_string()),
            cluster_id: Some("c1".to_string()),
        };
        assert_eq!(Identity::parse(&identity.render()), Ok(identity));
        // What brokers wrote before the format step existed.
        let old = "# written by odradek: the node that owns this directory\nnode.id=2\n";
        assert_eq!(
            Identity::parse(old),
            Ok(Identity {
                node_id: 2,
                directory_id: None,
                cluster_id: None
            })
        );
        assert!(Identity::parse("version=2\nnode.id=1\n").is_err());
        assert!(Identity::parse("cluster.id=x\n").is_err());
        assert!(Identity::parse("node.id=one\n").is_err());
    }
}
