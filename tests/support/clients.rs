//! The Java and Go client programs of issue 16 (parts 3 and 4), built once and run by
//! the tests: each subcommand prints one JSON line, read with [`super::json::Json`].
//!
//! ```text
//!  java_client(args) ──► java -cp target/java-clients/{odradek-java-clients.jar,lib/*}
//!                          dev.odradek.clients.Main ARGS   (tests/java/clients, `mvn -q package`)
//!  go_client(args)   ──► target/go-clients/odradek-go-clients ARGS   (tests/go, `go build`)
//! ```
//!
//! Each build runs under a file lock and is reused while its stamp (the text of every
//! source file it was built from) matches the sources. A missing JDK, Maven or Go is a
//! test failure saying what to install, never a skip.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::json::Json;
use super::{ScriptOutput, run_with_patience, target_lock, workspace_root};

/// The text of every file under `dir` whose name ends in one of `suffixes`, in path
/// order, each after its path: what a build depends on.
fn sources(dir: &Path, suffixes: &[&str]) -> String {
    fn walk(dir: &Path, suffixes: &[&str], found: &mut Vec<PathBuf>) {
        let entries =
            fs::read_dir(dir).unwrap_or_else(|error| panic!("listing {}: {error}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, suffixes, found);
            } else if suffixes
                .iter()
                .any(|suffix| path.to_string_lossy().ends_with(suffix))
            {
                found.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(dir, suffixes, &mut found);
    found.sort();
    let mut text = String::new();
    for path in found {
        text.push_str(&format!("== {}\n", path.display()));
        text.push_str(
            &fs::read_to_string(&path)
                .unwrap_or_else(|error| panic!("reading {}: {error}", path.display())),
        );
    }
    text
}

/// Runs `build` under `<target>/<name>.lock` unless `<out>/odradek-sources.txt` holds
/// `wanted` and `product` exists; writes the stamp after a build.
fn build_once(name: &str, out: &Path, product: &Path, wanted: &str, build: impl FnOnce()) {
    let lock = target_lock(name);
    let stamp = out.join("odradek-sources.txt");
    // Trailing newlines aside: .ci/run writes the same stamp from a shell variable.
    let ready = product.exists()
        && fs::read_to_string(&stamp)
            .is_ok_and(|s| s.trim_end_matches('\n') == wanted.trim_end_matches('\n'));
    if !ready {
        let _ = fs::remove_file(&stamp);
        build();
        assert!(
            product.exists(),
            "the build finished but {} is missing",
            product.display()
        );
        fs::write(&stamp, wanted).expect("writing the build stamp");
    }
    drop(lock);
}

fn check_output(what: &str, how: &str, output: std::process::Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}); {how}\n---- stdout ----\n{}\n---- stderr ----\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn found(program: &str, flag: &str) -> bool {
    Command::new(program)
        .arg(flag)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// `<workspace>/target/java-clients`: the jar and `lib/` (kafka-clients and logging).
pub fn java_clients_dir() -> PathBuf {
    let project = workspace_root().join("tests/java/clients");
    let out = workspace_root().join("target").join("java-clients");
    let jar = out.join("odradek-java-clients.jar");
    let wanted = sources(&project, &["pom.xml", ".java", ".properties"]);
    build_once("java-clients", &out, &jar, &wanted, || {
        let how = "the Java client program is built with Maven (tests/java/clients/pom.xml) \
                   and run with a JDK 17: install both (Debian: apt-get install \
                   openjdk-17-jdk-headless maven), or run .ci/run, which installs them";
        for (program, flag) in [("java", "-version"), ("mvn", "-v")] {
            assert!(found(program, flag), "`{program} {flag}` failed: {how}");
        }
        let output = Command::new("mvn")
            .args(["-q", "-B", "-Dstyle.color=never", "-f"])
            .arg(project.join("pom.xml"))
            .arg("package")
            .arg(format!("-Dodradek.out={}", out.display()))
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("running mvn: {error}; {how}"));
        check_output("mvn package of tests/java/clients", how, output);
    });
    out
}

/// Runs one subcommand of the Java client program to its end; the caller asserts.
pub fn java_client(args: &[&str]) -> ScriptOutput {
    let dir = java_clients_dir();
    let classpath = format!(
        "{}:{}/*",
        dir.join("odradek-java-clients.jar").display(),
        dir.join("lib").display()
    );
    let mut command = Command::new("java");
    command
        .arg("-cp")
        .arg(classpath)
        // A small heap and quick start: a JVM per scenario on a shared 2-core machine.
        .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
        .arg("dev.odradek.clients.Main")
        .args(args);
    run_with_patience(command, &format!("java client {}", args.join(" ")))
}

/// The `go` command: on PATH, else Go's default install place.
fn go() -> PathBuf {
    if found("go", "version") {
        return PathBuf::from("go");
    }
    let default = PathBuf::from("/usr/local/go/bin/go");
    assert!(
        default.exists(),
        "Go is needed to build tests/go (franz-go and sarama): install Go 1.26 or newer \
         into /usr/local/go, or put `go` on PATH"
    );
    default
}

/// `<workspace>/target/go-clients/odradek-go-clients`, built from tests/go.
pub fn go_clients_binary() -> PathBuf {
    let module = workspace_root().join("tests/go");
    let out = workspace_root().join("target").join("go-clients");
    let binary = out.join("odradek-go-clients");
    let wanted = sources(&module, &["go.mod", "go.sum", ".go"]);
    build_once("go-clients", &out, &binary, &wanted, || {
        let output = Command::new(go())
            .args(["build", "-o"])
            .arg(&binary)
            .arg(".")
            .current_dir(&module)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("running go build: {error}"));
        check_output(
            "go build of tests/go",
            "the Go module proxy (or a filled module cache, `go mod download`) is needed",
            output,
        );
    });
    binary
}

/// Runs one subcommand of the Go client program, with extra environment variables, to
/// its end; the caller asserts.
pub fn go_client(args: &[&str], env: &[(&str, &str)]) -> ScriptOutput {
    let mut command = Command::new(go_clients_binary());
    command.args(args).envs(env.iter().copied());
    run_with_patience(command, &format!("go client {}", args.join(" ")))
}

/// The JSON report a client program printed as its last stdout line, after checking
/// that it exited 0.
pub fn report(output: &ScriptOutput, what: &str) -> Json {
    output.assert_success(what);
    let line = output
        .stdout
        .lines()
        .rev()
        .find(|line| line.starts_with('{'))
        .unwrap_or_else(|| {
            panic!(
                "{what} printed no JSON report\n---- stdout ----\n{}\n---- stderr ----\n{}",
                output.stdout, output.stderr
            )
        });
    eprintln!("{what}: {line}");
    Json::parse(line)
}
