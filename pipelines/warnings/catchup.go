package warnings

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"time"

	"citybrain/internal/sim"
	"citybrain/schemas"
)

// CatchUpOptions sets a catch-up measurement (MeasureCatchUp).
type CatchUpOptions struct {
	// Sim is the simulated world (scale, seed, weather file).
	Sim sim.Config
	// Epoch is the first interval; Days of history follow it.
	Epoch time.Time
	Days  int
	// Config is the engine's configuration (BulkMinIntervals 0 = interval by interval).
	Config Config
	// Dir holds the engine's state file ("" = in memory).
	Dir string
	Log *slog.Logger
}

// CatchUpResult is what MeasureCatchUp measured.
type CatchUpResult struct {
	Intervals, Cells, Venues int
	Records                  int
	Batches                  int
	// Took is the engine's time (Process calls only; generating the records is not counted).
	Took        time.Duration
	Transitions []Transition
	Phases      string
}

// MeasureCatchUp replays Days of the simulator's mobile signal (every grid
// cell) and venue counts through a new engine in micro-batches of
// Config.MaxBatchRows, as the runner drains a backlog from Kafka on a first
// start (both topics interleaved, oldest first), and measures the engine's
// time: the catch-up a first start of make run pays before warnings are current.
func MeasureCatchUp(ctx context.Context, o CatchUpOptions) (CatchUpResult, error) {
	var res CatchUpResult
	w, err := NewSimWorld(o.Sim, o.Epoch)
	if err != nil {
		return res, err
	}
	reg, err := schemas.Builtin()
	if err != nil {
		return res, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := ""
	if o.Dir != "" {
		path = filepath.Join(o.Dir, "state.duckdb")
	}
	e, err := Open(ctx, o.Config, path, reg, log, func() time.Time { return o.Epoch.AddDate(0, 0, o.Days) })
	if err != nil {
		return res, err
	}
	defer e.Close()
	if err := e.LoadReference(ctx, w.Ref); err != nil {
		return res, err
	}
	res.Cells, res.Venues = len(w.Ref.GridCells), len(w.Ref.Venues)
	b := Batch{Records: map[string][]schemas.Record{}}
	flush := func() error {
		if b.Rows() == 0 {
			return nil
		}
		t := time.Now()
		ts, err := e.Process(ctx, b)
		res.Took += time.Since(t)
		if err != nil {
			return err
		}
		res.Transitions = append(res.Transitions, ts...)
		res.Batches++
		res.Records += b.Rows()
		b = Batch{Records: map[string][]schemas.Record{}}
		return nil
	}
	end := o.Epoch.AddDate(0, 0, o.Days)
	for t := o.Epoch; t.Before(end); t = t.Add(w.Interval) {
		res.Intervals++
		counts, err := w.VenueCountRecords(t)
		if err != nil {
			return res, err
		}
		b.Records["crowd_counts"] = append(b.Records["crowd_counts"], counts...)
		for _, r := range w.Sim.MobileRows(t) {
			n, err := strconv.ParseInt(r[2], 10, 64)
			if err != nil {
				return res, fmt.Errorf("sim mobile row %v: %w", r, err)
			}
			b.Records["mobile_signal"] = append(b.Records["mobile_signal"], schemas.Record{r[0], t.UTC(), n, nil, nil})
		}
		if b.Rows() >= o.Config.MaxBatchRows {
			if err := flush(); err != nil {
				return res, err
			}
		}
	}
	if err := flush(); err != nil {
		return res, err
	}
	res.Phases = e.Phases().String()
	return res, nil
}
