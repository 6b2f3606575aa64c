//! Kafka's own command-line tools (`kafka-topics.sh`, `kafka-console-consumer.sh`, ...)
//! run from the tests: the jars `tests/java/pom.xml` pins, and the scripts of
//! `tests/java/bin/` that run a tool class on them through `tests/java/kafka-run-class`.
//!
//! ```text
//!  test ──► kafka_tool("kafka-topics.sh", args, stdin)
//!            └─► tests/java/bin/kafka-topics.sh ─► kafka-run-class ─► java -cp JARS/* CLASS
//!  JARS = $ODRADEK_KAFKA_JARS, else <workspace>/target/kafka-jars, copied there once by
//!         `mvn dependency:copy-dependencies` under a file lock (as .ci/run does)
//! ```
//!
//! ```text
//!  test ──► KafkaServer::start(nodes, settings) ──► tests/java/kafka-server start --dir D ...
//!            (Apache Kafka itself, KRaft combined mode, on free ports of 127.0.0.1)
//!            └─ drop: tests/java/kafka-server stop --dir D --kill
//! ```
//!
//! A missing JDK or Maven is a test failure that says what to install, never a skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{
    ScriptOutput, TempDir, free_ports, run_with_patience, run_with_stdin, target_lock,
    workspace_root,
};

/// `tests/java/`: the pom, the launcher and the tool scripts.
pub fn java_dir() -> PathBuf {
    workspace_root().join("tests").join("java")
}

/// The directory of Kafka's jars: `$ODRADEK_KAFKA_JARS` if set (then it must hold
/// them), else `<workspace>/target/kafka-jars`, resolved with Maven on first use under
/// a file lock, so parallel tests (and test binaries) resolve them once. The stamp
/// `odradek-pom.xml` in it is the pom the jars came from: a changed pom resolves again.
pub fn kafka_jars() -> PathBuf {
    if let Some(jars) = std::env::var_os("ODRADEK_KAFKA_JARS") {
        let jars = PathBuf::from(jars);
        assert!(
            has_kafka_tools(&jars),
            "ODRADEK_KAFKA_JARS is {} but it holds no kafka-tools-*.jar; unset it, or run \
             `mvn -f tests/java/pom.xml dependency:copy-dependencies -DoutputDirectory={}`",
            jars.display(),
            jars.display()
        );
        return jars;
    }
    let jars = workspace_root().join("target").join("kafka-jars");
    let pom = java_dir().join("pom.xml");
    let stamp = jars.join("odradek-pom.xml");
    let wanted = fs::read_to_string(&pom)
        .unwrap_or_else(|error| panic!("reading {}: {error}", pom.display()));
    let lock = target_lock("kafka-jars");
    let ready = has_kafka_tools(&jars) && fs::read_to_string(&stamp).is_ok_and(|s| s == wanted);
    if !ready {
        install_jars(&pom, &jars);
        fs::write(&stamp, &wanted).expect("writing the kafka-jars stamp");
    }
    drop(lock);
    jars
}

fn has_kafka_tools(jars: &Path) -> bool {
    fs::read_dir(jars).is_ok_and(|entries| {
        entries.flatten().any(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.starts_with("kafka-tools-") && name.ends_with(".jar")
        })
    })
}

fn install_jars(pom: &Path, jars: &Path) {
    let how = "Kafka's jars are resolved with Maven (tests/java/pom.xml) and run with a JDK: \
               install both (Debian: apt-get install openjdk-17-jdk-headless maven), or run \
               .ci/run, which installs them";
    for (program, flag) in [("java", "-version"), ("mvn", "-v")] {
        let found = Command::new(program)
            .arg(flag)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        assert!(found, "`{program} {flag}` failed: {how}");
    }
    let _ = fs::remove_dir_all(jars);
    fs::create_dir_all(jars).unwrap_or_else(|error| panic!("creating {}: {error}", jars.display()));
    let output = Command::new("mvn")
        .args(["-q", "-B", "-Dstyle.color=never", "-f"])
        .arg(pom)
        .arg("dependency:copy-dependencies")
        .arg(format!("-DoutputDirectory={}", jars.display()))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("running mvn: {error}; {how}"));
    assert!(
        output.status.success(),
        "mvn dependency:copy-dependencies failed ({}); {how}\n---- stdout ----\n{}\n---- stderr ----\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        has_kafka_tools(jars),
        "mvn finished but {} holds no kafka-tools-*.jar",
        jars.display()
    );
}

