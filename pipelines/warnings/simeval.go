package warnings

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"time"

	"citybrain/internal/sim"
	"citybrain/schemas"
)

// SimWorld is the simulator's district reduced to what the crowd rules
// read: the venues, their grid cells, the mobile-signal counts of those
// cells and the venues' own counts (the venue-count feed, raw.crowd_counts),
// generated deterministically by internal/sim (same seed, same numbers;
// ground truth from the same generator).
type SimWorld struct {
	Sim      *sim.Sim
	Ref      Reference
	cellIdx  map[string]int // venue cell id → column in MobileRows
	cells    []string
	Interval time.Duration
	// WithCells makes EvaluateDetection feed the venue cells' mobile signal
	// too (the input of the grid-cell rule and of the venue fallback rule,
	// which skips venues with a count of their own): the venue warnings are
	// the same, at about twice the cost.
	WithCells bool
	cache     map[int64][]schemas.Record
}

// NewSimWorld builds the simulator's world with history starting at epoch.
func NewSimWorld(cfg sim.Config, epoch time.Time) (*SimWorld, error) {
	s, err := sim.New(cfg, epoch)
	if err != nil {
		return nil, err
	}
	w := &SimWorld{Sim: s, cellIdx: map[string]int{}, Interval: cfg.Rates.MobileInterval, cache: map[int64][]schemas.Record{}}
	inVenue := map[string]bool{}
	if vc := s.W.Tables["venue_cells"]; vc != nil {
		col := map[string]int{}
		for i, c := range vc.Cols {
			col[c] = i
		}
		for _, r := range vc.Rows {
			share, _ := strconv.ParseFloat(r[col["share"]], 64)
			w.Ref.VenueCells = append(w.Ref.VenueCells, VenueCell{VenueID: r[col["venue_id"]], GridCellID: r[col["grid_cell_id"]], Share: share})
			inVenue[r[col["grid_cell_id"]]] = true
		}
	}
	for i, c := range s.W.Cells {
		w.Ref.GridCells = append(w.Ref.GridCells, GridCell{ID: c.ID, StreetCode: c.Street, AreaM2: c.AreaM2})
		if inVenue[c.ID] {
			w.cellIdx[c.ID] = i
			w.cells = append(w.cells, c.ID)
		}
	}
	for _, v := range s.W.Venues {
		w.Ref.Venues = append(w.Ref.Venues, Venue{ID: v.ID, NameZh: v.NameZH, NameEn: v.NameEN, Kind: v.Kind, Capacity: int64(v.Capacity),
			AreaM2: v.AreaM2, StreetCode: v.Street, Responsible: "venue:" + v.ID})
	}
	return w, nil
}

// VenueCellRows are the mobile-signal records of the venues' cells for the interval starting at t.
func (w *SimWorld) VenueCellRows(t time.Time) []schemas.Record {
	if c, ok := w.cache[t.Unix()]; ok {
		return c
	}
	rows := w.Sim.MobileRows(t)
	out := make([]schemas.Record, 0, len(w.cells))
	for _, id := range w.cells {
		r := rows[w.cellIdx[id]]
		n, _ := strconv.ParseInt(r[2], 10, 64)
		out = append(out, schemas.Record{id, t.UTC(), n, nil, nil})
	}
	w.cache[t.Unix()] = out
	return out
}

// VenueCountRecords are the venue-count records (raw.crowd_counts: site_id =
// venue_id; directions total, inbound, outbound) for the interval starting
// at t, as the simulator's venue-count feed writes them.
func (w *SimWorld) VenueCountRecords(t time.Time) ([]schemas.Record, error) {
	rows := w.Sim.VenueCountRows(t)
	out := make([]schemas.Record, 0, len(rows))
	for _, r := range rows {
		secs, err1 := strconv.ParseInt(r[2], 10, 64)
		n, err2 := strconv.ParseInt(r[4], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("sim venue count %v: not a number", r)
		}
		out = append(out, schemas.Record{r[0], t.UTC(), secs, r[3], n, nil, nil, nil, nil})
	}
	return out, nil
}

