package schemas

import (
	"errors"
	"flag"
	"math"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// baseYAML is a small valid schema that the table-driven tests mutate.
const baseYAML = `name: thing
version: 1
table: raw.thing
doc: {zh: 东西, en: Thing}
event_time: at
partition: {field: at, transform: day}
fields:
  - {name: id, type: string, required: true, doc: {zh: 编号, en: Id}}
  - {name: at, type: timestamp, required: true, doc: {zh: 时间, en: Time}}
  - {name: n, type: int, doc: {zh: 数量, en: Count}}
  - {name: x, type: double, doc: {zh: 数值, en: Value}}
`

func mustParse(t testing.TB, y string) *Schema {
	t.Helper()
	s, err := Parse([]byte(y))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, y)
	}
	return s
}

func TestParseValid(t *testing.T) {
	s := mustParse(t, baseYAML)
	if s.Name != "thing" || s.Version != 1 || len(s.Fields) != 4 {
		t.Fatalf("got %+v", s)
	}
	if s.Index("n") != 2 || s.Index("nope") != -1 || s.EventTimeIndex() != 1 {
		t.Errorf("index: n=%d nope=%d event=%d", s.Index("n"), s.Index("nope"), s.EventTimeIndex())
	}
	if s.Namespace() != "raw" || s.TableName() != "thing" {
		t.Errorf("table split: %q %q", s.Namespace(), s.TableName())
	}
}

