package connectors

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/internal/broker"
	"citybrain/schemas"
)

// TestRoutedProduceExactlyOnce: a source whose schema is keyed by a field
// (mobile_signal, route_by grid_cell_id) spreads each chunk over the
// topic's partitions, one cell always to one partition. A crash in the
// middle of a chunk's write leaves some partitions written and others not;
// on restart the source re-reads the chunk from its checkpoint and the
// producer writes only what each partition lacks: every record is in the
// topic exactly once, each cell's records in one partition, in order.
func TestRoutedProduceExactlyOnce(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := broker.StartEmbedded(t.TempDir(), 0, log)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	cfg := broker.DefaultConfig()
	cfg.Partitions = 3
	c := broker.NewClient([]string{e.Addr()}, cfg)
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.Get("mobile_signal")
	if err != nil {
		t.Fatal(err)
	}
	if s.RouteIndex() < 0 {
		t.Fatal("mobile_signal is not routed by its cell")
	}
	const source = "signal_routed"
	if err := c.EnsureTopics(ctx, RawTopic(source), DLQTopic(source)); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	rec := func(stream string, i int) Record {
		return Record{Cursor: Cursor{Stream: stream, Pos: int64(i)},
			Values: schemas.Record{fmt.Sprintf("XC-%03d", i%17), base.Add(time.Duration(i) * time.Minute), int64(i), int64(1), int64(1)}}
	}
	chunk := func(stream string, from, to int) []Record {
		var out []Record
		for i := from; i < to; i++ {
			out = append(out, rec(stream, i))
		}
		return out
	}
	dataDir := t.TempDir()
	noLake := func(context.Context) (Positions, error) { return Positions{}, nil }
	open := func() *Producer {
		cp, err := LoadCheckpoint(dataDir, source)
		if err != nil {
			t.Fatal(err)
		}
		cp, err = Resume(ctx, c, source, cp, noLake, log, true)
		if err != nil {
			t.Fatal(err)
		}
		return NewProducer(c, source, s, dataDir, cp)
	}
	p := open()
	p.chunk = 100
	if err := p.Emit(ctx, append(chunk("file:a.csv", 1, 151), chunk("file:b.csv", 1, 51)...)); err != nil {
		t.Fatal(err)
	}
	p.Close()

	// The next chunk's write "crashes" half way: partitions 0 and 2 got
	// their part of it (a partition's part is one record batch: all or
	// nothing), partition 1 did not; the checkpoint was not written.
	next := append(chunk("file:a.csv", 151, 201), chunk("file:b.csv", 51, 101)...)
	part := open()
	var written []kafka.Message
	for _, m := range part.messages(next) {
		if p := (&kafka.Hash{}).Balance(kafka.Message{Key: m.Key}, 0, 1, 2); p != 1 {
			written = append(written, m)
		}
	}
	if len(written) == 0 || len(written) == len(next) {
		t.Fatalf("the crash wrote %d of %d records: not a partial write", len(written), len(next))
	}
	w := c.Writer(RawTopic(source))
	if err := w.WriteMessages(ctx, written...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	part.Close()

	// Restart: the source re-reads from its checkpoint, then goes on.
	p = open()
	p.chunk = 100
	if err := p.Emit(ctx, next); err != nil {
		t.Fatal(err)
	}
	if err := p.Emit(ctx, chunk("file:b.csv", 101, 131)); err != nil {
		t.Fatal(err)
	}
	p.Close()
	if p.Skipped != int64(len(written)) {
		t.Errorf("skipped %d records on the re-read, want the %d already written", p.Skipped, len(written))
	}

	// Every cursor exactly once; each cell in one partition, in order.
	seen := map[string]int{}
	cellPart := map[string]int{}
	last := map[string]int64{}
	ends, _ := c.EndOffsets(ctx, RawTopic(source))
	for part, end := range ends {
		if end == 0 {
			continue
		}
		rctx, cancel := context.WithCancel(ctx)
		c.ReadPartition(rctx, RawTopic(source), part, 0, 8<<20, 200*time.Millisecond, func(msgs []kafka.Message) error {
			for _, m := range msgs {
				var cur string
				for _, h := range m.Headers {
					if h.Key == HeaderCursor {
						cur = string(h.Value)
					}
				}
				seen[cur]++
				cell := string(m.Key)
				if p0, ok := cellPart[cell]; ok && p0 != part {
					t.Errorf("cell %s in partitions %d and %d", cell, p0, part)
				}
				cellPart[cell] = part
				cc, _ := ParseCursor(cur)
				k := cell + "|" + cc.Stream
				if cc.Pos <= last[k] {
					t.Errorf("cell %s stream %s out of order in partition %d: %d after %d", cell, cc.Stream, part, cc.Pos, last[k])
				}
				last[k] = cc.Pos
				if m.Offset+1 >= end {
					cancel()
				}
			}
			return nil
		})
		cancel()
	}
	want := 200 + 130
	if len(seen) != want {
		t.Errorf("%d distinct records in the topic, want %d", len(seen), want)
	}
	for cur, n := range seen {
		if n != 1 {
			t.Errorf("%s is in the topic %d times", cur, n)
		}
	}
	// The data directory lost (no checkpoint), the broker kept: the source
	// reads its feed from the start again, and nothing is written twice.
	if err := os.Remove(filepath.Join(dataDir, "connectors", source+".json")); err != nil {
		t.Fatal(err)
	}
	again := open()
	if err := again.Emit(ctx, append(append(chunk("file:a.csv", 1, 201), chunk("file:b.csv", 1, 131)...), rec("file:c.csv", 1))); err != nil {
		t.Fatal(err)
	}
	again.Close()
	if again.Skipped != int64(want) || again.Good != 1 {
		t.Errorf("after losing the checkpoint: %d skipped, %d written; want %d skipped and the one new record", again.Skipped, again.Good, want)
	}
	parts := map[int]bool{}
	for _, p := range cellPart {
		parts[p] = true
	}
	if len(parts) < 2 {
		t.Errorf("the cells went to %d partition(s) of 3", len(parts))
	}
}
