//! CreateAcls, DescribeAcls and DeleteAcls (API keys 30, 29, 31; versions 1 to 3):
//! the ACL bindings in the metadata log.
//!
//! ```text
//!  CreateAcls ──► authorizer configured? (else SECURITY_DISABLED) ALTER on the cluster?
//!             ──► each creation a valid binding? (else INVALID_REQUEST, the others go on)
//!             ──► one create-acls record, appended here or forwarded to the controller
//!             ──► answered once applied here, each binding confirmed in force
//!  DeleteAcls ──► the same checks; each filter's matches in this broker's applied state
//!             ──► one delete-acls record with every match; answered once applied
//!  DescribeAcls ─► DESCRIBE on the cluster; the applied bindings the filter matches
//! ```
//!
//! Deletion resolves its filters where the request arrives, against what that broker
//! has applied (Kafka resolves them at the controller): a binding created elsewhere and
//! not applied here yet is not deleted, as if the delete had come first.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsResponse, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::acl::{AclBinding, AclCodes, AclFilter, AclTexts};
use crate::acls_answer::AclsAnswer;
use crate::error::ErrorCode;
use crate::metadata::MetadataRecord;
use crate::metadata_waits::MetadataWait;
use crate::node::{Node, NodeIo};
use crate::request::{Request, RequestId};

impl Node {
    pub(crate) fn handle_create_acls(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::CreateAcls(create) = &request.body else {
            unreachable!("routed by kind")
        };
        let refusal = self.acl_request_refusal(&request, crate::acl::Operation::Alter);
        let mut results = Vec::new();
        let mut written = Vec::new();
        for creation in &create.creations {
            let codes = AclCodes {
                resource_type: creation.resource_type,
                pattern_type: creation.resource_pattern_type,
                operation: creation.operation,
                permission: creation.permission_type,
            };
            let texts = AclTexts {
                name: creation.resource_name.as_str(),
                principal: creation.principal.as_str(),
                host: creation.host.as_str(),
            };
            let checked = match &refusal {
                Some(refused) => Err(refused.clone()),
                None => AclBinding::from_wire(codes, texts)
                    .map_err(|message| (ErrorCode::InvalidRequest, message)),
            };
            let mut result = AclCreationResult::default();
            match checked {
                Ok(binding) => written.push((results.len(), binding)),
                Err((error, message)) => {
                    result.error_code = error.code();
                    result.error_message = Some(StrBytes::from_string(message));
                }
            }
            results.push(result);
        }
        let answer = AclsAnswer::Created { results, written };
        self.write_acls(io, id, answer, |bindings| MetadataRecord::CreateAcls {
            bindings,
        });
    }

    pub(crate) fn handle_delete_acls(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::DeleteAcls(delete) = &request.body else {
            unreachable!("routed by kind")
        };
        let refusal = self.acl_request_refusal(&request, crate::acl::Operation::Alter);
        let mut results = Vec::new();
        for wire in &delete.filters {
            let codes = AclCodes {
                resource_type: wire.resource_type_filter,
                pattern_type: wire.pattern_type_filter,
                operation: wire.operation,
                permission: wire.permission_type,
            };
            let filter = match &refusal {
                Some(refused) => Err(refused.clone()),
                None => AclFilter::from_wire(
                    codes,
                    wire.resource_name_filter.as_deref(),
                    wire.principal_filter.as_deref(),
                    wire.host_filter.as_deref(),
                )
                .map_err(|message| (ErrorCode::InvalidRequest, message)),
            };
            let mut result = DeleteAclsFilterResult::default();
            let mut bindings = Vec::new();
            match filter {
                Ok(filter) => {
                    bindings = self.cluster.acls.matching(&filter).cloned().collect();
                    result.matching_acls = bindings.iter().map(matching_acl).collect();
                }
                Err((error, message)) => {
                    result.error_code = error.code();
                    result.error_message = Some(StrBytes::from_string(message));
                }
            }
            results.push((result, bindings));
        }
        let answer = AclsAnswer::Deleted { results };
        self.write_acls(io, id, answer, |bindings| MetadataRecord::DeleteAcls {
            bindings,
        });
    }

