//! The answer to an IncrementalAlterConfigs or AlterConfigs request while it waits for
//! its metadata record: one result per resource, and the changes whose record must be
//! applied before they are answered as done.

use kafka_protocol::messages::{
    AlterConfigsResponse, IncrementalAlterConfigsResponse, ResponseKind, alter_configs_response,
    incremental_alter_configs_response,
};
use kafka_protocol::protocol::StrBytes;

use crate::dynamic_config::{ConfigChange, ConfigResource};
use crate::error::ErrorCode;
use crate::metadata::ClusterState;

/// One resource's result.
struct ResourceResult {
    resource_type: i8,
    resource_name: String,
    error: ErrorCode,
    message: Option<String>,
}

/// Results of every resource of one request, in the request's order.
pub(crate) struct ConfigsAnswer {
    /// IncrementalAlterConfigs (else AlterConfigs): which response type to build.
    incremental: bool,
    results: Vec<ResourceResult>,
    /// Changes accepted and written, with the index of their result.
    written: Vec<(usize, ConfigResource, ConfigChange)>,
}

impl ConfigsAnswer {
    /// An answer with no results yet.
    pub(crate) fn new(incremental: bool) -> ConfigsAnswer {
        ConfigsAnswer {
            incremental,
            results: Vec::new(),
            written: Vec::new(),
        }
    }

    /// The next resource's result: refused with `error`, or accepted (`Ok`, its change
    /// `None` for validate-only or nothing to change).
    pub(crate) fn push(
        &mut self,
        resource_type: i8,
        resource_name: &str,
        result: Result<Option<(ConfigResource, ConfigChange)>, (ErrorCode, String)>,
    ) {
        let (error, message) = match result {
            Ok(Some((resource, change))) => {
                self.written.push((self.results.len(), resource, change));
                (ErrorCode::None, None)
            }
            Ok(None) => (ErrorCode::None, None),
            Err((error, message)) => (error, Some(message)),
        };
        self.results.push(ResourceResult {
            resource_type,
            resource_name: resource_name.to_string(),
            error,
            message,
        });
    }

    /// The accepted changes, for the metadata record; empty if nothing is to be
    /// written.
    pub(crate) fn changes(&self) -> Vec<(ConfigResource, ConfigChange)> {
        self.written
            .iter()
            .map(|(_, resource, change)| (resource.clone(), change.clone()))
            .collect()
    }

    /// The record was not written or will not be applied: every accepted change is
    /// answered with `error`.
    pub(crate) fn fail_written(&mut self, error: ErrorCode, message: &str) {
        for (index, _, _) in std::mem::take(&mut self.written) {
            self.results[index].error = error;
            self.results[index].message = Some(message.to_string());
        }
    }

    /// Once the record's offset is applied: a change the applied state does not show
    /// was cut by a leader change (another record took its offset) and is answered
    /// NOT_CONTROLLER, which the client may retry.
    pub(crate) fn confirm(&mut self, cluster: &ClusterState) {
        let cut: Vec<usize> = self
            .written
            .iter()
            .filter(|(_, resource, change)| !shows(cluster, resource, change))
            .map(|(index, _, _)| *index)
            .collect();
        for index in cut {
            self.results[index].error = ErrorCode::NotController;
            self.results[index].message = Some("the change was not committed; retry".into());
        }
    }

    /// The response to send.
    pub(crate) fn into_response(self) -> ResponseKind {
        if self.incremental {
            let responses = self.results.into_iter().map(|result| {
                incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_error_code(result.error.code())
                    .with_error_message(result.message.map(StrBytes::from_string))
                    .with_resource_type(result.resource_type)
                    .with_resource_name(StrBytes::from_string(result.resource_name))
            });
            let response =
                IncrementalAlterConfigsResponse::default().with_responses(responses.collect());
            ResponseKind::IncrementalAlterConfigs(response)
        } else {
            let responses = self.results.into_iter().map(|result| {
                alter_configs_response::AlterConfigsResourceResponse::default()
                    .with_error_code(result.error.code())
                    .with_error_message(result.message.map(StrBytes::from_string))
                    .with_resource_type(result.resource_type)
                    .with_resource_name(StrBytes::from_string(result.resource_name))
            });
            ResponseKind::AlterConfigs(
                AlterConfigsResponse::default().with_responses(responses.collect()),
            )
        }
    }
}

/// Whether the applied state shows `change` made to `resource` (a deleted topic shows
/// any change: nothing is left to be wrong about).
fn shows(cluster: &ClusterState, resource: &ConfigResource, change: &ConfigChange) -> bool {
    let values = match resource {
        ConfigResource::Topic(name) => match cluster.topics.get(name) {
            Some(topic) => topic.config.overrides().clone(),
            None => return true,
        },
        ConfigResource::Broker(id) => cluster.dynamic.values(*id),
    };
    change
        .set
        .iter()
        .all(|(key, value)| values.get(key) == Some(value))
        && change.removed.iter().all(|key| !values.contains_key(key))
}
