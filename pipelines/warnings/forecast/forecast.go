// Package forecast is the crowd forecaster's method (issue #21), in Go:
// a count at h intervals ahead is the usual count of that time of week
// times a correction fitted per site on its own history.
//
// Usual count (baseline). Per slot — day kind × time of day, where the day
// kind is the weekday, a public holiday counting as a Sunday and an
// adjusted working day (调休) as a Monday (Calendar) — an exponentially
// weighted mean of the slot's past counts with a half-life of some weeks,
// updated as counts come: it follows the seasons, which a mean over all
// history does not. The baseline of a target time is the slot's mean as of
// the forecast's origin (nothing after the origin is used).
//
// Correction. The log-ratio z(t) = log((count + c) / (baseline + c)) of
// the last few intervals and of the target's time the day before predicts
// the target's log-ratio, per horizon, by least squares weighted by the
// baseline (so that the busy hours, where errors are large in people,
// count most): forecast = (baseline + c) · exp(ẑ) − c. Multiplicative, as
// crowds scale (a festival doubles a quiet hour and a busy one alike).
//
// Fitted per site. The candidate settings (half-life, offset c) are
// compared by rolling-origin validation inside the training part only:
// fit on its first 80 %, score the last 20 %; the best is refitted on the
// whole training part. The validation residuals (out of sample) give the
// prediction interval: their 10th and 90th percentiles of the log-ratio,
// per horizon.
//
// Reference. Reference is the yardstick: HA(t+h) × r with HA the
// training mean per (weekday, hour) and r = (count(t) + 1) / (HA(t) + 1)
// shrunk toward 1 by 0.7^h.
package forecast

import (
	"errors"
	"math"
	"sort"
	"time"
)

// Series is a regular series: V[i] is the count of the interval starting
// At(i) = Start + i·Step; NaN where nothing was counted (a gap).
type Series struct {
	Start time.Time
	Step  time.Duration
	V     []float64
	// Hold marks counts kept out of the usual count (nil: none): the
	// engine's venues counted while under a crowd warning, so that the usual
	// crowd does not learn the surges it warns of. They are still read as
	// the recent counts a forecast starts from.
	Hold []bool
	// Fold is, where set (not NaN), the value a count adds to the usual
	// count instead of itself: the engine folds a count at a warning level
	// capped at the level's threshold, so that a slot busy every week still
	// has a usual count (busy) without learning the surge above it.
	Fold []float64
	// Cov are optional covariates per interval (e.g. rain, temperature from
	// raw.weather; NaN unknown), read at the forecast's origin as further
	// features of the correction.
	Cov [][]float64
	// CovAtTarget reads the covariates at the forecast's target instead
	// (a weather forecast's values: a perfect one in a back-test).
	CovAtTarget bool
}

// At is the start of interval i.
func (s Series) At(i int) time.Time { return s.Start.Add(time.Duration(i) * s.Step) }

// Point is one count.
type Point struct {
	At    time.Time
	Value float64
}

// Regular lays points on a grid of step from the first point: gaps become
// NaN, two counts of one interval (the repeated hour when daylight saving
// ends, in local clock time) are averaged. Times are taken as they are.
func Regular(points []Point, step time.Duration) Series {
	if len(points) == 0 {
		return Series{Step: step}
	}
	ps := append([]Point(nil), points...)
	sort.Slice(ps, func(i, j int) bool { return ps[i].At.Before(ps[j].At) })
	start := ps[0].At.Truncate(step)
	n := int(ps[len(ps)-1].At.Sub(start)/step) + 1
	v := make([]float64, n)
	for i := range v {
		v[i] = math.NaN()
	}
	n2 := make([]float64, n)
	for _, p := range ps {
		i := int(p.At.Sub(start) / step)
		if math.IsNaN(v[i]) {
			v[i] = p.Value
		} else {
			v[i] = (v[i]*n2[i] + p.Value) / (n2[i] + 1)
		}
		n2[i]++
	}
	return Series{Start: start, Step: step, V: v}
}

