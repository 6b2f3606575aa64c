#!/usr/bin/env bash
# bench/versus-kafka.sh: Apache Kafka and Odradek on the same machine, one at a time,
# under the same loads, measured by Kafka's own tools; prints the figures and the
# Odradek/Kafka ratio of each.
#
#   bench/versus-kafka.sh [--quick] [--cluster] [--systems LIST] [--results FILE]
#
# Systems (each started on a fresh temporary data directory, stopped and removed
# before the next starts; --systems picks some of them, comma-separated):
#   kafka        Apache Kafka 4.1.1 (tests/java/kafka-server, KRaft combined mode) with
#                its defaults: it acknowledges a write before it is fsynced.
#   kafka-fsync  the same with log.flush.interval.messages=1 (the broker default of the
#                topic setting flush.messages=1): an fsync after every appended batch,
#                the durability Odradek promises for every acknowledged record.
#   odradek      target/release/odradek broker (built with cargo build --release when
#                missing; $CARGO_TARGET_DIR is honoured).
# --cluster runs three nodes of each (three processes on 127.0.0.1) and creates every
# topic with replication factor 3 (Kafka: min.insync.replicas=2).
#
# Loads, the same against each system, all acks=all, one producer or consumer JVM:
#   produce   kafka-producer-perf-test --throughput -1 --num-records N, records of 100
#             bytes and of 1 KiB, topics of 1 and 8 partitions (four runs);
#   consume   kafka-consumer-perf-test over each of those topics, all N records
#             (records/s and MB/s of its fetch.* columns, which leave the group join out);
#   rate      kafka-producer-perf-test at a fixed --throughput, 100-byte records, one
#             partition: its latency percentiles (send to acknowledgement, whole ms);
#   e2e       org.apache.kafka.tools.EndToEndLatency, 100-byte records one at a time:
#             send, acknowledgement and fetch of each, p50/p99/p99.9 in ms.
# Both tools report latencies in whole milliseconds: below a millisecond a ratio is
# coarse, and '-' where Kafka's figure is 0.
# Record counts aim at 10-20 s per produce run on a 2-core machine (kafka-fsync takes
# longer: the counts are the same for every system); --quick uses small counts (a smoke
# run of the script, whose figures mean nothing).
#
# Output: the table on stdout (figures per system, then one line of Odradek/Kafka
# ratios per Kafka run: above 1 is better for records/s and MB/s, below 1 is better for
# latencies); the raw figures as tab-separated lines in --results FILE (default: a file
# in the run's temporary directory, named at the end). The tools' own output is kept in
# that directory too. Ports: 127.0.0.1 from $BENCH_PORT (default 39092) upwards.
#
# Needs a JDK and Kafka's jars (target/kafka-jars, which .ci/run or the first test run
# installs; this script runs Maven for them when missing). Run it on an idle machine.
set -euo pipefail

root="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
tools="$root/tests/java/bin"
kafka_server="$root/tests/java/kafka-server"
target="${CARGO_TARGET_DIR:-$root/target}"
odradek="$target/release/odradek"

quick=no
cluster=no
systems="kafka,kafka-fsync,odradek"
results=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=yes; shift ;;
    --cluster) cluster=yes; shift ;;
    --systems) systems="$2"; shift 2 ;;
    --results) results="$2"; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "versus-kafka: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$quick" = yes ]; then
    records_100=20000
    records_1k=5000
    rate=1000
    rate_records=3000
    e2e_records=200
else
    records_100=4000000
    records_1k=1000000
    rate=10000
    rate_records=200000
    e2e_records=10000
fi
if [ "$cluster" = yes ]; then nodes=3; else nodes=1; fi
replication_factor="$nodes"
port_base="${BENCH_PORT:-39092}"

work="$(mktemp -d "${TMPDIR:-/tmp}/versus-kafka.XXXXXX")"
results="${results:-$work/results.tsv}"
: >"$results"
current_stop=""

log() { echo "versus-kafka: $*" >&2; }

