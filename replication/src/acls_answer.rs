//! The answer to a CreateAcls or DeleteAcls request while its metadata record waits to
//! be applied: one result per creation (or filter), and the bindings that must be
//! applied before they are answered as done.

use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::{CreateAclsResponse, DeleteAclsResponse, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::acl::AclBinding;
use crate::error::ErrorCode;
use crate::metadata::ClusterState;

/// An ACL request's answer while its record waits to be applied.
pub(crate) enum AclsAnswer {
    /// CreateAcls: one result per creation, and the bindings written with the index of
    /// their result.
    Created {
        results: Vec<AclCreationResult>,
        written: Vec<(usize, AclBinding)>,
    },
    /// DeleteAcls: one result per filter, each with the bindings it removes.
    Deleted {
        results: Vec<(DeleteAclsFilterResult, Vec<AclBinding>)>,
    },
}

impl AclsAnswer {
    /// The record was not written: every binding it carried is answered `error`.
    pub(crate) fn fail_written(&mut self, error: ErrorCode, message: &str) {
        let message = Some(StrBytes::from_string(message.to_string()));
        match self {
            AclsAnswer::Created { results, written } => {
                for (index, _) in std::mem::take(written) {
                    results[index].error_code = error.code();
                    results[index].error_message = message.clone();
                }
            }
            AclsAnswer::Deleted { results } => {
                for (result, bindings) in results {
                    if !bindings.is_empty() {
                        result.error_code = error.code();
                        result.error_message = message.clone();
                        result.matching_acls.clear();
                        bindings.clear();
                    }
                }
            }
        }
    }

    /// Once the record's offset is applied: a binding the applied state does not show
    /// created (or still shows, for a deletion) was cut by a leader change and is
    /// answered NOT_CONTROLLER, which the client may retry.
    pub(crate) fn confirm(&mut self, cluster: &ClusterState) {
        let cut = ErrorCode::NotController;
        let message = "the change was not committed; retry";
        match self {
            AclsAnswer::Created { results, written } => {
                for (index, binding) in written.iter() {
                    if !cluster.acls.contains(binding) {
                        results[*index].error_code = cut.code();
                        results[*index].error_message = Some(StrBytes::from_static_str(message));
                    }
                }
            }
            AclsAnswer::Deleted { results } => {
                for (result, bindings) in results {
                    if bindings
                        .iter()
                        .any(|binding| cluster.acls.contains(binding))
                    {
                        result.error_code = cut.code();
                        result.error_message = Some(StrBytes::from_static_str(message));
                        result.matching_acls.clear();
                    }
                }
            }
        }
    }

    /// The response to send.
    pub(crate) fn into_response(self) -> ResponseKind {
        match self {
            AclsAnswer::Created { results, .. } => {
                ResponseKind::CreateAcls(CreateAclsResponse::default().with_results(results))
            }
            AclsAnswer::Deleted { results } => ResponseKind::DeleteAcls(
                DeleteAclsResponse::default()
                    .with_filter_results(results.into_iter().map(|(r, _)| r).collect()),
            ),
        }
    }

    /// Every binding the record carries, in the request's order.
    pub(crate) fn written(&self) -> Vec<AclBinding> {
        match self {
            AclsAnswer::Created { written, .. } => {
                written.iter().map(|(_, binding)| binding.clone()).collect()
            }
            AclsAnswer::Deleted { results } => {
                let mut bindings: Vec<AclBinding> = Vec::new();
                for binding in results.iter().flat_map(|(_, bindings)| bindings) {
                    if !bindings.contains(binding) {
                        bindings.push(binding.clone());
                    }
                }
                bindings
            }
        }
    }
}
