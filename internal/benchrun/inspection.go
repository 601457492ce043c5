package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"citybrain/internal/sim"
	"citybrain/pipelines/inspection"
)

// Does risk weighting help? (issue 25, docs/inspection.md): a simulated
// year of monthly plans, the risk-weighted draw against a uniform random
// one of the same size, on the simulator's hidden truth.
func init() {
	registerSuite(Suite{
		Name: "inspection",
		Doc: `A simulated year (12 months from 2026-01) on the simulator's world at scale 1 (24,000 units, 829 inspectors).
Each month two plans of the same size: the risk-weighted one (pipelines/inspection.Draw: levels = the units' inherent
portrait level from their risk sources, recent hazards = found by this simulation in the last 90 days, last inspection and
inspector from it; the world's history before 2026) and a uniform random one (every unit equally likely, inspectors per
street drawn the same way). Budget: the world's own inspection rate, its inspections of the year before / 12. Inspectors
take leave (30 % of them a block of 1–5 days a month). Hidden truth (internal/sim/truth.go, DefaultTruthConfig): hidden
log-riskiness with correlation ρ to the portrait's latent score, σ 1; hazards appear as a Poisson process at a mean
rate that reproduces the history's hazards per inspection; an inspection finds each with p 0.7; units fix an unfound one
themselves after 180 days on average. Both plans face the same hazard arrivals (same truth seed). Conditions: ρ 0.5,
ρ 0 (the control: weighting should gain little), and ρ 0.5 with hazards staying until found. Goal: ≥ 2× hazards found
per inspection (weighted / uniform), coverage rules met.`,
		Reproduce: "go run ./internal/benchrun -suite inspection -out /tmp/bench-inspection",
		Run:       runInspectionBench,
	})
}

// inspectionEpoch is the start of the simulated year (the world's history
// ends there).
var inspectionEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, sim.Shanghai)

// inspectionArm is what one kind of plan achieved over the simulation.
type inspectionArm struct {
	Inspections, Unassigned int
	Found                   int
	DaysToFind              float64 // sum over found hazards
	Inspected               map[string]bool
	RedCases, RedMet        int // red unit-months, inspected that month
	OrangeCases, OrangeMet  int // orange unit-quarters, inspected in the quarter
	LatentAtEnd             int
	ByReason                map[string][2]int // visit reason → inspections, hazards found
}

func (a *inspectionArm) per100() float64   { return 100 * float64(a.Found) / float64(a.Inspections) }
func (a *inspectionArm) meanDays() float64 { return a.DaysToFind / float64(a.Found) }

// inspectionOutcome is one simulated run.
type inspectionOutcome struct {
	Budget, HistoryInspections int
	Units, Inspectors          int
	Levels                     map[string]int
	BaseRate                   float64
	Weighted, Uniform          inspectionArm
}

// armState is one arm's view of the world as the simulation goes.
type armState struct {
	truth  *sim.Truth
	last   map[string]time.Time
	lastBy map[string]string
	found  map[string][]time.Time // when hazards were found, per unit
	res    inspectionArm
}

func runInspectionBench(ctx context.Context, _ string) []Result {
	w, err := sim.NewWorld(sim.DefaultConfig(), inspectionEpoch)
	if err != nil {
		return []Result{{Name: "inspection", Status: "failed", Reason: err.Error(), Unit: "hazards/100 inspections"}}
	}
	var out []Result
	for _, c := range []struct {
		name string
		cfg  func(*sim.TruthConfig)
	}{
		{"ρ=0.5", func(*sim.TruthConfig) {}},
		{"ρ=0 (control)", func(c *sim.TruthConfig) { c.Rho = 0 }},
		{"ρ=0.5, hazards stay until found", func(c *sim.TruthConfig) { c.SelfFixDays = 0 }},
	} {
		if ctx.Err() != nil {
			break
		}
		tc := sim.DefaultTruthConfig()
		c.cfg(&tc)
		start := time.Now()
		o, err := simulateInspections(w, tc, 12)
		if err != nil {
			out = append(out, Result{Name: "inspection/" + c.name, Status: "failed", Reason: err.Error(), Unit: "hazards/100 inspections"})
			continue
		}
		logf("=== inspection/%s: weighted %.1f, uniform %.1f hazards/100 inspections (%.1fs)", c.name, o.Weighted.per100(), o.Uniform.per100(), time.Since(start).Seconds())
		out = append(out, inspectionResults(c.name, tc, o)...)
	}
	return out
}

