package service

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"citybrain/internal/app"
	"citybrain/internal/auth"
	"citybrain/internal/config"
	"citybrain/pipelines/extracts/extracttest"
	"citybrain/pipelines/inspection"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// TestAutoPublish: with inspection.auto_publish the service publishes the
// current month's plan once the portraits are there — sized by the
// inspections of the year before — and only once; make run's demo
// inspector account is linked to the simulator's first inspector.
func TestAutoPublish(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	cfg := config.Default()
	cfg.DataDir, cfg.Warehouse.Dir = t.TempDir(), t.TempDir()
	cfg.Inspection.AutoPublish, cfg.Sim.Enabled = true, true
	lake, err := warehouse.Open(ctx, cfg.Warehouse, "", log)
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	eng, err := warehouse.NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	acfg := auth.DefaultConfig()
	acfg.DemoUsers = true
	users, err := auth.Open(acfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := schemas.Builtin()
	rt := &app.Runtime{App: &app.App{Cfg: cfg, Log: log, Reg: reg, Lake: lake}, Engine: eng, Mux: http.NewServeMux(), Auth: users,
		Commits: app.NewCommitBus()}
	s := &Service{}
	if err := s.Start(ctx, rt); err != nil {
		t.Fatal(err)
	}
	// The app is served.
	rec := httptest.NewRecorder()
	rt.Mux.ServeHTTP(rec, httptest.NewRequest("GET", "/inspect/", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "<html") {
		t.Errorf("GET /inspect/: %d %.80s", rec.Code, rec.Body.String())
	}
	if u, ok := users.Get("inspector"); !ok || u.PersonID != "I00001" {
		t.Errorf("demo inspector account: %+v %v", u, ok)
	}
	// No portraits yet: nothing published, said why.
	if err := s.publishDue(ctx); err == nil || !strings.Contains(err.Error(), "citybrain models run") {
		t.Errorf("before the portraits: %v", err)
	}
	db, _ := sql.Open("duckdb", "")
	defer db.Close()
	if _, err := lake.Materialize(ctx, db, warehouse.MaterializeSpec{Table: "marts.enterprise_risk", Mode: warehouse.MaterializeReplace,
		Query: `SELECT 'E' || lpad(CAST(i AS VARCHAR), 2, '0') AS enterprise_id, '单位' || i AS enterprise_name, '110102001' AS street_code,
			CASE WHEN i = 1 THEN 'red' ELSE 'blue' END AS level FROM range(1, 41) t(i)`}); err != nil {
		t.Fatal(err)
	}
	fill := func(name string, n int, gen func(i int, s *schemas.Schema, r schemas.Record)) {
		sc, _ := reg.Get(name)
		if _, err := extracttest.Fill(ctx, lake, sc, n, func(i int, r schemas.Record) { gen(i, sc, r) }); err != nil {
			t.Fatal(err)
		}
	}
	fill("inspectors", 2, func(i int, sc *schemas.Schema, r schemas.Record) {
		r[sc.Index("inspector_id")], r[sc.Index("updated_at")], r[sc.Index("name")], r[sc.Index("street_code")] =
			fmt.Sprintf("I%05d", i+1), time.Now().AddDate(-1, 0, 0), "检查员", "110102001"
	})
	month := inspection.MonthStart(time.Now())
	// 60 inspections in the year before: 5 a month.
	fill("inspections", 60, func(i int, sc *schemas.Schema, r schemas.Record) {
		r[sc.Index("id")], r[sc.Index("enterprise_id")], r[sc.Index("inspected_at")], r[sc.Index("result")] =
			fmt.Sprintf("X%d", i), fmt.Sprintf("E%02d", 1+i%40), month.AddDate(0, 0, -1-i*5), "pass"
	})
	for _, tb := range []string{"marts.enterprise_risk", "raw.inspectors", "raw.inspections"} {
		eng.Refresh(ctx, tb)
	}
	if err := s.publishDue(ctx); err != nil {
		t.Fatal(err)
	}
	done, n, err := inspection.Published(ctx, lake, month)
	if err != nil || !done || n != 5 {
		t.Fatalf("published %v with %d visits (%v), want 5 (60 inspections / 12)", done, n, err)
	}
	snap := func() int64 {
		tb, err := lake.Load(ctx, inspection.PlanTable)
		if err != nil {
			t.Fatal(err)
		}
		return tb.CurrentSnapshot().SnapshotID
	}
	before := snap()
	if err := s.publishDue(ctx); err != nil || snap() != before {
		t.Errorf("a second look published again: %v", err)
	}
}
