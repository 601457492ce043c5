// Package freshness measures how old what a user sees is, on every path from
// a record's arrival in Kafka to the screen: a source's lake table, the
// warning engine's state, marts.warnings, the model runner's marts and the
// query layer's views (pgwire, /api/sql, the dashboards).
//
// Why a package of its own: freshness was assumed, not measured — the warning
// engine said "caught up" while days behind and the SQL views stopped
// following commits with nothing turning red. Each part of citybrain serve
// reports its own paths here as it works; `citybrain status`, 数据健康
// (dashboards) and /metrics (Prometheus text format) read the one registry,
// so they cannot disagree.
//
// A path's age is computed when it is read, from PendingSince: the wall time
// at which the oldest input the path has not yet reflected arrived (a Kafka
// record's append time, a lake commit's time). A path that is caught up has
// no pending input and age 0; a path that is stuck ages by itself, without
// anyone having to notice and report it.
package freshness

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"sync"
	"time"
)

// Path names one consumer path. Component is the part of serve that owns
// it: source (a lake writer), warnings, models or query. Name is the
// source, "engine", "sink", the model runner or the query interface;
// Table is the table whose data the path shows (may be empty).
type Path struct {
	Component string `json:"component"`
	Name      string `json:"name"`
	Table     string `json:"table,omitempty"`
}

func (p Path) key() string { return p.Component + "\x00" + p.Name + "\x00" + p.Table }

// State is what one path shows and how far behind it is.
type State struct {
	Path
	// EventTime is the newest event time the path shows (data time: the
	// simulator's clock in the demo, the real clock in production).
	EventTime time.Time `json:"event_time"`
	// InputEventTime is the newest event time of the path's input, when
	// known (so EventTime lagging behind it is visible in data time too).
	InputEventTime time.Time `json:"input_event_time"`
	// Snapshot is the Iceberg snapshot the path shows (0: none or n/a).
	Snapshot int64 `json:"snapshot,omitempty"`
	// Committed is when what the path shows was committed.
	Committed time.Time `json:"committed"`
	// Behind is how many input records the path has not reflected yet.
	Behind int64 `json:"behind"`
	// PendingSince is when the oldest input not yet reflected arrived;
	// zero when the path is caught up.
	PendingSince time.Time `json:"pending_since"`
	// Err is the path's last error (empty when the last attempt worked).
	Err string `json:"error,omitempty"`
	// Updated is when the path last reported.
	Updated time.Time `json:"updated"`
}

// Row is a State as read: with its age and level.
type Row struct {
	State
	// LagS is the wall seconds the path is behind its input (0 when caught up).
	LagS float64 `json:"lag_s"`
	// EventLagS is InputEventTime − EventTime in seconds of data time.
	EventLagS float64 `json:"event_lag_s"`
	// CaughtUp: nothing pending.
	CaughtUp bool `json:"caught_up"`
	// Level is ok, warn (LagS past Thresholds.Warn or an error) or error
	// (LagS past Thresholds.Error).
	Level string `json:"level"`
	// Instance is the serve instance that runs the path, for paths another
	// instance reported (internal/instances); empty for this one's own.
	Instance string `json:"instance,omitempty"`
}

// Thresholds say when a path's age is worth a warning or an alarm.
type Thresholds struct {
	Warn, Error time.Duration
}

// DefaultThresholds: the warning path's goal is 10 s; a minute behind is
// worth a look, five minutes an alarm.
func DefaultThresholds() Thresholds { return Thresholds{Warn: time.Minute, Error: 5 * time.Minute} }

// Registry holds the paths' states and a few counters and summaries for
// /metrics. It is safe for concurrent use; the zero value is not usable:
// call New.
type Registry struct {
	now func() time.Time
	th  Thresholds

	mu     sync.Mutex
	states map[string]*State
	series map[string]*series
	// per component, where its own goal differs (models: batch runs)
	comp map[string]Thresholds
}

// SetThresholds sets the thresholds of one component's paths (the model
// runner's marts are rebuilt in runs minutes apart; a warning must not wait
// a minute).
func (r *Registry) SetThresholds(component string, th Thresholds) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.comp == nil {
		r.comp = map[string]Thresholds{}
	}
	r.comp[component] = th
}

type series struct {
	name, help, kind string // kind: counter | summary | gauge
	labels           string // rendered {k="v",…}
	count, sum, max  float64
	value            float64
}

// New returns an empty registry; now is the clock (time.Now in production).
func New(now func() time.Time, th Thresholds) *Registry {
	if now == nil {
		now = time.Now
	}
	if th.Warn <= 0 {
		th = DefaultThresholds()
	}
	return &Registry{now: now, th: th, states: map[string]*State{}, series: map[string]*series{}}
}

// Thresholds returns the registry's thresholds.
func (r *Registry) Thresholds() Thresholds { return r.th }

