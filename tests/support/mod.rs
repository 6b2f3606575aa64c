//! Shared harness of the workspace integration tests in `tests/`: a real `odradek
//! broker` process, the Python clients' interpreter, and kcat.
//!
//! Every helper fails loudly: a missing prerequisite (no Python, no kcat, a taken port)
//! is a test failure with a message saying what to install or free, never a skip.
//!
//! ```text
//!  test ──► Broker::start() ──► odradek broker --listen 127.0.0.1:0 --data-dir target/odradek-tests/..
//!            │  waits for "odradek broker listening on ADDR" on its stdout
//!            ├─ client() ──► wire_client::Client (raw Kafka frames, requests::sample())
//!            ├─ log_lines() (its stderr so far)
//!            ├─ kill_9() / stop() / signal_and_wait() / restart()  (same data dir, same port)
//!            └─ drop: SIGKILL; if the test is failing, its stderr is printed
//!  test ──► run(args, stdin) ──► odradek ARGS to its exit
//!  test ──► python() ──► target/py-venv/bin/python (made once, under a file lock)
//!  test ──► kcat()   ──► kcat on PATH (apt-get installs it when run as root)
//! ```
#![allow(dead_code)] // each test binary uses a different part

pub mod clients;
pub mod fake_broker;
pub mod java;
pub mod json;
pub mod requests;
pub mod wire_client;

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How long a broker may take to print its listening line.
pub const START_PATIENCE: Duration = Duration::from_secs(30);
/// How long a clean shutdown (SIGTERM) may take.
pub const STOP_PATIENCE: Duration = Duration::from_secs(30);
/// How long one client script may run before it is killed and the test fails.
pub const SCRIPT_PATIENCE: Duration = Duration::from_secs(180);

/// The workspace root (this file is compiled into tests of the `bin/` package).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bin/ has a parent")
        .to_path_buf()
}

/// The `odradek` binary cargo built for this test.
pub fn odradek_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_odradek"))
}

/// A `Command` for the `odradek` binary.
pub fn odradek() -> Command {
    Command::new(odradek_binary())
}

/// The cargo target directory this test was built in (`<target>/<profile>/odradek`).
pub fn target_dir() -> PathBuf {
    odradek_binary()
        .parent()
        .and_then(Path::parent)
        .expect("the binary lives in <target>/<profile>/")
        .to_path_buf()
}

