package warnings

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"citybrain/internal/geo"
)

// Level names, index = level number (0 = none).
var levelNames = [...]string{"", "blue", "yellow", "orange", "red"}
var levelZh = [...]string{"", "蓝色", "黄色", "橙色", "红色"}

// LevelName is the level's name ("" for 0).
func LevelName(l int) string {
	if l < 0 || l >= len(levelNames) {
		return ""
	}
	return levelNames[l]
}

// LevelOf parses a level name (0 if unknown).
func LevelOf(name string) int {
	for i, n := range levelNames {
		if n == name && i > 0 {
			return i
		}
	}
	return 0
}

// Signal is one row a rule produces: the level a subject is at (or
// forecast to reach) at an event time, and the level it keeps under
// hysteresis.
type Signal struct {
	Rule            string
	Kind            string
	Metric          string
	SubjectType     string
	SubjectID       string
	SubjectNameZh   string
	SubjectNameEn   string
	StreetCode      string
	ResponsibleUnit string
	EventTime       time.Time
	Level           int
	HoldLevel       int
	Predicted       bool
	HorizonMin      int
	Observed        *float64
	Forecast        *float64
	Threshold       *float64
	Unit            string
	PeopleCount     *int64
	Baseline        *float64
	Details         map[string]any
	// onlyIfActive: a bulk rule's row the sequential rule returns only while
	// a warning of the subject is open (bulk.go); dropped otherwise.
	onlyIfActive bool
}

func (s *Signal) key() string { return s.Rule + "|" + s.SubjectType + "|" + s.SubjectID }

// Transition is one lifecycle change of a warning: a row of marts.warnings,
// the JSON of /api/warnings and of the webhook.
type Transition struct {
	WarningID       string         `json:"warning_id"`
	Seq             int64          `json:"seq"`
	Kind            string         `json:"kind"`
	Rule            string         `json:"rule"`
	Metric          string         `json:"metric,omitempty"`
	SubjectType     string         `json:"subject_type"`
	SubjectID       string         `json:"subject_id"`
	SubjectNameZh   string         `json:"subject_name_zh,omitempty"`
	SubjectNameEn   string         `json:"subject_name_en,omitempty"`
	StreetCode      string         `json:"street_code,omitempty"`
	Level           string         `json:"level"`
	PreviousLevel   string         `json:"previous_level,omitempty"`
	State           string         `json:"state"`
	Predicted       bool           `json:"predicted"`
	HorizonMin      int            `json:"horizon_min"`
	ObservedValue   *float64       `json:"observed_value"`
	ForecastValue   *float64       `json:"forecast_value"`
	Threshold       *float64       `json:"threshold"`
	Unit            string         `json:"unit,omitempty"`
	PeopleCount     *int64         `json:"people_count,omitempty"`
	BaselineValue   *float64       `json:"baseline_value,omitempty"`
	MessageZh       string         `json:"message_zh"`
	MessageEn       string         `json:"message_en"`
	ResponsibleUnit string         `json:"responsible_unit,omitempty"`
	EventTime       time.Time      `json:"event_time"`
	TransitionAt    time.Time      `json:"transition_at"`
	RaisedAt        time.Time      `json:"raised_at"`
	Details         map[string]any `json:"details,omitempty"`
}

// Active is the lifecycle state of one warning (persisted as JSON in
// active_warnings).
type Active struct {
	WarningID string     `json:"warning_id"`
	Level     int        `json:"level"`
	RaisedAt  time.Time  `json:"raised_at"`
	LowSince  *time.Time `json:"low_since,omitempty"`
	Last      Transition `json:"last"`
}

// lifecycle applies signals to the active warnings. It is not safe for
// concurrent use; the engine serialises it.
type lifecycle struct {
	lowerAfter time.Duration
	now        func() time.Time
	active     map[string]*Active
	seq        int64
	// stride and offset make the sequence unit-scoped: a unit of a
	// partitioned engine (unit.go) numbers k, k+stride, k+2·stride… so that
	// several units' sequences and warning ids never meet. stride 0 is 1.
	stride  int64
	changed map[string]bool
}

// next advances the sequence.
func (lc *lifecycle) next() int64 {
	lc.seq += max(lc.stride, 1)
	return lc.seq
}

// apply turns one signal into at most one transition.
//
//   - a level above the warning's (or a first level) raises or escalates at once;
//   - a hold level (the level under hysteresis) below the warning's must last
//     lowerAfter of data time before the warning is lowered to it, or cleared at 0;
//   - anything else keeps the warning as it is.
func (lc *lifecycle) apply(s *Signal) *Transition {
	k := s.key()
	a := lc.active[k]
	cur := 0
	if a != nil {
		cur = a.Level
	}
	hold := max(s.HoldLevel, s.Level)
	switch {
	case s.Level > cur:
		state := "escalated"
		if a == nil {
			a = &Active{WarningID: fmt.Sprintf("%s-%s-%d", s.Kind, s.EventTime.UTC().Format("20060102T1504"), lc.next()), RaisedAt: s.EventTime}
			lc.active[k] = a
			state = "raised"
		}
		return lc.transition(k, a, s, state, cur, s.Level)
	case a != nil && hold < cur:
		if a.LowSince == nil {
			t := s.EventTime
			a.LowSince = &t
			lc.changed[k] = true
		}
		if s.EventTime.Sub(*a.LowSince) < lc.lowerAfter {
			return nil
		}
		if hold == 0 {
			return lc.transition(k, a, s, "cleared", cur, 0)
		}
		return lc.transition(k, a, s, "lowered", cur, hold)
	case a != nil && a.LowSince != nil:
		a.LowSince = nil
		lc.changed[k] = true
	}
	return nil
}

