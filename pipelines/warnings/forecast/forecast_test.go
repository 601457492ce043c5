package forecast

import (
	"encoding/csv"
	"math"
	"os"
	"strconv"
	"testing"
	"time"
)

// realSeries are the project's real hourly counts (testdata/real/crowd,
// see SOURCES.md): Brooklyn Bridge pedestrians, Fremont Bridge bicycles
// east, west and both, in local clock time.
func realSeries(t testing.TB) map[string]Series {
	t.Helper()
	read := func(name string) [][]string {
		f, err := os.Open("../../../testdata/real/crowd/" + name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		recs, err := csv.NewReader(f).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return recs[1:]
	}
	var bk []Point
	for _, r := range read("brooklyn_bridge_pedestrians.csv") {
		at, err := time.Parse(time.DateTime, r[0])
		v, err2 := strconv.ParseFloat(r[1], 64)
		if err == nil && err2 == nil {
			bk = append(bk, Point{at, v})
		}
	}
	var east, west, total []Point
	seen := map[time.Time]bool{}
	for _, r := range read("fremont_bridge_bicycles_hourly.csv") {
		at, err := time.Parse("01/02/2006 03:04:05 PM", r[0])
		if err != nil || seen[at] { // the repeated daylight-saving hour: the first row
			continue
		}
		seen[at] = true
		e, err1 := strconv.ParseFloat(r[1], 64)
		w, err2 := strconv.ParseFloat(r[2], 64)
		if err1 == nil {
			east = append(east, Point{at, e})
		}
		if err2 == nil {
			west = append(west, Point{at, w})
		}
		if err1 == nil && err2 == nil {
			total = append(total, Point{at, e + w})
		}
	}
	return map[string]Series{"brooklyn_total": Regular(bk, time.Hour), "fremont_east": Regular(east, time.Hour),
		"fremont_west": Regular(west, time.Hour), "fremont_total": Regular(total, time.Hour)}
}

// On every real series, 75 % split, horizons 1–3 h (the goals):
// RMSE ≤ 0.85× the reference model's and ≤ 0.5× the historical average's
// at 1 h; the 80 % interval covers 75–85 % of the outcomes.
func TestRealSeries(t *testing.T) {
	for name, s := range realSeries(t) {
		rows, m, err := Evaluate(s, USFederal(2012, 2019), 0.75, []int{1, 2, 3})
		if err != nil {
			t.Fatal(name, err)
		}
		for _, r := range rows {
			t.Logf("%-14s %v n=%d RMSE %.1f ref %.1f HA %.1f → %.3f× ref, %.3f× HA; 80%% interval covers %.1f%% (%+v)",
				name, r.Horizon, r.N, r.RMSE, r.RefRMSE, r.HARMSE, r.VsRef, r.VsHA, 100*r.Coverage, m.Settings)
			if r.VsRef > 0.85 {
				t.Errorf("%s %v: %.3f× the reference model's RMSE, want ≤ 0.85", name, r.Horizon, r.VsRef)
			}
			if r.Coverage < 0.75 || r.Coverage > 0.85 {
				t.Errorf("%s %v: the 80%% interval covers %.1f%%, want 75–85%%", name, r.Horizon, 100*r.Coverage)
			}
			if r.Horizon == time.Hour && r.VsHA > 0.5 {
				t.Errorf("%s 1 h: %.3f× HA, want ≤ 0.5", name, r.VsHA)
			}
		}
	}
}

func TestRegularAndCalendars(t *testing.T) {
	at := func(s string) time.Time { v, _ := time.Parse(time.DateTime, s); return v }
	s := Regular([]Point{{at("2018-11-04 00:00:00"), 5}, {at("2018-11-04 01:00:00"), 3}, {at("2018-11-04 01:00:00"), 4}, {at("2018-11-04 03:00:00"), 7}}, time.Hour)
	if len(s.V) != 4 || s.V[0] != 5 || s.V[1] != 3.5 || !math.IsNaN(s.V[2]) || s.V[3] != 7 {
		t.Errorf("regular series %v: want 5, (3+4)/2 (a repeated hour), a gap, 7", s.V)
	}
	us := USFederal(2018, 2018)
	for _, d := range []string{"2018-01-01", "2018-01-15", "2018-02-19", "2018-05-28", "2018-07-04", "2018-09-03", "2018-11-12", "2018-11-22", "2018-11-23", "2018-12-25"} {
		if !us.Off[d] {
			t.Errorf("%s is not a US federal holiday here", d)
		}
	}
	if len(us.Off) != 11 { // Veterans Day on a Sunday: observed the Monday, both kept
		t.Errorf("%d holidays in 2018: %v", len(us.Off), us.Off)
	}
	cn := Holidays{Off: map[string]bool{"2025-10-01": true}, Work: map[string]bool{"2025-09-28": true}}
	if k := cn.DayKind(at("2025-10-01 10:00:00")); k != 6 {
		t.Errorf("a holiday (a Wednesday) is kind %d, want 6 (Sunday)", k)
	}
	if k := cn.DayKind(at("2025-09-28 10:00:00")); k != 0 {
		t.Errorf("an adjusted working Sunday is kind %d, want 0 (Monday)", k)
	}
}

// A model fitted on a series' first part and then fed the rest count by
// count (as the warning engine feeds it) forecasts exactly as the model
// fitted on the same part of the whole series: nothing after an origin is
// read, and the intervals appended are folded into the usual count as the
// whole series' are.
func TestAppendMatchesBatch(t *testing.T) {
	s := realSeries(t)["fremont_total"]
	s = s.Tail(s.At(len(s.V) - 24*7*20)) // twenty weeks
	trainEnd := len(s.V) * 3 / 4
	hz := []int{1, 2, 3}
	whole, err := Fit(s, Weekdays{}, trainEnd, hz, nil)
	if err != nil {
		t.Fatal(err)
	}
	head := Series{Start: s.Start, Step: s.Step, V: append([]float64(nil), s.V[:trainEnd]...)}
	live, err := Fit(head, Weekdays{}, trainEnd, hz, nil)
	if err != nil {
		t.Fatal(err)
	}
	if live.Settings != whole.Settings {
		t.Fatalf("settings %+v, whole series %+v", live.Settings, whole.Settings)
	}
	compared := 0
	for j := trainEnd; j < len(s.V); j++ {
		if !live.Append(s.At(j), s.V[j], false) {
			t.Fatalf("interval %d not appended", j)
		}
		for _, h := range hz {
			p, lo, hi, ok := live.Forecast(j, h)
			wp, wlo, whi, wok := whole.Forecast(j, h)
			if ok != wok || math.Abs(p-wp) > 1e-9*(1+wp) || math.Abs(lo-wlo) > 1e-9*(1+wlo) || math.Abs(hi-whi) > 1e-9*(1+whi) {
				t.Fatalf("origin %s h=%d: live %v [%v, %v] %v, whole %v [%v, %v] %v", s.At(j), h, p, lo, hi, ok, wp, wlo, whi, wok)
			}
			if ok {
				compared++
			}
		}
	}
	if compared < (len(s.V)-trainEnd)*2 {
		t.Fatalf("only %d forecasts compared", compared)
	}
	// A correction or a late count of an interval already in changes nothing.
	if live.Append(s.At(len(s.V)-3), 1e6, false) {
		t.Fatal("a late count was appended")
	}
	// A gap: the intervals between are missing, the count lands at its time.
	end := live.End()
	if !live.Append(end.Add(3*s.Step), 42, true) || live.Len() != len(s.V)+4 {
		t.Fatalf("after a gap of 3 the series has %d intervals, want %d", live.Len(), len(s.V)+4)
	}
	if v := live.Series().V[len(s.V)]; !math.IsNaN(v) {
		t.Fatalf("gap interval holds %v, want NaN", v)
	}
}

// BenchmarkFitVenue5Min is the warning engine's daily refit of one venue:
// eight weeks of 5-minute counts, horizons 15, 30 and 60 min.
func BenchmarkFitVenue5Min(b *testing.B) {
	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	s := Series{Start: start, Step: 5 * time.Minute, V: make([]float64, 56*288)}
	for i := range s.V {
		h := float64(i%288) / 12
		s.V[i] = 300 + 2500*math.Exp(-math.Pow((h-15)/3.5, 2))*(1+0.1*math.Sin(float64(i)*0.37))
	}
	b.ResetTimer()
	for range b.N {
		if _, err := Fit(s, Weekdays{}, len(s.V), []int{3, 6, 12}, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWeatherCovariates: the Brooklyn Bridge sample carries the hour's
// weather (precipitation, temperature); with rain and temperature at the
// origin as covariates of the correction, the forecaster is scored on the
// same split as without. The figures are in docs/warnings.md.
func TestWeatherCovariates(t *testing.T) {
	f, err := os.Open("../../../testdata/real/crowd/brooklyn_bridge_pedestrians.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var pts []Point
	rain, temp := map[time.Time]float64{}, map[time.Time]float64{}
	for _, r := range recs[1:] {
		at, err := time.Parse(time.DateTime, r[0])
		v, err2 := strconv.ParseFloat(r[1], 64)
		if err != nil || err2 != nil {
			continue
		}
		pts = append(pts, Point{at, v})
		if p, err := strconv.ParseFloat(r[6], 64); err == nil {
			rain[at] = math.Log1p(p * 25.4) // inches → mm, log
		}
		if c, err := strconv.ParseFloat(r[5], 64); err == nil {
			temp[at] = (c - 55) / 20
		}
	}
	s := Regular(pts, time.Hour)
	plain, _, err := Evaluate(s, USFederal(2017, 2019), 0.75, []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	cov := func(m map[time.Time]float64) []float64 {
		out := make([]float64, len(s.V))
		for i := range out {
			v, ok := m[s.At(i)]
			out[i] = map[bool]float64{true: v, false: math.NaN()}[ok]
		}
		return out
	}
	ws := s
	ws.Cov = [][]float64{cov(rain), cov(temp)}
	withW, _, err := Evaluate(ws, USFederal(2017, 2019), 0.75, []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	ws.CovAtTarget = true // the weather of the target hour as a perfect forecast would give it
	withF, _, err := Evaluate(ws, USFederal(2017, 2019), 0.75, []int{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	for k := range plain {
		p, w, wf := plain[k], withW[k], withF[k]
		t.Logf("Brooklyn %d min: RMSE %.1f → with the weather now %.1f, with the target hour's %.1f (× reference %.3f → %.3f, %.3f; × HA %.3f → %.3f, %.3f), coverage %.1f %% → %.1f %%, %.1f %%",
			p.HorizonMin, p.RMSE, w.RMSE, wf.RMSE, p.VsRef, w.VsRef, wf.VsRef, p.VsHA, w.VsHA, wf.VsHA, p.Coverage*100, w.Coverage*100, wf.Coverage*100)
		if w.N != p.N {
			t.Errorf("%d min: %d origins scored with weather, %d without", p.HorizonMin, w.N, p.N)
		}
		if w.VsRef > 0.85 || w.Coverage < 0.75 || w.Coverage > 0.85 {
			t.Errorf("%d min with weather: %.3f × reference, coverage %.3f (goals ≤ 0.85, 0.75–0.85)", p.HorizonMin, w.VsRef, w.Coverage)
		}
	}
}
