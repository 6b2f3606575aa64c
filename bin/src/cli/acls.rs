//! `odradek acls`: adds, lists and removes ACL bindings with `kafka-acls.sh`'s flags
//! and output, so its commands run with only the program name changed:
//!
//! ```text
//! odradek acls --bootstrap-server H:P --add --allow-principal User:alice \
//!     --operation Read --operation Describe --topic orders
//! odradek acls --bootstrap-server H:P --list [--topic orders] [--resource-pattern-type match]
//! odradek acls --bootstrap-server H:P --remove --force --topic orders
//! odradek acls --bootstrap-server H:P --add --allow-principal User:bob --consumer \
//!     --topic orders --group billing
//! ```

use std::collections::BTreeMap;
use std::io::BufRead as _;

use anyhow::{anyhow, bail};
use odradek_replication::acl::{
    AclBinding, CLUSTER_NAME, CODE_ANY, Operation, PATTERN_MATCH, PatternType, Permission,
    ResourceType, WILDCARD,
};

use crate::cli::UsageError;
use crate::cli::client_tools::{self, DEFAULT_BOOTSTRAP_SERVER};
use crate::client::Client;
use crate::client::acls::AclFilterSpec;

/// Flags of `odradek acls`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A broker to bootstrap from (comma-separated list allowed).
    #[arg(long, value_name = "HOST:PORT", default_value = DEFAULT_BOOTSTRAP_SERVER)]
    bootstrap_server: String,
    /// Client security settings (Kafka's `--command-config`): `security.protocol`,
    /// `ssl.*`.
    #[arg(long, value_name = "FILE")]
    command_config: Option<std::path::PathBuf>,
    /// Add the ACLs the other flags describe.
    #[arg(long, conflicts_with_all = ["remove", "list"])]
    add: bool,
    /// Remove the ACLs the other flags describe (every ACL of the resources if no
    /// principal is given).
    #[arg(long, conflicts_with = "list")]
    remove: bool,
    /// List the ACLs of the resources given (every resource if none).
    #[arg(long)]
    list: bool,
    /// A principal the ACLs allow (`User:name`, `User:*`); repeatable.
    #[arg(long, value_name = "PRINCIPAL")]
    allow_principal: Vec<String>,
    /// A principal the ACLs deny; repeatable.
    #[arg(long, value_name = "PRINCIPAL")]
    deny_principal: Vec<String>,
    /// Hosts the allow ACLs apply to (default `*`); repeatable.
    #[arg(long, value_name = "HOST")]
    allow_host: Vec<String>,
    /// Hosts the deny ACLs apply to (default `*`); repeatable.
    #[arg(long, value_name = "HOST")]
    deny_host: Vec<String>,
    /// An operation (Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite, All); repeatable.
    #[arg(long, value_name = "OPERATION")]
    operation: Vec<String>,
    /// A topic (`*`: every topic); repeatable.
    #[arg(long, value_name = "TOPIC")]
    topic: Vec<String>,
    /// A consumer group (`*`: every group); repeatable.
    #[arg(long, value_name = "GROUP")]
    group: Vec<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
    /// A transactional id; repeatable.
    #[arg(long, value_name = "ID")]
    transactional_id: Vec<String>,
    /// literal (default), prefixed, or, to list and remove, match or any.
    #[arg(long, value_name = "TYPE", default_value = "literal")]
    resource_pattern_type: String,
    /// Filter --list by this principal.
    #[arg(long, value_name = "PRINCIPAL")]
    principal: Vec<String>,
    /// Remove without asking.
    #[arg(long)]
    force: bool,
    /// The producer's ACLs: WRITE, DESCRIBE and CREATE on the topics, WRITE and
    /// DESCRIBE on the transactional ids.
    #[arg(long, conflicts_with = "consumer")]
    producer: bool,
    /// The consumer's ACLs: READ and DESCRIBE on the topics, READ on the groups.
    #[arg(long)]
    consumer: bool,
}

