package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"citybrain/internal/sim"
	"citybrain/pipelines/inspection"
)

// Does risk weighting help? (issue 25, docs/inspection.md): a simulated
// year of monthly plans — the expected-hazards method, the level-weighted
// one and a uniform random plan of the same size — on the simulator's
// hidden truth.
func init() {
	registerSuite(Suite{
		Name: "inspection",
		Doc: `A simulated year (12 months from 2026-01) on the simulator's world at scale 1 (24,000 units, 829 inspectors).
Each month, plans of the same size, each arm on its own copy of the truth (the same hazard arrivals): the expected-hazards
method (pipelines/inspection.Draw, the default: weight = the unit's estimated hazard rate × days since its last inspection,
capped at a year; the rate is its level's, from the inspection records, shrunk towards its own record by empirical Bayes),
the same method without records (level weights × days: what the CLI draws until it reads the records), the level-weighted
method (level weights × (1 + 0.5 × hazards found in 90 days)) and a uniform random plan (every unit equally likely,
inspectors drawn the same way). Each arm's planner sees only what it observed: the world's inspection history of the year
before and its own inspections in the simulation (levels = the units' inherent portrait level). Budget: the world's own
inspection rate, its inspections of the year before / 12. Inspectors take leave (30 % of them a block of 1–5 days a
month). Hidden truth (internal/sim/truth.go, DefaultTruthConfig): hidden log-riskiness with correlation ρ to the
portrait's latent score, σ 1; hazards appear as a Poisson process at a mean rate that reproduces the history's hazards per
inspection; an inspection finds each with p 0.7; units fix an unfound one themselves after 180 days on average.
Conditions: ρ 0.5, ρ 0 (the control: the portrait knows nothing), and ρ 0.5 with hazards staying until found.
Goal: ≥ 2× hazards found per inspection against uniform, coverage rules met.`,
		Reproduce: "go run ./internal/benchrun -suite inspection -out /tmp/bench-inspection",
		Run:       runInspectionBench,
	})
}

// inspectionEpoch is the start of the simulated year (the world's history
// ends there).
var inspectionEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, sim.Shanghai)

// An inspection arm is one way of planning: a method and what its planner
// is given.
type armPlan struct {
	Name    string
	Method  string // inspection.Method*; "" for uniform
	Records bool   // the units' inspection records are passed to the planner
}

// inspectionArms are the arms compared, uniform last (the anchor).
var inspectionArms = []armPlan{
	{Name: "expected", Method: inspection.MethodExpected, Records: true},
	{Name: "expected, no records", Method: inspection.MethodExpected},
	{Name: "level", Method: inspection.MethodLevel},
	{Name: "uniform"},
}

// reasonTally is what one visit reason's visits found.
type reasonTally struct {
	Inspections, Found int
	Weight             float64 // Σ the visits' weights (expected method: the hazards expected)
}

// inspectionArm is what one arm achieved over the simulation.
type inspectionArm struct {
	Inspections, Unassigned int
	Found                   int
	DaysToFind              float64 // sum over found hazards
	Inspected               map[string]bool
	RedCases, RedMet        int // red unit-months, inspected that month
	OrangeCases, OrangeMet  int // orange unit-quarters, inspected in the quarter
	LatentAtEnd             int
	ByReason                map[string]reasonTally
	ByQuarter               [4][2]int // inspections, hazards found
	// Records is how many inspection records the planner was last given
	// (history and simulation); 0 when it is given none.
	Records int
}

func (a *inspectionArm) per100() float64   { return 100 * float64(a.Found) / float64(a.Inspections) }
func (a *inspectionArm) meanDays() float64 { return a.DaysToFind / float64(a.Found) }

// inspectionOutcome is one simulated run.
type inspectionOutcome struct {
	Budget, HistoryInspections int
	Units, Inspectors          int
	Levels                     map[string]int
	BaseRate                   float64
	// Arms are the results in the order of inspectionArms.
	Arms []inspectionArm
	// Rates are the expected method's level rates in its last month.
	Rates map[string]inspection.LevelRate
	// CeilingLevel and CeilingUnit read the truth (for the report, never for
	// a planner): over the units that are not red, E[x²] / E[x]² for x the
	// mean true rate of the unit's level, and for x the unit's own true
	// rate — how many times uniform's hazards per inspection a draw with
	// probability proportional to x finds among units inspected equally
	// long ago.
	CeilingLevel, CeilingUnit float64
}

