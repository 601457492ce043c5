package e2e

import (
	"context"

	"bufio"
	"citybrain/connectors"
	"citybrain/internal/broker"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// signalSourceYAML defines a mobile-signal source reading a CSV drop.
func signalSourceYAML(name, glob string) string {
	return fmt.Sprintf(`sources:
  - name: %s
    schema: mobile_signal
    transport: file
    poll_interval: 200ms
    file: {paths: [%q], header: true, batch_rows: 2000}
    mapping:
      timezone: Asia/Shanghai
      fields:
        grid_cell_id: {column: cell}
        window_start: {column: window_start, layout: "2006-01-02 15:04"}
        people_count: {column: people}
        inflow:       {column: inflow}
        outflow:      {column: outflow}
`, name, glob) + disableOthers(name)
}

// writeSignal writes n rows split over files of per rows each, and returns
// the sum of people counts (the checksum).
func writeSignal(t *testing.T, dir string, n, per int, seed uint64) int64 {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	var sum int64
	// Keys (cell, window) are unique for n ≤ 216,000 (lcm of 3000 and 8640),
	// and calls with other seeds write other 30-day spans, so no row is a
	// later version of another (the table keeps one row per key).
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(seed) * 31 * 24 * time.Hour)
	for f := 0; f*per < n; f++ {
		path := filepath.Join(dir, fmt.Sprintf("signal-%04d.csv", f))
		fh, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(fh)
		w.WriteString("cell,window_start,people,inflow,outflow\n")
		for i := f * per; i < min((f+1)*per, n); i++ {
			people := rng.Int64N(5000)
			sum += people
			ts := start.Add(time.Duration(i%8640) * 5 * time.Minute)
			fmt.Fprintf(w, "XC-%04d,%s,%d,%d,%d\n", i%3000, ts.Format("2006-01-02 15:04"), people, rng.Int64N(300), rng.Int64N(300))
		}
		w.Flush()
		fh.Close()
	}
	return sum
}

// TestKillNine ingests N = 200,000 records while SIGKILLing citybrain serve at
// 20+ random moments, restarting it after each; at the end the lake holds
// exactly N records (no loss, no duplicate: N distinct source cursors) with
// the right checksum. Against the embedded broker (killed with the process,
// its log persisted) and against real Apache Kafka.
func TestKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test: skipped with -short")
	}
	const n, per = 200_000, 25_000
	for _, run := range []struct {
		kind, lake string
		parts      int
	}{{"embedded", "local", 1}, {"kafka", "local", 6}, {"embedded", "s3", 1}} {
		// Real Kafka runs with 6 partitions: mobile_signal is routed by cell,
		// so this covers the spread topic; the single-partition path is the
		// embedded broker's (and every other kill test's).
		kind := run.kind
		name := "broker=" + kind
		if run.parts > 1 {
			// mobile_signal is keyed by its cell (route_by): each file's
			// records are spread over the partitions; a kill lands in the
			// middle of a write to several of them.
			name += "+partitions=" + strconv.Itoa(run.parts)
		}
		if run.lake != "local" {
			name += "+lake=" + run.lake // no comma: weed takes -dir as a list
		}
		t.Run(name, func(t *testing.T) {
			drop := t.TempDir()
			sum := writeSignal(t, drop, n, per, 42)
			src := "signal"
			if kind == "kafka" {
				src = "signal_kill_" + strconv.FormatInt(time.Now().UnixNano(), 36)
			}
			cfg := signalSourceYAML(src, filepath.Join(drop, "*.csv"))
			e := newEnv(t, cfg)
			if run.lake == "s3" {
				// The lake on SeaweedFS behind the REST catalog: a kill may
				// land between an upload and its commit.
				lakeOnS3(t, e)
			}
			if kind == "kafka" {
				b, _ := os.ReadFile(e.config)
				os.WriteFile(e.config, []byte(strings.Replace(string(b), "broker: {embedded_port: 0}\n", fmt.Sprintf("broker: {bootstrap: [%q], partitions: %d}\n", realKafka(t), run.parts), 1)), 0o644)
			}
			// Small batches so that kills land in every phase: produce, flush, commit.
			b, _ := os.ReadFile(e.config)
			os.WriteFile(e.config, []byte(strings.Replace(string(b), "lake_writer: {flush_rows: 100000, flush_interval: 2s, idle_flush: 300ms}", "lake_writer: {flush_rows: 2500, flush_interval: 500ms, idle_flush: 200ms}", 1)), 0o644)

			seed := uint64(time.Now().UnixNano())
			rng := rand.New(rand.NewPCG(seed, 1))
			t.Logf("kill schedule seed %d", seed)
			kills, minMs, spanMs := 20, 150, 700
			if run.lake == "s3" {
				// serve on the object store takes ~1 s to its first commit
				// (the REST catalog, the uploads): kills later, to land
				// between uploads and commits rather than before them, and
				// fewer, so the run stays ~1 min (make test's budget).
				kills, minMs, spanMs = 10, 1000, 3000
			}
			progress := e.killRepeatedly(kills, rng, minMs, spanMs, "select count(*) from raw.mobile_signal")
			midway := 0
			for _, p := range progress {
				if c, err := strconv.Atoi(p); err == nil && c < n {
					midway++
				}
			}
			if midway < kills/2 {
				t.Fatalf("only %d of %d kills hit before the lake was complete: the test no longer exercises crashes mid-stream (make the ingest slower or the kills sooner)", midway, kills)
			}
			s := e.serve("serve-final.log")
			var got [3]int64
			waitFor(t, "the lake to hold every record", 3*time.Minute, func() (bool, string) {
				out, errOut, err := e.try("sql", "--format", "csv", "select count(*), count(distinct _cursor), coalesce(sum(people_count), 0) from raw.mobile_signal")
				if err != nil {
					return false, errOut
				}
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if len(lines) < 2 {
					return false, out
				}
				for j, f := range strings.Split(lines[1], ",") {
					got[j], _ = strconv.ParseInt(f, 10, 64)
				}
				return got[0] >= n, lines[1] + "\nserve log:\n" + s.logTail()
			})
			// Let any in-flight commit land, then check again.
			time.Sleep(2 * time.Second)
			rows := e.sqlRows("select count(*), count(distinct _cursor), sum(people_count) from raw.mobile_signal")
			s.stop(t)
			count, _ := strconv.ParseInt(rows[0][0], 10, 64)
			distinct, _ := strconv.ParseInt(rows[0][1], 10, 64)
			checksum, _ := strconv.ParseInt(rows[0][2], 10, 64)
			t.Logf("after %d SIGKILLs: %d records, %d distinct cursors, checksum %d (want %d, %d, %d)", kills, count, distinct, checksum, n, n, sum)
			if count != n || distinct != n || checksum != sum {
				t.Fatalf("lake holds %d records (%d distinct cursors, checksum %d); want exactly %d with checksum %d\nlast serve log:\n%s", count, distinct, checksum, n, sum, s.logTail())
			}
			if run.parts > 1 {
				c := broker.NewClient([]string{realKafka(t)}, broker.DefaultConfig())
				ends, err := c.EndOffsets(context.Background(), connectors.RawTopic(src))
				if err != nil {
					t.Fatal(err)
				}
				used := 0
				for _, e := range ends {
					if e > 0 {
						used++
					}
				}
				if len(ends) != run.parts || used != run.parts {
					t.Fatalf("raw.%s has %d partitions, %d of them written: the records were not spread over %d", src, len(ends), used, run.parts)
				}
			}
		})
	}
}
