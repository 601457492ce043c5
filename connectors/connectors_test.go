package connectors

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCursorRoundTrip(t *testing.T) {
	tests := []struct {
		c    Cursor
		want string
	}{
		{Cursor{Stream: "PRSA_Data_Guanyuan_20130301-20170228.csv", Pos: 42}, "PRSA_Data_Guanyuan_20130301-20170228.csv#42"},
		{Cursor{Stream: "a#b.csv", Pos: 7}, "a#b.csv#7"},
		{Cursor{Stream: "##", Pos: 0}, "###0"},
		{Cursor{Stream: "", Pos: 1}, "#1"},
		{Cursor{Stream: "官园.csv", Pos: -3}, "官园.csv#-3"},
		{Cursor{Stream: "big", Pos: 1<<63 - 1}, "big#9223372036854775807"},
		{Cursor{Stream: "page#token#", Pos: 5}, "page#token##5"},
		{Cursor{Stream: "requests.json", Pos: 12, Token: "page=3&since=2022-05-01T00:00:00Z!#"}, "requests.json#12!page%3D3%26since%3D2022-05-01T00%3A00%3A00Z%21%23"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.c.String(); got != tt.want {
				t.Errorf("String = %q, want %q", got, tt.want)
			}
			got, ok := ParseCursor(tt.c.String())
			if !ok || got != tt.c {
				t.Errorf("ParseCursor(%q) = %+v, %v", tt.c.String(), got, ok)
			}
		})
	}
	for _, bad := range []string{"", "nohash", "file#", "file#x", "file#1.5", "file#1 ", "a#9223372036854775808"} {
		if c, ok := ParseCursor(bad); ok {
			t.Errorf("ParseCursor(%q) = %+v, want failure", bad, c)
		}
	}
}

func TestPositionsAdvance(t *testing.T) {
	p := Positions{}
	steps := []struct {
		c    Cursor
		want int64
	}{
		{Cursor{Stream: "a", Pos: 5}, 5},
		{Cursor{Stream: "a", Pos: 3}, 5},
		{Cursor{Stream: "a", Pos: 5}, 5},
		{Cursor{Stream: "a", Pos: 9}, 9},
		{Cursor{Stream: "a", Pos: -1}, 9},
		{Cursor{Stream: "b", Pos: 0}, 0},
		{Cursor{Stream: "b", Pos: -4}, 0},
	}
	for _, s := range steps {
		p.Advance(s.c)
		if p[s.c.Stream].Pos != s.want {
			t.Errorf("after %v: %s = %d, want %d", s.c, s.c.Stream, p[s.c.Stream].Pos, s.want)
		}
	}
	q := Positions{}
	q.Advance(Cursor{Stream: "n", Pos: -2})
	if v, ok := q["n"]; !ok || v.Pos != -2 {
		t.Errorf("first position of a stream is taken as is: %v", q)
	}
	if !reflect.DeepEqual(p, Positions{"a": {Stream: "a", Pos: 9}, "b": {Stream: "b", Pos: 0}}) {
		t.Errorf("positions %v", p)
	}
}

func TestCheckpointSaveLoad(t *testing.T) {
	dir := t.TempDir()
	cp, err := LoadCheckpoint(dir, "weather")
	if err != nil || cp.Cluster != "" || cp.Positions == nil || len(cp.Positions) != 0 {
		t.Fatalf("missing checkpoint: %+v, %v", cp, err)
	}
	want := Checkpoint{Cluster: "kfake-1", Positions: Positions{"PRSA_Data_Guanyuan_20130301-20170228.csv": {Stream: "PRSA_Data_Guanyuan_20130301-20170228.csv", Pos: 35065}, "a#b.csv": {Stream: "a#b.csv", Pos: 1}, "官园.csv": {Stream: "官园.csv", Pos: 2, Token: "t"}}}
	if err := want.Save(dir, "weather"); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCheckpoint(dir, "weather")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "connectors", "weather.json.tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	// Overwrite.
	want.Positions.Advance(Cursor{Stream: "a#b.csv", Pos: 10})
	if err := want.Save(dir, "weather"); err != nil {
		t.Fatal(err)
	}
	if got, _ := LoadCheckpoint(dir, "weather"); got.Positions["a#b.csv"].Pos != 10 {
		t.Errorf("after overwrite: %+v", got)
	}
	// Other sources are independent.
	if got, _ := LoadCheckpoint(dir, "other"); len(got.Positions) != 0 {
		t.Errorf("other source: %+v", got)
	}
}

func TestCheckpointNullPositions(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "connectors"), 0o755)
	os.WriteFile(filepath.Join(dir, "connectors", "s.json"), []byte(`{"cluster":"c","positions":null}`), 0o644)
	cp, err := LoadCheckpoint(dir, "s")
	if err != nil || cp.Positions == nil || cp.Cluster != "c" {
		t.Errorf("got %+v, %v", cp, err)
	}
	cp.Positions.Advance(Cursor{Stream: "x", Pos: 1}) // must not panic
}

func TestCheckpointCorrupt(t *testing.T) {
	for _, content := range []string{"{not json", `{"positions":{"a":"x"}}`, ""} {
		dir := t.TempDir()
		path := filepath.Join(dir, "connectors", "weather.json")
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := LoadCheckpoint(dir, "weather")
		if err == nil {
			t.Errorf("%q: corrupt checkpoint accepted", content)
			continue
		}
		for _, want := range []string{"corrupt", "delete", path, "weather"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q: error %q does not mention %q", content, err, want)
			}
		}
	}
}

func TestCheckpointUnreadable(t *testing.T) {
	dir := t.TempDir()
	// A directory where the file should be: reading fails, not "corrupt".
	os.MkdirAll(filepath.Join(dir, "connectors", "weather.json"), 0o755)
	if _, err := LoadCheckpoint(dir, "weather"); err == nil {
		t.Error("unreadable checkpoint accepted")
	}
}

func TestTopics(t *testing.T) {
	if RawTopic("weather") != "raw.weather" || DLQTopic("weather") != "dlq.weather" {
		t.Errorf("%s %s", RawTopic("weather"), DLQTopic("weather"))
	}
}
