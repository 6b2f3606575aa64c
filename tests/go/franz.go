package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// complaints keeps every warning and error franz-go logs: it logs what it finds wrong
// in a broker's answers (unexpected fields, versions, errors) at these levels.
type complaints struct {
	mu    sync.Mutex
	lines []string
}

// Level is info: franz-go's info lines go to stderr, to be read by hand; only its
// warnings and errors are complaints.
func (c *complaints) Level() kgo.LogLevel { return kgo.LogLevelInfo }

func (c *complaints) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	line := level.String() + " " + msg
	for i := 0; i+1 < len(keyvals); i += 2 {
		line += fmt.Sprintf(" %v=%v", keyvals[i], keyvals[i+1])
	}
	fmt.Fprintln(os.Stderr, "franz-go:", line)
	if level > kgo.LogLevelWarn {
		return
	}
	c.mu.Lock()
	c.lines = append(c.lines, line)
	c.mu.Unlock()
}

func (c *complaints) all() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string{}, c.lines...)
}

// franz creates a topic with kadm, produces to it with an idempotent acks=all kgo
// client (keys, headers, explicit partitions), consumes it in a group and commits, and
// lists topics, groups, committed offsets and end offsets with kadm.
func franz(brokers []string, prefix string, rf int16) map[string]any {
	topic := prefix + "-franz"
	group := prefix + "-franz-group"
	logged := &complaints{}
	report := map[string]any{}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	adminClient, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.WithLogger(logged))
	if err != nil {
		report["fatal"] = err.Error()
		return report
	}
	defer adminClient.Close()
	admin := kadm.NewClient(adminClient)
	created, err := admin.CreateTopic(ctx, partitions, rf, nil, topic)
	report["create_topic"] = firstError(err, created.Err)
	report["leaders"] = waitForLeaders(ctx, admin, topic)

	producer, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.WithLogger(logged),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.ZstdCompression(), kgo.Lz4Compression(), kgo.NoCompression()),
	)
	if err != nil {
		report["fatal"] = err.Error()
		return report
	}
	acked := map[string][2]int64{}
	var produceErrors []string
	for i := 0; i < records; i++ {
		record := &kgo.Record{
			Key:       []byte("key-" + strconv.Itoa(i)),
			Value:     []byte(expectedValue("franz", i)),
			Partition: int32(i % partitions),
			Headers: []kgo.RecordHeader{
				{Key: "index", Value: []byte(strconv.Itoa(i))},
				{Key: "origin", Value: []byte("go")},
				{Key: "origin", Value: []byte("again")},
			},
		}
		result := producer.ProduceSync(ctx, record)
		if err := result.FirstErr(); err != nil {
			produceErrors = append(produceErrors, err.Error())
			continue
		}
		acked[string(record.Value)] = [2]int64{int64(record.Partition), record.Offset}
	}
	producer.Close()
	report["acknowledged"] = len(acked)
	report["produce_errors"] = produceErrors

	consumer, err := kgo.NewClient(
		kgo.SeedBrokers(brokers...),
		kgo.WithLogger(logged),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		report["fatal"] = err.Error()
		return report
	}
	read, matched := 0, 0
	var mismatches, fetchErrors []string
	deadline := time.Now().Add(60 * time.Second)
	for read < records && time.Now().Before(deadline) {
		pollCtx, pollCancel := context.WithTimeout(ctx, time.Second)
		fetches := consumer.PollFetches(pollCtx)
		pollCancel()
		fetches.EachError(func(t string, p int32, err error) {
			if err != context.DeadlineExceeded {
				fetchErrors = append(fetchErrors, fmt.Sprintf("%s/%d: %v", t, p, err))
			}
		})
		fetches.EachRecord(func(r *kgo.Record) {
			read++
			if problem := checkRecord(acked, "franz", string(r.Key), string(r.Value), int64(r.Partition), r.Offset, franzHeaders(r)); problem != "" {
				mismatches = append(mismatches, problem)
			} else {
				matched++
			}
		})
	}
	report["commit"] = errorText(consumer.CommitUncommittedOffsets(ctx))
	report["read"] = read
	report["matched"] = matched
	report["mismatches"] = mismatches
	report["fetch_errors"] = fetchErrors

	// Listing while the member is still in the group.
	topics, err := admin.ListTopics(ctx)
	report["list_topics_error"] = errorText(err)
	report["list_topics"] = topics.Names()
	groups, err := admin.ListGroups(ctx)
	report["list_groups_error"] = errorText(err)
	listed := map[string]string{}
	for name, g := range groups {
		listed[name] = g.State + "/" + g.ProtocolType
	}
	report["list_groups"] = listed
	described, err := admin.DescribeGroups(ctx, group)
	report["describe_groups_error"] = errorText(err)
	if g, ok := described[group]; ok {
		members := 0
		for range g.Members {
			members++
		}
		report["describe_group"] = map[string]any{
			"state": g.State, "protocol": g.Protocol, "members": members, "error": errorText(g.Err),
		}
	}
	consumer.Close()

	fetched, err := admin.FetchOffsets(ctx, group)
	report["fetch_offsets_error"] = errorText(err)
	committed := map[string]int64{}
	fetched.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			committed[strconv.Itoa(int(o.Partition))] = o.At
		}
	})
	report["committed"] = committed
	// kadm's lag, as `kafka-consumer-groups --describe` shows it: end minus committed.
	lags, err := admin.Lag(ctx, group)
	report["lag_error"] = errorText(err)
	if lag, ok := lags[group]; ok {
		report["lag_error"] = errorText(firstErrorOrNil(err, lag.Error()))
		report["lag_total"] = lag.Lag.Total()
		report["lag_state"] = lag.State
	}
	report["start_offsets"], report["start_offsets_error"] = listedOffsets(admin.ListStartOffsets(ctx, topic))
	report["end_offsets"], report["end_offsets_error"] = listedOffsets(admin.ListEndOffsets(ctx, topic))
	report["complaints"] = logged.all()
	return report
}

