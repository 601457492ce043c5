package inspection

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// world is one random set of inputs.
type world struct {
	units      []Unit
	inspectors []Inspector
	cfg        Config
}

// randomWorld draws a small district: 1–5 streets, 0–5 inspectors each
// (some with leave, a few on leave all month), 10–250 units of every level
// with recent hazards and inspection histories (records of up to three
// years, some without hazards), a budget from a few inspections to more
// than the units, either method.
func randomWorld(r *rand.Rand) world {
	month := time.Date(2025+r.IntN(3), time.Month(1+r.IntN(12)), 1, 0, 0, 0, 0, Shanghai)
	monthEnd := month.AddDate(0, 1, 0)
	var w world
	nStreets := 1 + r.IntN(5)
	inspectorsOf := map[string][]string{}
	for s := 0; s < nStreets; s++ {
		street := fmt.Sprintf("S%d", s)
		for k := r.IntN(6); k > 0; k-- {
			in := Inspector{ID: fmt.Sprintf("I%03d", len(w.inspectors)), Street: street}
			switch x := r.Float64(); {
			case x < 0.05: // all month
				for t := month; t.Before(monthEnd); t = t.AddDate(0, 0, 1) {
					in.Leave = append(in.Leave, t.Add(time.Duration(r.IntN(24))*time.Hour))
				}
			case x < 0.5:
				for j := r.IntN(12); j > 0; j-- {
					in.Leave = append(in.Leave, month.AddDate(0, 0, r.IntN(31)-2)) // a few outside the month
				}
			}
			w.inspectors = append(w.inspectors, in)
			inspectorsOf[street] = append(inspectorsOf[street], in.ID)
		}
	}
	nUnits := 10 + r.IntN(240)
	for i := 0; i < nUnits; i++ {
		street := fmt.Sprintf("S%d", r.IntN(nStreets))
		u := Unit{ID: fmt.Sprintf("U%05d-%d", r.IntN(100000), i), Street: street} // unique, not in input order
		switch x := r.Float64(); {
		case x < 0.05:
			u.Level = LevelRed
		case x < 0.15:
			u.Level = LevelOrange
		case x < 0.35:
			u.Level = LevelYellow
		default:
			u.Level = LevelBlue
		}
		if r.IntN(3) == 0 {
			u.RecentHazards = 1 + r.IntN(4)
		}
		if r.IntN(5) > 0 {
			u.LastInspected = month.Add(-time.Duration(1+r.IntN(200*24)) * time.Hour)
			for k := r.IntN(5); k > 0; k-- { // earlier inspections, the last one's record too mostly
				at := u.LastInspected.Add(-time.Duration(r.IntN(3*365*24)) * time.Hour)
				if k == 1 && r.IntN(4) > 0 {
					at = u.LastInspected
				}
				h := 0
				if r.IntN(3) == 0 {
					h = 1 + r.IntN(3)
				}
				u.History = append(u.History, Record{At: at, Hazards: h})
			}
			ids := inspectorsOf[street]
			switch {
			case len(ids) > 0 && r.IntN(4) > 0:
				u.LastInspector = ids[r.IntN(len(ids))]
			case r.IntN(2) == 0:
				u.LastInspector = "I999" // left the district
			}
		}
		w.units = append(w.units, u)
	}
	w.cfg = DefaultConfig(month)
	w.cfg.Seed = r.Uint64()
	w.cfg.OrangeEveryMonths = 1 + r.IntN(4)
	switch x := r.Float64(); {
	case x < 0.1:
		w.cfg.Budget = 1 + r.IntN(5) // below the mandatory visits, usually
	case x < 0.2:
		w.cfg.Budget = nUnits + r.IntN(20) // more than the units
	default:
		w.cfg.Budget = 1 + r.IntN(nUnits)
	}
	if r.IntN(4) == 0 {
		w.cfg.RandomShare = r.Float64()
	}
	switch r.IntN(3) {
	case 0:
		w.cfg.Method = MethodLevel
	case 1:
		w.cfg.HorizonDays = float64(30 + r.IntN(700))
		w.cfg.RecordDays = 1 + r.IntN(1000)
	}
	return w
}

func worlds(n int) []world {
	r := rand.New(rand.NewPCG(25, 1))
	out := make([]world, n)
	for i := range out {
		out[i] = randomWorld(r)
	}
	return out
}

// dueOrange is the rule restated: orange and not inspected since the first
// day of the month OrangeEveryMonths−1 months before the planned one.
func dueOrange(u Unit, cfg Config) bool {
	m := cfg.Month.In(Shanghai)
	since := time.Date(m.Year(), m.Month()-time.Month(cfg.OrangeEveryMonths-1), 1, 0, 0, 0, 0, Shanghai)
	return u.Level == LevelOrange && (u.LastInspected.IsZero() || u.LastInspected.Before(since))
}

func dayKey(t time.Time) string { return t.In(Shanghai).Format("2006-01-02") }