// armState is one arm's view of the world as the simulation goes: what
// its platform observed (the history, then its own inspections), and
// the truth it inspects.
type armState struct {
	plan    armPlan
	truth   *sim.Truth
	last    map[string]time.Time
	lastBy  map[string]string
	found   map[string][]time.Time         // when hazards were found, per unit
	records map[string][]inspection.Record // every inspection, per unit
	res     inspectionArm
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
		msg := fmt.Sprintf("=== inspection/%s: hazards/100 inspections", c.name)
		for k, a := range inspectionArms {
			msg += fmt.Sprintf(" %s %.1f,", a.Name, o.Arms[k].per100())
		}
		logf("%s (%.1fs)", strings.TrimSuffix(msg, ","), time.Since(start).Seconds())
		out = append(out, inspectionResults(c.name, tc, o)...)
	}
	return out
}

func inspectionResults(cond string, tc sim.TruthConfig, o *inspectionOutcome) []Result {
	un := &o.Arms[len(o.Arms)-1]
	fix := fmt.Sprintf("self-fix %.0f days", tc.SelfFixDays)
	if tc.SelfFixDays == 0 {
		fix = "no self-fix"
	}
	setting := fmt.Sprintf("truth ρ %.1f, σ %.1f, p_detect %.1f, %s, %.5f hazards/unit/day (from the history); budget %d/month (history: %d inspections in the year before / 12); %d units (red %d, orange %d, yellow %d, blue %d), %d inspectors",
		tc.Rho, tc.Sigma, tc.PDetect, fix, o.BaseRate, o.Budget, o.HistoryInspections, o.Units, o.Levels["red"], o.Levels["orange"], o.Levels["yellow"], o.Levels["blue"], o.Inspectors)
	share := func(met, cases int) float64 {
		if cases == 0 {
			return 0
		}
		return 100 * float64(met) / float64(cases)
	}
	never := func(a *inspectionArm) float64 { return float64(o.Units - len(a.Inspected)) }
	var out []Result
	for k, ap := range inspectionArms[:len(inspectionArms)-1] {
		a := &o.Arms[k]
		r := func(what, unit string, ours, theirs float64, note string) Result {
			an := &Anchor{Name: "uniform random plan (same budget)", Figure: theirs, Unit: unit}
			if theirs != 0 {
				an.Ratio = ours / theirs
			}
			return Result{Name: "inspection/" + cond + ": " + what + ", " + ap.Name, Status: "ok", Figure: ours, Unit: unit, Rows: int64(a.Inspections),
				Anchor: an, Reason: note}
		}
		ratio := a.per100() / un.per100()
		note := "goal ≥ 2×: met"
		if ratio < 2 {
			note = "goal ≥ 2×: NOT met"
		}
		note += fmt.Sprintf("; %s: %d inspections, %d hazards found (%d inspection records given to the planner in the last month); uniform: %d inspections, %d found; unassigned visits %d / %d",
			ap.Name, a.Inspections, a.Found, a.Records, un.Inspections, un.Found, a.Unassigned, un.Unassigned)
		// The expected method's weights are hazards expected only when its
		// rates come from records; without, they are level weights × days.
		calibrated := ap.Method == inspection.MethodExpected && ap.Records
		note += "; by reason (hazards/100 inspections, inspections"
		if calibrated {
			note += ", hazards expected by the weights per 100"
		}
		note += "):"
		for _, reason := range []string{inspection.ReasonRed, inspection.ReasonOrange, inspection.ReasonRandom, inspection.ReasonWeighted} {
			br := a.ByReason[reason]
			if br.Inspections == 0 {
				continue
			}
			note += fmt.Sprintf(" %s %.1f (%d", reason, 100*float64(br.Found)/float64(br.Inspections), br.Inspections)
			if calibrated && reason != inspection.ReasonRed {
				note += fmt.Sprintf(", %.1f", 100*br.Weight/float64(br.Inspections))
			}
			note += ")"
		}
		note += "; by quarter (vs uniform):"
		for q := range a.ByQuarter {
			per := func(x [2]int) float64 { return 100 * float64(x[1]) / float64(max(1, x[0])) }
			note += fmt.Sprintf(" Q%d %.1f (%.1f)", q+1, per(a.ByQuarter[q]), per(un.ByQuarter[q]))
		}
		if k == 0 && len(o.Rates) > 0 {
			note += "; level rates in December (hazards found per inspected day, between-unit SD, records' days):"
			for _, lv := range []string{inspection.LevelOrange, inspection.LevelYellow, inspection.LevelBlue} {
				lr := o.Rates[lv]
				note += fmt.Sprintf(" %s %.5f ± %.5f (%.0f)", lv, lr.Rate, lr.SD, lr.Days)
			}
		}
		if k == 0 {
			note += fmt.Sprintf("; the truth's ceiling for drawing in proportion to the rate, units not red, same time since inspected: %.2f× uniform knowing each level's mean rate, %.2f× knowing each unit's rate",
				o.CeilingLevel, o.CeilingUnit)
		}
		if k > 0 {
			note += fmt.Sprintf("; the expected method found %.2f× as many per inspection", o.Arms[0].per100()/a.per100())
		}
		out = append(out, r("hazards found per 100 inspections", "hazards/100 inspections", a.per100(), un.per100(), note+"; "+setting))
		if ap.Name == "expected, no records" {
			out = append(out, r("mean days from a hazard's appearance to its discovery", "days", a.meanDays(), un.meanDays(),
				fmt.Sprintf("over the hazards found in the year; never inspected %.0f (uniform %.0f); red monthly %.1f %%, orange quarterly %.1f %%; latent at the end of the year %d (uniform %d)",
					never(a), never(un), share(a.RedMet, a.RedCases), share(a.OrangeMet, a.OrangeCases), a.LatentAtEnd, un.LatentAtEnd)))
			continue
		}
		out = append(out,
			r("mean days from a hazard's appearance to its discovery", "days", a.meanDays(), un.meanDays(), "over the hazards found in the year"),
			r("units never inspected in the year", "units", never(a), never(un), fmt.Sprintf("of %d", o.Units)),
			r("red units inspected each month", "% of unit-months", share(a.RedMet, a.RedCases), share(un.RedMet, un.RedCases), fmt.Sprintf("%d red unit-months", a.RedCases)),
			r("orange units inspected each quarter", "% of unit-quarters", share(a.OrangeMet, a.OrangeCases), share(un.OrangeMet, un.OrangeCases), fmt.Sprintf("%d orange unit-quarters", a.OrangeCases)),
			r("hazards latent at the end of the year", "hazards", float64(a.LatentAtEnd), float64(un.LatentAtEnd), "present, unfound, on the last day"),
		)
	}
	return out
}

