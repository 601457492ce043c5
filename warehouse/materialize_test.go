package warehouse

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"testing"
)

func matLake(t *testing.T) (*Lake, *sql.DB) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	lake, err := Open(context.Background(), cfg, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lake.Close() })
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return lake, db
}

func queryString(t *testing.T, e *Engine, q string) string {
	t.Helper()
	rows, err := e.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s sql.NullString
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s.String)
	}
	return strings.Join(out, ",")
}

// TestMaterializeModes: replace overwrites, append adds, partition
// overwrite replaces only the days in the result; schema evolves; the
// summary carries what the caller put there; the engine reads each
// snapshot (time travel included).
func TestMaterializeModes(t *testing.T) {
	ctx := context.Background()
	lake, db := matLake(t)
	r1, err := lake.Materialize(ctx, db, MaterializeSpec{
		Table: "marts.m", Mode: MaterializeReplace, Doc: "测试 / test",
		Query:   "SELECT i AS id, i * 1.5 AS score, 'x' || i AS name, TIMESTAMPTZ '2026-01-01 00:00:00+00' + to_hours(i) AS ts FROM range(10) t(i)",
		Summary: map[string]string{"citybrain.model": "m", "citybrain.inputs": `{"raw.a":1}`},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r1.Rows != 10 || r1.Files != 1 || r1.SnapshotID == 0 {
		t.Fatalf("first replace: %+v", r1)
	}
	tbl, err := lake.Load(ctx, "marts.m")
	if err != nil {
		t.Fatal(err)
	}
	if got := tbl.CurrentSnapshot().Summary.Properties["citybrain.model"]; got != "m" {
		t.Fatalf("summary model = %q", got)
	}
	e, err := NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := queryString(t, e, "SELECT sum(id)::VARCHAR || '/' || sum(score)::VARCHAR || '/' || max(name) || '/' || typeof(max(ts)) FROM marts.m"); got != "45/67.5/x9/TIMESTAMP WITH TIME ZONE" {
		t.Fatalf("after replace: %s", got)
	}

	// Replace with a new column and one column dropped.
	r2, err := lake.Materialize(ctx, db, MaterializeSpec{Table: "marts.m", Mode: MaterializeReplace,
		Query: "SELECT i AS id, i * 2.0 AS score, true AS flag FROM range(3) t(i)"})
	if err != nil {
		t.Fatal(err)
	}
	if r2.Removed != 1 || r2.Rows != 3 {
		t.Fatalf("second replace: %+v", r2)
	}
	if got := queryString(t, e, "SELECT count(*)::VARCHAR || '/' || bool_and(flag)::VARCHAR FROM marts.m"); got != "3/true" {
		t.Fatalf("after evolve: %s", got)
	}
	if got := queryString(t, e, "SELECT count(*)::VARCHAR FROM marts.m AT (VERSION => "+itoa(r1.SnapshotID)+")"); got != "10" {
		t.Fatalf("time travel to first: %s", got)
	}
	// Append.
	if _, err := lake.Materialize(ctx, db, MaterializeSpec{Table: "marts.m", Mode: MaterializeAppend,
		Query: "SELECT 100 AS id, 1.0 AS score, false AS flag"}); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, e, "SELECT count(*)::VARCHAR FROM marts.m"); got != "4" {
		t.Fatalf("after append: %s", got)
	}
	// An incompatible type change is refused with a clear error.
	_, err = lake.Materialize(ctx, db, MaterializeSpec{Table: "marts.m", Mode: MaterializeAppend, Query: "SELECT 'a' AS id"})
	if !errors.Is(err, ErrMaterialize) {
		t.Fatalf("type change: %v", err)
	}
}

func TestMaterializeOverwritePartitions(t *testing.T) {
	ctx := context.Background()
	lake, db := matLake(t)
	spec := MaterializeSpec{Table: "marts.daily", Mode: MaterializeOverwritePartitions, PartitionBy: "day",
		Query: "SELECT DATE '2026-01-01' + CAST(d AS INTEGER) AS day, k, 1 AS v FROM range(3) a(d), range(4) b(k)"}
	r, err := lake.Materialize(ctx, db, spec)
	if err != nil {
		t.Fatal(err)
	}
	if r.Files != 3 || r.Rows != 12 {
		t.Fatalf("first: %+v", r)
	}
	// Late data: day 2 recomputed with other values, day 4 new; days 1 and 3 untouched.
	spec.Query = "SELECT DATE '2026-01-02' + CAST(d AS INTEGER) * 2 AS day, k, 2 AS v FROM range(2) a(d), range(5) b(k)"
	r, err = lake.Materialize(ctx, db, spec)
	if err != nil {
		t.Fatal(err)
	}
	if r.Removed != 1 || r.Files != 2 {
		t.Fatalf("second: %+v", r)
	}
	e, err := NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	got := queryString(t, e, "SELECT strftime(day, '%d') || ':' || count(*)::VARCHAR || ':' || sum(v)::VARCHAR FROM marts.daily GROUP BY day ORDER BY day")
	if got != "01:4:4,02:5:10,03:4:4,04:5:10" {
		t.Fatalf("partitions: %s", got)
	}
	if _, err := lake.Materialize(ctx, db, MaterializeSpec{Table: "marts.x", Mode: MaterializeOverwritePartitions, Query: "SELECT 1 AS a"}); !errors.Is(err, ErrMaterialize) {
		t.Fatalf("no PartitionBy: %v", err)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