func (lc *lifecycle) transition(k string, a *Active, s *Signal, state string, from, to int) *Transition {
	seq := lc.next()
	level := to
	if state == "cleared" {
		level = from
	}
	t := Transition{
		WarningID: a.WarningID, Seq: seq, Kind: s.Kind, Rule: s.Rule, Metric: s.Metric,
		SubjectType: s.SubjectType, SubjectID: s.SubjectID, SubjectNameZh: s.SubjectNameZh, SubjectNameEn: s.SubjectNameEn,
		StreetCode: s.StreetCode, Level: LevelName(level), PreviousLevel: LevelName(from), State: state,
		Predicted: s.Predicted && state != "cleared" && state != "lowered", HorizonMin: s.HorizonMin,
		ObservedValue: s.Observed, ForecastValue: s.Forecast, Threshold: s.Threshold, Unit: s.Unit,
		PeopleCount: s.PeopleCount, BaselineValue: s.Baseline, ResponsibleUnit: s.ResponsibleUnit,
		EventTime: s.EventTime.UTC(), TransitionAt: lc.now().UTC(), RaisedAt: a.RaisedAt.UTC(), Details: s.Details,
	}
	if !t.Predicted {
		t.HorizonMin = 0
		t.ForecastValue = nil
	}
	t.MessageZh, t.MessageEn = messages(&t)
	a.Level, a.LowSince, a.Last = to, nil, t
	if to == 0 {
		delete(lc.active, k)
	}
	lc.changed[k] = true
	return &t
}

var kindZh = map[string]string{"crowd": "大客流", "rainstorm": "暴雨", "waterlogging": "内涝", "lifeline": "生命线", "traffic": "交通"}
var stateZh = map[string]string{"raised": "发布", "escalated": "升级", "lowered": "降级", "cleared": "解除"}
var metricZh = map[string]string{
	"density": "人员密度", "capacity_ratio": "承载率", "baseline_ratio": "与常态人数之比", "excess_ratio": "超出常态人数占承载量之比",
	"water_depth": "积水深度", "pressure_band": "水压越限幅度", "pressure_burst": "水压骤降幅度", "flow_burst": "流量突增幅度",
	"gas_lel": "燃气浓度", "congestion_index": "拥堵指数", "collisions": "事故数",
}
var metricEn = map[string]string{
	"density": "density", "capacity_ratio": "ratio to capacity", "baseline_ratio": "ratio to the usual count", "excess_ratio": "excess over the usual count / capacity",
	"water_depth": "water depth", "pressure_band": "pressure outside its band", "pressure_burst": "sudden pressure drop",
	"flow_burst": "sudden flow rise", "gas_lel": "gas concentration", "congestion_index": "congestion index", "collisions": "collisions",
}

