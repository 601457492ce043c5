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

func TestSimForecastAndDetection(t *testing.T) {
	if testing.Short() {
		t.Skip("long: replays simulated weeks")
	}
	ctx := context.Background()
	epoch := time.Date(2026, 10, 5, 0, 0, 0, 0, sim.Shanghai)
	w, err := NewSimWorld(simConfig(t), epoch)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("venues %d, venue cells %d", len(w.Ref.Venues), len(w.cells))
	from, testFrom, to := epoch, epoch.AddDate(0, 0, 14), epoch.AddDate(0, 0, 21)
	start := time.Now()
	pts := w.VenueSeries(from, to)
	t.Logf("series %d points in %v", len(pts), time.Since(start))
	cfg := DefaultConfig()
	sc, err := Backtest(ctx, cfg, pts, []int{15, 30, 60}, testFrom)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sc {
		t.Logf("%+v", s)
	}
	start = time.Now()
	d, err := EvaluateDetection(ctx, cfg, w, from, testFrom, to, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("detection in %v: %+v", time.Since(start), d)
}
