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