/// A fresh directory under `<target>/odradek-tests/`, removed on drop unless the test
/// is failing (then it is kept, and its path printed, for a post-mortem).
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = target_dir()
            .join("odradek-tests")
            .join(format!("{label}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("creating {}: {error}", path.display()));
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("kept for inspection: {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Where a broker listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    /// A free port picked by the kernel (`--listen 127.0.0.1:0`).
    Free,
    /// This port; the start fails with a clear message if it is taken.
    Fixed(u16),
}

/// A running `odradek broker` process over a data directory it keeps across restarts.
/// Killed (SIGKILL) on drop; if the test is failing, the broker's stderr is printed.
pub struct Broker {
    child: Option<Child>,
    port: u16,
    /// Home of the data directory and the broker's captured output.
    dir: TempDir,
    extra_args: Vec<String>,
    /// The process's `RUST_LOG`, if not the test's own (or `info`).
    rust_log: Option<String>,
    /// How many times a process was started (names the log files).
    starts: u32,
    /// Extra flags of `odradek format`, run before the first start when not empty
    /// (e.g. `--add-scram`).
    format_args: Vec<String>,
}

impl Broker {
    /// Starts a broker on a free port of 127.0.0.1 with a fresh data directory.
    pub fn start() -> Broker {
        Broker::start_with(Port::Free, &[])
    }

    /// Starts a broker on `port` with extra flags (e.g. `["--override", "num.partitions=3"]`).
    pub fn start_with(port: Port, extra_args: &[&str]) -> Broker {
        Broker::start_logging(port, extra_args, None)
    }

    /// [`Broker::start_with`], logging as `rust_log` says (a `RUST_LOG` filter) when
    /// given: a test that asserts on a debug line asks for it.
    pub fn start_logging(port: Port, extra_args: &[&str], rust_log: Option<&str>) -> Broker {
        if let Port::Fixed(port) = port {
            assert_port_free(port);
        }
        let mut broker = Broker {
            child: None,
            port: match port {
                Port::Free => 0,
                Port::Fixed(port) => port,
            },
            dir: TempDir::new("broker"),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            rust_log: rust_log.map(str::to_string),
            starts: 0,
            format_args: Vec::new(),
        };
        broker.spawn();
        broker
    }

    /// Formats a fresh data directory with `format_args` (`--add-scram ...`), then
    /// starts a broker on a free port with `extra_args`.
    pub fn start_formatted(extra_args: &[&str], format_args: &[&str]) -> Broker {
        let mut broker = Broker {
            child: None,
            port: 0,
            dir: TempDir::new("broker"),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            rust_log: None,
            starts: 0,
            format_args: format_args.iter().map(|s| s.to_string()).collect(),
        };
        broker.spawn();
        broker
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Same as [`Broker::bootstrap`], for `--bootstrap-server`.
    pub fn address(&self) -> String {
        self.bootstrap()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory (`--data-dir`).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The directory of one partition's segments.
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        partition_dir(&self.data_dir(), topic, partition)
    }

    /// Path of the stderr capture of the current (or last) process.
    pub fn stderr_path(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("broker-{}.stderr", self.starts))
    }

    /// Everything the current (or last) process wrote to stderr.
    pub fn stderr(&self) -> String {
        fs::read_to_string(self.stderr_path()).unwrap_or_default()
    }

    /// The lines the current (or last) process wrote to stderr so far: its log.
    pub fn log_lines(&self) -> Vec<String> {
        self.stderr().lines().map(str::to_string).collect()
    }

    /// A new connection of the raw wire client.
    pub fn client(&self) -> wire_client::Client {
        wire_client::Client::connect(self.port)
    }

    /// The process id of the running broker.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the broker is running").id()
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "a broker is already running");
        self.starts += 1;
        let in_cluster = self.extra_args.iter().any(|arg| arg == "--voters");
        if self.starts == 1 && (in_cluster || !self.format_args.is_empty()) {
            // A broker of a cluster starts only on a formatted directory.
            let output = odradek()
                .arg("format")
                .arg("--data-dir")
                .arg(self.data_dir())
                .args(&self.extra_args)
                .args(&self.format_args)
                .arg("--cluster-id")
                .arg("test-cluster")
                .output()
                .expect("running odradek format");
            assert!(
                output.status.success(),
                "odradek format failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let stdout_path = self
            .dir
            .path()
            .join(format!("broker-{}.stdout", self.starts));
        let stdout = File::create(&stdout_path).expect("creating the stdout capture");
        let stderr = File::create(self.stderr_path()).expect("creating the stderr capture");
        let mut child = odradek()
            .arg("broker")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(&self.extra_args)
            .env(
                "RUST_LOG",
                self.rust_log
                    .clone()
                    .unwrap_or_else(|| std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into())),
            )
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", odradek_binary().display()));
        let deadline = Instant::now() + START_PATIENCE;
        let address = loop {
            let printed = fs::read_to_string(&stdout_path).unwrap_or_default();
            if let Some(address) = printed
                .lines()
                .find_map(|line| line.strip_prefix("odradek broker listening on "))
            {
                break address.trim().to_string();
            }
            if let Some(status) = child.try_wait().expect("polling the broker") {
                panic!(
                    "the broker exited ({status}) before listening; its stderr:\n{}",
                    self.stderr()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the broker did not print its listening line within {START_PATIENCE:?}; its stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let port: u16 = address
            .rsplit_once(':')
            .and_then(|(_, port)| port.parse().ok())
            .unwrap_or_else(|| panic!("cannot read a port from {address:?}"));
        if self.port != 0 {
            assert_eq!(port, self.port, "the broker listens where it was told to");
        }
        // Later restarts reuse the port, so clients that are still running reconnect.
        self.port = port;
        self.child = Some(child);
    }

    /// Waits for a process something else killed (a client script's SIGKILL) and
    /// forgets it, so that [`Broker::restart`] can start a new one.
    pub fn reap_killed(&mut self) {
        let mut child = self.child.take().expect("the broker was running");
        let status = child.wait().expect("reaping the broker");
        assert!(!status.success(), "the broker exited by itself: {status}");
    }

    /// SIGKILL: the process dies at once, with whatever it had not made durable.
    pub fn kill_9(&mut self) {
        let mut child = self.child.take().expect("the broker is running");
        child.kill().expect("SIGKILL the broker");
        child.wait().expect("reaping the broker");
    }

    /// SIGTERM, and waits for a clean exit (status 0).
    pub fn stop(&mut self) {
        let status = self.signal_and_wait("TERM");
        assert!(
            status.success(),
            "the broker exited with {status} after SIGTERM; its stderr:\n{}",
            self.stderr()
        );
    }

    /// Sends `signal` (a name such as `TERM`) and waits for the process to exit.
    pub fn signal_and_wait(&mut self, signal: &str) -> ExitStatus {
        let mut child = self.child.take().expect("the broker is running");
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -{signal} failed");
        let deadline = Instant::now() + STOP_PATIENCE;
        loop {
            if let Some(status) = child.try_wait().expect("polling the broker") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the broker did not exit within {STOP_PATIENCE:?} of SIG{signal}; its stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts a new process on the same data directory and port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop or kill the broker first");
        self.spawn();
    }

    /// Panics (with the broker's stderr) if the process has exited.
    pub fn assert_alive(&mut self) {
        let child = self.child.as_mut().expect("the broker was started");
        if let Some(status) = child.try_wait().expect("polling the broker") {
            panic!(
                "the broker exited unexpectedly ({status}); its stderr:\n{}",
                self.stderr()
            );
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            let stderr = self.stderr();
            let tail: Vec<&str> = stderr.lines().rev().take(200).collect();
            eprintln!(
                "---- broker stderr ({}), last {} lines ----",
                self.stderr_path().display(),
                tail.len()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
            eprintln!("---- end of broker stderr ----");
        }
    }
}

/// The directory of one partition inside a data directory: `<topic>-<partition>`,
/// as Kafka names them.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

/// The segment file with the highest base offset in a partition directory: the
/// active segment.
pub fn active_segment(partition_dir: &Path) -> PathBuf {
    let mut logs: Vec<PathBuf> = fs::read_dir(partition_dir)
        .unwrap_or_else(|error| panic!("listing {}: {error}", partition_dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop()
        .unwrap_or_else(|| panic!("no *.log in {}", partition_dir.display()))
}

/// Fails clearly if something already listens on 127.0.0.1:`port`.
pub fn assert_port_free(port: u16) {
    // A port closed a moment ago (by `free_ports`, or by a broker this test stopped)
    // may be refused for a short while on some network stacks: ask a few times.
    let mut bound = TcpListener::bind(("127.0.0.1", port));
    for _ in 0..20 {
        if bound.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        bound = TcpListener::bind(("127.0.0.1", port));
    }
    if let Err(error) = bound {
        panic!(
            "port {port} on 127.0.0.1 is not free ({error}): these tests run the seed \
             documents' examples unchanged, and those connect to localhost:{port}; stop \
             whatever listens there (`ss -ltnp 'sport = :{port}'`) and run again"
        );
    }
}

// ---------------------------------------------------------------------------------
// The odradek command-line tools

/// What one `odradek` run printed and how it exited.
pub struct Run {
    /// The exit code (`None` if a signal ended it).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    what: String,
}

impl Run {
    /// Asserts exit status 0 and returns the run.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code,
            Some(0),
            "{} failed\n---- stdout ----\n{}\n---- stderr ----\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts a non-zero exit status and returns the run.
    pub fn failed(self) -> Run {
        assert_ne!(
            self.code,
            Some(0),
            "{} succeeded but should have failed\n---- stdout ----\n{}\n---- stderr ----\n{}",
            self.what,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// An exclusive lock on `<workspace>/target/<name>.lock`, held until dropped, so that
/// parallel tests (and test binaries) install or build a shared thing once.
pub fn target_lock(name: &str) -> File {
    let target = workspace_root().join("target");
    fs::create_dir_all(&target).expect("creating target/");
    let lock_path = target.join(format!("{name}.lock"));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|error| panic!("opening {}: {error}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|error| panic!("locking {}: {error}", lock_path.display()));
    lock
}

/// Runs `command` with `stdin` as its standard input, to its end (killed after
/// [`SCRIPT_PATIENCE`]).
pub fn run_with_stdin(mut command: Command, stdin: &[u8], what: &str) -> ScriptOutput {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {what}: {error}"));
    let mut input = child.stdin.take().expect("piped");
    let stdin = stdin.to_vec();
    // A writer thread, so a child that prints before it reads cannot deadlock us.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let output = wait_with_patience(child, what);
    let _ = writer.join();
    output
}

/// `bootstrap.servers` naming every broker of `brokers`.
pub fn bootstrap_list(brokers: &[Broker]) -> String {
    brokers
        .iter()
        .map(Broker::bootstrap)
        .collect::<Vec<_>>()
        .join(",")
}

/// Runs `odradek ARGS` with `stdin` as its standard input, to its end (killed after
/// [`SCRIPT_PATIENCE`]).
pub fn run(args: &[&str], stdin: &[u8]) -> Run {
    let what = format!("odradek {}", args.join(" "));
    let mut command = odradek();
    command.args(args);
    let output = run_with_stdin(command, stdin, &what);
    Run {
        code: output.status.code(),
        stdout: output.stdout,
        stderr: output.stderr,
        what,
    }
}

// ---------------------------------------------------------------------------------
// Python

/// The interpreter of the test venv: `$ODRADEK_PYTHON` if set, else
/// `<workspace>/target/py-venv/bin/python`, created on first use with `python3 -m venv`
/// and `pip install -r tests/python/requirements.txt` under a file lock, so parallel
/// tests (and test binaries) build it once.
pub fn python() -> PathBuf {
    if let Some(python) = std::env::var_os("ODRADEK_PYTHON") {
        return PathBuf::from(python);
    }
    let root = workspace_root();
    let venv = root.join("target").join("py-venv");
    let interpreter = venv.join("bin").join("python");
    let requirements = root.join("tests/python/requirements.txt");
    // The stamp holds the requirements the venv was made from: a changed pin rebuilds it.
    let stamp = venv.join("odradek-requirements.txt");
    let wanted = fs::read_to_string(&requirements)
        .unwrap_or_else(|error| panic!("reading {}: {error}", requirements.display()));
    let lock = target_lock("py-venv");
    let ready = interpreter.exists() && fs::read_to_string(&stamp).is_ok_and(|s| s == wanted);
    if !ready {
        let _ = fs::remove_dir_all(&venv);
        let python3 = std::env::var("PYTHON3").unwrap_or_else(|_| "python3".to_string());
        run_setup(
            Command::new(&python3).args(["-m", "venv"]).arg(&venv),
            &format!(
                "creating the test venv with `{python3} -m venv` failed; install Python 3 \
                 with its venv module (Debian: apt-get install python3-venv), or point \
                 ODRADEK_PYTHON at an interpreter that has the packages of \
                 tests/python/requirements.txt"
            ),
        );
        run_setup(
            Command::new(&interpreter)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--disable-pip-version-check",
                    "-q",
                    "-r",
                ])
                .arg(&requirements),
            "installing tests/python/requirements.txt into target/py-venv failed (the \
             tests need PyPI, or ODRADEK_PYTHON pointing at an interpreter that has them)",
        );
        fs::write(&stamp, &wanted).expect("writing the venv stamp");
    }
    drop(lock);
    interpreter
}

fn run_setup(command: &mut Command, failure: &str) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("{failure}: {error}"));
    if !output.status.success() {
        panic!(
            "{failure}: {}\nstdout:\n{}\nstderr:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Path of a file under `tests/python/`.
pub fn python_script(name: &str) -> PathBuf {
    workspace_root().join("tests").join("python").join(name)
}

/// What a finished script printed.
pub struct ScriptOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ScriptOutput {
    /// Panics, showing both streams, unless the script exited 0.
    pub fn assert_success(&self, what: &str) -> &ScriptOutput {
        assert!(
            self.status.success(),
            "{what} failed ({})\n---- stdout ----\n{}\n---- stderr ----\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Runs `command` to its end (killing it after [`SCRIPT_PATIENCE`]) and collects its output.
pub fn run_with_patience(mut command: Command, what: &str) -> ScriptOutput {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = command
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {what}: {error}"));
    wait_with_patience(child, what)
}

/// Collects a child's piped stdout and stderr until it exits; kills it and panics
/// after [`SCRIPT_PATIENCE`].
pub fn wait_with_patience(mut child: Child, what: &str) -> ScriptOutput {
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + SCRIPT_PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("polling a script") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out.join().unwrap_or_default();
            let stderr = err.join().unwrap_or_default();
            panic!(
                "{what} did not finish within {SCRIPT_PATIENCE:?}\n---- stdout ----\n{stdout}\n---- stderr ----\n{stderr}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    ScriptOutput {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Runs `tests/python/<script>` with `args` in the test venv.
pub fn run_python(script: &str, args: &[&str]) -> ScriptOutput {
    let mut command = Command::new(python());
    command.arg("-u").arg(python_script(script)).args(args);
    run_with_patience(command, &format!("python {script} {}", args.join(" ")))
}

// ---------------------------------------------------------------------------------
// Records as the Python helpers print them

/// One record as a client saw it: acknowledged by a producer or read by a consumer.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    pub partition: i32,
    /// -1 when the client was not told (acks=0).
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

impl Record {
    pub fn value_text(&self) -> String {
        String::from_utf8_lossy(self.value.as_deref().unwrap_or_default()).into_owned()
    }

    pub fn key_text(&self) -> Option<String> {
        self.key
            .as_deref()
            .map(|k| String::from_utf8_lossy(k).into_owned())
    }
}

fn unhex(field: &str) -> Option<Vec<u8>> {
    if field == "-" {
        return None;
    }
    assert!(field.len().is_multiple_of(2), "odd hex field {field:?}");
    Some(
        (0..field.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&field[i..i + 2], 16).expect("hex"))
            .collect(),
    )
}

/// Parses the lines `<tag> <partition> <offset> <key hex or -> <value hex or ->` of a
/// helper's output (tag `ack` from producers, `record` from consumers).
pub fn parse_records(output: &str, tag: &str) -> Vec<Record> {
    output
        .lines()
        .filter_map(|line| line.strip_prefix(tag)?.strip_prefix(' '))
        .map(|rest| {
            let fields: Vec<&str> = rest.split(' ').collect();
            assert_eq!(fields.len(), 4, "malformed {tag} line {rest:?}");
            Record {
                partition: fields[0].parse().expect("partition"),
                offset: fields[1].parse().expect("offset"),
                key: unhex(fields[2]),
                value: unhex(fields[3]),
            }
        })
        .collect()
}

/// Reads a topic back with `client` (`confluent`, `kafka-python` or `aiokafka`), each
/// partition assigned explicitly from the earliest offset up to the end offset the
/// broker reports when the reader starts. Also checks that the topic has `partitions`
/// partitions.
pub fn read_topic(client: &str, bootstrap: &str, topic: &str, partitions: usize) -> Vec<Record> {
    let output = run_python(
        "consume.py",
        &[
            "--client",
            client,
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--partitions",
            &partitions.to_string(),
        ],
    );
    output.assert_success(&format!("reading {topic} back with {client}"));
    parse_records(&output.stdout, "record")
}

/// Asserts that a topic read back holds exactly the acknowledged records, each at the
/// offset its producer was told, every partition contiguous from 0 and in the order the
/// producer sent (the `seq` number every helper-produced value starts with).
pub fn assert_same_records(acked: &[Record], read: &[Record], offsets_known: bool) {
    assert_eq!(
        read.len(),
        acked.len(),
        "read back {} records, {} were acknowledged",
        read.len(),
        acked.len()
    );
    let mut by_partition: std::collections::BTreeMap<i32, Vec<&Record>> = Default::default();
    for record in read {
        by_partition
            .entry(record.partition)
            .or_default()
            .push(record);
    }
    for (partition, records) in &by_partition {
        for (expected, record) in records.iter().enumerate() {
            assert_eq!(
                record.offset, expected as i64,
                "partition {partition}: offsets run contiguously from 0"
            );
        }
        let seqs: Vec<u64> = records.iter().map(|r| sequence_of(r)).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "partition {partition}: records are in the order they were produced: {seqs:?}"
        );
    }
    if offsets_known {
        let mut acked_sorted = acked.to_vec();
        acked_sorted.sort();
        let mut read_sorted = read.to_vec();
        read_sorted.sort();
        for (a, r) in acked_sorted.iter().zip(&read_sorted) {
            assert_eq!(
                a, r,
                "the acknowledged record is what is read at its offset"
            );
        }
    } else {
        let mut acked_content: Vec<_> = acked.iter().map(|r| (&r.key, &r.value)).collect();
        let mut read_content: Vec<_> = read.iter().map(|r| (&r.key, &r.value)).collect();
        acked_content.sort();
        read_content.sort();
        assert_eq!(acked_content, read_content, "same keys and values");
    }
}

/// The produce sequence number a helper-written value starts with (`<seq>:...`).
pub fn sequence_of(record: &Record) -> u64 {
    let text = record.value_text();
    text.split(':')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("value {text:?} does not start with a sequence number"))
}

// ---------------------------------------------------------------------------------
// kcat

/// The `kcat` binary. If it is missing and this runs as root with apt-get, installs
/// Debian's package (`apt-get update && apt-get install -y kcat`) under a file lock;
/// otherwise fails saying how to install it.
pub fn kcat() -> PathBuf {
    if let Some(path) = find_on_path("kcat") {
        return path;
    }
    let root = workspace_root();
    fs::create_dir_all(root.join("target")).expect("creating target/");
    let lock_path = root.join("target").join("kcat-install.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .expect("opening the kcat install lock");
    lock.lock().expect("locking the kcat install lock");
    if let Some(path) = find_on_path("kcat") {
        return path;
    }
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let how = "install Debian's kcat (`sudo apt-get install kcat`; it is librdkafka 2.0.2, \
               the old client these tests want) and run again";
    if !root_user || find_on_path("apt-get").is_none() {
        panic!("kcat is not on PATH: {how}");
    }
    let mut install = Command::new("sh");
    install
        .args(["-c", "apt-get update -q && apt-get install -y -q kcat"])
        .env("DEBIAN_FRONTEND", "noninteractive");
    run_setup(
        &mut install,
        &format!("kcat is not on PATH and installing it failed: {how}"),
    );
    find_on_path("kcat").unwrap_or_else(|| panic!("apt-get installed kcat but it is not on PATH"))
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs kcat with `args` and `stdin`, to its end.
pub fn run_kcat(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(kcat())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running kcat");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(stdin)
        .expect("writing kcat's stdin");
    let output = child.wait_with_output().expect("waiting for kcat");
    assert!(
        output.status.success(),
        "kcat {} failed ({})\n---- stdout ----\n{}\n---- stderr ----\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// `n` ports of 127.0.0.1 that were free a moment ago (for brokers that must know each
/// other's ports before they start).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("bound").port())
        .collect()
}

/// Three `odradek broker` processes on 127.0.0.1 forming one cluster (node ids 1-3,
/// every one a voter), each with `extra_args` too.
pub fn start_cluster(extra_args: &[&str]) -> Vec<Broker> {
    start_cluster_logging(extra_args, None)
}

/// [`start_cluster`] whose brokers log as `rust_log` says, when given.
pub fn start_cluster_logging(extra_args: &[&str], rust_log: Option<&str>) -> Vec<Broker> {
    let ports = free_ports(6);
    let (client, peer) = (&ports[..3], &ports[3..]);
    let voters = (0..3)
        .map(|i| format!("{}@127.0.0.1:{}", i + 1, peer[i]))
        .collect::<Vec<_>>()
        .join(",");
    (0..3)
        .map(|i| {
            let id = (i + 1).to_string();
            let mut args = vec!["--node-id", &id, "--voters", &voters];
            args.extend_from_slice(extra_args);
            Broker::start_logging(Port::Fixed(client[i]), &args, rust_log)
        })
        .collect()
}

/// Reads lines from a child's stdout as they come, on a thread.
pub fn line_reader(stdout: impl Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}
