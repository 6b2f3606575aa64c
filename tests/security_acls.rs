//! ACLs in force, against real `odradek broker` processes: bindings added, listed and
//! removed with `odradek acls` and Kafka's kafka-acls.sh, a real producer
//! (confluent-kafka) refused and then let in, bindings kept across a restart and
//! applied by every broker of a three-broker cluster.
//!
//! Until SASL lands every connection is `User:ANONYMOUS`, so these tests grant and
//! deny that principal; per-principal checks (User:alice against User:bob) are in
//! replication/tests/authorization.rs.

mod support;

use std::time::{Duration, Instant};

use support::java::kafka_tool;
use support::{Broker, Port, run, run_python, start_cluster};

const STANDARD_AUTHORIZER: &str =
    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer";
const PATIENCE: Duration = Duration::from_secs(30);

/// A broker with the authorizer on and `extra` overrides.
fn secured_broker(extra: &[&str]) -> Broker {
    let mut args = vec!["--override", STANDARD_AUTHORIZER];
    for value in extra {
        args.push("--override");
        args.push(value);
    }
    Broker::start_with(Port::Free, &args)
}

fn acls(broker: &Broker, args: &[&str]) -> support::Run {
    let bootstrap = broker.bootstrap();
    let mut all = vec!["acls", "--bootstrap-server", &bootstrap];
    all.extend_from_slice(args);
    run(&all, b"")
}

/// Produces one record to `topic` with confluent-kafka: its output (acks or failures)
/// and whether it succeeded.
fn produce_one(broker: &Broker, topic: &str) -> (bool, String) {
    let bootstrap = broker.bootstrap();
    let output = run_python(
        "produce.py",
        &[
            "--client",
            "confluent",
            "--bootstrap",
            &bootstrap,
            "--topic",
            topic,
            "--count",
            "1",
            "--idempotence",
            "false",
        ],
    );
    (output.status.success(), output.stdout)
}

#[test]
fn acls_given_with_odradek_acls_refuse_and_let_a_real_producer_in_and_survive_a_restart() {
    // No binding names the cluster yet: allow.everyone.if.no.acl.found lets the
    // setup in; then ALL on the cluster keeps it in once the cluster has a binding.
    let mut broker = secured_broker(&["allow.everyone.if.no.acl.found=true"]);
    let bootstrap = broker.bootstrap();
    run(
        &[
            "topics",
            "create",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "t",
        ],
        b"",
    )
    .ok();
    acls(
        &broker,
        &[
            "--add",
            "--allow-principal",
            "User:ANONYMOUS",
            "--operation",
            "All",
            "--cluster",
        ],
    )
    .ok();
    let (ok, output) = produce_one(&broker, "t");
    assert!(ok, "no binding names t yet: {output}");
    let added = acls(
        &broker,
        &[
            "--add",
            "--deny-principal",
            "User:ANONYMOUS",
            "--operation",
            "Write",
            "--topic",
            "t",
        ],
    )
    .ok();
    assert!(added.stdout.contains("Adding ACLs for resource `ResourcePattern(resourceType=TOPIC, name=t, patternType=LITERAL)`"), "{}", added.stdout);
    let (ok, output) = produce_one(&broker, "t");
    assert!(!ok, "DENY WRITE let the producer in: {output}");
    assert!(
        output.contains("TOPIC_AUTHORIZATION_FAILED") || output.to_lowercase().contains("authoriz"),
        "{output}"
    );
    broker.stop();
    broker.restart();
    let listed = acls(&broker, &["--list", "--topic", "t"]).ok();
    assert!(
        listed
            .stdout
            .contains("(principal=User:ANONYMOUS, host=*, operation=WRITE, permissionType=DENY)"),
        "{}",
        listed.stdout
    );
    let (ok, output) = produce_one(&broker, "t");
    assert!(!ok, "the DENY was forgotten at the restart: {output}");
    acls(&broker, &["--remove", "--force", "--topic", "t"]).ok();
    let (ok, output) = produce_one(&broker, "t");
    assert!(ok, "removed, yet refused: {output}");
}

