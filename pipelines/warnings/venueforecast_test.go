package warnings

import (
	"context"
	"math"
	"math/rand"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"citybrain/schemas"
)

// venueCounts are a venue's counts every 5 min from start: a busy
// afternoon and evening, busier at weekends, each day busier or quieter as
// a whole, and each day a short rush (a crowd building up for half an hour
// and leaving) at a random hour — seeded.
func venueCounts(start time.Time, n int, seed int64) []int64 {
	rng := rand.New(rand.NewSource(seed))
	out := make([]int64, n)
	var dayF, rush float64
	rushAt := -1
	for i := range out {
		l := start.Add(time.Duration(i)*5*time.Minute + 8*time.Hour)
		if i == 0 || (l.Hour() == 0 && l.Minute() == 0) {
			dayF = math.Exp(0.15 * rng.NormFloat64())
			rushAt = i + (10+rng.Intn(9))*12 - (l.Hour()*12 + l.Minute()/5)
		}
		h := float64(l.Hour()) + float64(l.Minute())/60
		day := 1.0
		if wd := l.Weekday(); wd == time.Saturday || wd == time.Sunday {
			day = 1.4
		}
		switch k := i - rushAt; {
		case k >= 0 && k < 6:
			rush = 1 + 0.3*float64(k+1)
		case k >= 6 && k < 18:
			rush = 1 + 1.8*float64(18-k)/12
		default:
			rush = 1
		}
		v := (300 + day*2500*math.Exp(-math.Pow((h-15)/3.5, 2))) * dayF * rush
		out[i] = int64(v * (1 + 0.05*rng.NormFloat64()))
	}
	return out
}

func countBatch(start time.Time, counts []int64) Batch {
	var recs []schemas.Record
	for i, n := range counts {
		recs = append(recs, countRec("V1", start.Add(time.Duration(i)*5*time.Minute), "total", n))
	}
	return Batch{Records: map[string][]schemas.Record{"crowd_counts": recs}}
}

type vfRow struct {
	at            time.Time
	horizon       int64
	p50, p10, p90 float64
}

func venueForecasts(t *testing.T, e *Engine) map[[2]int64]vfRow {
	t.Helper()
	rows, err := e.Query(context.Background(), "SELECT window_start, horizon_min, p50, p10, p90 FROM venue_forecast_in WHERE venue_id = 'V1'")
	if err != nil {
		t.Fatal(err)
	}
	out := map[[2]int64]vfRow{}
	for _, r := range rows {
		v := vfRow{at: r[0].(time.Time), horizon: int64(r[1].(int32)), p50: r[2].(float64), p10: r[3].(float64), p90: r[4].(float64)}
		out[[2]int64{v.at.Unix(), v.horizon}] = v
	}
	return out
}

