package mapping

import (
	"errors"
	"strings"
	"testing"
	"time"

	"citybrain/schemas"
)

func crowdSchema(t *testing.T) *schemas.Schema { return builtinSchema(t, "crowd_counts") }

// TestUnpivot: a wide row (one column per direction, as the Fremont Bridge
// counter sends) gives one record per column; a bad cell rejects only its
// record; a row-level problem rejects each; skip_empty drops empty cells.
func TestUnpivot(t *testing.T) {
	s := crowdSchema(t)
	header := []string{"Date", "Fremont Bridge East Sidewalk", "Fremont Bridge West Sidewalk"}
	spec := Spec{Timezone: "America/Los_Angeles", Fields: map[string]FieldSpec{
		"site_id":     {Value: ptr("fremont-bridge")},
		"observed_at": {Column: "Date", Layout: "01/02/2006 03:04:05 PM"},
	}, Unpivot: &UnpivotSpec{
		Columns:    []string{"Fremont Bridge East Sidewalk", "Fremont Bridge West Sidewalk"},
		NameField:  "direction",
		ValueField: "people",
		Names:      map[string]string{"Fremont Bridge East Sidewalk": "inbound", "Fremont Bridge West Sidewalk": "outbound"},
	}}
	m, err := New(s, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Wide() {
		t.Fatal("Wide() = false")
	}
	b, err := m.Bind(header)
	if err != nil {
		t.Fatal(err)
	}
	if b.Records() != 2 {
		t.Fatalf("Records() = %d, want 2", b.Records())
	}
	got := b.MapAll([]string{"01/31/2019 11:00:00 PM", "7", "6"})
	if len(got) != 2 || got[0].Err != nil || got[1].Err != nil {
		t.Fatalf("MapAll = %+v", got)
	}
	at := time.Date(2019, 2, 1, 7, 0, 0, 0, time.UTC)
	for k, want := range []struct {
		dir    string
		people int64
	}{{"inbound", 7}, {"outbound", 6}} {
		r := got[k].Rec
		if got[k].Sub != k || r[s.Index("direction")] != want.dir || r[s.Index("people")] != want.people ||
			r[s.Index("site_id")] != "fremont-bridge" || !r[s.Index("observed_at")].(time.Time).Equal(at) {
			t.Errorf("record %d = %v (sub %d), want %s %d at %s", k, r, got[k].Sub, want.dir, want.people, at)
		}
	}

	// A bad cell: only its record is rejected, naming the column.
	got = b.MapAll([]string{"01/31/2019 10:00:00 PM", "x", "16"})
	if got[0].Err == nil || !strings.Contains(got[0].Err.Error(), "Fremont Bridge East Sidewalk") || got[1].Err != nil {
		t.Errorf("bad east cell: %+v", got)
	}
	// A row-level problem: each record is rejected with the reason.
	got = b.MapAll([]string{"not a time", "1", "2"})
	if len(got) != 2 || got[0].Err == nil || got[1].Err == nil {
		t.Errorf("bad time: %+v", got)
	}
	got = b.MapAll([]string{"01/31/2019 10:00:00 PM", "1"})
	if len(got) != 2 || got[0].Err == nil || !strings.Contains(got[1].Err.Error(), "column count") {
		t.Errorf("short row: %+v", got)
	}
	// An empty cell: a null count, which the schema requires → rejected.
	got = b.MapAll([]string{"01/31/2019 09:00:00 PM", "", "27"})
	if got[0].Err == nil || got[1].Err != nil {
		t.Errorf("empty east cell without skip_empty: %+v", got)
	}
	// MapOne maps one record of a row (a dead letter's replay).
	if r, err := b.MapOne([]string{"01/31/2019 11:00:00 PM", "7", "6"}, 1); err != nil || r[s.Index("direction")] != "outbound" || r[s.Index("people")] != int64(6) {
		t.Errorf("MapOne(1) = %v, %v", r, err)
	}
	if _, err := b.MapOne([]string{"01/31/2019 11:00:00 PM", "7", "6"}, 2); err == nil {
		t.Error("MapOne(2) of a two-column row: no error")
	}
	if _, err := b.Map([]string{"01/31/2019 11:00:00 PM", "7", "6"}); !errors.Is(err, ErrMapping) {
		t.Errorf("Map of an unpivoting mapping: %v, want ErrMapping", err)
	}

	// skip_empty and other_columns: every column no field reads, by header name.
	spec.Unpivot = &UnpivotSpec{OtherColumns: true, NameField: "site_id", ValueField: "people", SkipEmpty: true,
		Value: FieldSpec{NullValues: []string{"-"}}}
	spec.Fields = map[string]FieldSpec{
		"observed_at": {Column: "Date", Layout: "01/02/2006 03:04:05 PM"},
		"direction":   {Value: ptr("total")},
	}
	m, err = New(s, spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err = m.Bind(header)
	if err != nil {
		t.Fatal(err)
	}
	got = b.MapAll([]string{"01/31/2019 11:00:00 PM", "-", "6"})
	if len(got) != 2 || !errors.Is(got[0].Err, ErrSkipped) || got[1].Err != nil || got[1].Rec[s.Index("site_id")] != "Fremont Bridge West Sidewalk" {
		t.Errorf("other_columns + skip_empty: %+v", got)
	}
	if b.Skipped() != 1 {
		t.Errorf("Skipped() = %d, want 1", b.Skipped())
	}
}

// TestUnpivotSpecErrors: mistakes in the spec are configuration errors
// that say what to do.
func TestUnpivotSpecErrors(t *testing.T) {
	s := crowdSchema(t)
	base := map[string]FieldSpec{"site_id": {Value: ptr("x")}, "observed_at": {Column: "Date"}}
	for name, c := range map[string]struct {
		fields map[string]FieldSpec
		u      UnpivotSpec
		want   string
	}{
		"neither":       {base, UnpivotSpec{NameField: "direction", ValueField: "people"}, "either columns"},
		"both":          {base, UnpivotSpec{Columns: []string{"a"}, OtherColumns: true, NameField: "direction", ValueField: "people"}, "either columns"},
		"no value":      {base, UnpivotSpec{Columns: []string{"a"}, NameField: "direction"}, "value_field is required"},
		"unknown field": {base, UnpivotSpec{Columns: []string{"a"}, NameField: "direction", ValueField: "nope"}, "no field nope"},
		"twice":         {base, UnpivotSpec{Columns: []string{"a"}, NameField: "site_id", ValueField: "people"}, "also under fields"},
		"not a string":  {map[string]FieldSpec{"site_id": {Value: ptr("x")}, "direction": {Value: ptr("total")}}, UnpivotSpec{Columns: []string{"a"}, NameField: "observed_at", ValueField: "people"}, "string field"},
		"origin":        {base, UnpivotSpec{Columns: []string{"a"}, NameField: "direction", ValueField: "people", Value: FieldSpec{Column: "b"}}, "options only"},
	} {
		_, err := New(s, Spec{Fields: c.fields, Unpivot: &c.u})
		if !errors.Is(err, ErrMapping) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrMapping with %q", name, err, c.want)
		}
	}
	m, err := New(s, Spec{Fields: base, Unpivot: &UnpivotSpec{Columns: []string{"East"}, NameField: "direction", ValueField: "people"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Bind([]string{"Date", "West"}); err == nil || !strings.Contains(err.Error(), "East") {
		t.Errorf("Bind without the wide column: %v", err)
	}
}
