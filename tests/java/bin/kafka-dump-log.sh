#!/usr/bin/env bash
# Kafka's kafka-dump-log.sh, on the jars tests/java/pom.xml pins.
exec "$(dirname "$(readlink -f "$0")")/../kafka-run-class" kafka.tools.DumpLogSegments "$@"
