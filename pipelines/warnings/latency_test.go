package warnings

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
)

// TestLatencyScale1 is the bench's scale-1 case, small: every warning must be
// visible in the API and in marts.warnings; the figures come from
// `go run ./internal/benchrun -suite warnings`.
func TestLatencyScale1(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the embedded broker and a lake")
	}
	r, err := MeasureLatency(context.Background(), LatencyOptions{Cells: 800, Windows: 5, Warmup: 2, Dir: t.TempDir(), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", r)
	if r.Samples != 5 {
		t.Errorf("%d samples", r.Samples)
	}
}

// TestLatencyScale100 is the bench's scale-100 case (262,144 cells per
// interval); it takes minutes, so it runs only with WARNINGS_SCALE100=1.
// Phase times and per-interval figures are logged (add -cpuprofile to profile).
func TestLatencyScale100(t *testing.T) {
	if testing.Short() || os.Getenv("WARNINGS_SCALE100") == "" {
		t.Skip("set WARNINGS_SCALE100=1 to run the 262,144-cell case (minutes)")
	}
	cells := 262144
	if n, err := strconv.Atoi(os.Getenv("WARNINGS_CELLS")); err == nil && n > 0 {
		cells = n // a smaller grid for quick comparisons
	}
	r, err := MeasureLatency(context.Background(), LatencyOptions{Cells: cells, Windows: 5, Warmup: 2, Dir: t.TempDir(), Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("API p50 %s p99 %s, SQL p50 %s p99 %s, %.0f records/s", r.APIP50, r.APIP99, r.SQLP50, r.SQLP99, r.EvalRowsPerS)
	t.Logf("intervals: %v", r.Intervals)
	t.Logf("phases: %s", r.Phases)
	if r.Samples != 5 {
		t.Errorf("%d samples", r.Samples)
	}
}
