package lakewriter_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/connectors"
	"citybrain/internal/broker"
	"citybrain/pipelines/lakewriter"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// keyedRig is an embedded broker and a lake holding raw.weather, whose key
// is (station, observed_at).
type keyedRig struct {
	t      *testing.T
	ctx    context.Context
	log    *slog.Logger
	client *broker.Client
	lake   *warehouse.Lake
	s      *schemas.Schema
}

func newKeyedRig(t *testing.T) *keyedRig {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	e, err := broker.StartEmbedded(filepath.Join(dir, "broker"), 0, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	lake, err := warehouse.Open(ctx, warehouse.DefaultConfig(), filepath.Join(dir, "lake"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lake.Close() })
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.Get("weather")
	if err != nil {
		t.Fatal(err)
	}
	return &keyedRig{t: t, ctx: ctx, log: log, client: broker.NewClient([]string{e.Addr()}, broker.DefaultConfig()), lake: lake, s: s}
}

// send writes hourly weather rows of one station to raw.<source>, as lines
// of the file stream (cursor stream "file:<stream>"), pm25 = value(i).
func (r *keyedRig) send(source, stream string, from time.Time, hours []int, value func(i int) float64) {
	r.t.Helper()
	if err := r.client.EnsureTopics(r.ctx, connectors.RawTopic(source), connectors.DLQTopic(source)); err != nil {
		r.t.Fatal(err)
	}
	w := r.client.Writer(connectors.RawTopic(source))
	defer w.Close()
	var msgs []kafka.Message
	for i, h := range hours {
		rec := make(schemas.Record, len(r.s.Fields))
		rec[r.s.Index("station")] = "Guanyuan"
		rec[r.s.Index("observed_at")] = from.Add(time.Duration(h) * time.Hour)
		rec[r.s.Index("pm25")] = value(i)
		cur := connectors.Cursor{Stream: "file:" + stream, Pos: int64(i + 2)}
		msgs = append(msgs, kafka.Message{Value: r.s.Encode(nil, rec),
			Headers: []kafka.Header{{Key: connectors.HeaderCursor, Value: []byte(cur.String())}}})
	}
	if err := w.WriteMessages(r.ctx, msgs...); err != nil {
		r.t.Fatal(err)
	}
}

// ingest runs the writer of source until it has committed its topic.
func (r *keyedRig) ingest(source, policy string, flushRows int) *lakewriter.Writer {
	r.t.Helper()
	cfg := lakewriter.DefaultConfig()
	if flushRows > 0 {
		cfg.FlushRows = flushRows
	}
	w := lakewriter.New(cfg, r.lake, r.client, source, r.s, r.log)
	if err := w.SetPolicy(policy); err != nil {
		r.t.Fatal(err)
	}
	w.StopAtEnd = true
	if err := w.Run(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	w.Close()
	return w
}

// query returns rows, distinct hours and sum(pm25) of raw.weather.
func (r *keyedRig) query() (rows, hours int64, sum float64) {
	r.t.Helper()
	eng, err := warehouse.NewEngine(r.ctx, r.lake)
	if err != nil {
		r.t.Fatal(err)
	}
	defer eng.Close()
	if err := eng.DB().QueryRowContext(r.ctx, `SELECT count(*), count(DISTINCT observed_at), coalesce(sum(pm25), 0) FROM raw.weather`).Scan(&rows, &hours, &sum); err != nil {
		r.t.Fatal(err)
	}
	return rows, hours, sum
}

func seq(from, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = from + i
	}
	return out
}

// TestNaturalKeyKeepsLatest: a second copy of a file under another name
// replaces the rows of the first (the table keeps one row per station and
// hour, with the copy's values), a key repeated inside one batch keeps its
// last row, and rows of new hours are appended without reading any file.
func TestNaturalKeyKeepsLatest(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded broker and lake; skipped under -short")
	}
	r := newKeyedRig(t)
	day := time.Date(2016, 7, 19, 0, 0, 0, 0, time.UTC)
	// 72 hours over 3 day partitions.
	r.send("wa", "guanyuan.csv", day, seq(0, 72), func(i int) float64 { return 1 })
	w := r.ingest("wa", "", 0)
	if rows, hours, sum := r.query(); rows != 72 || hours != 72 || sum != 72 {
		t.Fatalf("first file: %d rows, %d hours, sum %v; want 72, 72, 72", rows, hours, sum)
	}
	if n := w.Stats.Replaced.Load(); n != 0 {
		t.Fatalf("first file replaced %d rows", n)
	}

	// The same file under another name, other values: replaces all 72.
	r.send("wa", "guanyuan-copy.csv", day, seq(0, 72), func(i int) float64 { return 2 })
	w = r.ingest("wa", "", 0)
	if rows, hours, sum := r.query(); rows != 72 || hours != 72 || sum != 144 {
		t.Fatalf("after the copy: %d rows, %d hours, sum %v; want 72, 72, 144 (the copy's values)", rows, hours, sum)
	}
	if n := w.Stats.Replaced.Load(); n != 72 {
		t.Fatalf("the copy replaced %d rows, want 72", n)
	}

	// One batch with 10 new hours, each twice: the second one wins.
	hours := append(seq(72, 10), seq(72, 10)...)
	r.send("wa", "repeats.csv", day, hours, func(i int) float64 {
		if i < 10 {
			return 100
		}
		return 3
	})
	w = r.ingest("wa", "", 0)
	if rows, hrs, sum := r.query(); rows != 82 || hrs != 82 || sum != 144+30 {
		t.Fatalf("after repeats: %d rows, %d hours, sum %v; want 82, 82, 174", rows, hrs, sum)
	}
	if n := w.Stats.Replaced.Load(); n != 10 {
		t.Fatalf("repeats replaced %d rows, want 10", n)
	}

	// Later hours only: a plain append that replaces nothing.
	r.send("wa", "next.csv", day, seq(82, 5), func(i int) float64 { return 1 })
	w = r.ingest("wa", "", 0)
	if rows, _, _ := r.query(); rows != 87 {
		t.Fatalf("after new hours: %d rows, want 87", rows)
	}
	if n := w.Stats.Replaced.Load(); n != 0 {
		t.Fatalf("new hours replaced %d rows", n)
	}

	// The copy once more, in small batches (several commits, each
	// replacing part of what the one before left).
	r.send("wa", "guanyuan-copy2.csv", day, seq(0, 72), func(i int) float64 { return 5 })
	w = r.ingest("wa", "", 7)
	if rows, hrs, sum := r.query(); rows != 87 || hrs != 87 || sum != 72*5+30+5 {
		t.Fatalf("after the copy in small batches: %d rows, %d hours, sum %v; want 87, 87, %d", rows, hrs, sum, 72*5+30+5)
	}
	if n := w.Stats.Replaced.Load(); n != 72 {
		t.Fatalf("small batches replaced %d rows, want 72", n)
	}
}

// TestAppendPolicyKeepsEveryRow: dedup: append lands both copies.
func TestAppendPolicyKeepsEveryRow(t *testing.T) {
	if testing.Short() {
		t.Skip("embedded broker and lake; skipped under -short")
	}
	r := newKeyedRig(t)
	day := time.Date(2016, 7, 19, 0, 0, 0, 0, time.UTC)
	r.send("wb", "a.csv", day, seq(0, 30), func(i int) float64 { return 1 })
	r.send("wb", "b.csv", day, seq(0, 30), func(i int) float64 { return 1 })
	w := r.ingest("wb", lakewriter.Append, 0)
	if rows, hours, _ := r.query(); rows != 60 || hours != 30 {
		t.Fatalf("append: %d rows, %d hours; want 60, 30", rows, hours)
	}
	if n := w.Stats.Replaced.Load(); n != 0 {
		t.Fatalf("append replaced %d rows", n)
	}
	if err := w.SetPolicy("newest"); err == nil {
		t.Fatal("SetPolicy accepted an unknown policy")
	}
}
