package warnings

// The per-venue fitted forecaster inside the engine (issue #21).
//
// crowd_counts.crowd_venue forecasts a venue's own count 15, 30 and 60 min
// ahead. With warnings.crowd.forecaster enabled, the forecast of a venue
// with enough history is pipelines/warnings/forecast's model — the method
// `citybrain warnings backtest` scores on real counts —, fitted on that
// venue's own counts:
//
//   - History. Every interval of a venue is kept in venue_count_history
//     (engine state, same transaction as the rest; history_days of it), with
//     fold set when the count was at a warning level: such a count adds the
//     level's threshold to the usual count, not itself, so the usual crowd
//     does not learn the surge (as venue_count_baseline does not learn the
//     counts of a venue under warning) while a slot busy every week still has
//     a usual count.
//   - Model. The engine keeps, per venue, a fitted forecast.Model in memory
//     whose series is the venue's history. It is fitted when first needed
//     (after a restart: from venue_count_history) and refitted once a local
//     day, on the first interval of the day, on its last history_days —
//     rolling-origin validation inside it choosing the settings.
//   - Each pass (one interval live, many in a catch-up — the bulk rules)
//     appends the staged counts to the models in time order and writes the
//     forecast of every staged (venue, interval, horizon) into the temporary
//     table venue_forecast_in: p50 and the 80 % interval p10–p90 (the
//     spread of the last four weeks' errors). A forecast reads nothing after
//     its origin, so a catch-up re-evaluated stretch by stretch, or an
//     interval appended twice, gives the same numbers.
//   - The rules read venue_forecast_in; a venue without a fitted model (less
//     than min_history_days of counts) keeps crowd_forecast.
//
// Deterministic: fits are triggered by event time (the data's day), not by
// the wall clock, so a replay after a crash computes the same forecasts.

import (
	"context"
	"database/sql/driver"
	"fmt"
	"math"
	"time"

	"citybrain/pipelines/warnings/forecast"
)

type venueModel struct {
	s      forecast.Series // the venue's counts (local wall-clock times)
	m      *forecast.Model // nil: not fitted (too little history)
	fitDay string          // local day of the last fit attempt
	// fitting receives the model being fitted in the background (nil: the
	// fit failed); the engine takes it at the venue's next interval.
	fitting chan *forecast.Model
}

type venueForecaster struct {
	cfg      CrowdConfig
	cal      forecast.Calendar
	step     time.Duration
	horizons []int // in intervals, as cfg.Horizons
	models   map[string]*venueModel
	loaded   bool
	fits     int    // models fitted (for the log and the tests)
	pruneDay string // local day venue_count_history was last pruned
	// sync fits in the batch that needs them (back-tests, for numbers that
	// do not depend on timing); else one fit at a time in the background, the
	// venue keeping yesterday's model (or crowd_forecast) meanwhile.
	sync bool
	slot chan struct{}
}

func newVenueForecaster(cfg CrowdConfig) *venueForecaster {
	vf := &venueForecaster{cfg: cfg, cal: cfg.Calendar(), step: cfg.Interval, models: map[string]*venueModel{}, slot: make(chan struct{}, 1)}
	for _, h := range cfg.Horizons {
		vf.horizons = append(vf.horizons, int(time.Duration(h)*time.Minute/cfg.Interval))
	}
	return vf
}

// local is t as a local wall-clock time (labelled UTC), the forecaster's time.
func (vf *venueForecaster) local(t time.Time) time.Time {
	return t.UTC().Add(time.Duration(vf.cfg.TZOffsetMinutes) * time.Minute)
}

