package dashboards_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"citybrain/dashboards"
	"citybrain/internal/config"
	"citybrain/internal/freshness"
	"citybrain/internal/instances"

	"github.com/segmentio/kafka-go"
)

var (
	enginePath = freshness.Path{Component: "warnings", Name: "engine"}
	sinkPath   = freshness.Path{Component: "warnings", Name: "sink", Table: "marts.warnings"}
)

// staleWarnings makes the warning engine lag: pending since ago, evaluated
// up to ago, the newest input now, behind records not yet evaluated.
func (e *env) staleWarnings(ago time.Duration, behind int64) {
	now := time.Now()
	e.rt.Fresh.Set(freshness.State{Path: enginePath, EventTime: now.Add(-ago), InputEventTime: now, Behind: behind, PendingSince: now.Add(-ago)})
	e.rt.Fresh.Set(freshness.State{Path: sinkPath, Committed: now.Add(-ago), EventTime: now.Add(-ago)})
}

// caughtUpWarnings: the engine has evaluated everything.
func (e *env) caughtUpWarnings() {
	now := time.Now()
	e.rt.Fresh.Set(freshness.State{Path: enginePath, EventTime: now, InputEventTime: now})
	e.rt.Fresh.Set(freshness.State{Path: sinkPath, Committed: now, EventTime: now})
}

type healthPaths struct {
	Paths dashboards.Paths
}

func rowsByKey(p dashboards.Paths) map[string]dashboards.PathRow {
	out := map[string]dashboards.PathRow{}
	for _, r := range p.Rows {
		out[r.Key] = r
	}
	return out
}

// TestHealthPaths: 数据健康 has one row per source, the warning engine and
// sink, the model runner and the query layer (its paths aggregated: the
// worst shown); the page's level is the worst row's.
func TestHealthPaths(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	reg := e.rt.Fresh
	reg.Set(freshness.State{Path: freshness.Path{Component: "source", Name: "city_management", Table: "raw.city_events"}, EventTime: now.Add(-time.Minute), Committed: now})
	reg.Set(freshness.State{Path: freshness.Path{Component: "source", Name: "police", Table: "raw.incidents"}, EventTime: now.Add(-time.Hour), PendingSince: now.Add(-2 * time.Minute), Behind: 40})
	e.staleWarnings(4*24*time.Hour, 120000)
	reg.Set(freshness.State{Path: freshness.Path{Component: "models", Name: "runner", Table: "marts.enterprise_risk"}, Committed: now})
	reg.Set(freshness.State{Path: freshness.Path{Component: "models", Name: "runner", Table: "marts.plan_kpis"}, Committed: now})
	reg.Set(freshness.State{Path: freshness.Path{Component: "query", Name: "pgwire", Table: "raw.incidents"}, PendingSince: now.Add(-30 * time.Second)})
	reg.Set(freshness.State{Path: freshness.Path{Component: "query", Name: "api_sql", Table: "marts.warnings"}, PendingSince: now.Add(-10 * time.Minute), Err: "refresh view: boom"})

	c := e.client()
	c.login("leader")
	var h healthPaths
	c.json("/api/dash/health", &h)
	rows := rowsByKey(h.Paths)
	tests := []struct {
		key, level string
		check      func(r dashboards.PathRow) string
	}{
		{"source:city_management", "ok", func(r dashboards.PathRow) string {
			if !r.CaughtUp || r.EventTime == nil || r.LastCommit == nil || r.Table != "raw.city_events" {
				return "want caught up with an event time, a commit and its table"
			}
			return ""
		}},
		{"source:police", "warn", func(r dashboards.PathRow) string {
			if r.AgeZh != "2 分钟" || r.AgeEn != "2 min" || r.Behind != 40 {
				return "want 2 分钟 / 2 min behind, 40 records"
			}
			return ""
		}},
		{"warnings:engine", "error", func(r dashboards.PathRow) string {
			if r.AgeZh != "4.0 天" || r.Behind != 120000 || r.EventLagS < 4*86400-5 {
				return "want 4.0 天 behind, 120000 records, 4 days of data time"
			}
			return ""
		}},
		{"warnings:sink", "ok", nil},
		{"models", "ok", func(r dashboards.PathRow) string {
			if len(r.Tables) != 2 {
				return "want both marts"
			}
			return ""
		}},
		{"query", "error", func(r dashboards.PathRow) string {
			// The SQL access service of this process reports its own paths too.
			if r.LagS < 599 || r.Table != "marts.warnings" || !slices.Contains(r.Names, "api_sql") || !slices.Contains(r.Names, "pgwire") || !strings.Contains(r.Error, "boom") {
				return "want the worst path (api_sql, 10 min), every name, its error"
			}
			return ""
		}},
	}
	for _, tc := range tests {
		t.Run(tc.key, func(t *testing.T) {
			r, ok := rows[tc.key]
			if !ok {
				t.Fatalf("no row %s in %+v", tc.key, h.Paths.Rows)
			}
			if r.Level != tc.level {
				t.Errorf("level %s, want %s (%+v)", r.Level, tc.level, r)
			}
			if tc.check != nil {
				if msg := tc.check(r); msg != "" {
					t.Errorf("%s: %+v", msg, r)
				}
			}
		})
	}
	if h.Paths.Level != "error" {
		t.Errorf("page level %q, want error", h.Paths.Level)
	}
	// Sources first (every configured one: those without a lake writer in
	// this test are grey, not reported), then the warnings, models, query layer.
	var order []string
	for _, r := range h.Paths.Rows {
		if !strings.HasPrefix(r.Key, "source:") || r.Key == "source:city_management" || r.Key == "source:police" {
			order = append(order, r.Key)
		} else if r.Level != "unknown" || r.Reported {
			t.Errorf("source %s reported nothing but is %s", r.Key, r.Level)
		}
	}
	if got := strings.Join(order, ","); got != "source:city_management,source:police,warnings:engine,warnings:sink,models,query" {
		t.Errorf("row order %s", got)
	}

	// Caught up everywhere: green.
	e.caughtUpWarnings()
	reg.Set(freshness.State{Path: freshness.Path{Component: "source", Name: "police", Table: "raw.incidents"}, EventTime: now})
	reg.Set(freshness.State{Path: freshness.Path{Component: "query", Name: "pgwire", Table: "raw.incidents"}})
	reg.Set(freshness.State{Path: freshness.Path{Component: "query", Name: "api_sql", Table: "marts.warnings"}})
	c.json("/api/dash/health", &h)
	if h.Paths.Level != "ok" {
		t.Errorf("everything caught up: page level %q (%+v)", h.Paths.Level, h.Paths.Rows)
	}
}

