package mapping

import (
	"errors"
	"strings"
	"testing"
	"time"

	"citybrain/schemas"
)

const callsYAML = `name: calls
version: 1
table: raw.calls
doc: {zh: 报警, en: Calls}
event_time: reported_at
fields:
  - {name: id, type: long, required: true, doc: {zh: 编号, en: Id}}
  - {name: reported_at, type: timestamp, required: true, doc: {zh: 报警时间, en: Reported}}
  - {name: category, type: string, doc: {zh: 类别, en: Category}, enum: [medical, fire, traffic]}
  - {name: source, type: string, doc: {zh: 来源, en: Source}}
  - {name: priority, type: int, doc: {zh: 优先级, en: Priority}}
  - {name: score, type: double, doc: {zh: 分数, en: Score}}
  - {name: urgent, type: boolean, doc: {zh: 紧急, en: Urgent}}
  - {name: day, type: date, doc: {zh: 日期, en: Day}}
`

func calls(t *testing.T) *schemas.Schema {
	t.Helper()
	s, err := schemas.Parse([]byte(callsYAML))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func bind(t *testing.T, spec Spec, header []string) (*schemas.Schema, *Bound) {
	t.Helper()
	s := calls(t)
	m, err := New(s, spec)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b, err := m.Bind(header)
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	return s, b
}

func TestPartsWithTimezone(t *testing.T) {
	header := []string{"id", "y", "mo", "d", "h", "mi", "s"}
	parts := map[string]string{"year": "y", "month": "mo", "day": "d", "hour": "h", "minute": "mi", "second": "s"}
	tests := []struct {
		tz   string
		row  []string
		want time.Time
	}{
		{"", []string{"1", "2013", "3", "1", "0", "0", "0"}, time.Date(2013, 2, 28, 16, 0, 0, 0, time.UTC)},
		{"Asia/Shanghai", []string{"1", "2013", "3", "1", "0", "30", "15"}, time.Date(2013, 2, 28, 16, 30, 15, 0, time.UTC)},
		{"UTC", []string{"1", "2013", "3", "1", "0", "0", "0"}, time.Date(2013, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"America/New_York", []string{"1", "2023", "7", "4", "12", "0", "0"}, time.Date(2023, 7, 4, 16, 0, 0, 0, time.UTC)},
		{"Asia/Shanghai", []string{" 1 ", " 2016 ", "02", "29", "23", "59", "59"}, time.Date(2016, 2, 29, 15, 59, 59, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.tz+"/"+strings.Join(tt.row, "-"), func(t *testing.T) {
			s, b := bind(t, Spec{Timezone: tt.tz, Fields: map[string]FieldSpec{
				"id": {Column: "id"}, "reported_at": {Parts: parts},
			}}, header)
			r, err := b.Map(tt.row)
			if err != nil {
				t.Fatal(err)
			}
			got := r[s.Index("reported_at")].(time.Time)
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("invalid date", func(t *testing.T) {
		_, b := bind(t, Spec{Fields: map[string]FieldSpec{"id": {Column: "id"}, "reported_at": {Parts: parts}}}, header)
		for _, row := range [][]string{
			{"1", "2013", "2", "30", "0", "0", "0"},
			{"1", "2013", "13", "1", "0", "0", "0"},
			{"1", "2013", "1", "1", "24", "0", "0"},
		} {
			if _, err := b.Map(row); err == nil || !strings.Contains(err.Error(), "not a valid time") {
				t.Errorf("%v: err = %v", row, err)
			}
		}
		if _, err := b.Map([]string{"1", "x", "1", "1", "0", "0", "0"}); err == nil || !strings.Contains(err.Error(), "reported_at") {
			t.Errorf("non-numeric part: %v", err)
		}
	})
	t.Run("null part makes the field missing", func(t *testing.T) {
		_, b := bind(t, Spec{NullValues: []string{"NA"}, Fields: map[string]FieldSpec{"id": {Column: "id"}, "reported_at": {Parts: parts}}}, header)
		_, err := b.Map([]string{"1", "NA", "1", "1", "0", "0", "0"})
		if !errors.Is(err, schemas.ErrInvalidRecord) || !strings.Contains(err.Error(), "reported_at") {
			t.Errorf("err = %v, want required reported_at missing", err)
		}
	})
}

func TestLayouts(t *testing.T) {
	tests := []struct {
		layout, in string
		want       time.Time
	}{
		{"01/02/2006 03:04:05 PM", "03/01/2013 01:02:03 PM", time.Date(2013, 3, 1, 5, 2, 3, 0, time.UTC)},
		{"01/02/2006 03:04:05 PM", "12/31/2020 12:00:00 AM", time.Date(2020, 12, 30, 16, 0, 0, 0, time.UTC)},
		{"1/2/06 15:04", "3/1/13 0:05", time.Date(2013, 2, 28, 16, 5, 0, 0, time.UTC)},
		{"1/2/06 15:04", "12/25/19 23:59", time.Date(2019, 12, 25, 15, 59, 0, 0, time.UTC)},
		{"", "2013-03-01 08:00:00", time.Date(2013, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"", "2013-03-01T08:00:00Z", time.Date(2013, 3, 1, 8, 0, 0, 0, time.UTC)},
		{"", "2013-03-01T08:00:00+01:00", time.Date(2013, 3, 1, 7, 0, 0, 0, time.UTC)},
		{"", "2013/03/01 08:00:00", time.Date(2013, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"", "2013-03-01", time.Date(2013, 2, 28, 16, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.layout+"/"+tt.in, func(t *testing.T) {
			s, b := bind(t, Spec{Fields: map[string]FieldSpec{
				"id": {Index: ptr(0)}, "reported_at": {Index: ptr(1), Layout: tt.layout},
			}}, nil)
			r, err := b.Map([]string{"7", tt.in})
			if err != nil {
				t.Fatal(err)
			}
			if got := r[s.Index("reported_at")].(time.Time); !got.Equal(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("mismatch names layout and column", func(t *testing.T) {
		_, b := bind(t, Spec{Fields: map[string]FieldSpec{
			"id": {Column: "id"}, "reported_at": {Column: "Created Date", Layout: "01/02/2006 03:04:05 PM"},
		}}, []string{"id", "Created Date"})
		_, err := b.Map([]string{"1", "2013-03-01 13:00"})
		for _, want := range []string{"Created Date", "2013-03-01 13:00", "01/02/2006 03:04:05 PM"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want mention of %q", err, want)
			}
		}
	})
	t.Run("date field", func(t *testing.T) {
		s, b := bind(t, Spec{Fields: map[string]FieldSpec{
			"id": {Index: ptr(0)}, "reported_at": {Index: ptr(1)}, "day": {Index: ptr(1)},
		}}, nil)
		r, err := b.Map([]string{"1", "2013-03-01 01:00:00"})
		if err != nil {
			t.Fatal(err)
		}
		if got := r[s.Index("day")]; got != time.Date(2013, 3, 1, 0, 0, 0, 0, time.UTC) {
			t.Errorf("day = %v", got)
		}
	})
}

func TestEnumDefaultNullsValue(t *testing.T) {
	spec := Spec{
		NullValues: []string{"NA", "-"},
		Fields: map[string]FieldSpec{
			"id":          {Column: "id"},
			"reported_at": {Column: "at"},
			"category":    {Column: "type", Enum: map[string]string{"EMS": "medical", "EMS: FALL": "medical", "Fire": "fire", "Traffic": "traffic"}, EnumPrefix: true},
			"source":      {Value: ptr("montgomery")},
			"priority":    {Column: "prio", Default: ptr("3")},
			"score":       {Column: "score"},
			"urgent":      {Column: "urgent"},
		},
	}
	header := []string{"id", "at", "type", "prio", "score", "urgent"}
	s, b := bind(t, spec, header)
	at := time.Date(2015, 12, 10, 9, 40, 0, 0, time.UTC)
	tests := []struct {
		name string
		row  []string
		want map[string]any
	}{
		{"prefix", []string{"1", "2015-12-10 17:40:00", "EMS: BACK PAINS/INJURY", "1", "2.5", "yes"},
			map[string]any{"id": int64(1), "reported_at": at, "category": "medical", "source": "montgomery", "priority": int64(1), "score": 2.5, "urgent": true}},
		{"longest prefix", []string{"1", "2015-12-10 17:40:00", "EMS: FALL VICTIM", "1", "2.5", "是"},
			map[string]any{"category": "medical", "urgent": true}},
		{"exact", []string{"1", "2015-12-10 17:40:00", "Fire", "1", "2.5", "0"},
			map[string]any{"category": "fire", "urgent": false}},
		{"prefix Traffic", []string{"1", "2015-12-10 17:40:00", "Traffic: VEHICLE ACCIDENT -", "1", "2.5", "F"},
			map[string]any{"category": "traffic", "urgent": false}},
		{"default when null", []string{"2", "2015-12-10 17:40:00", "Fire", "NA", "NA", "-"},
			map[string]any{"priority": int64(3), "score": nil, "urgent": nil}},
		{"default when empty", []string{"2", "2015-12-10 17:40:00", "Fire", " ", "", ""},
			map[string]any{"priority": int64(3), "score": nil, "urgent": nil}},
		{"spaces trimmed", []string{" 3 ", " 2015-12-10 17:40:00 ", "Fire", " 7 ", " 1e2 ", " TRUE "},
			map[string]any{"id": int64(3), "priority": int64(7), "score": 100.0, "urgent": true}},
		{"integral float for int", []string{"4.0", "2015-12-10 17:40:00", "Fire", "2", "1", "n"},
			map[string]any{"id": int64(4)}},
		{"null category", []string{"5", "2015-12-10 17:40:00", "NA", "2", "1", "n"},
			map[string]any{"category": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := b.Map(tt.row)
			if err != nil {
				t.Fatal(err)
			}
			for name, want := range tt.want {
				got := r[s.Index(name)]
				if tv, ok := got.(time.Time); ok {
					if !tv.Equal(want.(time.Time)) {
						t.Errorf("%s = %v, want %v", name, got, want)
					}
					continue
				}
				if got != want {
					t.Errorf("%s = %#v, want %#v", name, got, want)
				}
			}
		})
	}
	bad := []struct {
		name string
		row  []string
		want []string
	}{
		{"enum miss", []string{"1", "2015-12-10 17:40:00", "Police: X", "1", "1", "y"}, []string{"category", `"Police: X"`}},
		{"not a number", []string{"1", "2015-12-10 17:40:00", "Fire", "1", "abc", "y"}, []string{"score", "column score", `"abc"`}},
		{"not whole", []string{"1", "2015-12-10 17:40:00", "Fire", "1.5", "1", "y"}, []string{"priority", "column prio", `"1.5"`}},
		{"not bool", []string{"1", "2015-12-10 17:40:00", "Fire", "1", "1", "maybe"}, []string{"urgent", `"maybe"`}},
		{"int overflow", []string{"1", "2015-12-10 17:40:00", "Fire", "3000000000", "1", "y"}, []string{"priority", "overflows"}},
		{"required missing", []string{"NA", "2015-12-10 17:40:00", "Fire", "1", "1", "y"}, []string{"id", "required"}},
		{"wrong column count", []string{"1", "2015-12-10 17:40:00", "Fire"}, []string{"want 6, got 3"}},
		{"too many columns", []string{"1", "2015-12-10 17:40:00", "Fire", "1", "1", "y", "extra"}, []string{"want 6, got 7"}},
	}
	for _, tt := range bad {
		t.Run("bad/"+tt.name, func(t *testing.T) {
			_, err := b.Map(tt.row)
			if err == nil {
				t.Fatal("Map accepted the row")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestNoTrimAndEmptyString(t *testing.T) {
	s, b := bind(t, Spec{Fields: map[string]FieldSpec{
		"id": {Index: ptr(0)}, "reported_at": {Index: ptr(1)}, "source": {Index: ptr(2), NoTrim: true},
	}}, nil)
	r, err := b.Map([]string{"1", "2015-12-10", "  padded "})
	if err != nil {
		t.Fatal(err)
	}
	if got := r[s.Index("source")]; got != "  padded " {
		t.Errorf("source = %q", got)
	}
	r, err = b.Map([]string{"1", "2015-12-10", ""})
	if err != nil {
		t.Fatal(err)
	}
	if got := r[s.Index("source")]; got != "" {
		t.Errorf("empty string field = %#v, want \"\" (not in null_values)", got)
	}
	if _, err := b.Map([]string{"1"}); err == nil || !strings.Contains(err.Error(), "reported_at") {
		t.Errorf("short headerless row: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		want []string
	}{
		{"unknown field", Spec{Fields: map[string]FieldSpec{"id": {Column: "id"}, "reported_at": {Column: "at"}, "colour": {Column: "c"}, "bogus": {Column: "b"}}}, []string{"bogus, colour", "calls"}},
		{"required not mapped", Spec{Fields: map[string]FieldSpec{"id": {Column: "id"}}}, []string{"reported_at", "报警时间"}},
		{"two origins", Spec{Fields: map[string]FieldSpec{"id": {Column: "id", Index: ptr(0)}, "reported_at": {Column: "at"}}}, []string{"id", "exactly one"}},
		{"value and column", Spec{Fields: map[string]FieldSpec{"id": {Column: "id"}, "reported_at": {Column: "at", Value: ptr("2015-01-01")}}}, []string{"reported_at", "exactly one"}},
		{"no origin", Spec{Fields: map[string]FieldSpec{"id": {}, "reported_at": {Column: "at"}}}, []string{"id", "exactly one"}},
		{"parts on non-timestamp", Spec{Fields: map[string]FieldSpec{"id": {Parts: map[string]string{"year": "y"}}, "reported_at": {Column: "at"}}}, []string{"id", "parts"}},
		{"unknown part", Spec{Fields: map[string]FieldSpec{"id": {Column: "id"}, "reported_at": {Parts: map[string]string{"week": "w"}}}}, []string{"week"}},
		{"bad timezone", Spec{Timezone: "Mars/Olympus", Fields: map[string]FieldSpec{"id": {Column: "id"}, "reported_at": {Column: "at"}}}, []string{"Mars/Olympus"}},
		{"machine timezone", Spec{Timezone: "Local", Fields: map[string]FieldSpec{"id": {Column: "id"}, "reported_at": {Column: "at"}}}, []string{"Local", "Asia/Shanghai"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(calls(t), tt.spec)
			if !errors.Is(err, ErrMapping) {
				t.Fatalf("New = %v, want ErrMapping", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestBindErrors(t *testing.T) {
	s := calls(t)
	m, err := New(s, Spec{Fields: map[string]FieldSpec{
		"id": {Column: "id"}, "reported_at": {Parts: map[string]string{"year": "y", "month": "m", "day": "d"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Bind([]string{"id", "y", "month", "d"})
	for _, want := range []string{"reported_at", `"m"`, "id, y, month, d"} {
		if !errors.Is(err, ErrMapping) || !strings.Contains(err.Error(), want) {
			t.Errorf("Bind = %v, want mention of %s", err, want)
		}
	}
	_, err = m.Bind([]string{"ID", "y", "m", "d"})
	if err == nil || !strings.Contains(err.Error(), `"id"`) || !strings.Contains(err.Error(), "ID, y, m, d") {
		t.Errorf("Bind = %v", err)
	}
	_, err = m.Bind(nil)
	if err == nil || !strings.Contains(err.Error(), "header") {
		t.Errorf("Bind(nil) with column names = %v", err)
	}
	// BOM and spaces around header names are ignored.
	b, err := m.Bind([]string{"\ufeffid", " y ", "m", "d"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Map([]string{"1", "2013", "3", "1"}); err != nil {
		t.Error(err)
	}
	// With no header, parts may name columns by number.
	m2, err := New(s, Spec{Fields: map[string]FieldSpec{
		"id": {Index: ptr(0)}, "reported_at": {Parts: map[string]string{"year": "1", "month": "2", "day": "3"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	bb, err := m2.Bind(nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := bb.Map([]string{"9", "2013", "3", "1"})
	if err != nil || !r[1].(time.Time).Equal(time.Date(2013, 2, 28, 16, 0, 0, 0, time.UTC)) {
		t.Errorf("headerless parts: %v %v", r, err)
	}
}

// TestPartsErrorNamesColumn: the package doc promises that unparsable values
// are errors naming the column; for parts the error names only the field.
func TestPartsErrorNamesColumn(t *testing.T) {
	_, b := bind(t, Spec{Fields: map[string]FieldSpec{
		"id": {Column: "id"}, "reported_at": {Parts: map[string]string{"year": "year", "month": "month", "day": "day"}},
	}}, []string{"id", "year", "month", "day"})
	_, err := b.Map([]string{"1", "2013", "x3", "1"})
	if err == nil {
		t.Fatal("accepted")
	}
	if !strings.Contains(err.Error(), "month") {
		t.Fatalf("regression: parts error %q does not name the column (month) that held the bad value", err)
	}
}

// TestDaylightSavingEdges: a local time the clocks skip (spring forward) is
// refused with a reason, not moved onto the next hour, where it would
// replace that hour's row; a repeated hour (fall back) and the hours
// around the changes map to their instants.
func TestDaylightSavingEdges(t *testing.T) {
	s, b := bind(t, Spec{Timezone: "America/New_York", Fields: map[string]FieldSpec{
		"id": {Column: "id"}, "reported_at": {Column: "at"},
	}}, []string{"id", "at"})
	for _, in := range []string{"2018-03-11 02:00:00", "2018-03-11 02:59", "2018-03-11T02:30:00"} {
		_, err := b.Map([]string{"1", in})
		if err == nil || !strings.Contains(err.Error(), "does not exist in America/New_York") || !strings.Contains(err.Error(), "夏令时") {
			t.Errorf("%s: err = %v, want refused as skipped by daylight-saving time", in, err)
		}
	}
	for in, want := range map[string]time.Time{
		"2018-03-11 01:59:00":       time.Date(2018, 3, 11, 6, 59, 0, 0, time.UTC),
		"2018-03-11 03:00:00":       time.Date(2018, 3, 11, 7, 0, 0, 0, time.UTC),
		"2017-11-05 01:30:00":       time.Date(2017, 11, 5, 5, 30, 0, 0, time.UTC), // the first 01:30 (EDT)
		"2017-11-05 02:00:00":       time.Date(2017, 11, 5, 7, 0, 0, 0, time.UTC),
		"2018-03-11T02:30:00-05:00": time.Date(2018, 3, 11, 7, 30, 0, 0, time.UTC), // an explicit offset exists
		"2018-07-01 12:00:00":       time.Date(2018, 7, 1, 16, 0, 0, 0, time.UTC),
	} {
		r, err := b.Map([]string{"1", in})
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if got := r[s.Index("reported_at")].(time.Time); !got.Equal(want) {
			t.Errorf("%s: got %v, want %v", in, got, want)
		}
	}
}
