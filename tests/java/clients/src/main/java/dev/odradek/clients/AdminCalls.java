package dev.odradek.clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.DeletedRecords;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.ConfigResource;

/**
 * The Admin client calls Kafka's tools make, one after another on one topic and one
 * group. Each call's outcome is reported under its name: its results, or `error`.
 */
final class AdminCalls {
    private AdminCalls() {}

    interface Call {
        Object run() throws Exception;
    }

    static void call(Map<String, Object> report, String name, Call call) {
        try {
            report.put(name, call.run());
        } catch (Exception thrown) {
            report.put(name, Map.of("error", Main.error(thrown)));
        }
    }

    static final int RECORDS = 10;

    static Map<String, Object> run(String bootstrap, String prefix, short rf) throws Exception {
        String topic = prefix + "-topic";
        String group = prefix + "-group";
        long base = System.currentTimeMillis() - 60_000;
        Map<String, Object> report = new LinkedHashMap<>();
        try (Admin admin = Admin.create(Main.admin(bootstrap))) {
            call(report, "createTopics", () -> {
                NewTopic topicWithConfig = new NewTopic(topic, 2, rf)
                        .configs(Map.of("retention.ms", "3600000", "cleanup.policy", "delete"));
                admin.createTopics(List.of(topicWithConfig)).all().get(30, TimeUnit.SECONDS);
                Main.waitForLeaders(admin, topic, 2);
                return "ok";
            });
            call(report, "listTopics", () -> new ArrayList<>(new java.util.TreeSet<>(
                    admin.listTopics().names().get(30, TimeUnit.SECONDS))));
            call(report, "describeTopics", () -> describe(admin, topic));
            call(report, "describeCluster", () -> {
                // Asking for the authorized operations tells the two paths apart: Kafka 4's
                // Admin answers them from DescribeCluster, and null when it falls back to
                // Metadata (v11+ has no such field).
                DescribeClusterResult cluster = admin.describeCluster(
                        new DescribeClusterOptions().includeAuthorizedOperations(true));
                Map<String, Object> out = new LinkedHashMap<>();
                java.util.Set<org.apache.kafka.common.acl.AclOperation> operations =
                        cluster.authorizedOperations().get(30, TimeUnit.SECONDS);
                out.put("authorized_operations", operations == null ? null
                        : operations.stream().map(Enum::name).sorted().toList());
                out.put("cluster_id", cluster.clusterId().get(30, TimeUnit.SECONDS));
                out.put("controller", cluster.controller().get(30, TimeUnit.SECONDS).id());
                List<Object> nodes = new ArrayList<>();
                cluster.nodes().get(30, TimeUnit.SECONDS).stream()
                        .sorted((a, b) -> Integer.compare(a.id(), b.id()))
                        .forEach(node -> nodes.add(node.id() + "@" + node.host() + ":" + node.port()));
                out.put("nodes", nodes);
                return out;
            });
            call(report, "describeConfigs", () -> {
                ConfigResource topicResource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
                ConfigResource brokerResource = new ConfigResource(ConfigResource.Type.BROKER, "1");
                Map<ConfigResource, Config> configs = admin.describeConfigs(List.of(topicResource, brokerResource))
                        .all().get(30, TimeUnit.SECONDS);
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("topic_retention_ms", configs.get(topicResource).get("retention.ms").value());
                out.put("topic_cleanup_policy", configs.get(topicResource).get("cleanup.policy").value());
                out.put("topic_config_count", configs.get(topicResource).entries().size());
                out.put("broker_config_count", configs.get(brokerResource).entries().size());
                return out;
            });
            call(report, "incrementalAlterConfigs", () -> {
                // Sent to any broker (the least loaded), which forwards it to the controller.
                ConfigResource topicResource = new ConfigResource(ConfigResource.Type.TOPIC, topic);
                admin.incrementalAlterConfigs(Map.of(topicResource, List.of(
                        new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                        new AlterConfigOp(new ConfigEntry("max.message.bytes", "2000000"), AlterConfigOp.OpType.SET))))
                        .all().get(30, TimeUnit.SECONDS);
                // Every broker applies the change when its copy of the metadata log does,
                // and the Admin client may ask another broker than it altered through:
                // read until that one shows it, as a client must.
                Config config = admin.describeConfigs(List.of(topicResource))
                        .all().get(30, TimeUnit.SECONDS).get(topicResource);
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
                while (!"7200000".equals(config.get("retention.ms").value()) && System.nanoTime() < deadline) {
                    Thread.sleep(100);
                    config = admin.describeConfigs(List.of(topicResource))
                            .all().get(30, TimeUnit.SECONDS).get(topicResource);
                }
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("retention_ms", config.get("retention.ms").value());
                out.put("retention_source", config.get("retention.ms").source().name());
                out.put("max_message_bytes", config.get("max.message.bytes").value());
                return out;
            });
            call(report, "createPartitions", () -> {
                admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get(30, TimeUnit.SECONDS);
                Main.waitForLeaders(admin, topic, 4);
                return describe(admin, topic);
            });
            // Records, and a group that reads them and commits, for the group and offset calls.
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Main.producer(bootstrap))) {
                for (int i = 0; i < RECORDS; i++) {
                    producer.send(new ProducerRecord<>(topic, i % 4, base + i * 1000L, null, Main.bytes("v" + i)))
                            .get(30, TimeUnit.SECONDS);
                }
            }
            try (KafkaConsumer<byte[], byte[]> member = new KafkaConsumer<>(Main.consumer(bootstrap, group))) {
                member.subscribe(List.of(topic));
                int read = 0;
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (read < RECORDS && System.nanoTime() < deadline) {
                    read += member.poll(Duration.ofMillis(200)).count();
                }
                member.commitSync();
                report.put("group_read", read);
                call(report, "listConsumerGroups", () -> {
                    Map<String, Object> out = new TreeMap<>();
                    for (ConsumerGroupListing listing : admin.listConsumerGroups().all().get(30, TimeUnit.SECONDS)) {
                        out.put(listing.groupId(), String.valueOf(listing.groupState().orElse(null)));
                    }
                    return out;
                });
                call(report, "describeConsumerGroups", () -> {
                    ConsumerGroupDescription description = admin.describeConsumerGroups(List.of(group))
                            .all().get(30, TimeUnit.SECONDS).get(group);
                    Map<String, Object> out = new LinkedHashMap<>();
                    out.put("state", description.groupState().toString());
                    out.put("assignor", description.partitionAssignor());
                    out.put("type", description.type().toString());
                    List<Object> members = new ArrayList<>();
                    for (MemberDescription m : description.members()) {
                        members.add(Map.of("client_id", m.clientId(),
                                "partitions", Main.numbers(m.assignment().topicPartitions())));
                    }
                    out.put("members", members);
                    out.put("coordinator", description.coordinator().id());
                    return out;
                });
            }
            call(report, "listConsumerGroupOffsets", () -> {
                Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group)
                        .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
                Map<String, Long> out = new TreeMap<>();
                offsets.forEach((partition, offset) -> out.put(Integer.toString(partition.partition()), offset.offset()));
                return out;
            });
            call(report, "listOffsets", () -> {
                Map<String, Object> out = new LinkedHashMap<>();
                for (var spec : List.of(
                        Map.entry("earliest", OffsetSpec.earliest()),
                        Map.entry("latest", OffsetSpec.latest()),
                        Map.entry("max_timestamp", OffsetSpec.maxTimestamp()),
                        Map.entry("for_timestamp_5s", OffsetSpec.forTimestamp(base + 5000L)))) {
                    Map<TopicPartition, OffsetSpec> query = new LinkedHashMap<>();
                    for (int p = 0; p < 4; p++) {
                        query.put(new TopicPartition(topic, p), spec.getValue());
                    }
                    Map<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> answer =
                            admin.listOffsets(query).all().get(30, TimeUnit.SECONDS);
                    Map<String, Long> offsets = new TreeMap<>();
                    answer.forEach((partition, info) -> offsets.put(Integer.toString(partition.partition()), info.offset()));
                    out.put(spec.getKey(), offsets);
                }
                return out;
            });
            call(report, "deleteRecords", () -> {
                // Sent to partition 0's leader, which writes the new start to the metadata log.
                TopicPartition first = new TopicPartition(topic, 0);
                DeletedRecords deleted = admin.deleteRecords(Map.of(first, RecordsToDelete.beforeOffset(1)))
                        .lowWatermarks().get(first).get(30, TimeUnit.SECONDS);
                long earliest = admin.listOffsets(Map.of(first, OffsetSpec.earliest()))
                        .all().get(30, TimeUnit.SECONDS).get(first).offset();
                Map<String, Object> out = new LinkedHashMap<>();
                out.put("low_watermark", deleted.lowWatermark());
                out.put("earliest", earliest);
                return out;
            });
            call(report, "deleteTopics", () -> {
                admin.deleteTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
                while (admin.listTopics().names().get(30, TimeUnit.SECONDS).contains(topic)) {
                    if (System.nanoTime() > deadline) {
                        return "still listed";
                    }
                    Thread.sleep(100);
                }
                return "gone";
            });
        }
        return report;
    }

    static Map<String, Object> describe(Admin admin, String topic) throws Exception {
        TopicDescription description = admin.describeTopics(List.of(topic)).allTopicNames()
                .get(30, TimeUnit.SECONDS).get(topic);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("partitions", description.partitions().size());
        List<Object> replicas = new ArrayList<>();
        for (TopicPartitionInfo info : description.partitions()) {
            replicas.add(Map.of("partition", info.partition(), "leader", info.leader() == null ? -1 : info.leader().id(),
                    "replicas", info.replicas().size(), "isr", info.isr().size()));
        }
        out.put("replicas", replicas);
        out.put("internal", description.isInternal());
        return out;
    }
}
