package freshness

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestAgeLevelsAndPending(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	r := New(clock, Thresholds{Warn: time.Minute, Error: 5 * time.Minute})
	p := Path{Component: "warnings", Name: "engine"}

	r.Pending(p, now.Add(-30*time.Second))
	r.Pending(p, now.Add(-10*time.Second)) // a younger input keeps the older pending time
	row, ok := r.Get(p)
	if !ok || row.CaughtUp || row.LagS != 30 || row.Level != "ok" {
		t.Fatalf("30 s pending: %+v", row)
	}
	now = now.Add(5 * time.Minute) // nothing reports: a stuck path ages by itself
	if row, _ = r.Get(p); row.LagS != 330 || row.Level != "error" {
		t.Fatalf("stuck 5.5 min: %+v", row)
	}
	r.Update(p, func(s *State) { s.PendingSince = time.Time{}; s.Err = "fetch failed" })
	if row, _ = r.Get(p); !row.CaughtUp || row.LagS != 0 || row.Level != "warn" {
		t.Fatalf("caught up with an error: %+v", row)
	}
	r.Set(State{Path: p, EventTime: now.Add(-2 * time.Hour), InputEventTime: now})
	if row, _ = r.Get(p); row.EventLagS != 7200 || row.Level != "ok" {
		t.Fatalf("event lag: %+v", row)
	}
	r.Remove(p)
	if _, ok := r.Get(p); ok {
		t.Fatal("removed path still there")
	}
	m := Path{Component: "models", Name: "runner"}
	r.SetThresholds("models", Thresholds{Warn: 10 * time.Minute, Error: 30 * time.Minute})
	r.Pending(m, now.Add(-6*time.Minute))
	if row, _ := r.Get(m); row.Level != "ok" {
		t.Fatalf("models 6 min behind, thresholds 10/30 min: %+v", row)
	}
	var nilReg *Registry // services without a registry (CLI, tests) report into nil
	nilReg.Pending(p, now)
	nilReg.Count("x", "x", 1)
	if nilReg.Rows() != nil {
		t.Fatal("nil registry has rows")
	}
}

func TestAgeInWords(t *testing.T) {
	for _, c := range []struct {
		d      time.Duration
		zh, en string
	}{
		{12 * time.Second, "12 秒", "12 s"},
		{3 * time.Minute, "3 分钟", "3 min"},
		{150 * time.Minute, "2.5 小时", "2.5 h"},
		{4 * 24 * time.Hour, "4.0 天", "4.0 days"},
	} {
		zh, en := Age(c.d)
		if zh != c.zh || en != c.en {
			t.Errorf("Age(%v) = %q %q, want %q %q", c.d, zh, en, c.zh, c.en)
		}
	}
}

func TestPrometheusText(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := New(func() time.Time { return now }, DefaultThresholds())
	r.Set(State{Path: Path{Component: "source", Name: "weather", Table: "raw.weather"}, Snapshot: 42, PendingSince: now.Add(-90 * time.Second), Behind: 7})
	r.Observe("citybrain_lake_commit_seconds", "commit durations", 0.25, "table", "raw.weather")
	r.Observe("citybrain_lake_commit_seconds", "commit durations", 0.75, "table", "raw.weather")
	r.Count("citybrain_warnings_errors", "engine failures", 1)
	var b strings.Builder
	if err := r.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"# TYPE citybrain_freshness_lag_seconds gauge\n",
		`citybrain_freshness_lag_seconds{component="source",name="weather",table="raw.weather"} 90` + "\n",
		`citybrain_freshness_behind_records{component="source",name="weather",table="raw.weather"} 7` + "\n",
		`citybrain_freshness_snapshot{component="source",name="weather",table="raw.weather"} 42` + "\n",
		"# TYPE citybrain_lake_commit_seconds summary\n",
		`citybrain_lake_commit_seconds_sum{table="raw.weather"} 1` + "\n",
		`citybrain_lake_commit_seconds_count{table="raw.weather"} 2` + "\n",
		`citybrain_lake_commit_seconds_max{table="raw.weather"} 0.75` + "\n",
		"# TYPE citybrain_warnings_errors_total counter\ncitybrain_warnings_errors_total 1\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

// Background work waits while the live path (the warning engine) is behind,
// goes on as soon as it catches up, and never waits longer than max.
func TestYieldToLivePath(t *testing.T) {
	r := New(time.Now, DefaultThresholds())
	ctx := context.Background()
	if r.LiveBehind() {
		t.Fatal("no engine reported: behind")
	}
	if w := r.Yield(ctx, time.Millisecond, time.Second); w > 100*time.Millisecond {
		t.Fatalf("waited %v with no engine", w)
	}
	r.Pending(LivePath, time.Now().Add(-2*time.Second)) // 2 s behind: within LiveSlack
	if r.LiveBehind() {
		t.Fatal("2 s behind counts as behind")
	}
	r.Pending(LivePath, time.Now().Add(-time.Minute))
	if !r.LiveBehind() {
		t.Fatal("a minute behind does not count as behind")
	}
	if w := r.Yield(ctx, time.Millisecond, 50*time.Millisecond); w < 50*time.Millisecond {
		t.Fatalf("waited %v while the engine was behind, want the max (50ms)", w)
	}
	go func() {
		time.Sleep(30 * time.Millisecond)
		r.Update(LivePath, func(s *State) { s.PendingSince = time.Time{} })
	}()
	if w := r.Yield(ctx, time.Millisecond, 10*time.Second); w > 5*time.Second {
		t.Fatalf("waited %v after the engine caught up", w)
	}
	// A partitioned engine's units report engine/<unit>: one behind is the live path behind.
	unit := Path{Component: "warnings", Name: "engine/p3"}
	r.Pending(unit, time.Now().Add(-time.Minute))
	if !r.LiveBehind() {
		t.Fatal("a unit of a partitioned engine a minute behind does not count as behind")
	}
	r.Update(unit, func(s *State) { s.PendingSince = time.Time{} })
	r.Pending(Path{Component: "warnings", Name: "sink/p3"}, time.Now().Add(-time.Minute))
	if r.LiveBehind() {
		t.Fatal("a unit's sink behind counts as the live path behind")
	}
	var nilReg *Registry
	if nilReg.LiveBehind() {
		t.Fatal("nil registry: behind")
	}
}
