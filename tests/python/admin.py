"""Creates topics with confluent-kafka's AdminClient (CreateTopics), for the tests.

Usage: admin.py --bootstrap HOST:PORT [--replication-factor N] [--timeout SECONDS]
                create TOPIC PARTITIONS [TOPIC PARTITIONS ...]
"""

import argparse
import sys

from confluent_kafka.admin import AdminClient, NewTopic


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--replication-factor", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=60,
                        help="seconds the whole creation may take")
    parser.add_argument("action", choices=["create"])
    parser.add_argument("pairs", nargs="+", help="TOPIC PARTITIONS ...")
    args = parser.parse_args()
    if len(args.pairs) % 2:
        sys.exit("admin.py: give TOPIC PARTITIONS pairs")
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    topics = [
        NewTopic(args.pairs[i], num_partitions=int(args.pairs[i + 1]), replication_factor=args.replication_factor)
        for i in range(0, len(args.pairs), 2)
    ]
    failed = False
    for name, future in admin.create_topics(
            topics, operation_timeout=30, request_timeout=args.timeout).items():
        try:
            future.result(timeout=args.timeout)
            print(f"created {name}")
        except Exception as error:  # reported; the test fails on the exit status
            print(f"failed {name} {error}")
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
