package lakewriter_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/connectors"
	"citybrain/internal/broker"
	"citybrain/pipelines/lakewriter"
	"citybrain/schemas"
)

// TestRoutedTopicExactlyOnce: raw.weather is keyed by station (route_by),
// so one file's records are spread over the topic's partitions, each in
// order, and the partitions are read side by side. The lake keeps a
// high-water mark per stream and partition: every record lands once — a
// mark per stream alone would take a partition read ahead for the whole
// stream and drop the other partitions' records — and a record written to
// its partition twice (a producer's retry) is dropped.
func TestRoutedTopicExactlyOnce(t *testing.T) {
	r := newKeyedRig(t)
	cfg := broker.DefaultConfig()
	cfg.Partitions = 3
	r.client = broker.NewClient(r.client.Brokers, cfg)
	if r.s.RouteBy != "station" {
		t.Fatalf("weather route_by = %q", r.s.RouteBy)
	}
	const source = "weather_routed"
	if err := r.client.EnsureTopics(r.ctx, connectors.RawTopic(source), connectors.DLQTopic(source)); err != nil {
		t.Fatal(err)
	}
	stations := []string{"Guanyuan", "Wanliu", "Dongsi", "Tiantan", "Aotizhongxin", "Nongzhanguan"}
	from := time.Date(2013, 3, 1, 0, 0, 0, 0, time.UTC)
	// One file: line i is station i%6's hour i/6.
	msg := func(i int) kafka.Message {
		rec := make(schemas.Record, len(r.s.Fields))
		st := stations[i%len(stations)]
		rec[r.s.Index("station")] = st
		rec[r.s.Index("observed_at")] = from.Add(time.Duration(i/len(stations)) * time.Hour)
		rec[r.s.Index("pm25")] = float64(i)
		cur := connectors.Cursor{Stream: "file:beijing.csv", Pos: int64(i + 2)}
		return kafka.Message{Key: []byte(st), Value: r.s.Encode(nil, rec), Headers: []kafka.Header{{Key: connectors.HeaderCursor, Value: []byte(cur.String())}}}
	}
	write := func(ms []kafka.Message) {
		w := r.client.Writer(connectors.RawTopic(source))
		defer w.Close()
		if err := w.WriteMessages(r.ctx, ms...); err != nil {
			t.Fatal(err)
		}
	}
	var first []kafka.Message
	for i := range 600 {
		first = append(first, msg(i))
	}
	write(first)
	parts := map[int]int{}
	ends, _ := r.client.EndOffsets(r.ctx, connectors.RawTopic(source))
	for p, e := range ends {
		parts[p] = int(e)
	}
	if len(parts) != 3 || parts[0] == 0 || parts[1] == 0 || parts[2] == 0 {
		t.Fatalf("records per partition %v: want the stations over 3 partitions", parts)
	}
	// Small flushes: a commit covers one partition further than another.
	r.ingest(source, "", 50)
	rows, _, sum := r.query()
	if rows != 600 || sum != float64(599*600/2) {
		t.Fatalf("after the first ingest: %d rows, sum %v; want 600, %d", rows, sum, 599*600/2)
	}
	st, err := r.lake.State(r.ctx, r.s.Table)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Cursors["file:beijing.csv@0"]; !ok {
		t.Errorf("no per-partition high-water mark in the lake's state: %v", st.Cursors)
	}
	// A producer's retry: the last 60 records again, each in its own
	// partition; then 60 new ones.
	var again []kafka.Message
	for i := 540; i < 660; i++ {
		again = append(again, msg(i))
	}
	write(again)
	r.ingest(source, "", 50)
	rows, _, sum = r.query()
	if want := float64(659 * 660 / 2); rows != 660 || sum != want {
		t.Fatalf("after the retried and new records: %d rows, sum %v; want 660, %v", rows, sum, want)
	}
}

// TestRoutedTopicPartitionsChanged: the lake read a routed topic with 3
// partitions; the topic now has 2 (made anew): its keys moved partitions,
// and the per-partition marks no longer apply. The writer refuses, saying
// why, rather than drop records as already committed.
func TestRoutedTopicPartitionsChanged(t *testing.T) {
	r := newKeyedRig(t)
	cfg := broker.DefaultConfig()
	cfg.Partitions = 3
	brokers := r.client.Brokers
	r.client = broker.NewClient(brokers, cfg)
	const source = "weather_moved"
	r.send(source, "a.csv", time.Date(2013, 3, 1, 0, 0, 0, 0, time.UTC), seq(0, 30), func(i int) float64 { return float64(i) })
	r.ingest(source, "", 0)
	kc := &kafka.Client{Addr: kafka.TCP(brokers...)}
	if _, err := kc.DeleteTopics(r.ctx, &kafka.DeleteTopicsRequest{Topics: []string{connectors.RawTopic(source)}}); err != nil {
		t.Fatal(err)
	}
	cfg.Partitions = 2
	r.client = broker.NewClient(brokers, cfg)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := r.client.EnsureTopics(r.ctx, connectors.RawTopic(source))
		ps, _ := r.client.Partitions(r.ctx, connectors.RawTopic(source))
		if err == nil && len(ps[connectors.RawTopic(source)]) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic not made anew with 2 partitions: %v %v", err, ps)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var logs syncBuffer
	w := lakewriter.New(lakewriter.DefaultConfig(), r.lake, r.client, source, r.s, slog.New(slog.NewTextHandler(&logs, nil)))
	w.StopAtEnd = true
	ctx, cancel := context.WithTimeout(r.ctx, 3*time.Second)
	defer cancel()
	w.Run(ctx) // it retries (the error on its log and freshness path) until stopped
	w.Close()
	if !strings.Contains(logs.String(), "partitions moved") {
		t.Fatalf("the writer did not refuse the routed topic whose partition count changed; its log:\n%s", logs.String())
	}
	if rows, _, _ := r.query(); rows != 30 {
		t.Errorf("the lake holds %d rows, want the 30 committed before", rows)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
