package inspection

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Shanghai is the district's time zone: months, working days and days of
// leave are dates there.
var Shanghai = time.FixedZone("CST", 8*3600)

// Portrait levels (marts.enterprise_risk.level).
const (
	LevelRed    = "red"
	LevelOrange = "orange"
	LevelYellow = "yellow"
	LevelBlue   = "blue"
)

// Why a visit was drawn (Visit.Reason).
const (
	ReasonRed      = "mandatory_red"    // red: every month
	ReasonOrange   = "mandatory_orange" // orange, not inspected recently enough
	ReasonRandom   = "random"           // the uniform share
	ReasonWeighted = "weighted"         // drawn by weight
)

// How the weighted share is weighted (Config.Method).
const (
	// MethodLevel weights a unit by its level weight × (1 + hazard_weight ×
	// recent hazards): the design's first rule.
	MethodLevel = "level"
	// MethodExpected weights a unit by the hazards it is expected to hold
	// when inspected: its estimated hazard rate × the days since its last
	// inspection, capped at Config.HorizonDays — the classic rule for
	// periodic inspection. The rate is its level's rate, estimated from the
	// units' records, shrunk towards the unit's own record (empirical Bayes).
	MethodExpected = "expected"
)

// ErrInvalid is wrapped by every error Draw and Config.Validate return: the
// configuration or an input row is wrong, and the message says which and how.
var ErrInvalid = errors.New("检查计划输入无效 / invalid inspection plan input")

// pcgStream is the second word of the PCG state: fixed, so the plan's seed
// alone determines every draw.
const pcgStream = 0x1da7_5e1f

// Unit is one supervised unit as the planner sees it.
type Unit struct {
	ID     string
	Street string
	// Level is the portrait level: red, orange, yellow or blue.
	Level string
	// RecentHazards is how many hazards were found at the unit in the last
	// 90 days (the level method's input; the expected method reads
	// History).
	RecentHazards int
	// LastInspected is the last inspection's time (zero: never inspected).
	LastInspected time.Time
	// LastInspector is the ID of the inspector who did it ("" if unknown).
	LastInspector string
	// History is the unit's past inspections, in any order, before the
	// planned month: at least those of the Config.RecordDays before it (an
	// earlier one tells when the inspection period of the first in the
	// window began). The expected method estimates the unit's hazard rate
	// from them; the level method ignores them. Nil: no record.
	History []Record
}

// Record is one past inspection of a unit: when, and how many hazards it
// found.
type Record struct {
	At      time.Time
	Hazards int
}

// Inspector is a grid inspector, who inspects units of their street only.
type Inspector struct {
	ID     string
	Street string
	// Leave holds the days of leave: each is a date in Asia/Shanghai (any
	// time of that day); days outside the plan's month are ignored.
	Leave []time.Time
}

// Config is one month's draw.
type Config struct {
	// Month is any instant of the planned month (Asia/Shanghai).
	Month time.Time
	// Budget is the number of inspections in the month. Mandatory visits
	// count within it; when they alone exceed it, they are all kept.
	Budget int
	// RandomShare of what remains of the budget after the mandatory visits
	// is drawn uniformly from every unit not yet drawn (0–1).
	RandomShare float64
	// Weights of the levels in the weighted draw: orange, yellow and blue,
	// each positive. Red takes none: red units are mandatory.
	Weights map[string]float64
	// HazardWeight: each recent hazard multiplies a unit's weight by
	// (1 + HazardWeight × RecentHazards); ≥ 0.
	HazardWeight float64
	// OrangeEveryMonths: an orange unit is mandatory when it was not
	// inspected in the OrangeEveryMonths−1 months before the planned one,
	// so it is inspected at least once in every OrangeEveryMonths
	// consecutive months; ≥ 1.
	OrangeEveryMonths int
	// Seed of the plan's random stream; published with the plan.
	Seed uint64
	// Method weights the weighted share: MethodExpected or MethodLevel
	// ("" is MethodLevel, the rule before Method existed). Weights and
	// HazardWeight serve the level method; the expected method uses
	// Weights only for a level whose records hold no hazard (see
	// LevelRate).
	Method string
	// HorizonDays caps, in the expected method, the days since a unit's
	// last inspection that its expected hazards grow with, and the days an
	// inspection's record covers: hazards older than that are taken as
	// found and fixed by the unit itself, so a unit never inspected counts
	// as not inspected for HorizonDays. > 0 (expected method).
	HorizonDays float64
	// RecordDays: the expected method estimates hazard rates from the
	// inspections of the RecordDays before the month. ≥ 1 (expected
	// method).
	RecordDays int
}

