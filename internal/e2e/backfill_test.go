package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestBackfillFilesPerPartition: a year of hourly observations of four
// stations, ordered by station then time (as multi-site exports are), is
// ingested in many commits that each sweep the day partitions again. After
// the ingest every day partition is one data file, with every row.
func TestBackfillFilesPerPartition(t *testing.T) {
	b, err := os.ReadFile(weatherCSV())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	year := lines[1 : 1+8760]
	var out strings.Builder
	out.WriteString(lines[0])
	for _, st := range []string{"Aotizhongxin", "Dongsi", "Guanyuan", "Wanliu"} {
		for _, l := range year {
			out.WriteString(strings.Replace(l, `"Guanyuan"`, `"`+st+`"`, 1))
		}
	}
	path := filepath.Join(t.TempDir(), "four-stations.csv")
	if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, weatherSourceYAML(t, "weather", path))
	got := e.run("ingest", "weather", "--no-progress")
	if !strings.Contains(got, "compacted 已合并") {
		t.Errorf("ingest output does not report the compaction:\n%s", got)
	}
	r := e.sqlRows("select count(*), count(distinct station), count(distinct date_trunc('day', observed_at at time zone 'UTC')) from raw.weather")
	if r[0][0] != "35040" || r[0][1] != "4" {
		t.Fatalf("rows, stations = %v; want 35040, 4", r[0])
	}
	days, _ := strconv.Atoi(r[0][2])
	check := e.run("lake", "check", "raw.weather")
	m := regexp.MustCompile(`(\d+) data files`).FindStringSubmatch(check)
	if m == nil {
		t.Fatalf("lake check: %s", check)
	}
	if files, _ := strconv.Atoi(m[1]); files != days {
		t.Fatalf("%d data files for %d day partitions, want one per partition", files, days)
	}
}