// Calendar tells a day's kind: 0 Monday … 6 Sunday; a public holiday is a
// Sunday, an adjusted working day a Monday.
type Calendar interface {
	DayKind(day time.Time) int
}

// Weekdays is the calendar of weekdays alone.
type Weekdays struct{}

// DayKind is the weekday, Monday 0.
func (Weekdays) DayKind(d time.Time) int { return (int(d.Weekday()) + 6) % 7 }

// Holidays is a calendar with public holidays and adjusted working days
// ("2006-01-02" dates).
type Holidays struct {
	Off, Work map[string]bool
}

// DayKind is Sunday for a holiday, Monday for an adjusted working day, else the weekday.
func (h Holidays) DayKind(d time.Time) int {
	k := d.Format(time.DateOnly)
	switch {
	case h.Off[k]:
		return 6
	case h.Work[k]:
		return 0
	}
	return Weekdays{}.DayKind(d)
}

// slotOf is interval i's slot: day kind × interval of the day.
func slotOf(s Series, cal Calendar, i int) int {
	t := s.At(i)
	perDay := int(24 * time.Hour / s.Step)
	mid := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, t.Location())
	return cal.DayKind(t)*perDay + int(t.Sub(mid)/s.Step)
}

// Settings are one candidate of the per-site fit.
type Settings struct {
	HalfLifeWeeks float64 `json:"half_life_weeks"`
	Offset        float64 `json:"offset"`
}

// Candidates are the settings compared per site.
var Candidates = []Settings{{2, 1}, {4, 1}, {8, 1}, {4, 5}, {8, 5}, {4, 20}, {8, 20}, {26, 5}}

// lags are the intervals before the origin whose log-ratios are features.
var lags = []int{0, 1, 2}

// baseline holds, per slot, the exponentially weighted mean after each of
// its counts, to read the slot's mean as of any interval.
type baseline struct {
	slot  []int
	idx   [][]int     // per slot: intervals with a count, ascending
	mean  [][]float64 // per slot: the mean after that count
	slots int
	// keepW is the weight a count keeps per newer count of its slot; sum
	// and wsum the running weighted sums (to fold counts appended later).
	keepW     float64
	sum, wsum []float64
}

func newBaseline(s Series, cal Calendar, halfLifeWeeks float64) *baseline {
	perDay := int(24 * time.Hour / s.Step)
	b := &baseline{slot: make([]int, 0, len(s.V)), slots: 7 * perDay}
	b.idx, b.mean = make([][]int, b.slots), make([][]float64, b.slots)
	// Weights halve every halfLifeWeeks of the slot's counts; the mean is
	// normalised by the weights' sum, so a slot with two weeks of history
	// weighs them as their age says (not the first count at 1 − a).
	b.keepW = math.Pow(0.5, 1/halfLifeWeeks)
	b.sum, b.wsum = make([]float64, b.slots), make([]float64, b.slots)
	for i, v := range s.V {
		b.add(s, cal, i, v, i < len(s.Hold) && s.Hold[i])
	}
	return b
}

// add takes interval i (the next one) with count v into the baseline.
func (b *baseline) add(s Series, cal Calendar, i int, v float64, hold bool) {
	k := slotOf(s, cal, i)
	b.slot = append(b.slot, k)
	if math.IsNaN(v) || hold {
		return
	}
	if i < len(s.Fold) && !math.IsNaN(s.Fold[i]) {
		v = s.Fold[i]
	}
	b.sum[k] = b.keepW*b.sum[k] + v
	b.wsum[k] = b.keepW*b.wsum[k] + 1
	b.idx[k] = append(b.idx[k], i)
	b.mean[k] = append(b.mean[k], b.sum[k]/b.wsum[k])
}

// at is the mean of slot k over the counts at intervals ≤ asOf (NaN: none yet).
func (b *baseline) at(k, asOf int) float64 {
	ix := b.idx[k]
	j := sort.SearchInts(ix, asOf+1) - 1
	if j < 0 {
		return math.NaN()
	}
	return b.mean[k][j]
}

