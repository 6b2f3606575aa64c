//! The authorization check every client request makes before it is handled: may the
//! request's principal, from its host, do this operation on this resource? The
//! decision is [`crate::acl::Authorizer`]'s, over the bindings this broker has applied
//! from the metadata log. With no authorizer configured every request is allowed, as
//! in Kafka without `authorizer.class.name`.
//!
//! The check is made at the broker that receives the client's request, before anything
//! is forwarded to the controller; the controller trusts its peers.

use crate::acl::{Action, Operation, ResourceType};
use crate::error::ErrorCode;
use crate::node::Node;
use crate::request::Request;

impl Node {
    /// Whether `request`'s principal may do `operation` on the resource.
    pub(crate) fn allows(
        &self,
        request: &Request,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let Some(authorizer) = &self.config.authorizer else {
            return true;
        };
        let action = Action {
            principal: &request.principal,
            host: request.client_host.trim_start_matches('/'),
            operation,
            resource_type,
            name,
        };
        let decision = authorizer.authorize(&self.cluster.acls, &action);
        if !decision.is_allowed() {
            tracing::debug!(
                "{} from {} may not {} {} {name}: {decision:?}",
                action.principal,
                action.host,
                operation.name(),
                resource_type.name()
            );
        }
        decision.is_allowed()
    }

    /// Whether `request`'s principal may do `operation` on topic `name`.
    pub(crate) fn allows_topic(&self, request: &Request, operation: Operation, name: &str) -> bool {
        self.allows(request, operation, ResourceType::Topic, name)
    }

    /// Whether `request`'s principal may do `operation` on group `name`.
    pub(crate) fn allows_group(&self, request: &Request, operation: Operation, name: &str) -> bool {
        self.allows(request, operation, ResourceType::Group, name)
    }

    /// Whether `request`'s principal may do `operation` on the cluster.
    pub(crate) fn allows_cluster(&self, request: &Request, operation: Operation) -> bool {
        self.allows(
            request,
            operation,
            ResourceType::Cluster,
            crate::acl::CLUSTER_NAME,
        )
    }
}

impl Node {
    /// Whether `request`'s principal may produce idempotently: IDEMPOTENT_WRITE on the
    /// cluster, or WRITE on some topic (Kafka's rule since 2.8, KIP-679).
    pub(crate) fn allows_idempotent_write(&self, request: &Request) -> bool {
        let Some(authorizer) = &self.config.authorizer else {
            return true;
        };
        let host = request.client_host.trim_start_matches('/');
        self.allows_cluster(request, Operation::IdempotentWrite)
            || authorizer.authorize_any(
                &self.cluster.acls,
                &request.principal,
                host,
                Operation::Write,
                ResourceType::Topic,
            )
    }
}

/// Config resource types (Kafka's `ConfigResource.Type`) whose ACLs are the cluster's.
const CONFIG_RESOURCE_TOPIC: i8 = 2;

impl Node {
    /// Why the principal may not do `operation` (DESCRIBE_CONFIGS or ALTER_CONFIGS) on
    /// a config resource: a topic's are the topic's, every other type's (brokers,
    /// broker loggers) the cluster's.
    pub(crate) fn config_resource_refusal(
        &self,
        request: &Request,
        operation: Operation,
        resource_type: i8,
        name: &str,
    ) -> Option<(ErrorCode, String)> {
        let (allowed, error, what) = if resource_type == CONFIG_RESOURCE_TOPIC {
            let allowed = self.allows_topic(request, operation, name);
            (allowed, ErrorCode::TopicAuthorizationFailed, "topic")
        } else {
            let allowed = self.allows_cluster(request, operation);
            (allowed, ErrorCode::ClusterAuthorizationFailed, "cluster")
        };
        let message = format!(
            "{} may not {} of this {what}",
            request.principal,
            operation.name()
        );
        (!allowed).then_some((error, message))
    }
}

impl Node {
    /// Why the principal may not alter (`alter`) or describe SCRAM credentials: Kafka
    /// asks ALTER, or DESCRIBE, on the cluster (AlterUserScramCredentials,
    /// DescribeUserScramCredentials). The handlers of those APIs call this first.
    pub(crate) fn scram_credentials_refusal(
        &self,
        request: &Request,
        alter: bool,
    ) -> Option<(ErrorCode, String)> {
        let operation = if alter {
            Operation::Alter
        } else {
            Operation::Describe
        };
        let allowed = self.allows_cluster(request, operation);
        let message = format!(
            "{} may not {} the cluster",
            request.principal,
            operation.name()
        );
        (!allowed).then_some((ErrorCode::ClusterAuthorizationFailed, message))
    }
}