// TestHealthPathsNotReported: a path the configuration runs but that never
// reports (here the warning engine) turns the page yellow once
// dashboards.stale_after has passed since start — it is not left out.
func TestHealthPathsNotReported(t *testing.T) {
	e := newEnvCfg(t, false, func(c *config.Config) { c.Dashboards.StaleAfter = 200 * time.Millisecond })
	e.rt.Fresh.Set(freshness.State{Path: freshness.Path{Component: "source", Name: "city_management", Table: "raw.city_events"}, Committed: time.Now()})
	c := e.client()
	c.login("leader")
	var h healthPaths
	c.json("/api/dash/health", &h)
	if r := rowsByKey(h.Paths)["warnings:engine"]; r.Level != "unknown" || r.Note != "waiting" {
		t.Errorf("engine row right after start: %+v, want unknown (waiting)", r)
	}
	if h.Paths.Level != "ok" {
		t.Errorf("right after start the page is %q, want ok (waiting rows are grey)", h.Paths.Level)
	}
	time.Sleep(300 * time.Millisecond)
	c.json("/api/dash/health", &h)
	r, ok := rowsByKey(h.Paths)["warnings:engine"]
	if !ok || r.Level != "warn" || r.Note != "not_reported" || r.Reported {
		t.Errorf("engine row after stale_after: %+v, want warn (not_reported)", r)
	}
	if h.Paths.Level != "warn" {
		t.Errorf("page level %q, want warn", h.Paths.Level)
	}
}

type cockpitFresh struct {
	Lake              map[string]section
	Paths             dashboards.Paths
	WarningsFreshness dashboards.WarningsFreshness `json:"warnings_freshness"`
}

