package warnings

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"citybrain/schemas"
)

const guanyuan = "../../testdata/real/weather/PRSA_Data_Guanyuan_20130301-20170228.csv"

// The 20 July 2016 storm in the real Guanyuan record, checked by hand
// against the file's hourly RAIN column (Beijing time):
//
//	10:00 6 h sum 05–10 = 3.5+3.6+2.2+5.3+13.8+23.7 = 52.1 ≥ 50 → yellow (3 h = 42.8 < 50)
//	11:00 3 h sum 09–11 = 13.8+23.7+24.1 = 61.6 ≥ 50 → orange (max 3 h all day 68.1 < 100: never red)
//	17:00 3 h = 9+16.4+3.8 = 29.2 < 45 (orange × 0.9 hysteresis) → low; 18:00 still 37.9 → lowered to yellow
//	20:00 3 h = 18.3+17.7+17.6 = 53.6 → escalated to orange
//	21:00 43.5 < 45 low; 22:00 27.5 → lowered to yellow (6 h 67.3)
//	21 Jul 01:00 6 h = 30.9 < 45 low; 02:00 13.9 → lowered to blue (12 h 116.3)
//	07:00 12 h = 33.4 < 45 low; 08:00 → cleared
func TestRainstormHandCheckedSlice(t *testing.T) {
	reg, _ := schemas.Builtin()
	s, _ := reg.Get("weather")
	recs, err := ReadPRSA(guanyuan, s)
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2016, 7, 18, 0, 0, 0, 0, Beijing)
	to := time.Date(2016, 7, 23, 0, 0, 0, 0, Beijing)
	var slice []schemas.Record
	for _, r := range recs {
		at := r[s.Index("observed_at")].(time.Time)
		if !at.Before(from) && at.Before(to) {
			slice = append(slice, r)
		}
	}
	if len(slice) != 5*24 {
		t.Fatalf("slice has %d hours, want 120", len(slice))
	}
	eps, err := RainstormBacktest(context.Background(), DefaultConfig(), reg, slice, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 1 {
		t.Fatalf("%d episodes, want 1: %+v", len(eps), eps)
	}
	got := strings.Join(eps[0].Transitions, "; ")
	want := "07-20 10:00 raised yellow; 07-20 11:00 escalated orange; 07-20 18:00 lowered yellow; 07-20 20:00 escalated orange; " +
		"07-20 22:00 lowered yellow; 07-21 02:00 lowered blue; 07-21 08:00 cleared blue"
	if got != want {
		t.Errorf("transitions\n got %s\nwant %s", got, want)
	}
	if eps[0].MaxLevel != "orange" || fmt.Sprintf("%.1f", eps[0].Peak3h) != "68.1" {
		t.Errorf("max level %s, peak 3 h %.1f; want orange, 68.1", eps[0].MaxLevel, eps[0].Peak3h)
	}
}

// TestRainstormThresholds: each signal level at exactly its threshold, and just below.
func TestRainstormThresholds(t *testing.T) {
	reg, _ := schemas.Builtin()
	s, _ := reg.Get("weather")
	base := time.Date(2020, 7, 1, 0, 0, 0, 0, time.UTC)
	rec := func(h int, mm float64) schemas.Record {
		r := make(schemas.Record, len(s.Fields))
		r[s.Index("station")], r[s.Index("observed_at")], r[s.Index("rain_mm")] = "X", base.Add(time.Duration(h)*time.Hour), mm
		return r
	}
	cases := []struct {
		name  string
		rain  []float64 // hourly, the level is read at the last hour
		level string
	}{
		{"12h 50mm blue", []float64{5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 0, 0}, "blue"},
		{"12h 49.9mm none", []float64{5, 5, 5, 5, 5, 5, 5, 5, 5, 4.9, 0, 0}, ""},
		{"6h 50mm yellow", []float64{0, 0, 0, 0, 0, 0, 10, 10, 10, 10, 5, 5}, "yellow"},
		{"3h 50mm orange", []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 20, 20, 10}, "orange"},
		{"3h 99.9mm orange", []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 40, 40, 19.9}, "orange"},
		{"3h 100mm red", []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 40, 40, 20}, "red"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newTestEngine(t, DefaultConfig(), "")
			var recs []schemas.Record
			for h, mm := range c.rain {
				recs = append(recs, rec(h, mm))
			}
			if _, err := e.Process(context.Background(), Batch{Records: map[string][]schemas.Record{"weather": recs}}); err != nil {
				t.Fatal(err)
			}
			got := ""
			for _, a := range e.Active() {
				got = a.Level
			}
			if got != c.level {
				t.Errorf("level %q, want %q", got, c.level)
			}
		})
	}
}

func TestRainstormGuanyuanEpisodes(t *testing.T) {
	if testing.Short() {
		t.Skip("replays four years of hourly rain")
	}
	reg, _ := schemas.Builtin()
	s, _ := reg.Get("weather")
	recs, err := ReadPRSA(guanyuan, s)
	if err != nil {
		t.Fatal(err)
	}
	eps, err := RainstormBacktest(context.Background(), DefaultConfig(), reg, recs, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	// docs/warnings.md lists these episodes; the list must stay true.
	if len(eps) != 6 {
		t.Errorf("%d episodes, want the 6 listed in docs/warnings.md", len(eps))
	}
	for _, ep := range eps {
		t.Logf("%s %s→%s first=%s max=%s 3h=%.1f 6h=%.1f 12h=%.1f", ep.Station, ep.Start.In(Beijing).Format("2006-01-02 15:04"), ep.End.In(Beijing).Format("01-02 15:04"), ep.FirstLevel, ep.MaxLevel, ep.Peak3h, ep.Peak6h, ep.Peak12h)
	}
}
