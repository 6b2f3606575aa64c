// Command odradek-go-clients runs the Go Kafka clients against real brokers, one
// scenario per subcommand, for tests/go_clients.rs. Each prints one JSON line on
// stdout; the clients' own logs go to stderr.
//
//	odradek-go-clients franz  BOOTSTRAP PREFIX RF   franz-go: kgo produce + group consume, kadm listing
//	odradek-go-clients sarama BOOTSTRAP PREFIX RF   IBM/sarama: producer, consumer group, cluster admin
//
// BOOTSTRAP is a comma-separated list of 127.0.0.1:PORT addresses.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// records is how many records each scenario produces (over partitions partitions).
const (
	records    = 30
	partitions = 3
)

func main() {
	if len(os.Args) != 5 {
		fmt.Fprintln(os.Stderr, "usage: odradek-go-clients franz|sarama BOOTSTRAP PREFIX RF")
		os.Exit(2)
	}
	brokers := strings.Split(os.Args[2], ",")
	prefix := os.Args[3]
	rf, err := strconv.Atoi(os.Args[4])
	if err != nil {
		fmt.Fprintln(os.Stderr, "RF:", err)
		os.Exit(2)
	}
	var report map[string]any
	switch os.Args[1] {
	case "franz":
		report = franz(brokers, prefix, int16(rf))
	case "sarama":
		report = saramaScenario(brokers, prefix, int16(rf))
	default:
		fmt.Fprintln(os.Stderr, "unknown subcommand", os.Args[1])
		os.Exit(2)
	}
	line, err := json.Marshal(report)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(line))
}

// errorText is the message of err, or "" for nil.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// expectedValue is the value of record i; its key is "key-i" and its headers
// headersOf(i).
func expectedValue(client string, i int) string {
	return fmt.Sprintf("%s-%d-%s", client, i, strings.Repeat("odradek", 8))
}

// headerPairs is the headers record i carries, as key=value strings in order.
func headerPairs(i int) []string {
	return []string{"index=" + strconv.Itoa(i), "origin=go", "origin=again"}
}
