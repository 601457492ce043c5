package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

const allTypesYAML = `name: all_types
version: 1
table: raw.all_types
doc: {zh: 全类型, en: All types}
event_time: ts
fields:
  - {name: s, type: string, doc: {zh: 字符串, en: String}}
  - {name: i, type: int, doc: {zh: 整数, en: Int}}
  - {name: l, type: long, doc: {zh: 长整数, en: Long}}
  - {name: d, type: double, doc: {zh: 小数, en: Double}}
  - {name: b, type: boolean, doc: {zh: 布尔, en: Bool}}
  - {name: ts, type: timestamp, required: true, doc: {zh: 时间, en: Timestamp}}
  - {name: dt, type: date, doc: {zh: 日期, en: Date}}
`

func allTypes(t testing.TB) *Schema {
	t.Helper()
	s, err := Parse([]byte(allTypesYAML))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// equalRecords compares records, times with Equal.
func equalRecords(a, b Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		ta, ok1 := a[i].(time.Time)
		tb, ok2 := b[i].(time.Time)
		if ok1 && ok2 {
			if !ta.Equal(tb) {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	s := allTypes(t)
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	day := time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		r    Record
	}{
		{"all set", Record{"hello", int64(-5), int64(1) << 40, 3.25, true, ts, day}},
		{"nils", Record{nil, nil, nil, nil, nil, ts, nil}},
		{"false and zero", Record{"", int64(0), int64(0), 0.0, false, ts, day}},
		{"quotes and backslashes", Record{`say "hi" \ back\slash \"`, nil, nil, nil, nil, ts, nil}},
		{"newlines and tabs", Record{"a\nb\r\nc\td", nil, nil, nil, nil, ts, nil}},
		{"chinese", Record{"官园站 西城区 PM2.5 µg/m³", nil, nil, nil, nil, ts, nil}},
		{"control chars", Record{"\x00\x01\x1f\x7f\b\f", nil, nil, nil, nil, ts, nil}},
		{"emoji", Record{"😀 ok", nil, nil, nil, nil, ts, nil}},
		{"slash", Record{"a/b</script>", nil, nil, nil, nil, ts, nil}},
		{"extreme numbers", Record{"x", int64(math.MinInt32), int64(math.MinInt64), math.MaxFloat64, nil, ts, nil}},
		{"tiny double", Record{"x", int64(math.MaxInt32), int64(math.MaxInt64), math.SmallestNonzeroFloat64, nil, ts, nil}},
		{"negative double", Record{"x", nil, nil, -1e-7, nil, ts, nil}},
		{"time with zone", Record{nil, nil, nil, nil, nil, time.Date(2013, 3, 1, 0, 0, 0, 0, time.FixedZone("CST", 8*3600)), nil}},
		{"whole seconds", Record{nil, nil, nil, nil, nil, time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC), nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Validate(tt.r); err != nil {
				t.Fatalf("test record invalid: %v", err)
			}
			b := s.Encode(nil, tt.r)
			if !json.Valid(b) {
				t.Fatalf("Encode produced invalid JSON: %s", b)
			}
			// encoding/json agrees on the strings.
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if tt.r[0] != nil && m["s"] != tt.r[0] {
				t.Errorf("encoding/json reads s = %q, want %q", m["s"], tt.r[0])
			}
			got, err := s.Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if !equalRecords(got, tt.r) {
				t.Errorf("round trip:\n got %#v\nwant %#v\njson %s", got, tt.r, b)
			}
			if tv, ok := got[5].(time.Time); !ok || tv.Location() != time.UTC {
				t.Errorf("decoded timestamp not in UTC: %v", got[5])
			}
		})
	}
}

func TestEncodeNaNInfNull(t *testing.T) {
	s := allTypes(t)
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, x := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		b := s.Encode(nil, Record{nil, nil, nil, x, nil, ts, nil})
		if !bytes.Contains(b, []byte(`"d":null`)) || !json.Valid(b) {
			t.Errorf("%v encoded as %s", x, b)
		}
	}
}

func TestEncodeAppends(t *testing.T) {
	s := allTypes(t)
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	b := s.Encode([]byte("prefix:"), Record{"a", nil, nil, nil, nil, ts, nil})
	if !bytes.HasPrefix(b, []byte("prefix:{")) {
		t.Errorf("got %s", b)
	}
	want := `{"s":"a","i":null,"l":null,"d":null,"b":null,"ts":"2024-01-01T00:00:00Z","dt":null}`
	if string(b[len("prefix:"):]) != want {
		t.Errorf("got  %s\nwant %s", b[len("prefix:"):], want)
	}
}

