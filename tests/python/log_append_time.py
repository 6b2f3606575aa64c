"""A topic with message.timestamp.type=LogAppendTime, as Python clients see it.

Creates TOPIC with confluent-kafka's AdminClient and the config, then sends one record
with confluent-kafka and one with kafka-python, each with an explicit timestamp of
1000 ms (1970): the broker must replace it with its own time and say so in the produce
response. Then reads both back with confluent-kafka. Output, one line each:

    produced <client> <timestamp type> <timestamp ms>     as the delivery reported it
    read <value> <timestamp type> <timestamp ms>          as the consumer read it

Timestamp types are librdkafka's numbers (1 CreateTime, 2 LogAppendTime) for
confluent-kafka; kafka-python reports only the time.

Usage: log_append_time.py --bootstrap HOST:PORT --topic TOPIC
"""

import argparse
import sys

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer

OLD_TIMESTAMP_MS = 1000


def create(args):
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    topic = NewTopic(args.topic, num_partitions=1, replication_factor=1,
                     config={"message.timestamp.type": "LogAppendTime"})
    admin.create_topics([topic])[args.topic].result(timeout=60)


def produce_confluent(args):
    reports = []
    producer = Producer({"bootstrap.servers": args.bootstrap})
    producer.produce(args.topic, value=b"confluent", partition=0, timestamp=OLD_TIMESTAMP_MS,
                     on_delivery=lambda err, msg: reports.append((err, msg)))
    producer.flush(60)
    [(err, msg)] = reports
    if err is not None:
        sys.exit(f"confluent delivery failed: {err}")
    kind, ms = msg.timestamp()
    print(f"produced confluent {kind} {ms}")


def produce_kafka_python(args):
    producer = KafkaProducer(bootstrap_servers=args.bootstrap)
    metadata = producer.send(args.topic, value=b"kafka-python", partition=0,
                             timestamp_ms=OLD_TIMESTAMP_MS).get(timeout=60)
    producer.close()
    print(f"produced kafka-python - {metadata.timestamp}")


def read(args):
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "log-append-time",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(args.topic, 0, 0)])
    seen = 0
    for _ in range(300):
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        kind, ms = msg.timestamp()
        print(f"read {msg.value().decode()} {kind} {ms}")
        seen += 1
        if seen == 2:
            break
    consumer.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    args = parser.parse_args()
    create(args)
    produce_confluent(args)
    produce_kafka_python(args)
    read(args)


if __name__ == "__main__":
    main()
