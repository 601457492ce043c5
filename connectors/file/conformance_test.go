package file_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"citybrain/connectors"
	"citybrain/connectors/connectortest"
	"citybrain/connectors/file"
	"citybrain/connectors/mapping"
	"citybrain/schemas"
)

// TestConformance runs the transport suite on CSV files in a drop
// directory; a growing feed is a new file dropped beside the others.
func TestConformance(t *testing.T) {
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, _ := reg.Get("mobile_signal")
	m, err := mapping.New(s, mapping.Spec{Fields: map[string]mapping.FieldSpec{
		"grid_cell_id": {Column: "cell"}, "window_start": {Column: "ts"}, "people_count": {Column: "n"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	var dir string
	write := func(t *testing.T, name string, from, to int) {
		var b strings.Builder
		b.WriteString("cell,ts,n\r\n")
		for i := from; i < to; i++ {
			fmt.Fprintf(&b, "\"XC-%d\",2026-11-01 08:00:00,%d\r\n", i%50, i)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	open := func(t *testing.T, paths ...string) connectors.Source {
		src, err := file.New(file.Config{Paths: paths, Header: true, BatchRows: 300}, m)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T, n int) connectors.Source {
			dir = t.TempDir()
			write(t, "a.csv", 0, n/2)
			write(t, "b.csv", n/2, n)
			return open(t, filepath.Join(dir, "*.csv"))
		},
		Append: func(t *testing.T, n, k int) { write(t, "c.csv", n, n+k) },
		Key:    func(r connectors.Record) int { return int(r.Values[s.Index("people_count")].(int64)) },
		Broken: func(t *testing.T) connectors.Source { return open(t, filepath.Join(t.TempDir(), "missing.csv")) },
	})
}