/// A resource pattern the flags name (type, name).
type Resource = (ResourceType, String);

/// What `--resource-pattern-type` asks for, in Kafka's codes.
fn pattern_code(text: &str) -> Result<i8, String> {
    match text.to_ascii_lowercase().as_str() {
        "literal" => Ok(PatternType::Literal.code()),
        "prefixed" => Ok(PatternType::Prefixed.code()),
        "match" => Ok(PATTERN_MATCH),
        "any" => Ok(CODE_ANY),
        other => Err(format!(
            "--resource-pattern-type {other:?}: expected literal, prefixed, match or any"
        )),
    }
}

/// The resources the flags name.
fn resources(args: &Args) -> Vec<Resource> {
    let mut resources: Vec<Resource> = Vec::new();
    resources.extend(args.topic.iter().map(|t| (ResourceType::Topic, t.clone())));
    resources.extend(args.group.iter().map(|g| (ResourceType::Group, g.clone())));
    if args.cluster {
        resources.push((ResourceType::Cluster, CLUSTER_NAME.to_string()));
    }
    let ids = args.transactional_id.iter();
    resources.extend(ids.map(|id| (ResourceType::TransactionalId, id.clone())));
    resources
}

/// The operations each resource gets: `--operation`s, or `--producer`/`--consumer`'s.
fn operations_for(args: &Args, resource_type: ResourceType) -> Result<Vec<Operation>, String> {
    use Operation::{Create, Describe, Read, Write};
    if args.producer {
        return Ok(match resource_type {
            ResourceType::Topic => vec![Write, Describe, Create],
            ResourceType::TransactionalId => vec![Write, Describe],
            _ => Vec::new(),
        });
    }
    if args.consumer {
        return Ok(match resource_type {
            ResourceType::Topic => vec![Read, Describe],
            ResourceType::Group => vec![Read],
            _ => Vec::new(),
        });
    }
    if args.operation.is_empty() {
        return Ok(vec![Operation::All]);
    }
    args.operation
        .iter()
        .map(|name| {
            Operation::from_name(name).ok_or_else(|| format!("--operation {name:?} is unknown"))
        })
        .collect()
}

/// The bindings `--add` (or `--remove` with principals) names.
fn bindings(args: &Args, pattern_type: PatternType) -> Result<Vec<AclBinding>, String> {
    let hosts = |hosts: &[String]| -> Vec<String> {
        if hosts.is_empty() {
            vec![WILDCARD.to_string()]
        } else {
            hosts.to_vec()
        }
    };
    let grants = [
        (
            Permission::Allow,
            &args.allow_principal,
            hosts(&args.allow_host),
        ),
        (
            Permission::Deny,
            &args.deny_principal,
            hosts(&args.deny_host),
        ),
    ];
    let mut bindings = Vec::new();
    for (resource_type, name) in resources(args) {
        for operation in operations_for(args, resource_type)? {
            for (permission, principals, hosts) in &grants {
                for principal in principals.iter() {
                    for host in hosts {
                        bindings.push(AclBinding {
                            resource_type,
                            pattern_type,
                            name: name.clone(),
                            principal: principal.clone(),
                            host: host.clone(),
                            operation,
                            permission: *permission,
                        });
                    }
                }
            }
        }
    }
    Ok(bindings)
}

/// Checks the flags' combination the way kafka-acls does.
fn check(args: &Args) -> Result<i8, String> {
    if [args.add, args.remove, args.list]
        .iter()
        .filter(|a| **a)
        .count()
        != 1
    {
        return Err("exactly one of --add, --remove and --list is needed".into());
    }
    let pattern = pattern_code(&args.resource_pattern_type)?;
    if args.add && (pattern == PATTERN_MATCH || pattern == CODE_ANY) {
        return Err("--add needs --resource-pattern-type literal or prefixed".into());
    }
    let principals = args.allow_principal.len() + args.deny_principal.len();
    if args.add && principals == 0 {
        return Err("--add needs --allow-principal or --deny-principal".into());
    }
    if (args.add || args.remove) && resources(args).is_empty() {
        return Err("name a resource: --topic, --group, --cluster or --transactional-id".into());
    }
    if args.consumer && (args.topic.is_empty() || args.group.is_empty()) {
        return Err("--consumer needs --topic and --group".into());
    }
    for principal in args.allow_principal.iter().chain(&args.deny_principal) {
        if !principal.contains(':') {
            return Err(format!(
                "principal {principal:?} is not of the form User:name"
            ));
        }
    }
    Ok(pattern)
}

