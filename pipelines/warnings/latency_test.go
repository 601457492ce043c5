package warnings

import (
	"context"
	"io"
	"log/slog"
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