cleanup() {
    if [ -n "$current_stop" ]; then $current_stop || true; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- prerequisites --------------------------------------------------------------

if ! compgen -G "${ODRADEK_KAFKA_JARS:-$root/target/kafka-jars}/kafka-tools-*.jar" >/dev/null; then
    log "installing Kafka's jars with Maven (tests/java/pom.xml)"
    mkdir -p "$root/target"
    mvn -q -B -f "$root/tests/java/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$root/target/kafka-jars"
    cp "$root/tests/java/pom.xml" "$root/target/kafka-jars/odradek-pom.xml"
fi
if [[ ",$systems," == *,odradek,* ]] && [ ! -x "$odradek" ]; then
    log "building $odradek"
    (cd "$root" && cargo build --release -p odradek)
fi

# ---- starting and stopping each system --------------------------------------------

bootstrap=""

start_kafka() {
    local name="$1"
    shift
    local out
    out="$("$kafka_server" start --dir "$work/$name" --nodes "$nodes" \
        --ports "$port_base" --controller-ports "$((port_base + 100))" "$@")"
    bootstrap="$(sed -n 's/^KAFKA_BOOTSTRAP=//p' <<<"$out")"
    current_stop="stop_kafka $name"
}

stop_kafka() {
    "$kafka_server" stop --dir "$work/$1"
    rm -rf "$work/$1/node-"*/data
    current_stop=""
}

odradek_pids=()

start_odradek() {
    local dir="$work/odradek" n voters="" port
    mkdir -p "$dir"
    odradek_pids=()
    bootstrap=""
    for ((n = 1; n <= nodes; n++)); do
        voters+="${voters:+,}$n@127.0.0.1:$((port_base + 100 + n - 1))"
    done
    for ((n = 1; n <= nodes; n++)); do
        port=$((port_base + n - 1))
        bootstrap+="${bootstrap:+,}127.0.0.1:$port"
        local args=(--listen "127.0.0.1:$port" --data-dir "$dir/data-$n")
        if [ "$nodes" -gt 1 ]; then
            args+=(--node-id "$n" --voters "$voters")
            "$odradek" format --node-id "$n" --voters "$voters" --data-dir "$dir/data-$n" \
                --cluster-id versus-kafka >/dev/null
        fi
        "$odradek" broker "${args[@]}" </dev/null >"$dir/broker-$n.stdout" 2>"$dir/broker-$n.stderr" &
        odradek_pids+=("$!")
    done
    current_stop="stop_odradek"
    local deadline=$((SECONDS + 60)) ready
    while :; do
        ready=0
        for ((n = 1; n <= nodes; n++)); do
            kill -0 "${odradek_pids[n - 1]}" 2>/dev/null ||
                { tail -n 20 "$dir/broker-$n.stderr" >&2; log "odradek broker $n exited"; exit 1; }
            if grep -q "odradek broker listening on" "$dir/broker-$n.stdout"; then
                ready=$((ready + 1))
            fi
        done
        [ "$ready" -lt "$nodes" ] || break
        [ "$SECONDS" -lt "$deadline" ] || { log "odradek did not start in 60 s; see $dir"; exit 1; }
        sleep 0.2
    done
}

stop_odradek() {
    kill -TERM "${odradek_pids[@]}" 2>/dev/null || true
    wait "${odradek_pids[@]}" 2>/dev/null || true
    rm -rf "$work/odradek/data-"*
    current_stop=""
}

# ---- the loads ---------------------------------------------------------------------

# record SYSTEM LOAD RECORDS_PER_S MB_PER_S P50_MS P99_MS P999_MS ('-' when none)
record() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$results"
}

# Creates topic $1 with $2 partitions and waits (at most 60 s) until kafka-topics
# --describe names a leader for each, so that no load measures a leader election.
create_topic() {
    local topic="$1" partitions="$2" deadline=$((SECONDS + 60)) led
    "$tools/kafka-topics.sh" --bootstrap-server "$bootstrap" --create --topic "$topic" \
        --partitions "$partitions" --replication-factor "$replication_factor" >/dev/null
    while :; do
        led="$("$tools/kafka-topics.sh" --bootstrap-server "$bootstrap" --describe \
            --topic "$topic" 2>/dev/null | grep -c 'Leader: [0-9]' || true)"
        [ "$led" -lt "$partitions" ] || return 0
        [ "$SECONDS" -lt "$deadline" ] || { log "$topic has $led of $partitions leaders after 60 s"; exit 1; }
        sleep 0.5
    done
}

# The summary line of kafka-producer-perf-test: "N records sent, R records/sec (M MB/sec),
# A ms avg latency, X ms max latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th."
producer_figures() {
    grep '50th' "$1" | tail -n 1 | tr -d '(),' |
        awk '{ print $4 "\t" $6 "\t" $16 "\t" $22 "\t" $25 }'
}

# kafka-consumer-perf-test's CSV: the fetch.nMsg.sec and fetch.MB.sec columns.
consumer_figures() {
    awk -F', *' '
        NR == 1 { for (i = 1; i <= NF; i++) column[$i] = i; next }
        NF > 1 { row = $0 }
        END {
            split(row, f, ", *")
            print f[column["fetch.nMsg.sec"]] "\t" f[column["fetch.MB.sec"]] "\t-\t-\t-"
        }' "$1"
}

# EndToEndLatency: "Percentiles: 50th = A, 99th = B, 99.9th = C".
e2e_figures() {
    grep '^Percentiles' "$1" | tr -d ',' | awk '{ print "-\t-\t" $4 "\t" $7 "\t" $10 }'
}

