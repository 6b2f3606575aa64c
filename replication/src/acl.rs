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

/// Kafka's wire codes for the enums above, and the text the metadata log and the CLI
/// use (Kafka's own names, lowercase in records).
impl ResourceType {
    /// Kafka's `ResourceType` code.
    pub fn code(self) -> i8 {
        match self {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
        }
    }

    /// The type of Kafka's code `code`, if it names one a binding may protect here.
    pub fn from_code(code: i8) -> Option<ResourceType> {
        ResourceType::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Kafka's name (`TOPIC`, `TRANSACTIONAL_ID`).
    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
        }
    }

    /// Every type, in code order.
    pub const ALL: [ResourceType; 4] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
    ];
}

impl PatternType {
    /// Kafka's `PatternType` code.
    pub fn code(self) -> i8 {
        match self {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }

    /// Every type, in code order.
    pub const ALL: [PatternType; 2] = [PatternType::Literal, PatternType::Prefixed];
}

impl Operation {
    /// Kafka's `AclOperation` code.
    pub fn code(self) -> i8 {
        Operation::ALL
            .iter()
            .position(|operation| *operation == self)
            .map(|index| index as i8 + 2)
            .expect("every operation is listed")
    }

    /// Kafka's name (`READ`, `IDEMPOTENT_WRITE`).
    pub fn name(self) -> &'static str {
        match self {
            Operation::All => "ALL",
            Operation::Read => "READ",
            Operation::Write => "WRITE",
            Operation::Create => "CREATE",
            Operation::Delete => "DELETE",
            Operation::Alter => "ALTER",
            Operation::Describe => "DESCRIBE",
            Operation::ClusterAction => "CLUSTER_ACTION",
            Operation::DescribeConfigs => "DESCRIBE_CONFIGS",
            Operation::AlterConfigs => "ALTER_CONFIGS",
            Operation::IdempotentWrite => "IDEMPOTENT_WRITE",
        }
    }

    /// The operation Kafka names `name` (any case, `-` or `_`), e.g. `Read`,
    /// `IdempotentWrite`, `describe_configs`.
    pub fn from_name(name: &str) -> Option<Operation> {
        let wanted: String = name
            .chars()
            .filter(|c| *c != '_' && *c != '-')
            .collect::<String>()
            .to_ascii_uppercase();
        Operation::ALL
            .into_iter()
            .find(|operation| operation.name().replace('_', "") == wanted)
    }

    /// Every operation, in code order (ALL is 2).
    pub const ALL: [Operation; 11] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
    ];
}

impl Permission {
    /// Kafka's `AclPermissionType` code.
    pub fn code(self) -> i8 {
        match self {
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }

    /// Kafka's name.
    pub fn name(self) -> &'static str {
        match self {
            Permission::Deny => "DENY",
            Permission::Allow => "ALLOW",
        }
    }
}

/// Kafka's code for "any" in a filter's enums.
pub const CODE_ANY: i8 = 1;
/// Kafka's `PatternType.MATCH`: in a filter, every binding that applies to the name.
pub const PATTERN_MATCH: i8 = 2;

impl AclBinding {
    /// A binding from a CreateAcls creation's fields (Kafka's codes), or why it is not
    /// one Kafka would store (answered INVALID_REQUEST).
    pub fn from_wire(wire: AclCodes, texts: AclTexts<'_>) -> Result<AclBinding, String> {
        let resource_type = ResourceType::from_code(wire.resource_type)
            .ok_or_else(|| format!("resource type {} is not supported", wire.resource_type))?;
        let pattern_type = PatternType::ALL
            .into_iter()
            .find(|p| p.code() == wire.pattern_type)
            .ok_or_else(|| "a binding's pattern type must be LITERAL or PREFIXED".to_string())?;
        let operation = Operation::ALL
            .into_iter()
            .find(|o| o.code() == wire.operation)
            .ok_or_else(|| format!("operation {} is not a binding's", wire.operation))?;
        let permission = [Permission::Deny, Permission::Allow]
            .into_iter()
            .find(|p| p.code() == wire.permission)
            .ok_or_else(|| "a binding's permission must be ALLOW or DENY".to_string())?;
        if texts.name.is_empty() {
            return Err("a binding's resource name must not be empty".into());
        }
        if resource_type == ResourceType::Cluster && texts.name != CLUSTER_NAME {
            return Err(format!("the cluster resource is named {CLUSTER_NAME}"));
        }
        match texts.principal.split_once(':') {
            Some((kind, name)) if !kind.is_empty() && !name.is_empty() => {}
            _ => return Err(format!("principal {:?} is not Type:name", texts.principal)),
        }
        if texts.host.is_empty() {
            return Err("a binding's host must not be empty (`*` is every host)".into());
        }
        Ok(AclBinding {
            resource_type,
            pattern_type,
            name: texts.name.to_string(),
            principal: texts.principal.to_string(),
            host: texts.host.to_string(),
            operation,
            permission,
        })
    }
}

