package warnings

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"time"

	"citybrain/internal/sim"
	"citybrain/pipelines/warnings/forecast"
	"citybrain/schemas"
)

// ForecasterCostOptions set MeasureForecasterCost.
type ForecasterCostOptions struct {
	Sim        sim.Config
	Epoch      time.Time
	Days       int // history caught up in bulk before the live day (≥ min_history_days + 1)
	LiveHours  int // intervals then fed one batch each, timed
	Forecaster bool
	Dir        string
	Log        *slog.Logger
}

// ForecasterCost is the cost of the venue-count rule live, with or without
// the fitted forecaster.
type ForecasterCost struct {
	Venues     int
	Intervals  int
	P50, P99   time.Duration // Process of one live interval (every venue's count)
	Forecast   time.Duration // of which in the forecaster (phase forecast.crowd_counts), total
	Fits       int
	FitPerSite time.Duration // one venue's refit (background), mean
	CatchUp    time.Duration // the history in bulk, fits waited for
	// Slowest are the three slowest live intervals ("+35m 345ms": minutes
	// after the first live interval, the local midnight that starts the refits).
	Slowest []string
}

// MeasureForecasterCost catches up the simulator's venue counts of Days in
// day batches (the bulk path), waits for the venues' fits, then feeds
// LiveHours of 5-minute intervals one batch each, as the runner does live,
// timing each Process; then times one refit of every venue.
func MeasureForecasterCost(ctx context.Context, o ForecasterCostOptions) (ForecasterCost, error) {
	var res ForecasterCost
	w, err := NewSimWorld(o.Sim, o.Epoch)
	if err != nil {
		return res, err
	}
	reg, err := schemas.Builtin()
	if err != nil {
		return res, err
	}
	cfg := DefaultConfig()
	cfg.Crowd.Forecaster.Enabled = o.Forecaster
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e, err := Open(ctx, cfg, filepath.Join(o.Dir, "state.duckdb"), reg, log, time.Now)
	if err != nil {
		return res, err
	}
	defer e.Close()
	if err := e.LoadReference(ctx, w.Ref); err != nil {
		return res, err
	}
	res.Venues = len(w.Ref.Venues)
	t0 := time.Now()
	t := o.Epoch
	for d := 0; d < o.Days; d++ {
		var recs []schemas.Record
		for end := t.AddDate(0, 0, 1); t.Before(end); t = t.Add(w.Interval) {
			rs, err := w.VenueCountRecords(t)
			if err != nil {
				return res, err
			}
			recs = append(recs, rs...)
		}
		if _, err := e.Process(ctx, Batch{Records: map[string][]schemas.Record{"crowd_counts": recs}}); err != nil {
			return res, err
		}
	}
	if e.vf != nil {
		e.vf.wait()
	}
	res.CatchUp = time.Since(t0)
	before := e.ph.Snapshot()["forecast.crowd_counts"]
	var took []time.Duration
	live0 := t
	type slow struct {
		at time.Duration
		d  time.Duration
	}
	var all []slow
	for end := t.Add(time.Duration(o.LiveHours) * time.Hour); t.Before(end); t = t.Add(w.Interval) {
		rs, err := w.VenueCountRecords(t)
		if err != nil {
			return res, err
		}
		t1 := time.Now()
		if _, err := e.Process(ctx, Batch{Records: map[string][]schemas.Record{"crowd_counts": rs}}); err != nil {
			return res, err
		}
		took = append(took, time.Since(t1))
		all = append(all, slow{t.Sub(live0), took[len(took)-1]})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].d > all[j].d })
	for _, x := range all[:min(3, len(all))] {
		res.Slowest = append(res.Slowest, fmt.Sprintf("+%dm %dms", int(x.at.Minutes()), x.d.Milliseconds()))
	}
	res.Forecast = e.ph.Snapshot()["forecast.crowd_counts"] - before
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	res.Intervals = len(took)
	if len(took) > 0 {
		res.P50, res.P99 = took[len(took)/2], took[min(len(took)-1, len(took)*99/100)]
	}
	if e.vf != nil {
		var fit time.Duration
		for _, vm := range e.vf.models {
			t1 := time.Now()
			if _, err := forecast.Fit(vm.s.Clone(), e.vf.cal, len(vm.s.V), e.vf.horizons, nil); err != nil {
				return res, fmt.Errorf("refit: %w", err)
			}
			fit += time.Since(t1)
			res.Fits++
		}
		if res.Fits > 0 {
			res.FitPerSite = fit / time.Duration(res.Fits)
		}
	}
	return res, nil
}
