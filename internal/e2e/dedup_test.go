package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSecondCopyOfAFile: the real Guanyuan file, then the same file under
// another name with one value changed: raw.weather keeps 35,064 rows (one
// per station and hour, not 70,128) and the changed hour has the copy's
// value; status and /metrics-backed logs say rows were replaced.
func TestSecondCopyOfAFile(t *testing.T) {
	dir := t.TempDir()
	b, err := os.ReadFile(weatherCSV())
	if err != nil {
		t.Fatal(err)
	}
	orig := filepath.Join(dir, "a-guanyuan.csv")
	if err := os.WriteFile(orig, b, 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, weatherSourceYAML(t, "weather", filepath.Join(dir, "*.csv")))
	e.run("ingest", "weather", "--no-progress")
	if got := e.sqlInt("select count(*) from raw.weather"); got != 35064 {
		t.Fatalf("first copy: %d rows, want 35064", got)
	}
	// Line 2 is 2013-03-01 00:00 Beijing, PM2.5 4: the copy says 444.
	lines := strings.SplitAfter(string(b), "\n")
	f := strings.Split(lines[1], ",")
	if f[5] != "4" {
		t.Fatalf("test setup: line 2 is %q", lines[1])
	}
	f[5] = "444"
	lines[1] = strings.Join(f, ",")
	if err := os.WriteFile(filepath.Join(dir, "b-guanyuan-copy.csv"), []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	e.run("ingest", "weather", "--no-progress")
	t.Logf("the copy ingested in %v", time.Since(start).Round(time.Millisecond))
	r := e.sqlRows("select count(*), count(distinct observed_at), count(*) filter (where _cursor like '%b-guanyuan-copy.csv#%') from raw.weather")
	if r[0][0] != "35064" || r[0][1] != "35064" || r[0][2] != "35064" {
		t.Fatalf("after the copy: rows, hours, rows from the copy = %v; want 35064 each", r[0])
	}
	if got := e.sqlInt("select pm25 from raw.weather where observed_at = TIMESTAMPTZ '2013-02-28 16:00:00+00'"); got != 444 {
		t.Fatalf("the changed hour has pm25 %d, want the copy's 444", got)
	}
}
