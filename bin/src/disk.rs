//! `ProdDisk`: the [`Disk`] seam over real files in the broker's data directory.
//!
//! Reads and writes are positional (`pread`/`pwrite`) on the caller's thread: they hit
//! the page cache and return at once, as the seam promises. Durability is the slow part,
//! so [`Disk::sync`] and [`Disk::sync_dir`] hand the `fdatasync`/directory `fsync` to a
//! small pool of sync threads and return an [`IoId`]; the pool reports each result
//! through the completion callback, which the driver turns into an event for the node.
//!
//! ```text
//!  node thread ── write_at ──► page cache
//!              ── sync(f) ──► IoId ─► job queue ─► sync thread: fdatasync(f)
//!                                                      └─► on_complete(DiskCompletion{io, result})
//! ```
//!
//! Every path the core hands over is relative to the data directory and `/`-separated;
//! absolute paths, `.`/`..` and empty components are refused, so nothing outside the
//! data directory can be touched. The data directory holds one file of our own,
//! [`LOCK_FILE`], which keeps a second broker off the same data and which the core
//! never sees (the simulated disks have no such file).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;

use anyhow::{Context, bail};
use odradek_log::io::{Disk, DiskCompletion, DiskError, FileId, IoId, OpenMode};

/// The lock file in the data directory, held (`flock`) while a broker uses it.
pub const LOCK_FILE: &str = ".lock";

/// Threads running `fsync`s. More than one, so a slow sync of one partition does not
/// hold back another's; few, because they share one device.
pub const SYNC_THREADS: usize = 4;

/// Where a finished sync is reported. Called on a sync thread.
pub type OnComplete = Arc<dyn Fn(DiskCompletion) + Send + Sync>;

/// The data directory as a [`Disk`]. See the module documentation.
pub struct ProdDisk {
    root: PathBuf,
    files: HashMap<FileId, OpenFile>,
    next_file: u64,
    next_io: u64,
    /// Held for the life of the disk: the lock is released when it closes. `None` for
    /// a read-only disk, which takes no lock (see [`ProdDisk::open_read_only`]).
    _lock: Option<File>,
    /// Set by [`ProdDisk::open_read_only`]: every change is refused.
    read_only: bool,
    jobs: Option<mpsc::Sender<SyncJob>>,
    sync_threads: Vec<JoinHandle<()>>,
}

struct OpenFile {
    file: Arc<File>,
    path: String,
}

struct SyncJob {
    io: IoId,
    target: SyncTarget,
}

enum SyncTarget {
    File { file: Arc<File>, path: String },
    Dir { dir: PathBuf, path: String },
    Refused(DiskError),
}

