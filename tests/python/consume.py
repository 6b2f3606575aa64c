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
                  --topic T [--partitions N] [--timeout S] [--isolation LEVEL] [--group-id G]
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
        "error_cb": lambda err: print(f"client error: {err}", file=sys.stderr),
    }
    if args.isolation:
        config["isolation.level"] = args.isolation
    # confluent-kafka refuses to build a Consumer without group.id ("group.id must be
    # set"), even for assign(); auto commit is off, so no offsets are ever committed.
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

    config = {"bootstrap_servers": args.bootstrap, "group_id": None, "enable_auto_commit": False}
    if args.isolation:
        config["isolation_level"] = args.isolation
    consumer = KafkaConsumer(**config)
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
        config = {"bootstrap_servers": args.bootstrap, "group_id": None, "enable_auto_commit": False}
        if args.isolation:
            config["isolation_level"] = args.isolation
        consumer = AIOKafkaConsumer(**config)
        await consumer.start()
        try:
            deadline = time.monotonic() + args.timeout
            # aiokafka's consumer tracks the metadata of assigned topics only (topics()
            # fetches into a separate object), so assign the partitions the test says
            # the topic has, then check the broker agrees.
            if args.partitions is None:
                fail("aiokafka needs --partitions")
            tps = [TopicPartition(args.topic, p) for p in range(args.partitions)]
            consumer.assign(tps)
            found = None
            while not found:
                found = consumer.partitions_for_topic(args.topic)
                if not found:
                    if time.monotonic() > deadline:
                        fail(f"no metadata for {args.topic}")
                    await asyncio.sleep(0.1)
            partitions = sorted(found)
            check_partitions(args, partitions)
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

    # aiokafka retries some failures forever (a closed connection in end_offsets):
    # bound the whole run so such a hang is a failure with a message.
    try:
        asyncio.run(asyncio.wait_for(run(), args.timeout + 30))
    except asyncio.TimeoutError:
        fail(f"aiokafka did not finish within {args.timeout + 30} s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True, choices=["confluent", "kafka-python", "aiokafka"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--partitions", type=int)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--isolation", choices=["read_committed", "read_uncommitted"],
                        help="isolation level; default: the client's own default "
                             "(librdkafka: read_committed, the others: read_uncommitted)")
    parser.add_argument("--group-id", default="odradek-tests-assign-only",
                        help="confluent only: its required group.id (assign() joins no group)")
    args = parser.parse_args()
    {"confluent": confluent, "kafka-python": kafka_python, "aiokafka": aiokafka_client}[args.client](args)


if __name__ == "__main__":
    main()