// fmtVal writes a figure as people read it: whole numbers from 100 on,
// one decimal from 1 on, two below (0.35 m), no trailing zeros.
func fmtVal(v *float64) string {
	if v == nil || math.IsNaN(*v) {
		return "-"
	}
	x := *v
	prec := 2
	switch a := math.Abs(x); {
	case a >= 100:
		prec = 0
	case a >= 1:
		prec = 1
	}
	s := strconv.FormatFloat(x, 'f', prec, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if s == "-0" {
		s = "0"
	}
	return s
}

// forecastOdds is the sentence on a predicted warning's odds, from the
// rule's details exceed_probability (the chance of reaching the threshold)
// and forecast_p10 / forecast_p90 (the 80 % interval of the people
// forecast); "" when the rule gave none.
func forecastOdds(d map[string]any) (zh, en string) {
	p, ok := d["exceed_probability"].(float64)
	if !ok {
		return "", ""
	}
	pct := math.Round(p * 100)
	zh = fmt.Sprintf("达到阈值的概率约 %s%%", fmtVal(&pct))
	en = fmt.Sprintf(" Chance of reaching the threshold: about %s %%", fmtVal(&pct))
	lo, ok1 := d["forecast_p10"].(float64)
	hi, ok2 := d["forecast_p90"].(float64)
	if ok1 && ok2 {
		zh += fmt.Sprintf("（预测人数 80%% 区间 %s–%s 人）", fmtVal(&lo), fmtVal(&hi))
		en += fmt.Sprintf(" (80 %% interval of the forecast: %s–%s people)", fmtVal(&lo), fmtVal(&hi))
	}
	return zh + "。", en + "."
}

// unitWords are a rule's units in words (zh, en); "ratio" is written as
// a percentage and "index" has none.
var unitWords = map[string][2]string{
	"ratio": {"%", "%"}, "index": {"", ""}, "人/m²": {"人/m²", "people/m²"}, "m": {"米", "m"}, "mm": {"毫米", "mm"},
	"起 collisions": {"起", "collisions"}, "MPa": {"兆帕", "MPa"}, "m³/h": {"立方米/时", "m³/h"}, "%LEL": {"%LEL", "%LEL"},
}

// withUnit writes v with its unit in one language (0 zh, 1 en).
func withUnit(v *float64, unit string, lang int) string {
	w, ok := unitWords[unit]
	if !ok {
		w = [2]string{unit, unit}
	}
	if unit == "ratio" && v != nil {
		pct := *v * 100
		return fmtVal(&pct) + " %"
	}
	if w[lang] == "" {
		return fmtVal(v)
	}
	return fmtVal(v) + " " + w[lang]
}

// districtUnits name the district bureaus a rule may make responsible.
var districtUnits = map[string][2]string{
	"traffic": {"区交通委", "District Transport Commission"}, "water": {"区水务局", "District Water Authority"},
	"police": {"公安西城分局", "Xicheng Public Security Sub-bureau"}, "emergency": {"区应急管理局", "District Emergency Management Bureau"},
	"city_management": {"区城市管理委员会", "District City Management Commission"}, "planning": {"规划和自然资源西城分局", "Xicheng Planning and Natural Resources Sub-bureau"},
	"gas": {"燃气集团西城分公司", "Beijing Gas, Xicheng branch"}, "weather": {"区气象部门", "District weather service"},
}

var streetsOnce = sync.OnceValues(geo.LoadStreets)

// responsibleWords names a responsible unit: "street:<adcode>" its street
// office, "district:<dept>" the bureau, anything else (a venue's
// operator, as the data names it) as it is.
func responsibleWords(code string) (zh, en string) {
	kind, id, ok := strings.Cut(code, ":")
	if !ok {
		return code, code
	}
	switch kind {
	case "district":
		if w, ok := districtUnits[id]; ok {
			return w[0], w[1]
		}
	case "street":
		if st, err := streetsOnce(); err == nil {
			for _, s := range st.All() {
				if s.Adcode == id {
					return s.NameZH + "办事处", s.NameEN + " office"
				}
			}
		}
	}
	return code, code
}

// messages writes the zh-CN and English texts of a transition.
func messages(t *Transition) (zh, en string) {
	name := t.SubjectNameZh
	if name == "" {
		name = t.SubjectID
	}
	nameEn := t.SubjectNameEn
	if nameEn == "" {
		nameEn = t.SubjectID
	}
	lz := levelZh[LevelOf(t.Level)]
	mz, me := metricZh[t.Metric], metricEn[t.Metric]
	if mz == "" {
		mz, me = t.Metric, t.Metric
	}
	if me == "" {
		me = t.Metric
	}
	switch t.State {
	case "cleared":
		zh = fmt.Sprintf("%s%s预警解除：%s（原%s预警）。", name, kindZh[t.Kind], mz, lz)
		en = fmt.Sprintf("%s %s warning cleared (was %s).", nameEn, t.Kind, t.Level)
		return
	}
	z := func(v *float64) string { return withUnit(v, t.Unit, 0) }
	e := func(v *float64) string { return withUnit(v, t.Unit, 1) }
	if t.Predicted {
		zh = fmt.Sprintf("%s%s%s预警%s（预测）：预计 %d 分钟后%s达 %s（阈值 %s），当前 %s。", name, kindZh[t.Kind], lz, stateZh[t.State],
			t.HorizonMin, mz, z(t.ForecastValue), z(t.Threshold), z(t.ObservedValue))
		en = fmt.Sprintf("%s: %s %s warning %s (predicted): %s forecast to reach %s in %d min (threshold %s), now %s.", nameEn, t.Level, t.Kind, t.State,
			me, e(t.ForecastValue), t.HorizonMin, e(t.Threshold), e(t.ObservedValue))
		if pz, pe := forecastOdds(t.Details); pz != "" {
			zh += pz
			en += pe
		}
	} else {
		zh = fmt.Sprintf("%s%s%s预警%s：%s %s（阈值 %s）。", name, kindZh[t.Kind], lz, stateZh[t.State], mz, z(t.ObservedValue), z(t.Threshold))
		en = fmt.Sprintf("%s: %s %s warning %s: %s %s (threshold %s).", nameEn, t.Level, t.Kind, t.State, me, e(t.ObservedValue), e(t.Threshold))
	}
	if t.PeopleCount != nil {
		zh += fmt.Sprintf(" 当前人数 %d。", *t.PeopleCount)
		en += fmt.Sprintf(" People now: %d.", *t.PeopleCount)
	}
	if t.ResponsibleUnit != "" {
		rz, re := responsibleWords(t.ResponsibleUnit)
		zh += " 请" + rz + "处置。"
		en += " Responsible: " + re + "."
	}
	return
}
