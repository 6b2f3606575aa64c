//! Access control lists and the decision Kafka's StandardAuthorizer makes from them
//! (issue 19, part 3): which principal, from which host, may do which operation on which
//! resource. This is the decision alone, pure and total; where the bindings come from
//! (the metadata log) and which operation each API needs are the callers'.
//!
//! The rules, in the order they are applied:
//!
//! 1. a super user may do everything;
//! 2. a DENY binding that matches the resource, the principal, the host and the
//!    operation denies, whatever allows it elsewhere (DENY of ALL denies everything);
//! 3. an ALLOW binding that matches allows; ALLOW of ALL allows everything, ALLOW of
//!    READ, WRITE, DELETE or ALTER allows DESCRIBE too, and ALLOW of ALTER_CONFIGS
//!    allows DESCRIBE_CONFIGS;
//! 4. if no binding at all names the resource (whoever it is for), the answer is
//!    `allow.everyone.if.no.acl.found`; otherwise it is denied.
//!
//! A binding names a resource by its type and a pattern: LITERAL (the exact name, or
//! `*` for every resource of the type) or PREFIXED (every name that starts with it).
//! Its principal is `User:name` or `User:*` (everyone); its host an address or `*`.

use std::collections::BTreeSet;

/// The principal every binding for `User:*` matches.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The host or literal resource name that matches every one.
pub const WILDCARD: &str = "*";
/// The name of the one CLUSTER resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// What a binding protects (Kafka's `ResourceType`, codes 2 to 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    /// A topic.
    Topic,
    /// A consumer group.
    Group,
    /// The cluster itself (named [`CLUSTER_NAME`]).
    Cluster,
    /// A transactional producer's id.
    TransactionalId,
}

/// How a binding's name matches resource names (Kafka's `PatternType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternType {
    /// The exact name, or [`WILDCARD`] for every name.
    Literal,
    /// Every name that starts with it.
    Prefixed,
}

/// An operation on a resource (Kafka's `AclOperation`, codes 2 to 12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// In a binding: every operation.
    All,
    /// Fetch, read committed offsets.
    Read,
    /// Produce.
    Write,
    /// Create topics.
    Create,
    /// Delete topics, records, groups.
    Delete,
    /// Change partitions, ACLs.
    Alter,
    /// Metadata, offsets, group descriptions.
    Describe,
    /// Requests between brokers.
    ClusterAction,
    /// DescribeConfigs.
    DescribeConfigs,
    /// AlterConfigs, IncrementalAlterConfigs.
    AlterConfigs,
    /// An idempotent producer's InitProducerId.
    IdempotentWrite,
}

impl Operation {
    /// Whether an ALLOW binding of `self` allows `wanted`.
    fn allows(self, wanted: Operation) -> bool {
        self == Operation::All
            || self == wanted
            || (wanted == Operation::Describe
                && matches!(
                    self,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ))
            || (wanted == Operation::DescribeConfigs && self == Operation::AlterConfigs)
    }

    /// Whether a DENY binding of `self` denies `wanted`: no implication but ALL.
    fn denies(self, wanted: Operation) -> bool {
        self == Operation::All || self == wanted
    }
}

/// Whether a binding allows or denies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    /// Allows what it matches, unless a DENY matches too.
    Allow,
    /// Denies what it matches, whatever allows it.
    Deny,
}

/// One ACL: who may (or may not) do what, from where, on which resources.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    /// The kind of resource.
    pub resource_type: ResourceType,
    /// How `name` matches resource names.
    pub pattern_type: PatternType,
    /// The resource name or pattern.
    pub name: String,
    /// `User:name`, or [`WILDCARD_PRINCIPAL`].
    pub principal: String,
    /// The client's address, or [`WILDCARD`].
    pub host: String,
    /// The operation.
    pub operation: Operation,
    /// Allow or deny.
    pub permission: Permission,
}

impl AclBinding {
    fn names(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => self.name == name || self.name == WILDCARD,
                PatternType::Prefixed => name.starts_with(self.name.as_str()),
            }
    }

    fn is_for(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == WILDCARD_PRINCIPAL)
            && (self.host == host || self.host == WILDCARD)
    }
}

/// One request for permission.
#[derive(Clone, Copy, Debug)]
pub struct Action<'a> {
    /// Who asks (`User:name`; `User:ANONYMOUS` on an unauthenticated listener).
    pub principal: &'a str,
    /// From which address.
    pub host: &'a str,
    /// To do what.
    pub operation: Operation,
    /// On which kind of resource.
    pub resource_type: ResourceType,
    /// On which one.
    pub name: &'a str,
}

/// The answer, and the rule that gave it (for the log line a denial gets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// A super user.
    AllowedSuperUser,
    /// An ALLOW binding matched and no DENY did.
    Allowed,
    /// No binding names the resource and `allow.everyone.if.no.acl.found` is on.
    AllowedNoAcl,
    /// A DENY binding matched.
    Denied,
    /// Bindings name the resource, and none allows this.
    DeniedNoMatch,
    /// No binding names the resource and `allow.everyone.if.no.acl.found` is off.
    DeniedNoAcl,
}

