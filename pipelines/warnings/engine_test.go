package warnings

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"citybrain/schemas"
)

var testT0 = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // Monday 08:00 in Beijing

func newTestEngine(t *testing.T, cfg Config, path string) *Engine {
	t.Helper()
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC) }
	e, err := Open(context.Background(), cfg, path, reg, slog.New(slog.NewTextHandler(io.Discard, nil)), clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func signalRec(cell string, at time.Time, people int64) schemas.Record {
	return schemas.Record{cell, at, people, nil, nil}
}

// testReference: venue V1 (10,000 m², capacity 10,000) over cells c1 and c2
// (c2 counted half); c3 is a plain 62,500 m² cell.
func testReference() Reference {
	return Reference{
		GridCells:  []GridCell{{"c1", "110102001", 5000}, {"c2", "110102001", 5000}, {"c3", "110102002", 62500}},
		Venues:     []Venue{{ID: "V1", NameZh: "西单商圈", NameEn: "Xidan", Kind: "commercial_district", Capacity: 10000, AreaM2: 10000, StreetCode: "110102001", Responsible: "xidan-office"}},
		VenueCells: []VenueCell{{"V1", "c1", 1}, {"V1", "c2", 0.5}},
	}
}

// feedVenue sends one interval per count: the venue's people split so that
// c1 + 0.5 × c2 = n, i.e. c1 = n/2, c2 = n.
func feedVenue(t *testing.T, e *Engine, start time.Time, counts []int64) []Transition {
	t.Helper()
	var all []Transition
	for i, n := range counts {
		at := start.Add(time.Duration(i) * 5 * time.Minute)
		ts, err := e.Process(context.Background(), Batch{Records: map[string][]schemas.Record{"mobile_signal": {
			signalRec("c1", at, n/2), signalRec("c2", at, n), signalRec("c3", at, 10)}}})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, ts...)
	}
	return all
}

func venueTransitions(ts []Transition) string {
	var out []string
	for _, t := range ts {
		if t.SubjectType == "venue" {
			p := ""
			if t.Predicted {
				p = fmt.Sprintf("(predicted %dmin)", t.HorizonMin)
			}
			out = append(out, fmt.Sprintf("%s %s %s%s", t.EventTime.Format("15:04"), t.State, t.Level, p))
		}
	}
	return strings.Join(out, "; ")
}

// observedOnly: no forecast horizons (only the observed level counts).
func observedOnly() Config {
	cfg := DefaultConfig()
	cfg.Crowd.Horizons = []int{15}
	cfg.Crowd.PersistencePerHour, cfg.Crowd.TrendDampingPerHour = 0, 0 // forecast = usual count only
	cfg.Crowd.BaselineMinSamples = 1000                                // no baseline yet: forecast = the count now
	return cfg
}

// TestCrowdThresholdsAndLifecycle: capacity-ratio thresholds 0.7/0.8/0.9/1.0
// (capacity 10,000), hysteresis 10 % and a 10-minute dwell before lowering.
func TestCrowdThresholdsAndLifecycle(t *testing.T) {
	e := newTestEngine(t, observedOnly(), "")
	if err := e.LoadReference(context.Background(), testReference()); err != nil {
		t.Fatal(err)
	}
	counts := []int64{
		6000, 6998, // 0.6, 0.6998: below blue
		7000,       // 00:10 exactly 0.7 → raised blue
		8100,       // 00:15 0.81 → escalated yellow
		7300,       // 00:20 0.73: below yellow 0.8 but above 0.8×0.9 = 0.72 → held (no flap)
		8050, 7250, // 00:25, 00:30 oscillating around the threshold: still yellow
		7100, 7150, // 00:35 0.71 < 0.72 low since 00:35; 00:40 still low, 5 min: not yet
		7100,       // 00:45 10 min low → lowered to blue
		10000,      // 00:50 1.0 → escalated red
		6000, 5000, // 00:55 low since; 01:00 5 min
		4000, // 01:05 10 min below 0.63 → cleared
		7000, // 01:10 a new warning
	}
	ts := feedVenue(t, e, testT0, counts)
	got := venueTransitions(ts)
	want := "00:10 raised blue; 00:15 escalated yellow; 00:45 lowered blue; 00:50 escalated red; 01:05 cleared red; 01:10 raised blue"
	if got != want {
		t.Fatalf("transitions\n got %s\nwant %s", got, want)
	}
	// Every transition of one warning shares its id; a new warning has a new one.
	var ids []string
	for _, tr := range ts {
		if tr.SubjectType == "venue" {
			ids = append(ids, tr.WarningID)
		}
	}
	for i := 1; i < 5; i++ {
		if ids[i] != ids[0] {
			t.Errorf("transition %d has id %s, want %s", i, ids[i], ids[0])
		}
	}
	if ids[5] == ids[0] {
		t.Errorf("a new warning reuses id %s", ids[0])
	}
	first := ts[0]
	for _, tr := range ts {
		if tr.SubjectType == "venue" {
			first = tr
			break
		}
	}
	if first.Metric != "capacity_ratio" || *first.Threshold != 0.7 || *first.ObservedValue != 0.7 || *first.PeopleCount != 7000 ||
		first.ResponsibleUnit != "xidan-office" || first.StreetCode != "110102001" || !strings.Contains(first.MessageZh, "西单商圈") {
		t.Errorf("first transition %+v", first)
	}
}