/// Runs Kafka's `tests/java/bin/<script>` (e.g. `kafka-topics.sh`) with `args`, `stdin`
/// as its standard input, to its end (killed after [`super::SCRIPT_PATIENCE`]).
/// Whether it succeeded is for the caller to assert.
pub fn kafka_tool(script: &str, args: &[&str], stdin: &[u8]) -> ScriptOutput {
    let path = java_dir().join("bin").join(script);
    assert!(path.is_file(), "no tool script {}", path.display());
    let mut command = Command::new(&path);
    command.args(args).env("ODRADEK_KAFKA_JARS", kafka_jars());
    run_with_stdin(command, stdin, &format!("{script} {}", args.join(" ")))
}

/// Apache Kafka itself (the broker of the pinned kafka_2.13 jar), started by
/// `tests/java/kafka-server` in KRaft combined mode on free ports of 127.0.0.1, each node
/// over a fresh directory under `<target>/odradek-tests/`. Killed on drop.
pub struct KafkaServer {
    dir: TempDir,
    bootstrap: String,
}

impl KafkaServer {
    /// Starts `nodes` Kafka nodes (1, or 3 for a cluster) with `settings` (`key=value`
    /// broker properties such as `log.flush.interval.messages=1`) and waits until every
    /// node serves clients.
    pub fn start(nodes: usize, settings: &[&str]) -> KafkaServer {
        let dir = TempDir::new("kafka-server");
        let ports = free_ports(2 * nodes);
        let join = |ports: &[u16]| {
            ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut command = Command::new(java_dir().join("kafka-server"));
        command
            .env("ODRADEK_KAFKA_JARS", kafka_jars())
            .arg("start")
            .arg("--dir")
            .arg(dir.path().join("kafka"))
            .args(["--ports", &join(&ports[..nodes])])
            .args(["--controller-ports", &join(&ports[nodes..])]);
        for setting in settings {
            command.args(["--set", setting]);
        }
        let output = run_with_patience(command, "kafka-server start");
        output.assert_success("kafka-server start");
        let bootstrap = output
            .stdout
            .lines()
            .find_map(|line| line.strip_prefix("KAFKA_BOOTSTRAP="))
            .unwrap_or_else(|| {
                panic!(
                    "no KAFKA_BOOTSTRAP= line from kafka-server:\n{}",
                    output.stdout
                )
            })
            .to_string();
        KafkaServer { dir, bootstrap }
    }

    /// The bootstrap servers, `127.0.0.1:P[,...]`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The directory of node `node` (1-based): its server.properties, server.log, data/.
    pub fn node_dir(&self, node: usize) -> PathBuf {
        self.dir.path().join("kafka").join(format!("node-{node}"))
    }

    /// Stops every node with SIGTERM (a controlled shutdown) and waits for it; panics
    /// unless the script succeeded.
    pub fn stop(&mut self) {
        self.stop_with(&[]).assert_success("kafka-server stop");
    }

    fn stop_with(&self, flags: &[&str]) -> ScriptOutput {
        let mut command = Command::new(java_dir().join("kafka-server"));
        command
            .arg("stop")
            .arg("--dir")
            .arg(self.dir.path().join("kafka"))
            .args(flags);
        run_with_patience(command, "kafka-server stop")
    }
}

impl Drop for KafkaServer {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let log = self.node_dir(1).join("server.log");
            eprintln!("Kafka's log: {}", log.display());
        }
        let _ = self.stop_with(&["--kill"]);
    }
}