func inspectionResults(cond string, tc sim.TruthConfig, o *inspectionOutcome) []Result {
	wt, un := &o.Weighted, &o.Uniform
	ratio := wt.per100() / un.per100()
	goal := "goal ≥ 2×: met"
	if ratio < 2 {
		goal = "goal ≥ 2×: NOT met"
	}
	fix := fmt.Sprintf("self-fix %.0f days", tc.SelfFixDays)
	if tc.SelfFixDays == 0 {
		fix = "no self-fix"
	}
	setting := fmt.Sprintf("truth ρ %.1f, σ %.1f, p_detect %.1f, %s, %.5f hazards/unit/day (from the history); budget %d/month (history: %d inspections in the year before / 12); %d units (red %d, orange %d, yellow %d, blue %d), %d inspectors",
		tc.Rho, tc.Sigma, tc.PDetect, fix, o.BaseRate, o.Budget, o.HistoryInspections, o.Units, o.Levels["red"], o.Levels["orange"], o.Levels["yellow"], o.Levels["blue"], o.Inspectors)
	counts := fmt.Sprintf("weighted: %d inspections, %d hazards found; uniform: %d inspections, %d found; unassigned visits %d / %d",
		wt.Inspections, wt.Found, un.Inspections, un.Found, wt.Unassigned, un.Unassigned)
	counts += "; weighted plan by reason (hazards/100 inspections, inspections):"
	for _, reason := range []string{inspection.ReasonRed, inspection.ReasonOrange, inspection.ReasonRandom, inspection.ReasonWeighted} {
		br := wt.ByReason[reason]
		if br[0] > 0 {
			counts += fmt.Sprintf(" %s %.1f (%d)", reason, 100*float64(br[1])/float64(br[0]), br[0])
		}
	}
	anchor := func(fig float64, unit string, ours float64) *Anchor {
		a := &Anchor{Name: "uniform random plan (same budget)", Figure: fig, Unit: unit}
		if fig != 0 {
			a.Ratio = ours / fig
		}
		return a
	}
	share := func(met, cases int) float64 {
		if cases == 0 {
			return 0
		}
		return 100 * float64(met) / float64(cases)
	}
	r := func(what, unit string, ours, theirs float64, note string) Result {
		return Result{Name: "inspection/" + cond + ": " + what, Status: "ok", Figure: ours, Unit: unit, Rows: int64(wt.Inspections),
			Anchor: anchor(theirs, unit, ours), Reason: note}
	}
	never := func(a *inspectionArm) float64 { return float64(o.Units - len(a.Inspected)) }
	return []Result{
		r("hazards found per 100 inspections, risk-weighted", "hazards/100 inspections", wt.per100(), un.per100(), goal+"; "+counts+"; "+setting),
		r("mean days from a hazard's appearance to its discovery", "days", wt.meanDays(), un.meanDays(), "over the hazards found in the year"),
		r("units never inspected in the year", "units", never(wt), never(un), fmt.Sprintf("of %d", o.Units)),
		r("red units inspected each month", "% of unit-months", share(wt.RedMet, wt.RedCases), share(un.RedMet, un.RedCases), fmt.Sprintf("%d red unit-months", wt.RedCases)),
		r("orange units inspected each quarter", "% of unit-quarters", share(wt.OrangeMet, wt.OrangeCases), share(un.OrangeMet, un.OrangeCases), fmt.Sprintf("%d orange unit-quarters", wt.OrangeCases)),
		r("hazards latent at the end of the year", "hazards", float64(wt.LatentAtEnd), float64(un.LatentAtEnd), "present, unfound, on the last day"),
	}
}

