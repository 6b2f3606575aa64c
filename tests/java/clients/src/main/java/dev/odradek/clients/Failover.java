package dev.odradek.clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

/**
 * On a three-broker cluster: an idempotent acks=all producer streams COUNT records into a
 * new RF 3 topic of 3 partitions while a group consumer reads them live; after KILL_AT
 * records the process of partition 0's leader is killed with -9. Every acknowledged
 * record must be read, once, at its acknowledged offset, by the live consumer and by a
 * fresh reader afterwards. PIDS lists the brokers' process ids by node id: "pid1,pid2,pid3".
 */
final class Failover {
    private Failover() {}

    static final int PARTITIONS = 3;

    /** What one reader saw: value to partition/offset, and values seen at two offsets. */
    static final class Seen {
        final Map<String, long[]> where = new HashMap<>();
        int duplicates;
        int redelivered;

        synchronized void add(ConsumerRecord<byte[], byte[]> record) {
            String value = Main.text(record.value());
            long[] at = {record.partition(), record.offset()};
            long[] before = where.putIfAbsent(value, at);
            if (before != null) {
                if (before[0] == at[0] && before[1] == at[1]) {
                    redelivered++;
                } else {
                    duplicates++;
                }
            }
        }

        synchronized int size() {
            return where.size();
        }
    }

    static Map<String, Object> run(String bootstrap, String topic, int count, int killAt, String pids)
            throws Exception {
        String[] pidByNode = pids.split(",");
        try (Admin admin = Admin.create(Main.admin(bootstrap))) {
            Main.createTopic(admin, topic, PARTITIONS, (short) 3);
        }
        Seen live = new Seen();
        AtomicBoolean stop = new AtomicBoolean();
        List<String> consumerErrors = new ArrayList<>();
        Properties consumerProps = Main.consumer(bootstrap, topic + "-live");
        consumerProps.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, true);
        Thread reader = new Thread(() -> {
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(consumerProps)) {
                consumer.subscribe(List.of(topic));
                while (!stop.get()) {
                    try {
                        for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(100))) {
                            live.add(record);
                        }
                    } catch (RuntimeException error) {
                        synchronized (consumerErrors) {
                            consumerErrors.add(Main.error(error));
                        }
                    }
                }
            }
        }, "live-consumer");
        reader.start();

        Properties props = Main.producer(bootstrap);
        props.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        Map<String, long[]> acknowledged = new HashMap<>();
        List<String> errors = new ArrayList<>();
        int killed = -1;
        long killedAt = 0;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(props)) {
            for (int i = 0; i < count; i++) {
                String value = Integer.toString(i);
                producer.send(new ProducerRecord<>(topic, i % PARTITIONS, Main.bytes(Integer.toString(i % 7)),
                        Main.bytes(value)), (metadata, exception) -> {
                            synchronized (acknowledged) {
                                if (exception == null) {
                                    acknowledged.put(value, new long[] {metadata.partition(), metadata.offset()});
                                } else {
                                    errors.add(Main.error(exception));
                                }
                            }
                        });
                if (i == killAt) {
                    producer.flush();
                    killed = leaderOf(producer, topic, 0);
                    String pid = pidByNode[killed - 1];
                    new ProcessBuilder("kill", "-9", pid).inheritIO().start().waitFor();
                    killedAt = System.nanoTime();
                }
                if (i % 1000 == 0) {
                    Thread.sleep(20);
                }
            }
            producer.flush();
        }
        double drainSeconds = (System.nanoTime() - killedAt) / 1e9;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (live.size() < acknowledged.size() && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        stop.set(true);
        reader.join(30_000);

        Seen fresh = new Seen();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(Main.consumer(bootstrap, null))) {
            List<TopicPartition> partitions = new ArrayList<>();
            for (int p = 0; p < PARTITIONS; p++) {
                partitions.add(new TopicPartition(topic, p));
            }
            consumer.assign(partitions);
            consumer.seekToBeginning(partitions);
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
            while (fresh.size() < acknowledged.size() && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
                    fresh.add(record);
                }
            }
        }
        // Per partition, acknowledged offsets rise with the order of sending.
        int outOfOrder = 0;
        Map<Long, Long> last = new HashMap<>();
        for (int i = 0; i < count; i++) {
            long[] at = acknowledged.get(Integer.toString(i));
            if (at == null) {
                continue;
            }
            if (at[1] <= last.getOrDefault(at[0], -1L)) {
                outOfOrder++;
            }
            last.put(at[0], at[1]);
        }
        Map<String, Object> report = new LinkedHashMap<>();
        report.put("killed_node", killed);
        report.put("acknowledged", acknowledged.size());
        report.put("errors", errors.subList(0, Math.min(5, errors.size())));
        report.put("error_count", errors.size());
        report.put("out_of_order", outOfOrder);
        report.put("drain_seconds_after_kill", Math.round(drainSeconds * 100) / 100.0);
        report.put("live", summary(live, acknowledged));
        report.put("live_consumer_errors", consumerErrors.subList(0, Math.min(5, consumerErrors.size())));
        report.put("fresh", summary(fresh, acknowledged));
        return report;
    }

    static Map<String, Object> summary(Seen seen, Map<String, long[]> acknowledged) {
        int missing = 0;
        int moved = 0;
        synchronized (seen) {
            for (Map.Entry<String, long[]> entry : acknowledged.entrySet()) {
                long[] at = seen.where.get(entry.getKey());
                if (at == null) {
                    missing++;
                } else if (at[0] != entry.getValue()[0] || at[1] != entry.getValue()[1]) {
                    moved++;
                }
            }
            Map<String, Object> out = new LinkedHashMap<>();
            out.put("consumed", seen.where.size());
            out.put("missing", missing);
            out.put("moved", moved);
            out.put("duplicates", seen.duplicates);
            out.put("redelivered", seen.redelivered);
            return out;
        }
    }

    /** The node id of `partition`'s leader, from the producer's metadata. */
    static int leaderOf(KafkaProducer<byte[], byte[]> producer, String topic, int partition) {
        for (PartitionInfo info : producer.partitionsFor(topic)) {
            if (info.partition() == partition && info.leader() != null) {
                return info.leader().id();
            }
        }
        throw new IllegalStateException("no leader for " + topic + "-" + partition);
    }
}
