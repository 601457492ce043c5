// Package mapping turns a feed's own rows into canonical records, as
// declared in a source definition's YAML — no Go code per department file.
//
// A mapping names, for each canonical field, where its value comes from:
//
//	mapping:
//	  timezone: Asia/Shanghai      # for times without a zone (default)
//	  null_values: ["NA", ""]      # cell values that mean "missing"
//	  fields:
//	    station:     {column: station}                       # by header name
//	    pm25:        {column: PM2.5}                         # cast to the field's type
//	    observed_at: {parts: {year: year, month: month, day: day, hour: hour}}
//	    reported_at: {column: Created Date, layout: "01/02/2006 03:04:05 PM"}
//	    category:    {index: 2, enum: {"EMS": medical, "Fire": fire}, enum_prefix: true}
//	    source:      {value: "montgomery"}                   # a constant
//
// Casting follows the canonical field type: numbers accept surrounding
// spaces; timestamps take a Go layout (layout) or the named parts; values not
// listed in null_values but unparsable are errors naming the column, the value
// and what was expected — the row goes to the dead-letter topic with it.
package mapping

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"citybrain/schemas"
)

// Spec is the YAML form of a mapping.
type Spec struct {
	// Timezone for times that carry none; default Asia/Shanghai.
	Timezone string `yaml:"timezone"`
	// NullValues are cell values read as missing (after trimming).
	NullValues []string `yaml:"null_values"`
	// Fields maps each canonical field to its origin.
	Fields map[string]FieldSpec `yaml:"fields"`
}

// FieldSpec says where one canonical field comes from. Exactly one of
// Column, Index, Value or Parts is set.
type FieldSpec struct {
	Column string            `yaml:"column"`
	Index  *int              `yaml:"index"`
	Value  *string           `yaml:"value"`
	Parts  map[string]string `yaml:"parts"` // year, month, day, hour, minute, second → column
	// Layout is a Go time layout for timestamp fields (default RFC 3339 and common forms).
	Layout string `yaml:"layout"`
	// Enum maps feed values to canonical values.
	Enum map[string]string `yaml:"enum"`
	// EnumPrefix matches Enum keys as prefixes ("EMS: FALL" → "EMS").
	EnumPrefix bool `yaml:"enum_prefix"`
	// Default is used when the cell is missing.
	Default *string `yaml:"default"`
	// NoTrim keeps leading and trailing spaces.
	NoTrim bool `yaml:"no_trim"`
}

// ErrMapping: the mapping spec is wrong (a configuration error, not a data error).
var ErrMapping = errors.New("invalid mapping")

// Mapper maps rows of one feed onto one schema.
type Mapper struct {
	schema *schemas.Schema
	spec   Spec
	loc    *time.Location
	nulls  map[string]bool
}

