package main

import (
	"context"
	"log"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
)

// saramaScenario creates a topic with sarama's ClusterAdmin, produces to it with an
// idempotent acks=all SyncProducer (keys, headers, explicit partitions), consumes it in
// a ConsumerGroup and commits, and lists topics, groups and committed offsets.
func saramaScenario(brokers []string, prefix string, rf int16) map[string]any {
	sarama.Logger = log.New(os.Stderr, "sarama: ", log.Ltime)
	topic := prefix + "-sarama"
	group := prefix + "-sarama-group"
	report := map[string]any{}

	config := sarama.NewConfig()
	config.ClientID = "odradek-go-clients"
	config.Producer.RequiredAcks = sarama.WaitForAll
	config.Producer.Idempotent = true
	config.Net.MaxOpenRequests = 1
	config.Producer.Return.Successes = true
	config.Producer.Partitioner = sarama.NewManualPartitioner
	config.Producer.Compression = sarama.CompressionSnappy
	config.Consumer.Offsets.Initial = sarama.OffsetOldest
	config.Consumer.Offsets.AutoCommit.Enable = false
	// Sarama speaks the protocol of the Kafka version it is told (2.8 by default);
	// applications often name theirs.
	if name := os.Getenv("ODRADEK_SARAMA_VERSION"); name != "" {
		version, err := sarama.ParseKafkaVersion(name)
		if err != nil {
			report["fatal"] = "ODRADEK_SARAMA_VERSION: " + err.Error()
			return report
		}
		config.Version = version
	}
	report["version"] = config.Version.String()

	admin, err := sarama.NewClusterAdmin(brokers, config)
	if err != nil {
		report["fatal"] = "NewClusterAdmin: " + err.Error()
		return report
	}
	defer func() { _ = admin.Close() }()
	report["create_topic"] = firstError(admin.CreateTopic(topic, &sarama.TopicDetail{
		NumPartitions: partitions, ReplicationFactor: rf,
	}, false))
	report["leaders"] = saramaLeaders(admin, topic)

	producer, err := sarama.NewSyncProducer(brokers, config)
	if err != nil {
		report["fatal"] = "NewSyncProducer: " + err.Error()
		return report
	}
	acked := map[string][2]int64{}
	var produceErrors []string
	for i := 0; i < records; i++ {
		value := expectedValue("sarama", i)
		message := &sarama.ProducerMessage{
			Topic:     topic,
			Partition: int32(i % partitions),
			Key:       sarama.StringEncoder("key-" + strconv.Itoa(i)),
			Value:     sarama.StringEncoder(value),
			Headers: []sarama.RecordHeader{
				{Key: []byte("index"), Value: []byte(strconv.Itoa(i))},
				{Key: []byte("origin"), Value: []byte("go")},
				{Key: []byte("origin"), Value: []byte("again")},
			},
		}
		partition, offset, err := producer.SendMessage(message)
		if err != nil {
			produceErrors = append(produceErrors, err.Error())
			continue
		}
		acked[value] = [2]int64{int64(partition), offset}
	}
	_ = producer.Close()
	report["acknowledged"] = len(acked)
	report["produce_errors"] = produceErrors

	handler := &groupHandler{acked: acked, want: len(acked), done: make(chan struct{})}
	consumerGroup, err := sarama.NewConsumerGroup(brokers, group, config)
	if err != nil {
		report["fatal"] = "NewConsumerGroup: " + err.Error()
		return report
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	var groupErrors []string
	go func() {
		for err := range consumerGroup.Errors() {
			groupErrors = append(groupErrors, err.Error())
		}
	}()
	consumed := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := consumerGroup.Consume(ctx, []string{topic}, handler); err != nil {
				consumed <- err
				return
			}
		}
		consumed <- nil
	}()
	select {
	case <-handler.done:
	case <-ctx.Done():
	}
	// Listing while the member is still in the group.
	groups, err := admin.ListConsumerGroups()
	report["list_groups_error"] = errorText(err)
	report["list_groups"] = groups
	descriptions, err := admin.DescribeConsumerGroups([]string{group})
	report["describe_groups_error"] = errorText(err)
	if len(descriptions) == 1 {
		d := descriptions[0]
		groupError := ""
		if d.Err != sarama.ErrNoError {
			groupError = d.Err.Error()
		}
		report["describe_group"] = map[string]any{
			"state": d.State, "protocol": d.Protocol, "members": len(d.Members), "error": groupError,
		}
	}
	cancel()
	report["consume_error"] = errorText(<-consumed)
	report["close_error"] = errorText(consumerGroup.Close())
	handler.mu.Lock()
	report["read"] = handler.read
	report["matched"] = handler.matched
	report["mismatches"] = handler.mismatches
	handler.mu.Unlock()
	report["group_errors"] = groupErrors

	topics, err := admin.ListTopics()
	report["list_topics_error"] = errorText(err)
	report["list_topics"] = sortedKeys(topics)
	fetched, err := admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: {0, 1, 2}})
	report["list_offsets_error"] = errorText(err)
	committed := map[string]int64{}
	if fetched != nil {
		for p := int32(0); p < partitions; p++ {
			if block := fetched.GetBlock(topic, p); block != nil {
				committed[strconv.Itoa(int(p))] = block.Offset
			}
		}
	}
	report["committed"] = committed

	client, err := sarama.NewClient(brokers, config)
	if err != nil {
		report["fatal"] = "NewClient: " + err.Error()
		return report
	}
	defer func() { _ = client.Close() }()
	ends := map[string]int64{}
	starts := map[string]int64{}
	var offsetErrors []string
	for p := int32(0); p < partitions; p++ {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			offsetErrors = append(offsetErrors, err.Error())
		}
		start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			offsetErrors = append(offsetErrors, err.Error())
		}
		ends[strconv.Itoa(int(p))] = end
		starts[strconv.Itoa(int(p))] = start
	}
	report["end_offsets"] = ends
	report["start_offsets"] = starts
	report["offset_errors"] = offsetErrors
	return report
}

