package service

import (
	"context"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"citybrain/internal/app"
	"citybrain/internal/config"
	"citybrain/models"
	"citybrain/warehouse"
)

// TestServiceRunsAtStartAndOnCommit: the service runs the models at start,
// publishes its commits, and runs again (once) after a burst of commits
// to a source table, but not after commits to tables the models do not read.
func TestServiceRunsAtStartAndOnCommit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Models.Interval = 0
	cfg.Models.Debounce = 200 * time.Millisecond
	cfg.Models.Test = false
	a, err := app.Open(ctx, cfg, slog.New(slog.DiscardHandler), app.NoBroker)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := models.LoadRaw(ctx, a.Lake, db, "raw.enterprises", "SELECT 'E1' AS id, TIMESTAMPTZ '2026-01-01 00:00:00+08' AS updated_at, '单位' AS name"); err != nil {
		t.Fatal(err)
	}
	eng, err := warehouse.NewEngine(ctx, a.Lake)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	rt := &app.Runtime{App: a, Engine: eng, Mux: http.NewServeMux(), Commits: app.NewCommitBus()}
	svc, err := New(rt)
	if err != nil || svc == nil {
		t.Fatalf("New: %v %v", svc, err)
	}
	published := make(chan app.Commit, 1024)
	rt.Commits.OnCommit(func(c app.Commit) { published <- c })
	if err := svc.Start(ctx, rt); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	defer func() { stop(); <-done }()

	runs := func() int {
		rows, err := eng.Query(ctx, "SELECT count(DISTINCT run_id) FROM marts.model_runs")
		if err != nil {
			return 0
		}
		defer rows.Close()
		var n int
		for rows.Next() {
			rows.Scan(&n)
		}
		return n
	}
	waitRuns := func(n int) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for runs() < n {
			if time.Now().After(deadline) {
				t.Fatalf("waited for run %d; have %d", n, runs())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitRuns(1)
	// Its own commits were published (marts tables and the run record).
	seen := map[string]bool{}
	for len(published) > 0 {
		seen[(<-published).Table] = true
	}
	if !seen["marts.enterprise_risk"] || !seen[models.RunsTable] {
		t.Errorf("published commits: %v", seen)
	}
	// The current portrait is queryable through the engine, and view models too.
	for _, q := range []string{"SELECT count(*) FROM marts.enterprise_risk", "SELECT count(*) FROM marts.stg_enterprises"} {
		rows, err := eng.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		rows.Close()
	}
	// A table no model reads: no run.
	rt.Commits.Publish(app.Commit{Table: "raw.traffic_speeds", Snapshot: 1})
	time.Sleep(700 * time.Millisecond)
	if n := runs(); n != 1 {
		t.Fatalf("a commit to an unread table triggered a run: %d runs", n)
	}
	// A burst of source commits: one more run.
	for i := range 5 {
		rt.Commits.Publish(app.Commit{Table: "raw.hazards", Snapshot: int64(i + 1)})
	}
	waitRuns(2)
	time.Sleep(700 * time.Millisecond)
	if n := runs(); n != 2 {
		t.Errorf("a burst of 5 commits gave %d runs, want 1", n-1)
	}
	// After a clean first run, the commit-triggered one rebuilds only what
	// reads raw.hazards (stg_hazards and downstream), not stg_enterprises.
	ranIn := func(q string) map[string]bool {
		rows, err := eng.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		got := map[string]bool{}
		for rows.Next() {
			var m, status string
			rows.Scan(&m, &status)
			got[m+":"+status] = true
		}
		return got
	}
	first := ranIn("SELECT model, status FROM marts.model_runs WHERE run_id = (SELECT min(run_id) FROM marts.model_runs)")
	second := ranIn("SELECT model, status FROM marts.model_runs WHERE run_id = (SELECT max(run_id) FROM marts.model_runs)")
	clean := true
	for k := range first {
		clean = clean && strings.HasSuffix(k, ":ok")
	}
	if clean {
		if !second["stg_hazards:ok"] || !second["enterprise_risk:ok"] || second["stg_enterprises:ok"] || len(second) >= len(first) {
			t.Errorf("commit to raw.hazards ran %v (first run %d models)", second, len(first))
		}
	} else {
		t.Logf("first run had failures, so the second ran every model: %v", first)
	}
	var st struct {
		Models  int `json:"models"`
		LastRun struct {
			Trigger string `json:"trigger"`
			Models  []struct {
				Status string `json:"status"`
			} `json:"models"`
		} `json:"last_run"`
	}
	// The status is updated once the run's tests and freshness checks are done.
	var rec *httptest.ResponseRecorder
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rec = httptest.NewRecorder()
		rt.Mux.ServeHTTP(rec, httptest.NewRequest("GET", "/api/models", nil))
		if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		if st.LastRun.Trigger == "commit" {
			break
		}
	}
	if st.LastRun.Trigger != "commit" || len(st.LastRun.Models) != st.Models || st.Models == 0 {
		t.Errorf("/api/models: %s", rec.Body.String())
	}
}

// TestServiceDisabled: models.enabled = false builds no service.
func TestServiceDisabled(t *testing.T) {
	cfg := config.Default()
	cfg.Models.Enabled = false
	svc, err := New(&app.Runtime{App: &app.App{Cfg: cfg}})
	if err != nil || svc != nil {
		t.Fatalf("disabled: %v %v", svc, err)
	}
}
