package file_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"citybrain/connectors"
	"citybrain/connectors/file"
	"citybrain/connectors/mapping"
	"citybrain/schemas"
)

// TestFinishedFileNotReopened: a file read to its end is recorded in the
// last record's cursor token (its size), so a drop directory of many old
// files costs nothing per poll; a file that grew is read on from its last line.
func TestFinishedFileNotReopened(t *testing.T) {
	reg, _ := schemas.Builtin()
	s, _ := reg.Get("mobile_signal")
	m, err := mapping.New(s, mapping.Spec{Fields: map[string]mapping.FieldSpec{
		"grid_cell_id": {Column: "cell"}, "window_start": {Column: "ts"}, "people_count": {Column: "n"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "drop-0001.csv")
	content := "cell,ts,n\nXC-1,2026-11-01 08:00:00,1\nXC-2,2026-11-01 08:00:00,2\n"
	os.WriteFile(path, []byte(content), 0o644)
	src, err := file.New(file.Config{Paths: []string{filepath.Join(dir, "*.csv")}, Header: true}, m)
	if err != nil {
		t.Fatal(err)
	}
	pos := connectors.Positions{}
	read := func() []connectors.Record {
		var got []connectors.Record
		err := src.Read(context.Background(), pos, func(_ context.Context, b []connectors.Record) error {
			for _, r := range b {
				pos.Advance(r.Cursor)
				got = append(got, r)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	first := read()
	if len(first) != 2 || first[1].Cursor.Token != "size="+strconv.Itoa(len(content)) || first[0].Cursor.Token != "" {
		t.Fatalf("first read: %+v", first)
	}
	// Same size, other bytes: a finished file is not opened again.
	os.WriteFile(path, bytes.Repeat([]byte{0xff}, len(content)), 0o644)
	if again := read(); len(again) != 0 {
		t.Fatalf("finished file was read again: %+v", again)
	}
	// A file that grew is read on from its last line.
	os.WriteFile(path, []byte(content+"XC-3,2026-11-01 08:05:00,3\n"), 0o644)
	more := read()
	if len(more) != 1 || more[0].Cursor.Pos != 4 || !strings.HasPrefix(more[0].Cursor.Token, "size=") || more[0].Err != nil {
		t.Fatalf("grown file: %+v", more)
	}
}