// DefaultConfig is the design's configuration for month with budget 0 (the
// caller sets it): random share 10 %, the expected method with a horizon
// of a year and two years of records, weights orange 4, yellow 2, blue 1,
// hazard weight 0.5 (the level method's, and the expected method's for a
// level without recorded hazards), orange at least quarterly, the seed
// MonthSeed(month).
//
// Why a year: units must run their own hazard checks (安全生产法 art. 41)
// and report their hazard statistics every quarter and every year
// (《安全生产事故隐患排查治理暂行规定》), so a hazard is unlikely to stay
// unfound by the unit for more than a year; and the platform's inspection
// history holds a year, so a longer wait cannot be told from "not in the
// data". Why two years of records: at the district's rate a unit is
// inspected about once a year, so two years give about two inspections to
// estimate its own rate from, while older ones describe a unit whose
// management may since have changed.
func DefaultConfig(month time.Time) Config {
	return Config{
		Month:             month,
		RandomShare:       0.1,
		Weights:           map[string]float64{LevelOrange: 4, LevelYellow: 2, LevelBlue: 1},
		HazardWeight:      0.5,
		OrangeEveryMonths: 3,
		Seed:              MonthSeed(month),
		Method:            MethodExpected,
		HorizonDays:       365,
		RecordDays:        730,
	}
}

// MonthSeed is the default seed of a month: FNV-1a (64-bit) of its name in
// Asia/Shanghai, "2026-12" — anyone can recompute it.
func MonthSeed(month time.Time) uint64 {
	h := fnv.New64a()
	h.Write([]byte(month.In(Shanghai).Format("2006-01")))
	return h.Sum64()
}

// Validate checks the configuration; every problem is named, zh / en.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...))
	}
	if c.Month.IsZero() {
		bad("未指定月份 / month is not set")
	}
	if c.Budget <= 0 {
		bad("检查数量须为正数 / budget must be positive (got %d)", c.Budget)
	}
	if !(c.RandomShare >= 0 && c.RandomShare <= 1) {
		bad("随机比例须在 0 与 1 之间 / random_share must be between 0 and 1 (got %v)", c.RandomShare)
	}
	for _, lv := range []string{LevelOrange, LevelYellow, LevelBlue} {
		if w, ok := c.Weights[lv]; !ok || !(w > 0) || math.IsInf(w, 0) {
			bad("%s 的权重须为正数 / weight of %s must be a positive number (got %v)", lv, lv, c.Weights[lv])
		}
	}
	for lv := range c.Weights {
		switch lv {
		case LevelOrange, LevelYellow, LevelBlue:
		case LevelRed:
			bad("不应设置 red 的权重：红色单位每月必检 / remove the weight of red: red units are inspected every month")
		default:
			bad("未知等级 %q 的权重 / weight of unknown level %q (want orange, yellow, blue)", lv, lv)
		}
	}
	if !(c.HazardWeight >= 0) || math.IsInf(c.HazardWeight, 0) {
		bad("隐患权重须为非负数 / hazard_weight must not be negative (got %v)", c.HazardWeight)
	}
	if c.OrangeEveryMonths < 1 {
		bad("橙色单位检查间隔须至少 1 个月 / orange_every_months must be at least 1 (got %d)", c.OrangeEveryMonths)
	}
	switch c.Method {
	case "", MethodLevel:
	case MethodExpected:
		if !(c.HorizonDays > 0) || math.IsInf(c.HorizonDays, 0) {
			bad("期望隐患法的时间上限须为正数 / horizon_days must be positive for the expected method (got %v)", c.HorizonDays)
		}
		if c.RecordDays < 1 {
			bad("期望隐患法的记录窗口须至少 1 天 / record_days must be at least 1 for the expected method (got %d)", c.RecordDays)
		}
	default:
		bad("未知加权方法 %q / unknown method %q (want expected or level)", c.Method, c.Method)
	}
	return errors.Join(errs...)
}