// simulateInspections runs months of monthly plans from inspectionEpoch on
// w, one per arm of inspectionArms, each against its own copy of the truth
// tc (the same arrivals).
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
	arms := make([]*armState, len(inspectionArms))
	for i, ap := range inspectionArms {
		tr, err := sim.NewTruth(w, tc)
		if err != nil {
			return nil, err
		}
		o.BaseRate = tr.MeanRate()
		if i == 0 {
			o.CeilingLevel, o.CeilingUnit = rateCeilings(tr, w, levels)
		}
		a := &armState{plan: ap, truth: tr, last: map[string]time.Time{}, lastBy: map[string]string{}, found: map[string][]time.Time{},
			records: map[string][]inspection.Record{}, res: inspectionArm{Inspected: map[string]bool{}, ByReason: map[string]reasonTally{}}}
		for id, at := range hist.last {
			a.last[id], a.lastBy[id] = at, hist.lastBy[id]
		}
		for id, ts := range hist.found {
			a.found[id] = slices.Clone(ts)
		}
		for id, rs := range hist.records {
			a.records[id] = slices.Clone(rs)
		}
		arms[i] = a
	}
	units := make([]inspection.Unit, len(w.Units))
	quarter := make([]map[string]bool, len(arms))
	for m := 0; m < months; m++ {
		month := inspectionEpoch.AddDate(0, m, 0)
		ins := withLeave(inspectors, month, m)
		if m%3 == 0 {
			for k := range quarter {
				quarter[k] = map[string]bool{}
			}
		}
		for k, a := range arms {
			cfg := inspection.DefaultConfig(month)
			cfg.Budget = o.Budget
			a.res.Records = 0
			for i, u := range w.Units {
				units[i] = inspection.Unit{ID: u.ID, Street: u.Street, Level: levels[u.ID], LastInspected: a.last[u.ID], LastInspector: a.lastBy[u.ID]}
				switch {
				case a.plan.Method == "": // uniform: every unit alike, all drawn by the uniform share
					units[i].Level = inspection.LevelBlue
				case a.plan.Method == inspection.MethodLevel:
					units[i].RecentHazards = a.recent(u.ID, month)
				case a.plan.Records:
					units[i].History = a.records[u.ID]
					a.res.Records += len(a.records[u.ID])
				}
			}
			if a.plan.Method == "" {
				cfg.Method, cfg.RandomShare, cfg.Seed = inspection.MethodLevel, 1, cfg.Seed^0x756e69666f726d // "uniform"
			} else {
				cfg.Method = a.plan.Method
			}
			p, err := inspection.Draw(units, ins, cfg)
			if err != nil {
				return nil, fmt.Errorf("%s, %s plan: %w", month.Format("2006-01"), a.plan.Name, err)
			}
			if k == 0 {
				o.Rates = p.Rates
			}
			done := a.execute(p, m/3)
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
		o.Arms = append(o.Arms, a.res)
	}
	return o, nil
}

