package dev.odradek.clients;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Kafka's Java client used as applications use it, one scenario per subcommand. Each
 * prints exactly one JSON line on stdout, which tests/java_clients.rs asserts on; the
 * clients' own logging goes to stderr.
 *
 * <pre>
 *   odradek-java-clients SUBCOMMAND BOOTSTRAP ARGS...
 *     produce-codecs  BOOTSTRAP PREFIX RF         every codec, headers, read back
 *     group-rebalance BOOTSTRAP TOPIC ASSIGNOR     default | cooperative-sticky
 *     static-member   BOOTSTRAP TOPIC              group.instance.id rejoin
 *     commits         BOOTSTRAP TOPIC RF           commitSync/Async, seek, offsetsForTimes
 *     admin           BOOTSTRAP PREFIX RF          the Admin calls the tools make
 *     failover        BOOTSTRAP TOPIC COUNT KILL_AT PIDS   kill -9 of a leader
 *     leader-change   BOOTSTRAP TOPIC COUNT PIDS    a consumer reads through it (KIP-320)
 * </pre>
 */
public final class Main {
    private Main() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: SUBCOMMAND BOOTSTRAP ARGS...");
            System.exit(2);
        }
        Map<String, Object> report = switch (args[0]) {
            case "produce-codecs" -> Scenarios.produceCodecs(args[1], args[2], Short.parseShort(args[3]));
            case "group-rebalance" -> Groups.rebalance(args[1], args[2], args[3]);
            case "static-member" -> Groups.staticMember(args[1], args[2]);
            case "commits" -> Groups.commits(args[1], args[2], Short.parseShort(args[3]));
            case "admin" -> AdminCalls.run(args[1], args[2], Short.parseShort(args[3]));
            case "failover" -> Failover.run(args[1], args[2], Integer.parseInt(args[3]),
                    Integer.parseInt(args[4]), args[5]);
            case "leader-change" -> LeaderChange.run(args[1], args[2], Integer.parseInt(args[3]), args[4]);
            default -> throw new IllegalArgumentException("unknown subcommand " + args[0]);
        };
        System.out.println(Json.write(report));
        System.out.flush();
        // Client threads must not keep the JVM alive past the report.
        System.exit(0);
    }

    // ----------------------------------------------------------------------------
    // Shared helpers

    static Properties admin(String bootstrap) {
        Properties props = new Properties();
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 15000);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        return props;
    }

    static Properties producer(String bootstrap) {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        return props;
    }

    static Properties consumer(String bootstrap, String group) {
        Properties props = new Properties();
        props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        if (group != null) {
            props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        return props;
    }

    static byte[] bytes(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    static String text(byte[] bytes) {
        return bytes == null ? null : new String(bytes, StandardCharsets.UTF_8);
    }

    /** Creates a topic and waits until every partition has a leader (a cluster elects them). */
    static void createTopic(Admin admin, String topic, int partitions, short replicationFactor)
            throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, partitions, replicationFactor))).all()
                .get(30, TimeUnit.SECONDS);
        waitForLeaders(admin, topic, partitions);
    }

    static void waitForLeaders(Admin admin, String topic, int partitions) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (true) {
            try {
                TopicDescription description = admin.describeTopics(List.of(topic)).allTopicNames()
                        .get(10, TimeUnit.SECONDS).get(topic);
                if (description.partitions().size() == partitions && description.partitions()
                        .stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty())) {
                    return;
                }
            } catch (ExecutionException retriable) {
                // Unknown topic for a moment on a broker that has not seen it yet.
            }
            if (System.nanoTime() > deadline) {
                throw new IllegalStateException("no leader for every partition of " + topic);
            }
            Thread.sleep(100);
        }
    }

    static List<String> names(Collection<TopicPartition> partitions) {
        TreeSet<String> sorted = new TreeSet<>();
        for (TopicPartition partition : partitions) {
            sorted.add(partition.toString());
        }
        return new ArrayList<>(sorted);
    }

    static List<Integer> numbers(Collection<TopicPartition> partitions) {
        TreeSet<Integer> sorted = new TreeSet<>();
        for (TopicPartition partition : partitions) {
            sorted.add(partition.partition());
        }
        return new ArrayList<>(sorted);
    }

    static Map<String, Long> numbersOf(Map<TopicPartition, Long> offsets) {
        Map<String, Long> out = new java.util.TreeMap<>();
        offsets.forEach((partition, offset) -> out.put(Integer.toString(partition.partition()), offset));
        return out;
    }

    /** The class and message of what a failed call threw, futures' wrappers removed. */
    static String error(Throwable thrown) {
        Throwable cause = thrown;
        while ((cause instanceof ExecutionException
                || cause instanceof java.util.concurrent.CompletionException) && cause.getCause() != null) {
            cause = cause.getCause();
        }
        return cause.getClass().getName() + ": " + cause.getMessage();
    }

    // ----------------------------------------------------------------------------

    /** Produce scenarios. */
    static final class Scenarios {
        static final List<String> CODECS = List.of("none", "gzip", "snappy", "lz4", "zstd");
        static final int RECORDS = 40;
        static final int PARTITIONS = 2;

        /**
         * For each codec, an idempotent acks=all producer writes {@link #RECORDS} keyed
         * records with headers into its own topic; a consumer reads the topic back from the
         * beginning and compares key, value, headers, partition and offset with what the
         * producer was acknowledged.
         */
        static Map<String, Object> produceCodecs(String bootstrap, String prefix, short rf)
                throws Exception {
            Map<String, Object> report = new LinkedHashMap<>();
            try (Admin admin = Admin.create(admin(bootstrap))) {
                for (String codec : CODECS) {
                    createTopic(admin, prefix + "-" + codec, PARTITIONS, rf);
                }
            }
            for (String codec : CODECS) {
                report.put(codec, produceAndReadBack(bootstrap, prefix + "-" + codec, codec));
            }
            return report;
        }

        static List<Header> headersOf(int i, String codec) {
            List<Header> headers = new ArrayList<>();
            headers.add(new RecordHeader("index", bytes(Integer.toString(i))));
            headers.add(new RecordHeader("codec", bytes(codec)));
            // A repeated key and a null value: both legal in Kafka's record format.
            headers.add(new RecordHeader("codec", bytes("again")));
            headers.add(new RecordHeader("empty", null));
            return headers;
        }

        static Map<String, Object> produceAndReadBack(String bootstrap, String topic, String codec)
                throws Exception {
            Properties props = producer(bootstrap);
            props.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
            props.put(ProducerConfig.LINGER_MS_CONFIG, 20);
            Map<String, long[]> acked = new HashMap<>();
            List<String> errors = new ArrayList<>();
            try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
                for (int i = 0; i < RECORDS; i++) {
                    // A value long and repetitive enough that every codec shrinks it.
                    String value = codec + "-" + i + "-" + "abcdefgh".repeat(16);
                    ProducerRecord<byte[], byte[]> record = new ProducerRecord<>(topic, i % PARTITIONS,
                            bytes("key-" + i), bytes(value), headersOf(i, codec));
                    producer.send(record, (metadata, exception) -> {
                        synchronized (acked) {
                            if (exception != null) {
                                errors.add(error(exception));
                            } else {
                                acked.put(value, new long[] {metadata.partition(), metadata.offset()});
                            }
                        }
                    });
                }
                producer.flush();
            }
            int read = 0;
            int matched = 0;
            List<String> mismatches = new ArrayList<>();
            Map<Integer, Long> firstOffsets = new HashMap<>();
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumer(bootstrap, null))) {
                List<TopicPartition> partitions = new ArrayList<>();
                for (int p = 0; p < PARTITIONS; p++) {
                    partitions.add(new TopicPartition(topic, p));
                }
                consumer.assign(partitions);
                consumer.seekToBeginning(partitions);
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
                while (read < RECORDS && System.nanoTime() < deadline) {
                    for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
                        read++;
                        firstOffsets.putIfAbsent(record.partition(), record.offset());
                        String value = text(record.value());
                        String index = value.split("-")[1];
                        int i = Integer.parseInt(index);
                        long[] where = acked.get(value);
                        List<String> wrong = new ArrayList<>();
                        if (where == null) {
                            wrong.add("never acknowledged");
                        } else if (where[0] != record.partition() || where[1] != record.offset()) {
                            wrong.add("acknowledged at " + where[0] + "/" + where[1]);
                        }
                        if (!("key-" + i).equals(text(record.key()))) {
                            wrong.add("key " + text(record.key()));
                        }
                        List<String> expected = new ArrayList<>();
                        for (Header header : headersOf(i, codec)) {
                            expected.add(header.key() + "=" + text(header.value()));
                        }
                        List<String> seen = new ArrayList<>();
                        for (Header header : record.headers()) {
                            seen.add(header.key() + "=" + text(header.value()));
                        }
                        if (!expected.equals(seen)) {
                            wrong.add("headers " + seen);
                        }
                        if (wrong.isEmpty()) {
                            matched++;
                        } else {
                            mismatches.add(record.partition() + "/" + record.offset() + ": " + wrong);
                        }
                    }
                }
            }
            Map<String, Object> report = new LinkedHashMap<>();
            report.put("acknowledged", acked.size());
            report.put("errors", errors);
            report.put("read", read);
            report.put("matched", matched);
            report.put("mismatches", mismatches.subList(0, Math.min(5, mismatches.size())));
            report.put("first_offsets", firstOffsets.values().stream().sorted().toList());
            return report;
        }
    }

    /** Records every callback of a rebalance listener, in order. */
    static final class Events implements ConsumerRebalanceListener {
        final List<Object> events = new ArrayList<>();

        @Override
        public void onPartitionsRevoked(Collection<TopicPartition> partitions) {
            events.add(Map.of("revoked", numbers(partitions)));
        }

        @Override
        public void onPartitionsAssigned(Collection<TopicPartition> partitions) {
            events.add(Map.of("assigned", numbers(partitions)));
        }

        @Override
        public void onPartitionsLost(Collection<TopicPartition> partitions) {
            events.add(Map.of("lost", numbers(partitions)));
        }
    }

    static Set<TopicPartition> union(KafkaConsumer<?, ?> a, KafkaConsumer<?, ?> b) {
        Set<TopicPartition> all = new HashSet<>(a.assignment());
        all.addAll(b.assignment());
        return all;
    }
}
