# Consumer-group members and a producer for tests/groups.rs.
#
#   group_member.py produce --bootstrap B --topic T --partitions P --from N --count C
#       writes values "r<N>".."r<N+C-1>", record i to partition i % P, acks=all,
#       and prints "produced C" once every record is acknowledged.
#   group_member.py consume --client confluent|kafka-python|aiokafka --bootstrap B
#       --group G --topic T [--max-records N] [--session-ms S]
#       joins group G subscribed to T (auto.offset.reset=earliest, auto commit off),
#       prints one line per event and commits synchronously after every poll that
#       returned records:
#         assigned 0,1        (the partitions it owns now; empty after a revoke)
#         record 3 17 r17     (partition, offset, value)
#         committed           (everything printed before was committed)
#         closed
#       It leaves the group (close) on SIGTERM, or after --max-records records.

import argparse
import asyncio
import signal
import sys

stopping = False


def on_sigterm(_signum, _frame):
    global stopping
    stopping = True


def emit(*words):
    print(" ".join(str(w) for w in words), flush=True)


def assigned(partitions):
    emit("assigned", ",".join(str(p) for p in sorted(partitions)))


def produce(args):
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": args.bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5})
    failures = []

    def delivered(err, _msg):
        if err is not None:
            failures.append(str(err))

    for i in range(args.start, args.start + args.count):
        producer.produce(args.topic, value=f"r{i}".encode(), partition=i % args.partitions,
                         on_delivery=delivered)
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining or failures:
        print(f"unacknowledged {remaining}, failures {failures[:3]}", file=sys.stderr)
        sys.exit(1)
    print(f"produced {args.count}", flush=True)


def consume_confluent(args):
    from confluent_kafka import Consumer

    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": args.session_ms,
        "heartbeat.interval.ms": 500,
        "partition.assignment.strategy": "range",
    })

    def on_assign(_consumer, partitions):
        assigned(p.partition for p in partitions)

    def on_revoke(_consumer, _partitions):
        assigned([])

    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    seen = 0
    while not stopping and (args.max_records is None or seen < args.max_records):
        messages = consumer.consume(num_messages=50, timeout=0.2)
        got = False
        for message in messages:
            if message.error():
                continue
            got = True
            seen += 1
            emit("record", message.partition(), message.offset(), message.value().decode())
        if got:
            consumer.commit(asynchronous=False)
            emit("committed")
    consumer.close()
    emit("closed")


def consume_kafka_python(args):
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition

    consumer = KafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=args.session_ms,
        heartbeat_interval_ms=500,
    )
    seen = 0
    assignment = None
    while not stopping and (args.max_records is None or seen < args.max_records):
        batches = consumer.poll(timeout_ms=200, max_records=50)
        current = sorted(tp.partition for tp in consumer.assignment())
        if current != assignment:
            assignment = current
            assigned(current)
        offsets = {}
        for tp, messages in batches.items():
            for message in messages:
                seen += 1
                emit("record", tp.partition, message.offset, message.value.decode())
                offsets[tp] = OffsetAndMetadata(message.offset + 1, "", -1)
        if offsets:
            consumer.commit(offsets)
            emit("committed")
    consumer.close()
    emit("closed")


async def consume_aiokafka(args):
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        args.topic,
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=args.session_ms,
        heartbeat_interval_ms=500,
    )
    await consumer.start()
    seen = 0
    assignment = None
    try:
        while not stopping and (args.max_records is None or seen < args.max_records):
            batches = await consumer.getmany(timeout_ms=200, max_records=50)
            current = sorted(tp.partition for tp in consumer.assignment())
            if current != assignment:
                assignment = current
                assigned(current)
            got = False
            for tp, messages in batches.items():
                for message in messages:
                    got = True
                    seen += 1
                    emit("record", tp.partition, message.offset, message.value.decode())
            if got:
                await consumer.commit()
                emit("committed")
    finally:
        await consumer.stop()
    emit("closed")


def main():
    signal.signal(signal.SIGTERM, on_sigterm)
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("produce")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--partitions", type=int, required=True)
    p.add_argument("--from", dest="start", type=int, default=0)
    p.add_argument("--count", type=int, required=True)
    c = sub.add_parser("consume")
    c.add_argument("--client", required=True, choices=["confluent", "kafka-python", "aiokafka"])
    c.add_argument("--bootstrap", required=True)
    c.add_argument("--group", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--max-records", type=int)
    c.add_argument("--session-ms", type=int, default=10000)
    args = parser.parse_args()
    if args.command == "produce":
        produce(args)
    elif args.client == "confluent":
        consume_confluent(args)
    elif args.client == "kafka-python":
        consume_kafka_python(args)
    else:
        asyncio.run(consume_aiokafka(args))


if __name__ == "__main__":
    main()
