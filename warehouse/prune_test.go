package warehouse

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/iceberg-go"
)

// viewRows runs a statement on the engine's views alone (every file of
// the snapshot, no pruning) and returns its rows as text.
func viewRows(t *testing.T, e *Engine, q string) [][]string {
	t.Helper()
	rows, err := e.DB().QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return scanText(t, rows)
}

func engineRows(t *testing.T, e *Engine, q string) [][]string {
	t.Helper()
	rows, err := e.Query(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return scanText(t, rows)
}

func scanText(t *testing.T, rows interface {
	Columns() ([]string, error)
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}) [][]string {
	t.Helper()
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = fmt.Sprint(v)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStatementPruning: statements that filter a table read only the
// files the filters can match, and return exactly what the full view
// returns.
func TestStatementPruning(t *testing.T) {
	lake, s := testLake(t, smallMaintenance())
	days := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	fill(t, lake, s, 3, days, 20) // 30 files: one per day and batch; rows at day+batch h+i min (UTC)
	ctx := context.Background()
	e, err := NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const agg = "SELECT count(*), round(sum(rain_mm), 4), min(observed_at), max(observed_at) FROM "
	cases := []struct {
		name string
		q    string
		keep int // files the statement reads; -1: not pruned (all 30)
	}{
		{"range", agg + "raw.weather WHERE observed_at >= '2013-03-04' AND observed_at < '2013-03-06'", 6},
		// 08:30 in Shanghai is 00:30 UTC: day 4's first rows (01:00 UTC) are in, day 3's (up to 03:19 UTC on the 4th) out.
		{"zone", agg + "raw.weather WHERE observed_at >= '2013-03-05 08:30:00' AND observed_at < '2013-03-06 08:00'", 3},
		{"alias and cast", agg + "raw.weather AS w WHERE w.observed_at BETWEEN TIMESTAMPTZ '2013-03-02 08:00:00+08' AND '2013-03-02 23:00:00'", 3},
		{"constant first", agg + "raw.weather WHERE '2013-03-09' <= observed_at", 6},
		{"or", agg + "raw.weather WHERE observed_at < '2013-03-01 09:30:00' OR observed_at >= '2013-03-10 09:00'", 4},
		{"in", agg + "raw.weather WHERE observed_at IN ('2013-03-03 10:05:00', '2013-03-07 11:00:00')", 2},
		{"date cast", agg + "raw.weather WHERE observed_at < DATE '2013-03-02'", 3},
		{"nothing matches", agg + "raw.weather WHERE observed_at > '2030-01-01'", 0},
		{"cte", "WITH x AS (SELECT * FROM raw.weather WHERE observed_at >= '2013-03-09') SELECT count(*), sum(rain_mm) FROM x", 6},
		{"subquery", "SELECT count(*) FROM (SELECT rain_mm FROM raw.weather WHERE observed_at < '2013-03-02') q WHERE rain_mm > 1", 3},
		{"chinese before", "SELECT '西城区' AS 区, count(*) FROM raw.weather WHERE observed_at >= '2013-03-09'", 6},
		{"and with unknown", agg + "raw.weather WHERE station = 'Guanyuan' AND observed_at < '2013-03-02' AND rain_mm > 0", 3},
		{"join", "SELECT count(*) FROM raw.weather a JOIN raw.weather b ON a._cursor = b._cursor WHERE a.observed_at < '2013-03-03' AND b.observed_at >= '2013-03-02'", 6 + 27},
		// not pruned: no bounds for these columns, an OR with an unknown branch, an unqualified column in a join
		{"no bounds", agg + "raw.weather WHERE rain_mm > 2", -1},
		{"or unknown", agg + "raw.weather WHERE observed_at < '2013-03-02' OR rain_mm > 2", -1},
		{"join unqualified", "SELECT count(*) FROM raw.weather a JOIN (SELECT 1 AS one) o ON true WHERE observed_at < '2013-03-03'", -1},
		// a column named schema.table.column would not bind to the replacement: not pruned
		{"three-part column", agg + "raw.weather WHERE raw.weather.observed_at > '2013-03-10 10:00:00'", -1},
		{"parameterless function", agg + "raw.weather WHERE observed_at < now() - INTERVAL 1 DAY", -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := viewRows(t, e, c.q)
			before := lake.PrunedFiles()
			got := engineRows(t, e, c.q)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("pruned statement returned %v, the full view %v", got, want)
			}
			rw, err := e.Rewrite(ctx, c.q)
			if err != nil {
				t.Fatal(err)
			}
			read := strings.Count(rw, ".parquet'")
			pruned := lake.PrunedFiles() - before
			if c.keep < 0 {
				if pruned != 0 || read != 0 {
					t.Fatalf("pruned %d files (rewritten to read %d) where the filter cannot rule any out: %s", pruned, read, rw)
				}
				return
			}
			if read != c.keep {
				t.Fatalf("rewritten to read %d files, want %d: %s", read, c.keep, rw)
			}
			if pruned == 0 && c.keep < 30 {
				t.Fatalf("no file pruned")
			}
		})
	}
	if n := engineRows(t, e, "SELECT count(*) FROM raw.weather WHERE observed_at > '2030-01-01'"); n[0][0] != "0" {
		t.Fatalf("count over no files = %v", n)
	}
}