#[test]
fn without_acls_everything_is_refused_unless_anonymous_is_a_super_user() {
    let broker = secured_broker(&[]);
    let listed = acls(&broker, &["--list"]).failed();
    assert!(
        listed.stderr.contains("CLUSTER_AUTHORIZATION_FAILED"),
        "{}",
        listed.stderr
    );
    let bootstrap = broker.bootstrap();
    let created = run(
        &[
            "topics",
            "create",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "t",
        ],
        b"",
    )
    .failed();
    assert!(
        created.stderr.contains("TOPIC_AUTHORIZATION_FAILED"),
        "{}",
        created.stderr
    );
    let open = secured_broker(&["super.users=User:ANONYMOUS"]);
    let bootstrap = open.bootstrap();
    run(
        &[
            "topics",
            "create",
            "--bootstrap-server",
            &bootstrap,
            "--topic",
            "t",
        ],
        b"",
    )
    .ok();
    let (ok, output) = produce_one(&open, "t");
    assert!(ok, "a super user was refused: {output}");
    // Without an authorizer the ACL APIs are SECURITY_DISABLED.
    let plain = Broker::start();
    let refused = acls(&plain, &["--list"]).failed();
    assert!(
        refused.stderr.contains("SECURITY_DISABLED"),
        "{}",
        refused.stderr
    );
}

#[test]
fn kafka_acls_adds_lists_and_removes_bindings() {
    let broker = secured_broker(&["super.users=User:ANONYMOUS"]);
    let bootstrap = broker.bootstrap();
    let tool = |args: &[&str]| {
        let mut all = vec!["--bootstrap-server", &bootstrap];
        all.extend_from_slice(args);
        let output = kafka_tool("kafka-acls.sh", &all, b"");
        output.assert_success(&format!("kafka-acls.sh {}", args.join(" ")));
        output.stdout
    };
    tool(&[
        "--add",
        "--allow-principal",
        "User:alice",
        "--operation",
        "Read",
        "--topic",
        "orders",
        "--resource-pattern-type",
        "prefixed",
    ]);
    tool(&[
        "--add",
        "--allow-principal",
        "User:bob",
        "--consumer",
        "--topic",
        "orders",
        "--group",
        "billing",
    ]);
    let listed = tool(&[
        "--list",
        "--topic",
        "orders-eu",
        "--resource-pattern-type",
        "match",
    ]);
    assert!(
        listed.contains("User:alice"),
        "MATCH finds the prefixed binding: {listed}"
    );
    assert!(
        !listed.contains("User:bob"),
        "bob's binding is literal orders only: {listed}"
    );
    // odradek acls sees what kafka-acls wrote.
    let ours = acls(&broker, &["--list", "--group", "billing"]).ok().stdout;
    assert!(
        ours.contains("(principal=User:bob, host=*, operation=READ, permissionType=ALLOW)"),
        "{ours}"
    );
    tool(&[
        "--remove",
        "--force",
        "--topic",
        "orders",
        "--resource-pattern-type",
        "any",
    ]);
    let left = tool(&["--list"]);
    assert!(
        !left.contains("User:alice") && left.contains("billing"),
        "{left}"
    );
}

#[test]
fn bindings_reach_every_broker_of_a_cluster() {
    let brokers = start_cluster(&[
        "--override",
        STANDARD_AUTHORIZER,
        "--override",
        "super.users=User:ANONYMOUS",
    ]);
    // Any broker takes the change and forwards it to the controller.
    acls(
        &brokers[1],
        &[
            "--add",
            "--allow-principal",
            "User:carol",
            "--operation",
            "Write",
            "--topic",
            "shared",
        ],
    )
    .ok();
    for broker in &brokers {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let listed = acls(broker, &["--list", "--topic", "shared"]);
            if listed.code == Some(0) && listed.stdout.contains("User:carol") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "broker {} never listed it: {}{}",
                broker.bootstrap(),
                listed.stdout,
                listed.stderr
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