// checkPlan checks every rule of docs/inspection.md "The draw" that a
// single plan shows.
func checkPlan(t *testing.T, w world, p *Plan) {
	t.Helper()
	units := map[string]Unit{}
	mandatory := 0
	for _, u := range w.units {
		units[u.ID] = u
		if u.Level == LevelRed || dueOrange(u, w.cfg) {
			mandatory++
		}
	}
	weights, rates := wantWeights(w)
	if p.Method != cmp.Or(w.cfg.Method, MethodLevel) || !sameRates(p.Rates, rates) {
		t.Fatalf("plan method %q, rates %+v; want %q, %+v", p.Method, p.Rates, w.cfg.Method, rates)
	}
	got := map[string]Visit{}
	for _, v := range p.Visits {
		if _, dup := got[v.UnitID]; dup {
			t.Fatalf("unit %s drawn twice", v.UnitID)
		}
		got[v.UnitID] = v
		u, ok := units[v.UnitID]
		if !ok || v.Street != u.Street {
			t.Fatalf("visit %+v: no such unit in that street", v)
		}
		if want := weights[u.ID]; math.Abs(v.Weight-want) > 1e-9*want || (want > 0) != (u.Level != LevelRed) {
			t.Fatalf("visit %+v (%s, last %v, history %v): weight %v, want %v", v, u.Level, u.LastInspected, u.History, v.Weight, want)
		}
	}
	for _, u := range w.units {
		v, ok := got[u.ID]
		switch {
		case u.Level == LevelRed && (!ok || v.Reason != ReasonRed):
			t.Fatalf("red unit %s: drawn %v, reason %q", u.ID, ok, v.Reason)
		case dueOrange(u, w.cfg) && (!ok || v.Reason != ReasonOrange):
			t.Fatalf("due orange unit %s (last %v, every %d months): drawn %v, reason %q", u.ID, u.LastInspected, w.cfg.OrangeEveryMonths, ok, v.Reason)
		case ok && (v.Reason == ReasonRed || v.Reason == ReasonOrange) && u.Level != LevelRed && !dueOrange(u, w.cfg):
			t.Fatalf("unit %s (%s) drawn as %s", u.ID, u.Level, v.Reason)
		}
	}
	want := min(len(w.units), max(w.cfg.Budget, mandatory))
	if len(p.Visits) != want {
		t.Fatalf("%d visits, want %d (budget %d, mandatory %d, units %d)", len(p.Visits), want, w.cfg.Budget, mandatory, len(w.units))
	}
	if mandatory > w.cfg.Budget && !hasNote(p, "exceed the budget") {
		t.Errorf("%d mandatory above a budget of %d: no note in %q", mandatory, w.cfg.Budget, p.Notes)
	}
	if mandatory < w.cfg.Budget && len(w.units) > w.cfg.Budget {
		nRandom := 0
		for _, v := range p.Visits {
			if v.Reason == ReasonRandom {
				nRandom++
			}
		}
		if want := int(w.cfg.RandomShare*float64(w.cfg.Budget-mandatory) + 0.5); nRandom != want {
			t.Errorf("%d random draws, want %d", nRandom, want)
		}
	}

	// Inspectors and days.
	type avail struct {
		in   Inspector
		days map[string]bool // working days off leave
	}
	byID := map[string]*avail{}
	streetAvail := map[string][]string{}
	for _, in := range w.inspectors {
		a := &avail{in: in, days: map[string]bool{}}
		leave := map[string]bool{}
		for _, l := range in.Leave {
			leave[dayKey(l)] = true
		}
		for d := p.Month; d.Month() == p.Month.Month(); d = d.AddDate(0, 0, 1) {
			if d.Weekday() != time.Saturday && d.Weekday() != time.Sunday && !leave[dayKey(d)] {
				a.days[dayKey(d)] = true
			}
		}
		byID[in.ID] = a
		if len(a.days) > 0 {
			streetAvail[in.Street] = append(streetAvail[in.Street], in.ID)
		}
	}
	load := map[string]int{}
	perDay := map[string]map[string]int{}
	for _, v := range p.Visits {
		if v.InspectorID == "" {
			if len(streetAvail[v.Street]) > 0 || !v.Day.IsZero() {
				t.Fatalf("visit %+v unassigned though street has %v", v, streetAvail[v.Street])
			}
			if !hasNote(p, "street "+v.Street+": no inspector available") {
				t.Fatalf("street %s left unassigned without a note: %q", v.Street, p.Notes)
			}
			continue
		}
		a, ok := byID[v.InspectorID]
		if !ok || a.in.Street != v.Street {
			t.Fatalf("visit %+v: inspector not of the street", v)
		}
		if !a.days[dayKey(v.Day)] || v.Day.Location() != Shanghai || v.Day.Hour() != 0 {
			t.Fatalf("visit %+v: %s is not a working day of %s off leave (%v)", v, dayKey(v.Day), p.Month.Format("2006-01"), a.in.Leave)
		}
		u := units[v.UnitID]
		if v.InspectorID == u.LastInspector && len(streetAvail[v.Street]) > 1 {
			t.Fatalf("unit %s got its last inspector %s though street %s has %v", u.ID, u.LastInspector, v.Street, streetAvail[v.Street])
		}
		load[v.InspectorID]++
		if perDay[v.InspectorID] == nil {
			perDay[v.InspectorID] = map[string]int{}
		}
		perDay[v.InspectorID][dayKey(v.Day)]++
	}
	// Each inspector's visits spread over their available days: per-day
	// counts differ by at most one.
	for id, days := range perDay {
		lo, hi := 1<<30, 0
		for d := range byID[id].days {
			lo, hi = min(lo, days[d]), max(hi, days[d])
		}
		if hi-lo > 1 {
			t.Fatalf("inspector %s: %d to %d visits a day over %d available days: %v", id, lo, hi, len(byID[id].days), days)
		}
	}
	// Loads within a street differ by at most one unless the last-inspector
	// rule makes it impossible (then a note says so).
	for street, ids := range streetAvail {
		n, k := 0, len(ids)
		f := map[string]int{}
		for _, v := range p.Visits {
			if v.Street == street {
				n++
				if slices.Contains(ids, units[v.UnitID].LastInspector) {
					f[units[v.UnitID].LastInspector]++
				}
			}
		}
		lo, hi := 1<<30, 0
		for _, id := range ids {
			lo, hi = min(lo, load[id]), max(hi, load[id])
		}
		q, r := n/k, n%k
		balancedPossible, mustBeLow := true, 0
		if k > 1 {
			for _, c := range f {
				if c > n-q {
					balancedPossible = false
				}
				if c > n-q-1 {
					mustBeLow++
				}
			}
			if mustBeLow > k-r {
				balancedPossible = false
			}
		}
		switch {
		case balancedPossible && hi-lo > 1:
			t.Fatalf("street %s: loads %d to %d (n %d, k %d, last-inspector counts %v)", street, lo, hi, n, k, f)
		case !balancedPossible && !hasNote(p, "street "+street+": loads differ by more than one"):
			t.Fatalf("street %s: loads could not be balanced and no note says so: %q", street, p.Notes)
		}
	}
}

