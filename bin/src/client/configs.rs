//! Configs of topics and brokers: DescribeConfigs (with synonyms) and
//! IncrementalAlterConfigs, as `odradek configs` and `odradek topics alter --config`
//! use them.

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::protocol::StrBytes;

use super::{Client, ClientError, ClientResult, Connection};

/// Config resource types.
const RESOURCE_TYPE_TOPIC: i8 = 2;
const RESOURCE_TYPE_BROKER: i8 = 4;

/// Whose configs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigTarget {
    /// A topic's.
    Topic(String),
    /// One broker's (`Some(id)`) or every broker's default (`None`).
    Broker(Option<i32>),
}

impl ConfigTarget {
    fn resource(&self) -> (i8, String) {
        match self {
            ConfigTarget::Topic(name) => (RESOURCE_TYPE_TOPIC, name.clone()),
            ConfigTarget::Broker(id) => (
                RESOURCE_TYPE_BROKER,
                id.map(|id| id.to_string()).unwrap_or_default(),
            ),
        }
    }
}

/// One change IncrementalAlterConfigs makes to a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigChange {
    /// Set the key to this value.
    Set(String),
    /// Remove the key: it falls back to the next source.
    Delete,
}

/// One config as DescribeConfigs reports it, with its synonyms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescribedConfig {
    /// Config key.
    pub name: String,
    /// Value, if not sensitive.
    pub value: Option<String>,
    /// Where the value comes from (Kafka's `ConfigSource` numbering).
    pub source: i8,
    /// Whether it is a password or the like.
    pub sensitive: bool,
    /// (name, value, source) of every place that sets it, the one in effect first.
    pub synonyms: Vec<(String, Option<String>, i8)>,
}

impl Client {
    /// The connection a request about `target` goes to: the broker itself for one
    /// broker's configs (as Kafka's admin client does), else the controller.
    async fn config_connection(&self, target: &ConfigTarget) -> ClientResult<Connection> {
        match target {
            ConfigTarget::Broker(Some(id)) => self.broker(*id).await,
            _ => self.controller().await,
        }
    }

    /// DescribeConfigs of `target`, every key, with synonyms.
    pub async fn describe_configs(
        &self,
        target: &ConfigTarget,
    ) -> ClientResult<Vec<DescribedConfig>> {
        let (resource_type, name) = target.resource();
        let connection = self.config_connection(target).await?;
        let request = DescribeConfigsRequest::default()
            .with_include_synonyms(true)
            .with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(StrBytes::from_string(name.clone()))
                    .with_configuration_keys(None),
            ]);
        let response = connection.request(&request).await?;
        let [result] = response.results.as_slice() else {
            return Err(ClientError::Other(format!(
                "no DescribeConfigs result for {name:?}"
            )));
        };
        if result.error_code != 0 {
            return Err(ClientError::kafka(
                format!("describe configs of {target:?}"),
                result.error_code,
                result.error_message.as_deref(),
            ));
        }
        Ok(result.configs.iter().map(described).collect())
    }

    /// IncrementalAlterConfigs of `target`: each key set or deleted.
    pub async fn alter_configs(
        &self,
        target: &ConfigTarget,
        changes: &[(String, ConfigChange)],
    ) -> ClientResult<()> {
        let (resource_type, name) = target.resource();
        let configs = changes.iter().map(|(key, change)| {
            let config = AlterableConfig::default().with_name(StrBytes::from_string(key.clone()));
            match change {
                ConfigChange::Set(value) => config
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(value.clone()))),
                ConfigChange::Delete => config.with_config_operation(1).with_value(None),
            }
        });
        let resource = AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.clone()))
            .with_configs(configs.collect());
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![resource]);
        let connection = self.config_connection(target).await?;
        let response = connection.request(&request).await?;
        let [result] = response.responses.as_slice() else {
            return Err(ClientError::Other(format!(
                "no IncrementalAlterConfigs result for {name:?}"
            )));
        };
        if result.error_code != 0 {
            return Err(ClientError::kafka(
                format!("alter configs of {target:?}"),
                result.error_code,
                result.error_message.as_deref(),
            ));
        }
        Ok(())
    }
}

fn described(
    config: &kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult,
) -> DescribedConfig {
    DescribedConfig {
        name: config.name.to_string(),
        value: config.value.as_ref().map(|v| v.to_string()),
        source: config.config_source,
        sensitive: config.is_sensitive,
        synonyms: config
            .synonyms
            .iter()
            .map(|s| {
                (
                    s.name.to_string(),
                    s.value.as_ref().map(|v| v.to_string()),
                    s.source,
                )
            })
            .collect(),
    }
}
