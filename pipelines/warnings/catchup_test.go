package warnings

import (
	"context"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"citybrain/internal/sim"
)

// TestCatchUpWeek measures the catch-up of a week of scale-1 history (every
// grid cell's mobile signal and the venues' own counts, 2,016 intervals) in
// micro-batches of warnings.max_batch_rows, in bulk and (WARNINGS_CATCHUP_SEQ=1)
// interval by interval as before, and checks the week is caught up in ≤ 60 s
// in bulk (the target; a loaded machine may need WARNINGS_CATCHUP_LIMIT).
//
//	WARNINGS_CATCHUP=1 WARNINGS_CATCHUP_SEQ=1 go test -run TestCatchUpWeek -v ./pipelines/warnings/
func TestCatchUpWeek(t *testing.T) {
	if testing.Short() || os.Getenv("WARNINGS_CATCHUP") == "" {
		t.Skip("set WARNINGS_CATCHUP=1 to replay a week at scale 1 (minutes interval by interval)")
	}
	days := 7
	if n, err := strconv.Atoi(os.Getenv("WARNINGS_CATCHUP_DAYS")); err == nil && n > 0 {
		days = n
	}
	modes := []struct {
		name string
		bulk int
	}{{"bulk", DefaultConfig().BulkMinIntervals}}
	if os.Getenv("WARNINGS_CATCHUP_SEQ") != "" {
		modes = append(modes, struct {
			name string
			bulk int
		}{"interval_by_interval", 0})
	}
	var keys [][]string
	for _, m := range modes {
		cfg := DefaultConfig()
		cfg.BulkMinIntervals = m.bulk
		r, err := MeasureCatchUp(context.Background(), CatchUpOptions{Sim: simConfig(t), Epoch: time.Date(2026, 10, 5, 0, 0, 0, 0, sim.Shanghai),
			Days: days, Config: cfg, Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d days, %d intervals, %d cells, %d venues, %d records in %d batches: %.1f s, %d transitions; phases %s",
			m.name, days, r.Intervals, r.Cells, r.Venues, r.Records, r.Batches, r.Took.Seconds(), len(r.Transitions), topN(r.Phases, 12))
		var ks []string
		for _, tr := range r.Transitions {
			ks = append(ks, transitionKey(tr))
		}
		sort.Strings(ks)
		keys = append(keys, ks)
		limit := 60.0
		if l, err := strconv.ParseFloat(os.Getenv("WARNINGS_CATCHUP_LIMIT"), 64); err == nil {
			limit = l
		}
		if m.bulk > 0 && days == 7 && r.Took.Seconds() > limit {
			t.Errorf("a week caught up in %.1f s, want ≤ %.0f s", r.Took.Seconds(), limit)
		}
	}
	if len(keys) == 2 && strings.Join(keys[0], "\n") != strings.Join(keys[1], "\n") {
		t.Errorf("the transitions in bulk and interval by interval differ:\n%s", diffLines(keys[1], keys[0]))
	}
}

func topN(s string, n int) string {
	k := 0
	for i := range s {
		if s[i] == ',' {
			k++
			if k == n {
				return s[:i]
			}
		}
	}
	return s
}