// before is interval i's baseline from the counts before it.
func (b *baseline) before(i int) float64 { return b.at(b.slot[i], i-1) }

// Model is a fitted forecaster of one site.
type Model struct {
	Settings Settings           `json:"settings"`
	Horizons []int              `json:"horizons"` // in intervals
	Coef     map[int][]float64  `json:"coef"`     // per horizon: lags, the day before, constant
	Quant    map[int][2]float64 `json:"quantiles"`
	// resid[h][j] is the log residual of the forecast of j from j−h (NaN:
	// none), filled as forecasts are asked for: the interval of a forecast
	// from origin i is the spread of the residuals of the last IntervalWindow known
	// at i (targets ≤ i) — it widens in a volatile season and narrows in a
	// calm one (the validation part's spread alone covered 86–88 % on
	// Brooklyn's test months instead of 80 %).
	resid  map[int][]float64
	qcache map[int]cachedQ
	cal    Calendar
	s      Series
	b      *baseline
}

type cachedQ struct {
	at int
	q  [2]float64
}

// features are the log-ratios the forecast of i+h from origin i reads
// (nil when one is missing).
func (m *Model) features(i, h int) []float64 {
	c := m.Settings.Offset
	z := func(j int) (float64, bool) {
		if j < 0 || j >= len(m.s.V) || math.IsNaN(m.s.V[j]) {
			return 0, false
		}
		bj := m.b.before(j)
		if math.IsNaN(bj) {
			return 0, false
		}
		return math.Log((m.s.V[j] + c) / (bj + c)), true
	}
	x := make([]float64, 0, len(lags)+2)
	for _, l := range lags {
		v, ok := z(i - l)
		if !ok {
			return nil
		}
		x = append(x, v)
	}
	perDay := int(24 * time.Hour / m.s.Step)
	v, _ := z(i + h - perDay) // the target's time the day before (0 when unknown)
	x = append(x, v)
	at := i
	if m.s.CovAtTarget {
		at = i + h
	}
	for _, c := range m.s.Cov { // covariates (weather) at the origin, or the target's
		cv := 0.0
		if at < len(c) && !math.IsNaN(c[at]) {
			cv = c[at]
		}
		x = append(x, cv)
	}
	return append(x, 1)
}

// target is the baseline of i+h as of origin i (i+h may lie past the
// series' end: a live forecast).
func (m *Model) target(i, h int) float64 {
	return m.b.at(slotOf(m.s, m.cal, i+h), i)
}

// IntervalWindow is how far back the residuals the interval is read from go.
const IntervalWindow = 28 * 24 * time.Hour

// Forecast is the count of i+h from origin i with its 80 % interval.
func (m *Model) Forecast(i, h int) (p50, p10, p90 float64, ok bool) {
	zh, base, ok := m.point(i, h)
	if !ok {
		return 0, 0, 0, false
	}
	c := m.Settings.Offset
	f := func(q float64) float64 { return math.Max(0, (base+c)*math.Exp(zh+q)-c) }
	q := m.interval(i, h)
	return f(0), f(q[0]), f(q[1]), true
}

// point is the forecast log-ratio of i+h from i and the target's baseline.
func (m *Model) point(i, h int) (zh, base float64, ok bool) {
	co, fitted := m.Coef[h]
	if !fitted {
		return 0, 0, false
	}
	base = m.target(i, h)
	x := m.features(i, h)
	if math.IsNaN(base) || x == nil {
		return 0, 0, false
	}
	for k, xk := range x {
		zh += co[k] * xk
	}
	return zh, base, true
}

