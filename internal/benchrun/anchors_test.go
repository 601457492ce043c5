package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"citybrain/connectors"
	"citybrain/internal/benchrun/benchdata"
	"citybrain/internal/broker"
	"citybrain/internal/testenv"
)

// TestIcebergKafkaConnectAnchor runs the anchor end to end on 10k
// mobile_signal records produced as citybrain's connectors produce them:
// real Kafka, a Kafka Connect worker with Apache Iceberg's sink, and the
// committed table checked through its metadata (rows and timestamp type).
func TestIcebergKafkaConnectAnchor(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real Apache Kafka and Kafka Connect (Java, Maven); skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir := t.TempDir()
	k, err := testenv.StartKafka(ctx, filepath.Join(dir, "kafka"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Stop() })
	s, err := benchdata.Schema()
	if err != nil {
		t.Fatal(err)
	}
	const rows = 10_000
	client := broker.NewClient([]string{k.Bootstrap()}, broker.DefaultConfig())
	if _, err := benchdata.Produce(ctx, client, s, rows, nil); err != nil {
		t.Fatal(err)
	}
	run, err := runIcebergKafkaConnect(ctx, filepath.Join(dir, "anchor"), k.Bootstrap(), connectors.RawTopic(benchdata.Source), rows, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if run.Rows != rows || run.Wall <= 0 || run.Commits < 1 {
		t.Fatalf("run = %+v, want %d rows, a wall time and at least one snapshot", run, rows)
	}
	if run.CPU <= 0 || run.PeakRSS <= 0 {
		t.Errorf("no CPU time or peak RSS of the worker: %+v", run)
	}
	t.Logf("Iceberg Kafka Connect sink: %d rows in %s (start-up %s), %d snapshots, CPU %s, peak RSS %d MiB",
		run.Rows, run.Wall, run.Startup, run.Commits, run.CPU, run.PeakRSS>>20)
}

// TestPyIcebergAppendAnchor appends one day of the ingest CSV with pyiceberg
// and checks the table's snapshot holds every row.
func TestPyIcebergAppendAnchor(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Python venv with pyiceberg (PyPI); skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "signal.csv")
	if _, err := writeIngestCSV(path, 1); err != nil {
		t.Fatal(err)
	}
	const rows = ingestCells * ingestWindowsPerDay
	run, err := runPyIcebergAppend(ctx, dir, path, rows)
	if err != nil {
		t.Fatal(err)
	}
	if run.Rows != rows || run.Wall <= 0 || run.CPU <= 0 || run.Commits != 1 {
		t.Fatalf("run = %+v, want %d rows in one append with wall and CPU time", run, rows)
	}
	t.Logf("pyiceberg: %d rows appended in %s (%.0f rows/s)", run.Rows, run.Wall, run.rowsPerS())
}
