package inspection

import (
	"cmp"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"slices"
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
	// 90 days.
	RecentHazards int
	// LastInspected is the last inspection's time (zero: never inspected).
	LastInspected time.Time
	// LastInspector is the ID of the inspector who did it ("" if unknown).
	LastInspector string
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
}

// DefaultConfig is the design's configuration for month with budget 0 (the
// caller sets it): random share 10 %, weights orange 4, yellow 2, blue 1,
// hazard weight 0.5, orange at least quarterly, the seed MonthSeed(month).
func DefaultConfig(month time.Time) Config {
	return Config{
		Month:             month,
		RandomShare:       0.1,
		Weights:           map[string]float64{LevelOrange: 4, LevelYellow: 2, LevelBlue: 1},
		HazardWeight:      0.5,
		OrangeEveryMonths: 3,
		Seed:              MonthSeed(month),
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
	// Weight is the unit's draw weight, level weight × (1 + hazard_weight ×
	// recent hazards); 0 for red units, which are mandatory.
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
	Visits []Visit
	// Notes are sentences (zh / en) on what did not go as configured:
	// mandatory visits above the budget, too few units, a street without an
	// available inspector, a street whose loads could not be balanced.
	Notes []string
}

// Draw makes the month's plan. Units and inspectors are sorted by ID first,
// so their order does not matter; the same inputs and configuration (seed
// included) give the same plan. An invalid configuration or input row is
// an error wrapping ErrInvalid that names it.
func Draw(units []Unit, inspectors []Inspector, cfg Config) (*Plan, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	us, err := sortedUnits(units)
	if err != nil {
		return nil, err
	}
	ins, err := sortedInspectors(inspectors)
	if err != nil {
		return nil, err
	}
	m := cfg.Month.In(Shanghai)
	month := time.Date(m.Year(), m.Month(), 1, 0, 0, 0, 0, Shanghai)
	d := &draw{cfg: cfg, month: month, units: us, rng: rand.New(rand.NewPCG(cfg.Seed, pcgStream)),
		plan: &Plan{Month: month, Seed: cfg.Seed, Budget: cfg.Budget}, drawn: make([]bool, len(us))}
	d.drawUnits()
	d.assign(ins)
	slices.SortFunc(d.plan.Visits, func(a, b Visit) int {
		return cmp.Or(cmp.Compare(a.Street, b.Street), cmp.Compare(a.InspectorID, b.InspectorID), a.Day.Compare(b.Day), cmp.Compare(a.UnitID, b.UnitID))
	})
	return d.plan, nil
}

func sortedUnits(units []Unit) ([]Unit, error) {
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
}

func (d *draw) note(format string, a ...any) {
	d.plan.Notes = append(d.plan.Notes, fmt.Sprintf(format, a...))
}

func (d *draw) weight(u Unit) float64 {
	if u.Level == LevelRed {
		return 0
	}
	return d.cfg.Weights[u.Level] * (1 + d.cfg.HazardWeight*float64(u.RecentHazards))
}

func (d *draw) add(i int, reason string) {
	d.drawn[i] = true
	d.unit = append(d.unit, i)
	u := d.units[i]
	d.plan.Visits = append(d.plan.Visits, Visit{UnitID: u.ID, Street: u.Street, Reason: reason, Weight: d.weight(u)})
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
		keys[k] = keyed{math.Log(1-d.rng.Float64()) / d.weight(d.units[i]), i}
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
