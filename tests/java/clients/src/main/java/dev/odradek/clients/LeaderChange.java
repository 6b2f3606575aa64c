package dev.odradek.clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * A consumer that reads through a leader change (KIP-320). On a three-broker cluster: a
 * topic of one partition replicated three times gets COUNT records; a consumer (no
 * group, assign) reads them all, so its position carries the leader epoch of the last
 * batch; the leader's process is killed with -9 (PIDS: "pid1,pid2,pid3" by node id);
 * COUNT more records go to the new leader; the same consumer reads on. Its position's
 * epoch is now older than the leader's, so before fetching again it asks the new
 * leader where that epoch ends (OffsetForLeaderEpoch) to rule out a truncation.
 */
final class LeaderChange {
    private LeaderChange() {}

    static Map<String, Object> run(String bootstrap, String topic, int count, String pids) throws Exception {
        String[] pidByNode = pids.split(",");
        try (Admin admin = Admin.create(Main.admin(bootstrap))) {
            Main.createTopic(admin, topic, 1, (short) 3);
        }
        TopicPartition partition = new TopicPartition(topic, 0);
        List<String> errors = new ArrayList<>();
        List<ConsumerRecord<byte[], byte[]>> read = new ArrayList<>();
        Map<String, Object> report = new LinkedHashMap<>();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Main.producer(bootstrap));
                KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(Main.consumer(bootstrap, null))) {
            send(producer, topic, 0, count);
            consumer.assign(List.of(partition));
            consumer.seekToBeginning(List.of(partition));
            readUntil(consumer, read, count, errors);
            int killed = Failover.leaderOf(producer, topic, 0);
            new ProcessBuilder("kill", "-9", pidByNode[killed - 1]).inheritIO().start().waitFor();
            report.put("killed_node", killed);
            send(producer, topic, count, 2 * count);
            readUntil(consumer, read, 2 * count, errors);
            report.put("position", consumer.position(partition));
        }
        List<Long> offsets = new ArrayList<>();
        TreeSet<Integer> epochs = new TreeSet<>();
        List<String> values = new ArrayList<>();
        for (ConsumerRecord<byte[], byte[]> record : read) {
            offsets.add(record.offset());
            record.leaderEpoch().ifPresent(epochs::add);
            values.add(Main.text(record.value()));
        }
        boolean rising = true;
        for (int i = 1; i < offsets.size(); i++) {
            rising &= offsets.get(i) > offsets.get(i - 1);
        }
        List<String> expected = new ArrayList<>();
        for (int i = 0; i < 2 * count; i++) {
            expected.add(Integer.toString(i));
        }
        report.put("consumed", read.size());
        report.put("in_order_exactly_once", values.equals(expected));
        report.put("offsets_rising", rising);
        report.put("epochs", new ArrayList<>(epochs));
        report.put("errors", errors);
        return report;
    }

    static void send(KafkaProducer<byte[], byte[]> producer, String topic, int from, int to) throws Exception {
        for (int i = from; i < to; i++) {
            producer.send(new ProducerRecord<>(topic, 0, null, Main.bytes(Integer.toString(i))));
        }
        producer.flush();
    }

    /** Polls until `read` holds `wanted` records, for at most 60 seconds. */
    static void readUntil(KafkaConsumer<byte[], byte[]> consumer, List<ConsumerRecord<byte[], byte[]>> read,
            int wanted, List<String> errors) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
        while (read.size() < wanted && System.nanoTime() < deadline) {
            try {
                for (ConsumerRecord<byte[], byte[]> record : consumer.poll(Duration.ofMillis(200))) {
                    read.add(record);
                }
            } catch (RuntimeException error) {
                errors.add(Main.error(error));
            }
        }
    }
}
