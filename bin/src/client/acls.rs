//! CreateAcls, DescribeAcls and DeleteAcls, as `odradek acls` uses them. Any broker
//! takes them (it forwards changes to the controller), so they go to the bootstrap
//! broker.

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use odradek_replication::acl::{
    AclBinding, CODE_ANY, Operation, PatternType, Permission, ResourceType,
};

use super::{Client, ClientError, ClientResult};

/// A DescribeAcls or DeleteAcls filter in Kafka's codes; `None` texts match any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFilterSpec {
    /// `ResourceType` code (1: any).
    pub resource_type: i8,
    /// The resource name.
    pub name: Option<String>,
    /// `PatternType` code (1: any, 2: match, 3: literal, 4: prefixed).
    pub pattern_type: i8,
    /// The principal.
    pub principal: Option<String>,
    /// The host.
    pub host: Option<String>,
    /// `AclOperation` code (1: any).
    pub operation: i8,
    /// `AclPermissionType` code (1: any).
    pub permission: i8,
}

impl AclFilterSpec {
    /// The filter that matches exactly `binding`.
    pub fn exactly(binding: &AclBinding) -> AclFilterSpec {
        AclFilterSpec {
            resource_type: binding.resource_type.code(),
            name: Some(binding.name.clone()),
            pattern_type: binding.pattern_type.code(),
            principal: Some(binding.principal.clone()),
            host: Some(binding.host.clone()),
            operation: binding.operation.code(),
            permission: binding.permission.code(),
        }
    }

    /// Every binding of every resource.
    pub fn any() -> AclFilterSpec {
        AclFilterSpec {
            resource_type: CODE_ANY,
            name: None,
            pattern_type: CODE_ANY,
            principal: None,
            host: None,
            operation: CODE_ANY,
            permission: CODE_ANY,
        }
    }
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// A binding from the codes and texts a broker answered with.
fn binding_from(
    (resource_type, name, pattern_type): (i8, &str, i8),
    principal: &str,
    host: &str,
    (operation, permission): (i8, i8),
) -> ClientResult<AclBinding> {
    let unknown = |what: &str, code: i8| ClientError::Other(format!("unknown ACL {what} {code}"));
    Ok(AclBinding {
        resource_type: ResourceType::from_code(resource_type)
            .ok_or_else(|| unknown("resource type", resource_type))?,
        pattern_type: (PatternType::ALL.into_iter())
            .find(|p| p.code() == pattern_type)
            .ok_or_else(|| unknown("pattern type", pattern_type))?,
        name: name.to_string(),
        principal: principal.to_string(),
        host: host.to_string(),
        operation: (Operation::ALL.into_iter())
            .find(|o| o.code() == operation)
            .ok_or_else(|| unknown("operation", operation))?,
        permission: [Permission::Allow, Permission::Deny]
            .into_iter()
            .find(|p| p.code() == permission)
            .ok_or_else(|| unknown("permission", permission))?,
    })
}

impl Client {
    /// Creates `bindings`; one result per binding, in order.
    pub async fn create_acls(
        &self,
        bindings: &[AclBinding],
    ) -> ClientResult<Vec<ClientResult<()>>> {
        let creations = bindings.iter().map(|binding| {
            AclCreation::default()
                .with_resource_type(binding.resource_type.code())
                .with_resource_name(text(&binding.name))
                .with_resource_pattern_type(binding.pattern_type.code())
                .with_principal(text(&binding.principal))
                .with_host(text(&binding.host))
                .with_operation(binding.operation.code())
                .with_permission_type(binding.permission.code())
        });
        let request = CreateAclsRequest::default().with_creations(creations.collect());
        let response = self.bootstrap_connection().request(&request).await?;
        if response.results.len() != bindings.len() {
            return Err(ClientError::Other(
                "CreateAcls: wrong number of results".into(),
            ));
        }
        let results = response
            .results
            .iter()
            .zip(bindings)
            .map(|(result, binding)| {
                if result.error_code == 0 {
                    return Ok(());
                }
                let context = format!("create ACL {binding:?}");
                let message = result.error_message.as_deref();
                Err(ClientError::kafka(context, result.error_code, message))
            });
        Ok(results.collect())
    }

    /// The bindings `filter` matches.
    pub async fn describe_acls(&self, filter: &AclFilterSpec) -> ClientResult<Vec<AclBinding>> {
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(filter.resource_type)
            .with_resource_name_filter(filter.name.as_deref().map(text))
            .with_pattern_type_filter(filter.pattern_type)
            .with_principal_filter(filter.principal.as_deref().map(text))
            .with_host_filter(filter.host.as_deref().map(text))
            .with_operation(filter.operation)
            .with_permission_type(filter.permission);
        let response = self.bootstrap_connection().request(&request).await?;
        if response.error_code != 0 {
            let message = response.error_message.as_deref();
            return Err(ClientError::kafka(
                "describe ACLs",
                response.error_code,
                message,
            ));
        }
        let mut bindings = Vec::new();
        for resource in &response.resources {
            let pattern = (
                resource.resource_type,
                resource.resource_name.as_str(),
                resource.pattern_type,
            );
            for acl in &resource.acls {
                let codes = (acl.operation, acl.permission_type);
                bindings.push(binding_from(pattern, &acl.principal, &acl.host, codes)?);
            }
        }
        Ok(bindings)
    }

    /// Deletes every binding `filters` match; the bindings deleted.
    pub async fn delete_acls(&self, filters: &[AclFilterSpec]) -> ClientResult<Vec<AclBinding>> {
        let wire = filters.iter().map(|filter| {
            DeleteAclsFilter::default()
                .with_resource_type_filter(filter.resource_type)
                .with_resource_name_filter(filter.name.as_deref().map(text))
                .with_pattern_type_filter(filter.pattern_type)
                .with_principal_filter(filter.principal.as_deref().map(text))
                .with_host_filter(filter.host.as_deref().map(text))
                .with_operation(filter.operation)
                .with_permission_type(filter.permission)
        });
        let request = DeleteAclsRequest::default().with_filters(wire.collect());
        let response = self.bootstrap_connection().request(&request).await?;
        let mut deleted = Vec::new();
        for result in &response.filter_results {
            if result.error_code != 0 {
                let message = result.error_message.as_deref();
                return Err(ClientError::kafka(
                    "delete ACLs",
                    result.error_code,
                    message,
                ));
            }
            for acl in &result.matching_acls {
                let pattern = (
                    acl.resource_type,
                    acl.resource_name.as_str(),
                    acl.pattern_type,
                );
                let codes = (acl.operation, acl.permission_type);
                deleted.push(binding_from(pattern, &acl.principal, &acl.host, codes)?);
            }
        }
        Ok(deleted)
    }
}
