"""Writes to a replicated topic with an idempotent acks=all confluent-kafka producer, at a
steady rate, until a line arrives on stdin (the test kills and restarts brokers
meanwhile); then flushes, reads the topic back from the beginning and reports as JSON
what was acknowledged, what failed, which errors the client reported, and what was read.

usage: rolling_restart.py BOOTSTRAP TOPIC PARTITIONS
"""
import json
import sys
import threading
import time

import confluent_kafka as ck

from cluster_failover import read_back


def main():
    bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
    stop = threading.Event()

    def wait_for_stop():
        sys.stdin.readline()
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    client_errors = {}

    def on_error(error):
        # Transport errors are expected while a broker is down; the test looks for
        # the ones that say a topic or partition does not exist.
        client_errors[error.name()] = client_errors.get(error.name(), 0) + 1

    producer = ck.Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "error_cb": on_error,
    })
    acknowledged = {}
    failures = []

    def delivered(error, message):
        if error is None:
            acknowledged[message.value().decode()] = [message.partition(), message.offset()]
        else:
            failures.append(error.name() + ": " + error.str())

    produce_errors = []
    sent = 0
    started = time.time()
    print("producing", flush=True)
    while not stop.is_set():
        value = str(sent).encode()
        try:
            producer.produce(topic, key=value, value=value, on_delivery=delivered)
            sent += 1
        except (BufferError, ck.KafkaException) as error:
            produce_errors.append(str(error))
        producer.poll(0.002)
    unflushed = producer.flush(120)
    seconds = time.time() - started
    seen, duplicates = read_back(bootstrap, topic, len(acknowledged), partitions)
    missing = [v for v in acknowledged if v not in seen]
    moved = [v for v in acknowledged if v in seen and seen[v] != acknowledged[v]]
    print(json.dumps({
        "sent": sent,
        "acknowledged": len(acknowledged),
        "failed": len(failures),
        "failures": failures[:5],
        "produce_errors": len(produce_errors),
        "produce_error_samples": produce_errors[:5],
        "unflushed": unflushed,
        "seconds": round(seconds, 1),
        "consumed": len(seen),
        "missing": len(missing),
        "duplicates": duplicates,
        "moved": len(moved),
        "client_errors": client_errors,
    }), flush=True)


if __name__ == "__main__":
    main()
