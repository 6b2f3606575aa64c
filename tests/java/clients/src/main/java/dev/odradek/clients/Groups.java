package dev.odradek.clients;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.CooperativeStickyAssignor;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/** Consumer groups: rebalances, static membership, offset commits, seek and times. */
final class Groups {
    private Groups() {}

    static final int PARTITIONS = 4;

    /** Polls both consumers in turn until `done` holds or 45 s pass. */
    static boolean pollBoth(KafkaConsumer<?, ?> a, KafkaConsumer<?, ?> b,
            java.util.function.BooleanSupplier done) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(45);
        while (System.nanoTime() < deadline) {
            a.poll(Duration.ofMillis(100));
            if (b != null) {
                b.poll(Duration.ofMillis(100));
            }
            if (done.getAsBoolean()) {
                return true;
            }
        }
        return false;
    }

    /** Keeps both consumers polling for `seconds`. */
    static void settle(KafkaConsumer<?, ?> a, KafkaConsumer<?, ?> b, int seconds) {
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        while (System.nanoTime() < until) {
            a.poll(Duration.ofMillis(100));
            b.poll(Duration.ofMillis(100));
        }
    }

    static boolean split(KafkaConsumer<?, ?> a, KafkaConsumer<?, ?> b) {
        Set<TopicPartition> all = Main.union(a, b);
        return !a.assignment().isEmpty() && !b.assignment().isEmpty()
                && all.size() == PARTITIONS
                && a.assignment().size() + b.assignment().size() == PARTITIONS;
    }

    /**
     * Member A subscribes alone and gets every partition; member B joins later and the
     * partitions are split. `assignor` is `default` (the Java client's default list,
     * range first) or `cooperative-sticky` (KIP-429: A gives up only what moves).
     */
    static Map<String, Object> rebalance(String bootstrap, String topic, String assignor)
            throws Exception {
        try (Admin admin = Admin.create(Main.admin(bootstrap))) {
            Main.createTopic(admin, topic, PARTITIONS, (short) 1);
        }
        String group = topic + "-group";
        Properties props = Main.consumer(bootstrap, group);
        if (assignor.equals("cooperative-sticky")) {
            props.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG,
                    CooperativeStickyAssignor.class.getName());
        } else if (!assignor.equals("default")) {
            throw new IllegalArgumentException("assignor " + assignor);
        }
        Map<String, Object> report = new LinkedHashMap<>();
        Main.Events aEvents = new Main.Events();
        Main.Events bEvents = new Main.Events();
        try (KafkaConsumer<byte[], byte[]> a = new KafkaConsumer<>(props);
                KafkaConsumer<byte[], byte[]> b = new KafkaConsumer<>(props)) {
            a.subscribe(List.of(topic), aEvents);
            boolean alone = pollBoth(a, null, () -> a.assignment().size() == PARTITIONS);
            report.put("a_alone", Main.numbers(a.assignment()));
            report.put("a_alone_complete", alone);
            report.put("generation_alone", a.groupMetadata().generationId());
            int eventsBefore = aEvents.events.size();
            b.subscribe(List.of(topic), bEvents);
            boolean splitDone = pollBoth(a, b, () -> split(a, b));
            // A few more rounds: a cooperative rebalance ends with a second join.
            settle(a, b, 2);
            report.put("split", splitDone);
            report.put("a_after", Main.numbers(a.assignment()));
            report.put("b_after", Main.numbers(b.assignment()));
            report.put("a_events_before_b", new ArrayList<>(aEvents.events.subList(0, eventsBefore)));
            report.put("a_events_after_b", new ArrayList<>(aEvents.events.subList(eventsBefore, aEvents.events.size())));
            report.put("b_events", new ArrayList<>(bEvents.events));
            report.put("generation_after", a.groupMetadata().generationId());
            report.put("b_generation_after", b.groupMetadata().generationId());
        }
        return report;
    }

    /**
     * Two static members (group.instance.id); one closes and a new process with the same
     * instance id rejoins within session.timeout.ms: it gets the same partitions and the
     * other member sees no rebalance.
     */
    static Map<String, Object> staticMember(String bootstrap, String topic) throws Exception {
        try (Admin admin = Admin.create(Main.admin(bootstrap))) {
            Main.createTopic(admin, topic, PARTITIONS, (short) 1);
        }
        String group = topic + "-group";
        Map<String, Object> report = new LinkedHashMap<>();
        Main.Events twoEvents = new Main.Events();
        Main.Events rejoinedEvents = new Main.Events();
        try (KafkaConsumer<byte[], byte[]> two = new KafkaConsumer<>(staticProps(bootstrap, group, "static-2"))) {
            KafkaConsumer<byte[], byte[]> one = new KafkaConsumer<>(staticProps(bootstrap, group, "static-1"));
            one.subscribe(List.of(topic));
            two.subscribe(List.of(topic), twoEvents);
            report.put("split", pollBoth(one, two, () -> split(one, two)));
            // Let any trailing rejoin settle before the restart.
            settle(one, two, 2);
            report.put("one_before", Main.numbers(one.assignment()));
            report.put("two_before", Main.numbers(two.assignment()));
            report.put("generation_before", two.groupMetadata().generationId());
            int twoEventsBefore = twoEvents.events.size();
            one.close();
            long restarted = System.nanoTime();
            try (KafkaConsumer<byte[], byte[]> again = new KafkaConsumer<>(staticProps(bootstrap, group, "static-1"))) {
                again.subscribe(List.of(topic), rejoinedEvents);
                report.put("rejoined", pollBoth(again, two, () -> !again.assignment().isEmpty()));
                report.put("rejoin_ms", TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - restarted));
                // Keep both polling a little: a rebalance, if one started, would show.
                settle(again, two, 3);
                report.put("one_after", Main.numbers(again.assignment()));
                report.put("two_after", Main.numbers(two.assignment()));
                report.put("generation_after", two.groupMetadata().generationId());
                report.put("rejoined_generation", again.groupMetadata().generationId());
                report.put("two_events_during_restart", new ArrayList<>(twoEvents.events.subList(twoEventsBefore, twoEvents.events.size())));
                report.put("rejoined_events", new ArrayList<>(rejoinedEvents.events));
            }
        }
        return report;
    }

    static Properties staticProps(String bootstrap, String group, String instance) {
        Properties props = Main.consumer(bootstrap, group);
        props.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, instance);
        props.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 30000);
        return props;
    }

    static final int COMMIT_RECORDS = 20;

    /**
     * 20 records with set timestamps (one second apart) over two partitions; a group
     * member reads them all and commits partition 0 at 6 with commitSync and partition 1
     * at 4 with commitAsync. A new member of the group and the Admin client see those
     * offsets, and the new member starts there. Then seek and offsetsForTimes.
     */
    static Map<String, Object> commits(String bootstrap, String topic, short rf) throws Exception {
        try (Admin admin = Admin.create(Main.admin(bootstrap))) {
            Main.createTopic(admin, topic, 2, rf);
        }
        long base = System.currentTimeMillis() - 600_000;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(Main.producer(bootstrap))) {
            for (int i = 0; i < COMMIT_RECORDS; i++) {
                producer.send(new ProducerRecord<>(topic, i % 2, base + i * 1000L,
                        Main.bytes("k" + i), Main.bytes("v" + i))).get(30, TimeUnit.SECONDS);
            }
        }
        String group = topic + "-group";
        TopicPartition p0 = new TopicPartition(topic, 0);
        TopicPartition p1 = new TopicPartition(topic, 1);
        Map<String, Object> report = new LinkedHashMap<>();
        AtomicReference<String> asyncResult = new AtomicReference<>();
        try (KafkaConsumer<byte[], byte[]> first = new KafkaConsumer<>(Main.consumer(bootstrap, group))) {
            first.subscribe(List.of(topic));
            int read = 0;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (read < COMMIT_RECORDS && System.nanoTime() < deadline) {
                read += first.poll(Duration.ofMillis(200)).count();
            }
            report.put("first_read", read);
            first.commitSync(Map.of(p0, new OffsetAndMetadata(6, "sync")));
            first.commitAsync(Map.of(p1, new OffsetAndMetadata(4, "async")), (offsets, exception) ->
                    asyncResult.set(exception == null ? "ok " + offsets.get(p1).offset() : Main.error(exception)));
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
            while (asyncResult.get() == null && System.nanoTime() < deadline) {
                first.poll(Duration.ofMillis(100));
            }
            report.put("commit_async", asyncResult.get());
        }
        try (KafkaConsumer<byte[], byte[]> second = new KafkaConsumer<>(Main.consumer(bootstrap, group))) {
            Map<TopicPartition, OffsetAndMetadata> committed = second.committed(Set.of(p0, p1));
            report.put("committed_seen", Map.of(
                    "0", committed.get(p0).offset(), "1", committed.get(p1).offset(),
                    "metadata_0", committed.get(p0).metadata(), "metadata_1", committed.get(p1).metadata()));
            second.subscribe(List.of(topic));
            Map<String, Long> firstOffsets = new HashMap<>();
            int read = 0;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (firstOffsets.size() < 2 && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> record : second.poll(Duration.ofMillis(200))) {
                    firstOffsets.putIfAbsent(Integer.toString(record.partition()), record.offset());
                    read++;
                }
            }
            report.put("second_starts_at", firstOffsets);
        }
        try (Admin admin = Admin.create(Main.admin(bootstrap))) {
            Map<TopicPartition, OffsetAndMetadata> listed = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            report.put("admin_offsets", Map.of("0", listed.get(p0).offset(), "1", listed.get(p1).offset()));
        }
        try (KafkaConsumer<byte[], byte[]> reader = new KafkaConsumer<>(Main.consumer(bootstrap, null))) {
            reader.assign(List.of(p0, p1));
            reader.seek(p0, 3);
            reader.seek(p1, 8);
            Map<String, String> seeked = new HashMap<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (seeked.size() < 2 && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> record : reader.poll(Duration.ofMillis(200))) {
                    seeked.putIfAbsent(Integer.toString(record.partition()),
                            record.offset() + " " + Main.text(record.value()));
                }
            }
            report.put("after_seek", seeked);
            // Record i sits in partition i % 2 at offset i / 2 (on one broker), stamped base + i s.
            Map<TopicPartition, Long> query = new HashMap<>();
            query.put(p0, base + 7 * 1000L); // between records 6 and 8: record 8
            query.put(p1, base + 7 * 1000L); // exactly record 7
            Map<TopicPartition, OffsetAndTimestamp> found = reader.offsetsForTimes(query, Duration.ofSeconds(30));
            report.put("offsets_for_times", Map.of(
                    "0", found.get(p0).offset(), "0_timestamp", found.get(p0).timestamp() - base,
                    "1", found.get(p1).offset(), "1_timestamp", found.get(p1).timestamp() - base));
            // What a consumer that seeks to those offsets reads first.
            reader.seek(p0, found.get(p0).offset());
            reader.seek(p1, found.get(p1).offset());
            Map<String, String> foundValues = new HashMap<>();
            deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            while (foundValues.size() < 2 && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> record : reader.poll(Duration.ofMillis(200))) {
                    foundValues.putIfAbsent(Integer.toString(record.partition()), Main.text(record.value()));
                }
            }
            report.put("read_at_times", foundValues);
            Map<TopicPartition, OffsetAndTimestamp> past = reader.offsetsForTimes(
                    Map.of(p0, base + 3_600_000L), Duration.ofSeconds(30));
            report.put("offsets_for_times_past_the_end", past.get(p0) == null ? "null" : past.get(p0).toString());
            reader.seekToBeginning(List.of(p0));
            reader.seekToEnd(List.of(p1));
            report.put("positions", Map.of("0", reader.position(p0), "1", reader.position(p1)));
            report.put("beginning", Main.numbersOf(reader.beginningOffsets(List.of(p0, p1))));
            report.put("end", Main.numbersOf(reader.endOffsets(List.of(p0, p1))));
        }
        return report;
    }
}
