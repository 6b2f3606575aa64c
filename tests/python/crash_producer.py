"""A confluent-kafka producer (acks=all, idempotence on) that streams --count records
while tests/crash.rs kills the broker under it, and prints every acknowledgement the
moment it arrives:

    ack <partition> <offset> <key hex> <value hex>
    failed <index> <error>
    produced <count acknowledged> failed <count failed>

Record i has key "key-<i mod 16>" and value "<i>:crash:" padded with 'x' to 100 bytes.
librdkafka retries what the dead broker did not answer once it is back; with
idempotence the broker must drop the retries of batches it had already written.
Exits 0 once every record is acknowledged or has failed (the test judges which).
"""

import argparse
import sys
import time

from confluent_kafka import Producer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--records-per-ms", type=float, default=5.0,
                        help="pace, so the stream spans the kills")
    args = parser.parse_args()
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 2,
        # Generous: the broker is down for a restart or two.
        "message.timeout.ms": 120000,
        "reconnect.backoff.ms": 20,
        "reconnect.backoff.max.ms": 200,
        "error_cb": lambda err: print(f"client error: {err}", file=sys.stderr, flush=True),
    })
    failures = []
    acked = [0]

    def on_delivery(index):
        def report(err, msg):
            if err is not None:
                failures.append(index)
                print(f"failed {index} {err}", flush=True)
            else:
                acked[0] += 1
                print(f"ack {msg.partition()} {msg.offset()} {msg.key().hex()} {msg.value().hex()}",
                      flush=True)
        return report

    start = time.monotonic()
    for i in range(args.count):
        key = f"key-{i % 16}".encode()
        value = f"{i}:crash:".encode()
        value += b"x" * (100 - len(value))
        while True:
            try:
                producer.produce(args.topic, key=key, value=value, on_delivery=on_delivery(i))
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        ahead = i / args.records_per_ms / 1000 - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
    remaining = producer.flush(180)
    print(f"produced {acked[0]} failed {len(failures)} unresolved {remaining}", flush=True)


if __name__ == "__main__":
    main()