/// The enum fields of a binding or a filter as the wire carries them: Kafka's codes.
#[derive(Clone, Copy, Debug)]
pub struct AclCodes {
    /// `ResourceType` code (ANY = 1 in a filter).
    pub resource_type: i8,
    /// `PatternType` code (ANY = 1, MATCH = 2 in a filter).
    pub pattern_type: i8,
    /// `AclOperation` code (ANY = 1 in a filter).
    pub operation: i8,
    /// `AclPermissionType` code (ANY = 1 in a filter).
    pub permission: i8,
}

/// The text fields of a binding as the wire carries them.
#[derive(Clone, Copy, Debug)]
pub struct AclTexts<'a> {
    /// The resource name or pattern.
    pub name: &'a str,
    /// The principal.
    pub principal: &'a str,
    /// The host.
    pub host: &'a str,
}

/// A DescribeAcls or DeleteAcls filter: each field `None` matches anything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFilter {
    /// The resource type.
    pub resource_type: Option<ResourceType>,
    /// The name, compared as `pattern` says.
    pub name: Option<String>,
    /// How bindings' patterns are matched.
    pub pattern: PatternFilter,
    /// The principal.
    pub principal: Option<String>,
    /// The host.
    pub host: Option<String>,
    /// The operation (exactly: a filter for READ does not match ALL).
    pub operation: Option<Operation>,
    /// The permission.
    pub permission: Option<Permission>,
}

/// A filter's pattern type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternFilter {
    /// Bindings of any pattern type whose name is the filter's.
    Any,
    /// Every binding that applies to a resource of the filter's name: the literal
    /// name, the literal wildcard, and prefixes of the name.
    Match,
    /// Bindings of this pattern type whose name is the filter's.
    Exactly(PatternType),
}

impl AclFilter {
    /// A filter from the wire (`name`, `principal`, `host` `None` for any), or why it
    /// is not one (an unknown code; answered INVALID_REQUEST).
    pub fn from_wire(
        wire: AclCodes,
        name: Option<&str>,
        principal: Option<&str>,
        host: Option<&str>,
    ) -> Result<AclFilter, String> {
        let any_or = |code: i8, what: &str| -> Result<Option<i8>, String> {
            match code {
                CODE_ANY => Ok(None),
                code if code > CODE_ANY => Ok(Some(code)),
                code => Err(format!("the filter's {what} {code} is unknown")),
            }
        };
        let resource_type = match any_or(wire.resource_type, "resource type")? {
            None => None,
            Some(code) => Some(
                ResourceType::from_code(code)
                    .ok_or_else(|| format!("the filter's resource type {code} is not supported"))?,
            ),
        };
        let pattern = match wire.pattern_type {
            CODE_ANY => PatternFilter::Any,
            PATTERN_MATCH => PatternFilter::Match,
            code => PatternFilter::Exactly(
                PatternType::ALL
                    .into_iter()
                    .find(|p| p.code() == code)
                    .ok_or_else(|| format!("the filter's pattern type {code} is unknown"))?,
            ),
        };
        let operation = match any_or(wire.operation, "operation")? {
            None => None,
            Some(code) => Some(
                Operation::ALL
                    .into_iter()
                    .find(|o| o.code() == code)
                    .ok_or_else(|| format!("the filter's operation {code} is unknown"))?,
            ),
        };
        let permission = match any_or(wire.permission, "permission")? {
            None => None,
            Some(code) => Some(
                [Permission::Deny, Permission::Allow]
                    .into_iter()
                    .find(|p| p.code() == code)
                    .ok_or_else(|| format!("the filter's permission {code} is unknown"))?,
            ),
        };
        Ok(AclFilter {
            resource_type,
            name: name.map(str::to_string),
            pattern,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation,
            permission,
        })
    }

    /// Whether `binding` is one this filter selects.
    pub fn matches(&self, binding: &AclBinding) -> bool {
        let same = |wanted: &Option<String>, actual: &str| {
            wanted.as_deref().is_none_or(|wanted| wanted == actual)
        };
        self.resource_type
            .is_none_or(|wanted| wanted == binding.resource_type)
            && self.matches_pattern(binding)
            && same(&self.principal, &binding.principal)
            && same(&self.host, &binding.host)
            && self
                .operation
                .is_none_or(|wanted| wanted == binding.operation)
            && self
                .permission
                .is_none_or(|wanted| wanted == binding.permission)
    }

    fn matches_pattern(&self, binding: &AclBinding) -> bool {
        if let PatternFilter::Exactly(wanted) = self.pattern
            && wanted != binding.pattern_type
        {
            return false;
        }
        let Some(name) = &self.name else {
            return true;
        };
        match (self.pattern, binding.pattern_type) {
            (PatternFilter::Any | PatternFilter::Exactly(_), _) => *name == binding.name,
            (PatternFilter::Match, PatternType::Literal) => {
                *name == binding.name || binding.name == WILDCARD
            }
            (PatternFilter::Match, PatternType::Prefixed) => name.starts_with(&binding.name),
        }
    }
}

