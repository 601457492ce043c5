package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreElsewhere: the data directory is copied to another path (a
// backup restored on another disk) and the original removed. lake check
// says the lake was moved; after lake relocate the copy answers with every
// row, and an ingest of the same file adds nothing (its position moved
// with it).
func TestRestoreElsewhere(t *testing.T) {
	e := newEnv(t, weatherSourceYAML(t, "weather", weatherCSV()))
	e.run("ingest", "weather", "--no-progress")
	if got := e.sqlInt("select count(*) from raw.weather"); got != 35064 {
		t.Fatalf("rows = %d", got)
	}
	restored := filepath.Join(t.TempDir(), "restored-data")
	if out, err := exec.Command("cp", "-a", e.dataDir(), restored).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.RemoveAll(e.dataDir()); err != nil {
		t.Fatal(err)
	}
	e.replace("data_dir: "+e.dataDir(), "data_dir: "+restored)

	out, _, err := e.try("lake", "check")
	if err == nil || !strings.Contains(out, "citybrain lake relocate") {
		t.Fatalf("lake check on the moved lake: %v\n%s", err, out)
	}
	out = e.run("lake", "relocate")
	if !strings.Contains(out, "relocated 已迁移 raw.weather") || !strings.Contains(out, "35064 rows") {
		t.Fatalf("lake relocate:\n%s", out)
	}
	if out, _, err := e.try("lake", "check"); err != nil {
		t.Fatalf("lake check after relocate: %v\n%s", err, out)
	}
	if got := e.sqlInt("select count(*) from raw.weather"); got != 35064 {
		t.Fatalf("after relocate: %d rows", got)
	}
	e.run("ingest", "weather", "--no-progress")
	if got := e.sqlInt("select count(*) from raw.weather"); got != 35064 {
		t.Fatalf("after ingesting the same file again: %d rows", got)
	}
}
