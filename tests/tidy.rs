//! Tidy: the core crates (`log`, `replication`, `model`) reach the world only through
//! the Io seam (`log/src/io.rs`). Clippy's `disallowed-methods`/`disallowed-types`
//! (each core crate's clippy.toml) catch calls; this test catches what clippy cannot:
//! `use` of forbidden modules, forbidden dependencies in the manifests, and a
//! clippy.toml that went missing. It also keeps the shape issue 17 gave the code: no
//! import cycle between modules, no production function longer than a reader can hold.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

const CORE_CRATES: &[&str] = &["log", "replication", "model"];

/// Source patterns a core crate must never contain, and why.
const FORBIDDEN_SOURCE: &[(&str, &str)] = &[
    (
        "std::time::Instant",
        "use odradek_log::io::Instant and Io::now",
    ),
    ("std::time::SystemTime", "use Io::wall_clock_ms"),
    ("SystemTime::now", "use Io::wall_clock_ms"),
    ("Instant::now", "use Io::now"),
    ("std::thread", "core state machines are single-threaded"),
    ("std::fs", "use the Disk trait"),
    ("std::net", "the network belongs to the driver"),
    ("std::process", "the core never exits or spawns"),
    (
        "std::env",
        "configuration arrives through the node's config",
    ),
    (
        "tokio::",
        "the core is driven by events, not an async runtime",
    ),
    ("thread_rng", "use Io::random"),
    ("rand::", "use Io::random"),
    ("OsRng", "use Io::random"),
    ("getrandom", "use Io::random"),
    (
        "HashMap",
        "iteration order differs per process; use BTreeMap",
    ),
    (
        "HashSet",
        "iteration order differs per process; use BTreeSet",
    ),
    ("println!", "the core does not print; use tracing"),
    ("eprintln!", "the core does not print; use tracing"),
];

