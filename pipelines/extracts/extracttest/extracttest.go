// Package extracttest fills lake tables with generated records, for the
// extracts' tests and benchmark: real Iceberg commits of real Parquet data
// files, written by the warehouse's own file writer.
package extracttest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/apache/iceberg-go"

	"citybrain/schemas"
	"citybrain/warehouse"
)

// Fill commits n records of schema s (its table is created if missing) in
// one snapshot and returns the snapshot id. gen fills record i (all fields
// start nil); required fields must be set.
func Fill(ctx context.Context, lake *warehouse.Lake, s *schemas.Schema, n int, gen func(i int, r schemas.Record)) (int64, error) {
	if _, err := lake.EnsureTable(ctx, s); err != nil {
		return 0, err
	}
	tbl, err := lake.Load(ctx, s.Table)
	if err != nil {
		return 0, err
	}
	st, err := lake.State(ctx, s.Table)
	if err != nil && !errors.Is(err, warehouse.ErrNoTable) {
		return 0, err
	}
	next := st.Clone()
	next.Batch++
	writers := map[string]*warehouse.FileWriter{}
	var order []string
	fail := func(err error) (int64, error) {
		for _, w := range writers {
			w.Abort()
		}
		return 0, err
	}
	for i := range n {
		r := make(schemas.Record, len(s.Fields))
		gen(i, r)
		pv, dir := warehouse.PartitionKey(s, r)
		w, ok := writers[dir]
		if !ok {
			rel := fmt.Sprintf("%010d-%d.parquet", next.Batch, len(writers))
			if dir != "" {
				rel = dir + "/" + rel
			}
			if w, err = lake.NewFileWriter(tbl, s, rel, pv); err != nil {
				return fail(err)
			}
			writers[dir] = w
			order = append(order, dir)
		}
		if err := w.Write(r, fmt.Sprintf("gen:%d:%d", next.Batch, i)); err != nil {
			return fail(fmt.Errorf("record %d: %w", i, err))
		}
	}
	var files []iceberg.DataFile
	for _, dir := range order {
		df, err := writers[dir].Close()
		if err != nil {
			return fail(err)
		}
		files = append(files, df)
	}
	next.Cursors["gen"] = next.Batch
	return lake.Commit(ctx, s.Table, files, next)
}

// FillText commits rows given as text (the simulator's reference tables:
// columns named like the schema's fields, cells as the CSV it writes),
// each cell parsed by its field's type; a column the schema lacks and an
// empty cell are left null. A cell that does not parse commits nothing.
func FillText(ctx context.Context, lake *warehouse.Lake, s *schemas.Schema, cols []string, rows [][]string) (int64, error) {
	col := map[string]int{}
	for i, c := range cols {
		col[c] = i
	}
	recs := make([]schemas.Record, len(rows))
	for i, row := range rows {
		r := make(schemas.Record, len(s.Fields))
		for fi, f := range s.Fields {
			ci, ok := col[f.Name]
			if !ok || row[ci] == "" {
				continue
			}
			v := row[ci]
			var err error
			switch f.Type {
			case "int", "long":
				r[fi], err = strconv.ParseInt(v, 10, 64)
			case "double":
				r[fi], err = strconv.ParseFloat(v, 64)
			case "boolean":
				r[fi], err = strconv.ParseBool(v)
			case "timestamp":
				r[fi], err = time.Parse(time.RFC3339, v)
			default:
				r[fi] = v
			}
			if err != nil {
				return 0, fmt.Errorf("%s row %d, %s = %q: %w", s.Table, i, f.Name, v, err)
			}
		}
		recs[i] = r
	}
	return Fill(ctx, lake, s, len(recs), func(i int, r schemas.Record) { copy(r, recs[i]) })
}