// Visit is one planned inspection.
type Visit struct {
	UnitID string
	Street string
	// InspectorID is "" when the street has no inspector available in the
	// month (the plan's notes say so); Day is then zero too.
	InspectorID string
	// Reason is one of the Reason constants.
	Reason string
	// Weight is the unit's draw weight; 0 for red units, which are
	// mandatory. Level method: level weight × (1 + hazard_weight × recent
	// hazards). Expected method: the hazards an inspection in the middle of
	// the month is expected to find, its rate × days since its last
	// inspection (≤ HorizonDays); in the level weights' units instead when
	// no record holds a hazard (Plan.Rates says so).
	Weight float64
	// Day is the planned day, midnight in Asia/Shanghai: a working day
	// (Monday–Friday) of the month, not a day of the inspector's leave.
	Day time.Time
}

// Plan is a month's draw: its inputs' seed, the visits (by street,
// inspector, day, unit) and notes for the people who publish it.
type Plan struct {
	// Month is the first day of the month, midnight in Asia/Shanghai.
	Month  time.Time
	Seed   uint64
	Budget int
	// Method is the weighted share's method (MethodExpected or MethodLevel).
	Method string
	// HorizonDays and RecordDays are the configuration's (published with
	// the plan, so that it can be drawn again).
	HorizonDays float64
	RecordDays  int
	// Rates are, for the expected method, what it estimated for orange,
	// yellow and blue units from their records.
	Rates  map[string]LevelRate `json:",omitempty"`
	Visits []Visit
	// Notes are sentences (zh / en) on what did not go as configured:
	// mandatory visits above the budget, too few units, a street without an
	// available inspector, a street whose loads could not be balanced, a
	// level whose records hold no hazard (expected method).
	Notes []string
}

// LevelRate is the expected method's estimate for one portrait level, from
// the inspections of its units in the record window: each covers the days
// since the unit's inspection before it, at most HorizonDays (HorizonDays
// when there was none).
type LevelRate struct {
	// Found is the hazards those inspections found; Days the days they
	// covered; Units how many units they were at.
	Found int
	Days  float64
	Units int
	// Rate is Found / Days, hazards found per inspected day: the prior mean
	// of the level's units' rates. When Found is 0 (no hazard recorded: no
	// way to tell the level's rate) it is the level's weight × the other
	// levels' Found / Σ weight × Days, or the weight alone when no level has
	// a hazard recorded; Fallback says so.
	Rate     float64
	Fallback bool
	// SD is the spread of the rates of the level's units beyond what chance
	// gives (Marshall's moment estimator, 1991); 0 when none is seen, and
	// every unit of the level then gets Rate, whatever its own record.
	SD float64
}

// Draw makes the month's plan. Units and inspectors are sorted by ID first,
// so their order does not matter; the same inputs and configuration (seed
// included) give the same plan. An invalid configuration or input row is
// an error wrapping ErrInvalid that names it.
func Draw(units []Unit, inspectors []Inspector, cfg Config) (*Plan, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := cfg.Month.In(Shanghai)
	month := time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, Shanghai)
	us, err := sortedUnits(units, month)
	if err != nil {
		return nil, err
	}
	ins, err := sortedInspectors(inspectors)
	if err != nil {
		return nil, err
	}
	method := cmp.Or(cfg.Method, MethodLevel)
	d := &draw{cfg: cfg, month: month, units: us, rng: rand.New(rand.NewPCG(cfg.Seed, pcgStream)),
		plan: &Plan{Month: month, Seed: cfg.Seed, Budget: cfg.Budget, Method: method, HorizonDays: cfg.HorizonDays, RecordDays: cfg.RecordDays}, drawn: make([]bool, len(us))}
	if method == MethodExpected {
		d.expectedWeights()
	}
	d.drawUnits()
	d.assign(ins)
	slices.SortFunc(d.plan.Visits, func(a, b Visit) int {
		return cmp.Or(cmp.Compare(a.Street, b.Street), cmp.Compare(a.InspectorID, b.InspectorID), a.Day.Compare(b.Day), cmp.Compare(a.UnitID, b.UnitID))
	})
	return d.plan, nil
}

