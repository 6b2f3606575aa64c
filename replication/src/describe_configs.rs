//! DescribeConfigs, and the topic configs a CreateTopics answer shows: every value
//! with where it comes from and, when asked, its synonyms (the other places that set
//! it, in precedence order; see `dynamic_config.rs`).

use kafka_protocol::messages::create_topics_response::CreatableTopicConfigs;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsResponse, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;

use crate::acl::Operation;
use crate::dynamic_config::{DYNAMIC_BROKER_KEYS, broker_synonym, topic_synonym};
use crate::error::ErrorCode;
use crate::node::{Node, NodeIo};
use crate::request::{Request, RequestId};
use crate::topics::{TOPIC_CONFIG_KEYS, TopicConfig, default_config_value};

/// Config resource types.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

/// Config sources, as DescribeConfigs numbers them.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// One config as described: its value and source are its first synonym's.
pub(crate) struct ConfigEntry {
    name: String,
    read_only: bool,
    /// (name, value, source), the one in effect first.
    synonyms: Vec<(String, String, i8)>,
}

impl ConfigEntry {
    fn value(&self) -> &str {
        &self.synonyms[0].1
    }

    fn source(&self) -> i8 {
        self.synonyms[0].2
    }
}

impl Node {
    pub(crate) fn handle_describe_configs(
        &mut self,
        io: &mut impl NodeIo,
        id: RequestId,
        request: Request,
    ) {
        let RequestKind::DescribeConfigs(describe) = &request.body else {
            unreachable!("routed by kind")
        };
        let mut response = DescribeConfigsResponse::default();
        for resource in &describe.resources {
            let name = resource.resource_name.as_str().to_string();
            let mut result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let refusal = self.config_resource_refusal(
                &request,
                Operation::DescribeConfigs,
                resource.resource_type,
                &name,
            );
            let configs = match refusal {
                Some(refused) => Err(refused),
                None => self.resource_configs(resource.resource_type, &name),
            };
            match configs {
                Err((code, message)) => {
                    result.error_code = code.code();
                    result.error_message = Some(StrBytes::from_string(message));
                }
                Ok(entries) => {
                    result.configs = described(entries, resource, describe);
                }
            }
            response.results.push(result);
        }
        io.respond(id, ResponseKind::DescribeConfigs(response));
    }

    /// Every config of a topic with these overrides, as CreateTopics answers them.
    pub(crate) fn created_topic_configs(&self, config: &TopicConfig) -> Vec<CreatableTopicConfigs> {
        self.topic_configs(config)
            .into_iter()
            .map(|entry| {
                CreatableTopicConfigs::default()
                    .with_name(StrBytes::from_string(entry.name.clone()))
                    .with_value(Some(StrBytes::from_string(entry.value().to_string())))
                    .with_read_only(false)
                    .with_config_source(entry.source())
                    .with_is_sensitive(false)
            })
            .collect()
    }

    /// Every config of one DescribeConfigs resource.
    fn resource_configs(
        &self,
        resource_type: i8,
        name: &str,
    ) -> Result<Vec<ConfigEntry>, (ErrorCode, String)> {
        match resource_type {
            RESOURCE_TOPIC => match self.cluster.topics.get(name) {
                None => Err((
                    ErrorCode::UnknownTopicOrPartition,
                    format!("topic {name} does not exist"),
                )),
                Some(topic) => Ok(self.topic_configs(&topic.config)),
            },
            // Every broker's default: only what is set dynamically (Kafka's
            // `--entity-default`).
            RESOURCE_BROKER if name.is_empty() => Ok(self.default_broker_configs()),
            RESOURCE_BROKER if name == self.config.node_id.to_string() => Ok(self.broker_configs()),
            RESOURCE_BROKER => Err((
                ErrorCode::InvalidRequest,
                format!("this is broker {}, not {name}", self.config.node_id),
            )),
            other => Err((
                ErrorCode::InvalidRequest,
                format!("resource type {other} is not supported"),
            )),
        }
    }

    /// Every topic-level config of a topic with these overrides.
    fn topic_configs(&self, config: &TopicConfig) -> Vec<ConfigEntry> {
        let file = &self.config.log;
        let min_insync = self.config.min_insync_replicas;
        TOPIC_CONFIG_KEYS
            .iter()
            .map(|key| {
                let mut synonyms = Vec::new();
                if let Some(value) = config.get(key.name) {
                    synonyms.push((key.name.to_string(), value.to_string(), SOURCE_TOPIC));
                }
                let broker_key = broker_synonym(key.name);
                if let Some(broker_key) = broker_key {
                    synonyms.extend(self.dynamic_synonyms(broker_key));
                }
                let default = default_config_value(key.name, file, min_insync);
                let name = broker_key.unwrap_or(key.name).to_string();
                synonyms.push((name, default, SOURCE_DEFAULT));
                ConfigEntry {
                    name: key.name.to_string(),
                    read_only: false,
                    synonyms,
                }
            })
            .collect()
    }