impl ProdDisk {
    /// Opens (creating it if needed) the data directory `root` and locks it. Fails if
    /// another process holds the lock, or if the directory cannot be used.
    pub fn open(root: &Path, on_complete: OnComplete) -> anyhow::Result<ProdDisk> {
        fs::create_dir_all(root)
            .with_context(|| format!("cannot create data directory {}", root.display()))?;
        let root = root
            .canonicalize()
            .with_context(|| format!("cannot resolve data directory {}", root.display()))?;
        if !root.is_dir() {
            bail!("data directory {} is not a directory", root.display());
        }
        let lock_path = root.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .with_context(|| format!("cannot open lock file {}", lock_path.display()))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                bail!(
                    "data directory {} is in use by another odradek process",
                    root.display()
                )
            }
            Err(fs::TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("cannot lock {}", lock_path.display()));
            }
        }
        // The pid helps an operator find the other process; it is informative only.
        lock.set_len(0)
            .and_then(|()| writeln!(lock, "{}", std::process::id()))
            .ok();

        let (jobs, queue) = mpsc::channel::<SyncJob>();
        let queue = Arc::new(Mutex::new(queue));
        let sync_threads = (0..SYNC_THREADS)
            .map(|index| {
                let queue = Arc::clone(&queue);
                let on_complete = Arc::clone(&on_complete);
                std::thread::Builder::new()
                    .name(format!("odradek-sync-{index}"))
                    .spawn(move || sync_thread(&queue, &on_complete))
                    .context("cannot start sync threads")
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(ProdDisk {
            root,
            files: HashMap::new(),
            next_file: 0,
            next_io: 0,
            _lock: Some(lock),
            read_only: false,
            jobs: Some(jobs),
            sync_threads,
        })
    }

    /// Opens the existing directory `root` for reading only, for `odradek dump-log`:
    /// no lock is taken and no lock file is created (a running broker may own the
    /// directory), no sync threads start, and every change (writes, creating, removing
    /// or renaming, syncs) is refused with an error.
    pub fn open_read_only(root: &Path) -> anyhow::Result<ProdDisk> {
        let root = root
            .canonicalize()
            .with_context(|| format!("cannot resolve directory {}", root.display()))?;
        if !root.is_dir() {
            bail!("{} is not a directory", root.display());
        }
        Ok(ProdDisk {
            root,
            files: HashMap::new(),
            next_file: 0,
            next_io: 0,
            _lock: None,
            read_only: true,
            jobs: None,
            sync_threads: Vec::new(),
        })
    }

    /// Refuses a change to `path` if this disk is read-only.
    fn check_writable(&self, path: &str) -> Result<(), DiskError> {
        if self.read_only {
            return Err(DiskError::Io {
                message: format!("{path}: opened read-only"),
            });
        }
        Ok(())
    }

    /// The data directory, absolute.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of the core's relative `path`; `""` is the data directory.
    fn resolve(&self, path: &str) -> Result<PathBuf, DiskError> {
        if path.is_empty() {
            return Ok(self.root.clone());
        }
        let valid = !path.contains('\0')
            && path
                .split('/')
                .all(|component| !matches!(component, "" | "." | ".."));
        if !valid {
            return Err(DiskError::Io {
                message: format!("invalid path {path:?}: must be relative, without . or .."),
            });
        }
        Ok(self.root.join(path))
    }

    /// Like [`ProdDisk::resolve`], but refuses the data directory itself and the lock
    /// file (for removals and renames).
    fn resolve_entry(&self, path: &str) -> Result<PathBuf, DiskError> {
        if path.is_empty() || path == LOCK_FILE {
            return Err(DiskError::Io {
                message: format!("refusing to remove or rename {path:?}"),
            });
        }
        self.resolve(path)
    }

    fn file(&self, file: FileId) -> &OpenFile {
        self.files
            .get(&file)
            .unwrap_or_else(|| panic!("{file:?} is not open"))
    }

    fn start(&mut self, target: SyncTarget) -> IoId {
        let io = IoId(self.next_io);
        self.next_io += 1;
        let jobs = self
            .jobs
            .as_ref()
            .expect("sync threads run until the disk is dropped");
        jobs.send(SyncJob { io, target })
            .expect("sync threads run until the disk is dropped");
        io
    }
}