/// Runs `odradek acls`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let pattern = check(&args).map_err(|error| UsageError(anyhow!(error)))?;
    client_tools::block_on(1, async move {
        let client = client_tools::connect(
            &args.bootstrap_server,
            args.command_config.as_deref(),
            "odradek-acls",
        )
        .await?;
        if args.add {
            add(&client, &args, pattern).await
        } else if args.remove {
            remove(&client, &args, pattern).await
        } else {
            list(&client, &args, pattern).await
        }
    })
}

fn literal_or_prefixed(code: i8) -> PatternType {
    (PatternType::ALL.into_iter())
        .find(|p| p.code() == code)
        .unwrap_or(PatternType::Literal)
}

async fn add(client: &Client, args: &Args, pattern: i8) -> anyhow::Result<()> {
    let wanted =
        bindings(args, literal_or_prefixed(pattern)).map_err(|e| UsageError(anyhow!(e)))?;
    for (resource, acls) in by_resource(&wanted) {
        println!("Adding ACLs for resource `{resource}`: ");
        print_acls(&acls);
    }
    let results = client.create_acls(&wanted).await?;
    let failed: Vec<String> = (results.into_iter())
        .filter_map(|result| result.err().map(|error| error.to_string()))
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} ACLs were not added: {}",
            failed.len(),
            wanted.len(),
            failed.join("; ")
        );
    }
    list(client, args, pattern).await
}

async fn remove(client: &Client, args: &Args, pattern: i8) -> anyhow::Result<()> {
    let principals = args.allow_principal.len() + args.deny_principal.len();
    let filters: Vec<AclFilterSpec> = if principals == 0 {
        // No principal: every ACL of each resource.
        let filters = resources(args)
            .into_iter()
            .map(|(resource_type, name)| AclFilterSpec {
                resource_type: resource_type.code(),
                name: Some(name),
                pattern_type: pattern,
                ..AclFilterSpec::any()
            });
        filters.collect()
    } else {
        let pattern = literal_or_prefixed(pattern);
        let named = bindings(args, pattern).map_err(|error| UsageError(anyhow!(error)))?;
        named.iter().map(AclFilterSpec::exactly).collect()
    };
    if !args.force && !confirmed("Are you sure you want to remove ACLs from the resources?")? {
        return Ok(());
    }
    let removed = client.delete_acls(&filters).await?;
    for (resource, acls) in by_resource(&removed) {
        println!("Removed ACLs for resource `{resource}`: ");
        print_acls(&acls);
    }
    Ok(())
}

async fn list(client: &Client, args: &Args, pattern: i8) -> anyhow::Result<()> {
    let principals: Vec<Option<String>> = if args.principal.is_empty() {
        vec![None]
    } else {
        args.principal.iter().cloned().map(Some).collect()
    };
    let mut filters = Vec::new();
    for principal in principals {
        let any = AclFilterSpec {
            principal,
            ..AclFilterSpec::any()
        };
        match resources(args) {
            named if named.is_empty() => filters.push(any),
            named => filters.extend(
                named
                    .into_iter()
                    .map(|(resource_type, name)| AclFilterSpec {
                        resource_type: resource_type.code(),
                        name: Some(name),
                        pattern_type: pattern,
                        ..any.clone()
                    }),
            ),
        }
    }
    let mut found = Vec::new();
    for filter in &filters {
        found.extend(client.describe_acls(filter).await?);
    }
    for (resource, acls) in by_resource(&found) {
        println!("Current ACLs for resource `{resource}`: ");
        print_acls(&acls);
    }
    Ok(())
}