    /// A broker key's dynamic values on this broker: its own, then the cluster-wide
    /// default.
    fn dynamic_synonyms(&self, broker_key: &str) -> Vec<(String, String, i8)> {
        let dynamic = &self.cluster.dynamic;
        let own = dynamic
            .values(Some(self.config.node_id))
            .get(broker_key)
            .cloned();
        let default = dynamic.values(None).get(broker_key).cloned();
        [
            (own, SOURCE_DYNAMIC_BROKER),
            (default, SOURCE_DYNAMIC_DEFAULT_BROKER),
        ]
        .into_iter()
        .filter_map(|(value, source)| Some((broker_key.to_string(), value?, source)))
        .collect()
    }

    /// The dynamic values every broker defaults to.
    fn default_broker_configs(&self) -> Vec<ConfigEntry> {
        let values = self.cluster.dynamic.values(None);
        values
            .into_iter()
            .map(|(name, value)| ConfigEntry {
                synonyms: vec![(name.clone(), value, SOURCE_DYNAMIC_DEFAULT_BROKER)],
                name,
                read_only: false,
            })
            .collect()
    }

    /// The broker-level settings a DescribeConfigs on this broker shows: the dynamic
    /// keys as they are in effect here, the rest as the broker was started.
    fn broker_configs(&self) -> Vec<ConfigEntry> {
        let file = &self.config.log;
        let fixed = [
            ("node.id", self.config.node_id.to_string()),
            (
                "auto.create.topics.enable",
                self.config.auto_create_topics_enable.to_string(),
            ),
            ("num.partitions", self.config.num_partitions.to_string()),
            (
                "default.replication.factor",
                self.config.default_replication_factor.to_string(),
            ),
            (
                "log.retention.check.interval.ms",
                self.config.retention_check_interval_ms.to_string(),
            ),
        ];
        let fixed = fixed.into_iter().map(|(name, value)| ConfigEntry {
            synonyms: vec![(name.to_string(), value, SOURCE_STATIC_BROKER)],
            name: name.to_string(),
            read_only: true,
        });
        let dynamic = DYNAMIC_BROKER_KEYS.iter().map(|(broker_key, topic_key)| {
            let mut synonyms = self.dynamic_synonyms(broker_key);
            let started = default_config_value(topic_key, file, self.config.min_insync_replicas);
            synonyms.push((broker_key.to_string(), started, SOURCE_STATIC_BROKER));
            ConfigEntry {
                name: broker_key.to_string(),
                read_only: false,
                synonyms,
            }
        });
        fixed.chain(dynamic).collect()
    }
}

/// The configs of `resource` its request asks for (all if it names no keys), as
/// DescribeConfigs answers them.
fn described(
    entries: Vec<ConfigEntry>,
    resource: &DescribeConfigsResource,
    request: &kafka_protocol::messages::DescribeConfigsRequest,
) -> Vec<DescribeConfigsResourceResult> {
    let wanted = |name: &str| {
        resource
            .configuration_keys
            .as_ref()
            .is_none_or(|keys| keys.iter().any(|key| key.as_str() == name))
    };
    entries
        .into_iter()
        .filter(|entry| wanted(&entry.name))
        .map(|entry| {
            let topic_key = topic_synonym(&entry.name).unwrap_or(&entry.name);
            let known = TOPIC_CONFIG_KEYS.iter().find(|k| k.name == topic_key);
            let documentation = known
                .filter(|_| request.include_documentation)
                .map(|k| StrBytes::from_static_str(k.documentation));
            let synonyms = if request.include_synonyms {
                entry.synonyms.iter().map(synonym).collect()
            } else {
                Vec::new()
            };
            DescribeConfigsResourceResult::default()
                .with_name(StrBytes::from_string(entry.name.clone()))
                .with_value(Some(StrBytes::from_string(entry.value().to_string())))
                .with_read_only(entry.read_only)
                .with_config_source(entry.source())
                .with_is_sensitive(false)
                .with_config_type(known.map_or(0, |k| k.config_type.code()))
                .with_documentation(documentation)
                .with_synonyms(synonyms)
        })
        .collect()
}

fn synonym((name, value, source): &(String, String, i8)) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(StrBytes::from_string(name.clone()))
        .with_value(Some(StrBytes::from_string(value.clone())))
        .with_source(*source)
}
