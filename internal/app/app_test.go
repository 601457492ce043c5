package app

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"citybrain/connectors"
	"citybrain/connectors/sources"
	"citybrain/internal/broker"
	"citybrain/internal/config"
	"citybrain/internal/freshness"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// TestSourceSurvivesSlowStart is issue 17's restart on a busy machine: the
// broker is too slow to answer a source's and its lake writer's first
// start-up request (CreateTopics) within the client's 10 s request timeout,
// so they fail with "context deadline exceeded". Before the fix RunSource
// returned that error and serve never ran the source again (nor its
// writer); now both retry with backoff, the failure shows on the source's
// freshness path meanwhile, and once the broker answers the records reach
// the lake and the error clears.
func TestSourceSurvivesSlowStart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dir := t.TempDir()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	// A busy broker: CreateTopics requests wait until release.
	release := make(chan struct{})
	var releaseOnce sync.Once
	answer := func() { releaseOnce.Do(func() { close(release) }) }
	defer answer()
	kc.ControlKey(int16(kmsg.CreateTopics), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		kc.SleepControl(func() { <-release })
		return nil, nil, false
	})

	cfg := config.Default()
	cfg.DataDir = dir
	cfg.LakeWriter.IdleFlush = 100 * time.Millisecond
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	lake, err := warehouse.Open(ctx, cfg.Warehouse, dir, log)
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	fresh := freshness.New(time.Now, freshness.DefaultThresholds())
	a := &App{Cfg: cfg, Log: log, Reg: reg, Lake: lake, Fresh: fresh,
		Client:       broker.NewClient(kc.ListenAddrs(), cfg.Broker),
		StartBackoff: Backoff{Min: 100 * time.Millisecond, Max: time.Second}}
	s, err := reg.Get("streets")
	if err != nil {
		t.Fatal(err)
	}
	const rows = 3
	src := &sources.Opened{Def: sources.Definition{Name: "slow_streets", Schema: "streets"}, Schema: s, Source: streetsFeed{n: rows}}
	path := freshness.Path{Component: "source", Name: "slow_streets", Table: s.Table}

	sourceDone, writerDone := make(chan error, 1), make(chan error, 1)
	go func() { _, err := a.RunSource(ctx, src, 100*time.Millisecond); sourceDone <- err }()
	go func() {
		wr := a.NewWriter(src)
		defer wr.Close()
		writerDone <- a.RunWriter(ctx, src, wr)
	}()
	stopped := func() {
		t.Helper()
		select {
		case err := <-sourceDone:
			t.Fatalf("RunSource gave up on the source (err %v); serve would never run it again", err)
		case err := <-writerDone:
			t.Fatalf("RunWriter gave up on the lake writer (err %v)", err)
		default:
		}
	}

	// The broker does not answer: the first attempts time out (10 s).
	deadline := time.Now().Add(40 * time.Second)
	for {
		stopped()
		// The source and the writer report on the same path; either's error shows.
		// The client says "context deadline exceeded" or "i/o timeout".
		if row, ok := fresh.Get(path); ok && (strings.Contains(row.Err, "deadline exceeded") || strings.Contains(row.Err, "i/o timeout")) &&
			(strings.HasPrefix(row.Err, "connector: ") || strings.HasPrefix(row.Err, "lake writer: ")) {
			if row.CaughtUp {
				t.Errorf("failing source shows as caught up: %+v", row)
			}
			break
		}
		if time.Now().After(deadline) {
			row, _ := fresh.Get(path)
			t.Fatalf("no start error on the freshness path after 40 s: %+v", row)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The broker answers again: the source starts, the writer commits.
	answer()
	deadline = time.Now().Add(60 * time.Second)
	for {
		stopped()
		tables, err := lake.Tables(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got int64
		for _, tb := range tables {
			if tb.Name == s.Table {
				got = tb.Rows
			}
		}
		row, _ := fresh.Get(path)
		if got == rows && row.Err == "" && row.CaughtUp {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the broker answered: %d of %d rows in %s, freshness %+v", got, rows, s.Table, row)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cancel()
	if err := <-sourceDone; err != nil {
		t.Errorf("RunSource after cancel: %v", err)
	}
	if err := <-writerDone; err != nil {
		t.Errorf("RunWriter after cancel: %v", err)
	}
}

// TestBackoff: doubling from Min, capped at Max, never more than the
// undithered wait nor less than three quarters of it.
func TestBackoff(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 10 * time.Second}
	for _, c := range []struct {
		attempt int
		want    time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {4, 8 * time.Second}, {5, 10 * time.Second}, {50, 10 * time.Second}} {
		for range 20 {
			if got := b.wait(c.attempt); got > c.want || got < c.want*3/4 {
				t.Errorf("wait(%d) = %s, want %s minus at most a quarter", c.attempt, got, c.want)
			}
		}
	}
	if got := (Backoff{}).wait(1); got > time.Second || got < 750*time.Millisecond {
		t.Errorf("zero Backoff: wait(1) = %s, want DefaultStartBackoff's 1 s", got)
	}
}

// streetsFeed is a feed of n streets (stream "streets", positions 1..n).
type streetsFeed struct{ n int }

func (f streetsFeed) Read(ctx context.Context, from connectors.Positions, emit connectors.Emit) error {
	var batch []connectors.Record
	for i := from["streets"].Pos + 1; i <= int64(f.n); i++ {
		batch = append(batch, connectors.Record{Cursor: connectors.Cursor{Stream: "streets", Pos: i},
			Values: schemas.Record{"11010200" + string(rune('0'+i)), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "街道", nil, nil, nil, nil, nil, nil}})
	}
	if len(batch) == 0 {
		return nil
	}
	return emit(ctx, batch)
}