// New checks a spec against its schema.
func New(s *schemas.Schema, spec Spec) (*Mapper, error) {
	tz := spec.Timezone
	if tz == "" {
		tz = "Asia/Shanghai"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("%w: timezone %q: %v", ErrMapping, tz, err)
	}
	m := &Mapper{schema: s, spec: spec, loc: loc, nulls: map[string]bool{}}
	for _, n := range spec.NullValues {
		m.nulls[n] = true
	}
	var unknown []string
	for name, fs := range spec.Fields {
		i := s.Index(name)
		if i < 0 {
			unknown = append(unknown, name)
			continue
		}
		set := 0
		if fs.Column != "" {
			set++
		}
		if fs.Index != nil {
			set++
		}
		if fs.Value != nil {
			set++
		}
		if len(fs.Parts) > 0 {
			set++
			if s.Fields[i].Type != schemas.Timestamp {
				return nil, fmt.Errorf("%w: field %s: parts only build timestamps", ErrMapping, name)
			}
			for p := range fs.Parts {
				if _, ok := partOrder[p]; !ok {
					return nil, fmt.Errorf("%w: field %s: unknown part %q (want year, month, day, hour, minute, second)", ErrMapping, name, p)
				}
			}
		}
		if set != 1 {
			return nil, fmt.Errorf("%w: field %s: set exactly one of column, index, value, parts", ErrMapping, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%w: schema %s has no field %s", ErrMapping, s.Name, strings.Join(unknown, ", "))
	}
	for _, f := range s.Fields {
		if _, ok := spec.Fields[f.Name]; !ok && f.Required {
			return nil, fmt.Errorf("%w: required field %s (%s) is not mapped", ErrMapping, f.Name, f.Doc.ZH)
		}
	}
	return m, nil
}

var partOrder = map[string]int{"year": 0, "month": 1, "day": 2, "hour": 3, "minute": 4, "second": 5}

// Bound is a Mapper bound to one header (column names → positions).
type Bound struct {
	m      *Mapper
	getter []func(row []string) (string, bool, error) // per schema field; nil: unmapped
	fields []FieldSpec
	parts  [][6]int // column index per part, -1 unset
	width  int      // expected columns, 0 = any
}

// Bind resolves column names against a header. With a nil header only
// index, value and parts given by index numbers are allowed.
func (m *Mapper) Bind(header []string) (*Bound, error) {
	pos := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
		if _, dup := pos[h]; !dup {
			pos[h] = i
		}
	}
	col := func(field, name string) (int, error) {
		if i, ok := pos[name]; ok {
			return i, nil
		}
		if header == nil {
			if n, err := strconv.Atoi(name); err == nil && n >= 0 {
				return n, nil
			}
			return 0, fmt.Errorf("%w: field %s: column %q needs a header row (use index: N for headerless files)", ErrMapping, field, name)
		}
		return 0, fmt.Errorf("%w: field %s: column %q not in header [%s]", ErrMapping, field, name, strings.Join(header, ", "))
	}
	b := &Bound{m: m, getter: make([]func([]string) (string, bool, error), len(m.schema.Fields)),
		fields: make([]FieldSpec, len(m.schema.Fields)), parts: make([][6]int, len(m.schema.Fields)), width: len(header)}
	for i, f := range m.schema.Fields {
		fs, ok := m.spec.Fields[f.Name]
		if !ok {
			continue
		}
		b.fields[i] = fs
		switch {
		case fs.Value != nil:
			v := *fs.Value
			b.getter[i] = func([]string) (string, bool, error) { return v, true, nil }
		case len(fs.Parts) > 0:
			p := [6]int{-1, -1, -1, -1, -1, -1}
			for name, c := range fs.Parts {
				ci, err := col(f.Name, c)
				if err != nil {
					return nil, err
				}
				p[partOrder[name]] = ci
			}
			b.parts[i] = p
		default:
			ci := 0
			if fs.Index != nil {
				ci = *fs.Index
			} else {
				var err error
				if ci, err = col(f.Name, fs.Column); err != nil {
					return nil, err
				}
			}
			name := fs.Column
			if name == "" {
				name = "#" + strconv.Itoa(ci)
			}
			b.getter[i] = func(row []string) (string, bool, error) {
				if ci >= len(row) {
					return "", false, fmt.Errorf("column %s missing: row has %d columns", name, len(row))
				}
				return row[ci], true, nil
			}
		}
	}
	return b, nil
}

// Map maps one row. The error explains, in Chinese and English, which
// column held what and what was expected.
func (b *Bound) Map(row []string) (schemas.Record, error) {
	if b.width > 0 && len(row) != b.width {
		return nil, fmt.Errorf("列数不符 wrong column count: want %d, got %d", b.width, len(row))
	}
	s := b.m.schema
	rec := make(schemas.Record, len(s.Fields))
	for i, f := range s.Fields {
		fs := b.fields[i]
		if len(fs.Parts) > 0 {
			t, ok, err := b.timeFromParts(row, b.parts[i], fs.Parts)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name, err)
			}
			if ok {
				rec[i] = t
			}
			continue
		}
		get := b.getter[i]
		if get == nil {
			continue
		}
		raw, ok, err := get(row)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Name, err)
		}
		v := raw
		if !fs.NoTrim {
			v = strings.TrimSpace(v)
		}
		if !ok || b.m.nulls[v] || (v == "" && f.Type != schemas.String) {
			if fs.Default == nil {
				continue
			}
			v = *fs.Default
		}
		if len(fs.Enum) > 0 {
			mapped, ok := lookupEnum(fs.Enum, v, fs.EnumPrefix)
			if !ok {
				return nil, fmt.Errorf("%s: value %q is not in the mapping's enum / 枚举值未定义", f.Name, v)
			}
			v = mapped
		}
		val, err := b.m.cast(f, v)
		if err != nil {
			name := fs.Column
			if name == "" && fs.Index != nil {
				name = "#" + strconv.Itoa(*fs.Index)
			}
			return nil, fmt.Errorf("%s (column %s): %w", f.Name, name, err)
		}
		rec[i] = val
	}
	if err := s.Validate(rec); err != nil {
		return nil, err
	}
	return rec, nil
}