func sortedUnits(units []Unit, month time.Time) ([]Unit, error) {
	us := slices.Clone(units)
	slices.SortFunc(us, func(a, b Unit) int { return cmp.Compare(a.ID, b.ID) })
	var errs []error
	bad := func(format string, a ...any) {
		if len(errs) < 10 {
			errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...))
		}
	}
	for i, u := range us {
		switch {
		case u.ID == "":
			bad("有单位未填编号 / a unit has no id (street %q)", u.Street)
		case i > 0 && us[i-1].ID == u.ID:
			bad("单位 %s 重复 / unit %s appears twice", u.ID, u.ID)
		}
		if u.Street == "" {
			bad("单位 %s 未填街道 / unit %s has no street", u.ID, u.ID)
		}
		switch u.Level {
		case LevelRed, LevelOrange, LevelYellow, LevelBlue:
		default:
			bad("单位 %s 的风险等级 %q 未知 / unit %s: unknown level %q (want red, orange, yellow or blue)", u.ID, u.Level, u.ID, u.Level)
		}
		if u.RecentHazards < 0 {
			bad("单位 %s 的近期隐患数为负 / unit %s: recent hazards %d is negative", u.ID, u.ID, u.RecentHazards)
		}
		for _, r := range u.History {
			switch {
			case r.At.IsZero():
				bad("单位 %s 有一条检查记录未填时间 / unit %s: an inspection record has no time", u.ID, u.ID)
			case !r.At.Before(month):
				bad("单位 %s 的检查记录 %s 不早于计划月份 / unit %s: an inspection record of %s is not before the planned month",
					u.ID, r.At.In(Shanghai).Format("2006-01-02"), u.ID, r.At.In(Shanghai).Format("2006-01-02"))
			case r.Hazards < 0:
				bad("单位 %s 的检查记录隐患数为负 / unit %s: an inspection record has %d hazards", u.ID, u.ID, r.Hazards)
			default:
				continue
			}
			break
		}
	}
	return us, errors.Join(errs...)
}

func sortedInspectors(inspectors []Inspector) ([]Inspector, error) {
	ins := slices.Clone(inspectors)
	slices.SortFunc(ins, func(a, b Inspector) int { return cmp.Compare(a.ID, b.ID) })
	var errs []error
	for i, in := range ins {
		switch {
		case in.ID == "":
			errs = append(errs, fmt.Errorf("%w: 有检查员未填编号 / an inspector has no id (street %q)", ErrInvalid, in.Street))
		case i > 0 && ins[i-1].ID == in.ID:
			errs = append(errs, fmt.Errorf("%w: 检查员 %s 重复 / inspector %s appears twice", ErrInvalid, in.ID, in.ID))
		case in.Street == "":
			errs = append(errs, fmt.Errorf("%w: 检查员 %s 未填街道 / inspector %s has no street", ErrInvalid, in.ID, in.ID))
		}
		if len(errs) >= 10 {
			break
		}
	}
	return ins, errors.Join(errs...)
}

// draw is one Draw call's state.
type draw struct {
	cfg   Config
	month time.Time
	units []Unit // by ID
	rng   *rand.Rand
	plan  *Plan
	drawn []bool
	unit  []int // per visit, its unit's index
	// expected holds, for the expected method, each unit's weight (by
	// index into units).
	expected []float64
}

func (d *draw) note(format string, a ...any) {
	d.plan.Notes = append(d.plan.Notes, fmt.Sprintf(format, a...))
}

func (d *draw) weight(i int) float64 {
	u := d.units[i]
	switch {
	case u.Level == LevelRed:
		return 0
	case d.expected != nil:
		return d.expected[i]
	}
	return d.cfg.Weights[u.Level] * (1 + d.cfg.HazardWeight*float64(u.RecentHazards))
}

func (d *draw) add(i int, reason string) {
	d.drawn[i] = true
	d.unit = append(d.unit, i)
	u := d.units[i]
	d.plan.Visits = append(d.plan.Visits, Visit{UnitID: u.ID, Street: u.Street, Reason: reason, Weight: d.weight(i)})
}

