package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"citybrain/internal/freshness"
)

// TestSoakParseMetrics reads what internal/freshness writes: the soak must
// see every path's gauges and the summaries.
func TestSoakParseMetrics(t *testing.T) {
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	reg := freshness.New(func() time.Time { return now }, freshness.Thresholds{})
	reg.Set(freshness.State{Path: freshness.Path{Component: "source", Name: "mobile_signal", Table: "raw.mobile_signal"},
		EventTime: now.Add(-time.Hour), InputEventTime: now.Add(-time.Hour + 5*time.Minute), Behind: 42, Snapshot: 7,
		PendingSince: now.Add(-3 * time.Second)})
	reg.Set(freshness.State{Path: freshness.Path{Component: "warnings", Name: "engine"}, Err: `a "quoted" error`})
	reg.Observe("citybrain_lake_commit_seconds", "commit", 0.25, "table", "raw.mobile_signal")
	reg.Observe("citybrain_lake_commit_seconds", "commit", 0.75, "table", "raw.mobile_signal")
	var b bytes.Buffer
	if err := reg.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	paths, other := parseMetrics(b.Bytes())
	p, ok := paths["source/mobile_signal/raw.mobile_signal"]
	if !ok {
		t.Fatalf("no source path in %v\n%s", paths, b.String())
	}
	if p.LagS != 3 || p.Behind != 42 || p.Snapshot != 7 || p.EventLagS != 300 || p.EventTime != float64(now.Add(-time.Hour).Unix()) {
		t.Errorf("source path %+v", p)
	}
	if e := paths["warnings/engine"]; !e.Error || e.LagS != 0 {
		t.Errorf("engine path %+v", e)
	}
	if got := other[`citybrain_lake_commit_seconds_count{table="raw.mobile_signal"}`]; got != 2 {
		t.Errorf("commit count %v in %v", got, other)
	}
	if got := other[`citybrain_lake_commit_seconds_sum{table="raw.mobile_signal"}`]; got != 1 {
		t.Errorf("commit sum %v", got)
	}
}

func TestSoakParsePromLine(t *testing.T) {
	for _, tc := range []struct {
		line, name string
		labels     map[string]string
		val        float64
		ok         bool
	}{
		{`up 1`, "up", map[string]string{}, 1, true},
		{`x{a="b",c="d e"} 2.5`, "x", map[string]string{"a": "b", "c": "d e"}, 2.5, true},
		{`x{a="q\"uo,te}"} 3`, "x", map[string]string{"a": `q"uo,te}`}, 3, true},
		{`x{a="unterminated} 3`, "", nil, 0, false},
		{`x{a="b"} notanumber`, "", nil, 0, false},
	} {
		name, labels, val, ok := parsePromLine(tc.line)
		if ok != tc.ok || name != tc.name || val != tc.val || (ok && !equalMaps(labels, tc.labels)) {
			t.Errorf("%s: got %q %v %v %v", tc.line, name, labels, val, ok)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestSoakSummaryAndChart: a synthetic run's summary (catch-up, RSS growth,
// files) and chart, and soak.json stays valid JSON (no NaN).
func TestSoakSummaryAndChart(t *testing.T) {
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	rec := &soakRecord{Machine: Machine{Cores: 2}, Speed: 1440, Hogs: 1, Interval: 10, Start: start, ReadyS: 30, CatchUpS: 100, Summary: map[string]any{}}
	for i := 0; i <= 60; i++ {
		s := soakSample{T: float64(i * 10), Wall: start.Add(time.Duration(i*10) * time.Second), RSSMB: 500 + float64(i), CPUCores: 1.2, Load1: 3,
			Paths:  map[string]soakPath{"source/mobile_signal/raw.mobile_signal": {LagS: float64(i % 5)}, "warnings/engine": {LagS: 0}},
			Tables: map[string]soakTable{"raw.mobile_signal": {DataFiles: i % 9, MetadataBytes: int64(i) * 1000}},
			Summaries: map[string]float64{`citybrain_duckdb_memory_bytes{db="warnings"}`: float64(100+2*i) * (1 << 20),
				`citybrain_duckdb_memory_bytes{db="query"}`: 50 << 20, "citybrain_go_memory_bytes": 200 << 20}}
		if i*10 >= 100 {
			s.EngineAgeS = 2
		}
		rec.Samples = append(rec.Samples, s)
	}
	rec.Transitions = []*soakTransition{{Seq: 1, EventTime: start, API: start.Add(200 * time.Second), APIFreshS: 3, AfterCatchUp: true}}
	ps := rec.pathStats()
	if len(ps) != 2 || ps[0].Path != "source/mobile_signal/raw.mobile_signal" || ps[0].P99 != 4 || ps[1].Max != 0 {
		t.Errorf("path stats %+v", ps)
	}
	g, first, last, slope, n := rec.rssGrowth()
	if n < 6 || first <= 0 || last <= first || math.Abs(g-(last-first)/first) > 1e-9 || slope <= 0 {
		t.Errorf("rss growth %v %v %v %v %d", g, first, last, slope, n)
	}
	// The second half after catch-up is t = 350…600 s: warnings 170 → 220 MiB changed most.
	if got, want := rec.memorySplit(), "DuckDB warnings 172 → 218; "; !strings.HasPrefix(got, want) || !strings.Contains(got, "DuckDB query 50 → 50") || !strings.Contains(got, "Go runtime 200 → 200") {
		t.Errorf("memory split %q, want it to start %q", got, want)
	}
	if xs := rec.transitionFresh("api"); len(xs) != 1 || xs[0] != 3 {
		t.Errorf("api freshness %v", xs)
	}
	svg := soakSVG(rec)
	for _, want := range []string{"<svg", "polyline", "goal 10 s", "engine caught up", "raw.mobile_signal", "</svg>"} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q", want)
		}
	}
	if _, err := json.Marshal(rec); err != nil {
		t.Errorf("soak.json: %v", err)
	}
}

func TestSoakTickLabel(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.5: "0.5", 2.25: "2.3", 500: "500", 1000: "1k", 1500: "1.5k", 2000: "2k", 2500: "2.5k", 12000: "12k"} {
		if got := tickLabel(v); got != want {
			t.Errorf("tickLabel(%v) = %q, want %q", v, got, want)
		}
	}
}
