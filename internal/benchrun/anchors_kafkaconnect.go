package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"citybrain/internal/broker"
	"citybrain/internal/testenv"
)

// The "Iceberg Kafka Connect sink" anchor: Apache Iceberg's own sink
// connector (org.apache.iceberg:iceberg-kafka-connect, testenv.IcebergConnectVersion)
// in an Apache Kafka Connect standalone worker (connect-runtime of the
// broker's version), both from Maven Central, reads a raw.<source> topic
// that citybrain's connector produced — mobile_signal records as schemaless
// JSON — from the same real broker and writes it into an Iceberg table of a
// HadoopCatalog in a local directory: Parquet (zstd, Iceberg's default),
// partitioned by day(window_start) as our raw.mobile_signal is. The table is
// auto-created by the sink from the first record; window_start, a string in
// the JSON, becomes a timestamp through Kafka Connect's built-in
// TimestampConverter transform, so the table holds the same types as ours.
//
// The clock runs from starting the worker JVM to the moment the table's
// current snapshot reports total-records = all rows (the metadata JSON in
// the warehouse directory is polled every 100 ms), so JVM start-up and the
// sink's commit interval (icebergCommitInterval) are included, as our
// process start and final commit are in ours.

// icebergCommitInterval is iceberg.control.commit.interval-ms (default 5 min).
const icebergCommitInterval = 2 * time.Second

// anchorRun is one anchor's measured run.
type anchorRun struct {
	Rows     int64
	Wall     time.Duration
	CPU      time.Duration // user+sys of the anchor's process, when known
	PeakRSS  int64         // bytes, when known
	Startup  time.Duration // process start → ready (Kafka Connect: connector RUNNING)
	Commits  int           // snapshots written
	Appended time.Duration // pyiceberg: time inside table.append only
}

func (a anchorRun) rowsPerS() float64 { return float64(a.Rows) / a.Wall.Seconds() }

func (a anchorRun) rowsPerCoreS() float64 {
	if a.CPU <= 0 {
		return 0
	}
	return float64(a.Rows) / a.CPU.Seconds()
}