func TestEncodeInvalidUTF8(t *testing.T) {
	s := allTypes(t)
	ts := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	b := s.Encode(nil, Record{"a\xffb", nil, nil, nil, nil, ts, nil})
	if !json.Valid(b) {
		t.Fatalf("invalid JSON %s", b)
	}
	r, err := s.Decode(b)
	if err != nil || r[0] != "a\uFFFDb" {
		t.Errorf("got %q, %v", r[0], err)
	}
}

func TestDecode(t *testing.T) {
	s := allTypes(t)
	ts := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want Record
	}{
		{"unknown scalar keys", `{"zz":1,"s":"a","yy":"q\"}","xx":true,"ww":null,"ts":"2024-05-06T07:08:09Z","vv":-1.5e3}`,
			Record{"a", nil, nil, nil, nil, ts, nil}},
		{"unknown nested object", `{"extra":{"a":[1,2,{"b":"}]"}],"c":{}},"s":"a","ts":"2024-05-06T07:08:09Z"}`,
			Record{"a", nil, nil, nil, nil, ts, nil}},
		{"unknown array", `{"arr":[[],[{}],"]",3],"s":"a","ts":"2024-05-06T07:08:09Z"}`,
			Record{"a", nil, nil, nil, nil, ts, nil}},
		{"missing keys are nil", `{"ts":"2024-05-06T07:08:09Z"}`, Record{nil, nil, nil, nil, nil, ts, nil}},
		{"empty object", `{}`, Record{nil, nil, nil, nil, nil, nil, nil}},
		{"whitespace", " \n{ \"s\" : \"a\" ,\t\"ts\":\r\n\"2024-05-06T07:08:09Z\" } \n", Record{"a", nil, nil, nil, nil, ts, nil}},
		{"solidus escape", `{"s":"a\/b","ts":"2024-05-06T07:08:09Z"}`, Record{"a/b", nil, nil, nil, nil, ts, nil}},
		{"unicode escape", `{"s":"\u5b98\u56ed \u00e9","ts":"2024-05-06T07:08:09Z"}`, Record{"官园 é", nil, nil, nil, nil, ts, nil}},
		{"unicode escape with solidus", `{"s":"\u5b98\/\u56ed\n","ts":"2024-05-06T07:08:09Z"}`, Record{"官/园\n", nil, nil, nil, nil, ts, nil}},
		{"escapes b f", `{"s":"\b\f\t\r\n\\\"","ts":"2024-05-06T07:08:09Z"}`, Record{"\b\f\t\r\n\\\"", nil, nil, nil, nil, ts, nil}},
		{"escaped key", `{"\u0073":"a","ts":"2024-05-06T07:08:09Z"}`, Record{"a", nil, nil, nil, nil, ts, nil}},
		{"double forms", `{"d":1E2,"ts":"2024-05-06T07:08:09Z"}`, Record{nil, nil, nil, 100.0, nil, ts, nil}},
		{"integer for double", `{"d":-7,"ts":"2024-05-06T07:08:09Z"}`, Record{nil, nil, nil, -7.0, nil, ts, nil}},
		{"time offset to UTC", `{"ts":"2013-03-01T00:00:00+08:00"}`, Record{nil, nil, nil, nil, nil, time.Date(2013, 2, 28, 16, 0, 0, 0, time.UTC), nil}},
		{"date", `{"dt":"2024-02-29","ts":"2024-05-06T07:08:09Z"}`, Record{nil, nil, nil, nil, nil, ts, time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)}},
		{"duplicate key last wins", `{"s":"a","s":"b","ts":"2024-05-06T07:08:09Z"}`, Record{"b", nil, nil, nil, nil, ts, nil}},
		{"bools", `{"b":false,"ts":"2024-05-06T07:08:09Z"}`, Record{nil, nil, nil, nil, false, ts, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode(%s): %v", tt.in, err)
			}
			if !equalRecords(got, tt.want) {
				t.Errorf("got  %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	s := allTypes(t)
	bad := []struct{ name, in string }{
		{"empty", ``},
		{"array", `[]`},
		{"not closed", `{"s":"a"`},
		{"trailing comma", `{"s":"a",}`},
		{"missing colon", `{"s" "a"}`},
		{"unquoted key", `{s:"a"}`},
		{"unterminated string", `{"s":"abc}`},
		{"unterminated escaped string", `{"s":"a\"}`},
		{"dangling backslash", `{"s":"a\`},
		{"trailing data", `{"s":"a"} x`},
		{"two objects", `{"s":"a"}{}`},
		{"string for int", `{"i":"1"}`},
		{"fraction for int", `{"i":1.5}`},
		{"exponent for long", `{"l":1e3}`},
		{"long overflow", `{"l":9223372036854775808}`},
		{"word for double", `{"d":NaN}`},
		{"string for double", `{"d":"1"}`},
		{"bad bool", `{"b":yes}`},
		{"number for bool", `{"b":1}`},
		{"bad timestamp", `{"ts":"2024-05-06 07:08:09"}`},
		{"number timestamp", `{"ts":1700000000}`},
		{"bad date", `{"dt":"2024-02-30"}`},
		{"bad escape", `{"s":"\q"}`},
		{"short unicode escape", `{"s":"\u12"}`},
		{"bad unicode escape", `{"s":"\uZZZZ"}`},
		{"unterminated unknown container", `{"x":[1,2`},
		{"unterminated unknown string", `{"x":"abc`},
		{"bad unknown value", `{"x":}`},
		{"missing value at end", `{"x":`},
		{"unknown value then garbage", `{"x":1 2}`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode(%s) accepted malformed input", tt.in)
			}
			if !errors.Is(err, ErrInvalidRecord) {
				t.Errorf("error %v is not ErrInvalidRecord", err)
			}
		})
	}
}

func TestDecodeEmptyObjectTrailingData(t *testing.T) {
	s := allTypes(t)
	for _, in := range []string{`{}{}`, `{} x`, `{}]`} {
		if _, err := s.Decode([]byte(in)); err == nil {
			t.Fatalf("regression: Decode(%s) accepts trailing data after an empty object: schemas/codec.go DecodeInto returns on the first '}' without the trailing-data check", in)
		}
	}
}

func TestDecodeIntoResets(t *testing.T) {
	s := allTypes(t)
	r := Record{"old", int64(1), int64(2), 3.0, true, time.Now(), time.Now()}
	if err := s.DecodeInto(r, []byte(`{"i":7}`)); err != nil {
		t.Fatal(err)
	}
	want := Record{nil, int64(7), nil, nil, nil, nil, nil}
	if !equalRecords(r, want) {
		t.Errorf("got %#v", r)
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update if the change is intended):\n got: %s\nwant: %s", path, got, want)
	}
}

func TestWeatherJSONGolden(t *testing.T) {
	w := weather(t)
	r := weatherRecord()
	b := w.Encode(nil, r)
	golden(t, "weather.record.golden.json", append(b, '\n'))
	got, err := w.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !equalRecords(got, r) {
		t.Errorf("round trip: %#v", got)
	}
	if err := w.Validate(got); err != nil {
		t.Error(err)
	}
}

func TestIcebergSchemaGolden(t *testing.T) {
	w := weather(t)
	is := w.IcebergSchema()
	golden(t, "weather.iceberg.golden", []byte(is.String()+"\n"))
	fields := is.Fields()
	if len(fields) != len(w.Fields)+1 || fields[len(fields)-1].Name != CursorField {
		t.Fatalf("fields: %v", fields)
	}
	for i, f := range w.Fields {
		if fields[i].ID != FieldID(i) || fields[i].Name != f.Name || fields[i].Required {
			t.Errorf("field %d: %+v", i, fields[i])
		}
		if !strings.Contains(fields[i].Doc, f.Doc.ZH) || !strings.Contains(fields[i].Doc, f.Doc.EN) {
			t.Errorf("field %s doc %q lacks zh/en", f.Name, fields[i].Doc)
		}
	}
	if pm := fields[w.Index("pm25")]; !strings.Contains(pm.Doc, "[µg/m³]") {
		t.Errorf("pm25 doc %q lacks unit", pm.Doc)
	}
}

func TestPartitionSpec(t *testing.T) {
	w := weather(t)
	spec := w.PartitionSpec()
	if spec.NumFields() != 1 {
		t.Fatalf("spec %v has %d fields", spec, spec.NumFields())
	}
	pf := spec.Field(0)
	if pf.Transform.String() != "day" || pf.Name != "observed_at_day" || pf.FieldID != PartitionFieldID {
		t.Errorf("partition field %+v", pf)
	}
	if len(pf.SourceIDs) != 1 || pf.SourceIDs[0] != FieldID(w.Index("observed_at")) {
		t.Errorf("source ids %v", pf.SourceIDs)
	}
	un := mustParse(t, strings.Replace(baseYAML, "partition: {field: at, transform: day}\n", "", 1))
	unSpec := un.PartitionSpec()
	if n := unSpec.NumFields(); n != 0 {
		t.Errorf("unpartitioned spec has %d fields", n)
	}
	mo := mustParse(t, strings.Replace(baseYAML, "transform: day", "transform: month", 1))
	moSpec := mo.PartitionSpec()
	if tr := moSpec.Field(0).Transform.String(); tr != "month" {
		t.Errorf("month transform = %s", tr)
	}
}

func TestParquetSchemaIDs(t *testing.T) {
	w := weather(t)
	ids := IDs{CursorField: 900}
	for i, f := range w.Fields {
		ids[f.Name] = 100 + i*7 // deliberately not FieldID(i)
	}
	ps := w.ParquetSchema(ids)
	if got := len(ps.Fields()); got != len(w.Fields)+1 {
		t.Fatalf("%d columns", got)
	}
	for _, f := range ps.Fields() {
		want, ok := ids[f.Name()]
		if !ok {
			t.Errorf("unexpected column %s", f.Name())
			continue
		}
		if f.ID() != want {
			t.Errorf("column %s id %d, want %d", f.Name(), f.ID(), want)
		}
		if !f.Optional() {
			t.Errorf("column %s not optional", f.Name())
		}
	}
	cols := w.ParquetColumns(ps)
	seen := map[int]bool{}
	for i, c := range cols {
		name := CursorField
		if i < len(w.Fields) {
			name = w.Fields[i].Name
		}
		leaf, ok := ps.Lookup(name)
		if !ok || leaf.ColumnIndex != c || seen[c] {
			t.Errorf("ParquetColumns[%d] (%s) = %d", i, name, c)
		}
		seen[c] = true
	}
	as := w.ArrowSchema(ids)
	for _, f := range as.Fields() {
		v, ok := f.Metadata.GetValue("PARQUET:field_id")
		if !ok || v != strconv.Itoa(ids[f.Name]) {
			t.Errorf("arrow field %s id %q", f.Name, v)
		}
	}
}

// TestDecodeSurrogatePair: JSON writers other than Encode (e.g. with ASCII
// escaping) write characters outside the BMP as a \uD83D\uDE00 pair.
func TestDecodeSurrogatePair(t *testing.T) {
	s := allTypes(t)
	r, err := s.Decode([]byte(`{"s":"\ud83d\ude00 \u5b98","ts":"2024-05-06T07:08:09Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	if r[0] != "😀 官" {
		t.Fatalf("regression: surrogate pair decoded as %q, want %q (schemas/codec.go unquoteJSON appends each \\u half as its own rune)", r[0], "😀 官")
	}
}

// TestDecodeRejectsNonJSONEscapes: strings are unquoted with strconv.Unquote
// first, which also accepts Go-only escapes.
func TestDecodeRejectsNonJSONEscapes(t *testing.T) {
	s := allTypes(t)
	var accepted []string
	for _, in := range []string{`\x41`, `\a`, `\v`, `\101`, `\U0001F600`} {
		if _, err := s.Decode([]byte(`{"s":"` + in + `"}`)); err == nil {
			accepted = append(accepted, in)
		}
	}
	if len(accepted) > 0 {
		t.Fatalf("regression: Decode accepts Go-only string escapes %v that are not JSON", accepted)
	}
}

// TestValidateEmptyRequired: a required text field that is empty (or only
// blanks) is refused like a missing one, with a bilingual reason.
func TestValidateEmptyRequired(t *testing.T) {
	s := weather(t)
	st := s.Index("station")
	if !s.Fields[st].Required || s.Fields[st].Type != String {
		t.Fatalf("weather.station is not a required string: %+v", s.Fields[st])
	}
	r := make(Record, len(s.Fields))
	r[s.Index("observed_at")] = time.Date(2013, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, v := range []string{"", "  "} {
		r[st] = v
		err := s.Validate(r)
		if !errors.Is(err, ErrInvalidRecord) || !strings.Contains(err.Error(), "station") || !strings.Contains(err.Error(), "必填字段为空") {
			t.Errorf("station %q: %v", v, err)
		}
	}
	r[st] = "官园"
	if err := s.Validate(r); err != nil {
		t.Fatalf("valid record refused: %v", err)
	}
}
