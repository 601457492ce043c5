package warnings

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"citybrain/schemas"
)

// TestProcessScale100Phases feeds the engine (state on disk) seven
// 262,144-cell intervals in micro-batches of warnings.max_batch_rows, as the
// runner would, without Kafka, and logs the time per phase of the last five
// intervals: the profile of one scale-100 interval. WARNINGS_SCALE100=1 runs it.
func TestProcessScale100Phases(t *testing.T) {
	if testing.Short() || os.Getenv("WARNINGS_SCALE100") == "" {
		t.Skip("set WARNINGS_SCALE100=1 to run the 262,144-cell profile (minutes)")
	}
	ctx := context.Background()
	cells := 262144
	if n, err := strconv.Atoi(os.Getenv("WARNINGS_CELLS")); err == nil && n > 0 {
		cells = n // a smaller grid for quick comparisons
	}
	cfg := DefaultConfig()
	cfg.RulesDir = os.Getenv("WARNINGS_RULES") // other rules to compare
	e := newTestEngine(t, cfg, filepath.Join(t.TempDir(), "state.duckdb"))
	ref, _ := benchReference(cells)
	if err := e.LoadReference(ctx, ref); err != nil {
		t.Fatal(err)
	}
	// WARNINGS_BATCHES="10000,50000": the first micro-batches of each interval
	// (as the runner forms them while a burst arrives), the rest in max_batch_rows.
	var sizes []int
	for _, f := range strings.Split(os.Getenv("WARNINGS_BATCHES"), ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			sizes = append(sizes, n)
		}
	}
	raised := 0
	for win := 0; win < 7; win++ {
		at := testT0.Add(time.Duration(win) * 5 * time.Minute)
		if win == 2 {
			t.Logf("phases of the first two intervals: %s", e.Phases())
			e.Phases().Reset()
		}
		start := time.Now()
		for k, lo := 0, 0; lo < cells; k++ {
			batch := e.cfg.MaxBatchRows
			if k < len(sizes) {
				batch = sizes[k]
			}
			recs := make([]schemas.Record, 0, batch)
			for i := lo; i < min(cells, lo+batch); i++ {
				n := int64(100 + (i*7+win*13)%50)
				if win >= 2 && i/40 == win && i%40 < 4 {
					n = 6000
				}
				recs = append(recs, schemas.Record{benchCellID(i), at, n, nil, nil})
			}
			lo += batch
			ts, err := e.Process(ctx, Batch{Records: map[string][]schemas.Record{"mobile_signal": recs}})
			if err != nil {
				t.Fatal(err)
			}
			raised += len(ts)
		}
		t.Logf("interval %d: %s", win, time.Since(start).Round(time.Millisecond))
	}
	t.Logf("phases over 5 intervals: %s", e.Phases())
	if raised == 0 {
		t.Error("no transitions for the surging venues")
	}
}
