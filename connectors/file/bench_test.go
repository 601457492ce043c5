package file

import (
	"context"
	"path/filepath"
	"testing"

	"citybrain/connectors"
	"citybrain/internal/benchrun/conndata"
)

// BenchmarkRead measures Source.Read through the mapping onto mobile_signal
// into an Emit that only counts, for 100k deterministic rows (package
// conndata) of each format, against the standard library reading the same
// file (encoding/csv + strconv, encoding/json). Reproduce with
//
//	go test -run '^$' -bench 'Read' -benchtime 5x ./connectors/file/
//
// (make bench runs the 1M-row version: go run ./internal/benchrun -suite connectors).
func BenchmarkRead(b *testing.B) {
	const rows = 100_000
	dir := b.TempDir()
	csvPath, jsonlPath := filepath.Join(dir, "signal.csv"), filepath.Join(dir, "signal.jsonl")
	csvSize, err := conndata.WriteCSV(csvPath, rows)
	if err != nil {
		b.Fatal(err)
	}
	jsonlSize, err := conndata.WriteJSONL(jsonlPath, rows)
	if err != nil {
		b.Fatal(err)
	}
	m, err := conndata.Mapper()
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		size int64
	}{
		{"format=csv", Config{Paths: []string{csvPath}, Header: true}, csvSize},
		{"format=jsonl", Config{Paths: []string{jsonlPath}, Format: FormatJSONL}, jsonlSize},
	} {
		b.Run(tc.name+"/rows=100000", func(b *testing.B) {
			src, err := New(tc.cfg, m)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(tc.size)
			for b.Loop() {
				var c conndata.Counter
				if err := src.Read(context.Background(), connectors.Positions{}, c.Emit); err != nil {
					b.Fatal(err)
				}
				if err := c.Check(rows); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
	for _, tc := range []struct {
		name string
		fn   func(string) (int64, error)
		path string
		size int64
	}{
		{"anchor=encoding-csv", conndata.AnchorCSV, csvPath, csvSize},
		{"anchor=encoding-json", conndata.AnchorJSONL, jsonlPath, jsonlSize},
	} {
		b.Run(tc.name+"/rows=100000", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(tc.size)
			for b.Loop() {
				if n, err := tc.fn(tc.path); err != nil || n != rows {
					b.Fatalf("%d rows, %v", n, err)
				}
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
