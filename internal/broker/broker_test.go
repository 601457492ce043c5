package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestLastMessage: the last record of a partition with its key, value and
// headers, from the middle of a record batch too; false for an empty topic;
// and still within the client's timeout when the broker takes seconds to
// answer each fetch (a restart beside CPU hogs, issue 17: the kafka.Reader
// it used to be gave up after 15 s there).
func TestLastMessage(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := StartEmbedded(t.TempDir(), 0, log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c := NewClient([]string{e.Addr()}, DefaultConfig())
	if err := c.EnsureTopics(ctx, "t", "empty"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := c.LastMessage(ctx, "empty", 0); err != nil || ok {
		t.Fatalf("empty topic: ok %v err %v, want false, nil", ok, err)
	}
	w := c.Writer("t")
	defer w.Close()
	for batch := range 3 { // one record batch per write
		var msgs []kafka.Message
		for i := range 50 {
			n := batch*50 + i
			msgs = append(msgs, kafka.Message{Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", n),
				Headers: []kafka.Header{{Key: "cb-cursor", Value: fmt.Appendf(nil, "s#%d", n)}}})
		}
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	check := func(t *testing.T) {
		t.Helper()
		m, ok, err := c.LastMessage(ctx, "t", 0)
		if err != nil || !ok {
			t.Fatalf("LastMessage: ok %v err %v", ok, err)
		}
		if m.Offset != 149 || string(m.Key) != "k" || string(m.Value) != "v149" || len(m.Headers) != 1 ||
			m.Headers[0].Key != "cb-cursor" || string(m.Headers[0].Value) != "s#149" {
			t.Errorf("LastMessage = offset %d key %q value %q headers %v, want offset 149 k v149 [cb-cursor s#149]",
				m.Offset, m.Key, m.Value, m.Headers)
		}
	}
	check(t)

	// A busy broker: every fetch waits 3 s before it is answered.
	e.cluster.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		e.cluster.SleepControl(func() { time.Sleep(3 * time.Second) })
		return nil, nil, false
	})
	start := time.Now()
	check(t)
	if took := time.Since(start); took < 3*time.Second {
		t.Errorf("the fetch took %s: the busy-broker control did not apply", took)
	}
}

// TestPartitionsSeesNewTopic: a topic created a moment ago by another
// process is found at once, although kafka-go's transport answers metadata
// from a cache refreshed only every few seconds (the DLQ of a source just
// ingested by a citybrain command was read as empty: CI, stop 37).
func TestPartitionsSeesNewTopic(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := StartEmbedded(t.TempDir(), 0, log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c := NewClient([]string{e.Addr()}, DefaultConfig())
	if err := c.EnsureTopics(ctx, "early"); err != nil {
		t.Fatal(err)
	}
	if parts, err := c.Partitions(ctx, "early"); err != nil || len(parts["early"]) == 0 {
		t.Fatalf("early: %v %v", parts, err)
	}
	// Another process (a transport of its own) creates a topic.
	other := &kafka.Transport{}
	defer other.CloseIdleConnections()
	oc := &kafka.Client{Addr: kafka.TCP(e.Addr()), Transport: other}
	if _, err := oc.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: "late", NumPartitions: 2, ReplicationFactor: 1}}}); err != nil {
		t.Fatal(err)
	}
	parts, err := c.Partitions(ctx, "late")
	if err != nil || len(parts["late"]) != 2 {
		t.Fatalf("Partitions(late) just after another client created it = %v, %v; want 2 partitions", parts, err)
	}
	if parts, err := c.Partitions(ctx, "never"); err != nil || len(parts) != 0 {
		t.Fatalf("Partitions(never) = %v, %v; want none", parts, err)
	}
}

// A topic found by a fresh answer stays found for the next calls, which are
// answered from the stale cache and may not ask fresh again so soon (the
// warning units' topic was "created" and then had 0 partitions: e2e
// TestWarningsFailover).
func TestPartitionsKeepsWhatItFound(t *testing.T) {
	ctx := context.Background()
	e, err := StartEmbedded(t.TempDir(), 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	c := NewClient([]string{e.Addr()}, DefaultConfig())
	if err := c.EnsureTopics(ctx, "warm"); err != nil {
		t.Fatal(err)
	}
	other := &kafka.Transport{}
	defer other.CloseIdleConnections()
	oc := &kafka.Client{Addr: kafka.TCP(e.Addr()), Transport: other}
	if _, err := oc.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: "units", NumPartitions: 7, ReplicationFactor: 1}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if parts, err := c.Partitions(ctx, "units"); err != nil || len(parts["units"]) != 7 {
			t.Fatalf("call %d: Partitions(units) = %v, %v; want 7 partitions", i, parts, err)
		}
	}
}