// wantWeights restates the weights of docs/inspection.md "The draw": the
// level method's, or the expected method's (and its level rates).
func wantWeights(w world) (map[string]float64, map[string]LevelRate) {
	cfg := w.cfg
	out := map[string]float64{}
	if cfg.Method != MethodExpected {
		for _, u := range w.units {
			if u.Level != LevelRed {
				out[u.ID] = cfg.Weights[u.Level] * (1 + cfg.HazardWeight*float64(u.RecentHazards))
			}
		}
		return out, nil
	}
	m := cfg.Month.In(Shanghai)
	start := time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, Shanghai)
	days := float64(time.Date(m.Year(), m.Month()+1, 0, 0, 0, 0, 0, Shanghai).Day())
	mid := start.Add(time.Duration(days * 12 * float64(time.Hour)))
	windowStart := start.AddDate(0, 0, -cfg.RecordDays)
	type rec struct {
		k    int
		e    float64
		last time.Time
	}
	recs := map[string]rec{}
	for _, u := range w.units {
		x := rec{last: u.LastInspected}
		for _, r := range u.History {
			if r.At.After(x.last) {
				x.last = r.At
			}
			if r.At.Before(windowStart) {
				continue
			}
			// the days since the latest earlier record, else the horizon
			prev := time.Time{}
			for _, q := range u.History {
				if q.At.Before(r.At) && q.At.After(prev) {
					prev = q.At
				}
			}
			e := cfg.HorizonDays
			if !prev.IsZero() {
				e = min(e, r.At.Sub(prev).Hours()/24)
			}
			x.k += r.Hazards
			x.e += e
		}
		recs[u.ID] = x
	}
	rates := map[string]LevelRate{}
	var kAll, wdAll float64
	for _, lv := range []string{LevelOrange, LevelYellow, LevelBlue} {
		var lr LevelRate
		var rs, es []float64
		for _, u := range w.units {
			if x := recs[u.ID]; u.Level == lv && x.e > 0 {
				lr.Found += x.k
				lr.Days += x.e
				lr.Units++
				rs, es = append(rs, float64(x.k)/x.e), append(es, x.e)
			}
		}
		if lr.Found > 0 {
			lr.Rate = float64(lr.Found) / lr.Days
			var s2 float64
			for i := range rs {
				s2 += es[i] * (rs[i] - lr.Rate) * (rs[i] - lr.Rate) / lr.Days
			}
			if v := s2 - lr.Rate*float64(lr.Units)/lr.Days; v > 0 {
				lr.SD = math.Sqrt(v)
			}
			kAll += float64(lr.Found)
			wdAll += cfg.Weights[lv] * lr.Days
		}
		rates[lv] = lr
	}
	for lv, lr := range rates {
		if lr.Found == 0 {
			lr.Rate, lr.Fallback = cfg.Weights[lv], true
			if kAll > 0 {
				lr.Rate *= kAll / wdAll
			}
			rates[lv] = lr
		}
	}
	for _, u := range w.units {
		lr, ok := rates[u.Level]
		if !ok {
			continue
		}
		x := recs[u.ID]
		rate := lr.Rate
		if lr.SD > 0 { // gamma prior with mean m, variance v: posterior mean (a + k) / (b + e)
			v := lr.SD * lr.SD
			a, b := lr.Rate*lr.Rate/v, lr.Rate/v
			rate = (a + float64(x.k)) / (b + x.e)
		}
		since := cfg.HorizonDays
		if !x.last.IsZero() {
			since = min(since, max(1, mid.Sub(x.last).Hours()/24))
		}
		out[u.ID] = rate * since
	}
	return out, rates
}