// simulateInspections runs months of monthly plans from inspectionEpoch on
// w, each arm against its own copy of the truth tc (the same arrivals).
func simulateInspections(w *sim.World, tc sim.TruthConfig, months int) (*inspectionOutcome, error) {
	levels := w.InherentLevels()
	o := &inspectionOutcome{Units: len(w.Units), Levels: map[string]int{}}
	for _, lv := range levels {
		o.Levels[lv]++
	}
	hist, err := inspectionHistory(w)
	if err != nil {
		return nil, err
	}
	o.HistoryInspections = hist.inspections
	o.Budget = int(math.Round(float64(hist.inspections) / 12))
	it := w.Tables["inspectors"]
	ic, sc := slices.Index(it.Cols, "inspector_id"), slices.Index(it.Cols, "street_code")
	var inspectors []inspection.Inspector
	for _, row := range it.Rows {
		inspectors = append(inspectors, inspection.Inspector{ID: row[ic], Street: row[sc]})
	}
	o.Inspectors = len(inspectors)
	arms := make([]*armState, 2)
	for i := range arms {
		tr, err := sim.NewTruth(w, tc)
		if err != nil {
			return nil, err
		}
		o.BaseRate = tr.MeanRate()
		a := &armState{truth: tr, last: map[string]time.Time{}, lastBy: map[string]string{}, found: map[string][]time.Time{},
			res: inspectionArm{Inspected: map[string]bool{}, ByReason: map[string][2]int{}}}
		for id, at := range hist.last {
			a.last[id], a.lastBy[id] = at, hist.lastBy[id]
		}
		for id, ts := range hist.found {
			a.found[id] = slices.Clone(ts)
		}
		arms[i] = a
	}
	weighted, uniform := arms[0], arms[1]
	units := make([]inspection.Unit, len(w.Units))
	var quarter [2]map[string]bool
	for m := 0; m < months; m++ {
		month := inspectionEpoch.AddDate(0, m, 0)
		ins := withLeave(inspectors, month, m)
		for i, u := range w.Units {
			units[i] = inspection.Unit{ID: u.ID, Street: u.Street, Level: levels[u.ID], RecentHazards: weighted.recent(u.ID, month),
				LastInspected: weighted.last[u.ID], LastInspector: weighted.lastBy[u.ID]}
		}
		cfg := inspection.DefaultConfig(month)
		cfg.Budget = o.Budget
		pw, err := inspection.Draw(units, ins, cfg)
		if err != nil {
			return nil, fmt.Errorf("%s, risk-weighted plan: %w", month.Format("2006-01"), err)
		}
		for i, u := range w.Units {
			units[i] = inspection.Unit{ID: u.ID, Street: u.Street, Level: inspection.LevelBlue, LastInspected: uniform.last[u.ID], LastInspector: uniform.lastBy[u.ID]}
		}
		ucfg := inspection.DefaultConfig(month)
		ucfg.Budget, ucfg.RandomShare, ucfg.Seed = len(pw.Visits), 1, cfg.Seed^0x756e69666f726d // "uniform"
		pu, err := inspection.Draw(units, ins, ucfg)
		if err != nil {
			return nil, fmt.Errorf("%s, uniform plan: %w", month.Format("2006-01"), err)
		}
		if m%3 == 0 {
			quarter = [2]map[string]bool{{}, {}}
		}
		for k, p := range []*inspection.Plan{pw, pu} {
			a := arms[k]
			done := a.execute(p)
			for id := range done {
				quarter[k][id] = true
			}
			for _, u := range w.Units {
				switch levels[u.ID] {
				case inspection.LevelRed:
					a.res.RedCases++
					if done[u.ID] {
						a.res.RedMet++
					}
				case inspection.LevelOrange:
					if m%3 == 2 {
						a.res.OrangeCases++
						if quarter[k][u.ID] {
							a.res.OrangeMet++
						}
					}
				}
			}
		}
	}
	end := inspectionEpoch.AddDate(0, months, 0).Add(-time.Second)
	for _, a := range arms {
		for _, u := range w.Units {
			a.res.LatentAtEnd += len(a.truth.Present(u.ID, end))
		}
	}
	o.Weighted, o.Uniform = weighted.res, uniform.res
	return o, nil
}

