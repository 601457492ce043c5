package sim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// Hidden ground truth of the units' hazards (docs/inspection.md, "Does risk
// weighting help?"): what an inspection could find, which the platform never
// sees. Each unit has a hidden riskiness correlated (ρ) with what its
// portrait sees; latent hazards appear at the unit as a Poisson process whose
// rate grows with that riskiness, and stay until an inspection finds them
// (each present hazard with probability PDetect) or the unit fixes them
// itself. The bench compares inspection plans against it; the planner never
// reads it.

// TruthConfig sets the hidden ground truth.
type TruthConfig struct {
	// Seed makes the truth reproducible: the same world, config and seed
	// give the same hazards at the same times, whatever the inspections.
	Seed int64
	// Rho is the correlation between a unit's hidden log-riskiness and the
	// latent score its portrait level is a band of (a polyserial
	// correlation: the level sees the score only coarsely). 0 is the
	// control: the portrait knows nothing. −1…1.
	Rho float64
	// Sigma is the standard deviation of the hidden log-riskiness: how much
	// more often hazards appear at one unit than at another. ≥ 0.
	Sigma float64
	// PDetect is the chance that an inspection finds a given present
	// hazard. (0, 1].
	PDetect float64
	// SelfFixDays is the mean time (days) until a unit fixes an unfound
	// hazard on its own (企业自查自改); 0: never, a hazard stays until an
	// inspection finds it. ≥ 0.
	SelfFixDays float64
	// RatePerDay is the mean number of hazards appearing per unit and day;
	// 0: derived from the world's inspection history (BaseRate).
	RatePerDay float64
}

// DefaultTruthConfig is the bench's truth, its parameters chosen for
// plausibility before any run (docs/inspection.md):
//   - Rho 0.5: the portrait sees the assessed risk sources, not how a unit is
//     run, which drives much of where hazards appear.
//   - Sigma 1: the unit at the 90th percentile of riskiness has e^1.28 ≈ 3.6×
//     the median rate and the riskiest tenth of units produce about 40 % of
//     hazards — concentrated, as violations across establishments are,
//     without a handful of units producing most.
//   - PDetect 0.7: a checklist inspection misses some hazards (concealed
//     wiring, records not shown).
//   - SelfFixDays 180: units must run their own hazard checks and fix what
//     they find (安全生产法 art. 41); half a year on average for one they did
//     not cause to be found.
//   - RatePerDay from the history: the world's inspections found as many
//     hazards per inspection, at its rate of inspections, as this rate gives.
func DefaultTruthConfig() TruthConfig {
	return TruthConfig{Seed: 25, Rho: 0.5, Sigma: 1, PDetect: 0.7, SelfFixDays: 180}
}

// Validate checks the configuration.
func (c TruthConfig) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("sim truth: "+format, a...)) }
	if !(c.Rho >= -1 && c.Rho <= 1) {
		bad("rho %v: 须在 −1 与 1 之间 / must be between −1 and 1", c.Rho)
	}
	if !(c.Sigma >= 0) || math.IsInf(c.Sigma, 0) {
		bad("sigma %v: 须为非负数 / must not be negative", c.Sigma)
	}
	if !(c.PDetect > 0 && c.PDetect <= 1) {
		bad("p_detect %v: 须在 0 与 1 之间 / must be in (0, 1]", c.PDetect)
	}
	if !(c.SelfFixDays >= 0) || math.IsInf(c.SelfFixDays, 0) {
		bad("self_fix_days %v: 须为非负数 / must not be negative (0: never)", c.SelfFixDays)
	}
	if !(c.RatePerDay >= 0) || math.IsInf(c.RatePerDay, 0) {
		bad("rate_per_day %v: 须为非负数 / must not be negative (0: from the history)", c.RatePerDay)
	}
	return errors.Join(errs...)
}

// Hazard is a latent hazard at a unit.
type Hazard struct {
	ID       string // unit id # sequence
	Unit     string
	Appeared time.Time
}

// Truth is the hidden state of every unit's hazards. It is not safe for
// concurrent use.
type Truth struct {
	cfg   TruthConfig
	epoch time.Time
	rate  float64
	units []truthUnit
	index map[string]int
}

type truthUnit struct {
	id, level string
	score     float64 // the portrait's latent score
	risk      float64 // hidden log-riskiness
	rate      float64 // hazards per day
	arrive    *rand.Rand
	detect    *rand.Rand
	now, next float64 // days since the epoch: state known up to now; next arrival
	seq       int
	present   []latent
}

type latent struct {
	seq            int
	appeared, gone float64 // days since the epoch; gone: fixed by the unit itself
}

