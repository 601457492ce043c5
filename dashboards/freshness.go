package dashboards

import (
	"cmp"
	"encoding/json"
	"slices"
	"time"

	"citybrain/internal/auth"
	"citybrain/internal/freshness"
)

// The freshness the pages show comes from the one registry of citybrain
// serve (internal/freshness), read on every request (it is in memory): the
// lake part of an answer is cached and recomputed on commit, how old it is
// is not cached. 数据健康 shows one row per source, the warning engine, its sink, the
// model runner and the query layer; the cockpit turns red when the warnings
// path lags past dashboards.stale_after.

// Levels of a path row: the registry's ok, warn and error, and unknown for
// a path that has not reported (yet).
const (
	levelOK      = "ok"
	levelWarn    = "warn"
	levelError   = "error"
	levelUnknown = "unknown"
)

func levelRank(l string) int {
	switch l {
	case levelError:
		return 3
	case levelWarn:
		return 2
	case levelOK:
		return 1
	}
	return 0
}

// PathRow is one row of 数据健康's freshness table: a source, the warning
// engine, the warnings' sink, the model runner or the query layer (several
// registry paths aggregated into one: the worst of them shown).
type PathRow struct {
	// Key identifies the row: source:<name>, warnings:engine,
	// warnings:sink, models or query.
	Key       string `json:"key"`
	Component string `json:"component"`
	Name      string `json:"name"`
	// Instances are the serve instances that report the row's paths
	// (docs/roles.md; the one-process platform: this one).
	Instances []string `json:"instances,omitempty"`
	// Table is the table the row's worst path shows; Tables every table of
	// an aggregated row.
	Table  string   `json:"table,omitempty"`
	Tables []string `json:"tables,omitempty"`
	// Names are the aggregated paths' names (query: pgwire, api_sql …).
	Names []string `json:"names,omitempty"`
	// EventTime is the newest event time the row shows (Beijing time,
	// RFC 3339; null when unknown), InputEventTime the newest of its input.
	EventTime      *string `json:"event_time"`
	InputEventTime *string `json:"input_event_time"`
	// LastCommit is when what the row shows was committed.
	LastCommit *string `json:"last_commit"`
	// LagS is the wall seconds behind (0 when caught up), AgeZh / AgeEn the
	// same in words; EventLagS is the data time between the newest input
	// event and the newest event shown.
	LagS      float64 `json:"lag_s"`
	AgeZh     string  `json:"age_zh"`
	AgeEn     string  `json:"age_en"`
	EventLagS float64 `json:"event_lag_s"`
	CaughtUp  bool    `json:"caught_up"`
	// Behind is records not yet reflected (a source: also the broker's
	// lag, whichever is larger).
	Behind int64 `json:"behind"`
	// Rejects and Rows: a source's dead letters and records in its topic.
	Rejects int64 `json:"rejects"`
	Rows    int64 `json:"rows"`
	// Level is ok, warn, error (the registry's) or unknown (not reported).
	Level string `json:"level"`
	// Reported is false for a row known from the broker's status or
	// expected of the configuration but absent from the registry.
	Reported bool   `json:"reported"`
	Error    string `json:"error,omitempty"`
	Note     string `json:"note,omitempty"`
}

// Paths is the freshness table of 数据健康 with its worst level (unknown
// rows do not count: they are shown grey).
type Paths struct {
	Level string    `json:"level"`
	Rows  []PathRow `json:"rows"`
	At    string    `json:"at"`
}

func timeStr(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.In(shanghai).Format(time.RFC3339)
	return &s
}

// rowKey groups registry paths into the page's rows.
func rowKey(p freshness.Path) string {
	switch p.Component {
	case "source":
		return "source:" + p.Name
	case "models", "query":
		return p.Component
	}
	return p.Component + ":" + p.Name
}

// worse reports whether a is worse than b: level, then lag, then the older
// newest event.
func worse(a, b freshness.Row) bool {
	if ra, rb := levelRank(a.Level), levelRank(b.Level); ra != rb {
		return ra > rb
	}
	if a.LagS != b.LagS {
		return a.LagS > b.LagS
	}
	if a.EventLagS != b.EventLagS {
		return a.EventLagS > b.EventLagS
	}
	return !a.EventTime.IsZero() && (b.EventTime.IsZero() || a.EventTime.Before(b.EventTime))
}

