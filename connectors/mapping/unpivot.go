package mapping

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"citybrain/schemas"
)

// # Wide files (unpivot)
//
// Some departments send one column per counter or sensor: a row per hour,
// a column per site. unpivot turns each such row into one record per
// column: name_field receives the column's name (or names[column]),
// value_field its cell, and every other field is mapped from the row as
// usual (the hour, a constant direction …):
//
//	mapping:
//	  fields:
//	    observed_at: {column: Date, layout: "01/02/2006 03:04:05 PM"}
//	    direction:   {value: both}
//	  unpivot:
//	    columns: ["Fremont Bridge East Sidewalk", "Fremont Bridge West Sidewalk"]
//	    # or: other_columns: true   (every column no field, filter or coordinate reads)
//	    name_field: site_id
//	    value_field: count
//	    names: {"Fremont Bridge East Sidewalk": fremont-east}   # optional
//	    value: {null_values: ["-"], unit: km/h}                 # optional cell options
//	    skip_empty: true   # an empty cell gives no record (default: a null value,
//	                       # dead-lettered when the field is required)
//
// A row-level problem (wrong column count, a bad time) rejects each of the
// row's records with the same reason; a bad cell rejects only its record.

// UnpivotSpec turns a wide row into one record per column.
type UnpivotSpec struct {
	// Columns are the wide columns by header name, in order.
	Columns []string `yaml:"columns"`
	// OtherColumns takes every header column that no field, filter or
	// coordinate reads, in header order.
	OtherColumns bool `yaml:"other_columns"`
	// NameField receives the column's name (or Names[column]).
	NameField string `yaml:"name_field"`
	// ValueField receives the cell.
	ValueField string `yaml:"value_field"`
	// Names renames columns for NameField (column → stored value).
	Names map[string]string `yaml:"names"`
	// Value holds options for the cells (null_values, unit, default, enum,
	// layout, split); its origin is the column.
	Value FieldSpec `yaml:"value"`
	// SkipEmpty gives no record for an empty (or null) cell.
	SkipEmpty bool `yaml:"skip_empty"`
}

// MaxUnpivotColumns bounds the wide columns of a row: a record's position
// within its file is the row's position × UnpivotStride + its column's
// place, so that each record has a position of its own (exactly once).
const (
	UnpivotStride     = 1 << 12
	MaxUnpivotColumns = UnpivotStride - 1
)

// Wide tells whether the mapping unpivots rows (Bound.MapAll gives several
// records per row).
func (m *Mapper) Wide() bool { return m.spec.Unpivot != nil }

// checkUnpivot validates spec.Unpivot; it returns the fields it fills.
func (m *Mapper) checkUnpivot() (map[string]bool, error) {
	u := m.spec.Unpivot
	if u == nil {
		return nil, nil
	}
	s := m.schema
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: unpivot: %s", ErrMapping, fmt.Sprintf(format, a...))
	}
	if (len(u.Columns) > 0) == u.OtherColumns {
		return nil, bad("set either columns (a list) or other_columns: true / 请列出宽表的列（columns）或设 other_columns: true")
	}
	if len(u.Columns) > MaxUnpivotColumns {
		return nil, bad("%d columns; at most %d", len(u.Columns), MaxUnpivotColumns)
	}
	for _, f := range []struct{ key, name string }{{"name_field", u.NameField}, {"value_field", u.ValueField}} {
		if f.name == "" {
			return nil, bad("%s is required", f.key)
		}
		if s.Index(f.name) < 0 {
			return nil, bad("%s: schema %s has no field %s", f.key, s.Name, f.name)
		}
		if _, ok := m.spec.Fields[f.name]; ok {
			return nil, bad("%s %s is also under fields: map it in one place", f.key, f.name)
		}
	}
	if u.NameField == u.ValueField {
		return nil, bad("name_field and value_field are both %s", u.NameField)
	}
	if nf := s.Fields[s.Index(u.NameField)]; nf.Type != schemas.String {
		return nil, bad("name_field %s is a %s field; it receives column names (a string field)", u.NameField, nf.Type)
	}
	v := u.Value
	if v.Column != "" || v.Index != nil || v.Value != nil || len(v.Parts) > 0 || v.Template != "" {
		return nil, bad("value takes options only (null_values, unit, default, enum, layout, split): its column is each wide column")
	}
	if err := checkSplit(v); err != nil {
		return nil, bad("value: %v", err)
	}
	if err := m.checkUnit(u.ValueField, v); err != nil {
		return nil, err
	}
	return map[string]bool{u.NameField: true, u.ValueField: true}, nil
}