// TestCockpitStale: the cockpit's warnings are stale when the warnings path
// lags past dashboards.stale_after (banner, age in words, the cut-off of
// live warnings), not when it is caught up or reports nothing; the live
// stream carries the same.
func TestCockpitStale(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.login("leader")
	tests := []struct {
		name      string
		setup     func()
		stale     bool
		reported  bool
		ageZh     string
		liveAfter bool
	}{
		{"not reported", func() {}, false, false, "", false},
		{"caught up", e.caughtUpWarnings, false, true, "", false},
		{"30 s behind (under 60 s)", func() { e.staleWarnings(30*time.Second, 10) }, false, true, "30 秒", false},
		{"4 days behind", func() { e.staleWarnings(4*24*time.Hour, 5000) }, true, true, "4.0 天", true},
		{"caught up again", e.caughtUpWarnings, false, true, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.setup()
			var cp cockpitFresh
			c.json("/api/dash/cockpit", &cp)
			f := cp.WarningsFreshness
			if f.Stale != tc.stale || f.Reported != tc.reported || f.AgeZh != tc.ageZh || (f.LiveAfter != nil) != tc.liveAfter {
				t.Errorf("warnings_freshness %+v, want stale %v reported %v age %q live_after %v", f, tc.stale, tc.reported, tc.ageZh, tc.liveAfter)
			}
			if f.StaleAfterS != 60 {
				t.Errorf("stale_after_s %v, want 60 (default)", f.StaleAfterS)
			}
			if tc.stale && (f.EventTime == nil || f.Behind != 5000 || f.AgeEn != "4.0 days") {
				t.Errorf("stale: want the newest event evaluated, 5000 behind, 4.0 days: %+v", f)
			}
			// The live stream starts with the same freshness.
			if got := liveFreshness(t, c); got.Stale != tc.stale || got.AgeZh != tc.ageZh {
				t.Errorf("live stream freshness %+v, want stale %v age %q", got, tc.stale, tc.ageZh)
			}
		})
	}
}

// TestCockpitEventTime: the warnings trend is drawn by event time (a
// backlog evaluated today counts on the day its data happened) and the
// active warnings come with their event times for the live counts.
func TestCockpitEventTime(t *testing.T) {
	e := newEnv(t)
	at := e.day(3, 10)
	e.write(e.schema("warnings"), map[string]any{"warning_id": "W8", "seq": 8, "kind": "traffic", "rule": "traffic_speed.sql", "subject_type": "segment",
		"subject_id": "S1", "street_code": st7, "level": "red", "state": "raised", "predicted": false, "message_zh": "积压的交通预警", "message_en": "backlogged traffic warning",
		"event_time": at, "transition_at": time.Now(), "raised_at": at})
	c := e.client()
	c.login("leader")
	var cp cockpitFresh
	c.json("/api/dash/cockpit", &cp)
	byDay := map[string]float64{}
	for _, r := range cp.Lake["trend_warnings"].Rows {
		byDay[toString(r["day"])[:10]] += r["n"].(float64)
	}
	if d := e.date(3).Format(time.DateOnly); byDay[d] != 1 {
		t.Errorf("warnings trend %v: want 1 on %s (W8's event time), not on the day it was processed", byDay, d)
	}
	found := false
	for _, r := range cp.Lake["active_warnings_by_time"].Rows {
		if r["level"] == "red" && strings.HasPrefix(toString(r["event_time"]), at.Format("2006-01-02T15:04")) {
			found = true
		}
	}
	if !found {
		t.Errorf("active_warnings_by_time lacks W8 at %s: %+v", at, cp.Lake["active_warnings_by_time"])
	}
	var ws struct{ Warnings section }
	c.json("/api/dash/warnings", &ws)
	if len(ws.Warnings.Rows) == 0 || ws.Warnings.Rows[0]["warning_id"] != "W1" {
		t.Errorf("active warnings: red ones newest event first, W1 before W8: %+v", ws.Warnings.Rows)
	}
}

