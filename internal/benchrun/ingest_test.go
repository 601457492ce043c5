package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestIngestCSV checks the ingest suite's feed: deterministic, one line per
// cell and 5-minute window, valid values, and the scale → rows rule.
func TestIngestCSV(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.csv"), filepath.Join(dir, "b.csv")
	for _, p := range []string{a, b} {
		if _, err := writeIngestCSV(p, 2); err != nil {
			t.Fatal(err)
		}
	}
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	if !bytes.Equal(ab, bb) {
		t.Fatal("two runs wrote different bytes")
	}
	lines := strings.Split(strings.TrimSuffix(string(ab), "\n"), "\n")
	if lines[0] != "grid_cell_id,window_start,people_count,inflow,outflow" {
		t.Fatalf("header %q", lines[0])
	}
	if got, want := len(lines)-1, 2*ingestCells*ingestWindowsPerDay; got != want {
		t.Fatalf("%d rows, want %d", got, want)
	}
	first := strings.Split(lines[1], ",")
	last := strings.Split(lines[len(lines)-1], ",")
	if first[0] != "XC-G0001" || first[1] != "2026-11-01T00:00:00+08:00" {
		t.Errorf("first row %v", first)
	}
	if last[0] != "XC-G0811" || last[1] != "2026-11-02T23:55:00+08:00" {
		t.Errorf("last row %v", last)
	}
	for _, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) != 5 || f[2] == "" || f[2][0] == '-' {
			t.Fatalf("bad row %q", l)
		}
		if _, err := time.Parse(time.RFC3339, f[1]); err != nil {
			t.Fatalf("row %q: %v", l, err)
		}
	}

	old := *ingestMaxRows
	defer func() { *ingestMaxRows = old }()
	*ingestMaxRows = 10_000_000
	if rows, days := ingestRows(100); days != 42 || rows != 42*ingestCells*ingestWindowsPerDay {
		t.Errorf("scale 100 capped at 10M = %d rows, %d days; want 42 days", rows, days)
	}
	if rows, days := ingestRows(10); days != 10 || rows != 2_335_680 {
		t.Errorf("scale 10 = %d rows, %d days", rows, days)
	}
	*ingestMaxRows = 0
	if _, days := ingestRows(100); days != 100 {
		t.Errorf("uncapped scale 100 = %d days", days)
	}
}

func TestAnchorReason(t *testing.T) {
	err := errors.New("testenv: connector did not start: task FAILED: org.apache.kafka.connect.errors.ConnectException: x\n\tat a.b(C.java:1)\nCaused by: java.lang.NoSuchMethodError: y\nCaused by: java.lang.ClassNotFoundException: z")
	got := anchorReason(err)
	want := "testenv: connector did not start: task FAILED: org.apache.kafka.connect.errors.ConnectException: x — Caused by: java.lang.ClassNotFoundException: z"
	if got != want {
		t.Errorf("anchorReason = %q, want %q", got, want)
	}
}

func TestIcebergTableRecords(t *testing.T) {
	dir := t.TempDir()
	if _, _, ok, err := icebergTableRecords(dir); ok || err != nil {
		t.Fatalf("no table: ok=%v err=%v", ok, err)
	}
	meta := filepath.Join(dir, "metadata")
	os.MkdirAll(meta, 0o755)
	os.WriteFile(filepath.Join(meta, "version-hint.text"), []byte("3\n"), 0o644)
	os.WriteFile(filepath.Join(meta, "v3.metadata.json"), []byte(`{"current-snapshot-id": 22,
		"snapshots": [{"snapshot-id": 11, "summary": {"total-records": "5"}}, {"snapshot-id": 22, "summary": {"total-records": "12"}}],
		"current-schema-id": 0, "schemas": [{"schema-id": 0, "fields": [{"name": "window_start", "type": "timestamptz"}]}]}`), 0o644)
	n, snaps, ok, err := icebergTableRecords(dir)
	if err != nil || !ok || n != 12 || snaps != 2 {
		t.Fatalf("= %d, %d, %v, %v; want 12 rows in 2 snapshots", n, snaps, ok, err)
	}
	types, err := icebergSchemaTypes(dir)
	if err != nil || types["window_start"] != "timestamptz" {
		t.Fatalf("types = %v, %v", types, err)
	}
}