// TestCrowdDensityGridCell: a cell's density levels (1/2/3/4 people per m²).
func TestCrowdDensityGridCell(t *testing.T) {
	e := newTestEngine(t, observedOnly(), "")
	e.LoadReference(context.Background(), testReference())
	var got []string
	for i, n := range []int64{4999, 5000, 10000, 15000, 20000} { // c1 is 5,000 m²
		ts, err := e.Process(context.Background(), Batch{Records: map[string][]schemas.Record{"mobile_signal": {signalRec("c1", testT0.Add(time.Duration(i)*5*time.Minute), n)}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range ts {
			if tr.SubjectID == "c1" {
				got = append(got, fmt.Sprintf("%s %s %s %.0f", tr.State, tr.Level, tr.Metric, *tr.ObservedValue))
			}
		}
	}
	want := "raised blue density 1; escalated yellow density 2; escalated orange density 3; escalated red density 4"
	if strings.Join(got, "; ") != want {
		t.Errorf("got %s\nwant %s", strings.Join(got, "; "), want)
	}
}

// TestCrowdForecastRaisesPredicted: a steady rise is warned before the
// observed count crosses the threshold, flagged predicted with its horizon.
func TestCrowdForecastRaisesPredicted(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Crowd.BaselineMinSamples = 1
	cfg.Crowd.SlotMinutes = 7 * 24 * 60 // one slot: the usual count is the mean of all history
	e := newTestEngine(t, cfg, "")
	e.LoadReference(context.Background(), testReference())
	// A quiet day (3,000 people every interval) builds the baseline …
	week := make([]int64, 60)
	for i := range week {
		week[i] = 3000
	}
	if ts := feedVenue(t, e, testT0, week); len(venueTransitions(ts)) > 0 {
		t.Fatalf("quiet week raised: %s", venueTransitions(ts))
	}
	// … then +400 people per interval.
	var rise []int64
	for i := 0; i < 12; i++ {
		rise = append(rise, 3000+400*int64(i))
	}
	ts := feedVenue(t, e, testT0.Add(24*time.Hour), rise)
	var first *Transition
	for i := range ts {
		if ts[i].SubjectType == "venue" {
			first = &ts[i]
			break
		}
	}
	if first == nil {
		t.Fatal("no warning")
	}
	observedAt := testT0.Add(24*time.Hour + 10*5*time.Minute) // 3000+400×10 = 7000 = 0.7 × capacity
	if !first.Predicted || first.HorizonMin == 0 || !first.EventTime.Before(observedAt) || first.ForecastValue == nil || first.Threshold == nil || *first.ForecastValue < *first.Threshold {
		t.Errorf("first warning %s predicted=%v horizon=%d forecast=%v; want a prediction before %s", first.EventTime, first.Predicted, first.HorizonMin, fmtVal(first.ForecastValue), observedAt)
	}
	t.Logf("warned at %s, %v before the count reached blue: %s", first.EventTime.Format("15:04"), observedAt.Sub(first.EventTime), first.MessageEn)
}

// TestForecastMacro checks crowd_forecast and anomaly_trend against values
// worked out by hand.
func TestForecastMacro(t *testing.T) {
	e := newTestEngine(t, DefaultConfig(), "")
	cases := []struct {
		q    string
		want float64
	}{
		// 100 + 20×0.5³ + 5×0.5×(1−0.5³)/(1−0.5) = 100 + 2.5 + 4.375
		{"SELECT crowd_forecast(100, 20, 5, 3, 0.5, 0.5)", 106.875},
		// no deviation, no trend: the usual count
		{"SELECT crowd_forecast(250, 0, 0, 6, 0.9, 0.8)", 250},
		// never negative
		{"SELECT crowd_forecast(10, -50, -10, 2, 1, 0.5)", 0},
		// ((a0+a1) − (a2+a3)) / 4 = ((40+30) − (20+10)) / 4
		{"SELECT anomaly_trend(40, 30, 20, 10)", 10},
		{"SELECT anomaly_trend(40, 30, NULL, NULL)", 5},
		{"SELECT level_of(0.7, 0.7, 0.8, 0.9, 1.0)", 1},
		{"SELECT level_of(0.6999, 0.7, 0.8, 0.9, 1.0)", 0},
		{"SELECT level_of(1.0, 0.7, 0.8, 0.9, 1.0)", 4},
		{"SELECT hold_of(0.72, 0.7, 0.8, 0.9, 1.0, 0.1)", 2},
		{"SELECT hold_of(0.7199, 0.7, 0.8, 0.9, 1.0, 0.1)", 1},
		// Monday 00:00 Beijing = Sunday 16:00 UTC → slot 0
		{"SELECT slot_of(TIMESTAMP '2026-11-01 16:00:00', 15, 480)", 0},
		{"SELECT slot_of(TIMESTAMP '2026-11-02 02:29:00', 15, 480)", 41}, // Mon 10:29 → 629/15
	}
	for _, c := range cases {
		rows, err := e.Query(context.Background(), c.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := num(rows[0][0]); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s = %v, want %v", c.q, got, c.want)
		}
	}
}

// TestBacktestKnownAnswers: on a series that repeats exactly every week the
// baseline is exact from the second week, so both errors are 0; adding a
// constant +100 on the last day makes the baseline's error exactly 100 and
// the forecaster's smaller (it carries the deviation).
func TestBacktestKnownAnswers(t *testing.T) {
	var pts []Point
	start := testT0
	n := 3 * 7 * 24 * 12
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * 5 * time.Minute)
		v := 1000 + 500*math.Sin(2*math.Pi*float64(i%(24*12))/(24*12))
		if i >= n-24*12 {
			v += 100
		}
		pts = append(pts, Point{"v", at, math.Round(v)})
	}
	cfg := DefaultConfig()
	cfg.Crowd.SlotMinutes = 5
	testFrom := start.Add(time.Duration(n-24*12) * 5 * time.Minute)
	sc, err := Backtest(context.Background(), cfg, pts, []int{15, 30, 60}, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sc {
		if math.Abs(s.BaselineMAE-100) > 1e-6 || math.Abs(s.BaselineRMSE-100) > 1e-6 {
			t.Errorf("%d min: baseline MAE %.3f RMSE %.3f, want exactly 100", s.HorizonMin, s.BaselineMAE, s.BaselineRMSE)
		}
		if s.RMSE >= s.BaselineRMSE || s.N == 0 {
			t.Errorf("%d min: forecaster RMSE %.3f not below the baseline's %.3f (n %d)", s.HorizonMin, s.RMSE, s.BaselineRMSE, s.N)
		}
		t.Logf("%+v", s)
	}
	// No deviation at all: the test day equals the history, both exact.
	flat := append([]Point(nil), pts...)
	for i := n - 24*12; i < n; i++ {
		flat[i].Value -= 100
	}
	sc, err = Backtest(context.Background(), cfg, flat, []int{30}, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	if sc[0].RMSE > 1e-9 || sc[0].BaselineRMSE > 1e-9 {
		t.Errorf("exact weekly repeat: RMSE %.6f baseline %.6f, want 0", sc[0].RMSE, sc[0].BaselineRMSE)
	}
}

// TestRestartResumes: state, lifecycle, sequence and offsets survive a
// restart; a warning is not raised twice; the batch is atomic.
func TestRestartResumes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.duckdb")
	cfg := observedOnly()
	e := newTestEngine(t, cfg, path)
	e.LoadReference(context.Background(), testReference())
	ts := feedVenue(t, e, testT0, []int64{7000})
	if venueTransitions(ts) != "00:00 raised blue" {
		t.Fatalf("got %s", venueTransitions(ts))
	}
	if _, err := e.Process(context.Background(), Batch{Offsets: map[string]map[int]int64{"raw.mobile_signal": {0: 42}}}); err != nil {
		t.Fatal(err)
	}
	e.Close()
	e2 := newTestEngine(t, cfg, path)
	off, err := e2.Offsets(context.Background())
	if err != nil || off["raw.mobile_signal"][0] != 42 {
		t.Fatalf("offsets %v %v", off, err)
	}
	if len(e2.Active()) == 0 {
		t.Fatal("active warnings lost on restart")
	}
	ts = feedVenue(t, e2, testT0.Add(5*time.Minute), []int64{7100, 8000})
	if got := venueTransitions(ts); got != "00:10 escalated yellow" {
		t.Fatalf("after restart: %s (want no second raise)", got)
	}
	var last int64
	for _, tr := range ts {
		last = max(last, tr.Seq)
	}
	out, _ := e2.queue(context.Background(), "outbox", 100)
	if len(out) < 2 || out[len(out)-1].Seq != last {
		t.Errorf("outbox %d rows, last seq %d, want ... %d", len(out), out[len(out)-1].Seq, last)
	}
	// A failing batch changes nothing.
	before := e2.Active()
	bad := Batch{Records: map[string][]schemas.Record{"no_such_input": {{1}}}}
	if _, err := e2.Process(context.Background(), bad); err == nil {
		t.Fatal("bad batch accepted")
	}
	if fmt.Sprint(e2.Active()) != fmt.Sprint(before) {
		t.Error("a failed batch changed the lifecycle")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := DefaultConfig()
	bad.Crowd.DensityPerM2 = Levels{2, 1, 3, 4}
	bad.Webhooks = []Webhook{{Unit: "x", URL: "ftp://x"}}
	bad.Hysteresis = 1
	err := bad.Validate()
	for _, want := range []string{"density_per_m2", "webhooks", "hysteresis"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
}