// load reads venue_count_history into the models (once per engine).
func (e *Engine) loadVenueHistory(ctx context.Context) error {
	vf := e.vf
	if vf.loaded {
		return nil
	}
	rows, err := e.conn.QueryContext(ctx, "SELECT venue_id, window_start, people, coalesce(fold, 'NaN'::DOUBLE) FROM venue_count_history ORDER BY venue_id, window_start")
	if err != nil {
		return fmt.Errorf("venue_count_history: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var at time.Time
		var people, fold float64
		if err := rows.Scan(&id, &at, &people, &fold); err != nil {
			return err
		}
		vf.add(id, vf.local(at), people, fold)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	vf.loaded = true
	return nil
}

// add appends a count to a venue's series (and to its model's), fold the
// value it adds to the usual count (NaN: itself); false when the interval
// is not after the series' last.
func (vf *venueForecaster) add(id string, at time.Time, people, fold float64) bool {
	vm := vf.models[id]
	if vm == nil {
		vm = &venueModel{s: forecast.Series{Start: at.Truncate(vf.step), Step: vf.step}}
		vf.models[id] = vm
	}
	end := vm.s.At(len(vm.s.V))
	if at.Before(end) || (at.Sub(vm.s.Start))%vf.step != 0 {
		return false
	}
	for ; end.Before(at); end = end.Add(vf.step) {
		vm.s.V = append(vm.s.V, math.NaN())
		if vm.s.Fold != nil {
			vm.s.Fold = append(vm.s.Fold, math.NaN())
		}
	}
	vm.s.V = append(vm.s.V, people)
	if vm.s.Fold != nil || !math.IsNaN(fold) {
		for len(vm.s.Fold) < len(vm.s.V)-1 {
			vm.s.Fold = append(vm.s.Fold, math.NaN())
		}
		vm.s.Fold = append(vm.s.Fold, fold)
	}
	if vm.m != nil {
		vm.m.AppendFold(at, people, fold)
	}
	return true
}

// refit fits a venue's model when its last fit was on an earlier local day
// than at: on the history_days before that day's midnight, the counts
// since midnight appended — after a restart mid-day the same model as the
// engine that ran through.
func (vf *venueForecaster) refit(id string, at time.Time) {
	vm := vf.models[id]
	day := at.Format(time.DateOnly)
	if vm == nil || vm.fitDay == day {
		return
	}
	vm.fitDay = day
	midnight := at.Truncate(24 * time.Hour)
	keep := time.Duration(vf.cfg.Forecaster.HistoryDays) * 24 * time.Hour
	vm.s = vm.s.Tail(midnight.Add(-keep)).Clone()
	head := vm.s.Clone()
	n := 0
	if d := midnight.Sub(head.Start); d > 0 {
		n = min(int(d/vf.step), len(head.V))
	}
	head.V = head.V[:n]
	if head.Fold != nil {
		head.Fold = head.Fold[:min(n, len(head.Fold))]
	}
	if time.Duration(n)*vf.step < time.Duration(vf.cfg.Forecaster.MinHistoryDays)*24*time.Hour {
		vm.m = nil
		return
	}
	fit := func() *forecast.Model {
		m, err := forecast.Fit(head, vf.cal, n, vf.horizons, nil)
		if err != nil { // too little history at the horizons (gaps): crowd_forecast until tomorrow
			return nil
		}
		return m
	}
	if vf.sync {
		vf.take(vm, fit())
		return
	}
	vf.settle(vm, true) // the previous fit, if still running (a catch-up of days)
	ch := make(chan *forecast.Model, 1)
	vm.fitting = ch
	go func() {
		vf.slot <- struct{}{}
		defer func() { <-vf.slot }()
		ch <- fit()
	}()
}

// take makes m (fitted up to some midnight) the venue's model, with the
// counts since then appended.
func (vf *venueForecaster) take(vm *venueModel, m *forecast.Model) {
	vm.m = m
	if m == nil {
		return
	}
	vf.fits++
	j, ok := vm.s.Index(m.End())
	if !ok {
		vm.m = nil
		return
	}
	for ; j < len(vm.s.V); j++ {
		fold := math.NaN()
		if j < len(vm.s.Fold) {
			fold = vm.s.Fold[j]
		}
		m.AppendFold(vm.s.At(j), vm.s.V[j], fold)
	}
}

// settle takes the venue's background fit if it is done (wait: until it is).
func (vf *venueForecaster) settle(vm *venueModel, wait bool) {
	if vm.fitting == nil {
		return
	}
	if wait {
		vf.take(vm, <-vm.fitting)
		vm.fitting = nil
		return
	}
	select {
	case m := <-vm.fitting:
		vf.take(vm, m)
		vm.fitting = nil
	default:
	}
}

// wait takes every background fit, waiting for those still running.
func (vf *venueForecaster) wait() {
	for _, vm := range vf.models {
		vf.settle(vm, true)
	}
}

// venueForecastQuery reads the staged venue intervals of table. fold: a
// count at a warning level of its venue (blue of the ratio to capacity or
// of density, hysteresis included) adds that level's threshold to the usual
// count, not itself — read from the count, not from the lifecycle, so that a
// catch-up in bulk and the live path give the models the same history.
func venueForecastQuery(table, where string) string {
	return "SELECT i.venue_id, i.window_start, CAST(i.people AS DOUBLE), coalesce(CASE WHEN " +
		"(coalesce(v.capacity_people, 0) > 0 AND i.people >= p.cc_b * (1 - p.hyst) * v.capacity_people) " +
		"OR (coalesce(v.area_m2, 0) > 0 AND i.people >= p.cd_b * (1 - p.hyst) * v.area_m2) THEN " +
		"least(CASE WHEN coalesce(v.capacity_people, 0) > 0 THEN p.cc_b * (1 - p.hyst) * v.capacity_people END, " +
		"CASE WHEN coalesce(v.area_m2, 0) > 0 THEN p.cd_b * (1 - p.hyst) * v.area_m2 END) END, 'NaN'::DOUBLE) " +
		"FROM " + table + " i JOIN venues v ON v.venue_id = i.venue_id CROSS JOIN params p " +
		where + " ORDER BY i.window_start, i.venue_id"
}

// venueForecastRow is one row of venue_forecast_in.
type venueForecastRow struct {
	venue         string
	at            time.Time
	horizon       int
	p50, p10, p90 float64
}

// forecastVenues appends the counts of the staged venue intervals (the
// query's rows: venue_id, window_start, people, fold, in time order) to the
// venues' models and writes their forecasts into venue_forecast_in.
func (e *Engine) forecastVenues(ctx context.Context, query string) error {
	if _, err := e.conn.ExecContext(ctx, "CREATE OR REPLACE TEMP TABLE venue_forecast_in (venue_id VARCHAR, window_start TIMESTAMP, horizon_min INTEGER, p50 DOUBLE, p10 DOUBLE, p90 DOUBLE)"); err != nil {
		return err
	}
	if e.vf == nil {
		return nil
	}
	if err := e.loadVenueHistory(ctx); err != nil {
		return err
	}
	rows, err := e.conn.QueryContext(ctx, query)
	if err != nil {
		return fmt.Errorf("venue forecast input: %w", err)
	}
	type in struct {
		id           string
		at           time.Time
		people, fold float64
	}
	var ins []in
	for rows.Next() {
		var r in
		if err := rows.Scan(&r.id, &r.at, &r.people, &r.fold); err != nil {
			rows.Close()
			return err
		}
		ins = append(ins, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	vf := e.vf
	if len(ins) > 0 {
		if day := vf.local(ins[0].at).Format(time.DateOnly); day != vf.pruneDay {
			vf.pruneDay = day
			keep := time.Duration(vf.cfg.Forecaster.HistoryDays) * 24 * time.Hour
			if _, err := e.conn.ExecContext(ctx, "DELETE FROM venue_count_history WHERE window_start < ?", ins[0].at.UTC().Add(-keep)); err != nil {
				return fmt.Errorf("venue_count_history: %w", err)
			}
		}
	}
	fits := vf.fits
	defer func() {
		if n := vf.fits - fits; n > 0 && len(ins) > 0 {
			e.log.Info("场所客流预测模型已拟合 venue forecasters fitted", "venues", n, "day", vf.local(ins[len(ins)-1].at).Format(time.DateOnly), "total", vf.fits)
		}
	}()
	var out []venueForecastRow
	var added []in
	for _, r := range ins {
		at := vf.local(r.at)
		vf.refit(r.id, at) // the first interval of a local day: fit on the days before it
		if vf.add(r.id, at, r.people, r.fold) {
			added = append(added, r)
		}
		vm := vf.models[r.id]
		if vm == nil {
			continue
		}
		vf.settle(vm, false)
		if vm.m == nil {
			continue
		}
		i, ok := vm.m.Index(at)
		if !ok || i >= vm.m.Len() || vm.m.Series().V[i] != r.people {
			continue // a correction of an interval already in: its first count stands
		}
		for k, h := range vf.horizons {
			p50, p10, p90, ok := vm.m.Forecast(i, h)
			if ok {
				out = append(out, venueForecastRow{r.id, r.at.UTC(), vf.cfg.Horizons[k], p50, p10, p90})
			}
		}
	}
	// The history is what the models were given, so that a restart
	// rebuilds the same models.
	if err := e.appendRows(ctx, "main", "venue_count_history", len(added), func(i int) []driver.Value {
		r := added[i]
		var fold any
		if !math.IsNaN(r.fold) {
			fold = r.fold
		}
		return []driver.Value{r.id, r.at.UTC(), r.people, fold}
	}); err != nil {
		return err
	}
	return e.appendRows(ctx, "main", "venue_forecast_in", len(out), func(i int) []driver.Value {
		r := out[i]
		return []driver.Value{r.venue, r.at, int32(r.horizon), r.p50, r.p10, r.p90}
	})
}
