// Package schemas holds the canonical, versioned record schemas that every
// source is mapped onto, and the code that loads, validates, encodes and
// converts records of them.
//
// A schema is a YAML file named <name>.v<version>.yaml in this directory
// (embedded in the binary). The newest version of a name is the current one;
// older versions stay so that Compatible can prove that every change between
// consecutive versions is safe for the tables and consumers already using them.
//
// Records are positional: Record[i] holds the value of Fields[i] as one of
// string, int64, float64, bool, time.Time (UTC) or nil. On the wire (Kafka
// values) a record is a flat JSON object keyed by field name; see Encode and
// Decode.
package schemas

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"gopkg.in/yaml.v3"
)

//go:embed *.yaml
var builtin embed.FS

// Type is a canonical field type.
type Type string

// The canonical types. Timestamps are instants (UTC, microsecond precision).
const (
	String    Type = "string"
	Int       Type = "int"
	Long      Type = "long"
	Double    Type = "double"
	Bool      Type = "boolean"
	Timestamp Type = "timestamp"
	Date      Type = "date"
)

var validTypes = map[Type]bool{String: true, Int: true, Long: true, Double: true, Bool: true, Timestamp: true, Date: true}

// Errors returned by validation and compatibility checks; match with errors.Is.
var (
	// ErrInvalidSchema: a schema file is malformed or inconsistent.
	ErrInvalidSchema = errors.New("invalid schema")
	// ErrInvalidRecord: a record does not conform to its schema.
	ErrInvalidRecord = errors.New("记录无效 invalid record")
	// ErrIncompatible: a new schema version breaks readers or tables of the old one.
	ErrIncompatible = errors.New("incompatible schema change")
	// ErrUnknownSchema: no schema of that name is registered.
	ErrUnknownSchema = errors.New("unknown schema")
)

// Text is a label in Chinese first, with English alongside.
type Text struct {
	ZH string `yaml:"zh" json:"zh"`
	EN string `yaml:"en" json:"en"`
}

// String renders "中文 (English)".
func (t Text) String() string {
	if t.EN == "" {
		return t.ZH
	}
	return t.ZH + " (" + t.EN + ")"
}

// Field is one column of a canonical schema.
type Field struct {
	Name     string `yaml:"name"`
	Type     Type   `yaml:"type"`
	Required bool   `yaml:"required"`
	Unit     string `yaml:"unit,omitempty"`
	Doc      Text   `yaml:"doc"`
	// Enum, when set, lists the only values a string field may take.
	Enum []string `yaml:"enum,omitempty"`
}

// Partition says how the lake table is partitioned: by a transform of a field.
type Partition struct {
	Field     string `yaml:"field"`
	Transform string `yaml:"transform"` // day | month | identity
}

// Schema is one version of a canonical entity.
type Schema struct {
	Name      string    `yaml:"name"`
	Version   int       `yaml:"version"`
	Table     string    `yaml:"table"` // namespace.table, e.g. raw.weather
	Doc       Text      `yaml:"doc"`
	EventTime string    `yaml:"event_time"`
	Partition Partition `yaml:"partition"`
	// Key is the natural key: the fields that identify one row (a station
	// and an hour, a sensor and a reading time). A table with a key keeps
	// one row per key; a later version replaces an earlier one (see
	// docs/sources.md, "Natural keys and de-duplication"). Key fields must
	// be required. Empty: rows are only appended.
	Key []string `yaml:"key"`
	// RouteBy names the field whose value keys the records in Kafka, so that
	// every record of one grid cell, venue, sensor or station goes to one
	// partition of the topic (and to one warning engine instance: see
	// docs/roles.md). It must be one of Key's fields, so that later versions
	// of a row follow the first. Empty: records are keyed by their source
	// stream (one file, one partition).
	RouteBy string  `yaml:"route_by"`
	Fields  []Field `yaml:"fields"`

	index map[string]int
}

// CursorField is the metadata column every lake table carries: the source
// cursor (file and line, page token, watermark) the record came from.
const CursorField = "_cursor"

var identRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Parse reads one schema from YAML and checks it.
func Parse(data []byte) (*Schema, error) {
	var s Schema
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidSchema, err)
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return &s, nil
}

func (s *Schema) check() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: schema %q v%d: %s", ErrInvalidSchema, s.Name, s.Version, fmt.Sprintf(format, a...))
	}
	if !identRE.MatchString(s.Name) {
		return bad("name must be lower_snake_case")
	}
	if s.Version < 1 {
		return bad("version must be >= 1")
	}
	if ns, tbl, ok := strings.Cut(s.Table, "."); !ok || !identRE.MatchString(ns) || !identRE.MatchString(tbl) {
		return bad("table %q must be namespace.table", s.Table)
	}
	if len(s.Fields) == 0 {
		return bad("no fields")
	}
	s.index = make(map[string]int, len(s.Fields))
	for i, f := range s.Fields {
		if !identRE.MatchString(f.Name) {
			return bad("field %q: name must be lower_snake_case", f.Name)
		}
		if _, dup := s.index[f.Name]; dup {
			return bad("field %q appears twice", f.Name)
		}
		if !validTypes[f.Type] {
			return bad("field %q: unknown type %q", f.Name, f.Type)
		}
		if f.Doc.ZH == "" || f.Doc.EN == "" {
			return bad("field %q: doc needs both zh and en", f.Name)
		}
		if len(f.Enum) > 0 && f.Type != String {
			return bad("field %q: enum is only for strings", f.Name)
		}
		s.index[f.Name] = i
	}
	et, ok := s.index[s.EventTime]
	if !ok || s.Fields[et].Type != Timestamp || !s.Fields[et].Required {
		return bad("event_time %q must name a required timestamp field", s.EventTime)
	}
	seen := map[string]bool{}
	for _, k := range s.Key {
		i, ok := s.index[k]
		if !ok {
			return bad("key field %q is not a field", k)
		}
		if !s.Fields[i].Required {
			return bad("key field %q must be required", k)
		}
		if seen[k] {
			return bad("key field %q appears twice", k)
		}
		seen[k] = true
	}
	if s.RouteBy != "" && !seen[s.RouteBy] {
		return bad("route_by %q must be one of the key fields %v (the versions of a row must share a partition)", s.RouteBy, s.Key)
	}
	if len(s.Key) > 0 && s.Partition.Field != "" && !seen[s.Partition.Field] {
		// One key, one partition: a later version is looked for only in its
		// own partition.
		return bad("key %v must include the partition field %q", s.Key, s.Partition.Field)
	}
	if s.Partition.Field != "" {
		if _, ok := s.index[s.Partition.Field]; !ok {
			return bad("partition field %q is not a field", s.Partition.Field)
		}
		switch s.Partition.Transform {
		case "day", "month", "identity":
		default:
			return bad("partition transform %q: want day, month or identity", s.Partition.Transform)
		}
	}
	return nil
}

// Index returns the position of a field, or -1.
func (s *Schema) Index(name string) int {
	if i, ok := s.index[name]; ok {
		return i
	}
	return -1
}

// RouteIndex is the position of the RouteBy field (-1: records are keyed
// by their source stream).
func (s *Schema) RouteIndex() int {
	if s.RouteBy == "" {
		return -1
	}
	return s.index[s.RouteBy]
}

// KeyIndex is the positions of the key fields (nil without a key).
func (s *Schema) KeyIndex() []int {
	if len(s.Key) == 0 {
		return nil
	}
	out := make([]int, len(s.Key))
	for i, k := range s.Key {
		out[i] = s.index[k]
	}
	return out
}

// KeyHasEventTime reports whether the event time is part of the key, so
// two rows with the same key share a partition and an event time.
func (s *Schema) KeyHasEventTime() bool {
	for _, k := range s.Key {
		if k == s.EventTime {
			return true
		}
	}
	return false
}

