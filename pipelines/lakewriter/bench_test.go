package lakewriter_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"citybrain/internal/benchrun/benchdata"
	"citybrain/internal/broker"
	"citybrain/pipelines/lakewriter"
	"citybrain/warehouse"
)

// BenchmarkLakeWriter measures the lake writer over the embedded broker:
// 100k narrow mobile_signal records (package benchdata) are produced once,
// then each iteration writes all of them into a fresh lake (local catalog)
// with the default config and StopAtEnd. Reproduce with
//
//	go test -run '^$' -bench LakeWriter -benchtime 1x ./pipelines/lakewriter/
//
// The full-size figures (10M rows, embedded and real Kafka, CPU time and
// peak RSS of the writer process alone) come from `make bench`
// (internal/benchrun).
func BenchmarkLakeWriter(b *testing.B) {
	if testing.Short() {
		b.Skip("starts a broker and writes a lake; skipped under -short")
	}
	for _, rows := range []int{100_000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			ctx := context.Background()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			dir := b.TempDir()
			e, err := broker.StartEmbedded(dir, 0, log)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			client := broker.NewClient([]string{e.Addr()}, broker.DefaultConfig())
			s, err := benchdata.Schema()
			if err != nil {
				b.Fatal(err)
			}
			prod, err := benchdata.Produce(ctx, client, s, rows, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(prod.Bytes)
			var elapsed time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				lake, err := warehouse.Open(ctx, warehouse.DefaultConfig(), filepath.Join(dir, fmt.Sprint("lake-", i)), log)
				if err != nil {
					b.Fatal(err)
				}
				// One batch of exactly `rows` commits as soon as the last record
				// is read, so the figure is not the IdleFlush timer's (1 s).
				cfg := lakewriter.DefaultConfig()
				cfg.FlushRows = rows
				w := lakewriter.New(cfg, lake, client, benchdata.Source, s, log)
				w.StopAtEnd = true
				b.StartTimer()
				start := time.Now()
				if err := w.Run(ctx); err != nil {
					b.Fatal(err)
				}
				elapsed += time.Since(start)
				b.StopTimer()
				if got := w.Stats.Rows.Load(); got != int64(rows) {
					b.Fatalf("wrote %d rows, want %d", got, rows)
				}
				w.Close()
				lake.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(rows)*float64(b.N)/elapsed.Seconds(), "rows/s")
		})
	}
}
