package sim

import (
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var truthEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, Shanghai)

var truthWorldOnce = sync.OnceValues(func() (*World, error) { return NewWorld(testConfig(), truthEpoch) })

func truthWorld(t *testing.T) *World {
	t.Helper()
	w, err := truthWorldOnce()
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func newTruth(t *testing.T, cfg TruthConfig) *Truth {
	t.Helper()
	tr, err := NewTruth(truthWorld(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func truthDay(t *Truth, d float64) time.Time {
	return t.epoch.Add(time.Duration(d * 24 * float64(time.Hour)))
}

func corr(x, y []float64) float64 {
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx /= float64(len(x))
	my /= float64(len(y))
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	return sxy / math.Sqrt(sxx*syy)
}

// TestTruthRiskiness: the hidden log-rate correlates with the portrait's
// latent score at ρ, rates average the base rate, and the levels' mean
// rates are ordered when ρ > 0 and about equal at ρ = 0 (the control).
func TestTruthRiskiness(t *testing.T) {
	for _, rho := range []float64{0, 0.5, 0.9} {
		cfg := DefaultTruthConfig()
		cfg.Rho = rho
		tr := newTruth(t, cfg)
		var logRate, score []float64
		byLevel := map[string][]float64{}
		var sum float64
		for _, u := range tr.units {
			logRate = append(logRate, math.Log(u.rate))
			score = append(score, u.score)
			byLevel[u.level] = append(byLevel[u.level], u.rate)
			sum += u.rate
			if tr.Rate(u.id) != u.rate || tr.Level(u.id) != u.level {
				t.Fatal("Rate or Level do not return the unit's")
			}
		}
		if c := corr(logRate, score); math.Abs(c-rho) > 0.03 {
			t.Errorf("ρ %v: corr(log rate, latent score) = %.3f", rho, c)
		}
		if mean := sum / float64(len(tr.units)); math.Abs(mean/tr.MeanRate()-1) > 1e-9 {
			t.Errorf("ρ %v: mean rate %v, want the base rate %v", rho, mean, tr.MeanRate())
		}
		mean := map[string]float64{}
		for lv, rs := range byLevel {
			for _, r := range rs {
				mean[lv] += r / float64(len(rs))
			}
		}
		t.Logf("ρ %v: units per level blue %d yellow %d orange %d red %d; mean rate ×base blue %.2f yellow %.2f orange %.2f red %.2f", rho,
			len(byLevel["blue"]), len(byLevel["yellow"]), len(byLevel["orange"]), len(byLevel["red"]),
			mean["blue"]/tr.rate, mean["yellow"]/tr.rate, mean["orange"]/tr.rate, mean["red"]/tr.rate)
		if rho > 0 && !(mean["red"] > mean["orange"] && mean["orange"] > mean["yellow"] && mean["yellow"] > mean["blue"]) {
			t.Errorf("ρ %v: level means not ordered: %v", rho, mean)
		}
		if rho == 0 {
			for lv, m := range mean {
				if math.Abs(m/tr.rate-1) > 0.25 {
					t.Errorf("ρ 0: level %s mean rate %.2f × the base", lv, m/tr.rate)
				}
			}
		}
	}
}

// TestTruthPoisson: with certain detection and no self-fixing, clearing
// every unit and inspecting again 100 days later finds Σ rate × 100
// hazards (Poisson; ±3 % is many standard deviations), each appeared in
// between.
func TestTruthPoisson(t *testing.T) {
	cfg := DefaultTruthConfig()
	cfg.PDetect, cfg.SelfFixDays, cfg.RatePerDay = 1, 0, 0.01
	tr := newTruth(t, cfg)
	var want float64
	for _, u := range tr.units {
		tr.Inspect(u.id, truthDay(tr, 1))
		want += u.rate * 100
	}
	var got float64
	for _, u := range tr.units {
		for _, h := range tr.Inspect(u.id, truthDay(tr, 101)) {
			got++
			if h.Unit != u.id || !h.Appeared.After(truthDay(tr, 1)) || h.Appeared.After(truthDay(tr, 101)) || !strings.HasPrefix(h.ID, u.id+"#") {
				t.Fatalf("hazard %+v found at day 101 after clearing at day 1", h)
			}
		}
		if len(tr.Present(u.id, truthDay(tr, 101))) != 0 {
			t.Fatalf("unit %s: hazards left after an inspection with p_detect 1", u.id)
		}
	}
	if math.Abs(got/want-1) > 0.03 {
		t.Errorf("found %v hazards in 100 days, expected %.0f", got, want)
	}
}

// TestTruthDetection: an inspection finds about p_detect of the hazards
// present, and the rest stay.
func TestTruthDetection(t *testing.T) {
	tr := newTruth(t, DefaultTruthConfig())
	var present, found, left int
	at := truthDay(tr, 30)
	for _, u := range tr.units {
		present += len(tr.Present(u.id, at))
		found += len(tr.Inspect(u.id, at))
		left += len(tr.Present(u.id, at))
	}
	if present < 5000 || found+left != present {
		t.Fatalf("present %d, found %d, left %d", present, found, left)
	}
	if share := float64(found) / float64(present); math.Abs(share-0.7) > 0.02 {
		t.Errorf("found %.3f of the hazards present, want ≈ 0.7", share)
	}
	if tr.Inspect("no such unit", at) != nil || tr.Rate("no such unit") != 0 {
		t.Error("an unknown unit has hazards")
	}
}

// TestTruthSelfFix: without inspections, the stock settles at rate ×
// SelfFixDays per unit.
func TestTruthSelfFix(t *testing.T) {
	cfg := DefaultTruthConfig()
	cfg.SelfFixDays, cfg.RatePerDay = 30, 0.01
	tr := newTruth(t, cfg)
	var got, want float64
	for _, u := range tr.units {
		got += float64(len(tr.Present(u.id, truthDay(tr, 400))))
		want += u.rate * 30
	}
	if math.Abs(got/want-1) > 0.05 {
		t.Errorf("stock after 400 days %v, want ≈ %.0f", got, want)
	}
}

// TestTruthReproducesHistory: inspecting every unit every T days (the
// history's mean interval) finds, once settled, the history's hazards per
// inspection — BaseRate's calibration — with and without self-fixing.
func TestTruthReproducesHistory(t *testing.T) {
	w := truthWorld(t)
	ins := w.Tables["inspections"]
	var h float64
	for _, row := range ins.Rows {
		n, err := strconv.Atoi(row[slices.Index(ins.Cols, "hazards_found")])
		if err != nil {
			t.Fatal(err)
		}
		h += float64(n)
	}
	h /= float64(len(ins.Rows))
	T := 365 * float64(len(w.Units)) / float64(len(ins.Rows))
	for _, fix := range []float64{180, 0} {
		cfg := DefaultTruthConfig()
		cfg.SelfFixDays = fix
		tr := newTruth(t, cfg)
		var found, n float64
		for k := 1; k <= 6; k++ {
			for _, u := range tr.units {
				f := tr.Inspect(u.id, truthDay(tr, float64(k)*T))
				if k >= 4 {
					found += float64(len(f))
					n++
				}
			}
		}
		t.Logf("self-fix %v days: base rate %.5f/day, found %.3f per inspection every %.0f days; history %.3f", fix, tr.MeanRate(), found/n, T, h)
		if math.Abs(found/n/h-1) > 0.05 {
			t.Errorf("self-fix %v: %.3f found per inspection, the history %.3f", fix, found/n, h)
		}
	}
}

// TestTruthDeterministic: the same seed gives the same truth; hazards
// appear at the same times whatever the inspections.
func TestTruthDeterministic(t *testing.T) {
	cfg := DefaultTruthConfig()
	cfg.SelfFixDays = 0
	a, b := newTruth(t, cfg), newTruth(t, cfg)
	if !reflect.DeepEqual(a.Present("E000123", truthDay(a, 50)), b.Present("E000123", truthDay(b, 50))) {
		t.Fatal("same seed, different hazards")
	}
	// a is inspected monthly, b not: b's stock at the end is what a found
	// plus what a still holds.
	for _, u := range a.units[:2000] {
		seen := map[string]time.Time{}
		for m := 1; m <= 12; m++ {
			for _, h := range a.Inspect(u.id, truthDay(a, float64(30*m))) {
				seen[h.ID] = h.Appeared
			}
		}
		for _, h := range a.Present(u.id, truthDay(a, 365)) {
			seen[h.ID] = h.Appeared
		}
		all := b.Present(u.id, truthDay(b, 365))
		if len(all) != len(seen) {
			t.Fatalf("unit %s: %d hazards uninspected, %d inspected monthly", u.id, len(all), len(seen))
		}
		for _, h := range all {
			if at, ok := seen[h.ID]; !ok || !at.Equal(h.Appeared) {
				t.Fatalf("unit %s: hazard %+v not the same under inspection", u.id, h)
			}
		}
	}
	cfg.Seed++
	c := newTruth(t, cfg)
	if reflect.DeepEqual(a.Rate("E000123"), c.Rate("E000123")) {
		t.Error("another seed gave the same riskiness")
	}
}

func TestInherentLevels(t *testing.T) {
	w := &World{Units: []Unit{{ID: "A"}, {ID: "B"}, {ID: "C"}, {ID: "D"}, {ID: "E"}},
		Tables: map[string]*Table{"risk_sources": {Cols: []string{"id", "enterprise_id", "lec_l", "lec_e", "lec_c"}, Rows: [][]string{
			{"R1", "A", "1", "10", "7"},  // D = 70: blue (the model's threshold is > 70)
			{"R2", "B", "3", "3", "15"},  // 135: yellow
			{"R3", "C", "10", "6", "3"},  // 180: orange
			{"R4", "C", "0.5", "1", "1"}, // the highest level counts
			{"R5", "D", "10", "10", "7"}, // 700: red
			{"R6", "D", "10", "6", "3"},  // orange, lower
		}}}}
	want := map[string]string{"A": "blue", "B": "yellow", "C": "orange", "D": "red", "E": "blue"}
	if got := w.InherentLevels(); !reflect.DeepEqual(got, want) {
		t.Errorf("levels %v, want %v", got, want)
	}
	// The generated world: every holder of a source with D > 320 is red;
	// only holders are above blue.
	levels := truthWorld(t).InherentLevels()
	n := map[string]int{}
	for _, u := range truthWorld(t).Units {
		n[levels[u.ID]]++
		if !u.Risk && levels[u.ID] != "blue" {
			t.Fatalf("unit %s holds no risk source but is %s", u.ID, levels[u.ID])
		}
	}
	t.Logf("inherent levels at scale 1: %v", n)
	if n["red"] == 0 || n["orange"] == 0 || n["yellow"] == 0 || n["blue"] < 17850 {
		t.Errorf("levels %v", n)
	}
}

func TestTruthConfigValidate(t *testing.T) {
	for _, c := range []struct {
		change func(*TruthConfig)
		want   string
	}{
		{func(c *TruthConfig) { c.Rho = 1.5 }, "rho 1.5"},
		{func(c *TruthConfig) { c.Sigma = -1 }, "sigma -1"},
		{func(c *TruthConfig) { c.PDetect = 0 }, "p_detect 0"},
		{func(c *TruthConfig) { c.SelfFixDays = math.NaN() }, "self_fix_days NaN"},
		{func(c *TruthConfig) { c.RatePerDay = -0.1 }, "rate_per_day -0.1"},
	} {
		cfg := DefaultTruthConfig()
		c.change(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", cfg, err, c.want)
		}
		if _, err := NewTruth(truthWorld(t), cfg); err == nil {
			t.Errorf("%+v: NewTruth accepted it", cfg)
		}
	}
	if err := DefaultTruthConfig().Validate(); err != nil {
		t.Error(err)
	}
}