// sameRates: the same level rates, up to rounding (sums in another order).
func sameRates(a, b map[string]LevelRate) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*max(math.Abs(x), math.Abs(y)) }
	if len(a) != len(b) {
		return false
	}
	for lv, x := range a {
		y, ok := b[lv]
		if !ok || x.Found != y.Found || x.Units != y.Units || x.Fallback != y.Fallback || !near(x.Days, y.Days) || !near(x.Rate, y.Rate) || !near(x.SD, y.SD) {
			return false
		}
	}
	return true
}

func hasNote(p *Plan, s string) bool {
	for _, n := range p.Notes {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// TestDrawProperties draws plans for many random worlds and checks every
// rule, reproducibility (same inputs in another order, same seed → the
// same plan) and that another seed gives another plan.
func TestDrawProperties(t *testing.T) {
	ws := worlds(400)
	notes := map[string]int{}
	kinds := map[string]int{} // what the worlds exercised of the weights
	for i, w := range ws {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			p, err := Draw(w.units, w.inspectors, w.cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkPlan(t, w, p)
			kinds[p.Method]++
			for _, lr := range p.Rates {
				switch {
				case lr.Fallback:
					kinds["a level without hazards"]++
				case lr.SD > 0:
					kinds["a level with a spread"]++
				default:
					kinds["a level without a spread"]++
				}
			}
			for _, kind := range noteKinds {
				if hasNote(p, kind) {
					notes[kind]++
				}
			}
			shuffled := w
			shuffled.units = slices.Clone(w.units)
			shuffled.inspectors = slices.Clone(w.inspectors)
			r := rand.New(rand.NewPCG(uint64(i), 2))
			r.Shuffle(len(shuffled.units), func(a, b int) { shuffled.units[a], shuffled.units[b] = shuffled.units[b], shuffled.units[a] })
			r.Shuffle(len(shuffled.inspectors), func(a, b int) {
				shuffled.inspectors[a], shuffled.inspectors[b] = shuffled.inspectors[b], shuffled.inspectors[a]
			})
			again, err := Draw(shuffled.units, shuffled.inspectors, w.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p, again) {
				t.Fatal("the same inputs (in another order) and seed gave another plan")
			}
			other := w.cfg
			other.Seed++
			p2, err := Draw(w.units, w.inspectors, other)
			if err != nil {
				t.Fatal(err)
			}
			checkPlan(t, world{w.units, w.inspectors, other}, p2)
			p2.Seed = p.Seed
			// Another seed changes the plan whenever chance has a say: an
			// inspector or a day to draw, or units to draw from a larger pool.
			free := len(p.Visits) < len(w.units) && slices.ContainsFunc(p.Visits, func(v Visit) bool { return v.Reason == ReasonRandom || v.Reason == ReasonWeighted })
			free = free || slices.ContainsFunc(p.Visits, func(v Visit) bool { return v.InspectorID != "" })
			if free && reflect.DeepEqual(p, p2) {
				t.Fatalf("seeds %d and %d gave the same plan", w.cfg.Seed, other.Seed)
			}
		})
	}
	t.Logf("notes over %d worlds: %v; weights: %v", len(ws), notes, kinds)
	for _, kind := range []string{MethodLevel, MethodExpected, "a level without hazards", "a level with a spread", "a level without a spread"} {
		if kinds[kind] < 20 {
			t.Errorf("only %d worlds with %s: %v", kinds[kind], kind, kinds)
		}
	}
	// The worlds reach every kind of note but forced loads (rare; see
	// TestDrawLoadsForced), else the checks above were not exercised.
	for _, kind := range noteKinds[:4] {
		if notes[kind] == 0 {
			t.Errorf("no world produced a note %q: %v", kind, notes)
		}
	}
}

var noteKinds = []string{"mandatory units (red monthly", "too few units", "no inspector available", "one available inspector", "loads differ"}

// TestDrawLoadsForced: when one inspector was the last of too many units,
// the rule "never the last inspector" wins over balance, with a note.
func TestDrawLoadsForced(t *testing.T) {
	month := time.Date(2026, 12, 1, 0, 0, 0, 0, Shanghai)
	units := []Unit{
		{ID: "E1", Street: "S", Level: LevelRed, LastInspector: "A"},
		{ID: "E2", Street: "S", Level: LevelRed, LastInspector: "A"},
		{ID: "E3", Street: "S", Level: LevelRed, LastInspector: "A"},
		{ID: "E4", Street: "T", Level: LevelRed, LastInspector: "C"},
		{ID: "E5", Street: "T", Level: LevelRed, LastInspector: "C"},
		{ID: "E6", Street: "T", Level: LevelRed},
	}
	ins := []Inspector{{ID: "A", Street: "S"}, {ID: "B", Street: "S"}, {ID: "C", Street: "T"}, {ID: "D", Street: "T"}}
	cfg := DefaultConfig(month)
	cfg.Budget = 6
	p, err := Draw(units, ins, cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, world{units, ins, cfg}, p)
	load := map[string]int{}
	for _, v := range p.Visits {
		load[v.InspectorID]++
	}
	if load["A"] != 0 || load["B"] != 3 || load["C"] != 1 || load["D"] != 2 {
		t.Errorf("loads %v, want A 0, B 3 (forced), C 1, D 2", load)
	}
	if !hasNote(p, "street S: loads differ") || hasNote(p, "street T: loads differ") {
		t.Errorf("notes %q: want one for street S only", p.Notes)
	}
}

// TestDrawEveryUnitCanBePicked: under either method a light unit (blue,
// no hazards, inspected the day before the month) among much heavier ones
// is drawn under some seeds, by the uniform share; every unit of a random
// world is drawn under some seed.
func TestDrawEveryUnitCanBePicked(t *testing.T) {
	month := time.Date(2026, 12, 1, 0, 0, 0, 0, Shanghai)
	var units []Unit
	for i := 0; i < 50; i++ { // never inspected, hazards recently: heavy under both methods
		units = append(units, Unit{ID: fmt.Sprintf("E%02d", i), Street: "S", Level: LevelYellow, RecentHazards: 4})
	}
	units[17] = Unit{ID: "E17", Street: "S", Level: LevelBlue, LastInspected: month.AddDate(0, 0, -1)}
	for _, method := range []string{MethodLevel, MethodExpected} {
		t.Run(method, func(t *testing.T) {
			cfg := DefaultConfig(month)
			cfg.Method = method
			cfg.Budget = 10 // one random draw, nine weighted
			byReason := map[string]int{}
			for seed := uint64(0); seed < 300; seed++ {
				cfg.Seed = seed
				p, err := Draw(units, []Inspector{{ID: "A", Street: "S"}}, cfg)
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range p.Visits {
					if v.UnitID == "E17" {
						byReason[v.Reason]++
					}
				}
			}
			// Expected: 300 × 1/50 = 6 by the uniform share; by weight (1 in
			// 6 as heavy, or 1 in 44), rarely in the top nine.
			if byReason[ReasonRandom] < 2 {
				t.Errorf("the light unit was drawn %v over 300 seeds; want ≥ 2 by the uniform share", byReason)
			}
			cfg.RandomShare = 0
			for seed := uint64(0); seed < 300; seed++ {
				cfg.Seed = seed
				p, _ := Draw(units, []Inspector{{ID: "A", Street: "S"}}, cfg)
				for _, v := range p.Visits {
					if v.Reason == ReasonRandom {
						t.Fatalf("random_share 0 drew %+v", v)
					}
				}
			}
			// Every unit of a random world is drawn under some seed.
			w := worlds(1)[0]
			w.cfg.Method = method
			w.cfg.Budget = 0
			for _, u := range w.units {
				if u.Level == LevelRed || dueOrange(u, w.cfg) {
					w.cfg.Budget++
				}
			}
			w.cfg.Budget += max(1, (len(w.units)-w.cfg.Budget)/10)
			seen := map[string]bool{}
			for seed := uint64(0); seed < 2000 && len(seen) < len(w.units); seed++ {
				w.cfg.Seed = seed
				p, err := Draw(w.units, w.inspectors, w.cfg)
				if err != nil {
					t.Fatal(err)
				}
				for _, v := range p.Visits {
					seen[v.UnitID] = true
				}
			}
			if len(seen) != len(w.units) {
				t.Errorf("%d of %d units never drawn over 2000 seeds", len(w.units)-len(seen), len(w.units))
			}
		})
	}
}

// TestDrawExpectedWeights works the expected method's weights out by hand
// for a small district (December 2026: 31 days, the middle is the 16th at
// noon; horizon 365 days, records of 730).
func TestDrawExpectedWeights(t *testing.T) {
	month := time.Date(2026, 12, 1, 0, 0, 0, 0, Shanghai)
	mid := time.Date(2026, 12, 16, 12, 0, 0, 0, Shanghai)
	ago := func(days float64) time.Time { return mid.Add(-time.Duration(days * 24 * float64(time.Hour))) }
	rec := func(days float64, hazards int) Record { return Record{At: ago(days), Hazards: hazards} }
	units := []Unit{
		// Blue: 4 hazards over 1,395 days, too few to tell the units apart.
		{ID: "B1", Level: LevelBlue, History: []Record{rec(100, 2), rec(400, 1)}}, // 365 (first) + 300 days, 3 hazards; last 100 days ago
		{ID: "B2", Level: LevelBlue, History: []Record{rec(200, 0)}, LastInspected: ago(200)},
		{ID: "B3", Level: LevelBlue, LastInspected: ago(50)},                                                  // no record: the level's rate
		{ID: "B4", Level: LevelBlue},                                                                          // never inspected: the horizon
		{ID: "B5", Level: LevelBlue, History: []Record{rec(1000, 5), rec(500, 1)}, LastInspected: ago(500)},   // 1000 is outside the window, but starts the period of 500: capped at 365
		{ID: "Y1", Level: LevelYellow, History: []Record{rec(400, 20)}, LastInspected: ago(400)},              // 20 over 365, last over a year ago
		{ID: "Y2", Level: LevelYellow, History: []Record{rec(30, 0), rec(300, 0), rec(395, 0)}},               // 0 over 365 (first, 395 days ago: in the window) + 95 + 270
		{ID: "Y3", Level: LevelYellow, History: []Record{rec(20, 2)}, LastInspected: ago(20).Add(-time.Hour)}, // 2 over 365; the record is later than LastInspected
		{ID: "O1", Level: LevelOrange, LastInspected: ago(40)},                                                // not due (November); no record of orange at all
		{ID: "R1", Level: LevelRed, History: []Record{rec(60, 9)}},                                            // red: mandatory, weight 0, not in any rate
	}
	for i := range units {
		units[i].Street = "S"
	}
	cfg := DefaultConfig(month)
	cfg.Budget = len(units)
	p, err := Draw(units, []Inspector{{ID: "A", Street: "S"}, {ID: "B", Street: "S"}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Blue: m = 4 / 1,395; s² = Σ e(r − m)² / Σ e is below m / ē (ē = 465): no spread.
	mB := 4.0 / 1395
	// Yellow: 22 over 365 + 730 + 365 days.
	eY := map[string]float64{"Y1": 365, "Y2": 730, "Y3": 365}
	kY := map[string]float64{"Y1": 20, "Y2": 0, "Y3": 2}
	mY := 22.0 / 1460
	var s2 float64
	for id, e := range eY {
		s2 += e * math.Pow(kY[id]/e-mY, 2) / 1460
	}
	vY := s2 - mY/(1460.0/3)
	// Orange: no hazard recorded: its weight 4 × the others' 26 hazards / (1 × 1,395 + 2 × 1,460) weighted days.
	mO := 4 * 26.0 / (1395 + 2*1460)
	wantRates := map[string]LevelRate{
		LevelBlue:   {Found: 4, Days: 1395, Units: 3, Rate: mB},
		LevelYellow: {Found: 22, Days: 1460, Units: 3, Rate: mY, SD: math.Sqrt(vY)},
		LevelOrange: {Rate: mO, Fallback: true},
	}
	if vY <= 0 || !sameRates(p.Rates, wantRates) {
		t.Fatalf("rates %+v, want %+v", p.Rates, wantRates)
	}
	post := func(id string) float64 { return (mY*mY + vY*kY[id]) / (mY + vY*eY[id]) }
	want := map[string]float64{
		"B1": mB * 100, "B2": mB * 200, "B3": mB * 50, "B4": mB * 365, "B5": mB * 365,
		"Y1": post("Y1") * 365, "Y2": post("Y2") * 30, "Y3": post("Y3") * 20,
		"O1": mO * 40, "R1": 0,
	}
	for _, v := range p.Visits {
		if math.Abs(v.Weight-want[v.UnitID]) > 1e-12 {
			t.Errorf("%s: weight %v, want %v", v.UnitID, v.Weight, want[v.UnitID])
		}
	}
	// Shrinkage: each yellow unit's rate lies between the level's and its own.
	for id := range eY {
		if lo, hi := min(mY, kY[id]/eY[id]), max(mY, kY[id]/eY[id]); post(id) <= lo || post(id) >= hi {
			t.Errorf("%s: rate %v not strictly between the level's %v and its own %v", id, post(id), mY, kY[id]/eY[id])
		}
	}
	if !hasNote(p, "no hazard in the records of orange units") || len(p.Visits) != len(units) {
		t.Errorf("%d visits, notes %q", len(p.Visits), p.Notes)
	}
	// The level method ignores the records.
	cfg.Method = MethodLevel
	if p, err = Draw(units, []Inspector{{ID: "A", Street: "S"}}, cfg); err != nil || p.Rates != nil || p.Method != MethodLevel {
		t.Fatalf("level method: %v, %+v", err, p)
	}
}

// TestDrawPrefersExpected: with no uniform share and no records, the
// expected method draws each group about in proportion to level weight ×
// days since the last inspection, capped at the horizon (400 seeds; the
// margin, ±15 %, is about five standard errors of the lightest group).
func TestDrawPrefersExpected(t *testing.T) {
	month := time.Date(2026, 12, 1, 0, 0, 0, 0, Shanghai)
	mid := time.Date(2026, 12, 16, 12, 0, 0, 0, Shanghai)
	groups := []struct {
		level  string
		days   float64 // since the last inspection, at the middle of the month; 0: never
		weight float64 // relative to the first group
	}{
		{LevelBlue, 40, 1}, {LevelBlue, 80, 2}, {LevelYellow, 40, 2}, {LevelOrange, 40, 4},
		{LevelBlue, 400, 365.0 / 40}, {LevelBlue, 0, 365.0 / 40},
	}
	var units []Unit
	for g, gr := range groups {
		for i := 0; i < 400; i++ {
			u := Unit{ID: fmt.Sprintf("E%d-%03d", g, i), Street: "S", Level: gr.level}
			if gr.days > 0 {
				u.LastInspected = mid.Add(-time.Duration(gr.days * 24 * float64(time.Hour)))
			}
			units = append(units, u)
		}
	}
	cfg := DefaultConfig(month)
	cfg.RandomShare = 0
	cfg.Budget = 130
	picks := make([]float64, len(groups))
	for seed := uint64(0); seed < 400; seed++ {
		cfg.Seed = seed
		p, err := Draw(units, []Inspector{{ID: "A", Street: "S"}, {ID: "B", Street: "S"}}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range p.Visits {
			var g int
			fmt.Sscanf(v.UnitID, "E%d-", &g)
			picks[g]++
			if v.Reason != ReasonWeighted {
				t.Fatalf("visit %+v: want weighted", v)
			}
		}
	}
	if p, _ := Draw(units, []Inspector{{ID: "A", Street: "S"}}, cfg); !hasNote(p, "no inspection records given") {
		t.Errorf("no records, notes %q", p.Notes)
	}
	for g, gr := range groups {
		ratio := picks[g] / picks[0]
		t.Logf("%s, %v days since inspected (0: never): %v picks, %.2f× the first group (weight %.3g×)", gr.level, gr.days, picks[g], ratio, gr.weight)
		if ratio < gr.weight*0.85 || ratio > gr.weight*1.15 {
			t.Errorf("%s, %v days: drawn %.2f× as often as the first group, want ≈ %.3g", gr.level, gr.days, ratio, gr.weight)
		}
	}
}

// TestDrawPrefersHeavier: with no uniform share, the weighted draw (level
// method) picks each group about in proportion to its weight (a small
// sample of a large pool: inclusion ≈ proportional). 400 seeds, ≈ 4,000 draws per group of
// weight 1; the margin (±15 %) is about five standard errors.
func TestDrawPrefersHeavier(t *testing.T) {
	month := time.Date(2026, 12, 1, 0, 0, 0, 0, Shanghai)
	groups := []struct {
		level   string
		hazards int
		weight  float64
	}{
		{LevelBlue, 0, 1}, {LevelYellow, 0, 2}, {LevelBlue, 2, 2}, {LevelOrange, 0, 4}, {LevelYellow, 2, 4},
	}
	var units []Unit
	recent := month.AddDate(0, 0, -10) // orange, not due
	for g, gr := range groups {
		for i := 0; i < 400; i++ {
			units = append(units, Unit{ID: fmt.Sprintf("E%d-%03d", g, i), Street: "S", Level: gr.level, RecentHazards: gr.hazards, LastInspected: recent})
		}
	}
	cfg := DefaultConfig(month)
	cfg.Method = MethodLevel
	cfg.RandomShare = 0
	cfg.Budget = 130 // 6.5 % of the pool
	picks := make([]float64, len(groups))
	for seed := uint64(0); seed < 400; seed++ {
		cfg.Seed = seed
		p, err := Draw(units, []Inspector{{ID: "A", Street: "S"}, {ID: "B", Street: "S"}}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range p.Visits {
			var g int
			fmt.Sscanf(v.UnitID, "E%d-", &g)
			picks[g]++
			if v.Reason != ReasonWeighted || v.Weight != groups[g].weight {
				t.Fatalf("visit %+v: want weighted, weight %v", v, groups[g].weight)
			}
		}
	}
	for g, gr := range groups {
		ratio := picks[g] / picks[0]
		t.Logf("%s with %d hazards (weight %v): %v picks, %.2f× weight 1", gr.level, gr.hazards, gr.weight, picks[g], ratio)
		if ratio < gr.weight*0.85 || ratio > gr.weight*1.15 {
			t.Errorf("%s with %d hazards: drawn %.2f× as often as weight 1, want ≈ %v", gr.level, gr.hazards, ratio, gr.weight)
		}
	}
}

func TestDefaultConfigSeed(t *testing.T) {
	h := fnv.New64a()
	h.Write([]byte("2026-12"))
	// 2026-11-30 17:00 UTC is already December in Shanghai.
	if got := DefaultConfig(time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC)).Seed; got != h.Sum64() {
		t.Errorf("seed of 2026-12 = %d, want FNV-1a of \"2026-12\" = %d", got, h.Sum64())
	}
	if MonthSeed(time.Date(2026, 12, 1, 0, 0, 0, 0, Shanghai)) == MonthSeed(time.Date(2027, 1, 1, 0, 0, 0, 0, Shanghai)) {
		t.Error("two months share a seed")
	}
	cfg := DefaultConfig(time.Date(2026, 12, 15, 0, 0, 0, 0, Shanghai))
	cfg.Budget = 1
	if err := cfg.Validate(); err != nil {
		t.Errorf("default config with a budget: %v", err)
	}
	if cfg.Method != MethodExpected || cfg.HorizonDays != 365 || cfg.RecordDays != 730 {
		t.Errorf("default method %q, horizon %v, record %v days: want expected, 365, 730", cfg.Method, cfg.HorizonDays, cfg.RecordDays)
	}
	cfg.Method = "" // a configuration from before Method: the level method
	if err := cfg.Validate(); err != nil {
		t.Errorf("method \"\": %v", err)
	}
}

func TestDrawErrors(t *testing.T) {
	month := time.Date(2026, 12, 1, 0, 0, 0, 0, Shanghai)
	good := func() ([]Unit, []Inspector, Config) {
		cfg := DefaultConfig(month)
		cfg.Budget = 5
		return []Unit{{ID: "E1", Street: "S", Level: LevelBlue}, {ID: "E2", Street: "S", Level: LevelRed}},
			[]Inspector{{ID: "A", Street: "S"}}, cfg
	}
	for _, c := range []struct {
		name   string
		change func(*[]Unit, *[]Inspector, *Config)
		want   []string
	}{
		{"budget zero", func(_ *[]Unit, _ *[]Inspector, c *Config) { c.Budget = 0 }, []string{"检查数量须为正数", "budget must be positive"}},
		{"no month", func(_ *[]Unit, _ *[]Inspector, c *Config) { c.Month = time.Time{} }, []string{"month is not set"}},
		{"random share", func(_ *[]Unit, _ *[]Inspector, c *Config) { c.RandomShare = 1.5 }, []string{"random_share must be between 0 and 1"}},
		{"missing weight", func(_ *[]Unit, _ *[]Inspector, c *Config) {
			c.Weights = map[string]float64{LevelOrange: 4, LevelBlue: 1}
		}, []string{"weight of yellow must be a positive number"}},
		{"red weight", func(_ *[]Unit, _ *[]Inspector, c *Config) { c.Weights[LevelRed] = 8 }, []string{"remove the weight of red"}},
		{"negative hazard weight", func(_ *[]Unit, _ *[]Inspector, c *Config) { c.HazardWeight = -1 }, []string{"hazard_weight must not be negative"}},
		{"orange every 0", func(_ *[]Unit, _ *[]Inspector, c *Config) { c.OrangeEveryMonths = 0 }, []string{"orange_every_months must be at least 1"}},
		{"unknown level", func(u *[]Unit, _ *[]Inspector, _ *Config) { (*u)[0].Level = "purple" }, []string{"单位 E1", "unit E1: unknown level \"purple\""}},
		{"duplicate unit", func(u *[]Unit, _ *[]Inspector, _ *Config) { (*u)[1].ID = "E1"; (*u)[1].Level = LevelBlue }, []string{"unit E1 appears twice"}},
		{"unit without street", func(u *[]Unit, _ *[]Inspector, _ *Config) { (*u)[1].Street = "" }, []string{"unit E2 has no street"}},
		{"negative hazards", func(u *[]Unit, _ *[]Inspector, _ *Config) { (*u)[1].RecentHazards = -2 }, []string{"unit E2: recent hazards -2"}},
		{"inspector without street", func(_ *[]Unit, in *[]Inspector, _ *Config) { (*in)[0].Street = "" }, []string{"inspector A has no street"}},
		{"duplicate inspector", func(_ *[]Unit, in *[]Inspector, _ *Config) { *in = append(*in, (*in)[0]) }, []string{"inspector A appears twice"}},
		{"unknown method", func(_ *[]Unit, _ *[]Inspector, c *Config) { c.Method = "greedy" }, []string{"unknown method \"greedy\""}},
		{"horizon zero", func(_ *[]Unit, _ *[]Inspector, c *Config) { c.HorizonDays = 0 }, []string{"horizon_days must be positive"}},
		{"record days zero", func(_ *[]Unit, _ *[]Inspector, c *Config) { c.RecordDays = 0 }, []string{"record_days must be at least 1"}},
		{"record in the month", func(u *[]Unit, _ *[]Inspector, _ *Config) {
			(*u)[0].History = []Record{{At: month.AddDate(0, -1, 0)}, {At: month.Add(time.Hour), Hazards: 1}}
		}, []string{"unit E1: an inspection record of 2026-12-01 is not before the planned month"}},
		{"record without time", func(u *[]Unit, _ *[]Inspector, _ *Config) { (*u)[1].History = []Record{{Hazards: 1}} }, []string{"unit E2: an inspection record has no time"}},
		{"record with negative hazards", func(u *[]Unit, _ *[]Inspector, _ *Config) {
			(*u)[0].History = []Record{{At: month.AddDate(0, 0, -3), Hazards: -1}}
		}, []string{"unit E1: an inspection record has -1 hazards"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			units, ins, cfg := good()
			c.change(&units, &ins, &cfg)
			p, err := Draw(units, ins, cfg)
			if err == nil || p != nil {
				t.Fatalf("no error (plan %v)", p)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("%v does not wrap ErrInvalid", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	units, ins, cfg := good()
	if _, err := Draw(units, ins, cfg); err != nil {
		t.Fatalf("the good inputs: %v", err)
	}
}