// interval is the 10th and 90th percentile of the log residuals of the
// last IntervalWindow forecasts at horizon h whose targets are known at i;
// the validation part's when fewer than a day of them are.
func (m *Model) interval(i, h int) [2]float64 {
	if m.resid == nil {
		m.resid = map[int][]float64{}
	}
	r := m.resid[h]
	c := m.Settings.Offset
	for j := len(r); j < len(m.s.V); j++ { // residuals of the intervals appended since
		r = append(r, math.NaN())
		if j-h < 0 || math.IsNaN(m.s.V[j]) {
			continue
		}
		if zh, base, ok := m.point(j-h, h); ok {
			r[j] = math.Log((m.s.V[j]+c)/(base+c)) - zh
		}
	}
	m.resid[h] = r
	i = min(i, len(r)-1)
	// The spread is read anew once an hour of origins (a 5-minute series
	// would otherwise sort four weeks of residuals at every interval).
	if q, ok := m.qcache[h]; ok && i >= q.at && time.Duration(i-q.at)*m.s.Step < time.Hour {
		return q.q
	}
	var win []float64
	for j, back := i, int(IntervalWindow/m.s.Step); j >= 0 && j > i-back; j-- {
		if !math.IsNaN(r[j]) {
			win = append(win, r[j])
		}
	}
	q := m.Quant[h]
	if len(win) >= 24 {
		q = [2]float64{quantile(win, 0.10), quantile(win, 0.90)}
	}
	if m.qcache == nil {
		m.qcache = map[int]cachedQ{}
	}
	m.qcache[h] = cachedQ{i, q}
	return q
}

// Index is the interval of the series starting at t (ok false before the
// series' start or off its grid).
func (m *Model) Index(t time.Time) (int, bool) {
	d := t.Sub(m.s.Start)
	if d < 0 || d%m.s.Step != 0 {
		return 0, false
	}
	return int(d / m.s.Step), true
}

// End is the start of the interval after the series' last.
func (m *Model) End() time.Time { return m.s.At(len(m.s.V)) }

// Append adds the count v of the interval starting at t, after the
// series' last (the intervals between are gaps); hold keeps it out of the
// usual count. An interval at or before the last is left as it is (a
// correction or a late count: forecasts from an origin read nothing after
// it, so they do not change). It reports whether v was added.
func (m *Model) Append(t time.Time, v float64, hold bool) bool {
	if t.Before(m.End()) {
		return false
	}
	j, ok := m.Index(t)
	if !ok {
		return false
	}
	for len(m.s.V) < j {
		m.appendOne(math.NaN(), false, math.NaN())
	}
	m.appendOne(v, hold, math.NaN())
	return true
}

// AppendFold is Append of a count that adds fold to the usual count
// instead of itself (Series.Fold; NaN: itself).
func (m *Model) AppendFold(t time.Time, v, fold float64) bool {
	if t.Before(m.End()) {
		return false
	}
	j, ok := m.Index(t)
	if !ok {
		return false
	}
	for len(m.s.V) < j {
		m.appendOne(math.NaN(), false, math.NaN())
	}
	m.appendOne(v, false, fold)
	return true
}

func (m *Model) appendOne(v float64, hold bool, fold float64) {
	i := len(m.s.V)
	m.s.V = append(m.s.V, v)
	if m.s.Fold != nil || !math.IsNaN(fold) {
		for len(m.s.Fold) < i {
			m.s.Fold = append(m.s.Fold, math.NaN())
		}
		m.s.Fold = append(m.s.Fold, fold)
	}
	if m.s.Hold != nil || hold {
		for len(m.s.Hold) < i {
			m.s.Hold = append(m.s.Hold, false)
		}
		m.s.Hold = append(m.s.Hold, hold)
	}
	m.b.add(m.s, m.cal, i, v, hold)
}

// Len is the number of intervals of the series.
func (m *Model) Len() int { return len(m.s.V) }

// fit fits the coefficients on origins [from, to) (targets before to).
func (m *Model) fit(from, to int) error {
	m.Coef = map[int][]float64{}
	for _, h := range m.Horizons {
		var xs [][]float64
		var ys, ws []float64
		for i := from; i+h < to; i++ {
			if math.IsNaN(m.s.V[i+h]) {
				continue
			}
			base := m.target(i, h)
			x := m.features(i, h)
			if math.IsNaN(base) || x == nil {
				continue
			}
			c := m.Settings.Offset
			xs = append(xs, x)
			ys = append(ys, math.Log((m.s.V[i+h]+c)/(base+c)))
			ws = append(ws, base+c)
		}
		co, err := weightedLS(xs, ys, ws)
		if err != nil {
			return err
		}
		m.Coef[h] = co
	}
	return nil
}