// EventTimeIndex is the position of the event-time field.
func (s *Schema) EventTimeIndex() int { return s.index[s.EventTime] }

// Namespace and TableName split Table.
func (s *Schema) Namespace() string { ns, _, _ := strings.Cut(s.Table, "."); return ns }

// TableName is the table part of Table.
func (s *Schema) TableName() string { _, t, _ := strings.Cut(s.Table, "."); return t }

// Registry holds every version of every schema.
type Registry struct {
	versions map[string][]*Schema // ascending by version
}

var fileRE = regexp.MustCompile(`^([a-z][a-z0-9_]*)\.v([0-9]+)\.yaml$`)

// Builtin loads the schemas shipped in this package.
func Builtin() (*Registry, error) { return Load(builtin) }

// Load reads every <name>.v<N>.yaml at the root of fsys and checks that
// consecutive versions of each name are compatible.
func Load(fsys fs.FS) (*Registry, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("load schemas: %w", err)
	}
	r := &Registry{versions: map[string][]*Schema{}}
	for _, e := range entries {
		m := fileRE.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		data, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("load schema %s: %w", e.Name(), err)
		}
		s, err := Parse(data)
		if err != nil {
			return nil, fmt.Errorf("load schema %s: %w", e.Name(), err)
		}
		if v, _ := strconv.Atoi(m[2]); s.Name != m[1] || s.Version != v {
			return nil, fmt.Errorf("%w: file %s declares %s v%d", ErrInvalidSchema, path.Base(e.Name()), s.Name, s.Version)
		}
		r.versions[s.Name] = append(r.versions[s.Name], s)
	}
	for name, vs := range r.versions {
		sort.Slice(vs, func(i, j int) bool { return vs[i].Version < vs[j].Version })
		for i := 1; i < len(vs); i++ {
			if err := Compatible(vs[i-1], vs[i]); err != nil {
				return nil, fmt.Errorf("schema %s: %w", name, err)
			}
		}
	}
	return r, nil
}

// Get returns the current (newest) version of a schema.
func (r *Registry) Get(name string) (*Schema, error) {
	vs := r.versions[name]
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknownSchema, name, strings.Join(r.Names(), ", "))
	}
	return vs[len(vs)-1], nil
}

// Versions returns every version of a schema, oldest first.
func (r *Registry) Versions(name string) []*Schema { return r.versions[name] }