// VenueSeries are the venues' own counts (direction total) per venue and
// interval in [from, to): the series the venue crowd rule forecasts.
func (w *SimWorld) VenueSeries(from, to time.Time) []Point {
	var out []Point
	for t := from; t.Before(to); t = t.Add(w.Interval) {
		for _, r := range w.Sim.VenueCountRows(t) {
			if r[3] != "total" {
				continue
			}
			n, _ := strconv.ParseFloat(r[4], 64)
			out = append(out, Point{Subject: r[0], At: t, Value: n})
		}
	}
	return out
}

// CellSeries sums the venue cells' counts (times their share) per venue and
// interval in [from, to): what the mobile-signal fallback rule sees.
func (w *SimWorld) CellSeries(from, to time.Time) []Point {
	var out []Point
	for t := from; t.Before(to); t = t.Add(w.Interval) {
		recs := w.VenueCellRows(t)
		byCell := map[string]int64{}
		for _, r := range recs {
			byCell[r[0].(string)] = r[2].(int64)
		}
		sums := map[string]float64{}
		for _, vc := range w.Ref.VenueCells {
			share := vc.Share
			if share <= 0 {
				share = 1
			}
			sums[vc.VenueID] += float64(byCell[vc.GridCellID]) * share
		}
		for v, n := range sums {
			out = append(out, Point{Subject: v, At: t, Value: math.Round(n)})
		}
	}
	return out
}

// Detection is the detection quality of the crowd warnings against the
// simulator's ground-truth surges.
type Detection struct {
	Surges, Detected  int
	Episodes, Matched int
	Recall, Precision float64
	// LeadsMin are the minutes between the first warning (the end of the
	// interval that raised it, when it could be known) and the surge's peak.
	LeadsMin   []float64
	MedianLead float64
	Predicted  int // detected surges whose first warning was a forecast
	// Events are the busy events inside capacity (sim.KindCrowdEvent: an
	// ordinary match, a fair) in the scored period; EventsWarned those
	// during which a warning of their venue was open (false alarms, counted
	// in Precision too).
	Events, EventsWarned int
	Details              []string
}