// TestPruneBounds checks the evaluation of conditions against manifest
// entries as other writers (Spark) record them: bounds on every column,
// NaN counts, all-null columns, truncated strings.
func TestPruneBounds(t *testing.T) {
	sc := iceberg.NewSchema(1,
		iceberg.NestedField{ID: 1, Name: "x", Type: iceberg.PrimitiveTypes.Float64},
		iceberg.NestedField{ID: 2, Name: "s", Type: iceberg.PrimitiveTypes.String},
		iceberg.NestedField{ID: 3, Name: "n", Type: iceberg.PrimitiveTypes.Int32},
	)
	f64 := func(v float64) []byte {
		b := make([]byte, 8)
		binary.LittleEndian.PutUint64(b, math.Float64bits(v))
		return b
	}
	i32 := func(v int32) []byte {
		b := make([]byte, 4)
		binary.LittleEndian.PutUint32(b, uint32(v))
		return b
	}
	file := func(nan map[int]int64, nulls map[int]int64) iceberg.DataFile {
		b, err := iceberg.NewDataFileBuilder(*iceberg.UnpartitionedSpec, iceberg.EntryContentData, "f.parquet", iceberg.ParquetFile, nil, nil, nil, 10, 100)
		if err != nil {
			t.Fatal(err)
		}
		b.ValueCounts(map[int]int64{1: 10, 2: 10, 3: 10}).NullValueCounts(nulls).NaNValueCounts(nan)
		b.LowerBoundValues(map[int][]byte{1: f64(1), 2: []byte("Gua"), 3: i32(5)}).UpperBoundValues(map[int][]byte{1: f64(2), 2: []byte("Guz"), 3: i32(9)})
		return b.Build()
	}
	ref := tableRef{name: "raw.t", single: true}
	col := func(n string) map[string]any {
		return map[string]any{"class": "COLUMN_REF", "column_names": []any{n}}
	}
	num := func(v float64) map[string]any {
		return map[string]any{"class": "CONSTANT", "value": map[string]any{"type": map[string]any{"id": "DOUBLE"}, "value": v}}
	}
	str := func(v string) map[string]any {
		return map[string]any{"class": "CONSTANT", "value": map[string]any{"type": map[string]any{"id": "VARCHAR"}, "value": v}}
	}
	cmp := func(op string, l, r any) map[string]any {
		return map[string]any{"class": "COMPARISON", "type": op, "left": l, "right": r}
	}
	noNaN := map[int]int64{1: 0}
	cases := []struct {
		name  string
		where any
		f     iceberg.DataFile
		want  bool
	}{
		{"double above bounds", cmp("COMPARE_GREATERTHAN", col("x"), num(5)), file(noNaN, nil), false},
		{"double within", cmp("COMPARE_GREATERTHAN", col("x"), num(1.5)), file(noNaN, nil), true},
		{"double NaN unknown", cmp("COMPARE_GREATERTHAN", col("x"), num(5)), file(nil, nil), true},
		{"double has NaN", cmp("COMPARE_GREATERTHAN", col("x"), num(5)), file(map[int]int64{1: 1}, nil), true},
		{"string below", cmp("COMPARE_LESSTHAN", col("s"), str("Ga")), file(noNaN, nil), false},
		{"string prefix in truncated range", cmp("COMPARE_EQUAL", col("s"), str("Guanyuan")), file(noNaN, nil), true},
		{"string above", cmp("COMPARE_EQUAL", col("s"), str("Wanliu")), file(noNaN, nil), false},
		{"int equal out", cmp("COMPARE_EQUAL", col("n"), num(4)), file(noNaN, nil), false},
		{"int flipped", cmp("COMPARE_GREATERTHAN", num(6), col("n")), file(noNaN, nil), true},
		{"int flipped out", cmp("COMPARE_GREATERTHAN", num(5), col("n")), file(noNaN, nil), false},
		{"int non-integer constant", cmp("COMPARE_EQUAL", col("n"), num(4.5)), file(noNaN, nil), true},
		{"all null", cmp("COMPARE_EQUAL", col("n"), num(6)), file(noNaN, map[int]int64{3: 10}), false},
		{"some null", cmp("COMPARE_EQUAL", col("n"), num(6)), file(noNaN, map[int]int64{3: 9}), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cd, ok := condOf(c.where, ref, sc)
			got := !ok || cd.mayMatch(c.f, nil)
			if got != c.want {
				t.Fatalf("may match = %v, want %v", got, c.want)
			}
		})
	}
}
