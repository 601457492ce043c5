//go:build duckdb_arrow

package extracts

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"

	"citybrain/warehouse"
)

// readRows is DuckDB's Arrow interface (this binary is built with the
// duckdb_arrow tag): whole column chunks instead of a Scan per row.
var readRows source = readArrow

// Reader names how this binary reads query results.
const Reader = "DuckDB Arrow interface (duckdb_arrow build tag)"

// arrowTypes are the DuckDB types the Arrow reader handles; an extract
// with any other column type (DECIMAL, HUGEINT, UUID, lists…) is read
// with database/sql, which renders those exactly as before.
var arrowTypes = map[string]bool{
	"BOOLEAN": true, "TINYINT": true, "SMALLINT": true, "INTEGER": true, "BIGINT": true,
	"UTINYINT": true, "USMALLINT": true, "UINTEGER": true, "FLOAT": true, "DOUBLE": true,
	"VARCHAR": true, "DATE": true, "TIMESTAMP": true, "TIMESTAMPTZ": true,
	"TIMESTAMP_S": true, "TIMESTAMP_MS": true, "TIMESTAMP_NS": true,
}

func readArrow(ctx context.Context, eng *warehouse.Engine, query string, colsFn func([]Column) error, emit func(*colBatch) error) error {
	// As Engine.Query: refresh the views of the tables named, then
	// resolve the pinned snapshots.
	for _, m := range engineTableRE.FindAllStringSubmatch(query, -1) {
		if err := eng.Refresh(ctx, strings.ToLower(m[1]+"."+m[2])); err != nil && !errors.Is(err, warehouse.ErrNoTable) {
			return err
		}
	}
	final, err := eng.Rewrite(ctx, query)
	if err != nil {
		return err
	}
	cols, err := describe(ctx, eng.DB(), final)
	if err != nil {
		return err
	}
	for _, c := range cols {
		if !arrowTypes[c.Type] {
			return readSQL(ctx, eng, query, colsFn, emit)
		}
	}
	conn, err := eng.DB().Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		dconn, ok := dc.(driver.Conn)
		if !ok {
			return fmt.Errorf("extracts: not a DuckDB connection (%T)", dc)
		}
		ar, err := duckdb.NewArrowFromConn(dconn)
		if err != nil {
			return err
		}
		rr, err := ar.QueryContext(ctx, final)
		if err != nil {
			return err
		}
		defer rr.Release()
		if got := len(rr.Schema().Fields()); got != len(cols) {
			return fmt.Errorf("extracts: arrow result has %d columns, DESCRIBE said %d", got, len(cols))
		}
		kinds := make([]kind, len(cols))
		for i, c := range cols {
			kinds[i] = kindOf(c.Type)
		}
		if err := colsFn(cols); err != nil {
			return err
		}
		for rr.Next() {
			rec := rr.RecordBatch()
			b := &colBatch{n: int(rec.NumRows()), cols: make([]colVec, len(cols))}
			for j := range cols {
				if err := fromArrow(&b.cols[j], kinds[j], rec.Column(j), b.n); err != nil {
					return fmt.Errorf("column %s: %w", cols[j].Name, err)
				}
			}
			rec.Retain()
			b.release = rec.Release
			if err := emit(b); err != nil {
				return err
			}
		}
		return rr.Err()
	})
}

// fromArrow views an Arrow column as a colVec of kind k (strings are not
// copied: they live as long as the record).
func fromArrow(v *colVec, k kind, a arrow.Array, n int) error {
	v.k = k
	if a.NullN() > 0 {
		v.valid = make([]bool, n)
		for i := range n {
			v.valid[i] = a.IsValid(i)
		}
	}
	switch x := a.(type) {
	case *array.String:
		v.offs, v.data = x.ValueOffsets(), x.ValueBytes()
	case *array.LargeString:
		v.strs = make([]string, n)
		for i := range n {
			v.strs[i] = x.Value(i)
		}
	case *array.StringView:
		v.strs = make([]string, n)
		for i := range n {
			v.strs[i] = x.Value(i)
		}
	case *array.Int64:
		v.ints = x.Int64Values()
	case *array.Int32:
		v.ints = widen(x.Int32Values())
	case *array.Int16:
		v.ints = widen(x.Int16Values())
	case *array.Int8:
		v.ints = widen(x.Int8Values())
	case *array.Uint32:
		v.ints = widen(x.Uint32Values())
	case *array.Uint16:
		v.ints = widen(x.Uint16Values())
	case *array.Uint8:
		v.ints = widen(x.Uint8Values())
	case *array.Float64:
		v.floats = x.Float64Values()
	case *array.Float32:
		v.floats = make([]float64, n)
		for i, f := range x.Float32Values() {
			v.floats[i] = float64(f)
		}
	case *array.Boolean:
		v.bools = make([]bool, n)
		for i := range n {
			v.bools[i] = x.Value(i)
		}
	case *array.Date32:
		v.ints = make([]int64, n)
		for i, d := range x.Date32Values() {
			v.ints[i] = int64(d)
		}
	case *array.Timestamp:
		unit := x.DataType().(*arrow.TimestampType).Unit
		v.ints = make([]int64, n)
		for i, t := range x.TimestampValues() {
			v.ints[i] = toMicros(int64(t), unit)
		}
	default:
		return fmt.Errorf("unexpected Arrow type %s", a.DataType())
	}
	if k == kString && v.strs == nil && v.offs == nil || k == kBool && v.bools == nil || k == kFloat && v.floats == nil ||
		(k == kInt || k == kDate || k == kTimestamp || k == kTimestampTZ) && v.ints == nil {
		return fmt.Errorf("Arrow type %s does not match the column's kind", a.DataType())
	}
	return nil
}

func widen[T int8 | int16 | int32 | uint8 | uint16 | uint32](s []T) []int64 {
	out := make([]int64, len(s))
	for i, x := range s {
		out[i] = int64(x)
	}
	return out
}

// toMicros converts a timestamp to µs, rounding down like time.UnixMicro.
func toMicros(t int64, u arrow.TimeUnit) int64 {
	switch u {
	case arrow.Second:
		return t * 1e6
	case arrow.Millisecond:
		return t * 1e3
	case arrow.Nanosecond:
		q := t / 1e3
		if t%1e3 < 0 {
			q--
		}
		return q
	}
	return t
}
