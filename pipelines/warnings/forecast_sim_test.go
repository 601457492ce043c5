package warnings

import (
	"math"
	"strings"
	"testing"
	"time"

	"citybrain/internal/sim"
	"citybrain/pipelines/warnings/forecast"
)

// The per-site forecaster (pipelines/warnings/forecast) on the simulator's
// venues (5-min counts, 21 days, fitted on the first two weeks, scored on
// the third): the goal, 30-min RMSE ≤ 0.7× the historical average.
func TestForecastOnSim(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates three weeks of 18 venues: skipped with -short")
	}
	sc := sim.DefaultConfig()
	sc.WeatherFile = "../../testdata/real/weather/PRSA_Data_Guanyuan_20130301-20170228.csv"
	epoch := time.Date(2026, 10, 5, 0, 0, 0, 0, sim.Shanghai)
	w, err := NewSimWorld(sc, epoch)
	if err != nil {
		t.Fatal(err)
	}
	pts := w.VenueSeries(epoch, epoch.AddDate(0, 0, 21))
	by := map[string][]forecast.Point{}
	for _, p := range pts {
		l := p.At.In(sim.Shanghai)
		by[p.Subject] = append(by[p.Subject], forecast.Point{At: time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), 0, 0, time.UTC), Value: p.Value})
	}
	var se, seHA, seRef [3]float64
	var n [3]int
	for v, ps := range by {
		s := forecast.Regular(ps, w.Interval)
		rows, _, err := forecast.Evaluate(s, forecast.Weekdays{}, 2.0/3, []int{3, 6, 12})
		if err != nil {
			t.Fatal(v, err)
		}
		for i, r := range rows {
			se[i] += r.RMSE * r.RMSE * float64(r.N)
			seHA[i] += r.HARMSE * r.HARMSE * float64(r.N)
			seRef[i] += r.RefRMSE * r.RefRMSE * float64(r.N)
			n[i] += r.N
		}
	}
	for i, h := range []int{15, 30, 60} {
		vsHA, vsRef := math.Sqrt(se[i]/seHA[i]), math.Sqrt(se[i]/seRef[i])
		t.Logf("%d min: RMSE %.3f× HA, %.3f× the reference (n %d)", h, vsHA, vsRef, n[i])
		if h == 30 && vsHA > 0.7 {
			t.Errorf("30 min: %.3f× HA, want ≤ 0.7", vsHA)
		}
	}
}

// warnings.crowd.holidays and workdays make the forecaster's calendar; a
// date that is not one is refused with its key.
func TestCrowdCalendarConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Crowd.Holidays = []string{"2025-10-01", "2025-10-02"}
	cfg.Crowd.Workdays = []string{"2025-09-28"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cal := cfg.Crowd.Calendar()
	for d, want := range map[string]int{"2025-10-01": 6, "2025-10-02": 6, "2025-09-28": 0, "2025-10-03": 4} {
		day, _ := time.Parse(time.DateOnly, d)
		if got := cal.DayKind(day); got != want {
			t.Errorf("%s: day kind %d, want %d", d, got, want)
		}
	}
	cfg.Crowd.Workdays = []string{"2025/09/28"}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "warnings.crowd.workdays") {
		t.Errorf("a bad date: %v", err)
	}
}
