#!/usr/bin/env bash
# Kafka's kafka-acls.sh, on the jars tests/java/pom.xml pins.
exec "$(dirname "$(readlink -f "$0")")/../kafka-run-class" org.apache.kafka.tools.AclCommand "$@"
