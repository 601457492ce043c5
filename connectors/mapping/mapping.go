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
//
// # Combined and derived fields
//
// split takes one part of a combined cell (after the split, the part is
// trimmed and checked against null_values like any cell; an empty or null
// cell gives a missing value, a cell with too few parts is an error):
//
//	lat: {column: geo, split: {sep: ",", index: 0}}   # "38.55,-121.39" → 38.55
//
// template builds a value from several columns: each {column} (or {N}
// without a header) is replaced by its trimmed cell, null cells by "", and
// the result is trimmed; when every referenced cell is empty the value is
// missing. Braces cannot appear literally.
//
//	street_name: {template: "{BOROUGH} {ON STREET NAME}"}
//
// # Filtering rows
//
// filter names rows that are not data for this schema (section headers,
// other departments' rows, test calls). Such rows are skipped, not rejected:
// Bound.Map returns an error matching ErrSkipped (errors.Is), which callers
// count and must not send to the dead-letter topic; Bound.Skipped counts them
// too. A row is skipped when any skip_if condition holds, or when keep_if is
// given and not every keep_if condition holds. A condition names a column
// (or index) and one test on the trimmed cell: equals, in, or prefix. Rows
// with the wrong number of columns are rejected before filters run.
//
//	filter:
//	  skip_if: [{column: geo, equals: ""}, {column: crimedescr, in: ["TEST", "DUPLICATE"]}]
//	  keep_if: [{index: 2, prefix: "EMS:"}]
//
// # Coordinates and streets
//
// coordinates reads a point, converts it to WGS-84 and stores it into two
// double fields. lon and lat are origin specs (column or index, optionally
// with split); for crs utm they hold the easting (X) and northing (Y) in
// metres. crs is wgs84 (default), gcj02 (Amap, Tencent; converted with the
// standard inverse transform) or utm:<zone><N|S> (e.g. utm:17N for NAD83 /
// WGS 84 UTM zone 17N). Both cells empty or null → both fields null (not an
// error); one of them empty, a non-number, a non-finite value, |lat| > 90,
// |lon| > 180 or the placeholder (0, 0) → the row is rejected with the
// reason.
//
//	coordinates: {lon: {column: X}, lat: {column: Y}, crs: "utm:17N", to: {lon: lon, lat: lat}}
//
// street assigns the street (街道) adcode of Xicheng District the converted
// point lies in (point-in-polygon over the embedded OpenStreetMap street
// polygons, © OpenStreetMap contributors, ODbL; see internal/geo). It needs
// coordinates; a point outside the district, or no point, gives null. The
// field may be a string ("110102009") or an int/long field.
//
//	street: {field: street_code}
//
// Fields filled by coordinates or street must not also appear in fields.
package mapping

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"citybrain/internal/geo"
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
	// Filter names rows to skip (not reject); see ErrSkipped.
	Filter *FilterSpec `yaml:"filter"`
	// Coordinates converts a point to WGS-84 into two double fields.
	Coordinates *CoordinateSpec `yaml:"coordinates"`
	// Street assigns the Xicheng street adcode of the point (needs Coordinates).
	Street *StreetSpec `yaml:"street"`
	// ShortRows accepts a row with fewer cells than the header (a feed that
	// omits trailing empty fields) as if the missing cells were empty;
	// without it such a row is dead-lettered (wrong column count).
	ShortRows bool `yaml:"short_rows"`
	// Unpivot turns a wide row (one column per counter) into one record
	// per column (see unpivot.go).
	Unpivot *UnpivotSpec `yaml:"unpivot"`
}

// SplitSpec takes part Index (0-based) of a cell split on Sep.
type SplitSpec struct {
	Sep   string `yaml:"sep"`
	Index int    `yaml:"index"`
}

// FilterSpec: a row is skipped when any SkipIf condition holds, or when
// KeepIf is not empty and one of its conditions does not hold.
type FilterSpec struct {
	SkipIf []Condition `yaml:"skip_if"`
	KeepIf []Condition `yaml:"keep_if"`
}

