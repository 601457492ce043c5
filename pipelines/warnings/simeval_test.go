package warnings

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"citybrain/internal/sim"
)

func simConfig(t *testing.T) sim.Config {
	c := sim.DefaultConfig()
	p, err := filepath.Abs("../../testdata/real/weather/PRSA_Data_Guanyuan_20130301-20170228.csv")
	if err != nil {
		t.Fatal(err)
	}
	c.WeatherFile = p
	return c
}

// TestSimForecastTarget: on the simulator's venues (default seed), two weeks
// of history and one held-out week, the forecaster's RMSE at 30 min is at
// most 0.7× the historical-average baseline's (the target).
// Detection quality needs the full replay: citybrain warnings backtest --source sim.
func TestSimForecastTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("simulates three weeks")
	}
	epoch := time.Date(2026, 10, 5, 0, 0, 0, 0, sim.Shanghai)
	w, err := NewSimWorld(simConfig(t), epoch)
	if err != nil {
		t.Fatal(err)
	}
	pts := w.VenueSeries(epoch, epoch.AddDate(0, 0, 21))
	sc, err := Backtest(context.Background(), DefaultConfig(), pts, []int{15, 30, 60}, epoch.AddDate(0, 0, 14))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sc {
		t.Logf("%+v", s)
		if s.HorizonMin == 30 && !(s.Ratio <= 0.7) {
			t.Errorf("RMSE at 30 min is %.3f× the baseline's, want ≤ 0.7", s.Ratio)
		}
	}
}

// TestSimDetection runs the streaming engine and the shipped rules over ten
// simulated days of venue counts (one micro-batch per 5-min interval) and
// scores the last three: an ordinary Monday with no injected crowd, then
// the crush at Beijing North Railway Station, the night-market crush at
// Dashilar and a trade fair inside capacity at the Exhibition Center. Every
// surge must be warned of at least 15 min before its peak, and no warning
// may be raised otherwise (the ordinary day, the busy event inside capacity).
func TestSimDetection(t *testing.T) {
	if testing.Short() {
		t.Skip("replays ten simulated days through the engine")
	}
	// With the package's other long replays: one core each (make test's time).
	t.Parallel()
	epoch := time.Date(2026, 10, 5, 0, 0, 0, 0, sim.Shanghai) // a Monday
	w, err := NewSimWorld(simConfig(t), epoch)
	if err != nil {
		t.Fatal(err)
	}
	testFrom, to := epoch.AddDate(0, 0, 7), epoch.AddDate(0, 0, 10)
	crowds := map[string]int{}
	for _, in := range w.Sim.Incidents(testFrom, to) {
		crowds[in.Kind]++
		if (in.Kind == sim.KindCrowdSurge || in.Kind == sim.KindCrowdEvent) && in.Start.Before(testFrom.AddDate(0, 0, 1)) {
			t.Fatalf("%s on %v: the first scored day should be an ordinary one", in.ID, in.Start)
		}
	}
	if crowds[sim.KindCrowdSurge] < 2 || crowds[sim.KindCrowdEvent] < 1 {
		t.Fatalf("scored days hold %v, want at least two surges and one busy event", crowds)
	}
	d, err := EvaluateDetection(context.Background(), DefaultConfig(), w, epoch, testFrom, to, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range d.Details {
		t.Log(l)
	}
	t.Logf("recall %.2f (%d/%d), precision %.2f (%d/%d), median lead %.0f min, busy events warned %d/%d",
		d.Recall, d.Detected, d.Surges, d.Precision, d.Matched, d.Episodes, d.MedianLead, d.EventsWarned, d.Events)
	if d.Surges != crowds[sim.KindCrowdSurge] || d.Detected != d.Surges {
		t.Errorf("detected %d of %d surges, want all", d.Detected, d.Surges)
	}
	for _, l := range d.LeadsMin {
		if l < 15 {
			t.Errorf("a surge was warned of %.0f min before its peak, want ≥ 15 (leads %v)", l, d.LeadsMin)
		}
	}
	if d.Episodes != d.Matched {
		t.Errorf("%d of %d warnings overlap no surge (false alarms on the ordinary day or the busy event)", d.Episodes-d.Matched, d.Episodes)
	}
	if d.Events != crowds[sim.KindCrowdEvent] || d.EventsWarned != 0 {
		t.Errorf("warned during %d of %d busy events inside capacity, want none", d.EventsWarned, d.Events)
	}
}
