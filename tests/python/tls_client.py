"""Produces records over TLS with a real Kafka client and reads them back, for the
Rust test tests/security_tls.rs.

The broker's certificate is checked against --ca (and its name against the bootstrap
host); with --cert and --key the client presents a certificate (mTLS).

Prints `produced <n>` and then `consumed <n> <values joined by ,>`; exits 1 with a
message on stderr on any client error or if the records do not all come back within
--timeout seconds.

Usage: tls_client.py --client confluent|kafka-python --bootstrap HOST:PORT --topic T
                     --count N --ca CA.pem [--cert CERT.pem --key KEY.pem] [--timeout S]
"""

import argparse
import sys
import time


def fail(message):
    print(f"tls_client.py: {message}", file=sys.stderr)
    sys.exit(1)


def confluent(args, values):
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

    settings = {
        "bootstrap.servers": args.bootstrap,
        "security.protocol": "SSL",
        "ssl.ca.location": args.ca,
    }
    if args.cert:
        settings["ssl.certificate.location"] = args.cert
        settings["ssl.key.location"] = args.key
    errors = []
    producer = Producer(dict(settings, **{"error_cb": errors.append}))
    acked = []

    def on_delivery(error, message):
        if error is not None:
            errors.append(error)
        else:
            acked.append(message.offset())

    for value in values:
        producer.produce(args.topic, value=value.encode(), partition=0, on_delivery=on_delivery)
    producer.flush(args.timeout)
    if len(acked) != len(values):
        fail(f"confluent: {len(acked)} of {len(values)} acknowledged; errors: {errors}")
    print(f"produced {len(acked)}", flush=True)

    consumer = Consumer(dict(settings, **{"group.id": "tls-test", "enable.auto.commit": False}))
    consumer.assign([TopicPartition(args.topic, 0, 0)])
    read = []
    deadline = time.time() + args.timeout
    while len(read) < len(values) and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            raise KafkaException(message.error())
        read.append(message.value().decode())
    consumer.close()
    return read


def kafka_python(args, values):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    settings = {
        "bootstrap_servers": args.bootstrap,
        "security_protocol": "SSL",
        "ssl_cafile": args.ca,
    }
    if args.cert:
        settings["ssl_certfile"] = args.cert
        settings["ssl_keyfile"] = args.key
    producer = KafkaProducer(**settings)
    futures = [producer.send(args.topic, value=value.encode(), partition=0) for value in values]
    producer.flush(args.timeout)
    for future in futures:
        future.get(timeout=args.timeout)
    producer.close()
    print(f"produced {len(futures)}", flush=True)

    consumer = KafkaConsumer(**settings, enable_auto_commit=False)
    partition = TopicPartition(args.topic, 0)
    consumer.assign([partition])
    consumer.seek(partition, 0)
    read = []
    deadline = time.time() + args.timeout
    while len(read) < len(values) and time.time() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            read.extend(record.value.decode() for record in records)
    consumer.close()
    return read


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--client", required=True, choices=["confluent", "kafka-python"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    values = [f"{args.client}-{i}" for i in range(args.count)]
    run = confluent if args.client == "confluent" else kafka_python
    try:
        read = run(args, values)
    except Exception as error:  # any client error fails the test with its message
        fail(f"{args.client}: {type(error).__name__}: {error}")
    if read[: len(values)] != values:
        fail(f"{args.client}: read {read}, expected {values}")
    print(f"consumed {len(read)} {','.join(read)}")


if __name__ == "__main__":
    main()