// paths builds the freshness table from the registry, the broker's
// per-source status (sources that never reported still get a row) and
// the paths the configuration expects (Deps.Expect): one that has not
// reported StaleAfter after the server started is a warning — a missing
// row must not leave the page green.
func (s *Server) paths(status []SourceHealth) Paths {
	now := s.d.Now()
	type group struct {
		key   string
		worst freshness.Row
		rows  []freshness.Row
	}
	groups := map[string]*group{}
	var order []string
	all := s.d.Fresh.Rows()
	if s.d.Peers != nil {
		all = append(all, s.d.Peers()...)
	}
	for _, r := range all {
		if r.Instance == "" {
			r.Instance = s.d.Instance
		}
		k := rowKey(r.Path)
		g := groups[k]
		if g == nil {
			g = &group{key: k, worst: r}
			groups[k] = g
			order = append(order, k)
		} else if worse(r, g.worst) {
			g.worst = r
		}
		g.rows = append(g.rows, r)
	}
	out := Paths{Level: levelOK, Rows: []PathRow{}, At: now.In(shanghai).Format(time.RFC3339)}
	byKey := map[string]int{}
	for _, k := range order {
		g := groups[k]
		w := g.worst
		pr := PathRow{Key: k, Component: w.Component, Name: w.Name, Table: w.Table, EventTime: timeStr(w.EventTime),
			InputEventTime: timeStr(w.InputEventTime), LastCommit: timeStr(w.Committed), LagS: w.LagS, EventLagS: w.EventLagS,
			CaughtUp: w.CaughtUp, Level: w.Level, Reported: true, Error: w.Err}
		for _, r := range g.rows {
			if r.Instance != "" && !slices.Contains(pr.Instances, r.Instance) {
				pr.Instances = append(pr.Instances, r.Instance)
			}
		}
		slices.Sort(pr.Instances)
		if len(g.rows) > 1 {
			pr.Name = ""
			for _, r := range g.rows {
				pr.Behind += r.Behind
				if r.Table != "" && !slices.Contains(pr.Tables, r.Table) {
					pr.Tables = append(pr.Tables, r.Table)
				}
				if !slices.Contains(pr.Names, r.Name) {
					pr.Names = append(pr.Names, r.Name)
				}
				if pr.Error == "" {
					pr.Error = r.Err
				}
			}
		} else {
			pr.Behind = w.Behind
		}
		if pr.LagS > 0 {
			pr.AgeZh, pr.AgeEn = freshness.Age(time.Duration(pr.LagS * float64(time.Second)))
		}
		byKey[k] = len(out.Rows)
		out.Rows = append(out.Rows, pr)
	}
	for _, st := range status {
		k := "source:" + st.Source
		i, ok := byKey[k]
		if !ok {
			byKey[k] = len(out.Rows)
			out.Rows = append(out.Rows, PathRow{Key: k, Component: "source", Name: st.Source, Table: st.Table, LastCommit: timeStr(st.LastCommit),
				Behind: st.Lag, Rejects: st.Rejects, Rows: st.Rows, Level: levelUnknown, Note: st.Note})
			continue
		}
		r := &out.Rows[i]
		r.Behind = max(r.Behind, st.Lag)
		r.Rejects, r.Rows, r.Note = st.Rejects, st.Rows, st.Note
		if r.Table == "" {
			r.Table = st.Table
		}
	}
	for _, p := range s.d.Expect {
		k := rowKey(p)
		if _, ok := byKey[k]; ok {
			continue
		}
		pr := PathRow{Key: k, Component: p.Component, Name: p.Name, Table: p.Table, Level: levelUnknown, Note: "waiting"}
		if now.Sub(s.started) >= s.cfg.StaleAfter {
			pr.Level, pr.Note = levelWarn, "not_reported"
		}
		byKey[k] = len(out.Rows)
		out.Rows = append(out.Rows, pr)
	}
	// Sources first (by name), then the warnings, models and query layer.
	rank := map[string]int{"source": 0, "warnings": 1, "models": 2, "query": 3}
	slices.SortStableFunc(out.Rows, func(a, b PathRow) int {
		ra, ok := rank[a.Component]
		if !ok {
			ra = 4
		}
		rb, ok := rank[b.Component]
		if !ok {
			rb = 4
		}
		return cmp.Or(cmp.Compare(ra, rb), cmp.Compare(a.Key, b.Key))
	})
	for _, r := range out.Rows {
		if levelRank(r.Level) > levelRank(out.Level) {
			out.Level = r.Level
		}
	}
	return out
}

// scopePaths keeps the rows of p that sc may see: rows of no table, and
// rows of tables it sees (an aggregated row keeps only those of its tables).
// A table read through a row filter shows no backlog, rejects or row
// counts: they would count rows the filter hides. The level is that of the
// rows kept.
func scopePaths(sc auth.Scope, p Paths) Paths {
	out := Paths{Level: levelOK, Rows: []PathRow{}, At: p.At}
	for _, r := range p.Rows {
		if len(r.Tables) > 0 {
			var keep []string
			for _, t := range r.Tables {
				if sc.Sees(t) {
					keep = append(keep, t)
				}
			}
			if len(keep) == 0 {
				continue
			}
			r.Tables = keep
			if !sc.Sees(r.Table) {
				r.Table = keep[0]
			}
		}
		if r.Table != "" && !sc.Sees(r.Table) {
			continue
		}
		counts := r.Table == "" || sc.Counts(r.Table)
		for _, t := range r.Tables {
			counts = counts && sc.Counts(t)
		}
		if !counts {
			r.Behind, r.Rejects, r.Rows = 0, 0, 0
		}
		out.Rows = append(out.Rows, r)
		if levelRank(r.Level) > levelRank(out.Level) {
			out.Level = r.Level
		}
	}
	return out
}

