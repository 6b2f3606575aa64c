#!/usr/bin/env bash
# Kafka's kafka-run-class.sh: kafka-run-class.sh CLASS [ARG...].
exec "$(dirname "$(readlink -f "$0")")/../kafka-run-class" "$@"