// liveFreshness reads the first "freshness" event of /api/dash/live.
func liveFreshness(t *testing.T, c *client) dashboards.WarningsFreshness {
	t.Helper()
	req, _ := http.NewRequest("GET", c.base+"/api/dash/live", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.c.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	ev := ""
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			ev = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && ev == "freshness" {
			var f dashboards.WarningsFreshness
			if err := json.Unmarshal([]byte(v), &f); err != nil {
				t.Fatalf("freshness event %q: %v", v, err)
			}
			return f
		}
	}
	t.Fatalf("no freshness event on the live stream: %v", sc.Err())
	return dashboards.WarningsFreshness{}
}

// TestHealthScope: 数据健康 and the cockpit show a department only the
// paths of its own tables (aggregated rows keep only its tables), a leader
// all of them.
func TestHealthScope(t *testing.T) {
	e := newEnv(t)
	now := time.Now()
	reg := e.rt.Fresh
	reg.Set(freshness.State{Path: freshness.Path{Component: "source", Name: "police", Table: "raw.police_cases"}, Committed: now, Behind: 7})
	reg.Set(freshness.State{Path: freshness.Path{Component: "source", Name: "water", Table: "raw.water_telemetry"}, Committed: now})
	reg.Set(freshness.State{Path: freshness.Path{Component: "query", Name: "pgwire", Table: "audit.queries"}, Committed: now})
	reg.Set(freshness.State{Path: freshness.Path{Component: "query", Name: "pgwire", Table: "raw.weather"}, Committed: now})
	for _, c := range []struct {
		user     string
		want     []string
		mustMiss []string
	}{
		{"leader", []string{"source:police", "source:water"}, []string{"audit.queries"}},
		{"dept_water", []string{"source:water", "raw.weather"}, []string{"source:police", "raw.police_cases", "audit.queries"}},
	} {
		cl := e.client()
		cl.login(c.user)
		for _, p := range []string{"/api/dash/health", "/api/dash/cockpit"} {
			_, b := cl.do("GET", p, nil, false)
			for _, w := range c.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s %s: no %s", c.user, p, w)
				}
			}
			for _, m := range c.mustMiss {
				if strings.Contains(string(b), m) {
					t.Errorf("%s %s shows %s", c.user, p, m)
				}
			}
		}
	}
}

// TestHealthInstances: 数据健康 shows the platform's other serve instances
// (docs/roles.md): the paths an instance reports, with its name, and an
// instance that went silent (a kill -9: no goodbye) as an alarm row, its
// paths in error — the page is not green.
func TestHealthInstances(t *testing.T) {
	e := newEnvWith(t, true)
	e.caughtUpWarnings()
	// The registry makes the topic when it starts; make sure it is there.
	if err := e.rt.App.Client.EnsureTopics(context.Background(), instances.Topic); err != nil {
		t.Fatal(err)
	}
	w := e.rt.App.Client.Writer(instances.Topic)
	defer w.Close()
	ghost := instances.Info{Name: "ingest-9", Roles: []string{"connectors", "lakewriter"}, At: time.Now().Add(-time.Minute), IntervalS: 5,
		Paths: []freshness.Row{{State: freshness.State{Path: freshness.Path{Component: "source", Name: "water", Table: "raw.water_telemetry"}}, Level: "ok", CaughtUp: true}}}
	b, _ := json.Marshal(ghost)
	if err := w.WriteMessages(context.Background(), kafka.Message{Key: []byte(ghost.Name), Value: b}); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.login("leader")
	var h healthPaths
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.json("/api/dash/health", &h)
		if _, ok := rowsByKey(h.Paths)["instance:ingest-9"]; ok || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rows := rowsByKey(h.Paths)
	down, ok := rows["instance:ingest-9"]
	if !ok || down.Level != "error" || !strings.Contains(down.Error, "实例失联") || !slices.Equal(down.Instances, []string{"ingest-9"}) {
		t.Fatalf("the silent instance's row: %+v (%v)", down, ok)
	}
	if r := rows["source:water"]; r.Level != "error" || !slices.Equal(r.Instances, []string{"ingest-9"}) {
		t.Errorf("the silent instance's source row: %+v", r)
	}
	if r := rows["warnings:engine"]; !slices.Equal(r.Instances, []string{"dash-test"}) {
		t.Errorf("this instance's own row: %+v", r)
	}
	if h.Paths.Level != "error" {
		t.Errorf("page level %q with an instance down, want error", h.Paths.Level)
	}
}
