package sim

import (
	"fmt"
	"testing"
	"time"
)

// go test -run '^$' -bench 'World|Feeds' -benchtime 1x ./internal/sim/
func BenchmarkWorld(b *testing.B) {
	for _, scale := range []int{1, 10} {
		b.Run(fmt.Sprintf("scale=%d", scale), func(b *testing.B) {
			cfg := testConfig()
			cfg.Scale = scale
			rows := 0
			for i := 0; i < b.N; i++ {
				w, err := NewWorld(cfg, testUntil)
				if err != nil {
					b.Fatal(err)
				}
				for _, t := range w.Tables {
					rows += len(t.Rows)
				}
			}
			b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkFeeds generates one simulated day of the mobile-signal feed.
func BenchmarkFeeds(b *testing.B) {
	s, err := New(testConfig(), testUntil.AddDate(0, 0, -1))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	rows := 0
	for i := 0; i < b.N; i++ {
		for t := s.Epoch; t.Before(testUntil); t = t.Add(5 * time.Minute) {
			rows += len(s.MobileRows(t))
		}
	}
	b.ReportMetric(float64(rows)/b.Elapsed().Seconds(), "rows/s")
}
