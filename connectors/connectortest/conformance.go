// Package connectortest is the conformance suite every transport passes:
// one set of tests of the connectors.Source contract (complete reads in
// cursor order, exact resume from any cursor, backpressure, cancellation,
// error classification, growing feeds), run by each transport's tests
// against a real feed of its kind.
package connectortest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"citybrain/connectors"
)

// Harness adapts a transport to the suite.
type Harness struct {
	// New returns a source over a fresh feed holding records 0..n-1.
	New func(t *testing.T, n int) connectors.Source
	// Append adds records n..n+k-1 to the feed of the last New; nil when
	// the transport's feeds do not grow.
	Append func(t *testing.T, n, k int)
	// Key returns the record number an emitted good record carries.
	Key func(r connectors.Record) int
	// Broken returns a source that cannot work (missing file, refused
	// credentials, unreachable host): Read must fail with ErrPermanent.
	Broken func(t *testing.T) connectors.Source
}

// errStop is what the suite's emit returns to stop a read midway.
var errStop = errors.New("conformance: stop here")

type collector struct {
	recs     []connectors.Record
	inFlight atomic.Int32
	limit    int // stop after this many records (0: never)
	delay    time.Duration
	maxBatch int
}

func (c *collector) emit(ctx context.Context, batch []connectors.Record) error {
	if c.inFlight.Add(1) != 1 {
		return errors.New("conformance: emit called concurrently")
	}
	defer c.inFlight.Add(-1)
	if len(batch) > c.maxBatch {
		c.maxBatch = len(batch)
	}
	if c.delay > 0 {
		select {
		case <-time.After(c.delay):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, r := range batch {
		if c.limit > 0 && len(c.recs) >= c.limit {
			return errStop
		}
		c.recs = append(c.recs, r)
	}
	return nil
}

func positions(recs []connectors.Record) connectors.Positions {
	p := connectors.Positions{}
	for _, r := range recs {
		p.Advance(r.Cursor)
	}
	return p
}

// check asserts recs are exactly records from..to-1, each once, with
// cursors strictly increasing per stream.
func (h Harness) check(t *testing.T, recs []connectors.Record, from, to int) {
	t.Helper()
	seen := map[int]int{}
	last := map[string]int64{}
	for _, r := range recs {
		if r.Err != nil {
			t.Fatalf("unexpected reject at %v: %v", r.Cursor, r.Err)
		}
		if p, ok := last[r.Cursor.Stream]; ok && r.Cursor.Pos <= p {
			t.Fatalf("cursor %v does not follow %d in its stream", r.Cursor, p)
		}
		last[r.Cursor.Stream] = r.Cursor.Pos
		seen[h.Key(r)]++
	}
	for k := from; k < to; k++ {
		if seen[k] != 1 {
			t.Fatalf("record %d read %d times, want once (read %d records, want %d)", k, seen[k], len(recs), to-from)
		}
	}
	if len(recs) != to-from {
		t.Fatalf("read %d records, want %d", len(recs), to-from)
	}
}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	const n = 2500
	t.Run("reads everything once in cursor order", func(t *testing.T) {
		src := h.New(t, n)
		var c collector
		if err := src.Read(context.Background(), connectors.Positions{}, c.emit); err != nil {
			t.Fatal(err)
		}
		h.check(t, c.recs, 0, n)
		// Nothing new: a read from the end emits nothing.
		var again collector
		if err := src.Read(context.Background(), positions(c.recs), again.emit); err != nil {
			t.Fatal(err)
		}
		h.check(t, again.recs, n, n)
	})
	t.Run("resumes exactly from any cursor", func(t *testing.T) {
		for _, cut := range []int{1, 7, 999, 1000, 1001, n - 1} {
			t.Run(fmt.Sprintf("cut=%d", cut), func(t *testing.T) {
				src := h.New(t, n)
				first := collector{limit: cut}
				if err := src.Read(context.Background(), connectors.Positions{}, first.emit); !errors.Is(err, errStop) {
					t.Fatalf("Read must return emit's error as is, got %v", err)
				}
				var rest collector
				if err := src.Read(context.Background(), positions(first.recs), rest.emit); err != nil {
					t.Fatal(err)
				}
				h.check(t, append(first.recs, rest.recs...), 0, n)
			})
		}
	})
	t.Run("backpressure: one emit at a time, bounded batches", func(t *testing.T) {
		src := h.New(t, n)
		c := collector{delay: 2 * time.Millisecond}
		if err := src.Read(context.Background(), connectors.Positions{}, c.emit); err != nil {
			t.Fatal(err)
		}
		h.check(t, c.recs, 0, n)
		if c.maxBatch > 100_000 {
			t.Errorf("a batch of %d records: batches must be bounded", c.maxBatch)
		}
	})
	t.Run("cancellation stops the read promptly", func(t *testing.T) {
		src := h.New(t, n)
		ctx, cancel := context.WithCancel(context.Background())
		c := collector{delay: 50 * time.Millisecond}
		done := make(chan error, 1)
		go func() { done <- src.Read(ctx, connectors.Positions{}, c.emit) }()
		time.Sleep(20 * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("cancelled Read returned %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Read did not return within 10 s of cancellation")
		}
	})
	if h.Broken != nil {
		t.Run("permanent errors are classified", func(t *testing.T) {
			var c collector
			err := h.Broken(t).Read(context.Background(), connectors.Positions{}, c.emit)
			if !errors.Is(err, connectors.ErrPermanent) {
				t.Fatalf("broken source returned %v, want an ErrPermanent", err)
			}
		})
	}
	if h.Append != nil {
		t.Run("a growing feed yields only the new records", func(t *testing.T) {
			src := h.New(t, n)
			var c collector
			if err := src.Read(context.Background(), connectors.Positions{}, c.emit); err != nil {
				t.Fatal(err)
			}
			h.Append(t, n, 500)
			var more collector
			if err := src.Read(context.Background(), positions(c.recs), more.emit); err != nil {
				t.Fatal(err)
			}
			h.check(t, more.recs, n, n+500)
		})
	}
}
