package models

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"citybrain/internal/testenv"
	"citybrain/models/dbt"
	"citybrain/warehouse"
)

// dbtSources is, per source table of the project, the SELECT that reads the
// lake's current snapshot of it (the same Parquet files the runner reads),
// or an empty table of the canonical schema when the lake lacks it.
func dbtSources(ctx context.Context, lake *warehouse.Lake, p *Project) (map[string]string, error) {
	out := map[string]string{}
	for name, src := range p.Sources {
		t, err := lake.Load(ctx, name)
		var q string
		switch {
		case err == nil && t.CurrentSnapshot() != nil:
			q, err = lake.SnapshotSQL(ctx, t, nil)
		case err == nil:
			q, err = emptyOf(t.Schema())
		default:
			q, err = emptySelect(name, src.Columns)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out[name] = q
	}
	return out, nil
}

// TestDbtCompatibility runs the same project under dbt-duckdb on the
// fixture and requires every table model to hold exactly the rows the
// runner committed to the lake.
func TestDbtCompatibility(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Python venv with dbt-duckdb")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	python, err := testenv.PythonVenv(ctx, "dbt", dbt.Requirements...)
	if err != nil {
		t.Fatal(err)
	}
	tl := loadFixture(t)
	p := embeddedProject(t)
	rep, err := tl.runner(p, nil).Run(ctx, RunOptions{FullRefresh: true, Vars: map[string]any{"as_of_date": "2026-06-30", "start_date": "2026-06-28"}})
	if err != nil {
		t.Fatal(err)
	}
	srcs, err := dbtSources(ctx, tl.lake, p)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ws, err := dbt.Prepare(ctx, python, dir, Embedded(), srcs, 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, out, err := ws.Run(ctx, rep.Vars, "--full-refresh"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	compared := 0
	for _, name := range p.Order() {
		m := p.Models[name]
		if m.Config.Materialized == "view" {
			continue
		}
		theirs := filepath.Join(dir, name+".parquet")
		if err := ws.Export(ctx, "marts."+name, theirs); err != nil {
			t.Fatal(err)
		}
		tbl, err := tl.lake.Load(ctx, "marts."+name)
		if err != nil {
			t.Fatal(err)
		}
		ours, err := tl.lake.SnapshotSQL(ctx, tbl, nil)
		if err != nil {
			t.Fatal(err)
		}
		var n, diff int64
		q := fmt.Sprintf(`WITH a AS (%s), b AS (SELECT * FROM read_parquet('%s'))
			SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM ((SELECT * FROM a EXCEPT ALL SELECT * FROM b) UNION ALL (SELECT * FROM b EXCEPT ALL SELECT * FROM a)))`, ours, theirs)
		if err := db.QueryRowContext(ctx, q).Scan(&n, &diff); err != nil {
			t.Fatalf("compare %s: %v", name, err)
		}
		if diff != 0 {
			t.Errorf("marts.%s: %d rows differ between citybrain and dbt-duckdb (%d rows)", name, diff, n)
		}
		if n == 0 && name != "overdue_hazards" {
			t.Errorf("marts.%s is empty: nothing compared", name)
		}
		compared++
	}
	if compared < 8 {
		t.Errorf("compared %d models", compared)
	}
}
