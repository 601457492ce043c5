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
