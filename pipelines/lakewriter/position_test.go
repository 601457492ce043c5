package lakewriter_test

import (
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/connectors"
)

// TestRejectsOnlyBatchCommitsPosition: a batch of only rejects (here on an
// empty table) and then a batch of only duplicates still move the table's
// committed position to the topic's end, so lag clears and a second writer
// reads nothing again (no second dead letter).
func TestRejectsOnlyBatchCommitsPosition(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded broker and lake; skipped under -short")
	}
	r := newKeyedRig(t)
	topic := connectors.RawTopic("wp")
	if err := r.client.EnsureTopics(r.ctx, topic, connectors.DLQTopic("wp")); err != nil {
		t.Fatal(err)
	}
	w := r.client.Writer(topic)
	var bad []kafka.Message
	for i := 0; i < 5; i++ {
		cur := connectors.Cursor{Stream: "file:bad.csv", Pos: int64(i + 2)}
		bad = append(bad, kafka.Message{Value: []byte(`{"station": 7}`), Headers: []kafka.Header{{Key: connectors.HeaderCursor, Value: []byte(cur.String())}}})
	}
	if err := w.WriteMessages(r.ctx, bad...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	caughtUp := func(stage string) {
		t.Helper()
		ends, err := r.client.EndOffsets(r.ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		st, err := r.lake.State(r.ctx, "raw.weather")
		if err != nil {
			t.Fatal(err)
		}
		for p, end := range ends {
			if got := st.Offsets[topic][p]; got != end {
				t.Fatalf("%s: committed offset of %s/%d is %d, the topic ends at %d (lag never clears)", stage, topic, p, got, end)
			}
		}
	}
	dlqCount := func() int64 {
		ends, err := r.client.EndOffsets(r.ctx, connectors.DLQTopic("wp"))
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, e := range ends {
			n += e
		}
		return n
	}
	if w := r.ingest("wp", "", 0); w.Stats.Rejects.Load() != 5 {
		t.Fatalf("rejects = %d, want 5", w.Stats.Rejects.Load())
	}
	caughtUp("rejects only, empty table")
	if n := dlqCount(); n != 5 {
		t.Fatalf("dead letters = %d, want 5", n)
	}
	if w := r.ingest("wp", "", 0); w.Stats.Rejects.Load() != 0 {
		t.Fatalf("a second writer re-read %d rejects", w.Stats.Rejects.Load())
	}
	if n := dlqCount(); n != 5 {
		t.Fatalf("dead letters after a second writer = %d, want 5", n)
	}

	// Rows, then the same lines again (duplicates by cursor): the
	// duplicates' batch commits its position too.
	day := time.Date(2016, 7, 19, 0, 0, 0, 0, time.UTC)
	r.send("wp", "good.csv", day, seq(0, 10), func(int) float64 { return 1 })
	r.ingest("wp", "", 0)
	r.send("wp", "good.csv", day, seq(0, 10), func(int) float64 { return 1 })
	if w := r.ingest("wp", "", 0); w.Stats.Duplicates.Load() != 10 {
		t.Fatalf("duplicates = %d, want 10", w.Stats.Duplicates.Load())
	}
	caughtUp("duplicates only")
	if rows, _, _ := r.query(); rows != 10 {
		t.Fatalf("rows = %d, want 10", rows)
	}
}
