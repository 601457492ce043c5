package models

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"strings"
	"testing"
	"time"

	"citybrain/warehouse"
)

// testLake is a local-catalog lake in a temporary directory with a DuckDB
// for loading raw tables and an engine for reading the results.
type testLake struct {
	t    *testing.T
	lake *warehouse.Lake
	db   *sql.DB
}

func newTestLake(t *testing.T) *testLake {
	t.Helper()
	cfg := warehouse.DefaultConfig()
	cfg.Dir = t.TempDir()
	lake, err := warehouse.Open(context.Background(), cfg, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lake.Close() })
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &testLake{t: t, lake: lake, db: db}
}

// load replaces a raw table with the rows of a DuckDB query.
func (tl *testLake) load(table, query string) {
	tl.t.Helper()
	if err := LoadRaw(context.Background(), tl.lake, tl.db, table, query); err != nil {
		tl.t.Fatalf("load %s: %v", table, err)
	}
}

// appendRows adds rows to a raw table (late data).
func (tl *testLake) appendRows(table, query string) {
	tl.t.Helper()
	if _, err := tl.lake.Materialize(context.Background(), tl.db, warehouse.MaterializeSpec{Table: table, Query: query, Mode: warehouse.MaterializeAppend}); err != nil {
		tl.t.Fatalf("append %s: %v", table, err)
	}
}

func (tl *testLake) runner(p *Project, progress *bytes.Buffer) *Runner {
	r := &Runner{Lake: tl.lake, Project: p, Log: slog.New(slog.DiscardHandler), Threads: 2,
		Now: func() time.Time { return time.Date(2026, 6, 30, 12, 0, 0, 0, shanghai) }}
	if progress != nil {
		r.Progress = progress
	}
	return r
}

// query runs SQL on the lake's current snapshots and returns rows as
// strings joined by "|".
func (tl *testLake) query(q string) []string {
	tl.t.Helper()
	e, err := warehouse.NewEngine(context.Background(), tl.lake)
	if err != nil {
		tl.t.Fatal(err)
	}
	defer e.Close()
	rows, err := e.Query(context.Background(), q)
	if err != nil {
		tl.t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			tl.t.Fatal(err)
		}
		parts := make([]string, len(cols))
		for i, v := range vals {
			if v.Valid {
				parts[i] = v.String
			} else {
				parts[i] = "NULL"
			}
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		tl.t.Fatal(err)
	}
	return out
}

func embeddedProject(t *testing.T) *Project {
	t.Helper()
	p, err := Load(Embedded(), "risk_config.v1.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