/// The bindings in force: what the metadata log's create-acls and delete-acls records
/// built (the cluster state owns it; every broker applies the same records).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AclBindings {
    bindings: BTreeSet<AclBinding>,
}

impl AclBindings {
    /// Adds a binding; false if it was there already (adding is idempotent, as in Kafka).
    pub fn add(&mut self, binding: AclBinding) -> bool {
        self.bindings.insert(binding)
    }

    /// Removes a binding; false if it was not there.
    pub fn remove(&mut self, binding: &AclBinding) -> bool {
        self.bindings.remove(binding)
    }

    /// Whether `binding` is in force.
    pub fn contains(&self, binding: &AclBinding) -> bool {
        self.bindings.contains(binding)
    }

    /// The bindings in force, in a stable order.
    pub fn iter(&self) -> impl Iterator<Item = &AclBinding> {
        self.bindings.iter()
    }

    /// The bindings `filter` matches, in a stable order.
    pub fn matching<'a>(&'a self, filter: &'a AclFilter) -> impl Iterator<Item = &'a AclBinding> {
        self.bindings
            .iter()
            .filter(|binding| filter.matches(binding))
    }
}

/// The broker's authorizer settings (`authorizer.class.name` set to Kafka's
/// StandardAuthorizer): `super.users` and `allow.everyone.if.no.acl.found`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authorizer {
    super_users: BTreeSet<String>,
    allow_everyone_if_no_acl_found: bool,
}

impl Authorizer {
    /// An authorizer: `super.users` (`User:name` each) and
    /// `allow.everyone.if.no.acl.found`.
    pub fn new(
        super_users: impl IntoIterator<Item = String>,
        allow_everyone_if_no_acl_found: bool,
    ) -> Authorizer {
        Authorizer {
            super_users: super_users.into_iter().collect(),
            allow_everyone_if_no_acl_found,
        }
    }

    /// May `action` go ahead under `bindings`? See the module documentation for the
    /// rules.
    pub fn authorize(&self, bindings: &AclBindings, action: &Action<'_>) -> Decision {
        if self.super_users.contains(action.principal) {
            return Decision::AllowedSuperUser;
        }
        let mut names_resource = false;
        let mut allowed = false;
        for binding in bindings.iter() {
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

    /// Whether some resource of `resource_type` would let `principal` from `host` do
    /// `operation` (Kafka's `authorizeByResourceType`, what an idempotent producer's
    /// InitProducerId asks of topics): an ALLOW binding of the type for it, whose own
    /// pattern no DENY binding for it covers. With no binding of the type at all,
    /// `allow.everyone.if.no.acl.found` decides.
    pub fn authorize_any(
        &self,
        bindings: &AclBindings,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        if self.super_users.contains(principal) {
            return true;
        }
        let of_type = || bindings.iter().filter(|b| b.resource_type == resource_type);
        if of_type().next().is_none() {
            return self.allow_everyone_if_no_acl_found;
        }
        let applies = |b: &&AclBinding| b.is_for(principal, host);
        let denials: Vec<&AclBinding> = of_type()
            .filter(applies)
            .filter(|b| b.permission == Permission::Deny && b.operation.denies(operation))
            .collect();
        let covered = |allow: &AclBinding| {
            denials.iter().any(|deny| match deny.pattern_type {
                PatternType::Literal => deny.name == WILDCARD || deny.name == allow.name,
                PatternType::Prefixed => allow.name.starts_with(deny.name.as_str()),
            })
        };
        of_type()
            .filter(applies)
            .filter(|b| b.permission == Permission::Allow && b.operation.allows(operation))
            .any(|allow| !covered(allow))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Settings and bindings together, as a broker uses them.
    struct Acls {
        authorizer: Authorizer,
        bindings: AclBindings,
    }

    impl Acls {
        fn new(super_users: impl IntoIterator<Item = String>, allow_if_no_acl: bool) -> Acls {
            Acls {
                authorizer: Authorizer::new(super_users, allow_if_no_acl),
                bindings: AclBindings::default(),
            }
        }

        fn add(&mut self, binding: AclBinding) -> bool {
            self.bindings.add(binding)
        }

        fn remove(&mut self, binding: &AclBinding) -> bool {
            self.bindings.remove(binding)
        }

        fn authorize(&self, action: &Action<'_>) -> Decision {
            self.authorizer.authorize(&self.bindings, action)
        }
    }

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
        let mut acls = Acls::new([], false);
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
        let read = |acls: &Acls, name| acls.authorize(&on_topic(alice, Operation::Read, name));
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
        let mut acls = Acls::new([], true);
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
            let mut acls = Acls::new([], false);
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
        let mut acls = Acls::new([], false);
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
        let mut acls = Acls::new(["User:admin".to_string()], false);
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
        let mut open = Acls::new([], true);
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