// rateCeilings reads tr's hidden rates for the report (see
// inspectionOutcome.CeilingLevel): E[x²] / E[x]² over the units that are
// not red, x the mean rate of the unit's level, then the unit's rate.
func rateCeilings(tr *sim.Truth, w *sim.World, levels map[string]string) (level, unit float64) {
	sum, n := map[string]float64{}, map[string]float64{}
	var s1, s2, count float64
	for _, u := range w.Units {
		if levels[u.ID] == inspection.LevelRed {
			continue
		}
		r := tr.Rate(u.ID)
		sum[levels[u.ID]] += r
		n[levels[u.ID]]++
		s1 += r
		s2 += r * r
		count++
	}
	var l2 float64
	for _, lv := range []string{inspection.LevelOrange, inspection.LevelYellow, inspection.LevelBlue} { // in order: the same sum every run
		if n[lv] > 0 {
			l2 += sum[lv] * sum[lv] / n[lv] // n × (mean of the level)²
		}
	}
	mean := s1 / count
	return l2 / count / (mean * mean), s2 / count / (mean * mean)
}

// execute carries out a plan's visits at 10:00 on their day and returns
// the units inspected; what they found is all the arm's planner will see
// of the truth.
func (a *armState) execute(p *inspection.Plan, quarter int) map[string]bool {
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
		a.res.ByReason[v.Reason] = reasonTally{br.Inspections + 1, br.Found + len(found), br.Weight + v.Weight}
		if quarter < len(a.res.ByQuarter) {
			a.res.ByQuarter[quarter][0]++
			a.res.ByQuarter[quarter][1] += len(found)
		}
		for _, h := range found {
			a.res.DaysToFind += at.Sub(h.Appeared).Hours() / 24
			a.found[v.UnitID] = append(a.found[v.UnitID], at)
		}
		a.records[v.UnitID] = append(a.records[v.UnitID], inspection.Record{At: at, Hazards: len(found)})
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
	records     map[string][]inspection.Record
}

// inspectionHistory reads the world's inspections and hazards of the year
// before its epoch.
func inspectionHistory(w *sim.World) (*inspHistory, error) {
	h := &inspHistory{last: map[string]time.Time{}, lastBy: map[string]string{}, found: map[string][]time.Time{}, records: map[string][]inspection.Record{}}
	it := w.Tables["inspections"]
	ec, ac, ic, fc := slices.Index(it.Cols, "enterprise_id"), slices.Index(it.Cols, "inspected_at"), slices.Index(it.Cols, "inspector_id"), slices.Index(it.Cols, "hazards_found")
	for _, row := range it.Rows {
		at, err := time.Parse(time.RFC3339, row[ac])
		if err != nil {
			return nil, fmt.Errorf("inspection %s: %w", row[0], err)
		}
		n, err := strconv.Atoi(row[fc])
		if err != nil {
			return nil, fmt.Errorf("inspection %s: hazards_found %q: %w", row[0], row[fc], err)
		}
		h.records[row[ec]] = append(h.records[row[ec]], inspection.Record{At: at, Hazards: n})
		h.inspections++
		if at.After(h.last[row[ec]]) {
			h.last[row[ec]], h.lastBy[row[ec]] = at, row[ic]
		}
	}
	ht := w.Tables["hazards"]
	ec, fc = slices.Index(ht.Cols, "enterprise_id"), slices.Index(ht.Cols, "found_at")
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