// expectedWeights computes the expected method's weights
// (docs/inspection.md, "The draw"): per unit, the hazards found over the
// days covered by its inspections in the record window; per level, the
// prior of its units' rates from them (mean and spread, Marshall's moment
// estimator); per unit, the posterior mean of its rate (gamma–Poisson:
// (m² + v·k) / (m + v·e) for level mean m, spread v, k hazards over e
// days) × the days from its last inspection to the middle of the month,
// at least a day and at most HorizonDays.
func (d *draw) expectedWeights() {
	h := d.cfg.HorizonDays
	from := d.month.AddDate(0, 0, -d.cfg.RecordDays)
	next := d.month.AddDate(0, 1, 0)
	mid := d.month.Add(next.Sub(d.month) / 2)
	found := make([]int, len(d.units))
	days := make([]float64, len(d.units))
	last := make([]time.Time, len(d.units))
	for i, u := range d.units {
		last[i] = u.LastInspected
		rs := slices.SortedFunc(slices.Values(u.History), func(a, b Record) int { return a.At.Compare(b.At) })
		for k, r := range rs {
			if r.At.After(last[i]) {
				last[i] = r.At
			}
			if r.At.Before(from) {
				continue
			}
			covered := h
			if k > 0 {
				covered = min(h, r.At.Sub(rs[k-1].At).Hours()/24)
			}
			found[i] += r.Hazards
			days[i] += covered
		}
	}
	levels := []string{LevelOrange, LevelYellow, LevelBlue}
	rates := map[string]LevelRate{}
	for _, lv := range levels {
		var lr LevelRate
		for i, u := range d.units {
			if u.Level == lv && days[i] > 0 {
				lr.Found += found[i]
				lr.Days += days[i]
				lr.Units++
			}
		}
		if lr.Found > 0 {
			lr.Rate = float64(lr.Found) / lr.Days
			// Marshall (1991): s² = Σ eᵢ(rᵢ − m)² / Σ eᵢ, v = s² − m / ē.
			var s2 float64
			for i, u := range d.units {
				if u.Level == lv && days[i] > 0 {
					r := float64(found[i]) / days[i]
					s2 += days[i] * (r - lr.Rate) * (r - lr.Rate)
				}
			}
			s2 /= lr.Days
			lr.SD = math.Sqrt(max(0, s2-lr.Rate/(lr.Days/float64(lr.Units))))
		}
		rates[lv] = lr
	}
	var kOK, wdOK float64
	for _, lv := range levels {
		if lr := rates[lv]; lr.Found > 0 {
			kOK += float64(lr.Found)
			wdOK += d.cfg.Weights[lv] * lr.Days
		}
	}
	var fallback []string
	for _, lv := range levels {
		if lr := rates[lv]; lr.Found == 0 {
			lr.Rate, lr.Fallback = d.cfg.Weights[lv], true
			if kOK > 0 {
				lr.Rate *= kOK / wdOK
			}
			rates[lv] = lr
			fallback = append(fallback, lv)
		}
	}
	switch {
	case len(fallback) == len(levels) && !slices.ContainsFunc(levels, func(lv string) bool { return rates[lv].Units > 0 }):
		d.note("未提供检查记录：按等级权重 × 距上次检查天数加权 / no inspection records given: units are weighted by level weight × days since their last inspection")
	case len(fallback) > 0:
		d.note("%s 单位的检查记录中没有隐患，其隐患率按等级权重估计 / no hazard in the records of %s units: their rate is taken from the level weights",
			strings.Join(fallback, "、"), strings.Join(fallback, ", "))
	}
	d.plan.Rates = rates
	d.expected = make([]float64, len(d.units))
	for i, u := range d.units {
		lr, ok := rates[u.Level]
		if !ok {
			continue // red: mandatory
		}
		rate := lr.Rate
		if v := lr.SD * lr.SD; v > 0 {
			rate = (lr.Rate*lr.Rate + v*float64(found[i])) / (lr.Rate + v*days[i])
		}
		since := h
		if !last[i].IsZero() {
			since = min(h, max(1, mid.Sub(last[i]).Hours()/24))
		}
		d.expected[i] = rate * since
	}
}