// Update changes one path's state under the registry's lock: fn gets the
// current state (zero with the path set on first use). Updated is set.
func (r *Registry) Update(p Path, fn func(s *State)) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.states[p.key()]
	if s == nil {
		s = &State{Path: p}
		r.states[p.key()] = s
	}
	fn(s)
	s.Path = p
	s.Updated = r.now()
}

// Set replaces one path's state.
func (r *Registry) Set(s State) {
	r.Update(s.Path, func(cur *State) { *cur = s })
}

// Pending marks input arriving at a path at time at (kept if an older
// input is already pending): the path is behind from then on until Reflected.
func (r *Registry) Pending(p Path, at time.Time) {
	r.Update(p, func(s *State) {
		if s.PendingSince.IsZero() || at.Before(s.PendingSince) {
			s.PendingSince = at
		}
	})
}

// Remove forgets a path (a table dropped, a sandbox closed).
func (r *Registry) Remove(p Path) {
	if r == nil {
		return
	}
	r.mu.Lock()
	delete(r.states, p.key())
	r.mu.Unlock()
}

// Rows returns every path with its age, sorted by component, name, table.
func (r *Registry) Rows() []Row {
	if r == nil {
		return nil
	}
	now := r.now()
	r.mu.Lock()
	out := make([]Row, 0, len(r.states))
	for _, s := range r.states {
		out = append(out, r.row(*s, now))
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Component != b.Component {
			return a.Component < b.Component
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Table < b.Table
	})
	return out
}

