package lakewriter_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/connectors"
	"citybrain/internal/broker"
	"citybrain/pipelines/lakewriter"
	"citybrain/schemas"
)

// TestLakeWritersShareATopic: two lake writers of one routed topic (3
// partitions) in the consumer group split its partitions and commit to the
// one table side by side, in small commits: a commit that lost the race is
// merged into the other's state and made again with the same files. Every
// record lands once — also a producer's retry — and when one writer stops,
// the other takes its partitions from the table's position and goes on.
func TestLakeWritersShareATopic(t *testing.T) {
	if testing.Short() {
		t.Skip("consumer groups on the embedded broker")
	}
	r := newKeyedRig(t)
	cfg := broker.DefaultConfig()
	cfg.Partitions = 3
	r.client = broker.NewClient(r.client.Brokers, cfg)
	const source = "weather_shared"
	topic := connectors.RawTopic(source)
	if err := r.client.EnsureTopics(r.ctx, topic, connectors.DLQTopic(source)); err != nil {
		t.Fatal(err)
	}
	stations := []string{"Guanyuan", "Wanliu", "Dongsi", "Tiantan", "Aotizhongxin", "Nongzhanguan"}
	from := time.Date(2013, 3, 1, 0, 0, 0, 0, time.UTC)
	write := func(lo, hi int) {
		w := r.client.Writer(topic)
		defer w.Close()
		var ms []kafka.Message
		for i := lo; i < hi; i++ {
			rec := make(schemas.Record, len(r.s.Fields))
			st := stations[i%len(stations)]
			rec[r.s.Index("station")] = st
			rec[r.s.Index("observed_at")] = from.Add(time.Duration(i/len(stations)) * time.Hour)
			rec[r.s.Index("pm25")] = float64(i)
			cur := connectors.Cursor{Stream: "file:beijing.csv", Pos: int64(i + 2)}
			ms = append(ms, kafka.Message{Key: []byte(st), Value: r.s.Encode(nil, rec), Headers: []kafka.Header{{Key: connectors.HeaderCursor, Value: []byte(cur.String())}}})
		}
		if err := w.WriteMessages(r.ctx, ms...); err != nil {
			t.Fatal(err)
		}
	}
	wcfg := lakewriter.DefaultConfig()
	wcfg.FlushRows, wcfg.IdleFlush, wcfg.FlushInterval = 10, 50*time.Millisecond, 200*time.Millisecond
	start := func() (*lakewriter.Writer, context.CancelFunc, chan struct{}) {
		w := lakewriter.New(wcfg, r.lake, r.client, source, r.s, r.log)
		ctx, cancel := context.WithCancel(r.ctx)
		done := make(chan struct{})
		go func() { defer close(done); w.RunGroup(ctx, 6*time.Second) }()
		return w, cancel, done
	}
	waitRows := func(what string, want int64, wantSum float64) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			rows, _, sum := r.query()
			if rows == want && sum == wantSum {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d rows, sum %v; want %d, %v", what, rows, sum, want, wantSum)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	sumTo := func(n int) float64 { return float64((n - 1) * n / 2) }

	w1, stop1, done1 := start()
	w2, stop2, done2 := start()
	deadline := time.Now().Add(60 * time.Second)
	for {
		a, b := w1.Owned(), w2.Owned()
		all := append(slices.Clone(a), b...)
		sort.Ints(all)
		if len(a) > 0 && len(b) > 0 && fmt.Sprint(all) == "[0 1 2]" {
			t.Logf("w1 owns %v, w2 owns %v", a, b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the writers did not split the partitions: %v and %v", a, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for lo := 0; lo < 600; lo += 60 { // waves, so that both commit while the other does
		write(lo, lo+60)
		time.Sleep(30 * time.Millisecond)
	}
	waitRows("both writers", 600, sumTo(600))
	// A producer's retry of the last 60 records, and 60 new ones.
	write(540, 660)
	waitRows("after the retried and new records", 660, sumTo(660))
	merges := w1.Stats.Merges.Load() + w2.Stats.Merges.Load()
	t.Logf("commits %d + %d, merged after a lost race %d", w1.Stats.Commits.Load(), w2.Stats.Commits.Load(), merges)
	if merges == 0 {
		t.Errorf("no commit lost a race to the other writer: the merge was not exercised (%d + %d commits)", w1.Stats.Commits.Load(), w2.Stats.Commits.Load())
	}
	if w1.Stats.Commits.Load() == 0 || w2.Stats.Commits.Load() == 0 {
		t.Errorf("commits %d and %d: both writers should commit", w1.Stats.Commits.Load(), w2.Stats.Commits.Load())
	}
	// w1 stops: w2 takes every partition and goes on from the table's position.
	stop1()
	<-done1
	deadline = time.Now().Add(60 * time.Second)
	for fmt.Sprint(w2.Owned()) != "[0 1 2]" {
		if time.Now().After(deadline) {
			t.Fatalf("w2 owns %v after w1 stopped; want every partition", w2.Owned())
		}
		time.Sleep(50 * time.Millisecond)
	}
	write(660, 720)
	waitRows("w2 alone", 720, sumTo(720))
	stop2()
	<-done2
	st, err := r.lake.State(r.ctx, r.s.Table)
	if err != nil {
		t.Fatal(err)
	}
	ends, _ := r.client.EndOffsets(r.ctx, topic)
	for p, e := range ends {
		if st.Offsets[topic][p] != e {
			t.Errorf("partition %d: the lake holds offset %d, the topic ends at %d", p, st.Offsets[topic][p], e)
		}
	}
}
