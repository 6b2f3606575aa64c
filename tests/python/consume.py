"""Reads a whole topic back with one of three real Kafka clients, without a consumer
group: every partition is assigned explicitly from the earliest offset, and the reader
stops when each partition reaches the end offset the broker reported when it started.

Prints one line per record, for the Rust tests to parse:

    partitions <n>
    end <partition> <end offset>
    record <partition> <offset> <key hex or -> <value hex or ->
    done <count>

Exits 1 (with a message on stderr) on any client error, or if the end is not reached
within --timeout seconds (a broker that serves too little, or a wrong last stable
offset under read_committed, shows up here).

Usage: consume.py --client confluent|kafka-python|aiokafka --bootstrap HOST:PORT
                  --topic T [--partitions N] [--timeout S] [--isolation read_committed]
"""

import argparse
import asyncio
import sys
import time


def hexed(data):
    if data is None:
        return "-"
    if isinstance(data, str):
        data = data.encode("utf-8")
    return bytes(data).hex()


def emit(partition, offset, key, value):
    print(f"record {partition} {offset} {hexed(key)} {hexed(value)}")


def fail(message):
    print(f"consume.py: {message}", file=sys.stderr)
    sys.exit(1)


def check_partitions(args, found):
    print(f"partitions {len(found)}")
    if args.partitions is not None and len(found) != args.partitions:
        fail(f"topic {args.topic} has {len(found)} partitions, expected {args.partitions}")


def confluent(args):
    from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

    config = {
        "bootstrap.servers": args.bootstrap,
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        # librdkafka's own default, stated: the last stable offset must be right.
        "isolation.level": args.isolation,
        "error_cb": lambda err: print(f"client error: {err}", file=sys.stderr),
    }
    if args.group_id:
        config["group.id"] = args.group_id
    consumer = Consumer(config)
    try:
        metadata = consumer.list_topics(args.topic, timeout=30)
        topic = metadata.topics.get(args.topic)
        if topic is None or topic.error is not None:
            fail(f"no metadata for {args.topic}: {topic.error if topic else 'missing'}")
        partitions = sorted(topic.partitions)
        check_partitions(args, partitions)
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(args.topic, p), timeout=30)
            ends[p] = high
            print(f"end {p} {high}")
        consumer.assign([TopicPartition(args.topic, p, -2) for p in partitions])  # OFFSET_BEGINNING
        positions = {p: 0 for p in partitions}
        count = 0
        deadline = time.monotonic() + args.timeout
        while any(positions[p] < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                fail(f"timed out at positions {positions}, ends {ends}")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(msg.error())
            emit(msg.partition(), msg.offset(), msg.key(), msg.value())
            positions[msg.partition()] = msg.offset() + 1
            count += 1
        print(f"done {count}")
    finally:
        consumer.close()


def kafka_python(args):
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=args.bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level=args.isolation,
        consumer_timeout_ms=1000,
    )
    try:
        deadline = time.monotonic() + args.timeout
        found = None
        while not found:
            found = consumer.partitions_for_topic(args.topic)
            if not found and time.monotonic() > deadline:
                fail(f"no metadata for {args.topic}")
        partitions = sorted(found)
        check_partitions(args, partitions)
        tps = [TopicPartition(args.topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = {tp.partition: off for tp, off in consumer.end_offsets(tps).items()}
        for p in partitions:
            print(f"end {p} {ends[p]}")
        positions = {p: 0 for p in partitions}
        count = 0
        while any(positions[p] < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                fail(f"timed out at positions {positions}, ends {ends}")
            batches = consumer.poll(timeout_ms=500)
            for tp, messages in batches.items():
                for msg in messages:
                    emit(msg.partition, msg.offset, msg.key, msg.value)
                    positions[msg.partition] = msg.offset + 1
                    count += 1
        print(f"done {count}")
    finally:
        consumer.close()


def aiokafka_client(args):
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run():
        consumer = AIOKafkaConsumer(
            bootstrap_servers=args.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            isolation_level=args.isolation,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            deadline = time.monotonic() + args.timeout
            found = None
            while not found:
                await consumer.topics()  # refreshes the metadata of every topic
                found = consumer.partitions_for_topic(args.topic)
                if not found:
                    if time.monotonic() > deadline:
                        fail(f"no metadata for {args.topic}")
                    await asyncio.sleep(0.2)
            partitions = sorted(found)
            check_partitions(args, partitions)
            tps = [TopicPartition(args.topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
            for p in partitions:
                print(f"end {p} {ends[p]}")
            positions = {p: 0 for p in partitions}
            count = 0
            while any(positions[p] < ends[p] for p in partitions):
                if time.monotonic() > deadline:
                    fail(f"timed out at positions {positions}, ends {ends}")
                batches = await consumer.getmany(timeout_ms=500)
                for tp, messages in batches.items():
                    for msg in messages:
                        emit(msg.partition, msg.offset, msg.key, msg.value)
                        positions[msg.partition] = msg.offset + 1
                        count += 1
            print(f"done {count}")
        finally:
            await consumer.stop()

    asyncio.run(run())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True, choices=["confluent", "kafka-python", "aiokafka"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--isolation", default="read_committed",
                        choices=["read_committed", "read_uncommitted"])
    parser.add_argument("--group-id", help="confluent only: set group.id (no group APIs are used)")
    args = parser.parse_args()
    {"confluent": confluent, "kafka-python": kafka_python, "aiokafka": aiokafka_client}[args.client](args)


if __name__ == "__main__":
    main()