run_loads() {
    local system="$1" size parts topic records out figures
    for size in 100 1024; do
        if [ "$size" = 100 ]; then records="$records_100"; else records="$records_1k"; fi
        for parts in 1 8; do
            topic="perf-$size-$parts"
            out="$work/$system.produce-$size-$parts.out"
            create_topic "$topic" "$parts"
            log "$system: produce $records records of $size bytes to $parts partition(s)"
            "$tools/kafka-producer-perf-test.sh" --topic "$topic" --num-records "$records" \
                --record-size "$size" --throughput -1 \
                --producer-props bootstrap.servers="$bootstrap" acks=all >"$out" 2>&1 ||
                { cat "$out" >&2; log "$system: kafka-producer-perf-test failed"; exit 1; }
            figures="$(producer_figures "$out")"
            [ -n "$figures" ] || { cat "$out" >&2; log "no summary line in $out"; exit 1; }
            record "$system" "produce ${size}B x$parts" $figures

            out="$work/$system.consume-$size-$parts.out"
            log "$system: consume them"
            "$tools/kafka-consumer-perf-test.sh" --bootstrap-server "$bootstrap" \
                --topic "$topic" --messages "$records" --timeout 60000 >"$out" 2>&1 ||
                { cat "$out" >&2; log "$system: kafka-consumer-perf-test failed"; exit 1; }
            record "$system" "consume ${size}B x$parts" $(consumer_figures "$out")
        done
    done

    create_topic perf-rate 1
    out="$work/$system.rate.out"
    log "$system: $rate_records records of 100 bytes at $rate records/s"
    "$tools/kafka-producer-perf-test.sh" --topic perf-rate --num-records "$rate_records" \
        --record-size 100 --throughput "$rate" \
        --producer-props bootstrap.servers="$bootstrap" acks=all >"$out" 2>&1 ||
        { cat "$out" >&2; log "$system: kafka-producer-perf-test failed"; exit 1; }
    record "$system" "rate ${rate}/s 100B" $(producer_figures "$out")

    create_topic perf-e2e 1
    out="$work/$system.e2e.out"
    log "$system: end-to-end latency of $e2e_records records of 100 bytes"
    "$tools/kafka-run-class.sh" org.apache.kafka.tools.EndToEndLatency "$bootstrap" perf-e2e \
        "$e2e_records" all 100 >"$out" 2>&1 ||
        { cat "$out" >&2; log "$system: EndToEndLatency failed"; exit 1; }
    record "$system" "e2e 100B" $(e2e_figures "$out")
}

IFS=',' read -r -a chosen <<<"$systems"
for system in "${chosen[@]}"; do
    case "$system" in
    kafka) start_kafka kafka ;;
    kafka-fsync) start_kafka kafka-fsync --set log.flush.interval.messages=1 ;;
    odradek) start_odradek ;;
    *) log "unknown system '$system' (kafka, kafka-fsync, odradek)"; exit 2 ;;
    esac
    log "$system started ($nodes node(s), $bootstrap)"
    run_loads "$system"
    $current_stop
done

# ---- the table ---------------------------------------------------------------------

echo
echo "versus-kafka: $nodes node(s), replication factor $replication_factor, acks=all$([ "$quick" = yes ] && echo ", --quick (figures mean nothing)")"
awk -F'\t' '
    function ratio(a, b) {
        if (a == "-" || b == "-" || b + 0 == 0) return "-"
        return sprintf("%.2fx", a / b)
    }
    function number(x, format) {
        return (x == "-" || x ~ /x$/) ? x : sprintf(format, x)
    }
    function line(load, who, f1, f2, f3, f4, f5) {
        if (who != "system") {
            f1 = number(f1, "%.0f"); f2 = number(f2, "%.2f")
            f3 = number(f3, "%g"); f4 = number(f4, "%g"); f5 = number(f5, "%g")
        }
        printf "%-22s %-22s %12s %9s %8s %8s %8s\n", load, who, f1, f2, f3, f4, f5
    }
    {
        if (!($2 in seen)) { seen[$2] = 1; loads[++n] = $2 }
        for (i = 3; i <= 7; i++) figure[$2, $1, i] = $i
        has[$2, $1] = 1
    }
    END {
        line("load", "system", "records/s", "MB/s", "p50 ms", "p99 ms", "p999 ms")
        split("kafka kafka-fsync odradek", systems, " ")
        for (l = 1; l <= n; l++) {
            load = loads[l]
            shown = load
            for (s = 1; s <= 3; s++) {
                who = systems[s]
                if (!has[load, who]) continue
                line(shown, who, figure[load, who, 3], figure[load, who, 4],
                    figure[load, who, 5], figure[load, who, 6], figure[load, who, 7])
                shown = ""
            }
            if (!has[load, "odradek"]) continue
            for (s = 1; s <= 2; s++) {
                who = systems[s]
                if (!has[load, who]) continue
                for (i = 3; i <= 7; i++) r[i] = ratio(figure[load, "odradek", i], figure[load, who, i])
                line("", "odradek/" who, r[3], r[4], r[5], r[6], r[7])
            }
        }
    }' "$results"
echo
echo "raw figures: $results; the tools' output: $work"