impl Decision {
    /// Whether the action may go ahead.
    pub fn is_allowed(self) -> bool {
        matches!(
            self,
            Decision::AllowedSuperUser | Decision::Allowed | Decision::AllowedNoAcl
        )
    }
}

/// The bindings in force and the broker's authorizer settings.
#[derive(Clone, Debug, Default)]
pub struct Authorizer {
    bindings: BTreeSet<AclBinding>,
    super_users: BTreeSet<String>,
    allow_everyone_if_no_acl_found: bool,
}

impl Authorizer {
    /// An authorizer with no bindings: `super.users` (`User:name` each) and
    /// `allow.everyone.if.no.acl.found`.
    pub fn new(
        super_users: impl IntoIterator<Item = String>,
        allow_everyone_if_no_acl_found: bool,
    ) -> Authorizer {
        Authorizer {
            bindings: BTreeSet::new(),
            super_users: super_users.into_iter().collect(),
            allow_everyone_if_no_acl_found,
        }
    }

    /// Adds a binding; false if it was there already (adding is idempotent, as in Kafka).
    pub fn add(&mut self, binding: AclBinding) -> bool {
        self.bindings.insert(binding)
    }

    /// Removes a binding; false if it was not there.
    pub fn remove(&mut self, binding: &AclBinding) -> bool {
        self.bindings.remove(binding)
    }

    /// The bindings in force, in a stable order.
    pub fn bindings(&self) -> impl Iterator<Item = &AclBinding> {
        self.bindings.iter()
    }