// TestParseKey: a key is read with its positions; the built-in
// time-series schemas key on the event time.
func TestParseKey(t *testing.T) {
	s := mustParse(t, strings.Replace(baseYAML, "fields:", "key: [id, at]\nfields:", 1))
	if got := s.KeyIndex(); len(got) != 2 || got[0] != 0 || got[1] != 1 || !s.KeyHasEventTime() {
		t.Fatalf("KeyIndex = %v, KeyHasEventTime = %v", got, s.KeyHasEventTime())
	}
	if mustParse(t, baseYAML).KeyIndex() != nil {
		t.Fatal("a schema without key has key positions")
	}
	reg, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"weather", "crowd_counts", "mobile_signal", "water_telemetry", "traffic_speeds", "enterprises"} {
		if s, _ := reg.Get(n); s == nil || !s.KeyHasEventTime() {
			t.Errorf("%s: key %v lacks the event time", n, s.Key)
		}
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name    string
		old     string // replaced in baseYAML
		new     string
		wantMsg string
	}{
		{"bad name", "name: thing", "name: Bad-Name", "Bad-Name"},
		{"bad version", "version: 1", "version: 0", "version"},
		{"bad table", "table: raw.thing", "table: rawthing", "rawthing"},
		{"bad field name", "{name: n, type: int", "{name: NCount, type: int", "NCount"},
		{"missing zh doc", "doc: {zh: 数量, en: Count}", "doc: {en: Count}", `"n"`},
		{"missing en doc", "doc: {zh: 数值, en: Value}", "doc: {zh: 数值}", `"x"`},
		{"unknown type", "{name: x, type: double", "{name: x, type: decimal", "decimal"},
		{"enum on non-string", "{name: n, type: int,", "{name: n, type: int, enum: [a],", `"n"`},
		{"event_time not a field", "event_time: at", "event_time: when", "when"},
		{"event_time not timestamp", "event_time: at\npartition: {field: at", "event_time: id\npartition: {field: at", `"id"`},
		{"event_time optional", "{name: at, type: timestamp, required: true", "{name: at, type: timestamp, required: false", `"at"`},
		{"duplicate field", "{name: x, type: double", "{name: n, type: double", `"n" appears twice`},
		{"partition field unknown", "partition: {field: at,", "partition: {field: zzz,", "zzz"},
		{"bad partition transform", "transform: day", "transform: hour", "hour"},
		{"unknown key", "version: 1", "version: 1\ncolour: red", "colour"},
		{"not yaml", "fields:", "fields: [", "invalid schema"},
		{"key not a field", "fields:", "key: [id, when]\nfields:", `key field "when" is not a field`},
		{"key field optional", "fields:", "key: [id, at, n]\nfields:", `key field "n" must be required`},
		{"key repeats a field", "fields:", "key: [id, at, id]\nfields:", `key field "id" appears twice`},
		{"key without partition field", "fields:", "key: [id]\nfields:", `must include the partition field "at"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			y := strings.Replace(baseYAML, tt.old, tt.new, 1)
			if y == baseYAML {
				t.Fatalf("test setup: %q not in base schema", tt.old)
			}
			_, err := Parse([]byte(y))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", y)
			}
			if !errors.Is(err, ErrInvalidSchema) {
				t.Errorf("error %v is not ErrInvalidSchema", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
	t.Run("no fields", func(t *testing.T) {
		y := baseYAML[:strings.Index(baseYAML, "fields:")] + "fields: []\n"
		if _, err := Parse([]byte(y)); err == nil || !strings.Contains(err.Error(), "no fields") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestBuiltin(t *testing.T) {
	reg, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"weather", "mobile_signal"} {
		s, err := reg.Get(name)
		if err != nil {
			t.Fatalf("Get(%s): %v", name, err)
		}
		if s.Name != name || s.Table != "raw."+name {
			t.Errorf("%s: name %q table %q", name, s.Name, s.Table)
		}
		if len(reg.Versions(name)) == 0 || reg.Versions(name)[len(reg.Versions(name))-1] != s {
			t.Errorf("%s: Get is not the newest version", name)
		}
	}
	names := reg.Names()
	if len(names) < 2 || !strings.Contains(strings.Join(names, ","), "mobile_signal") {
		t.Errorf("Names = %v", names)
	}
	_, err = reg.Get("nope")
	if !errors.Is(err, ErrUnknownSchema) || !strings.Contains(err.Error(), "weather") {
		t.Errorf("Get(nope) = %v, want ErrUnknownSchema listing known names", err)
	}
	w, _ := reg.Get("weather")
	if w.EventTime != "observed_at" || w.Index("wind_direction") < 0 {
		t.Errorf("weather: %+v", w)
	}
}

// v2 builds the next version of baseYAML after applying replacements.
func v2(t *testing.T, repl ...string) *Schema {
	t.Helper()
	y := strings.Replace(baseYAML, "version: 1", "version: 2", 1)
	for i := 0; i < len(repl); i += 2 {
		n := strings.Replace(y, repl[i], repl[i+1], 1)
		if n == y && repl[i] != repl[i+1] {
			t.Fatalf("test setup: %q not found", repl[i])
		}
		y = n
	}
	return mustParse(t, y)
}

const (
	fieldN = "  - {name: n, type: int, doc: {zh: 数量, en: Count}}\n"
	fieldX = "  - {name: x, type: double, doc: {zh: 数值, en: Value}}\n"
)

func TestCompatible(t *testing.T) {
	prev := mustParse(t, baseYAML)
	ok := []struct {
		name string
		repl []string
	}{
		{"same fields", nil},
		{"optional field at end", []string{fieldX, fieldX + "  - {name: y, type: string, doc: {zh: 新, en: New}}\n"}},
		{"int to long", []string{"{name: n, type: int", "{name: n, type: long"}},
		{"required to optional", []string{"{name: id, type: string, required: true", "{name: id, type: string, required: false"}},
		{"doc change", []string{"en: Count", "en: Number"}},
	}
	for _, tt := range ok {
		t.Run("ok/"+tt.name, func(t *testing.T) {
			if err := Compatible(prev, v2(t, tt.repl...)); err != nil {
				t.Errorf("Compatible: %v", err)
			}
		})
	}
	bad := []struct {
		name string
		repl []string
		want string
	}{
		{"remove field", []string{fieldX, ""}, `"x" removed`},
		{"rename field", []string{"{name: x,", "{name: y,"}, `"x"`},
		{"reorder fields", []string{fieldN + fieldX, fieldX + fieldN}, `"n" moved`},
		{"retype double to string", []string{"{name: x, type: double", "{name: x, type: string"}, `"x" changed type double → string`},
		{"retype long to int", nil, ""}, // filled below
		{"optional to required", []string{"{name: n, type: int,", "{name: n, type: int, required: true,"}, `"n" became required`},
		{"add required field", []string{fieldX, fieldX + "  - {name: y, type: string, required: true, doc: {zh: 新, en: New}}\n"}, `"y" must be optional`},
		{"change table", []string{"table: raw.thing", "table: raw.other"}, "raw.other"},
		{"change event_time", []string{"event_time: at", "event_time: at2", fieldX, fieldX + "  - {name: at2, type: timestamp, required: true, doc: {zh: 时, en: T}}\n"}, "event_time"},
		{"change partition", []string{"transform: day", "transform: month"}, "partitioning"},
		{"same version", []string{"version: 2", "version: 1"}, "version"},
	}
	for _, tt := range bad {
		if tt.name == "retype long to int" {
			continue
		}
		t.Run("bad/"+tt.name, func(t *testing.T) {
			err := Compatible(prev, v2(t, tt.repl...))
			if err == nil {
				t.Fatal("Compatible accepted a breaking change")
			}
			if !errors.Is(err, ErrIncompatible) {
				t.Errorf("%v is not ErrIncompatible", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
	t.Run("bad/long to int", func(t *testing.T) {
		p := v2(t, "{name: n, type: int", "{name: n, type: long")
		n := v2(t, "version: 2", "version: 3")
		if err := Compatible(p, n); !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), `"n"`) {
			t.Errorf("long→int: %v", err)
		}
	})
	t.Run("bad/lists every problem", func(t *testing.T) {
		err := Compatible(prev, v2(t, "{name: x, type: double", "{name: x, type: string", "{name: n, type: int,", "{name: n, type: int, required: true,"))
		if err == nil || !strings.Contains(err.Error(), `"x"`) || !strings.Contains(err.Error(), `"n"`) {
			t.Errorf("err = %v, want both fields named", err)
		}
	})
}

func TestLoad(t *testing.T) {
	v2ok := strings.Replace(baseYAML, "version: 1", "version: 2", 1) + "  - {name: y, type: string, doc: {zh: 新, en: New}}\n"
	v2bad := strings.Replace(strings.Replace(baseYAML, "version: 1", "version: 2", 1), "{name: x, type: double", "{name: x, type: string", 1)
	t.Run("compatible versions", func(t *testing.T) {
		reg, err := Load(fstest.MapFS{
			"thing.v1.yaml": {Data: []byte(baseYAML)},
			"thing.v2.yaml": {Data: []byte(v2ok)},
			"README.md":     {Data: []byte("ignored")},
		})
		if err != nil {
			t.Fatal(err)
		}
		s, _ := reg.Get("thing")
		if s.Version != 2 || len(reg.Versions("thing")) != 2 || reg.Versions("thing")[0].Version != 1 {
			t.Errorf("got v%d, %d versions", s.Version, len(reg.Versions("thing")))
		}
	})
	t.Run("incompatible v2", func(t *testing.T) {
		_, err := Load(fstest.MapFS{
			"thing.v1.yaml": {Data: []byte(baseYAML)},
			"thing.v2.yaml": {Data: []byte(v2bad)},
		})
		if !errors.Is(err, ErrIncompatible) || !strings.Contains(err.Error(), "thing") || !strings.Contains(err.Error(), `"x"`) {
			t.Errorf("err = %v, want ErrIncompatible naming schema thing and field x", err)
		}
	})
	t.Run("file name disagrees", func(t *testing.T) {
		_, err := Load(fstest.MapFS{"other.v1.yaml": {Data: []byte(baseYAML)}})
		if !errors.Is(err, ErrInvalidSchema) || !strings.Contains(err.Error(), "other.v1.yaml") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("invalid file", func(t *testing.T) {
		_, err := Load(fstest.MapFS{"thing.v1.yaml": {Data: []byte("name: thing\n")}})
		if !errors.Is(err, ErrInvalidSchema) || !strings.Contains(err.Error(), "thing.v1.yaml") {
			t.Errorf("err = %v", err)
		}
	})
}

func weather(t testing.TB) *Schema {
	t.Helper()
	reg, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.Get("weather")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// weatherRecord is the first row of the real Guanyuan sample.
func weatherRecord() Record {
	return Record{"Guanyuan", time.Date(2013, 2, 28, 16, 0, 0, 0, time.UTC),
		4.0, 4.0, 14.0, 20.0, 300.0, 69.0, -0.7, 1023.0, -18.8, 0.0, "NNW", 4.4}
}

func TestValidate(t *testing.T) {
	w := weather(t)
	if err := w.Validate(weatherRecord()); err != nil {
		t.Fatalf("valid record: %v", err)
	}
	sparse := make(Record, len(w.Fields))
	sparse[0], sparse[1] = "Guanyuan", time.Now().UTC()
	if err := w.Validate(sparse); err != nil {
		t.Errorf("only required fields: %v", err)
	}
	set := func(name string, v any) Record {
		r := weatherRecord()
		r[w.Index(name)] = v
		return r
	}
	tests := []struct {
		name string
		s    *Schema
		r    Record
		want string
	}{
		{"required missing", w, set("station", nil), "station"},
		{"required time missing", w, set("observed_at", nil), "observed_at"},
		{"wrong go type string", w, set("pm25", "4"), "pm25 wants double, got string"},
		{"int for double", w, set("pm25", int64(4)), "pm25"},
		{"float32", w, set("pm25", float32(4)), "pm25"},
		{"time for string", w, set("station", time.Now()), "station"},
		{"enum violation", w, set("wind_direction", "XYZ"), `"XYZ"`},
		{"enum case", w, set("wind_direction", "nnw"), "wind_direction"},
		{"short record", w, weatherRecord()[:3], "3 values"},
		{"int overflow", mustParse(t, baseYAML), Record{"a", time.Now(), int64(math.MaxInt32) + 1, nil}, "overflows"},
		{"int underflow", mustParse(t, baseYAML), Record{"a", time.Now(), int64(math.MinInt32) - 1, nil}, "overflows"},
		{"int as int", mustParse(t, baseYAML), Record{"a", time.Now(), 3, nil}, "got int"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate(tt.r)
			if !errors.Is(err, ErrInvalidRecord) {
				t.Fatalf("Validate = %v, want ErrInvalidRecord", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
	thing := mustParse(t, baseYAML)
	for _, n := range []int64{math.MaxInt32, math.MinInt32, 0} {
		if err := thing.Validate(Record{"a", time.Now(), n, nil}); err != nil {
			t.Errorf("int %d: %v", n, err)
		}
	}
}

func TestTextString(t *testing.T) {
	if got := (Text{ZH: "气温", EN: "Air temperature"}).String(); got != "气温 (Air temperature)" {
		t.Errorf("got %q", got)
	}
	if got := (Text{ZH: "气温"}).String(); got != "气温" {
		t.Errorf("got %q", got)
	}
}