// Fit chooses the settings for s by validation inside [0, trainEnd) and
// fits them on it. Horizons are in intervals.
func Fit(s Series, cal Calendar, trainEnd int, horizons []int, candidates []Settings) (*Model, error) {
	if cal == nil {
		cal = Weekdays{}
	}
	if len(candidates) == 0 {
		candidates = Candidates
	}
	valFrom := trainEnd * 8 / 10
	var best *Model
	bestScore := math.Inf(1)
	for _, st := range candidates {
		m := &Model{Settings: st, Horizons: horizons, cal: cal, s: s, b: newBaseline(s, cal, st.HalfLifeWeeks)}
		if err := m.fit(0, valFrom); err != nil {
			continue
		}
		score, n := 0.0, 0
		for _, h := range horizons {
			e := m.errors(valFrom, trainEnd, h)
			if len(e) == 0 {
				continue
			}
			score += rms(e)
			n++
		}
		if n == 0 {
			continue
		}
		if score < bestScore {
			bestScore, best = score, m
		}
	}
	if best == nil {
		return nil, errors.New("too little history to fit a forecaster / 历史数据不足，无法拟合预测模型")
	}
	// Out-of-sample log residuals of the validation part → the interval.
	best.Quant = map[int][2]float64{}
	for _, h := range horizons {
		var r []float64
		c := best.Settings.Offset
		for i := valFrom; i+h < trainEnd; i++ {
			zh, base, ok := best.point(i, h)
			if !ok || math.IsNaN(s.V[i+h]) {
				continue
			}
			r = append(r, math.Log((s.V[i+h]+c)/(base+c))-zh)
		}
		best.Quant[h] = [2]float64{quantile(r, 0.10), quantile(r, 0.90)}
	}
	if err := best.fit(0, trainEnd); err != nil {
		return nil, err
	}
	best.resid, best.qcache = nil, nil // residuals of the refitted coefficients
	// Their residuals now, with the fit (the engine fits in the background;
	// its first forecasts then only extend them).
	for _, h := range horizons {
		best.interval(len(s.V)-1, h)
	}
	best.qcache = nil
	return best, nil
}

// errors are forecast − actual at horizon h for origins in [from, to).
func (m *Model) errors(from, to, h int) []float64 {
	var out []float64
	for i := from; i+h < to; i++ {
		if math.IsNaN(m.s.V[i+h]) {
			continue
		}
		if zh, base, ok := m.point(i, h); ok {
			c := m.Settings.Offset
			out = append(out, math.Max(0, (base+c)*math.Exp(zh)-c)-m.s.V[i+h])
		}
	}
	return out
}

// Reference is the yardstick model, fitted on [0, trainEnd).
type Reference struct {
	s  Series
	ha []float64 // per (weekday, interval of day) slot
	sl []int
}

// NewReference computes HA per (weekday, interval of day) on the training part.
func NewReference(s Series, trainEnd int) *Reference {
	perDay := int(24 * time.Hour / s.Step)
	sum, n := make([]float64, 7*perDay), make([]float64, 7*perDay)
	r := &Reference{s: s, sl: make([]int, len(s.V))}
	for i, v := range s.V {
		r.sl[i] = slotOf(s, Weekdays{}, i)
		if i < trainEnd && !math.IsNaN(v) {
			sum[r.sl[i]] += v
			n[r.sl[i]]++
		}
	}
	r.ha = make([]float64, len(sum))
	for k := range sum {
		r.ha[k] = math.NaN()
		if n[k] > 0 {
			r.ha[k] = sum[k] / n[k]
		}
	}
	return r
}

// HA is the historical average of interval j.
func (r *Reference) HA(j int) float64 { return r.ha[r.sl[j]] }

