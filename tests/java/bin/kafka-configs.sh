#!/usr/bin/env bash
# Kafka's kafka-configs.sh, on the jars tests/java/pom.xml pins.
exec "$(dirname "$(readlink -f "$0")")/../kafka-run-class" kafka.admin.ConfigCommand "$@"