// Condition tests one trimmed cell, named by Column or Index, with exactly
// one of Equals, In or Prefix.
type Condition struct {
	Column string   `yaml:"column"`
	Index  *int     `yaml:"index"`
	Equals *string  `yaml:"equals"`
	In     []string `yaml:"in"`
	Prefix string   `yaml:"prefix"`
}

// CoordinateSpec reads a point in CRS and writes it, in WGS-84, to the
// fields named by To.
type CoordinateSpec struct {
	// Lon and Lat are origins (column or index, optionally with split); for
	// utm they are the easting (X) and northing (Y).
	Lon FieldSpec `yaml:"lon"`
	Lat FieldSpec `yaml:"lat"`
	// CRS is wgs84 (default), gcj02 or utm:<zone><N|S>, e.g. utm:17N.
	CRS string `yaml:"crs"`
	// ZeroIsNull stores a (0, 0) point — a feed's placeholder for "no
	// location" — as null coordinates instead of dead-lettering the row.
	ZeroIsNull bool `yaml:"zero_is_null"`
	// To names the two double fields that receive longitude and latitude.
	To struct {
		Lon string `yaml:"lon"`
		Lat string `yaml:"lat"`
	} `yaml:"to"`
}

// StreetSpec names the field that receives the street adcode.
type StreetSpec struct {
	Field string `yaml:"field"`
}

// FieldSpec says where one canonical field comes from. Exactly one of
// Column, Index, Value, Parts or Template is set.
type FieldSpec struct {
	Column string            `yaml:"column"`
	Index  *int              `yaml:"index"`
	Value  *string           `yaml:"value"`
	Parts  map[string]string `yaml:"parts"` // year, month, day, hour, minute, second → column
	// Template builds the value from several columns: "{Borough} {ON STREET NAME}".
	Template string `yaml:"template"`
	// Split takes one part of a combined cell (with Column or Index).
	Split *SplitSpec `yaml:"split"`
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
	// NullValues are this field's own cell values read as missing (besides
	// the mapping's null_values), e.g. "0" for a counter, "-999" for a sensor.
	NullValues []string `yaml:"null_values"`
	// Unit is the unit the feed gives this number in; it is converted to the
	// schema field's unit (kPa → hPa, km/h → m/s, °F → °C; see Conversions).
	Unit string `yaml:"unit"`
}

// conversion turns a value in one unit into another.
type conversion func(float64) float64

func scale(k float64) conversion { return func(x float64) float64 { return x * k } }

// conversions maps "from→to" to the function; the units are the schemas'.
var conversions = map[string]conversion{
	"kPa→hPa":     scale(10),
	"Pa→hPa":      scale(0.01),
	"mbar→hPa":    scale(1),
	"mmHg→hPa":    scale(1.33322387415),
	"inHg→hPa":    scale(33.8638866667),
	"km/h→m/s":    scale(1 / 3.6),
	"mph→m/s":     scale(0.44704),
	"kn→m/s":      scale(0.514444444),
	"°F→°C":       func(x float64) float64 { return (x - 32) * 5 / 9 },
	"K→°C":        func(x float64) float64 { return x - 273.15 },
	"in→mm":       scale(25.4),
	"cm→mm":       scale(10),
	"mg/m³→µg/m³": scale(1000),
	"ft→m":        scale(0.3048),
	"cm→m":        scale(0.01),
	"mm→m":        scale(0.001),
	"L/s→m³/s":    scale(0.001),
}