// icebergTableRecords reads a HadoopCatalog table's current snapshot from
// <tableDir>/metadata: total-records of the current snapshot and how many
// snapshots there are. ok is false while the table has no snapshot.
func icebergTableRecords(tableDir string) (records int64, snapshots int, ok bool, err error) {
	meta := filepath.Join(tableDir, "metadata")
	hint, err := os.ReadFile(filepath.Join(meta, "version-hint.text"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, err
	}
	v := strings.TrimSpace(string(hint))
	b, err := os.ReadFile(filepath.Join(meta, "v"+v+".metadata.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, 0, false, nil
		}
		return 0, 0, false, err
	}
	var md struct {
		CurrentSnapshotID *int64 `json:"current-snapshot-id"`
		Snapshots         []struct {
			SnapshotID int64             `json:"snapshot-id"`
			Summary    map[string]string `json:"summary"`
		} `json:"snapshots"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return 0, 0, false, fmt.Errorf("%s: %w", filepath.Join(meta, "v"+v+".metadata.json"), err)
	}
	if md.CurrentSnapshotID == nil || *md.CurrentSnapshotID < 0 {
		return 0, len(md.Snapshots), false, nil
	}
	for _, s := range md.Snapshots {
		if s.SnapshotID == *md.CurrentSnapshotID {
			n, err := strconv.ParseInt(s.Summary["total-records"], 10, 64)
			if err != nil {
				return 0, 0, false, fmt.Errorf("snapshot %d: total-records %q: %w", s.SnapshotID, s.Summary["total-records"], err)
			}
			return n, len(md.Snapshots), true, nil
		}
	}
	return 0, len(md.Snapshots), false, fmt.Errorf("current snapshot %d not among the snapshots", *md.CurrentSnapshotID)
}

// icebergSchemaTypes returns column name → Iceberg type of the table's
// current schema (to check what the sink created).
func icebergSchemaTypes(tableDir string) (map[string]string, error) {
	meta := filepath.Join(tableDir, "metadata")
	hint, err := os.ReadFile(filepath.Join(meta, "version-hint.text"))
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(meta, "v"+strings.TrimSpace(string(hint))+".metadata.json"))
	if err != nil {
		return nil, err
	}
	var md struct {
		CurrentSchemaID int `json:"current-schema-id"`
		Schemas         []struct {
			SchemaID int `json:"schema-id"`
			Fields   []struct {
				Name string `json:"name"`
				Type any    `json:"type"`
			} `json:"fields"`
		} `json:"schemas"`
	}
	if err := json.Unmarshal(b, &md); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, s := range md.Schemas {
		if s.SchemaID == md.CurrentSchemaID {
			for _, f := range s.Fields {
				out[f.Name] = fmt.Sprint(f.Type)
			}
		}
	}
	return out, nil
}

// runIcebergKafkaConnect runs the anchor over topic (rows records) on the
// real broker at bootstrap, in dir, and returns its measured run. The
// worker is stopped before returning; CPU is the JVM's own (rusage of the
// exited process, start-up and shut-down included), peak RSS its VmHWM up
// to the last row committed.
func runIcebergKafkaConnect(ctx context.Context, dir, bootstrap, topic string, rows int64, timeout time.Duration) (anchorRun, error) {
	var run anchorRun
	// Jars first, so that a first-time Maven download is not timed.
	jctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	_, err := testenv.KafkaConnectJars(jctx)
	cancel()
	if err != nil {
		return run, err
	}
	const control = "control-iceberg-bench"
	client := broker.NewClient([]string{bootstrap}, broker.DefaultConfig())
	if err := client.EnsureTopics(ctx, control); err != nil {
		return run, fmt.Errorf("control topic: %w", err)
	}
	warehouse := filepath.Join(dir, "warehouse")
	tableDir := filepath.Join(warehouse, "bench", "mobile_signal")
	cfg := testenv.KafkaConnectConfig{
		Bootstrap: bootstrap,
		HeapMB:    1536,
		Connector: map[string]string{
			"name":            "iceberg-bench",
			"connector.class": "org.apache.iceberg.connect.IcebergSinkConnector",
			"tasks.max":       "1",
			"topics":          topic,
			// Read the topic from its start (a fresh consumer group).
			"consumer.override.auto.offset.reset": "earliest",
			"iceberg.tables":                      "bench.mobile_signal",
			"iceberg.tables.auto-create-enabled":  "true",
			"iceberg.tables.default-partition-by": "day(window_start)",
			"iceberg.catalog.type":                "hadoop",
			"iceberg.catalog.warehouse":           "file://" + warehouse,
			"iceberg.control.topic":               control,
			"iceberg.control.commit.interval-ms":  strconv.Itoa(int(icebergCommitInterval / time.Millisecond)),
			"iceberg.control.commit.timeout-ms":   "60000",
			// window_start arrives as an RFC 3339 string (UTC, "Z").
			"transforms":                                  "ts",
			"transforms.ts.type":                          "org.apache.kafka.connect.transforms.TimestampConverter$Value",
			"transforms.ts.field":                         "window_start",
			"transforms.ts.target.type":                   "Timestamp",
			"transforms.ts.format":                        "yyyy-MM-dd'T'HH:mm:ssX",
			"transforms.ts.unix.precision":                "milliseconds",
			"errors.tolerance":                            "none",
			"consumer.override.max.poll.records":          "10000",
			"consumer.override.fetch.max.bytes":           "52428800",
			"consumer.override.max.partition.fetch.bytes": "10485760",
		},
		Worker: map[string]string{
			"offset.flush.interval.ms": "5000",
		},
	}
	start := time.Now()
	kc, err := testenv.StartKafkaConnect(ctx, filepath.Join(dir, "connect"), cfg)
	if err != nil {
		return run, err
	}
	defer kc.Stop()
	stopRSS := watchPeakRSS(kc.Pid())
	defer stopRSS()
	run.Startup = time.Since(start)
	logf("Iceberg Kafka Connect sink running after %.1fs; waiting for %d rows in %s", run.Startup.Seconds(), rows, tableDir)
	deadline := time.Now().Add(timeout)
	lastLog := time.Now()
	lastCheck := time.Now()
	for {
		n, snaps, ok, err := icebergTableRecords(tableDir)
		if err != nil {
			return run, err
		}
		if ok && n >= rows {
			run.Wall = time.Since(start)
			run.Rows, run.Commits = n, snaps
			break
		}
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			logf("Iceberg Kafka Connect sink: %.0fs, %d/%d rows committed in %d snapshots", time.Since(start).Seconds(), n, rows, snaps)
		}
		if time.Since(lastCheck) >= 2*time.Second {
			lastCheck = time.Now()
			if err := kc.Failed(ctx); err != nil {
				return run, err
			}
		}
		if time.Now().After(deadline) {
			return run, fmt.Errorf("after %s only %d of %d rows were committed; last log lines:\n%s", timeout, n, rows, kc.LogTail(15))
		}
		select {
		case <-ctx.Done():
			return run, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if run.Rows != rows {
		return run, fmt.Errorf("the sink committed %d rows, want %d", run.Rows, rows)
	}
	types, err := icebergSchemaTypes(tableDir)
	if err != nil {
		return run, err
	}
	if t := types["window_start"]; !strings.HasPrefix(t, "timestamp") {
		return run, fmt.Errorf("the sink created window_start as %q, want a timestamp (schema %v)", t, types)
	}
	peak := stopRSS()
	_ = kc.Stop()
	if ps := kc.ProcessState(); ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			run.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	run.PeakRSS = peak
	return run, nil
}

// watchPeakRSS polls /proc/<pid>/status every 100 ms for VmHWM, the peak
// resident set of the process's own address space, until the returned stop
// is called; stop (idempotent) returns the highest value seen, in bytes (0 if none was
// read). The rusage of an exited child (ru_maxrss) cannot be used: on Linux
// it also counts the parent's address space the child ran in between fork
// and exec, so a child of a large benchrun would look as large.
func watchPeakRSS(pid int) (stop func() int64) {
	done := make(chan struct{})
	result := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v := vmHWM(pid); v > peak {
				peak = v
			}
			select {
			case <-done:
				result <- peak
				return
			case <-t.C:
			}
		}
	}()
	var once sync.Once
	var peak int64
	return func() int64 {
		once.Do(func() {
			close(done)
			peak = <-result
		})
		return peak
	}
}

// vmHWM reads VmHWM from /proc/<pid>/status, in bytes (0 when unreadable).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}