    /// May `action` go ahead? See the module documentation for the rules.
    pub fn authorize(&self, action: &Action<'_>) -> Decision {
        if self.super_users.contains(action.principal) {
            return Decision::AllowedSuperUser;
        }
        let mut names_resource = false;
        let mut allowed = false;
        for binding in &self.bindings {
            if !binding.names(action.resource_type, action.name) {
                continue;
            }
            names_resource = true;
            if !binding.is_for(action.principal, action.host) {
                continue;
            }
            match binding.permission {
                Permission::Deny if binding.operation.denies(action.operation) => {
                    return Decision::Denied;
                }
                Permission::Allow if binding.operation.allows(action.operation) => {
                    allowed = true;
                }
                Permission::Deny | Permission::Allow => {}
            }
        }
        match (allowed, names_resource, self.allow_everyone_if_no_acl_found) {
            (true, _, _) => Decision::Allowed,
            (false, true, _) => Decision::DeniedNoMatch,
            (false, false, true) => Decision::AllowedNoAcl,
            (false, false, false) => Decision::DeniedNoAcl,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(
        pattern: (ResourceType, PatternType, &str),
        principal: &str,
        host: &str,
        operation: Operation,
        permission: Permission,
    ) -> AclBinding {
        let (resource_type, pattern_type, name) = pattern;
        AclBinding {
            resource_type,
            pattern_type,
            name: name.to_string(),
            principal: principal.to_string(),
            host: host.to_string(),
            operation,
            permission,
        }
    }

    fn topic(pattern_type: PatternType, name: &str) -> (ResourceType, PatternType, &str) {
        (ResourceType::Topic, pattern_type, name)
    }

    fn on_topic<'a>(principal: &'a str, operation: Operation, name: &'a str) -> Action<'a> {
        Action {
            principal,
            host: "10.0.0.1",
            operation,
            resource_type: ResourceType::Topic,
            name,
        }
    }

    #[test]
    fn literal_prefixed_and_wildcard_patterns_name_their_resources_only() {
        use PatternType::{Literal, Prefixed};
        let mut acls = Authorizer::new([], false);
        let alice = "User:alice";
        acls.add(binding(
            topic(Literal, "orders"),
            alice,
            "*",
            Operation::Read,
            Permission::Allow,
        ));
        acls.add(binding(
            topic(Prefixed, "logs-"),
            alice,
            "*",
            Operation::Write,
            Permission::Allow,
        ));
        let read =
            |acls: &Authorizer, name| acls.authorize(&on_topic(alice, Operation::Read, name));
        assert_eq!(read(&acls, "orders"), Decision::Allowed);
        assert_eq!(
            read(&acls, "orders-2"),
            Decision::DeniedNoAcl,
            "literal is exact"
        );
        let write = acls.authorize(&on_topic(alice, Operation::Write, "logs-app"));
        assert_eq!(write, Decision::Allowed);
        assert_eq!(
            read(&acls, "logs-app"),
            Decision::DeniedNoMatch,
            "only WRITE there"
        );
        acls.add(binding(
            topic(Literal, WILDCARD),
            alice,
            "*",
            Operation::Read,
            Permission::Allow,
        ));
        assert_eq!(read(&acls, "anything"), Decision::Allowed);
        // Another resource type with the same name is another resource.
        let group = Action {
            resource_type: ResourceType::Group,
            ..on_topic(alice, Operation::Read, "orders")
        };
        assert_eq!(acls.authorize(&group), Decision::DeniedNoAcl);
    }

    #[test]
    fn deny_wins_and_implies_nothing_but_all() {
        use PatternType::Literal;
        let mut acls = Authorizer::new([], true);
        let bob = "User:bob";
        acls.add(binding(
            topic(Literal, "t"),
            WILDCARD_PRINCIPAL,
            "*",
            Operation::All,
            Permission::Allow,
        ));
        acls.add(binding(
            topic(Literal, "t"),
            bob,
            "*",
            Operation::Write,
            Permission::Deny,
        ));
        assert_eq!(
            acls.authorize(&on_topic(bob, Operation::Write, "t")),
            Decision::Denied
        );
        // DENY WRITE does not deny DESCRIBE, which WRITE would imply if allowed.
        assert_eq!(
            acls.authorize(&on_topic(bob, Operation::Describe, "t")),
            Decision::Allowed
        );
        assert_eq!(
            acls.authorize(&on_topic("User:carol", Operation::Write, "t")),
            Decision::Allowed
        );
        acls.add(binding(
            topic(PatternType::Prefixed, ""),
            bob,
            "*",
            Operation::All,
            Permission::Deny,
        ));
        assert_eq!(
            acls.authorize(&on_topic(bob, Operation::Read, "t")),
            Decision::Denied
        );
    }

    #[test]
    fn allowing_an_operation_implies_describe_as_kafka_documents() {
        use PatternType::Literal;
        let dave = "User:dave";
        for (granted, implied) in [
            (Operation::Read, Operation::Describe),
            (Operation::Write, Operation::Describe),
            (Operation::Delete, Operation::Describe),
            (Operation::Alter, Operation::Describe),
            (Operation::AlterConfigs, Operation::DescribeConfigs),
            (Operation::All, Operation::IdempotentWrite),
        ] {
            let mut acls = Authorizer::new([], false);
            acls.add(binding(
                topic(Literal, "t"),
                dave,
                "*",
                granted,
                Permission::Allow,
            ));
            let decision = acls.authorize(&on_topic(dave, implied, "t"));
            assert_eq!(
                decision,
                Decision::Allowed,
                "{granted:?} implies {implied:?}"
            );
        }
        let mut acls = Authorizer::new([], false);
        acls.add(binding(
            topic(Literal, "t"),
            dave,
            "*",
            Operation::Describe,
            Permission::Allow,
        ));
        let read = acls.authorize(&on_topic(dave, Operation::Read, "t"));
        assert_eq!(read, Decision::DeniedNoMatch, "DESCRIBE implies nothing");
        let configs = acls.authorize(&on_topic(dave, Operation::DescribeConfigs, "t"));
        assert_eq!(configs, Decision::DeniedNoMatch);
    }

    #[test]
    fn hosts_super_users_and_the_no_acl_rule() {
        use PatternType::Literal;
        let erin = "User:erin";
        let mut acls = Authorizer::new(["User:admin".to_string()], false);
        acls.add(binding(
            topic(Literal, "t"),
            erin,
            "10.0.0.9",
            Operation::Read,
            Permission::Allow,
        ));
        assert_eq!(
            acls.authorize(&on_topic(erin, Operation::Read, "t")),
            Decision::DeniedNoMatch
        );
        let from_nine = Action {
            host: "10.0.0.9",
            ..on_topic(erin, Operation::Read, "t")
        };
        assert_eq!(acls.authorize(&from_nine), Decision::Allowed);
        let admin = on_topic("User:admin", Operation::Alter, "t");
        assert_eq!(acls.authorize(&admin), Decision::AllowedSuperUser);
        // The no-ACL rule looks at the resource only: a binding for someone else
        // on it takes the resource out of the rule's reach.
        let mut open = Authorizer::new([], true);
        assert_eq!(
            open.authorize(&on_topic(erin, Operation::Read, "u")),
            Decision::AllowedNoAcl
        );
        open.add(binding(
            topic(Literal, "u"),
            "User:frank",
            "*",
            Operation::Read,
            Permission::Allow,
        ));
        let after = open.authorize(&on_topic(erin, Operation::Read, "u"));
        assert!(!after.is_allowed(), "{after:?}");
        // Removing the binding gives the resource back to the rule.
        let frank = binding(
            topic(Literal, "u"),
            "User:frank",
            "*",
            Operation::Read,
            Permission::Allow,
        );
        assert!(open.remove(&frank) && !open.remove(&frank));
        assert!(
            open.authorize(&on_topic(erin, Operation::Read, "u"))
                .is_allowed()
        );
    }
}