// Conversions lists the unit conversions a field's unit can ask for.
func Conversions() []string {
	out := make([]string, 0, len(conversions))
	for k := range conversions {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ErrMapping: the mapping spec is wrong (a configuration error, not a data error).
var ErrMapping = errors.New("invalid mapping")

// ErrSkipped: Bound.Map skipped the row because of the spec's filter. It is
// not a data error: count the row as skipped and do not dead-letter it.
var ErrSkipped = errors.New("row skipped by filter / 按过滤规则跳过")

// Mapper maps rows of one feed onto one schema.
type Mapper struct {
	schema *schemas.Schema
	spec   Spec
	loc    *time.Location
	nulls  map[string]bool

	templates map[string][]tmplPart // per field with a template
	crs       crs
	lonIdx    int // schema positions of coordinates.to; -1 unset
	latIdx    int
	streetIdx int // schema position of street.field; -1 unset
	streets   *geo.Streets

	colsOnce sync.Once // cols: Columns, for PadSorted
	cols     []string
}

// loadStreets parses the embedded street polygons once per process; the
// result is immutable and shared by every Mapper.
var loadStreets = sync.OnceValues(geo.LoadStreets)

// New checks a spec against its schema.
func New(s *schemas.Schema, spec Spec) (*Mapper, error) {
	tz := spec.Timezone
	if tz == "" {
		tz = "Asia/Shanghai"
	}
	if tz == "Local" {
		return nil, fmt.Errorf("%w: timezone Local depends on the machine: name the zone, e.g. Asia/Shanghai / 时区请写 IANA 名称，如 Asia/Shanghai", ErrMapping)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("%w: timezone %q: %v", ErrMapping, tz, err)
	}
	m := &Mapper{schema: s, spec: spec, loc: loc, nulls: map[string]bool{},
		templates: map[string][]tmplPart{}, lonIdx: -1, latIdx: -1, streetIdx: -1}
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
		if fs.Template != "" {
			set++
			parts, err := parseTemplate(fs.Template)
			if err != nil {
				return nil, fmt.Errorf("%w: field %s: template %q: %v", ErrMapping, name, fs.Template, err)
			}
			m.templates[name] = parts
		}
		if set != 1 {
			return nil, fmt.Errorf("%w: field %s: set exactly one of column, index, value, parts, template", ErrMapping, name)
		}
		if err := checkSplit(fs); err != nil {
			return nil, fmt.Errorf("%w: field %s: %v", ErrMapping, name, err)
		}
		if err := m.checkUnit(name, fs); err != nil {
			return nil, err
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%w: schema %s has no field %s", ErrMapping, s.Name, strings.Join(unknown, ", "))
	}
	if err := m.checkFilter(); err != nil {
		return nil, err
	}
	derived, err := m.checkCoordinates()
	if err != nil {
		return nil, err
	}
	wide, err := m.checkUnpivot()
	if err != nil {
		return nil, err
	}
	for f := range wide {
		derived[f] = true
	}
	for _, f := range s.Fields {
		if _, ok := spec.Fields[f.Name]; !ok && !derived[f.Name] && f.Required {
			return nil, fmt.Errorf("%w: required field %s (%s) is not mapped", ErrMapping, f.Name, f.Doc.ZH)
		}
	}
	return m, nil
}

// checkUnit checks a field's unit conversion.
func (m *Mapper) checkUnit(name string, fs FieldSpec) error {
	s := m.schema
	i := s.Index(name)
	if fs.Unit == "" || fs.Unit == s.Fields[i].Unit {
		return nil
	}
	f := s.Fields[i]
	if f.Type != schemas.Double {
		return fmt.Errorf("%w: field %s: unit conversion needs a double field (it is %s)", ErrMapping, name, f.Type)
	}
	if f.Unit == "" {
		return fmt.Errorf("%w: field %s: the schema gives it no unit to convert %s to", ErrMapping, name, fs.Unit)
	}
	if conversions[fs.Unit+"→"+f.Unit] == nil {
		return fmt.Errorf("%w: field %s: no conversion from %s to %s (known: %s) / 不支持的单位换算", ErrMapping, name, fs.Unit, f.Unit, strings.Join(Conversions(), ", "))
	}
	return nil
}

func checkSplit(fs FieldSpec) error {
	if fs.Split == nil {
		return nil
	}
	if fs.Column == "" && fs.Index == nil {
		return errors.New("split needs column or index")
	}
	if fs.Split.Sep == "" {
		return errors.New("split: sep must not be empty")
	}
	if fs.Split.Index < 0 {
		return fmt.Errorf("split: index %d must be >= 0", fs.Split.Index)
	}
	return nil
}

func (m *Mapper) checkFilter() error {
	f := m.spec.Filter
	if f == nil {
		return nil
	}
	for _, list := range []struct {
		name  string
		conds []Condition
	}{{"skip_if", f.SkipIf}, {"keep_if", f.KeepIf}} {
		for i, c := range list.conds {
			bad := func(msg string) error {
				return fmt.Errorf("%w: filter %s[%d]: %s", ErrMapping, list.name, i, msg)
			}
			if (c.Column == "") == (c.Index == nil) {
				return bad("set exactly one of column, index")
			}
			if c.Index != nil && *c.Index < 0 {
				return bad(fmt.Sprintf("index %d must be >= 0", *c.Index))
			}
			tests := 0
			if c.Equals != nil {
				tests++
			}
			if len(c.In) > 0 {
				tests++
			}
			if c.Prefix != "" {
				tests++
			}
			if tests != 1 {
				return bad("set exactly one of equals, in (non-empty), prefix (non-empty)")
			}
		}
	}
	return nil
}

// crs is a parsed coordinates.crs.
type crs struct {
	kind  string // wgs84, gcj02, utm
	zone  int
	north bool
	name  string
}

func parseCRS(v string) (crs, error) {
	l := strings.ToLower(strings.TrimSpace(v))
	switch l {
	case "", "wgs84":
		return crs{kind: "wgs84", name: "wgs84"}, nil
	case "gcj02":
		return crs{kind: "gcj02", name: "gcj02"}, nil
	}
	if z, ok := strings.CutPrefix(l, "utm:"); ok && len(z) >= 2 {
		h := z[len(z)-1]
		n, err := strconv.Atoi(z[:len(z)-1])
		if err == nil && n >= 1 && n <= 60 && (h == 'n' || h == 's') {
			return crs{kind: "utm", zone: n, north: h == 'n', name: "utm:" + strings.ToUpper(z)}, nil
		}
	}
	return crs{}, fmt.Errorf("crs %q: want wgs84, gcj02 or utm:<zone 1-60><N|S> such as utm:17N", v)
}

// checkCoordinates validates coordinates and street and returns the fields
// they fill.
func (m *Mapper) checkCoordinates() (map[string]bool, error) {
	s, spec := m.schema, m.spec
	derived := map[string]bool{}
	target := func(what, name string, types ...schemas.Type) (int, error) {
		if name == "" {
			return -1, fmt.Errorf("%w: %s: name the target field", ErrMapping, what)
		}
		i := s.Index(name)
		if i < 0 {
			return -1, fmt.Errorf("%w: %s: schema %s has no field %s", ErrMapping, what, s.Name, name)
		}
		ok := false
		for _, t := range types {
			ok = ok || s.Fields[i].Type == t
		}
		if !ok {
			return -1, fmt.Errorf("%w: %s: field %s is %s, want %s", ErrMapping, what, name, s.Fields[i].Type, types[0])
		}
		if _, dup := spec.Fields[name]; dup || derived[name] {
			return -1, fmt.Errorf("%w: %s: field %s is also mapped elsewhere; map it once", ErrMapping, what, name)
		}
		derived[name] = true
		return i, nil
	}
	if c := spec.Coordinates; c != nil {
		var err error
		if m.crs, err = parseCRS(c.CRS); err != nil {
			return nil, fmt.Errorf("%w: coordinates: %v", ErrMapping, err)
		}
		for _, o := range []struct {
			name string
			fs   FieldSpec
		}{{"lon", c.Lon}, {"lat", c.Lat}} {
			fs := o.fs
			if (fs.Column == "") == (fs.Index == nil) {
				return nil, fmt.Errorf("%w: coordinates.%s: set exactly one of column, index", ErrMapping, o.name)
			}
			if fs.Value != nil || len(fs.Parts) > 0 || fs.Template != "" || len(fs.Enum) > 0 || fs.Layout != "" || fs.Default != nil {
				return nil, fmt.Errorf("%w: coordinates.%s: only column or index, with split, are allowed", ErrMapping, o.name)
			}
			if err := checkSplit(fs); err != nil {
				return nil, fmt.Errorf("%w: coordinates.%s: %v", ErrMapping, o.name, err)
			}
		}
		if m.lonIdx, err = target("coordinates.to.lon", c.To.Lon, schemas.Double); err != nil {
			return nil, err
		}
		if m.latIdx, err = target("coordinates.to.lat", c.To.Lat, schemas.Double); err != nil {
			return nil, err
		}
	}
	if st := spec.Street; st != nil {
		if spec.Coordinates == nil {
			return nil, fmt.Errorf("%w: street: needs coordinates (the point to locate)", ErrMapping)
		}
		var err error
		if m.streetIdx, err = target("street", st.Field, schemas.String, schemas.Long, schemas.Int); err != nil {
			return nil, err
		}
		if m.streets, err = loadStreets(); err != nil {
			return nil, fmt.Errorf("street: %w", err)
		}
	}
	return derived, nil
}

// tmplPart is literal text or, when col is set, a column reference.
type tmplPart struct {
	lit string
	col string
	ref bool
}

func parseTemplate(t string) ([]tmplPart, error) {
	var parts []tmplPart
	refs := 0
	for rest := t; rest != ""; {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			parts = append(parts, tmplPart{lit: rest})
			break
		}
		if rest[open] == '}' {
			return nil, errors.New("'}' without '{' (literal braces are not supported)")
		}
		if open > 0 {
			parts = append(parts, tmplPart{lit: rest[:open]})
		}
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] == '{' {
			return nil, errors.New("'{' without '}'")
		}
		name := strings.TrimSpace(rest[open+1 : open+1+end])
		if name == "" {
			return nil, errors.New("empty {} (name a column)")
		}
		parts = append(parts, tmplPart{col: name, ref: true})
		refs++
		rest = rest[open+1+end+1:]
	}
	if refs == 0 {
		return nil, errors.New("no {column} in template (use value: for a constant)")
	}
	return parts, nil
}