// Get returns one path's row (ok false when it never reported).
func (r *Registry) Get(p Path) (Row, bool) {
	if r == nil {
		return Row{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.states[p.key()]
	if !ok {
		return Row{}, false
	}
	return r.row(*s, r.now()), true
}

func (r *Registry) row(s State, now time.Time) Row {
	row := Row{State: s, CaughtUp: s.PendingSince.IsZero()}
	if !row.CaughtUp {
		row.LagS = math.Max(now.Sub(s.PendingSince).Seconds(), 0)
	}
	if !s.InputEventTime.IsZero() && !s.EventTime.IsZero() {
		row.EventLagS = math.Max(s.InputEventTime.Sub(s.EventTime).Seconds(), 0)
	}
	row.Level = r.level(s.Component, row.LagS, s.Err)
	return row
}

func (r *Registry) level(component string, lagS float64, err string) string {
	th := r.th
	if c, ok := r.comp[component]; ok {
		th = c
	}
	switch {
	case lagS >= th.Error.Seconds():
		return "error"
	case lagS >= th.Warn.Seconds() || err != "":
		return "warn"
	}
	return "ok"
}

// Age says a lag in words, Chinese and English ("3 分钟 3 min").
func Age(d time.Duration) (zh, en string) {
	switch s := d.Seconds(); {
	case s < 90:
		return fmt.Sprintf("%d 秒", int(s+0.5)), fmt.Sprintf("%d s", int(s+0.5))
	case s < 90*60:
		return fmt.Sprintf("%d 分钟", int(s/60+0.5)), fmt.Sprintf("%d min", int(s/60+0.5))
	case s < 36*3600:
		return fmt.Sprintf("%.1f 小时", s/3600), fmt.Sprintf("%.1f h", s/3600)
	default:
		return fmt.Sprintf("%.1f 天", s/86400), fmt.Sprintf("%.1f days", s/86400)
	}
}

// Count adds v to a counter (name_total in /metrics).
func (r *Registry) Count(name, help string, v float64, labels ...string) {
	r.metric(name, help, "counter", labels, func(s *series) { s.value += v })
}

// Observe records one observation of a summary (count, sum and max in /metrics):
// commit durations, batch sizes.
func (r *Registry) Observe(name, help string, v float64, labels ...string) {
	r.metric(name, help, "summary", labels, func(s *series) {
		s.count++
		s.sum += v
		if v > s.max || s.count == 1 {
			s.max = v
		}
	})
}

// Gauge sets a gauge.
func (r *Registry) Gauge(name, help string, v float64, labels ...string) {
	r.metric(name, help, "gauge", labels, func(s *series) { s.value = v })
}

func (r *Registry) metric(name, help, kind string, labels []string, fn func(*series)) {
	if r == nil {
		return
	}
	l := renderLabels(labels...)
	k := name + l
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.series[k]
	if s == nil {
		s = &series{name: name, help: help, kind: kind, labels: l}
		r.series[k] = s
	}
	fn(s)
}

// renderLabels turns k1, v1, k2, v2 … into {k1="v1",k2="v2"}.
func renderLabels(kv ...string) string {
	if len(kv) < 2 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", kv[i], kv[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

func unix(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// WritePrometheus writes every path and series in the Prometheus text
// exposition format (version 0.0.4).
func (r *Registry) WritePrometheus(w io.Writer) error {
	rows := r.Rows()
	type gauge struct {
		name, help string
		val        func(Row) float64
	}
	gauges := []gauge{
		{"citybrain_freshness_lag_seconds", "Wall seconds a path is behind its input (0 when caught up) / 数据路径滞后秒数", func(x Row) float64 { return x.LagS }},
		{"citybrain_freshness_event_lag_seconds", "Data-time seconds between the newest input event and the newest event shown / 事件时间滞后", func(x Row) float64 { return x.EventLagS }},
		{"citybrain_freshness_behind_records", "Input records a path has not reflected yet / 未处理记录数", func(x Row) float64 { return float64(x.Behind) }},
		{"citybrain_freshness_event_time_seconds", "Newest event time a path shows, Unix seconds / 最新事件时间", func(x Row) float64 { return unix(x.EventTime) }},
		{"citybrain_freshness_commit_time_seconds", "When what a path shows was committed, Unix seconds / 提交时间", func(x Row) float64 { return unix(x.Committed) }},
		{"citybrain_freshness_snapshot", "Iceberg snapshot a path shows / 快照", func(x Row) float64 { return float64(x.Snapshot) }},
		{"citybrain_freshness_error", "1 when a path's last attempt failed / 路径出错", func(x Row) float64 {
			if x.Err != "" {
				return 1
			}
			return 0
		}},
	}
	for _, g := range gauges {
		if _, err := fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", g.name, g.help, g.name); err != nil {
			return err
		}
		for _, x := range rows {
			fmt.Fprintf(w, "%s%s %s\n", g.name, renderLabels("component", x.Component, "name", x.Name, "table", x.Table), num(g.val(x)))
		}
	}
	r.mu.Lock()
	ss := make([]series, 0, len(r.series))
	for _, s := range r.series {
		ss = append(ss, *s)
	}
	r.mu.Unlock()
	sort.Slice(ss, func(i, j int) bool {
		if ss[i].name != ss[j].name {
			return ss[i].name < ss[j].name
		}
		return ss[i].labels < ss[j].labels
	})
	seen := map[string]bool{}
	for _, s := range ss {
		name := s.name
		if s.kind == "counter" && !strings.HasSuffix(name, "_total") {
			name += "_total"
		}
		if !seen[name] {
			seen[name] = true
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, s.help, name, s.kind)
		}
		switch s.kind {
		case "summary":
			fmt.Fprintf(w, "%s_sum%s %s\n%s_count%s %s\n", name, s.labels, num(s.sum), name, s.labels, num(s.count))
		default:
			fmt.Fprintf(w, "%s%s %s\n", name, s.labels, num(s.value))
		}
	}
	for _, s := range ss {
		if s.kind == "summary" {
			mname := s.name + "_max"
			if !seen[mname] {
				seen[mname] = true
				fmt.Fprintf(w, "# HELP %s largest observation of %s\n# TYPE %s gauge\n", mname, s.name, mname)
			}
			fmt.Fprintf(w, "%s%s %s\n", mname, s.labels, num(s.max))
		}
	}
	return nil
}

func num(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%g", v)
}

// LivePath is the path background work gives way to: the warning engine's
// (what leaders are warned from). pipelines/warnings reports it.
var LivePath = Path{Component: "warnings", Name: "engine"}

// LiveSlack is how far behind the live path may be before background work
// (model runs, lake maintenance) waits: the warning freshness goal.
const LiveSlack = 5 * time.Second

// LiveBehind tells whether the live path (or a unit's of a partitioned
// engine) is more than LiveSlack behind, so background work should wait (see Yield). False when nothing reports it
// (no warning engine) or r is nil.
func (r *Registry) LiveBehind() bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for _, s := range r.states {
		// The engine's path, or one unit's of a partitioned engine (engine/<unit>).
		if s.Path.Component != LivePath.Component || (s.Path.Name != LivePath.Name && !strings.HasPrefix(s.Path.Name, LivePath.Name+"/")) {
			continue
		}
		if row := r.row(*s, now); !row.CaughtUp && row.LagS > LiveSlack.Seconds() {
			return true
		}
	}
	return false
}

// Yield waits while the live path is behind, checking every poll, for at
// most longest (background work is deferred, never starved). It returns how
// long it waited, or early when ctx is done.
//
// Why: on 2 cores beside two CPU-bound processes, a model run or a
// compaction took the cores the warning engine needed and it fell 20–30 s
// behind for as long as they ran. Deferring them while the engine catches
// up costs the marts some minutes of freshness (their goal is 10 min) and
// keeps the warnings' (10 s).
func (r *Registry) Yield(ctx context.Context, poll, longest time.Duration) time.Duration {
	start := time.Now()
	for r.LiveBehind() && time.Since(start) < longest {
		select {
		case <-ctx.Done():
			return time.Since(start)
		case <-time.After(poll):
		}
	}
	return time.Since(start)
}
