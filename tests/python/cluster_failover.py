"""Streams records into a replicated topic with an idempotent acks=all confluent-kafka
producer, SIGKILLs the partition leader's process part-way through, then reads the
topic back from the beginning and reports what it saw as JSON.

usage: cluster_failover.py BOOTSTRAP TOPIC COUNT KILL_AT PID_TO_KILL
       cluster_failover.py --read-only BOOTSTRAP TOPIC EXPECTED
"""
import json
import os
import signal
import sys
import time

import confluent_kafka as ck


def read_back(bootstrap, topic, expected, partitions):
    consumer = ck.Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "cluster-failover-check",
        "enable.auto.commit": False,
    })
    consumer.assign([ck.TopicPartition(topic, p, ck.OFFSET_BEGINNING) for p in range(partitions)])
    seen = {}
    duplicates = 0
    deadline = time.time() + 60
    while len(seen) < expected and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is None or message.error():
            continue
        value = message.value().decode()
        if value in seen:
            duplicates += 1
        seen[value] = [message.partition(), message.offset()]
    consumer.close()
    return seen, duplicates


def main():
    if sys.argv[1] == "--read-only":
        bootstrap, topic, expected = sys.argv[2], sys.argv[3], int(sys.argv[4])
        seen, duplicates = read_back(bootstrap, topic, expected, 3)
        print(json.dumps({"consumed": len(seen), "duplicates": duplicates}))
        return
    bootstrap, topic, count, kill_at, pid = sys.argv[1:6]
    count, kill_at, pid = int(count), int(kill_at), int(pid)
    producer = ck.Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
    })
    acknowledged = {}
    errors = []

    def delivered(error, message):
        if error is None:
            acknowledged[message.value().decode()] = [message.partition(), message.offset()]
        else:
            errors.append(str(error))

    killed_at = None
    for i in range(count):
        # Every partition gets records, so the killed leader's partition is written
        # to before and after the kill.
        producer.produce(topic, partition=i % 3, key=str(i % 7).encode(),
                         value=str(i).encode(), on_delivery=delivered)
        producer.poll(0)
        if i == kill_at:
            producer.flush(30)
            os.kill(pid, signal.SIGKILL)
            killed_at = time.time()
        if i % 1000 == 0:
            time.sleep(0.02)
    unflushed = producer.flush(90)
    recovered_after = time.time() - killed_at
    seen, duplicates = read_back(bootstrap, topic, len(acknowledged), 3)
    missing = [v for v in acknowledged if v not in seen]
    moved = [v for v in acknowledged if v in seen and seen[v] != acknowledged[v]]
    # Per partition, acknowledged offsets must rise with the order of sending.
    out_of_order = 0
    last = {}
    for i in range(count):
        entry = acknowledged.get(str(i))
        if entry is None:
            continue
        partition, offset = entry
        if offset <= last.get(partition, -1):
            out_of_order += 1
        last[partition] = offset
    print(json.dumps({
        "acknowledged": len(acknowledged),
        "errors": errors[:5],
        "unflushed": unflushed,
        "consumed": len(seen),
        "duplicates": duplicates,
        "missing": len(missing),
        "moved": len(moved),
        "out_of_order": out_of_order,
        "seconds_to_drain_after_kill": round(recovered_after, 2),
    }))


if __name__ == "__main__":
    main()