// historyWindowDays caps the warm start of a unit never inspected in the
// world's history (which covers the year before the epoch).
const historyWindowDays = 365

// NewTruth draws the hidden truth of w's units. The hidden state starts at
// w.Epoch, the end of the world's history: each unit then holds the hazards
// that appeared since its last inspection in that history (a year for a
// unit never inspected).
func NewTruth(w *World, cfg TruthConfig) (*Truth, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(w.Units) == 0 {
		return nil, errors.New("sim truth: the world has no units")
	}
	t := &Truth{cfg: cfg, epoch: w.Epoch, index: make(map[string]int, len(w.Units))}
	t.rate = cfg.RatePerDay
	if t.rate == 0 {
		var err error
		if t.rate, err = BaseRate(w, cfg); err != nil {
			return nil, err
		}
	}
	levels := w.InherentLevels()
	last, err := lastInspections(w)
	if err != nil {
		return nil, err
	}
	// The four levels are quantile bands of a standard normal latent score,
	// blue lowest.
	order := []string{"blue", "yellow", "orange", "red"}
	count := map[string]int{}
	for _, u := range w.Units {
		count[levels[u.ID]]++
	}
	lo := map[string]float64{}
	var cum float64
	for _, lv := range order {
		lo[lv] = cum
		cum += float64(count[lv]) / float64(len(w.Units))
	}
	r := rng(cfg.Seed, "truth-latent")
	var sum float64
	t.units = make([]truthUnit, len(w.Units))
	for i, u := range w.Units {
		lv := levels[u.ID]
		p := lo[lv] + (1-r.Float64())*float64(count[lv])/float64(len(w.Units))
		p = min(max(p, 1e-12), 1-1e-12)
		score := math.Sqrt2 * math.Erfinv(2*p-1)
		risk := cfg.Rho*score + math.Sqrt(1-cfg.Rho*cfg.Rho)*r.NormFloat64()
		tu := truthUnit{id: u.ID, level: lv, score: score, risk: risk, rate: math.Exp(cfg.Sigma * risk),
			arrive: rng(cfg.Seed, "truth-arrivals", int64(i)), detect: rng(cfg.Seed, "truth-detect", int64(i))}
		sum += tu.rate
		window := float64(historyWindowDays)
		if at, ok := last[u.ID]; ok {
			window = min(window, w.Epoch.Sub(at).Hours()/24)
		}
		tu.now = -window
		t.units[i] = tu
		t.index[u.ID] = i
	}
	mean := sum / float64(len(t.units))
	for i := range t.units {
		u := &t.units[i]
		u.rate *= t.rate / mean
		u.next = u.now + u.arrive.ExpFloat64()/u.rate
		t.advance(u, 0)
	}
	return t, nil
}

// BaseRate is the mean daily hazard rate per unit that reproduces the
// world's history: its inspections found h hazards each and came every T
// days per unit on average (T = 365 × units / inspections in the year).
// A unit inspected every T days holds, just before an inspection in the
// steady state, S = rate × L(1 − e^(−T/L)) / (1 − (1 − p)e^(−T/L))
// hazards (L = SelfFixDays, p = PDetect; S = rate × T / p when hazards
// are never fixed by the unit), and an inspection finds p × S = h.
func BaseRate(w *World, cfg TruthConfig) (float64, error) {
	ins := w.Tables["inspections"]
	if ins == nil || len(ins.Rows) == 0 {
		return 0, errors.New("sim truth: the world has no inspection history to derive the hazard rate from; set rate_per_day")
	}
	fc := slices.Index(ins.Cols, "hazards_found")
	var found float64
	for _, row := range ins.Rows {
		n, err := strconv.Atoi(row[fc])
		if err != nil {
			return 0, fmt.Errorf("sim truth: inspection %s: hazards_found %q: %w", row[0], row[fc], err)
		}
		found += float64(n)
	}
	h := found / float64(len(ins.Rows))
	T := historyWindowDays * float64(len(w.Units)) / float64(len(ins.Rows))
	if cfg.SelfFixDays == 0 {
		return h / T, nil
	}
	L, p := cfg.SelfFixDays, cfg.PDetect
	e := math.Exp(-T / L)
	return h / (p * L * (1 - e) / (1 - (1-p)*e)), nil
}

// lastInspections is each unit's last inspection in the world's history.
func lastInspections(w *World) (map[string]time.Time, error) {
	last := map[string]time.Time{}
	ins := w.Tables["inspections"]
	if ins == nil {
		return last, nil
	}
	ec, ac := slices.Index(ins.Cols, "enterprise_id"), slices.Index(ins.Cols, "inspected_at")
	for _, row := range ins.Rows {
		at, err := time.Parse(time.RFC3339, row[ac])
		if err != nil {
			return nil, fmt.Errorf("sim truth: inspection %s: inspected_at %q: %w", row[0], row[ac], err)
		}
		if at.After(last[row[ec]]) {
			last[row[ec]] = at
		}
	}
	return last, nil
}

