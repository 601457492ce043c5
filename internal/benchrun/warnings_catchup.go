package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"citybrain/internal/sim"
	"citybrain/pipelines/warnings"
)

// The warning engine's catch-up of a week of history at scale 1 (issue 17
// item 2: ≤ 60 s on 2 cores), in bulk and, for comparison, interval by interval.
func init() {
	registerSuite(Suite{
		Name: "warnings-catchup",
		Doc: `Warning engine catch-up: the simulator's week at scale 1 (every grid cell's mobile signal, 803 cells, and the
venues' own counts: 2,016 five-minute intervals, 1.73 M records, what make run backfills) fed to a new engine (state on
disk, shipped rules) in micro-batches of warnings.max_batch_rows, both inputs interleaved, oldest first, as the runner
drains a backlog on a first start; the figure is the engine's time (Process calls; generating the records is not
counted). "bulk" evaluates a batch's intervals set-based (rules/bulk); "interval_by_interval" is the engine before it
(bulk_min_intervals 0), measured on the first day only unless BENCH_WARNINGS_CATCHUP_SEQ_WEEK=1 (≈ 7–25 min for the week).
Target: a week in ≤ 60 s (the issue).`,
		Reproduce: "go run ./internal/benchrun -suite warnings-catchup   (or: WARNINGS_CATCHUP=1 WARNINGS_CATCHUP_SEQ=1 go test -run TestCatchUpWeek -v ./pipelines/warnings/)",
		Run:       runWarningsCatchUp,
	})
}

func runWarningsCatchUp(ctx context.Context, tmp string) []Result {
	epoch := time.Date(2026, 10, 5, 0, 0, 0, 0, sim.Shanghai) // a Monday, as TestSimDetection
	seqDays := 1
	if os.Getenv("BENCH_WARNINGS_CATCHUP_SEQ_WEEK") != "" {
		seqDays = 7
	}
	var out []Result
	for i, m := range []struct {
		name     string
		bulkMin  int
		days     int
		anchored bool
	}{
		{"bulk_week", warnings.DefaultConfig().BulkMinIntervals, 7, true},
		{"bulk_day1", warnings.DefaultConfig().BulkMinIntervals, 1, false},
		{fmt.Sprintf("interval_by_interval_day%d", seqDays), 0, seqDays, seqDays == 7},
	} {
		cfg := warnings.DefaultConfig()
		cfg.BulkMinIntervals = m.bulkMin
		name := "warnings/catchup_scale1_" + m.name
		logf("=== %s: %d days", name, m.days)
		r, err := warnings.MeasureCatchUp(ctx, warnings.CatchUpOptions{Sim: sim.DefaultConfig(), Epoch: epoch, Days: m.days, Config: cfg,
			Dir: filepath.Join(tmp, fmt.Sprintf("warnings-catchup-%d", i)), Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			out = append(out, Result{Name: name, Status: "failed", Reason: err.Error(), Unit: "s"})
			continue
		}
		note := fmt.Sprintf("%d days, %d intervals, %d cells, %d venues, %d records in %d batches of ≤ %d, %d transitions; load average %s; time per phase: %s",
			m.days, r.Intervals, r.Cells, r.Venues, r.Records, r.Batches, cfg.MaxBatchRows, len(r.Transitions), loadAverage(), topPhases(r.Phases, 10))
		res := Result{Name: name, Status: "ok", Figure: r.Took.Seconds(), Unit: "s", Rows: int64(r.Records), WallS: r.Took.Seconds(),
			RowsPerS: float64(r.Records) / r.Took.Seconds(), Reason: note}
		if m.anchored {
			res.Anchor = &Anchor{Name: "issue target (a week)", Figure: 60, Unit: "s", Ratio: r.Took.Seconds() / 60}
		}
		logf("=== %s: %.1f s", name, r.Took.Seconds())
		out = append(out, res)
	}
	return out
}