var partOrder = map[string]int{"year": 0, "month": 1, "day": 2, "hour": 3, "minute": 4, "second": 5}

// Bound is a Mapper bound to one header (column names → positions).
type Bound struct {
	m      *Mapper
	getter []getter // per schema field; nil: unmapped
	fields []FieldSpec
	parts  [][6]int // column index per part, -1 unset
	width  int      // expected columns, 0 = any

	skipIf, keepIf []boundCond
	lon, lat       getter
	lonName        string // origin names for errors
	latName        string
	skipped        atomic.Int64
	// wide are the per-column bindings of an unpivoting mapping (nil: one
	// record per row), wideNames their header names.
	wide      []*Bound
	wideNames []string
}

// getter reads one value from a row: the (untrimmed) text, false when it is
// missing (empty or null, for split and template cells), or an error.
type getter func(row []string) (string, bool, error)

type boundCond struct {
	Condition
	col  int
	name string // "skip_if[0] (column X)"
}

// Skipped is how many rows Map skipped because of the filter.
func (b *Bound) Skipped() int64 { return b.skipped.Load() }

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
	used := map[int]bool{} // columns a field, filter or coordinate reads (unpivot.other_columns)
	col := func(field, name string) (int, error) {
		if i, ok := pos[name]; ok {
			used[i] = true
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
	b := &Bound{m: m, getter: make([]getter, len(m.schema.Fields)),
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
		case fs.Template != "":
			g, err := b.templateGetter(f.Name, m.templates[f.Name], col)
			if err != nil {
				return nil, err
			}
			b.getter[i] = g
		default:
			g, _, err := b.cellGetter(f.Name, fs, col)
			if err != nil {
				return nil, err
			}
			b.getter[i] = g
		}
	}
	if fl := m.spec.Filter; fl != nil {
		for _, l := range []struct {
			name string
			in   []Condition
			out  *[]boundCond
		}{{"skip_if", fl.SkipIf, &b.skipIf}, {"keep_if", fl.KeepIf, &b.keepIf}} {
			for k, c := range l.in {
				bc := boundCond{Condition: c}
				if c.Index != nil {
					bc.col = *c.Index
					bc.name = fmt.Sprintf("%s[%d] (column #%d)", l.name, k, bc.col)
				} else {
					var err error
					if bc.col, err = col(fmt.Sprintf("filter %s[%d]", l.name, k), c.Column); err != nil {
						return nil, err
					}
					bc.name = fmt.Sprintf("%s[%d] (column %s)", l.name, k, c.Column)
				}
				*l.out = append(*l.out, bc)
			}
		}
	}
	if c := m.spec.Coordinates; c != nil {
		var err error
		if b.lon, b.lonName, err = b.cellGetter("coordinates.lon", c.Lon, col); err != nil {
			return nil, err
		}
		if b.lat, b.latName, err = b.cellGetter("coordinates.lat", c.Lat, col); err != nil {
			return nil, err
		}
		for _, o := range []FieldSpec{c.Lon, c.Lat} {
			if o.Index != nil {
				used[*o.Index] = true
			}
		}
	}
	if m.spec.Unpivot != nil {
		for _, fs := range m.spec.Fields {
			if fs.Index != nil {
				used[*fs.Index] = true
			}
		}
		for _, c := range append(slices.Clone(b.skipIf), b.keepIf...) {
			used[c.col] = true
		}
		if err := b.bindUnpivot(header, used, col); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// cellGetter reads a column or index, applying split; it also returns the
// origin's name for error messages.
func (b *Bound) cellGetter(field string, fs FieldSpec, col func(field, name string) (int, error)) (getter, string, error) {
	ci := 0
	if fs.Index != nil {
		ci = *fs.Index
	} else {
		var err error
		if ci, err = col(field, fs.Column); err != nil {
			return nil, "", err
		}
	}
	name := fs.Column
	if name == "" {
		name = "#" + strconv.Itoa(ci)
	}
	sp := fs.Split
	if sp != nil {
		name += fmt.Sprintf("[%d of %q]", sp.Index, sp.Sep)
	}
	nulls := b.m.nulls
	return func(row []string) (string, bool, error) {
		if ci >= len(row) {
			return "", false, fmt.Errorf("column %s missing: row has %d columns", name, len(row))
		}
		v := row[ci]
		if sp == nil {
			return v, true, nil
		}
		t := strings.TrimSpace(v)
		if t == "" || nulls[t] {
			return "", false, nil
		}
		parts := strings.Split(v, sp.Sep)
		if sp.Index >= len(parts) {
			return "", false, fmt.Errorf("column %s: %q has %d part(s) when split on %q, no part %d / 拆分后缺少该段", name, v, len(parts), sp.Sep, sp.Index)
		}
		return parts[sp.Index], true, nil
	}, name, nil
}

func (b *Bound) templateGetter(field string, parts []tmplPart, col func(field, name string) (int, error)) (getter, error) {
	idx := make([]int, len(parts))
	for k, p := range parts {
		if !p.ref {
			continue
		}
		ci, err := col(field, p.col)
		if err != nil {
			return nil, err
		}
		idx[k] = ci
	}
	nulls := b.m.nulls
	return func(row []string) (string, bool, error) {
		var sb strings.Builder
		seen := false
		for k, p := range parts {
			if !p.ref {
				sb.WriteString(p.lit)
				continue
			}
			if idx[k] >= len(row) {
				return "", false, fmt.Errorf("column %s missing: row has %d columns", p.col, len(row))
			}
			v := strings.TrimSpace(row[idx[k]])
			if nulls[v] {
				v = ""
			}
			seen = seen || v != ""
			sb.WriteString(v)
		}
		if !seen {
			return "", false, nil
		}
		return strings.TrimSpace(sb.String()), true, nil
	}, nil
}

// originName names where a field's value came from, for error messages.
func originName(fs FieldSpec) string {
	switch {
	case fs.Template != "":
		return "template " + strconv.Quote(fs.Template)
	case fs.Column != "":
		return fs.Column
	case fs.Index != nil:
		return "#" + strconv.Itoa(*fs.Index)
	}
	return "value"
}

func (c boundCond) holds(row []string) bool {
	if c.col >= len(row) {
		return false
	}
	v := strings.TrimSpace(row[c.col])
	switch {
	case c.Equals != nil:
		return v == *c.Equals
	case len(c.In) > 0:
		for _, x := range c.In {
			if v == x {
				return true
			}
		}
		return false
	default:
		return strings.HasPrefix(v, c.Prefix)
	}
}

func (c boundCond) describe(row []string) string {
	v := ""
	if c.col < len(row) {
		v = strings.TrimSpace(row[c.col])
	}
	switch {
	case c.Equals != nil:
		return fmt.Sprintf("%s: %q equals %q", c.name, v, *c.Equals)
	case len(c.In) > 0:
		return fmt.Sprintf("%s: %q in [%s]", c.name, v, strings.Join(c.In, ", "))
	default:
		return fmt.Sprintf("%s: %q has prefix %q", c.name, v, c.Prefix)
	}
}

// filter returns why the row is skipped, or "".
func (b *Bound) filter(row []string) string {
	for _, c := range b.skipIf {
		if c.holds(row) {
			return c.describe(row)
		}
	}
	for _, c := range b.keepIf {
		if !c.holds(row) {
			return "not " + c.describe(row)
		}
	}
	return ""
}

// Map maps one row. The error explains, in Chinese and English, which
// column held what and what was expected. A row the filter skips gives an
// error matching ErrSkipped: count it, do not dead-letter it.
func (b *Bound) Map(row []string) (schemas.Record, error) {
	if b.wide != nil {
		return nil, fmt.Errorf("%w: mapping.unpivot gives several records per row: this source reads one record per row (unpivot is for file sources)", ErrMapping)
	}
	row, err := b.check(row)
	if err != nil {
		return nil, err
	}
	return b.build(row)
}

// check pads a short row (short_rows), checks its width and applies the
// filter (an error matching ErrSkipped).
func (b *Bound) check(row []string) ([]string, error) {
	if b.width > 0 && len(row) < b.width && b.m.spec.ShortRows {
		row = append(row[:len(row):len(row)], make([]string, b.width-len(row))...)
	}
	if b.width > 0 && len(row) != b.width {
		hint := ""
		if len(row) < b.width {
			hint = " (if the feed omits trailing empty fields, set mapping.short_rows: true)"
		}
		return nil, fmt.Errorf("列数不符 wrong column count: want %d, got %d%s", b.width, len(row), hint)
	}
	if why := b.filter(row); why != "" {
		b.skipped.Add(1)
		return nil, fmt.Errorf("%w: %s", ErrSkipped, why)
	}
	return row, nil
}

// build maps a checked row.
func (b *Bound) build(row []string) (schemas.Record, error) {
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
		// An empty cell is null but for free text; "" is never one of an
		// enum's values.
		if !ok || b.m.nulls[v] || (v == "" && (f.Type != schemas.String || len(f.Enum) > 0)) || slices.Contains(fs.NullValues, v) {
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
			return nil, fmt.Errorf("%s (column %s): %w", f.Name, originName(fs), err)
		}
		if fs.Unit != "" && fs.Unit != f.Unit {
			if x, ok := val.(float64); ok {
				val = conversions[fs.Unit+"→"+f.Unit](x)
			}
		}
		rec[i] = val
	}
	if b.lon != nil {
		if err := b.coordinates(row, rec); err != nil {
			return nil, err
		}
	}
	if err := s.Validate(rec); err != nil {
		return nil, err
	}
	return rec, nil
}

// coordinates reads, checks and converts the point, then locates its street.
func (b *Bound) coordinates(row []string, rec schemas.Record) error {
	m := b.m
	read := func(g getter, fs FieldSpec) (string, error) {
		v, ok, err := g(row)
		if err != nil {
			return "", err
		}
		v = strings.TrimSpace(v)
		if !ok || m.nulls[v] || slices.Contains(fs.NullValues, v) {
			return "", nil
		}
		return v, nil
	}
	where := fmt.Sprintf("coordinates (%s: lon %s, lat %s)", m.crs.name, b.lonName, b.latName)
	if m.crs.kind == "utm" {
		where = fmt.Sprintf("coordinates (%s: easting %s, northing %s)", m.crs.name, b.lonName, b.latName)
	}
	xs, err := read(b.lon, m.spec.Coordinates.Lon)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	ys, err := read(b.lat, m.spec.Coordinates.Lat)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if xs == "" && ys == "" {
		return nil // no point: both fields null, street null
	}
	if xs == "" || ys == "" {
		return fmt.Errorf("%s: only one of the two is given (%q, %q) / 坐标不完整", where, xs, ys)
	}
	x, err := strconv.ParseFloat(xs, 64)
	if err != nil {
		return fmt.Errorf("%s: %q is not a number / 坐标不是数字", where, xs)
	}
	y, err := strconv.ParseFloat(ys, 64)
	if err != nil {
		return fmt.Errorf("%s: %q is not a number / 坐标不是数字", where, ys)
	}
	if math.IsNaN(x) || math.IsInf(x, 0) || math.IsNaN(y) || math.IsInf(y, 0) {
		return fmt.Errorf("%s: %q, %q is not a finite point / 坐标不是有限数", where, xs, ys)
	}
	if x == 0 && y == 0 {
		if m.spec.Coordinates.ZeroIsNull {
			return nil // the feed's "no location": both null, street null
		}
		return fmt.Errorf("%s: (0, 0) is a placeholder, not a place (set coordinates.zero_is_null: true to keep such rows without a location) / 坐标为 (0, 0) 占位值", where)
	}
	lon, lat := x, y
	switch m.crs.kind {
	case "gcj02":
		if math.Abs(lat) <= 90 && math.Abs(lon) <= 180 {
			lon, lat = geo.GCJ02ToWGS84(x, y)
		}
	case "utm":
		if x <= 0 || x >= 1e6 || y < 0 || y > 1e7 {
			return fmt.Errorf("%s: easting %s, northing %s outside a UTM zone (0 < E < 1,000,000, 0 ≤ N ≤ 10,000,000) / UTM 坐标超出范围", where, xs, ys)
		}
		lon, lat = geo.UTMToWGS84(m.crs.zone, m.crs.north, x, y)
	}
	if math.IsNaN(lon) || math.IsNaN(lat) || math.Abs(lat) > 90 || math.Abs(lon) > 180 {
		return fmt.Errorf("%s: lon %s, lat %s out of range (|lon| ≤ 180, |lat| ≤ 90) / 坐标超出范围", where,
			strconv.FormatFloat(lon, 'g', -1, 64), strconv.FormatFloat(lat, 'g', -1, 64))
	}
	rec[m.lonIdx], rec[m.latIdx] = lon, lat
	if m.streetIdx >= 0 {
		if st, ok := m.streets.Locate(lon, lat); ok {
			if m.schema.Fields[m.streetIdx].Type == schemas.String {
				rec[m.streetIdx] = st.Adcode
			} else if n, err := strconv.ParseInt(st.Adcode, 10, 64); err == nil {
				rec[m.streetIdx] = n
			}
		}
	}
	return nil
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

// skippedLocal refuses a local time that does not exist: the hour the
// clocks skip when daylight-saving time starts (America/New_York
// 2018-03-11 02:30). Go reads such a time with the earlier offset, an hour
// back (01:30 EST), where it would collide with that hour's own row. Only times within
// hours of an offset change are parsed again to compare wall clocks.
func (m *Mapper) skippedLocal(layout, v string, t time.Time) error {
	_, before := t.Add(-3 * time.Hour).Zone()
	if _, after := t.Add(3 * time.Hour).Zone(); before == after {
		return nil
	}
	wall, err := time.Parse(layout, v)
	if err != nil || wall.Location() != time.UTC {
		return nil // an explicit offset: the time exists
	}
	if wall.Hour() != t.Hour() || wall.Minute() != t.Minute() || wall.Day() != t.Day() {
		return fmt.Errorf("%q does not exist in %s: the clocks skip it when daylight-saving time starts / 该本地时间在夏令时开始时被跳过，不存在", v, m.loc)
	}
	return nil
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
				if err := m.skippedLocal(l, v, t); err != nil {
					return nil, err
				}
				return t.UTC(), nil
			}
		}
		return nil, fmt.Errorf("%q does not match time layout %q / 时间格式不符", v, layouts[0])
	}
	return nil, fmt.Errorf("unsupported type %s", f.Type)
}