// scopeFreshness is f with its Paths scoped to sc (scopePaths).
func scopeFreshness(sc auth.Scope, f WarningsFreshness) WarningsFreshness {
	if f.Paths != nil {
		p := scopePaths(sc, *f.Paths)
		f.Paths = &p
	}
	return f
}

// WarningsFreshness is how far behind the warnings the cockpit shows are.
type WarningsFreshness struct {
	// Reported: the warning engine (or its sink) reports its freshness;
	// when false nothing below is known and the page says nothing.
	Reported bool `json:"reported"`
	// Stale: the warnings path (engine or sink) lags more than
	// dashboards.stale_after in wall time.
	Stale bool `json:"stale"`
	// LagS is that lag in seconds; AgeZh / AgeEn in words.
	LagS  float64 `json:"lag_s"`
	AgeZh string  `json:"age_zh"`
	AgeEn string  `json:"age_en"`
	Level string  `json:"level"`
	// EventTime is the newest event time the engine has evaluated;
	// DataEventTime the newest event time of the data (the newest of the
	// engine's input and what the sources committed).
	EventTime     *string `json:"event_time"`
	DataEventTime *string `json:"data_event_time"`
	// Behind is the records the engine has not evaluated yet.
	Behind int64 `json:"behind"`
	// LiveAfter: an active warning whose event time is before it is not
	// live (实时); null when every active warning is (the engine is caught
	// up: it confirmed them up to the newest data).
	LiveAfter *string `json:"live_after"`
	// StaleAfterS is dashboards.stale_after in seconds.
	StaleAfterS float64 `json:"stale_after_s"`
	Error       string  `json:"error,omitempty"`
	At          string  `json:"at"`
	// Paths, on the live stream only, are every path's freshness (the
	// cockpit's freshness card follows without a reload).
	Paths *Paths `json:"paths,omitempty"`
}

// liveFreshness is the live stream's "freshness" event: the warnings'
// freshness and every path's (with the broker's status as last read).
func (s *Server) liveFreshness() WarningsFreshness {
	f := s.warningsFreshness()
	s.healthMu.Lock()
	var status []SourceHealth
	if s.health != nil {
		status = s.health.list
	}
	s.healthMu.Unlock()
	p := s.paths(status)
	f.Paths = &p
	return f
}

// warningsFreshness reads the warning engine's and its sink's paths.
//
// The banner uses wall time only: in the demo the simulator's clock runs
// 1,440 times faster, so a data-time gap says nothing about being late.
// Which warnings are live uses data time, but only once the engine is
// late: a warning raised an hour ago and still active is live when the
// engine has evaluated up to the newest data (it would have cleared it).
func (s *Server) warningsFreshness() WarningsFreshness {
	now := s.d.Now()
	th := s.cfg.StaleAfter
	out := WarningsFreshness{Level: levelUnknown, StaleAfterS: th.Seconds(), At: now.In(shanghai).Format(time.RFC3339)}
	var engine freshness.Row
	var haveEngine bool
	var dataNewest time.Time
	for _, r := range s.d.Fresh.Rows() {
		switch {
		case r.Component == "warnings":
			if !out.Reported || worse(r, freshness.Row{Level: out.Level, LagS: out.LagS}) {
				out.Level, out.LagS = r.Level, r.LagS
			}
			out.Reported = true
			if out.Error == "" {
				out.Error = r.Err
			}
			if r.Name == "engine" {
				engine, haveEngine = r, true
			}
		case r.Component == "source":
			if r.EventTime.After(dataNewest) {
				dataNewest = r.EventTime
			}
		}
	}
	if !out.Reported {
		return out
	}
	if haveEngine {
		// The engine's input may be newer than what the sources committed,
		// or older (it has not fetched everything): the newest of them.
		out.EventTime, out.Behind = timeStr(engine.EventTime), engine.Behind
		for _, t := range []time.Time{engine.InputEventTime, engine.EventTime} {
			if t.After(dataNewest) {
				dataNewest = t
			}
		}
	}
	out.DataEventTime = timeStr(dataNewest)
	out.Stale = out.LagS > th.Seconds()
	if out.LagS > 0 {
		out.AgeZh, out.AgeEn = freshness.Age(time.Duration(out.LagS * float64(time.Second)))
	}
	if out.Stale {
		ref := dataNewest
		if ref.IsZero() {
			ref = now
		}
		out.LiveAfter = timeStr(ref.Add(-th))
	}
	return out
}

// jsonOf encodes v (values of this file always encode).
func jsonOf(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
