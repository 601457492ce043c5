package testenv

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

const kafkaTestMessages = 1000

func TestKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Kafka broker; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	t0 := time.Now()
	libs, err := KafkaJars(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("kafka jars in %s (%v)", libs, time.Since(t0))

	t0 = time.Now()
	k, err := StartKafka(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := k.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	t.Logf("kafka %s up at %s in %v, cluster id %s", KafkaVersion, k.Bootstrap(), time.Since(t0), k.ClusterID())

	if k.ClusterID() == "" {
		t.Fatal("empty ClusterID")
	}
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(k.Bootstrap()), Timeout: 10 * time.Second, Transport: tr}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if md.ClusterID != k.ClusterID() {
		t.Fatalf("metadata cluster id %q, ClusterID() %q", md.ClusterID, k.ClusterID())
	}
	if len(md.Brokers) != 1 || md.Brokers[0].ID != 1 {
		t.Fatalf("brokers = %+v, want one broker with id 1", md.Brokers)
	}

	const topic = "testenv-kafka"
	res, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
		Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Errors[topic]; err != nil {
		t.Fatalf("create topic: %v", err)
	}

	w := &kafka.Writer{
		Addr:         kafka.TCP(k.Bootstrap()),
		Topic:        topic,
		RequiredAcks: kafka.RequireAll,
		BatchSize:    100,
		BatchTimeout: 10 * time.Millisecond,
		Transport:    &kafka.Transport{},
	}
	msgs := make([]kafka.Message, kafkaTestMessages)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprintf("k%04d", i)), Value: []byte(fmt.Sprintf("value-%d", i))}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	readAll(t, ctx, k.Bootstrap(), topic)

	bootstrap, id := k.Bootstrap(), k.ClusterID()
	t0 = time.Now()
	if err := k.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart took %v", time.Since(t0))
	if k.Bootstrap() != bootstrap || k.ClusterID() != id {
		t.Fatalf("after restart: %s/%s, want %s/%s", k.Bootstrap(), k.ClusterID(), bootstrap, id)
	}
	tr2 := &kafka.Transport{}
	defer tr2.CloseIdleConnections()
	client2 := &kafka.Client{Addr: kafka.TCP(k.Bootstrap()), Timeout: 10 * time.Second, Transport: tr2}
	md, err = client2.Metadata(ctx, &kafka.MetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if md.ClusterID != id {
		t.Fatalf("after restart cluster id %q, want %q", md.ClusterID, id)
	}
	readAll(t, ctx, k.Bootstrap(), topic)

	if err := k.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := k.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

// readAll reads partition 0 of topic from the start and checks it holds
// exactly the kafkaTestMessages records written by TestKafka, in order.
func readAll(t *testing.T, ctx context.Context, bootstrap, topic string) {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   []string{bootstrap},
		Topic:     topic,
		Partition: 0,
		MaxWait:   100 * time.Millisecond,
	})
	defer r.Close()
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for i := range kafkaTestMessages {
		m, err := r.ReadMessage(rctx)
		if err != nil {
			t.Fatalf("reading message %d: %v", i, err)
		}
		if m.Offset != int64(i) {
			t.Fatalf("message %d has offset %d", i, m.Offset)
		}
		if want := fmt.Sprintf("k%04d", i); string(m.Key) != want {
			t.Fatalf("message %d key %q, want %q", i, m.Key, want)
		}
		if want := fmt.Sprintf("value-%d", i); string(m.Value) != want {
			t.Fatalf("message %d value %q, want %q", i, m.Value, want)
		}
	}
	conn, err := kafka.DialLeader(ctx, "tcp", bootstrap, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	last, err := conn.ReadLastOffset()
	if err != nil {
		t.Fatal(err)
	}
	if last != kafkaTestMessages {
		t.Fatalf("end offset %d, want %d", last, kafkaTestMessages)
	}
}