// waitForLeaders asks for the topic's metadata until every partition has a leader
// (a cluster elects them a moment after creating the topic); it returns them.
func waitForLeaders(ctx context.Context, admin *kadm.Client, topic string) []int32 {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		described, err := admin.ListTopics(ctx, topic)
		if err == nil {
			if detail, ok := described[topic]; ok && detail.Err == nil && len(detail.Partitions) == partitions {
				leaders := []int32{}
				for _, p := range detail.Partitions.Sorted() {
					if p.Leader >= 0 {
						leaders = append(leaders, p.Leader)
					}
				}
				if len(leaders) == partitions {
					return leaders
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

func listedOffsets(offsets kadm.ListedOffsets, err error) (map[string]int64, string) {
	out := map[string]int64{}
	offsets.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			out[strconv.Itoa(int(o.Partition))] = -1000
			return
		}
		out[strconv.Itoa(int(o.Partition))] = o.Offset
	})
	return out, errorText(err)
}

func franzHeaders(r *kgo.Record) []string {
	pairs := []string{}
	for _, h := range r.Headers {
		pairs = append(pairs, h.Key+"="+string(h.Value))
	}
	return pairs
}

// checkRecord compares a record read back with what was acknowledged; "" if it matches.
func checkRecord(acked map[string][2]int64, client, key, value string, partition, offset int64, headers []string) string {
	at, ok := acked[value]
	if !ok {
		return "never acknowledged: " + value
	}
	if at[0] != partition || at[1] != offset {
		return fmt.Sprintf("%s read at %d/%d, acknowledged at %d/%d", value, partition, offset, at[0], at[1])
	}
	var i int
	if _, err := fmt.Sscanf(key, "key-%d", &i); err != nil {
		return "key " + key
	}
	if value != expectedValue(client, i) {
		return "value " + value + " for key " + key
	}
	want := headerPairs(i)
	if fmt.Sprint(want) != fmt.Sprint(headers) {
		return fmt.Sprintf("headers %v, want %v", headers, want)
	}
	return ""
}

func firstErrorOrNil(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func firstError(errs ...error) string {
	for _, err := range errs {
		if err != nil {
			return err.Error()
		}
	}
	return "ok"
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