// EvaluateDetection runs the engine (same rules, in-memory state) over the
// venues' own counts (and with w.WithCells the venue cells' mobile signal;
// one micro-batch per interval, as the streaming runner sees a live feed) from
// `from` to `to`, and scores the venue crowd warnings
// raised from testFrom on against the surges starting in [testFrom, to).
// A surge is detected when a warning of its venue is raised or escalated
// between 60 min before its start and its end (lead: from the end of the
// interval that made it to the peak); a warning episode (raised → cleared)
// is correct when it overlaps a surge of its venue (from 60 min before the
// start to the end).
func EvaluateDetection(ctx context.Context, cfg Config, w *SimWorld, from, testFrom, to time.Time, progress func(done, total int)) (Detection, error) {
	reg, err := schemas.Builtin()
	if err != nil {
		return Detection{}, err
	}
	e, err := Open(ctx, cfg, "", reg, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		return Detection{}, err
	}
	defer e.Close()
	if e.vf != nil {
		e.vf.sync = true // the same numbers on every run
	}
	if err := e.LoadReference(ctx, w.Ref); err != nil {
		return Detection{}, err
	}
	type episode struct {
		venue       string
		raised, end time.Time
		predicted   bool
		matched     bool
	}
	var eps []*episode
	type alert struct {
		venue     string
		at        time.Time
		predicted bool
		state     string
	}
	var alerts []alert // raised and escalated
	open := map[string]*episode{}
	total := int(to.Sub(from) / w.Interval)
	i := 0
	for t := from; t.Before(to); t = t.Add(w.Interval) {
		counts, err := w.VenueCountRecords(t)
		if err != nil {
			return Detection{}, err
		}
		recs := map[string][]schemas.Record{"crowd_counts": counts}
		if w.WithCells {
			recs["mobile_signal"] = w.VenueCellRows(t)
		}
		ts, err := e.Process(ctx, Batch{Records: recs})
		if err != nil {
			return Detection{}, err
		}
		for _, tr := range ts {
			if tr.SubjectType != "venue" {
				continue
			}
			if tr.State == "raised" || tr.State == "escalated" {
				alerts = append(alerts, alert{tr.SubjectID, tr.EventTime.Add(w.Interval), tr.Predicted, tr.State})
			}
			switch tr.State {
			case "raised":
				ep := &episode{venue: tr.SubjectID, raised: tr.EventTime.Add(w.Interval), predicted: tr.Predicted}
				open[tr.WarningID] = ep
				if !tr.EventTime.Before(testFrom) {
					eps = append(eps, ep)
				}
			case "cleared":
				if ep := open[tr.WarningID]; ep != nil {
					ep.end = tr.EventTime
					delete(open, tr.WarningID)
				}
			}
		}
		i++
		if progress != nil && i%288 == 0 {
			progress(i, total)
		}
	}
	for _, ep := range eps {
		if ep.end.IsZero() {
			ep.end = to
		}
	}
	var d Detection
	for _, in := range w.Sim.Incidents(testFrom, to) {
		if in.Kind == sim.KindCrowdEvent {
			d.Events++
			warned := false
			for _, ep := range eps {
				if ep.venue == in.VenueID && !ep.raised.After(in.End) && ep.end.After(in.Start) {
					warned = true
				}
			}
			if warned {
				d.EventsWarned++
			}
			d.Details = append(d.Details, fmt.Sprintf("%s %s busy event inside capacity, start %s peak %s (%d people): %s", in.ID, in.VenueID,
				in.Start.In(Beijing).Format("01-02 15:04"), in.Peak.In(Beijing).Format("15:04"), in.VenuePeople, map[bool]string{true: "WARNED (false alarm)", false: "no warning (correct)"}[warned]))
			continue
		}
		if in.Kind != sim.KindCrowdSurge {
			continue
		}
		d.Surges++
		for _, ep := range eps {
			if ep.venue == in.VenueID && !ep.raised.After(in.End) && ep.end.After(in.Start.Add(-time.Hour)) {
				ep.matched = true
			}
		}
		var first *alert
		for i := range alerts {
			a := &alerts[i]
			if a.venue == in.VenueID && !a.at.Before(in.Start.Add(-time.Hour)) && !a.at.After(in.End) && (first == nil || a.at.Before(first.at)) {
				first = a
			}
		}
		if first != nil {
			d.Detected++
			lead := in.Peak.Sub(first.at).Minutes()
			d.LeadsMin = append(d.LeadsMin, lead)
			if first.predicted {
				d.Predicted++
			}
			d.Details = append(d.Details, fmt.Sprintf("%s %s start %s peak %s: first warning %s %s (%s), lead %.0f min", in.ID, in.VenueID,
				in.Start.In(Beijing).Format("01-02 15:04"), in.Peak.In(Beijing).Format("15:04"), first.state, first.at.In(Beijing).Format("15:04"), map[bool]string{true: "predicted", false: "observed"}[first.predicted], lead))
		} else {
			d.Details = append(d.Details, fmt.Sprintf("%s %s start %s peak %s: MISSED", in.ID, in.VenueID, in.Start.In(Beijing).Format("01-02 15:04"), in.Peak.In(Beijing).Format("15:04")))
		}
	}
	d.Episodes = len(eps)
	for _, ep := range eps {
		if ep.matched {
			d.Matched++
		} else {
			d.Details = append(d.Details, fmt.Sprintf("FALSE ALARM %s raised %s (%s)", ep.venue, ep.raised.In(Beijing).Format("01-02 15:04"), map[bool]string{true: "predicted", false: "observed"}[ep.predicted]))
		}
	}
	if d.Surges > 0 {
		d.Recall = float64(d.Detected) / float64(d.Surges)
	}
	if d.Episodes > 0 {
		d.Precision = float64(d.Matched) / float64(d.Episodes)
	}
	if len(d.LeadsMin) > 0 {
		l := append([]float64(nil), d.LeadsMin...)
		sort.Float64s(l)
		if len(l)%2 == 1 {
			d.MedianLead = l[len(l)/2]
		} else {
			d.MedianLead = (l[len(l)/2-1] + l[len(l)/2]) / 2
		}
	}
	return d, nil
}
