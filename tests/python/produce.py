"""Produces --count records with one of three real Kafka clients and prints every
acknowledgement, for the Rust tests to compare with what a consumer reads back.

Record i (counting from --first) has the value "<i>:<topic>:" padded with 'x' to --value-bytes, and the key
"key-<i mod --keys>" (no key when --keys is 0). Output, one line each:

    ack <partition> <offset> <key hex or -> <value hex>      (offset -1: not told, acks=0)
    failed <i> <error>
    produced <count acknowledged>

Exits 1 if any record failed.

Usage: produce.py --client confluent|kafka-python|aiokafka --bootstrap HOST:PORT --topic T
                  --count N [--acks all|1|0] [--idempotence default|true|false]
                  [--compression none|gzip|snappy|lz4|zstd] [--keys K] [--value-bytes B]
                  [--linger-ms L] [--first F]
"""

import argparse
import asyncio
import sys


def hexed(data):
    if data is None:
        return "-"
    if isinstance(data, str):
        data = data.encode("utf-8")
    return bytes(data).hex()


def record(args, i):
    i += args.first
    key = None if args.keys == 0 else f"key-{i % args.keys}".encode()
    value = f"{i}:{args.topic}:".encode()
    value += b"x" * max(0, args.value_bytes - len(value))
    return key, value


def ack(partition, offset, key, value):
    if offset is None or offset < 0:
        offset = -1
    print(f"ack {partition} {offset} {hexed(key)} {hexed(value)}")


def acks_setting(args):
    return {"all": "all", "1": 1, "0": 0}[args.acks]


def confluent(args):
    from confluent_kafka import Producer

    config = {
        "bootstrap.servers": args.bootstrap,
        "acks": args.acks,
        "linger.ms": args.linger_ms,
        "compression.type": args.compression,
        "error_cb": lambda err: print(f"client error: {err}", file=sys.stderr),
    }
    if args.idempotence != "default":
        config["enable.idempotence"] = args.idempotence == "true"
    producer = Producer(config)
    failures = []

    def on_delivery(index):
        def report(err, msg):
            if err is not None:
                failures.append((index, err))
            else:
                ack(msg.partition(), msg.offset(), msg.key(), msg.value())
        return report

    for i in range(args.count):
        key, value = record(args, i)
        while True:
            try:
                producer.produce(args.topic, key=key, value=value, on_delivery=on_delivery(i))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(60)
    if remaining:
        failures.append((-1, f"{remaining} records still in flight after flush(60)"))
    return failures


def kafka_python(args):
    from kafka import KafkaProducer

    config = {
        "bootstrap_servers": args.bootstrap,
        "acks": acks_setting(args),
        "linger_ms": args.linger_ms,
        "compression_type": None if args.compression == "none" else args.compression,
    }
    if args.idempotence != "default":
        config["enable_idempotence"] = args.idempotence == "true"
    producer = KafkaProducer(**config)
    futures = []
    for i in range(args.count):
        key, value = record(args, i)
        futures.append((i, key, value, producer.send(args.topic, key=key, value=value)))
    producer.flush(timeout=60)
    failures = []
    for i, key, value, future in futures:
        try:
            metadata = future.get(timeout=60)
            ack(metadata.partition, metadata.offset, key, value)
        except Exception as error:  # every client error is a test failure, reported
            failures.append((i, repr(error)))
    producer.close(timeout=10)
    return failures


def aiokafka_client(args):
    from aiokafka import AIOKafkaProducer

    async def run():
        config = {
            "bootstrap_servers": args.bootstrap,
            "acks": acks_setting(args),
            "linger_ms": args.linger_ms,
            "compression_type": None if args.compression == "none" else args.compression,
        }
        if args.idempotence != "default":
            config["enable_idempotence"] = args.idempotence == "true"
        producer = AIOKafkaProducer(**config)
        await producer.start()
        failures = []
        try:
            futures = []
            for i in range(args.count):
                key, value = record(args, i)
                futures.append((i, key, value, await producer.send(args.topic, key=key, value=value)))
            await producer.flush()
            for i, key, value, future in futures:
                try:
                    metadata = await future
                    ack(metadata.partition, metadata.offset, key, value)
                except Exception as error:  # reported, and fails the test
                    failures.append((i, repr(error)))
        finally:
            await producer.stop()
        return failures

    return asyncio.run(run())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True, choices=["confluent", "kafka-python", "aiokafka"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--first", type=int, default=0,
                        help="number of the first record (several runs into one topic)")
    parser.add_argument("--acks", default="all", choices=["all", "1", "0"])
    parser.add_argument("--idempotence", default="default", choices=["default", "true", "false"])
    parser.add_argument("--compression", default="none",
                        choices=["none", "gzip", "snappy", "lz4", "zstd"])
    parser.add_argument("--keys", type=int, default=5)
    parser.add_argument("--value-bytes", type=int, default=40)
    parser.add_argument("--linger-ms", type=int, default=5)
    args = parser.parse_args()
    run = {"confluent": confluent, "kafka-python": kafka_python, "aiokafka": aiokafka_client}
    failures = run[args.client](args)
    for index, error in failures:
        print(f"failed {index} {error}")
    print(f"produced {args.count - len(failures)}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