// Forecast is HA(i+h) × r shrunk by 0.7^h (h in intervals of an hour).
func (r *Reference) Forecast(i, h int) (float64, bool) {
	if math.IsNaN(r.s.V[i]) || i+h >= len(r.s.V) {
		return 0, false
	}
	hr := (r.s.V[i] + 1) / (r.HA(i) + 1)
	hours := float64(h) * r.s.Step.Hours()
	f := r.HA(i+h) * (1 + (hr-1)*math.Pow(0.7, hours))
	return f, !math.IsNaN(f)
}

func rms(e []float64) float64 {
	s := 0.0
	for _, x := range e {
		s += x * x
	}
	return math.Sqrt(s / float64(len(e)))
}

func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	pos := q * float64(len(s)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(s)-1)
	return s[lo] + (pos-float64(lo))*(s[hi]-s[lo])
}

// weightedLS solves min Σ w (y − x·β)² (with a tiny ridge for stability).
func weightedLS(xs [][]float64, ys, ws []float64) ([]float64, error) {
	if len(xs) == 0 {
		return nil, errors.New("no observations to fit")
	}
	k := len(xs[0])
	a := make([][]float64, k)
	for i := range a {
		a[i] = make([]float64, k+1)
	}
	for r, x := range xs {
		w := ws[r]
		for i := 0; i < k; i++ {
			a[i][k] += w * x[i] * ys[r]
			for j := 0; j < k; j++ {
				a[i][j] += w * x[i] * x[j]
			}
		}
	}
	tr := 0.0
	for i := 0; i < k; i++ {
		tr += a[i][i]
	}
	for i := 0; i < k; i++ {
		a[i][i] += 1e-9 * tr
	}
	for c := 0; c < k; c++ {
		p := c
		for r := c + 1; r < k; r++ {
			if math.Abs(a[r][c]) > math.Abs(a[p][c]) {
				p = r
			}
		}
		a[c], a[p] = a[p], a[c]
		if a[c][c] == 0 {
			return nil, errors.New("singular system")
		}
		for r := 0; r < k; r++ {
			if r == c {
				continue
			}
			f := a[r][c] / a[c][c]
			for cc := c; cc <= k; cc++ {
				a[r][cc] -= f * a[c][cc]
			}
		}
	}
	out := make([]float64, k)
	for i := range out {
		out[i] = a[i][k] / a[i][i]
	}
	return out, nil
}

// Series is the model's series as it is now (its counts are not to be
// changed: append through Append).
func (m *Model) Series() Series { return m.s }

// Tail is the part of s from the interval starting at or after from.
func (s Series) Tail(from time.Time) Series {
	k := 0
	if d := from.Sub(s.Start); d > 0 {
		k = min(int((d+s.Step-1)/s.Step), len(s.V))
	}
	out := Series{Start: s.At(k), Step: s.Step, V: s.V[k:], CovAtTarget: s.CovAtTarget}
	if s.Hold != nil {
		out.Hold = s.Hold[min(k, len(s.Hold)):]
	}
	if s.Fold != nil {
		out.Fold = s.Fold[min(k, len(s.Fold)):]
	}
	for _, c := range s.Cov {
		out.Cov = append(out.Cov, c[min(k, len(c)):])
	}
	return out
}

// Clone is a copy of s that appending to s does not change.
func (s Series) Clone() Series {
	out := Series{Start: s.Start, Step: s.Step, V: append([]float64(nil), s.V...), CovAtTarget: s.CovAtTarget}
	if s.Hold != nil {
		out.Hold = append([]bool(nil), s.Hold...)
	}
	if s.Fold != nil {
		out.Fold = append([]float64(nil), s.Fold...)
	}
	for _, c := range s.Cov {
		out.Cov = append(out.Cov, append([]float64(nil), c...))
	}
	return out
}

// Index is the interval of s starting at t (ok false before the start or
// off the grid; it may lie past the end).
func (s Series) Index(t time.Time) (int, bool) {
	d := t.Sub(s.Start)
	if d < 0 || d%s.Step != 0 {
		return 0, false
	}
	return int(d / s.Step), true
}