func lookupEnum(enum map[string]string, v string, prefix bool) (string, bool) {
	if m, ok := enum[v]; ok {
		return m, true
	}
	if prefix {
		best, bestLen := "", -1
		for k, m := range enum {
			if strings.HasPrefix(v, k) && len(k) > bestLen {
				best, bestLen = m, len(k)
			}
		}
		return best, bestLen >= 0
	}
	return "", false
}

func (b *Bound) timeFromParts(row []string, cols [6]int, names map[string]string) (time.Time, bool, error) {
	column := func(p int) string {
		for part, col := range names {
			if partOrder[part] == p {
				return col
			}
		}
		return "#" + strconv.Itoa(cols[p])
	}
	var n [6]int
	n[1], n[2] = 1, 1
	for p, ci := range cols {
		if ci < 0 {
			continue
		}
		if ci >= len(row) {
			return time.Time{}, false, fmt.Errorf("column %s missing: row has %d columns", column(p), len(row))
		}
		v := strings.TrimSpace(row[ci])
		if b.m.nulls[v] || v == "" {
			return time.Time{}, false, nil
		}
		x, err := strconv.Atoi(v)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("column %s: %q is not a whole number / 不是整数", column(p), v)
		}
		n[p] = x
	}
	t := time.Date(n[0], time.Month(n[1]), n[2], n[3], n[4], n[5], 0, b.m.loc)
	if t.Year() != n[0] || int(t.Month()) != n[1] || t.Day() != n[2] || t.Hour() != n[3] || t.Minute() != n[4] {
		return time.Time{}, false, fmt.Errorf("%04d-%02d-%02d %02d:%02d:%02d is not a valid time / 时间无效", n[0], n[1], n[2], n[3], n[4], n[5])
	}
	return t.UTC(), true, nil
}

var defaultLayouts = []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02 15:04", "2006/01/02 15:04:05", "2006-01-02"}

func (m *Mapper) cast(f schemas.Field, v string) (any, error) {
	switch f.Type {
	case schemas.String:
		return v, nil
	case schemas.Int, schemas.Long:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			if x, ferr := strconv.ParseFloat(v, 64); ferr == nil && x == float64(int64(x)) {
				return int64(x), nil
			}
			return nil, fmt.Errorf("%q is not a whole number / 不是整数", v)
		}
		return n, nil
	case schemas.Double:
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number / 不是数字", v)
		}
		return x, nil
	case schemas.Bool:
		switch strings.ToLower(v) {
		case "true", "t", "yes", "y", "1", "是":
			return true, nil
		case "false", "f", "no", "n", "0", "否":
			return false, nil
		}
		return nil, fmt.Errorf("%q is not true/false / 不是布尔值", v)
	case schemas.Timestamp, schemas.Date:
		layouts := defaultLayouts
		if fs := m.spec.Fields[f.Name]; fs.Layout != "" {
			layouts = []string{fs.Layout}
		}
		for _, l := range layouts {
			if t, err := time.ParseInLocation(l, v, m.loc); err == nil {
				if f.Type == schemas.Date {
					return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), nil
				}
				return t.UTC(), nil
			}
		}
		return nil, fmt.Errorf("%q does not match time layout %q / 时间格式不符", v, layouts[0])
	}
	return nil, fmt.Errorf("unsupported type %s", f.Type)
}