// bindUnpivot builds one sub-binding per wide column: b's getters with the
// name field set to the column's name and the value field read from it.
func (b *Bound) bindUnpivot(header []string, used map[int]bool, col func(field, name string) (int, error)) error {
	u := b.m.spec.Unpivot
	type wideCol struct {
		idx  int
		name string
	}
	var cols []wideCol
	if u.OtherColumns {
		if header == nil {
			return fmt.Errorf("%w: unpivot: other_columns needs a header row (list the columns by index instead)", ErrMapping)
		}
		for i, h := range header {
			if !used[i] {
				cols = append(cols, wideCol{i, strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))})
			}
		}
		if len(cols) == 0 {
			return fmt.Errorf("%w: unpivot: other_columns: every column of [%s] is read by a field", ErrMapping, strings.Join(header, ", "))
		}
		if len(cols) > MaxUnpivotColumns {
			return fmt.Errorf("%w: unpivot: %d other columns; at most %d", ErrMapping, len(cols), MaxUnpivotColumns)
		}
	} else {
		for _, c := range u.Columns {
			i, err := col("unpivot.columns", c)
			if err != nil {
				return err
			}
			cols = append(cols, wideCol{i, c})
		}
	}
	s := b.m.schema
	ni, vi := s.Index(u.NameField), s.Index(u.ValueField)
	b.wide = make([]*Bound, len(cols))
	b.wideNames = make([]string, len(cols))
	for k, c := range cols {
		sub := &Bound{m: b.m, getter: slices.Clone(b.getter), fields: slices.Clone(b.fields), parts: b.parts, width: b.width,
			skipIf: b.skipIf, keepIf: b.keepIf, lon: b.lon, lat: b.lat, lonName: b.lonName, latName: b.latName}
		name := c.name
		if n, ok := u.Names[c.name]; ok {
			name = n
		}
		sub.getter[ni] = func([]string) (string, bool, error) { return name, true, nil }
		sub.fields[ni] = FieldSpec{NoTrim: true}
		vs := u.Value
		idx := c.idx
		vs.Index = &idx
		if header != nil {
			vs.Column, vs.Index = c.name, nil
		}
		g, _, err := sub.cellGetter(u.ValueField, vs, func(string, string) (int, error) { return c.idx, nil })
		if err != nil {
			return err
		}
		sub.getter[vi] = g
		sub.fields[vi] = vs
		b.wide[k] = sub
		b.wideNames[k] = c.name
	}
	return nil
}

// Mapped is one record of a row, or why it was not made.
type Mapped struct {
	// Sub is the record's place in its row (0 for a row that is not wide).
	Sub int
	// Column is the wide column the record comes from ("" if not wide).
	Column string
	Rec    schemas.Record
	// Err is the reason the record is rejected, or matches ErrSkipped.
	Err error
}

// Records is how many records a row gives (1, or the wide columns).
func (b *Bound) Records() int {
	if b.wide == nil {
		return 1
	}
	return len(b.wide)
}

// MapAll maps one row to its records: one (as Map) unless the mapping
// unpivots, then one per wide column, each with its own error. A row the
// filter skips gives one Mapped whose Err matches ErrSkipped.
func (b *Bound) MapAll(row []string) []Mapped {
	if b.wide == nil {
		rec, err := b.Map(row)
		return []Mapped{{Rec: rec, Err: err}}
	}
	row, err := b.check(row)
	if err != nil {
		out := make([]Mapped, len(b.wide))
		for k := range b.wide {
			out[k] = Mapped{Sub: k, Column: b.wideNames[k], Err: err}
		}
		if isSkipped(err) {
			return out[:1]
		}
		return out
	}
	out := make([]Mapped, 0, len(b.wide))
	for k, sub := range b.wide {
		rec, err := sub.mapSub(b, row)
		out = append(out, Mapped{Sub: k, Column: b.wideNames[k], Rec: rec, Err: err})
	}
	return out
}

// MapOne maps the record of wide column k of a row (a dead letter's
// replay); for a mapping that does not unpivot, k must be 0.
func (b *Bound) MapOne(row []string, k int) (schemas.Record, error) {
	if b.wide == nil {
		if k != 0 {
			return nil, fmt.Errorf("record %d of a row: the mapping does not unpivot (mapping.unpivot was removed?)", k)
		}
		return b.Map(row)
	}
	if k < 0 || k >= len(b.wide) {
		return nil, fmt.Errorf("record %d of a row: the file's header has %d wide columns now", k, len(b.wide))
	}
	row, err := b.check(row)
	if err != nil {
		return nil, err
	}
	return b.wide[k].mapSub(b, row)
}

// mapSub maps a checked row with one wide column's binding (of parent). An
// empty cell with skip_empty gives an error matching ErrSkipped.
func (b *Bound) mapSub(parent *Bound, row []string) (schemas.Record, error) {
	u := b.m.spec.Unpivot
	if u != nil && u.SkipEmpty {
		vi := b.m.schema.Index(u.ValueField)
		raw, ok, err := b.getter[vi](row)
		v := strings.TrimSpace(raw)
		if err == nil && (!ok || v == "" || b.m.nulls[v] || slices.Contains(b.fields[vi].NullValues, v)) && b.fields[vi].Default == nil {
			parent.skipped.Add(1)
			return nil, fmt.Errorf("%w: %s is empty (unpivot.skip_empty)", ErrSkipped, originName(b.fields[vi]))
		}
	}
	return b.build(row)
}

func isSkipped(err error) bool { return errors.Is(err, ErrSkipped) }
