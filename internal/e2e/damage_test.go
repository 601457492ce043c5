package e2e

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDamagedTable: the newest Parquet file of raw.weather is truncated.
// serve still starts and status marks the table; `select 1` and the other
// tables answer while a query of raw.weather names the file; `lake check`
// names it and the snapshot to roll back to (exit status 1); after `lake
// rollback` an ingest re-reads from Kafka what the rolled-back snapshot
// lacked, and the table is whole again.
func TestDamagedTable(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(weatherCSV())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	half := len(lines) / 2
	os.WriteFile(filepath.Join(dir, "a.csv"), []byte(strings.Join(lines[:half], "")), 0o644)
	// The crowd sample too: another table that must keep serving.
	e := newEnv(t, strings.Replace(weatherSourceYAML(t, "weather", filepath.Join(dir, "*.csv")), "  - {name: crowd, enabled: false}\n", "", 1))
	e.run("ingest", "weather", "--no-progress")
	os.WriteFile(filepath.Join(dir, "b.csv"), []byte(lines[0]+strings.Join(lines[half:], "")), 0o644)
	e.run("ingest", "weather", "--no-progress")
	if got := e.sqlInt("select count(*) from raw.weather"); got != 35064 {
		t.Fatalf("rows = %d", got)
	}
	e.run("ingest", "crowd", "--no-progress")
	// The newest data file of raw.weather, cut in half.
	var newest string
	var at time.Time
	filepath.WalkDir(filepath.Join(e.dataDir(), "lake", "raw", "weather", "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".parquet") {
			if fi, err := d.Info(); err == nil && fi.ModTime().After(at) {
				newest, at = p, fi.ModTime()
			}
		}
		return nil
	})
	if newest == "" {
		t.Fatal("test setup: no data file")
	}
	fi, _ := os.Stat(newest)
	os.Truncate(newest, fi.Size()/2)

	if out := e.run("sql", "--format", "csv", "select 1 as one"); !strings.Contains(out, "1") {
		t.Fatalf("select 1: %s", out)
	}
	if got := e.sqlInt("select count(*) from raw.crowd_counts"); got != 6575 {
		t.Fatalf("the other table: %d rows", got)
	}
	if _, errOut, err := e.try("sql", "select count(*) from raw.weather"); err == nil || !strings.Contains(errOut, filepath.Base(newest)) || !strings.Contains(errOut, "lake check") {
		t.Fatalf("query of the damaged table: %v\n%s", err, errOut)
	}
	out, _, err := e.try("lake", "check")
	if err == nil {
		t.Fatalf("lake check exited 0 with a damaged table:\n%s", out)
	}
	m := regexp.MustCompile(`citybrain lake rollback raw\.weather --to (\d+)`).FindStringSubmatch(out)
	if !strings.Contains(out, filepath.Base(newest)) || m == nil {
		t.Fatalf("lake check does not name the file and the rollback:\n%s", out)
	}

	e.replace(`http: {addr: "127.0.0.1:0"}`, fmt.Sprintf(`http: {addr: "127.0.0.1:%d"}`, freePort(t)))
	srv := e.serve("serve.log")
	waitFor(t, "serve to report the damaged table", 2*time.Minute, func() (bool, string) {
		out, _, err := e.try("status")
		return err == nil && regexp.MustCompile(`query/sql\s+raw\.weather\s.*damaged`).MatchString(out), out
	})
	srv.stop(t)

	out = e.run("lake", "rollback", "raw.weather", "--to", m[1])
	if !strings.Contains(out, "rolled back") || !strings.Contains(out, "check 检查: ok") {
		t.Fatalf("lake rollback:\n%s", out)
	}
	e.run("ingest", "weather", "--no-progress")
	r := e.sqlRows("select count(*), count(distinct observed_at) from raw.weather")
	if r[0][0] != "35064" || r[0][1] != "35064" {
		t.Fatalf("after rollback and ingest: rows, hours = %v; want 35064", r[0])
	}
	if out, _, err := e.try("lake", "check"); err != nil {
		t.Fatalf("lake check after repair: %v\n%s", err, out)
	}
}
