package models

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"citybrain/warehouse"
)

func TestZZExplain(t *testing.T) {
	dir := os.Getenv("CB_PROFILE_DIR")
	if dir == "" {
		t.Skip()
	}
	ctx := context.Background()
	lake, _ := warehouse.Open(ctx, warehouse.DefaultConfig(), filepath.Join(dir, "data"), slog.New(slog.DiscardHandler))
	p, _ := Load(Embedded(), "risk_config.v1.yaml")
	r := &Runner{Lake: lake, Project: p}
	s, _ := r.open(ctx, nil)
	vars := r.vars(map[string]any{"as_of_date": SyntheticEnd})
	st := time.Now()
	for _, n := range []string{"stg_enterprises", "enterprise_inherent", "stg_hazards"} {
		if err := r.ensureInput(ctx, s, n, vars); err != nil {
			t.Fatal(err)
		}
	}
	m := p.Models["enterprise_risk_daily"]
	for _, src := range m.SourceRefs {
		s.lakeView(ctx, src, nil)
	}
	t.Log("setup", time.Since(st))
	q, _ := r.render(m, vars, false)
	for i := 0; i < 2; i++ {
		st = time.Now()
		if err := s.exec(ctx, "CREATE OR REPLACE TABLE marts.x AS "+q); err != nil {
			t.Fatal(err)
		}
		t.Log("daily query", time.Since(st))
	}
	rows, err := s.db.QueryContext(ctx, "EXPLAIN ANALYZE "+q)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var a, b string
		rows.Scan(&a, &b)
		os.WriteFile("/tmp/explain.txt", []byte(b), 0o644)
	}
	st = time.Now()
	mr, err := lake.Materialize(ctx, s.db, warehouse.MaterializeSpec{Table: "marts.zz", Query: "SELECT * FROM marts.x", Mode: warehouse.MaterializeReplace})
	t.Log("materialize", time.Since(st), mr, err)
	st = time.Now()
	mr, err = lake.Materialize(ctx, s.db, warehouse.MaterializeSpec{Table: "marts.zz", Query: "SELECT * FROM marts.x", Mode: warehouse.MaterializeReplace})
	t.Log("materialize again", time.Since(st), mr, err)
}