    /// Writes the bindings `answer` carries as one record (appended, or forwarded to
    /// the controller) and answers once it is applied; answers at once if none.
    fn write_acls(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        mut answer: AclsAnswer,
        record: impl FnOnce(Vec<AclBinding>) -> MetadataRecord,
    ) {
        let bindings = answer.written();
        if bindings.is_empty() {
            io.respond(id, answer.into_response());
            return;
        }
        match self.append_or_forward(io, None, record(bindings)) {
            Ok(written) => self.wait_for_creation(id, written, MetadataWait::Acls(answer)),
            Err(error) => {
                answer.fail_written(error.error_code(), &error.to_string());
                io.respond(id, answer.into_response());
            }
        }
    }

    pub(crate) fn handle_describe_acls(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::DescribeAcls(describe) = &request.body else {
            unreachable!("routed by kind")
        };
        let codes = AclCodes {
            resource_type: describe.resource_type_filter,
            pattern_type: describe.pattern_type_filter,
            operation: describe.operation,
            permission: describe.permission_type,
        };
        let filter = match self.acl_request_refusal(&request, crate::acl::Operation::Describe) {
            Some(refused) => Err(refused),
            None => AclFilter::from_wire(
                codes,
                describe.resource_name_filter.as_deref(),
                describe.principal_filter.as_deref(),
                describe.host_filter.as_deref(),
            )
            .map_err(|message| (ErrorCode::InvalidRequest, message)),
        };
        let mut response = DescribeAclsResponse::default();
        match filter {
            Ok(filter) => response.resources = described(self.cluster.acls.matching(&filter)),
            Err((error, message)) => {
                response.error_code = error.code();
                response.error_message = Some(StrBytes::from_string(message));
            }
        }
        io.respond(id, ResponseKind::DescribeAcls(response));
    }

    /// Why an ACL request is refused as a whole: no authorizer (SECURITY_DISABLED), or
    /// the principal may not do `operation` on the cluster.
    fn acl_request_refusal(
        &self,
        request: &Request,
        operation: crate::acl::Operation,
    ) -> Option<(ErrorCode, String)> {
        if self.config.authorizer.is_none() {
            let message = "no authorizer is configured (authorizer.class.name)";
            return Some((ErrorCode::SecurityDisabled, message.to_string()));
        }
        if !self.allows_cluster(request, operation) {
            let message = format!(
                "{} may not {} the cluster",
                request.principal,
                operation.name()
            );
            return Some((ErrorCode::ClusterAuthorizationFailed, message));
        }
        None
    }
}

/// A deleted binding as DeleteAcls answers it.
fn matching_acl(binding: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_resource_type(binding.resource_type.code())
        .with_resource_name(StrBytes::from_string(binding.name.clone()))
        .with_pattern_type(binding.pattern_type.code())
        .with_principal(StrBytes::from_string(binding.principal.clone()))
        .with_host(StrBytes::from_string(binding.host.clone()))
        .with_operation(binding.operation.code())
        .with_permission_type(binding.permission.code())
}

/// Bindings grouped by resource pattern, as DescribeAcls answers them.
fn described<'a>(bindings: impl Iterator<Item = &'a AclBinding>) -> Vec<DescribeAclsResource> {
    let mut resources: BTreeMap<(i8, &str, i8), Vec<AclDescription>> = BTreeMap::new();
    for binding in bindings {
        let key = (
            binding.resource_type.code(),
            binding.name.as_str(),
            binding.pattern_type.code(),
        );
        resources.entry(key).or_default().push(
            AclDescription::default()
                .with_principal(StrBytes::from_string(binding.principal.clone()))
                .with_host(StrBytes::from_string(binding.host.clone()))
                .with_operation(binding.operation.code())
                .with_permission_type(binding.permission.code()),
        );
    }
    resources
        .into_iter()
        .map(|((resource_type, name, pattern_type), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(name.to_string()))
                .with_pattern_type(pattern_type)
                .with_acls(acls)
        })
        .collect()
}
