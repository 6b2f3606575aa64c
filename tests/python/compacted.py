"""A compacted topic as Python clients use it: many updates of few keys, some deleted.

Creates TOPIC (cleanup.policy=compact, small segments) with confluent-kafka's
AdminClient, then writes UPDATES records over KEYS keys with CLIENT (confluent or
kafka-python): record i has key "key-<i mod KEYS>" and value "v-<i>", except that the
last update of every tenth key is a tombstone (a null value). Then waits until the
segments age past segment.ms and writes one more record (key "end"), so that every
update sits in a closed segment the cleaner may compact.

Then reads the whole topic from offset 0 with a fresh consumer of each client, again
and again, until it sees every key at most once (the cleaner runs on its own time), or
gives up. Output:

    produced <count>
    read <client> <records> <keys> <repeated keys> <tombstones> <wrong values>

for the last read of each client; `<wrong values>` counts keys whose value is not
their newest update (or, for a deleted key, not a tombstone).

Usage: compacted.py --bootstrap HOST:PORT --topic TOPIC --client CLIENT
                    [--updates N] [--keys K]
"""

import argparse
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaTopicPartition

SEGMENT_MS = 2000


def create(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    config = {
        "cleanup.policy": "compact",
        "segment.bytes": "262144",
        "segment.ms": str(SEGMENT_MS),
        "min.cleanable.dirty.ratio": "0.01",
    }
    topic = NewTopic(args.topic, num_partitions=1, replication_factor=1, config=config)
    admin.create_topics([topic])[args.topic].result(timeout=60)


def updates(args):
    """(key, value) of every update, in order; value None for a tombstone."""
    last = {}
    for i in range(args.updates):
        last[i % args.keys] = i
    for i in range(args.updates):
        key = i % args.keys
        deleted = key % 10 == 0 and last[key] == i
        yield f"key-{key}".encode(), None if deleted else f"v-{i}".encode()


def expected(args):
    """Newest value of every key (None: deleted)."""
    newest = {}
    for key, value in updates(args):
        newest[key] = value
    newest[b"end"] = b"end"
    return newest


def produce(args):
    if args.client == "confluent":
        producer = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5})
        for key, value in updates(args):
            while True:
                try:
                    producer.produce(args.topic, key=key, value=value, partition=0)
                    break
                except BufferError:
                    producer.poll(0.1)
        producer.flush(120)
        time.sleep(SEGMENT_MS / 1000 + 0.5)
        producer.produce(args.topic, key=b"end", value=b"end", partition=0)
        if producer.flush(60) != 0:
            sys.exit("confluent: records left unsent")
    else:
        producer = KafkaProducer(bootstrap_servers=args.bootstrap, linger_ms=5)
        for key, value in updates(args):
            producer.send(args.topic, key=key, value=value, partition=0)
        producer.flush(120)
        time.sleep(SEGMENT_MS / 1000 + 0.5)
        producer.send(args.topic, key=b"end", value=b"end", partition=0).get(timeout=60)
        producer.close()
    print(f"produced {args.updates + 1}")


def read_confluent(args, end):
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "compacted",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(args.topic, 0, 0)])
    records = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        records.append((msg.key(), msg.value()))
        if msg.offset() + 1 >= end:
            break
    consumer.close()
    return records


def read_kafka_python(args, end):
    consumer = KafkaConsumer(bootstrap_servers=args.bootstrap, enable_auto_commit=False)
    partition = KafkaTopicPartition(args.topic, 0)
    consumer.assign([partition])
    consumer.seek(partition, 0)
    records = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=200).values():
            for msg in batch:
                records.append((msg.key, msg.value))
        if consumer.position(partition) >= end:
            break
    consumer.close()
    return records


def end_offset(args):
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "compacted-end"})
    _, high = consumer.get_watermark_offsets(TopicPartition(args.topic, 0), timeout=30)
    consumer.close()
    return high


def judge(records, newest):
    seen = {}
    repeated = tombstones = 0
    for key, value in records:
        if key in seen:
            repeated += 1
        seen[key] = value
        tombstones += value is None
    wrong = sum(1 for key, value in seen.items() if newest.get(key, b"?") != value)
    return len(records), len(seen), repeated, tombstones, wrong


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--client", choices=["confluent", "kafka-python"], required=True)
    parser.add_argument("--updates", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=1000)
    args = parser.parse_args()
    create(args)
    produce(args)
    newest = expected(args)
    end = end_offset(args)
    deadline = time.monotonic() + 120
    while True:
        results = {
            "confluent": judge(read_confluent(args, end), newest),
            "kafka-python": judge(read_kafka_python(args, end), newest),
        }
        if all(r[2] == 0 for r in results.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    for client, (count, keys, repeated, tombstones, wrong) in results.items():
        print(f"read {client} {count} {keys} {repeated} {tombstones} {wrong}")


if __name__ == "__main__":
    main()