/// Bindings grouped by resource pattern, each shown as kafka-acls shows it.
fn by_resource(bindings: &[AclBinding]) -> BTreeMap<String, Vec<&AclBinding>> {
    let mut grouped: BTreeMap<String, Vec<&AclBinding>> = BTreeMap::new();
    for binding in bindings {
        let resource = format!(
            "ResourcePattern(resourceType={}, name={}, patternType={})",
            binding.resource_type.name(),
            binding.name,
            binding.pattern_type.name()
        );
        let acls = grouped.entry(resource).or_default();
        if !acls.contains(&binding) {
            acls.push(binding);
        }
    }
    grouped
}

fn print_acls(acls: &[&AclBinding]) {
    for acl in acls {
        println!(
            " \t(principal={}, host={}, operation={}, permissionType={}) ",
            acl.principal,
            acl.host,
            acl.operation.name(),
            acl.permission.name()
        );
    }
    println!();
}

/// Asks `question` on the terminal; true for y or yes.
fn confirmed(question: &str) -> anyhow::Result<bool> {
    println!("{question} (y/n)");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(line: &[&str]) -> Args {
        let mut argv = vec!["acls"];
        argv.extend_from_slice(line);
        Cli::parse_from(argv).args
    }

    #[test]
    fn add_expands_principals_hosts_operations_and_resources() {
        let args = args(&[
            "--add",
            "--allow-principal",
            "User:alice",
            "--deny-principal",
            "User:bob",
            "--deny-host",
            "10.0.0.9",
            "--operation",
            "Read",
            "--operation",
            "describe",
            "--topic",
            "t",
            "--resource-pattern-type",
            "prefixed",
        ]);
        let pattern = check(&args).expect("valid");
        assert_eq!(pattern, PatternType::Prefixed.code());
        let bindings = bindings(&args, PatternType::Prefixed).expect("valid");
        assert_eq!(bindings.len(), 4);
        assert!(bindings.iter().any(|b| b.principal == "User:bob"
            && b.host == "10.0.0.9"
            && b.permission == Permission::Deny
            && b.operation == Operation::Describe));
    }

    #[test]
    fn consumer_and_producer_expand_as_kafka_acls_does() {
        let consumer = args(&[
            "--add",
            "--allow-principal",
            "User:c",
            "--consumer",
            "--topic",
            "t",
            "--group",
            "g",
        ]);
        check(&consumer).expect("valid");
        let ops: Vec<(ResourceType, Operation)> = bindings(&consumer, PatternType::Literal)
            .unwrap()
            .iter()
            .map(|b| (b.resource_type, b.operation))
            .collect();
        use Operation::{Describe, Read};
        let expected = [
            (ResourceType::Topic, Read),
            (ResourceType::Topic, Describe),
            (ResourceType::Group, Read),
        ];
        assert_eq!(ops, expected);
        let without_group = args(&[
            "--add",
            "--allow-principal",
            "User:c",
            "--consumer",
            "--topic",
            "t",
        ]);
        assert!(check(&without_group).is_err());
    }

    #[test]
    fn bad_combinations_are_refused() {
        assert!(
            check(&args(&["--add", "--topic", "t"])).is_err(),
            "no principal"
        );
        assert!(check(&args(&["--list", "--resource-pattern-type", "fuzzy"])).is_err());
        let add_match = args(&[
            "--add",
            "--allow-principal",
            "User:a",
            "--topic",
            "t",
            "--resource-pattern-type",
            "match",
        ]);
        assert!(check(&add_match).is_err());
        assert!(check(&args(&["--remove"])).is_err(), "no resource");
        assert!(check(&args(&["--list"])).is_ok());
    }
}
