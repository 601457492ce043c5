package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"citybrain/internal/app"
	"citybrain/internal/config"
)

// TestWipedBroker covers a broker that comes back as another cluster (its
// log wiped). First the lake is complete: nothing is written twice. Then
// the worst case: records the old broker acknowledged but the lake never
// committed — the connector notices the new cluster id and re-reads them
// from the feed, so nothing is lost either.
func TestWipedBroker(t *testing.T) {
	drop := t.TempDir()
	sum := writeSignal(t, drop, 30_000, 10_000, 3)
	e := newEnv(t, signalSourceYAML("signal", filepath.Join(drop, "*.csv")))
	check := func(stage string, want, wantSum int64) { t.Helper(); checkSignal(t, e, stage, want, wantSum) }
	e.run("ingest", "signal", "--no-progress")
	check("first ingest", 30_000, sum)

	wipe := func() {
		if err := os.RemoveAll(filepath.Join(e.dataDir(), "broker")); err != nil {
			t.Fatal(err)
		}
	}
	wipe()
	out := e.run("ingest", "signal", "--no-progress")
	check("after wiping the broker, same files", 30_000, sum)
	if !strings.Contains(out, "0 new") {
		t.Logf("ingest output: %s", out)
	}

	// Produce new files to the broker only (no lake writer), then wipe it:
	// the lake never saw them.
	more := t.TempDir()
	extra := writeSignal(t, more, 12_000, 6_000, 9)
	for _, f := range []string{"signal-0000.csv", "signal-0001.csv"} {
		b, _ := os.ReadFile(filepath.Join(more, f))
		os.WriteFile(filepath.Join(drop, "late-"+f), b, 0o644)
	}
	cfg, err := config.Load(e.config, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := app.Open(ctx, cfg, log, app.OwnBroker)
	if err != nil {
		t.Fatal(err)
	}
	src, err := a.OpenSource("signal")
	if err != nil {
		t.Fatal(err)
	}
	st, err := a.RunSource(ctx, src, 0)
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	if st.Good != 12_000 {
		t.Fatalf("produced %d new records, want 12000", st.Good)
	}
	wipe()
	_, errOut, err := e.try("ingest", "signal", "--no-progress", "--log-level", "warn")
	if err != nil {
		t.Fatalf("ingest after wipe: %v\n%s", err, errOut)
	}
	if !strings.Contains(errOut, "cluster changed") {
		t.Errorf("the cluster change was not reported; stderr:\n%s", errOut)
	}
	check("after wiping a broker that held uncommitted records", 42_000, sum+extra)
}

// TestServeWithCLI is the `make run` scenario: while citybrain serve runs
// on the weather demo, citybrain sql in another process answers 35064
// (every call succeeds: the CLI and the server share the lake safely),
// status and ingest attach to the running server, and time travel reads an
// older snapshot.
func TestServeWithCLI(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "a-2013.csv")
	second := filepath.Join(dir, "b-rest.csv")
	b, err := os.ReadFile(weatherCSV())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	os.WriteFile(first, []byte(strings.Join(lines[:5001], "")), 0o644) // header + 5000 rows
	e := newEnv(t, weatherSourceYAML(t, "weather", filepath.Join(dir, "*.csv")))
	s := e.serve("serve.log")
	var calls, failures int
	waitFor(t, "5000 rows", 2*time.Minute, func() (bool, string) {
		calls++
		out, errOut, err := e.try("sql", "--format", "csv", "select count(*) from raw.weather")
		if err != nil {
			if !strings.Contains(errOut, "no such table") && !strings.Contains(errOut, "does not exist") {
				failures++
			}
			return false, errOut
		}
		return strings.Contains(out, "\n5000"), out
	})
	infoOut := e.run("tables", "--snapshots", "raw.weather")
	snapLines := strings.Split(strings.TrimSpace(infoOut), "\n")
	firstSnap := strings.Fields(snapLines[len(snapLines)-1])[0] // the snapshot holding the first 5000 rows
	time.Sleep(1100 * time.Millisecond)
	between := time.Now().Format(time.RFC3339)
	time.Sleep(1100 * time.Millisecond)

	// More data arrives as a second file; serve picks it up at its next poll.
	os.WriteFile(second, []byte(lines[0]+strings.Join(lines[5001:], "")), 0o644)
	waitFor(t, "35064 rows while serve runs", 3*time.Minute, func() (bool, string) {
		calls++
		out, errOut, err := e.try("sql", "select count(*) from raw.weather")
		if err != nil {
			failures++
			return false, errOut
		}
		return strings.Contains(out, "35064"), out
	})
	if failures > 0 {
		t.Errorf("%d of %d citybrain sql calls failed while serve was writing", failures, calls)
	}
	if got := e.sqlInt("select count(*) from raw.weather AT (VERSION => " + firstSnap + ")"); got != 5000 {
		t.Errorf("time travel to snapshot %s: %d rows, want 5000", firstSnap, got)
	}
	if got := e.sqlInt("select count(*) from raw.weather AT (TIMESTAMP => '" + between + "')"); got != 5000 {
		t.Errorf("time travel to %s: %d rows, want 5000", between, got)
	}
	status := e.run("status")
	if !strings.Contains(status, "weather") || !strings.Contains(status, "35064") {
		t.Errorf("status while serving:\n%s", status)
	}
	out := e.run("ingest", "weather", "--no-progress")
	if !strings.Contains(out, "serve is running") {
		t.Errorf("ingest while serving should hand records to serve:\n%s", out)
	}
	s.stop(t)
	if got := e.sqlInt("select count(*) from raw.weather"); got != 35064 {
		t.Fatalf("after stop: %d rows, want 35064", got)
	}
	t.Logf("%d sql calls while serving, %d failed; time travel to %s ok", calls, failures, firstSnap)
}