// drawUnits draws the units: mandatory, then the uniform share, then the
// weighted rest (docs/inspection.md, "The draw", steps 1–3).
func (d *draw) drawUnits() {
	orangeSince := d.month.AddDate(0, -(d.cfg.OrangeEveryMonths - 1), 0)
	for i, u := range d.units {
		switch {
		case u.Level == LevelRed:
			d.add(i, ReasonRed)
		case u.Level == LevelOrange && u.LastInspected.Before(orangeSince):
			d.add(i, ReasonOrange)
		}
	}
	mandatory := len(d.plan.Visits)
	if mandatory > d.cfg.Budget {
		d.note("必检单位 %d 家（红色每月、橙色每 %d 个月）超过检查数量 %d，全部保留 / %d mandatory units (red monthly, orange every %d months) exceed the budget of %d; all are kept",
			mandatory, d.cfg.OrangeEveryMonths, d.cfg.Budget, mandatory, d.cfg.OrangeEveryMonths, d.cfg.Budget)
	}
	remaining := max(0, d.cfg.Budget-mandatory)
	var pool []int
	for i := range d.units {
		if !d.drawn[i] {
			pool = append(pool, i)
		}
	}
	if remaining > len(pool) {
		d.note("单位不足：检查数量 %d，仅 %d 家单位可抽，全部纳入 / too few units: a budget of %d, only %d units in all; every unit is drawn",
			d.cfg.Budget, len(d.units), d.cfg.Budget, len(d.units))
	}
	// Uniform share: a partial Fisher–Yates shuffle of the pool.
	nRandom := min(len(pool), int(math.Round(d.cfg.RandomShare*float64(remaining))))
	for k := 0; k < nRandom; k++ {
		j := k + d.rng.IntN(len(pool)-k)
		pool[k], pool[j] = pool[j], pool[k]
		d.add(pool[k], ReasonRandom)
	}
	rest := pool[nRandom:]
	slices.Sort(rest)
	nWeighted := min(len(rest), remaining-nRandom)
	if nWeighted <= 0 {
		return
	}
	// Weighted without replacement (Efraimidis–Spirakis): the units with the
	// largest keys u^(1/w), compared as log(u)/w; u in (0, 1].
	type keyed struct {
		key float64
		i   int
	}
	keys := make([]keyed, len(rest))
	for k, i := range rest {
		keys[k] = keyed{math.Log(1-d.rng.Float64()) / d.weight(i), i}
	}
	slices.SortFunc(keys, func(a, b keyed) int { return cmp.Or(cmp.Compare(b.key, a.key), cmp.Compare(a.i, b.i)) })
	for _, k := range keys[:nWeighted] {
		d.add(k.i, ReasonWeighted)
	}
}

// assign gives each visit an inspector of its street and a day (step 4).
func (d *draw) assign(ins []Inspector) {
	var workdays []time.Time
	for t := d.month; t.Month() == d.month.Month(); t = t.AddDate(0, 0, 1) {
		if wd := t.Weekday(); wd != time.Saturday && wd != time.Sunday {
			workdays = append(workdays, t)
		}
	}
	// Per street, the inspectors with at least one working day off leave,
	// and those days.
	avail := map[string][]inspectorDays{}
	for _, in := range ins {
		leave := map[time.Time]bool{}
		for _, l := range in.Leave {
			l = l.In(Shanghai)
			leave[time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, Shanghai)] = true
		}
		var days []time.Time
		for _, t := range workdays {
			if !leave[t] {
				days = append(days, t)
			}
		}
		if len(days) > 0 {
			avail[in.Street] = append(avail[in.Street], inspectorDays{in.ID, days})
		}
	}
	byStreet := map[string][]int{}
	var streets []string
	for i, v := range d.plan.Visits {
		if _, ok := byStreet[v.Street]; !ok {
			streets = append(streets, v.Street)
		}
		byStreet[v.Street] = append(byStreet[v.Street], i)
	}
	slices.Sort(streets)
	for _, s := range streets {
		vs := byStreet[s]
		slices.SortFunc(vs, func(a, b int) int { return cmp.Compare(d.plan.Visits[a].UnitID, d.plan.Visits[b].UnitID) })
		if len(avail[s]) == 0 {
			d.note("街道 %s 本月无可用检查员（无检查员或全月休假），%d 项检查未分配 / street %s: no inspector available this month (none, or all on leave); %d visits left unassigned",
				s, len(vs), s, len(vs))
			continue
		}
		d.assignStreet(s, vs, avail[s])
	}
}

type inspectorDays struct {
	id   string
	days []time.Time // working days off leave, in order
}

