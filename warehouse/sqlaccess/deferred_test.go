package sqlaccess_test

import (
	"context"
	"database/sql/driver"
	"testing"

	"github.com/duckdb/duckdb-go/v2"

	"citybrain/warehouse/sqlaccess"
	"citybrain/warehouse/sqlaccess/sqltest"
)

// TestDeferredStatement: DuckDB cannot type "select $1 …" before it sees
// the parameter; the statement says so (Deferred), its rows carry the
// shape they really have, and Shape finds the columns without reading a
// row.
func TestDeferredStatement(t *testing.T) {
	f := sqltest.New(t, sqlaccess.DefaultConfig())
	ctx := context.Background()
	s, err := f.Access.Open(ctx, f.User(t, "analyst"), "http", "test")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	plain, err := s.Prepare(ctx, "select station, rain_mm from raw.weather where rain_mm > $1")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if plain.Deferred || len(plain.Cols) != 2 {
		t.Fatalf("a typed statement: deferred=%v cols=%d", plain.Deferred, len(plain.Cols))
	}

	st, err := s.Prepare(ctx, "select $1 as a, 2 as b, [1.5, 2.5]::DECIMAL(4,1)[] as l, now() as t")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if !st.Deferred || st.Cols != nil {
		t.Fatalf("deferred=%v cols=%v", st.Deferred, st.Cols)
	}
	shape, err := st.Shape(ctx, []any{nil})
	if err != nil {
		t.Fatal(err)
	}
	if len(shape) != 4 || shape[0].Name != "a" || shape[3].Name != "t" {
		t.Fatalf("shape with NULL: %+v", shape)
	}
	rows, err := st.Query(ctx, []any{"x"})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		typ  duckdb.Type
	}{{"a", duckdb.TYPE_VARCHAR}, {"b", duckdb.TYPE_INTEGER}, {"l", duckdb.TYPE_LIST}, {"t", duckdb.TYPE_TIMESTAMP_TZ}}
	if len(rows.Columns) != len(want) {
		t.Fatalf("columns: %+v", rows.Columns)
	}
	for i, w := range want {
		c := rows.Columns[i]
		if c.Name != w.name || c.Type == nil || c.Type.InternalType() != w.typ {
			t.Errorf("column %d: %+v, want %s %v", i, c, w.name, w.typ)
		}
	}
	if d, ok := rows.Columns[2].Type.Details().(*duckdb.ListDetails); !ok || d.Child.InternalType() != duckdb.TYPE_DECIMAL {
		t.Errorf("list element type: %+v", rows.Columns[2].Type.Details())
	}
	dest := make([]driver.Value, len(rows.Columns))
	if err := rows.Next(dest); err != nil {
		t.Fatal(err)
	}
	if dest[0] != "x" || dest[1] != int32(2) {
		t.Errorf("row: %v", dest)
	}
	rows.Close(nil)
}