// TestBrokerLostItsLog: the embedded broker's log directory is deleted but
// its cluster.id kept (the same cluster comes back empty) while it held
// 40,000 records the lake had not committed. The connector notices that the
// raw topic holds fewer records than it produced and re-reads them from the
// feed; the lake writer notices that the records at its committed offsets
// are not the ones it read (the new log is longer than the lake's offsets)
// and reads the new log from the start. Nothing is lost or doubled.
func TestBrokerLostItsLog(t *testing.T) {
	drop := t.TempDir()
	sum := writeSignal(t, drop, 30_000, 10_000, 4)
	e := newEnv(t, signalSourceYAML("signal", filepath.Join(drop, "*.csv")))
	check := func(stage string, want, wantSum int64) { t.Helper(); checkSignal(t, e, stage, want, wantSum) }
	e.run("ingest", "signal", "--no-progress")
	check("first ingest", 30_000, sum)

	// 40,000 more records to the broker only, then its log is lost.
	more := t.TempDir()
	extra := writeSignal(t, more, 40_000, 10_000, 8)
	for i := 0; i < 4; i++ {
		b, _ := os.ReadFile(filepath.Join(more, fmt.Sprintf("signal-%04d.csv", i)))
		os.WriteFile(filepath.Join(drop, fmt.Sprintf("late-%04d.csv", i)), b, 0o644)
	}
	cfg, err := config.Load(e.config, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := app.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.OwnBroker)
	if err != nil {
		t.Fatal(err)
	}
	src, err := a.OpenSource("signal")
	if err != nil {
		t.Fatal(err)
	}
	st, err := a.RunSource(ctx, src, 0)
	a.Close()
	if err != nil || st.Good != 40_000 {
		t.Fatalf("produced %d new records (%v), want 40000", st.Good, err)
	}
	if err := os.RemoveAll(filepath.Join(e.dataDir(), "broker", "log")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(e.dataDir(), "broker", "cluster.id")); err != nil {
		t.Fatalf("test setup: cluster.id gone: %v", err)
	}
	_, errOut, err := e.try("ingest", "signal", "--no-progress", "--log-level", "warn")
	if err != nil {
		t.Fatalf("ingest after the log was lost: %v\n%s", err, errOut)
	}
	for _, want := range []string{"the broker lost its log", "is not the one the lake read"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errOut)
		}
	}
	check("after the broker lost its log", 70_000, sum+extra)
	if out := e.run("status", "--json"); !strings.Contains(out, `"lag": 0`) && !strings.Contains(out, `"lag":0`) {
		t.Errorf("status after recovery:\n%s", out)
	}
}

// checkSignal checks raw.mobile_signal: want rows, as many distinct source
// cursors (no duplicate), and the people_count checksum.
func checkSignal(t *testing.T, e *env, stage string, want, wantSum int64) {
	t.Helper()
	rows := e.sqlRows("select count(*), count(distinct _cursor), sum(people_count) from raw.mobile_signal")
	if rows[0][0] != strconv.FormatInt(want, 10) || rows[0][1] != rows[0][0] || rows[0][2] != strconv.FormatInt(wantSum, 10) {
		t.Fatalf("%s: lake has count, distinct cursors, checksum = %v; want %d, %d, %d", stage, rows[0], want, want, wantSum)
	}
	t.Logf("%s: %v", stage, rows[0])
}