/// Dependencies a core crate must never have.
const FORBIDDEN_DEPENDENCIES: &[&str] = &[
    "tokio",
    "rand",
    "rand_chacha",
    "getrandom",
    "mio",
    "async-std",
    "libc",
    "nix",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bin/ has a parent")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Drops `//` comments and string contents so that documentation may name the
/// forbidden things it explains.
fn code_only(line: &str) -> String {
    let mut code = String::new();
    let mut in_string = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_string {
            if c == '\\' {
                chars.next();
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c == '"' {
            in_string = true;
            continue;
        }
        if c == '/' && chars.peek() == Some(&'/') {
            break;
        }
        code.push(c);
    }
    code
}

#[test]
fn core_sources_do_not_reach_past_the_seam() {
    let root = workspace_root();
    let mut violations = Vec::new();
    for krate in CORE_CRATES {
        let mut files = Vec::new();
        rust_files(&root.join(krate).join("src"), &mut files);
        assert!(
            !files.is_empty(),
            "{krate}/src has no Rust files: is the layout still right?"
        );
        for file in files {
            let text = fs::read_to_string(&file).expect("readable source");
            for (number, line) in text.lines().enumerate() {
                let code = code_only(line);
                for (pattern, why) in FORBIDDEN_SOURCE {
                    if code.contains(pattern) {
                        violations.push(format!(
                            "{}:{}: `{pattern}`: {why}",
                            file.display(),
                            number + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "core crates reach past the Io seam:\n{}",
        violations.join("\n")
    );
}

#[test]
fn core_manifests_have_no_forbidden_dependencies() {
    let root = workspace_root();
    for krate in CORE_CRATES {
        let manifest = fs::read_to_string(root.join(krate).join("Cargo.toml")).expect("manifest");
        let mut section = String::new();
        for line in manifest.lines() {
            let line = line.trim();
            if line.starts_with('[') {
                section = line.to_string();
                continue;
            }
            // Dev-dependencies may use anything: tests are not the core.
            if section != "[dependencies]" {
                continue;
            }
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            assert!(
                !FORBIDDEN_DEPENDENCIES.contains(&name),
                "{krate}/Cargo.toml depends on {name}, which the core must not use"
            );
        }
    }
}

#[test]
fn core_crates_keep_their_clippy_rules() {
    let root = workspace_root();
    for krate in CORE_CRATES {
        let path = root.join(krate).join("clippy.toml");
        let rules =
            fs::read_to_string(&path).unwrap_or_else(|_| panic!("{} is missing", path.display()));
        for needed in [
            "std::time::Instant::now",
            "std::thread::spawn",
            "std::fs::File",
            "std::collections::HashMap",
        ] {
            assert!(
                rules.contains(needed),
                "{} no longer forbids {needed}",
                path.display()
            );
        }
    }
}

#[test]
fn the_checker_sees_through_comments_but_not_code() {
    assert_eq!(
        code_only(r#"let x = 1; // std::fs is fine here"#),
        "let x = 1; "
    );
    assert_eq!(code_only(r#"warn!("std::fs in a message")"#), "warn!()");
    assert!(code_only("use std::fs::File;").contains("std::fs"));
}

/// The source folder of every crate of the workspace.
const CRATE_SOURCES: [&str; 5] = [
    "log/src",
    "model/src",
    "replication/src",
    "sim/src",
    "bin/src",
];

/// Import cycles between the top-level modules of a crate that are tolerated, by crate:
/// none since issue 17. A cycle fails the test; one listed here that is gone does too.
const KNOWN_CYCLES: &[(&str, &[&str])] = &[];

/// The top-level module each file of `src` belongs to (`group/offsets.rs` → `group`),
/// and the top-level modules it names through `crate::`, outside comments, strings and
/// the `#[cfg(test)] mod tests` that ends a file (tests may reach anywhere; the check
/// reads no further than the first such module, so code belongs above it).
fn module_imports(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let module_of = |path: &Path| {
        let relative = path.strip_prefix(src).expect("under src");
        let first = relative.components().next().expect("a file");
        let first = first.as_os_str().to_string_lossy();
        first.strip_suffix(".rs").unwrap_or(&first).to_string()
    };
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).collect();
    let mut imports: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(file);
        let text = fs::read_to_string(file).expect("readable source");
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        for line in code.lines().map(code_only) {
            for (at, _) in line.match_indices("crate::") {
                let name: String = line[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name != module && modules.contains(&name) {
                    imports.entry(module.clone()).or_default().insert(name);
                }
            }
        }
    }
    imports
}

/// The modules of every cycle in `imports` (its strongly connected components of
/// more than one module), each sorted.
fn cycles(imports: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    // Reachability by repeated search is plenty for a few dozen modules.
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_string()];
        while let Some(module) = stack.pop() {
            for next in imports.get(&module).into_iter().flatten() {
                if next == to {
                    return true;
                }
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        false
    };
    let mut found = BTreeSet::new();
    for module in imports.keys() {
        let mut cycle: Vec<String> = imports
            .keys()
            .filter(|other| *other == module || (reaches(module, other) && reaches(other, module)))
            .cloned()
            .collect();
        if cycle.len() > 1 {
            cycle.sort();
            found.insert(cycle);
        }
    }
    found
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let root = workspace_root();
    let mut unexpected = Vec::new();
    let mut gone = Vec::new();
    for src in CRATE_SOURCES {
        let found = cycles(&module_imports(&root.join(src)));
        let known: BTreeSet<Vec<String>> = KNOWN_CYCLES
            .iter()
            .filter(|(crate_src, _)| *crate_src == src)
            .map(|(_, modules)| modules.iter().map(|m| m.to_string()).collect())
            .collect();
        unexpected.extend(found.difference(&known).map(|c| format!("{src}: {c:?}")));
        gone.extend(known.difference(&found).map(|c| format!("{src}: {c:?}")));
    }
    assert!(
        unexpected.is_empty(),
        "modules that import each other (through crate::): {unexpected:?}"
    );
    assert!(
        gone.is_empty(),
        "cycles no longer there: take them off KNOWN_CYCLES: {gone:?}"
    );
}

#[test]
fn the_cycle_finder_finds_a_cycle_and_only_that() {
    let imports: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(m, to)| (m.to_string(), to.into_iter().map(String::from).collect()))
    .collect();
    let expected: BTreeSet<Vec<String>> =
        [vec!["a".to_string(), "b".to_string(), "c".to_string()]].into();
    assert_eq!(cycles(&imports), expected);
}

/// Lines a production function may span, signature and closing brace included
/// (TigerBeetle's limit: a function a reader can hold).
const FUNCTION_LINES_MAX: usize = 70;

/// Production functions tolerated over that length, as `path: name`: none since
/// issue 17. A longer function fails the test; one listed here that is no longer long
/// does too.
const KNOWN_LONG_FUNCTIONS: &[&str] = &[];

/// The production functions of `src` longer than `limit` lines, as `path: name`. A
/// function runs from its `fn` line to the first line that is its indentation and `}`
/// (rustfmt's layout). Test code is left out: files whose name ends in `tests`, and the
/// `#[cfg(test)] mod tests` that ends a file.
fn long_functions(root: &Path, src: &str, limit: usize) -> BTreeSet<String> {
    let mut files = Vec::new();
    rust_files(&root.join(src), &mut files);
    let mut long = BTreeSet::new();
    for file in files {
        let stem = file.file_stem().expect("a file name").to_string_lossy();
        if stem.ends_with("tests") {
            continue;
        }
        let text = fs::read_to_string(&file).expect("readable source");
        let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        let relative = file.strip_prefix(root).expect("under the root");
        for (name, lines) in function_lengths(code) {
            if lines > limit {
                long.insert(format!("{}: {name}", relative.display()));
            }
        }
    }
    long
}

/// Every function with a body in `code`, with the lines it spans.
fn function_lengths(code: &str) -> Vec<(String, usize)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut found = Vec::new();
    for (at, line) in lines.iter().enumerate() {
        let Some((indent, name)) = function_start(line) else {
            continue;
        };
        let closing = format!("{indent}}}");
        for (end, body_line) in lines.iter().enumerate().skip(at) {
            let declaration_only = body_line.trim_end().ends_with(';')
                && (end == at || !body_line.starts_with(&format!("{indent} ")));
            if declaration_only {
                break;
            }
            if *body_line == closing {
                found.push((name, end - at + 1));
                break;
            }
        }
    }
    found
}

/// The indentation and name of a line that starts a function.
fn function_start(line: &str) -> Option<(String, String)> {
    let indent: String = line.chars().take_while(|c| *c == ' ').collect();
    let mut rest = &line[indent.len()..];
    if rest.starts_with("pub") {
        rest = rest.split_once(' ')?.1;
    }
    for qualifier in ["const ", "async ", "unsafe "] {
        rest = rest.strip_prefix(qualifier).unwrap_or(rest);
    }
    let name: String = rest
        .strip_prefix("fn ")?
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    Some((indent, name))
}

#[test]
fn no_production_function_is_longer_than_a_reader_can_hold() {
    let root = workspace_root();
    let mut found = BTreeSet::new();
    for src in CRATE_SOURCES {
        found.extend(long_functions(&root, src, FUNCTION_LINES_MAX));
    }
    let known: BTreeSet<String> = KNOWN_LONG_FUNCTIONS.iter().map(|f| f.to_string()).collect();
    let new: Vec<&String> = found.difference(&known).collect();
    let gone: Vec<&String> = known.difference(&found).collect();
    assert!(
        new.is_empty(),
        "functions over {FUNCTION_LINES_MAX} lines: split them (push ifs up, fors down): {new:?}"
    );
    assert!(
        gone.is_empty(),
        "functions no longer over {FUNCTION_LINES_MAX} lines: take them off KNOWN_LONG_FUNCTIONS: {gone:?}"
    );
}

#[test]
fn the_length_finder_measures_bodies_and_skips_declarations() {
    let code = "pub(crate) fn short() {\n}\ntrait T {\n    fn declared(&self) -> u8;\n    fn given(&self) {\n        let x = 1;\n    }\n}\nasync fn multi(\n    a: u8,\n) -> u8 {\n    a\n}\n";
    let lengths = function_lengths(code);
    assert_eq!(
        lengths,
        vec![
            ("short".to_string(), 2),
            ("given".to_string(), 3),
            ("multi".to_string(), 5)
        ]
    );
}