// execute carries out a plan's visits at 10:00 on their day and returns
// the units inspected.
func (a *armState) execute(p *inspection.Plan) map[string]bool {
	done := map[string]bool{}
	for _, v := range p.Visits {
		if v.InspectorID == "" {
			a.res.Unassigned++
			continue
		}
		at := v.Day.Add(10 * time.Hour)
		found := a.truth.Inspect(v.UnitID, at)
		a.res.Inspections++
		a.res.Found += len(found)
		br := a.res.ByReason[v.Reason]
		a.res.ByReason[v.Reason] = [2]int{br[0] + 1, br[1] + len(found)}
		for _, h := range found {
			a.res.DaysToFind += at.Sub(h.Appeared).Hours() / 24
			a.found[v.UnitID] = append(a.found[v.UnitID], at)
		}
		a.last[v.UnitID], a.lastBy[v.UnitID] = at, v.InspectorID
		a.res.Inspected[v.UnitID] = true
		done[v.UnitID] = true
	}
	return done
}

// recent is how many hazards were found at unit in the 90 days before
// month.
func (a *armState) recent(unit string, month time.Time) int {
	n := 0
	from := month.AddDate(0, 0, -90)
	for _, t := range a.found[unit] {
		if !t.Before(from) && t.Before(month) {
			n++
		}
	}
	return n
}

type inspHistory struct {
	inspections int
	last        map[string]time.Time
	lastBy      map[string]string
	found       map[string][]time.Time
}

// inspectionHistory reads the world's inspections and hazards of the year
// before its epoch.
func inspectionHistory(w *sim.World) (*inspHistory, error) {
	h := &inspHistory{last: map[string]time.Time{}, lastBy: map[string]string{}, found: map[string][]time.Time{}}
	it := w.Tables["inspections"]
	ec, ac, ic := slices.Index(it.Cols, "enterprise_id"), slices.Index(it.Cols, "inspected_at"), slices.Index(it.Cols, "inspector_id")
	for _, row := range it.Rows {
		at, err := time.Parse(time.RFC3339, row[ac])
		if err != nil {
			return nil, fmt.Errorf("inspection %s: %w", row[0], err)
		}
		h.inspections++
		if at.After(h.last[row[ec]]) {
			h.last[row[ec]], h.lastBy[row[ec]] = at, row[ic]
		}
	}
	ht := w.Tables["hazards"]
	ec, fc := slices.Index(ht.Cols, "enterprise_id"), slices.Index(ht.Cols, "found_at")
	for _, row := range ht.Rows {
		at, err := time.Parse(time.RFC3339, row[fc])
		if err != nil {
			return nil, fmt.Errorf("hazard %s: %w", row[0], err)
		}
		h.found[row[ec]] = append(h.found[row[ec]], at)
	}
	return h, nil
}

// withLeave gives 30 % of the inspectors a block of 1–5 days of leave in
// month (m numbers the month: the same leave for both plans).
func withLeave(inspectors []inspection.Inspector, month time.Time, m int) []inspection.Inspector {
	r := rand.New(rand.NewPCG(uint64(m), 25))
	out := slices.Clone(inspectors)
	days := month.AddDate(0, 1, -1).Day()
	for i := range out {
		if r.Float64() >= 0.3 {
			continue
		}
		first, n := r.IntN(days), 1+r.IntN(5)
		for d := first; d < min(days, first+n); d++ {
			out[i].Leave = append(out[i].Leave, month.AddDate(0, 0, d))
		}
	}
	return out
}