// InherentLevels is each unit's inherent portrait level — the highest level
// of its risk sources' D = L × E × C (就高), with the thresholds of
// models/project/risk_config.v1.yaml: red above 320, orange above 160,
// yellow above 70, else blue — as marts.enterprise_inherent computes it.
// Units without a risk source are blue. The portrait's level is never below
// it (floor_at_inherent).
func (w *World) InherentLevels() map[string]string {
	rank := map[string]int{}
	if rs := w.Tables["risk_sources"]; rs != nil {
		ec := slices.Index(rs.Cols, "enterprise_id")
		lc, xc, cc := slices.Index(rs.Cols, "lec_l"), slices.Index(rs.Cols, "lec_e"), slices.Index(rs.Cols, "lec_c")
		for _, row := range rs.Rows {
			l, _ := strconv.ParseFloat(row[lc], 64)
			e, _ := strconv.ParseFloat(row[xc], 64)
			c, _ := strconv.ParseFloat(row[cc], 64)
			// rounded as the model does: round(lec_l * lec_e * lec_c, 4)
			d := math.Round(l*e*c*1e4) / 1e4
			r := 1
			switch {
			case d > 320:
				r = 4
			case d > 160:
				r = 3
			case d > 70:
				r = 2
			}
			rank[row[ec]] = max(rank[row[ec]], r)
		}
	}
	names := []string{"", "blue", "yellow", "orange", "red"}
	out := make(map[string]string, len(w.Units))
	for _, u := range w.Units {
		out[u.ID] = names[max(1, rank[u.ID])]
	}
	return out
}

// advance brings u's hazards up to time at (days since the epoch):
// arrivals until then, and the ones the unit fixed itself dropped.
func (t *Truth) advance(u *truthUnit, at float64) {
	if at <= u.now {
		return
	}
	for u.next <= at {
		u.seq++
		gone := math.Inf(1)
		if t.cfg.SelfFixDays > 0 {
			gone = u.next + u.arrive.ExpFloat64()*t.cfg.SelfFixDays
		}
		u.present = append(u.present, latent{seq: u.seq, appeared: u.next, gone: gone})
		u.next += u.arrive.ExpFloat64() / u.rate
	}
	u.present = slices.DeleteFunc(u.present, func(h latent) bool { return h.gone <= at })
	u.now = at
}

func (t *Truth) days(at time.Time) float64 { return at.Sub(t.epoch).Hours() / 24 }

func (t *Truth) hazard(u *truthUnit, h latent) Hazard {
	return Hazard{ID: u.id + "#" + strconv.Itoa(h.seq), Unit: u.id, Appeared: t.epoch.Add(time.Duration(h.appeared * 24 * float64(time.Hour)))}
}

// Inspect inspects unit at the instant at: each hazard present is found
// with probability PDetect, and the found ones are rectified (gone). Times
// must not go back for a unit: an earlier instant than its last call is
// taken as that call's. An unknown unit has no hazards.
func (t *Truth) Inspect(unit string, at time.Time) []Hazard {
	i, ok := t.index[unit]
	if !ok {
		return nil
	}
	u := &t.units[i]
	t.advance(u, t.days(at))
	var found []Hazard
	u.present = slices.DeleteFunc(u.present, func(h latent) bool {
		if u.detect.Float64() < t.cfg.PDetect {
			found = append(found, t.hazard(u, h))
			return true
		}
		return false
	})
	return found
}

// Present is the hazards at unit at the instant at, without inspecting
// (the same rule on times as Inspect).
func (t *Truth) Present(unit string, at time.Time) []Hazard {
	i, ok := t.index[unit]
	if !ok {
		return nil
	}
	u := &t.units[i]
	t.advance(u, t.days(at))
	out := make([]Hazard, len(u.present))
	for k, h := range u.present {
		out[k] = t.hazard(u, h)
	}
	return out
}

// Rate is unit's hidden hazard rate per day (0 for an unknown unit).
func (t *Truth) Rate(unit string) float64 {
	if i, ok := t.index[unit]; ok {
		return t.units[i].rate
	}
	return 0
}

// Level is the portrait level the truth was drawn against (InherentLevels).
func (t *Truth) Level(unit string) string {
	if i, ok := t.index[unit]; ok {
		return t.units[i].level
	}
	return ""
}

// MeanRate is the mean hazard rate per unit and day (RatePerDay, or the
// one derived from the history).
func (t *Truth) MeanRate() float64 { return t.rate }
