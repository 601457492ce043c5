package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"citybrain/internal/sim"
	"citybrain/pipelines/warnings"
)

// The cost of the per-venue fitted forecaster (issue #21) in the warning
// engine: a live interval of the venues' own counts with it and without it,
// side by side in the same run, two CPU-bound processes beside it.
func init() {
	registerSuite(Suite{
		Name: "warnings-forecaster",
		Doc: `Warning engine, venue counts with the fitted forecaster: the simulator's 18 venues, 15 days of 5-minute counts
caught up in bulk (day batches) into a new engine on disk, the venues' fits waited for, then 6 h of intervals fed one
batch each as the runner does live; the figure is the engine's Process time of one interval (every venue's count), p50
and p99, with warnings.crowd.forecaster enabled and disabled in the same run (the anchor: disabled, the ratio on / off),
with two busy-loop processes on the 2 cores. Also: one venue's daily refit (8 candidate settings, 15 days of 5-min
counts; it runs in the background, one at a time).`,
		Reproduce: "go run ./internal/benchrun -suite warnings-forecaster",
		Run:       runWarningsForecaster,
	})
}

func runWarningsForecaster(ctx context.Context, tmp string) []Result {
	epoch := time.Date(2026, 10, 5, 0, 0, 0, 0, sim.Shanghai) // a Monday
	var stops []func()
	for range 2 {
		if _, stop, err := startHog(); err == nil {
			stops = append(stops, stop)
		}
	}
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	var costs [2]warnings.ForecasterCost
	for i, on := range []bool{false, true} {
		logf("=== warnings/forecaster: forecaster %v", on)
		c, err := warnings.MeasureForecasterCost(ctx, warnings.ForecasterCostOptions{Sim: sim.DefaultConfig(), Epoch: epoch, Days: 15, LiveHours: 6,
			Forecaster: on, Dir: filepath.Join(tmp, fmt.Sprintf("warnings-forecaster-%d", i)), Log: slog.New(slog.DiscardHandler)})
		if err != nil {
			return []Result{{Name: "warnings/forecaster_live_interval_p50", Status: "failed", Reason: err.Error(), Unit: "ms"}}
		}
		costs[i] = c
	}
	off, on := costs[0], costs[1]
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	note := fmt.Sprintf("%d venues, %d live intervals with %d hogs; catch-up of 15 days %.1f s on / %.1f s off; forecaster phase %.1f ms per interval; slowest intervals on %v, off %v; load average %s",
		on.Venues, on.Intervals, len(stops), on.CatchUp.Seconds(), off.CatchUp.Seconds(), ms(on.Forecast)/float64(max(on.Intervals, 1)), on.Slowest, off.Slowest, loadAverage())
	return []Result{
		{Name: "warnings/forecaster_live_interval_p50", Status: "ok", Figure: ms(on.P50), Unit: "ms", Reason: note,
			Anchor: &Anchor{Name: "forecaster disabled (crowd_forecast)", Figure: ms(off.P50), Unit: "ms", Ratio: ms(on.P50) / ms(off.P50)}},
		{Name: "warnings/forecaster_live_interval_p99", Status: "ok", Figure: ms(on.P99), Unit: "ms", Reason: note,
			Anchor: &Anchor{Name: "forecaster disabled (crowd_forecast)", Figure: ms(off.P99), Unit: "ms", Ratio: ms(on.P99) / ms(off.P99)}},
		{Name: "warnings/forecaster_refit_per_venue", Status: "ok", Figure: ms(on.FitPerSite), Unit: "ms",
			Reason: fmt.Sprintf("%d venues refitted on 15 days of 5-min counts, mean; background, one at a time", on.Fits)},
	}
}