// TestVenueForecasterInEngine: the venue-count rule forecasts by the model
// fitted on the venue's own history (venueforecast.go) once the venue has
// min_history_days of counts — caught up in bulk or live, after a restart,
// the same numbers —, with an 80 % interval around the point, and a
// predicted warning says how likely the crowd reaches the threshold.
func TestVenueForecasterInEngine(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Crowd.Forecaster.HistoryDays = 21
	ctx := context.Background()
	days := 16
	all := venueCounts(testT0, days*288+36, 7)
	hist := all[:days*288]
	live0 := testT0.Add(time.Duration(len(hist)) * 5 * time.Minute) // Wednesday 08:00 local
	live := all[len(hist):]
	dir := t.TempDir()
	open := func(name string) *Engine {
		e := newTestEngine(t, cfg, filepath.Join(dir, name))
		if err := e.LoadReference(ctx, testReference()); err != nil {
			t.Fatal(err)
		}
		e.vf.sync = name != "d.duckdb"
		return e
	}
	// History in day-sized catch-up batches (the bulk rules).
	feedHistory := func(e *Engine) {
		for d := 0; d < days; d++ {
			if _, err := e.Process(ctx, countBatch(testT0.Add(time.Duration(d)*24*time.Hour), hist[d*288:(d+1)*288])); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A: live, one interval per batch.
	a := open("a.duckdb")
	feedHistory(a)
	if a.vf.fits == 0 {
		t.Fatal("no venue model fitted after 16 days of counts (min_history_days 14)")
	}
	liveRows := map[[2]int64]vfRow{}
	for i, n := range live {
		if _, err := a.Process(ctx, countBatch(live0.Add(time.Duration(i)*5*time.Minute), []int64{n})); err != nil {
			t.Fatal(err)
		}
		for k, v := range venueForecasts(t, a) {
			liveRows[k] = v
		}
	}
	if len(liveRows) != len(live)*len(cfg.Crowd.Horizons) {
		t.Fatalf("%d live forecasts, want %d (every interval, every horizon)", len(liveRows), len(live)*len(cfg.Crowd.Horizons))
	}
	var errSum, sum float64
	for _, v := range liveRows {
		if !(v.p10 <= v.p50 && v.p50 <= v.p90) || v.p90-v.p10 <= 0 {
			t.Fatalf("forecast %+v: want p10 ≤ p50 ≤ p90 and an interval of some width", v)
		}
		j := int(v.at.Add(time.Duration(v.horizon)*time.Minute).Sub(live0) / (5 * time.Minute))
		if j < len(live) {
			errSum += math.Abs(v.p50 - float64(live[j]))
			sum += float64(live[j])
		}
	}
	if rel := errSum / sum; rel > 0.15 {
		t.Errorf("forecasts off the counts by %.0f %% on average, want ≤ 15 %%", rel*100)
	}
	// B: the same intervals in one catch-up batch give the same forecasts.
	b := open("b.duckdb")
	feedHistory(b)
	if _, err := b.Process(ctx, countBatch(live0, live)); err != nil {
		t.Fatal(err)
	}
	bulkRows := venueForecasts(t, b)
	for k, v := range liveRows {
		w, ok := bulkRows[k]
		if !ok || math.Abs(w.p50-v.p50) > 1e-6 || math.Abs(w.p10-v.p10) > 1e-6 || math.Abs(w.p90-v.p90) > 1e-6 {
			t.Fatalf("%s +%d min: live %+v, bulk %+v (%v)", v.at, v.horizon, v, w, ok)
		}
	}
	// C: a restart between history and the live intervals (the models come
	// back from venue_count_history) gives the same forecasts.
	c := open("c.duckdb")
	feedHistory(c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open("c.duckdb")
	if _, err := c.Process(ctx, countBatch(live0, live[:1])); err != nil {
		t.Fatal(err)
	}
	for k, w := range venueForecasts(t, c) {
		v := liveRows[k]
		if math.Abs(w.p50-v.p50) > 1e-6 || math.Abs(w.p90-v.p90) > 1e-6 {
			t.Fatalf("after a restart %s +%d min: %+v, without %+v", w.at, w.horizon, w, v)
		}
	}
	// D: fitted in the background (as serve runs it): once the fits are
	// taken, the same forecasts.
	d := open("d.duckdb")
	feedHistory(d)
	d.vf.wait()
	if _, err := d.Process(ctx, countBatch(live0, live[:1])); err != nil {
		t.Fatal(err)
	}
	for k, w := range venueForecasts(t, d) {
		v := liveRows[k]
		if math.Abs(w.p50-v.p50) > 1e-6 || math.Abs(w.p90-v.p90) > 1e-6 {
			t.Fatalf("fitted in the background %s +%d min: %+v, in the batch %+v", w.at, w.horizon, w, v)
		}
	}
	// A crowd building up fast towards capacity (10,000): warned ahead, with
	// the odds and the interval.
	var surge []int64
	for i := 0; i < 8; i++ {
		surge = append(surge, 3000+int64(i)*700)
	}
	var predicted *Transition
	for i, n := range surge {
		ts, err := a.Process(ctx, countBatch(live0.Add(time.Duration(len(live)+i)*5*time.Minute), []int64{n}))
		if err != nil {
			t.Fatal(err)
		}
		for j := range ts {
			if ts[j].SubjectID == "V1" && ts[j].Predicted && predicted == nil {
				predicted = &ts[j]
			}
		}
	}
	if predicted == nil {
		t.Fatal("no predicted warning for a crowd building up towards capacity")
	}
	p, ok := predicted.Details["exceed_probability"].(float64)
	lo, ok1 := predicted.Details["forecast_p10"].(float64)
	hi, ok2 := predicted.Details["forecast_p90"].(float64)
	if !ok || !ok1 || !ok2 || p <= 0 || p > 1 || lo >= hi {
		t.Fatalf("predicted warning details %v: want exceed_probability in (0, 1] and forecast_p10 < forecast_p90", predicted.Details)
	}
	t.Logf("predicted %s at %s: %s", predicted.Level, predicted.EventTime.Add(8*time.Hour).Format("15:04"), predicted.MessageEn)
}

// The forecaster's settings are checked: two weeks of history at least,
// horizons in whole intervals.
func TestForecasterConfig(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	c := DefaultConfig()
	c.Crowd.Forecaster.MinHistoryDays = 7
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "min_history_days") {
		t.Errorf("min_history_days 7: %v", err)
	}
	c = DefaultConfig()
	c.Crowd.Horizons = []int{15, 32}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "32 min") {
		t.Errorf("a 32-min horizon at 5-min intervals: %v", err)
	}
	c = DefaultConfig()
	c.Crowd.Forecaster.Enabled = false
	c.Crowd.Forecaster.MinHistoryDays = 0
	if err := c.Validate(); err != nil {
		t.Errorf("disabled forecaster's settings are not checked: %v", err)
	}
}

// The odds' macros: a horizon the model gave no forecast for (its p10, p50
// or p90 NULL) has no interval and no probability — not 0–0 people and
// 100 % (DuckDB's greatest skips NULLs); with one, the probability is ½
// at p50, small far above p90, large far below p10.
func TestOddsMacros(t *testing.T) {
	e := newTestEngine(t, DefaultConfig(), "")
	rows, err := e.Query(context.Background(), `SELECT interval_at(1000, NULL, 900), interval_at(1000, 800, NULL),
		exceed_probability(1000, NULL, 900, 1100), exceed_probability(1000, 800, NULL, 1100), exceed_probability(NULL, 800, 900, 1100),
		round(exceed_probability(900, 800, 900, 1000), 3), exceed_probability(5000, 800, 900, 1000), exceed_probability(100, 800, 900, 1000),
		interval_at(1000, 800, 900)`)
	if err != nil {
		t.Fatal(err)
	}
	r := rows[0]
	for i := 0; i < 5; i++ {
		if r[i] != nil {
			t.Errorf("column %d: %v, want NULL (no forecast)", i+1, r[i])
		}
	}
	if r[5].(float64) != 0.5 || r[6].(float64) > 0.01 || r[7].(float64) < 0.99 {
		t.Errorf("probabilities at p50, far above, far below: %v %v %v", r[5], r[6], r[7])
	}
	if v := r[8].(float64); math.Abs(v-(1001.0*801/901-1)) > 1e-9 {
		t.Errorf("interval_at(1000, 800, 900) = %v", v)
	}
}