impl Drop for ProdDisk {
    fn drop(&mut self) {
        // Closing the queue lets the sync threads finish what is queued and stop.
        self.jobs = None;
        for thread in self.sync_threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn sync_thread(queue: &Mutex<mpsc::Receiver<SyncJob>>, on_complete: &OnComplete) {
    loop {
        let job = {
            let queue = queue
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            queue.recv()
        };
        let Ok(SyncJob { io, target }) = job else {
            return;
        };
        let result = match target {
            SyncTarget::File { file, path } => {
                file.sync_data().map_err(|error| disk_error(error, &path))
            }
            SyncTarget::Dir { dir, path } => {
                sync_dir(&dir).map_err(|error| disk_error(error, &path))
            }
            SyncTarget::Refused(error) => Err(error),
        };
        on_complete(DiskCompletion { io, result });
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Maps an OS error to the seam's error for `path`.
pub fn disk_error(error: io::Error, path: &str) -> DiskError {
    match error.kind() {
        io::ErrorKind::NotFound => DiskError::NotFound {
            path: path.to_string(),
        },
        io::ErrorKind::AlreadyExists => DiskError::AlreadyExists {
            path: path.to_string(),
        },
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => DiskError::NoSpace,
        _ => DiskError::Io {
            message: format!("{path}: {error}"),
        },
    }
}

impl Disk for ProdDisk {
    fn open(&mut self, path: &str, mode: OpenMode) -> Result<FileId, DiskError> {
        if mode != OpenMode::Read {
            self.check_writable(path)?;
        }
        let full = self.resolve(path)?;
        let mut options = OpenOptions::new();
        options.read(true);
        match mode {
            OpenMode::Read => {}
            OpenMode::ReadWrite => {
                options.write(true);
            }
            OpenMode::Create => {
                options.write(true).create(true);
            }
            OpenMode::CreateNew => {
                options.write(true).create_new(true);
            }
        }
        let file = options
            .open(&full)
            .map_err(|error| disk_error(error, path))?;
        let id = FileId(self.next_file);
        self.next_file += 1;
        self.files.insert(
            id,
            OpenFile {
                file: Arc::new(file),
                path: path.to_string(),
            },
        );
        Ok(id)
    }

    fn close(&mut self, file: FileId) {
        // A sync in flight holds its own reference; the descriptor closes after it.
        self.files.remove(&file);
    }

    fn file_len(&mut self, file: FileId) -> Result<u64, DiskError> {
        let open = self.file(file);
        open.file
            .metadata()
            .map(|metadata| metadata.len())
            .map_err(|error| disk_error(error, &open.path))
    }

    fn read_at(&mut self, file: FileId, offset: u64, buf: &mut [u8]) -> Result<usize, DiskError> {
        let open = self.file(file);
        let mut filled = 0;
        while filled < buf.len() {
            match open
                .file
                .read_at(&mut buf[filled..], offset + filled as u64)
            {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(disk_error(error, &open.path)),
            }
        }
        Ok(filled)
    }

    fn write_at(&mut self, file: FileId, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let open = self.file(file);
        open.file
            .write_all_at(data, offset)
            .map_err(|error| disk_error(error, &open.path))
    }

    fn truncate(&mut self, file: FileId, len: u64) -> Result<(), DiskError> {
        let open = self.file(file);
        open.file
            .set_len(len)
            .map_err(|error| disk_error(error, &open.path))
    }

    fn sync(&mut self, file: FileId) -> IoId {
        assert!(!self.read_only, "sync on a read-only disk");
        let open = self.file(file);
        let target = SyncTarget::File {
            file: Arc::clone(&open.file),
            path: open.path.clone(),
        };
        self.start(target)
    }

    fn sync_dir(&mut self, path: &str) -> IoId {
        assert!(!self.read_only, "sync_dir on a read-only disk");
        let target = match self.resolve(path) {
            Ok(dir) => SyncTarget::Dir {
                dir,
                path: path.to_string(),
            },
            // A refusal arrives the way every other outcome does: as a completion.
            Err(error) => SyncTarget::Refused(error),
        };
        self.start(target)
    }

    fn sync_now(&mut self, file: FileId) -> Result<(), DiskError> {
        let open = self.file(file);
        open.file
            .sync_data()
            .map_err(|error| disk_error(error, &open.path))
    }

    fn sync_dir_now(&mut self, path: &str) -> Result<(), DiskError> {
        sync_dir(&self.resolve(path)?).map_err(|error| disk_error(error, path))
    }

    fn create_dir_all(&mut self, path: &str) -> Result<(), DiskError> {
        self.check_writable(path)?;
        fs::create_dir_all(self.resolve(path)?).map_err(|error| disk_error(error, path))
    }

    fn read_dir(&mut self, path: &str) -> Result<Vec<String>, DiskError> {
        let entries = fs::read_dir(self.resolve(path)?).map_err(|error| disk_error(error, path))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|error| disk_error(error, path))?;
            match entry.file_name().into_string() {
                Ok(name) if path.is_empty() && name == LOCK_FILE => {}
                Ok(name) => names.push(name),
                Err(name) => tracing::warn!("ignoring {name:?} in {path:?}: the name is not UTF-8"),
            }
        }
        names.sort();
        Ok(names)
    }

    fn exists(&mut self, path: &str) -> bool {
        self.resolve(path).is_ok_and(|full| full.exists())
    }

    fn remove_file(&mut self, path: &str) -> Result<(), DiskError> {
        self.check_writable(path)?;
        fs::remove_file(self.resolve_entry(path)?).map_err(|error| disk_error(error, path))
    }

    fn remove_dir_all(&mut self, path: &str) -> Result<(), DiskError> {
        self.check_writable(path)?;
        fs::remove_dir_all(self.resolve_entry(path)?).map_err(|error| disk_error(error, path))
    }

    fn rename(&mut self, from: &str, to: &str) -> Result<(), DiskError> {
        self.check_writable(from)?;
        let target = self.resolve_entry(to)?;
        fs::rename(self.resolve_entry(from)?, target).map_err(|error| disk_error(error, from))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;

    /// A fresh directory, removed on drop.
    pub(crate) struct Scratch(pub PathBuf);

    impl Scratch {
        pub(crate) fn new() -> Scratch {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path =
                std::env::temp_dir().join(format!("odradek-disk-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn open(dir: &Scratch) -> (ProdDisk, mpsc::Receiver<DiskCompletion>) {
        let (tx, rx) = mpsc::channel();
        let tx = Mutex::new(tx);
        let disk = ProdDisk::open(
            &dir.0,
            Arc::new(move |done| tx.lock().unwrap().send(done).unwrap()),
        )
        .unwrap();
        (disk, rx)
    }

    fn completion(rx: &mpsc::Receiver<DiskCompletion>) -> DiskCompletion {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a completion")
    }

    #[test]
    fn files_read_back_what_was_written_and_syncs_complete() {
        let dir = Scratch::new();
        let (mut disk, done) = open(&dir);
        disk.create_dir_all("orders-0").unwrap();
        let file = disk
            .open("orders-0/00000000000000000000.log", OpenMode::CreateNew)
            .unwrap();
        disk.write_at(file, 0, b"hello").unwrap();
        disk.write_at(file, 5, b" world").unwrap();
        assert_eq!(disk.file_len(file).unwrap(), 11);
        let mut buf = [0u8; 32];
        assert_eq!(disk.read_at(file, 0, &mut buf).unwrap(), 11);
        assert_eq!(&buf[..11], b"hello world");
        assert_eq!(disk.read_at(file, 6, &mut buf[..3]).unwrap(), 3);
        assert_eq!(&buf[..3], b"wor");
        assert_eq!(disk.read_at(file, 100, &mut buf).unwrap(), 0);

        let sync = disk.sync(file);
        let dir_sync = disk.sync_dir("orders-0");
        disk.close(file); // the sync in flight keeps the descriptor
        let mut results = [completion(&done), completion(&done)];
        results.sort_by_key(|c| c.io);
        assert_eq!(
            results[0],
            DiskCompletion {
                io: sync,
                result: Ok(())
            }
        );
        assert_eq!(
            results[1],
            DiskCompletion {
                io: dir_sync,
                result: Ok(())
            }
        );
        assert_ne!(sync, dir_sync);

        let file = disk
            .open("orders-0/00000000000000000000.log", OpenMode::ReadWrite)
            .unwrap();
        disk.truncate(file, 5).unwrap();
        assert_eq!(disk.file_len(file).unwrap(), 5);
        disk.sync_now(file).unwrap();
        disk.sync_dir_now("").unwrap();
    }

    #[test]
    fn open_modes_and_errors_map_to_the_seam() {
        let dir = Scratch::new();
        let (mut disk, _done) = open(&dir);
        assert_eq!(
            disk.open("missing", OpenMode::Read),
            Err(DiskError::NotFound {
                path: "missing".into()
            })
        );
        assert_eq!(
            disk.open("missing", OpenMode::ReadWrite),
            Err(DiskError::NotFound {
                path: "missing".into()
            })
        );
        disk.open("a", OpenMode::Create).unwrap();
        disk.open("a", OpenMode::Create).unwrap();
        assert_eq!(
            disk.open("a", OpenMode::CreateNew),
            Err(DiskError::AlreadyExists { path: "a".into() })
        );
        let read_only = disk.open("a", OpenMode::Read).unwrap();
        assert!(matches!(
            disk.write_at(read_only, 0, b"x"),
            Err(DiskError::Io { .. })
        ));
        assert_eq!(
            disk_error(io::Error::from_raw_os_error(28), "x"),
            DiskError::NoSpace
        );
        assert_eq!(
            disk_error(io::Error::from_raw_os_error(122), "x"),
            DiskError::NoSpace
        );
        assert!(matches!(
            disk_error(io::Error::from_raw_os_error(5), "x"),
            DiskError::Io { .. }
        ));
    }

    #[test]
    fn paths_stay_inside_the_data_directory() {
        let dir = Scratch::new();
        let (mut disk, done) = open(&dir);
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a/",
            "a\0b",
        ] {
            assert!(
                matches!(disk.open(bad, OpenMode::Create), Err(DiskError::Io { .. })),
                "{bad:?}"
            );
            assert!(disk.create_dir_all(bad).is_err(), "{bad:?}");
            assert!(!disk.exists(bad), "{bad:?}");
        }
        let refused = disk.sync_dir("../elsewhere");
        assert!(
            matches!(completion(&done), DiskCompletion { io, result: Err(DiskError::Io { .. }) } if io == refused)
        );
        // The root and the lock file cannot be removed or renamed away.
        assert!(disk.remove_dir_all("").is_err());
        assert!(disk.remove_file(LOCK_FILE).is_err());
        assert!(disk.rename(LOCK_FILE, "x").is_err());
        assert!(disk.rename("x", LOCK_FILE).is_err());
        assert!(dir.0.join(LOCK_FILE).exists());
    }

    #[test]
    fn directories_list_sorted_without_the_lock_file() {
        let dir = Scratch::new();
        let (mut disk, _done) = open(&dir);
        disk.create_dir_all("b-0").unwrap();
        disk.create_dir_all("a-1/deeper").unwrap();
        disk.open("meta", OpenMode::Create).unwrap();
        assert_eq!(disk.read_dir("").unwrap(), vec!["a-1", "b-0", "meta"]);
        assert_eq!(disk.read_dir("a-1").unwrap(), vec!["deeper"]);
        assert!(disk.exists("a-1/deeper"));
        disk.rename("meta", "meta.old").unwrap();
        disk.remove_file("meta.old").unwrap();
        disk.remove_dir_all("a-1").unwrap();
        assert_eq!(disk.read_dir("").unwrap(), vec!["b-0"]);
        assert_eq!(
            disk.read_dir("nope"),
            Err(DiskError::NotFound {
                path: "nope".into()
            })
        );
    }

    #[test]
    fn a_locked_data_directory_cannot_be_opened_twice() {
        let dir = Scratch::new();
        let (first, _done) = open(&dir);
        let (tx, _rx) = mpsc::channel::<DiskCompletion>();
        let tx = Mutex::new(tx);
        let on_complete: OnComplete = Arc::new(move |done| drop(tx.lock().unwrap().send(done)));
        let error = ProdDisk::open(&dir.0, Arc::clone(&on_complete))
            .err()
            .expect("locked");
        assert!(
            error
                .to_string()
                .contains("in use by another odradek process"),
            "{error}"
        );
        drop(first);
        ProdDisk::open(&dir.0, on_complete).expect("the lock is released with the disk");
    }
}
