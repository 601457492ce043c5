package extracts

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unsafe"

	"citybrain/warehouse"
)

// Rows travel from the query to the writers in column batches: a few
// thousand rows at a time, one typed slice per column. Two readers fill
// them — DuckDB's streaming result (source_duckdb.go), and database/sql
// (readSQL below) for the queries that cannot be streamed — and both
// produce the same batches, so the bytes of a file do not depend on the
// reader.

// colVec is one column of a batch.
type colVec struct {
	k      kind
	valid  []bool    // nil: no nulls
	ints   []int64   // kInt; kTimestamp, kTimestampTZ: µs since 1970 UTC; kDate: days since 1970
	floats []float64 // kFloat
	bools  []bool    // kBool
	strs   []string  // kString (or duck)
	// duck is a kString column in DuckDB's memory (a streamed chunk):
	// read in place, cell by cell (see bytes).
	duck *warehouse.StringColumn
	// over holds the rare cells whose value does not fit the column's
	// type (a HUGEINT or UBIGINT beyond int64): rendered as this text.
	over map[int]string
}

func (v *colVec) null(i int) bool { return v.valid != nil && !v.valid[i] }

// str is cell i of a kString column.
func (v *colVec) str(i int) string {
	if v.duck == nil {
		return v.strs[i]
	}
	b := v.bytes(i)
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// bytes is cell i of a kString column as bytes (not to be changed).
func (v *colVec) bytes(i int) []byte {
	if v.duck != nil {
		if v.null(i) {
			return nil // DuckDB leaves a NULL's entry undefined
		}
		return v.duck.Bytes(i)
	}
	return unsafe.Slice(unsafe.StringData(v.strs[i]), len(v.strs[i]))
}

// value is cell i as the Go value database/sql would have given (for the
// PII rules, which hash and mask the value's text, and for XLSX).
func (v *colVec) value(i int) any {
	if v.null(i) {
		return nil
	}
	if s, ok := v.over[i]; ok {
		return s
	}
	switch v.k {
	case kInt:
		return v.ints[i]
	case kFloat:
		return v.floats[i]
	case kBool:
		return v.bools[i]
	case kTimestamp, kTimestampTZ:
		return time.UnixMicro(v.ints[i]).UTC()
	case kDate:
		return time.Unix(v.ints[i]*86400, 0).UTC()
	}
	return v.str(i)
}

// reset sizes v for n rows of kind k (reusing its slices).
func (v *colVec) reset(k kind, n int) {
	v.k = k
	v.valid = v.valid[:0]
	v.over = nil
	v.duck = nil
	switch k {
	case kInt, kTimestamp, kTimestampTZ, kDate:
		v.ints = grow(v.ints, n)
	case kFloat:
		v.floats = grow(v.floats, n)
	case kBool:
		v.bools = grow(v.bools, n)
	default:
		v.strs = grow(v.strs, n)
	}
}

// setNull marks cell i of n null.
func (v *colVec) setNull(i, n int) {
	if len(v.valid) != n {
		v.valid = grow(v.valid, n)
		for j := range v.valid {
			v.valid[j] = true
		}
	}
	v.valid[i] = false
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// colBatch is a slab of rows, column by column.
type colBatch struct {
	n    int
	cols []colVec
	// release gives the memory behind the batch back (Arrow buffers);
	// nil when there is nothing to give back.
	release func()
}

// engineTableRE is how warehouse.Engine.Query finds the tables whose views
// it refreshes.
var engineTableRE = regexp.MustCompile(`(?i)\b(raw|marts)\.([a-z_][a-z0-9_]*)`)

// batchBuffer is how many rows a database/sql batch holds.
const batchBuffer = 2048

// source streams a query's rows as column batches: cols is called once
// with the columns before the first batch; each batch belongs to emit until
// it calls the batch's release.
type source func(ctx context.Context, eng *warehouse.Engine, query string, cols func([]Column) error, emit func(*colBatch) error) error

// readSQL is the portable reader: database/sql, row by row.
func readSQL(ctx context.Context, eng *warehouse.Engine, query string, colsFn func([]Column) error, emit func(*colBatch) error) error {
	rows, err := eng.Query(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	cts, err := rows.ColumnTypes()
	if err != nil {
		return err
	}
	cols := make([]Column, len(cts))
	kinds := make([]kind, len(cts))
	for i, ct := range cts {
		cols[i] = Column{Name: ct.Name(), Type: ct.DatabaseTypeName()}
		kinds[i] = kindOf(cols[i].Type)
	}
	if err := colsFn(cols); err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	// Two batches alternate: emit may still hold one while the next fills.
	pool := make(chan *colBatch, 2)
	for range 2 {
		pool <- &colBatch{cols: make([]colVec, len(cols))}
	}
	for {
		var b *colBatch
		select {
		case b = <-pool:
		case <-ctx.Done():
			return ctx.Err()
		}
		b.n = 0
		for j := range b.cols {
			b.cols[j].reset(kinds[j], batchBuffer)
		}
		for b.n < batchBuffer && rows.Next() {
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			for j, raw := range vals {
				putValue(&b.cols[j], b.n, batchBuffer, normalize(raw))
			}
			b.n++
		}
		if b.n > 0 {
			b.release = func() { pool <- b }
			if err := emit(b); err != nil {
				return err
			}
		}
		if b.n < batchBuffer {
			return rows.Err()
		}
	}
}

// putValue stores a normalised database/sql value as cell i (of n) of v.
func putValue(v *colVec, i, n int, x any) {
	if x == nil {
		v.setNull(i, n)
		return
	}
	switch v.k {
	case kInt:
		switch t := x.(type) {
		case int64:
			v.ints[i] = t
			return
		case float64:
			v.ints[i] = int64(t)
			return
		}
	case kFloat:
		switch t := x.(type) {
		case float64:
			v.floats[i] = t
			return
		case int64:
			v.floats[i] = float64(t)
			return
		}
	case kBool:
		if t, ok := x.(bool); ok {
			v.bools[i] = t
			return
		}
	case kTimestamp, kTimestampTZ:
		if t, ok := x.(time.Time); ok {
			v.ints[i] = t.UnixMicro()
			return
		}
	case kDate:
		if t, ok := x.(time.Time); ok {
			u := t.UTC().Unix()
			days := u / 86400
			if u < 0 && u%86400 != 0 {
				days--
			}
			v.ints[i] = days
			return
		}
	default:
		if s, ok := x.(string); ok {
			v.strs[i] = s
		} else {
			// Other types (TIME, UUID, lists…) as their text.
			v.strs[i] = string(text(x, kString, time.UTC, nil))
		}
		return
	}
	if v.over == nil {
		v.over = map[int]string{}
	}
	v.over[i] = fmt.Sprint(x)
}

// describe gives the DuckDB types of a query's columns, as database/sql's
// DatabaseTypeName names them.
func describe(ctx context.Context, db *sql.DB, query string) ([]Column, error) {
	rows, err := db.QueryContext(ctx, "DESCRIBE "+query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var out []Column
	vals := make([]sql.NullString, len(names))
	ptrs := make([]any, len(names))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		t := strings.ToUpper(vals[1].String)
		if t == "TIMESTAMP WITH TIME ZONE" {
			t = "TIMESTAMPTZ"
		}
		out = append(out, Column{Name: vals[0].String, Type: t})
	}
	return out, rows.Err()
}
