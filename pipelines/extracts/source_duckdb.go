package extracts

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"citybrain/warehouse"
)

// readRows is how extracts read query results: DuckDB's streaming result
// (warehouse.Engine.Stream), chunk by chunk in DuckDB's own memory, while
// the file is written. Queries it cannot stream (a column of another type,
// such as DECIMAL or HUGEINT) are read with database/sql (readSQL), which
// gives the same bytes.
var readRows source = readStream

// Reader names how extracts read query results.
const Reader = "DuckDB streaming result (C API chunks)"

func readStream(ctx context.Context, eng *warehouse.Engine, query string, colsFn func([]Column) error, emit func(*colBatch) error) error {
	// As Engine.Query: refresh the views of the tables named, then
	// resolve the pinned snapshots into self-contained SQL.
	for _, m := range engineTableRE.FindAllStringSubmatch(query, -1) {
		if err := eng.Refresh(ctx, strings.ToLower(m[1]+"."+m[2])); err != nil && !errors.Is(err, warehouse.ErrNoTable) {
			return err
		}
	}
	final, err := eng.Rewrite(ctx, query)
	if err != nil {
		return err
	}
	// The column types as database/sql's reader names them, so that both
	// readers hand the writers the same columns.
	cols, err := describe(ctx, eng.DB(), final)
	if err != nil {
		return err
	}
	var types []string
	started := false

	err = eng.Stream(ctx, final, func(sc []warehouse.StreamColumn) error {
		if len(sc) != len(cols) {
			return fmt.Errorf("extracts: the stream has %d columns, DESCRIBE said %d", len(sc), len(cols))
		}
		types = make([]string, len(sc))
		for j, c := range sc {
			types[j] = c.Type
		}
		started = true
		return colsFn(cols)
	}, func(c *warehouse.Chunk) error {
		b := &colBatch{n: c.Len(), cols: make([]colVec, len(cols)), release: c.Release}
		for j := range cols {
			fromChunk(&b.cols[j], kindOf(cols[j].Type), types[j], c, j)
		}
		return emit(b)
	})
	if errors.Is(err, warehouse.ErrNotStreamable) && !started {
		return readSQL(ctx, eng, query, colsFn, emit)
	}
	return err
}

// fromChunk views column j of a chunk (DuckDB type t) as a colVec of kind
// k: strings, BIGINTs, DOUBLEs, BOOLEANs and µs timestamps are not copied
// (they live until the chunk is released); narrower types are widened.
func fromChunk(v *colVec, k kind, t string, c *warehouse.Chunk, j int) {
	v.k = k
	v.valid = c.Valid(j, nil)
	switch t {
	case "VARCHAR":
		s := c.Strings(j)
		v.duck = &s
	case "BIGINT", "TIMESTAMP", "TIMESTAMPTZ":
		v.ints = warehouse.Column[int64](c, j)
	case "INTEGER", "DATE": // a DATE is days since 1970
		v.ints = widen(warehouse.Column[int32](c, j))
	case "SMALLINT":
		v.ints = widen(warehouse.Column[int16](c, j))
	case "TINYINT":
		v.ints = widen(warehouse.Column[int8](c, j))
	case "UINTEGER":
		v.ints = widen(warehouse.Column[uint32](c, j))
	case "USMALLINT":
		v.ints = widen(warehouse.Column[uint16](c, j))
	case "UTINYINT":
		v.ints = widen(warehouse.Column[uint8](c, j))
	case "TIMESTAMP_S":
		v.ints = scaled(warehouse.Column[int64](c, j), func(s int64) int64 { return s * 1e6 })
	case "TIMESTAMP_MS":
		v.ints = scaled(warehouse.Column[int64](c, j), func(ms int64) int64 { return ms * 1e3 })
	case "TIMESTAMP_NS":
		// Rounded down to the µs, like time.UnixMicro.
		v.ints = scaled(warehouse.Column[int64](c, j), func(ns int64) int64 {
			q := ns / 1e3
			if ns%1e3 < 0 {
				q--
			}
			return q
		})
	case "DOUBLE":
		v.floats = warehouse.Column[float64](c, j)
	case "FLOAT":
		f32 := warehouse.Column[float32](c, j)
		v.floats = make([]float64, len(f32))
		for i, f := range f32 {
			v.floats[i] = float64(f)
		}
	case "BOOLEAN":
		v.bools = warehouse.Column[bool](c, j)
	}
}

func widen[T int8 | int16 | int32 | uint8 | uint16 | uint32](s []T) []int64 {
	out := make([]int64, len(s))
	for i, x := range s {
		out[i] = int64(x)
	}
	return out
}

func scaled(s []int64, f func(int64) int64) []int64 {
	out := make([]int64, len(s))
	for i, x := range s {
		out[i] = f(x)
	}
	return out
}
