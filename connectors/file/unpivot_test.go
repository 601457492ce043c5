package file_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"citybrain/connectors"
	"citybrain/connectors/file"
	"citybrain/connectors/mapping"
	"citybrain/schemas"
)

// fremontSource reads (the first lines of) the real Fremont Bridge bicycle
// counter file: one row per hour, one column per sidewalk.
func fremontSource(t *testing.T, lines int) (*schemas.Schema, *file.Source, string) {
	t.Helper()
	b, err := os.ReadFile("../../testdata/real/crowd/fremont_bridge_bicycles_hourly.csv")
	if err != nil {
		t.Fatal(err)
	}
	all := strings.SplitAfter(string(b), "\n")
	if lines > 0 && lines < len(all) {
		all = all[:lines]
	}
	path := filepath.Join(t.TempDir(), "fremont.csv")
	if err := os.WriteFile(path, []byte(strings.Join(all, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := reg.Get("crowd_counts")
	site := "fremont-bridge"
	m, err := mapping.New(s, mapping.Spec{Timezone: "America/Los_Angeles", Fields: map[string]mapping.FieldSpec{
		"site_id":     {Value: &site},
		"observed_at": {Column: "Date", Layout: "01/02/2006 03:04:05 PM"},
	}, Unpivot: &mapping.UnpivotSpec{
		Columns:    []string{"Fremont Bridge East Sidewalk", "Fremont Bridge West Sidewalk"},
		NameField:  "direction",
		ValueField: "people",
		Names:      map[string]string{"Fremont Bridge East Sidewalk": "inbound", "Fremont Bridge West Sidewalk": "outbound"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return s, newSource(t, file.Config{Paths: []string{path}, Header: true}, m), path
}

// TestUnpivotRealWideFile: each row of a wide file gives one record per
// column, every record with a position of its own, so a read resumed from
// any record's cursor — the middle of a row too — gives exactly the
// records after it; a dead letter replays into its own column's record.
func TestUnpivotRealWideFile(t *testing.T) {
	s, src, _ := fremontSource(t, 2001) // the header and 2,000 hours
	recs := readAllRecs(t, src, connectors.Positions{})
	var good, bad int
	seen := map[int64]bool{}
	var last int64
	for i, r := range recs {
		if seen[r.Cursor.Pos] || r.Cursor.Pos <= last {
			t.Fatalf("record %d: position %d repeated or not increasing (after %d)", i, r.Cursor.Pos, last)
		}
		seen[r.Cursor.Pos], last = true, r.Cursor.Pos
		if r.Err != nil {
			bad++
			continue
		}
		good++
		want := "inbound"
		if r.Cursor.Pos%mapping.UnpivotStride == 1 {
			want = "outbound"
		}
		if r.Values[s.Index("direction")] != want {
			t.Fatalf("record %d at %d: direction %v, want %s", i, r.Cursor.Pos, r.Values[s.Index("direction")], want)
		}
	}
	if good+bad != 4000 {
		t.Fatalf("%d records + %d rejects from 2,000 rows × 2 columns, want 4,000", good, bad)
	}
	if !strings.HasPrefix(recs[len(recs)-1].Cursor.Token, "size=") {
		t.Errorf("the last record does not carry the finished file's size: %+v", recs[len(recs)-1].Cursor)
	}
	// The first data row (line 2) of the real file: 01/31/2019 11 PM, east 7, west 6.
	if recs[0].Values[s.Index("people")] != int64(7) || recs[1].Values[s.Index("people")] != int64(6) {
		t.Errorf("first row: %v / %v, want 7 / 6", recs[0].Values, recs[1].Values)
	}

	// Resumed from each of a few cursors — after the first record of a row
	// (a crash mid-row) and after a whole row — the rest, exactly.
	for _, cut := range []int{0, 1, 2, 999, 1000, len(recs) - 2} {
		rest := readAllRecs(t, src, connectors.Positions{recs[cut].Cursor.Stream: {Stream: recs[cut].Cursor.Stream, Pos: recs[cut].Cursor.Pos}})
		if len(rest) != len(recs)-cut-1 {
			t.Fatalf("resumed after record %d: %d records, want %d", cut, len(rest), len(recs)-cut-1)
		}
		if rest[0].Cursor.Pos != recs[cut+1].Cursor.Pos {
			t.Fatalf("resumed after record %d: first at %d, want %d", cut, rest[0].Cursor.Pos, recs[cut+1].Cursor.Pos)
		}
	}

	// A dead letter of a wide row replays into its own column's record.
	raw := []byte("01/31/2019 11:00:00 PM,7,6")
	for k, want := range []string{"inbound", "outbound"} {
		rec, err := src.Reparse(raw, connectors.Cursor{Stream: "fremont.csv", Pos: 2*mapping.UnpivotStride + int64(k)})
		if err != nil || rec[s.Index("direction")] != want {
			t.Errorf("reparse of record %d: %v, %v; want %s", k, rec, err, want)
		}
	}
}

// TestUnpivotRowRejects: a row that cannot be read rejects each of its
// records (one dead letter per record, each replayable on its own).
func TestUnpivotRowRejects(t *testing.T) {
	_, src, path := fremontSource(t, 3)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, []byte("02/30/2019 01:00:00 AM,1,2\n01/30/2019 01:00:00 AM,3,x\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	recs := readAllRecs(t, src, connectors.Positions{})
	if len(recs) != 8 {
		t.Fatalf("%d records, want 8 (4 rows × 2 columns)", len(recs))
	}
	for i, want := range []bool{false, false, false, false, true, true, false, true} {
		if (recs[i].Err != nil) != want {
			t.Errorf("record %d: err %v, want rejected %v", i, recs[i].Err, want)
		}
	}
	if recs[7].Err == nil || !strings.Contains(recs[7].Err.Error(), "Fremont Bridge West Sidewalk") {
		t.Errorf("bad west cell: %v, want the column named", recs[7].Err)
	}
	if string(recs[4].Raw) != "02/30/2019 01:00:00 AM,1,2" || recs[4].Cursor.Pos == recs[5].Cursor.Pos {
		t.Errorf("row rejects: raw %q, positions %d %d", recs[4].Raw, recs[4].Cursor.Pos, recs[5].Cursor.Pos)
	}
	if errors.Is(recs[4].Err, mapping.ErrSkipped) {
		t.Error("a reject is not a skip")
	}
}