// Names lists the registered schema names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.versions))
	for n := range r.versions {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Compatible reports whether next may replace prev for existing tables and
// consumers: fields may be added only as optional fields at the end; no field
// may be removed, renamed, reordered, retyped (except int→long) or made
// required; event time and partitioning may not change. The error lists every
// breaking change and what to do instead.
func Compatible(prev, next *Schema) error {
	var problems []string
	if next.Version <= prev.Version {
		problems = append(problems, fmt.Sprintf("version %d must be greater than %d", next.Version, prev.Version))
	}
	if next.Table != prev.Table {
		problems = append(problems, fmt.Sprintf("table changed from %s to %s (create a new schema name instead)", prev.Table, next.Table))
	}
	if next.EventTime != prev.EventTime {
		problems = append(problems, fmt.Sprintf("event_time changed from %s to %s", prev.EventTime, next.EventTime))
	}
	if next.Partition != prev.Partition {
		problems = append(problems, "partitioning changed (partition evolution is not supported by this check)")
	}
	if next.RouteBy != prev.RouteBy {
		problems = append(problems, fmt.Sprintf("route_by changed from %q to %q (records already in Kafka are keyed the old way; create a new source)", prev.RouteBy, next.RouteBy))
	}
	for i, pf := range prev.Fields {
		if i >= len(next.Fields) {
			problems = append(problems, fmt.Sprintf("field %q removed (keep it, optional, and stop filling it)", pf.Name))
			continue
		}
		nf := next.Fields[i]
		if nf.Name != pf.Name {
			if next.Index(pf.Name) < 0 {
				problems = append(problems, fmt.Sprintf("field %q removed or renamed to %q (add a new optional field instead)", pf.Name, nf.Name))
			} else {
				problems = append(problems, fmt.Sprintf("field %q moved (new fields go at the end)", pf.Name))
			}
			continue
		}
		if nf.Type != pf.Type && !(pf.Type == Int && nf.Type == Long) {
			problems = append(problems, fmt.Sprintf("field %q changed type %s → %s (only int → long is safe)", pf.Name, pf.Type, nf.Type))
		}
		if nf.Required && !pf.Required {
			problems = append(problems, fmt.Sprintf("field %q became required (old records may lack it)", pf.Name))
		}
	}
	for _, nf := range next.Fields[min(len(prev.Fields), len(next.Fields)):] {
		if nf.Required {
			problems = append(problems, fmt.Sprintf("new field %q must be optional (required: false)", nf.Name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %s v%d → v%d: %s", ErrIncompatible, prev.Name, prev.Version, next.Version, strings.Join(problems, "; "))
	}
	return nil
}

// Record is one row, positionally aligned with Schema.Fields.
type Record []any

// Validate checks a record's types, required fields and enums.
func (s *Schema) Validate(r Record) error {
	if len(r) != len(s.Fields) {
		return fmt.Errorf("%w: %d values for %d fields", ErrInvalidRecord, len(r), len(s.Fields))
	}
	for i, f := range s.Fields {
		v := r[i]
		if v == nil {
			if f.Required {
				return fmt.Errorf("%w: %s (%s) is required / 必填字段缺失", ErrInvalidRecord, f.Name, f.Doc.ZH)
			}
			continue
		}
		ok := false
		switch f.Type {
		case String:
			var sv string
			sv, ok = v.(string)
			if ok && f.Required && strings.TrimSpace(sv) == "" {
				return fmt.Errorf("%w: %s (%s) is required but empty / 必填字段为空", ErrInvalidRecord, f.Name, f.Doc.ZH)
			}
			if ok && len(f.Enum) > 0 && !contains(f.Enum, sv) {
				return fmt.Errorf("%w: %s = %q is not one of %s / 不是允许的取值之一", ErrInvalidRecord, f.Name, sv, strings.Join(f.Enum, ", "))
			}
		case Int:
			var iv int64
			iv, ok = v.(int64)
			if ok && (iv < -1<<31 || iv > 1<<31-1) {
				return fmt.Errorf("%w: %s = %d overflows int / 超出整数范围", ErrInvalidRecord, f.Name, iv)
			}
		case Long:
			_, ok = v.(int64)
		case Double:
			_, ok = v.(float64)
		case Bool:
			_, ok = v.(bool)
		case Timestamp, Date:
			_, ok = v.(time.Time)
		}
		if !ok {
			return fmt.Errorf("%w: %s wants %s, got %T / 类型不符", ErrInvalidRecord, f.Name, f.Type, v)
		}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if x == y {
			return true
		}
	}
	return false
}

// bilingualRE is a label written "中文 (English)".
var bilingualRE = regexp.MustCompile(`^(.*?)\s*\(([^()]*)\)\s*$`)

// SplitBilingual reads a label written in both languages — "中文 / English"
// (the models' table comments) or "中文 (English)" — into its two halves;
// a label in one language is both.
func SplitBilingual(s string) Text {
	s = strings.TrimSpace(s)
	if zh, en, ok := strings.Cut(s, " / "); ok && hasHan(zh) && !hasHan(en) {
		return Text{ZH: strings.TrimSpace(zh), EN: strings.TrimSpace(en)}
	}
	if m := bilingualRE.FindStringSubmatch(s); m != nil && hasHan(m[1]) && !hasHan(m[2]) {
		return Text{ZH: m[1], EN: m[2]}
	}
	return Text{ZH: s, EN: s}
}

func hasHan(s string) bool {
	for _, r := range s {
		if unicode.Is(unicode.Han, r) {
			return true
		}
	}
	return false
}