// assignStreet assigns a street's visits (indexes into plan.Visits) to its
// available inspectors: loads fixed first (differing by at most one where
// the last-inspector rule allows), then each visit in random order to the
// least-loaded allowed inspector with room, random ties.
func (d *draw) assignStreet(street string, vs []int, ins []inspectorDays) {
	n, k := len(vs), len(ins)
	last := map[string]int{}
	if k > 1 { // with one inspector, the last one is the only one
		for j, in := range ins {
			last[in.id] = j
		}
	}
	forbid := make([]int, n) // per visit, the inspector it must not get, or -1
	f := make([]int, k)      // per inspector, the visits that must not get them
	repeat := 0
	for a, vi := range vs {
		forbid[a] = -1
		lastID := d.units[d.unit[vi]].LastInspector
		if j, ok := last[lastID]; ok {
			forbid[a] = j
			f[j]++
		}
		if k == 1 && lastID == ins[0].id {
			repeat++
		}
	}
	if repeat > 0 {
		d.note("街道 %s 仅 1 名可用检查员，%d 家单位由上次检查员再次检查 / street %s has one available inspector: %d unit(s) inspected by their last inspector",
			street, repeat, street, repeat)
	}
	caps := d.capacities(n, f)
	if slices.Max(caps)-slices.Min(caps) > 1 {
		d.note("街道 %s：为避免同一检查员连续检查，检查员工作量相差超过 1 项（%d–%d）/ street %s: loads differ by more than one (%d–%d) so that units do not get their last inspector again",
			street, slices.Min(caps), slices.Max(caps), street, slices.Min(caps), slices.Max(caps))
	}
	who := make([]int, n)
	load := make([]int, k)
	order := d.rng.Perm(n)
	for p, a := range order {
		best, ties := -1, 0
		for j := range ins {
			if load[j] >= caps[j] || j == forbid[a] {
				continue
			}
			switch {
			case best < 0 || load[j] < load[best]:
				best, ties = j, 1
			case load[j] == load[best]:
				ties++
				if d.rng.IntN(ties) == 0 {
					best = j
				}
			}
		}
		if best < 0 {
			// The only room left is with this visit's forbidden inspector x:
			// swap with an assigned visit that x may take (one exists when
			// the capacities are feasible, which capacities ensures).
			x := forbid[a]
			best = x
			for _, b := range order[:p] {
				if who[b] != x && forbid[b] != x {
					best, who[b] = who[b], x
					load[x]++
					load[best]--
					break
				}
			}
		}
		who[a] = best
		load[best]++
	}
	// Days: each inspector's visits in random order, spread evenly over
	// their available days with a random phase.
	mine := make([][]int, k)
	for a, j := range who {
		mine[j] = append(mine[j], a)
	}
	for j, as := range mine {
		if len(as) == 0 {
			continue
		}
		d.rng.Shuffle(len(as), func(x, y int) { as[x], as[y] = as[y], as[x] })
		days := ins[j].days
		phase := d.rng.Float64()
		for i, a := range as {
			v := &d.plan.Visits[vs[a]]
			v.InspectorID = ins[j].id
			v.Day = days[min(len(days)-1, int((float64(i)+phase)*float64(len(days))/float64(len(as))))]
		}
	}
}

// capacities fixes how many visits each of k inspectors gets (n in all):
// n/k each, the remainder one more to inspectors drawn at random. An
// inspector who is the last inspector of f[j] visits can take at most
// n − f[j]; when that is below n/k, the loads cannot be balanced and the
// others share the excess.
func (d *draw) capacities(n int, f []int) []int {
	k := len(f)
	q, r := n/k, n%k
	caps := make([]int, k)
	var eligible, others []int
	for j := range caps {
		caps[j] = q
		if f[j] <= n-q-1 {
			eligible = append(eligible, j)
		} else {
			others = append(others, j)
		}
	}
	d.rng.Shuffle(len(eligible), func(a, b int) { eligible[a], eligible[b] = eligible[b], eligible[a] })
	for _, j := range append(eligible, others...)[:r] {
		caps[j]++
	}
	for j := range caps {
		if excess := caps[j] - (n - f[j]); excess > 0 {
			caps[j] -= excess
			for ; excess > 0; excess-- { // to the least capacity, random ties
				best, ties := -1, 0
				for i := range caps {
					if i == j {
						continue
					}
					switch {
					case best < 0 || caps[i] < caps[best]:
						best, ties = i, 1
					case caps[i] == caps[best]:
						ties++
						if d.rng.IntN(ties) == 0 {
							best = i
						}
					}
				}
				caps[best]++
			}
		}
	}
	return caps
}