// saramaLeaders describes the topic until every partition has a leader; the leaders.
func saramaLeaders(admin sarama.ClusterAdmin, topic string) []int32 {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		metadata, err := admin.DescribeTopics([]string{topic})
		if err == nil && len(metadata) == 1 && metadata[0].Err == sarama.ErrNoError &&
			len(metadata[0].Partitions) == partitions {
			leaders := []int32{}
			for _, p := range metadata[0].Partitions {
				if p.Leader >= 0 {
					leaders = append(leaders, p.Leader)
				}
			}
			if len(leaders) == partitions {
				sort.Slice(leaders, func(a, b int) bool { return leaders[a] < leaders[b] })
				return leaders
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// groupHandler reads every claimed partition, checks each record against what was
// acknowledged, marks it and commits; done closes once `want` records were read.
type groupHandler struct {
	mu         sync.Mutex
	acked      map[string][2]int64
	want       int
	read       int
	matched    int
	mismatches []string
	done       chan struct{}
	closed     bool
}

func (h *groupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (h *groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h *groupHandler) ConsumeClaim(session sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for message := range claim.Messages() {
		headers := []string{}
		for _, header := range message.Headers {
			headers = append(headers, string(header.Key)+"="+string(header.Value))
		}
		problem := checkRecord(h.acked, "sarama", string(message.Key), string(message.Value),
			int64(message.Partition), message.Offset, headers)
		session.MarkMessage(message, "")
		session.Commit()
		h.mu.Lock()
		h.read++
		if problem == "" {
			h.matched++
		} else {
			h.mismatches = append(h.mismatches, problem)
		}
		if h.read >= h.want && !h.closed {
			h.closed = true
			close(h.done)
		}
		h.mu.Unlock()
	}
	return nil
}

