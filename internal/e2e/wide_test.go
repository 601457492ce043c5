package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"citybrain/connectors"
	"citybrain/connectors/sources"
	"citybrain/schemas"
)

// fremontYAML onboards the real Fremont Bridge counter file (one column
// per sidewalk) with mapping.unpivot, as docs/sources.md shows; append
// keeps every record, so the natural key cannot hide a duplicate.
func fremontYAML(glob string) string {
	return fmt.Sprintf(`sources:
  - name: fremont
    schema: crowd_counts
    transport: file
    poll_interval: 200ms
    dedup: append
    file: {paths: [%q], header: true, batch_rows: 2000}
    mapping:
      timezone: America/Los_Angeles
      fields:
        site_id:     {value: fremont-bridge}
        observed_at: {column: Date, layout: "01/02/2006 03:04:05 PM"}
      unpivot:
        columns: [Fremont Bridge East Sidewalk, Fremont Bridge West Sidewalk]
        name_field: direction
        names: {Fremont Bridge East Sidewalk: inbound, Fremont Bridge West Sidewalk: outbound}
        value_field: people
`, glob) + disableOthers("fremont")
}

// TestWideFileKillNine: the real six-year wide file (55,488 rows, two
// records each) ingested while serve is SIGKILLed at random moments: the
// lake ends with exactly the records a single clean read gives (no loss,
// no duplicate, same checksum), the rest are dead letters — a process
// killed between the two records of a row resumes with the second.
func TestWideFileKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test: skipped with -short")
	}
	drop := t.TempDir()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "testdata", "real", "crowd", "fremont_bridge_bicycles_hourly.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(drop, "fremont.csv"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := fremontYAML(filepath.Join(drop, "*.csv"))

	// The oracle: one clean in-process read of the file by the same definition.
	var defs struct {
		Sources []sources.Definition `yaml:"sources"`
	}
	if err := yaml.Unmarshal([]byte(cfg), &defs); err != nil {
		t.Fatal(err)
	}
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	op, err := sources.Open(defs.Sources[0], reg)
	if err != nil {
		t.Fatal(err)
	}
	people := op.Schema.Index("people")
	var good, bad, sum int64
	err = op.Source.Read(context.Background(), connectors.Positions{}, func(_ context.Context, batch []connectors.Record) error {
		for _, r := range batch {
			if r.Err != nil {
				bad++
				continue
			}
			good++
			sum += r.Values[people].(int64)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if good+bad != 2*55488 {
		t.Fatalf("oracle: %d records + %d rejects, want 2 × 55,488", good, bad)
	}
	t.Logf("oracle: %d records (sum %d), %d rejects", good, sum, bad)

	e := newEnv(t, cfg)
	e.replace("lake_writer: {flush_rows: 100000, flush_interval: 2s, idle_flush: 300ms}", "lake_writer: {flush_rows: 2999, flush_interval: 500ms, idle_flush: 200ms}") // odd: a commit ends between the two records of a row
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 3))
	t.Logf("kill schedule seed %d", seed)
	e.killRepeatedly(10, rng, 150, 500, "select count(*) from raw.crowd_counts")
	s := e.serve("serve-final.log")
	waitFor(t, "the lake to hold every record", 3*time.Minute, func() (bool, string) {
		out, errOut, err := e.try("sql", "--format", "csv", "select count(*) from raw.crowd_counts")
		if err != nil {
			return false, errOut
		}
		n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimPrefix(out, "count_star()\n")), 10, 64)
		return n >= good, strings.TrimSpace(out)
	})
	time.Sleep(2 * time.Second)
	r := e.sqlRows("select count(*), count(distinct _cursor), sum(people), count(*) filter (where direction = 'inbound') from raw.crowd_counts")
	s.stop(t)
	t.Logf("lake: rows, distinct cursors, checksum, inbound = %v", r[0])
	if r[0][0] != strconv.FormatInt(good, 10) || r[0][1] != r[0][0] || r[0][2] != strconv.FormatInt(sum, 10) {
		t.Fatalf("lake holds %v (rows, distinct cursors, checksum); want %d, %d, %d\n%s", r[0], good, good, sum, s.logTail())
	}
	list := e.run("dlq", "list")
	m := regexp.MustCompile(`(?m)^fremont\s+(\d+)`).FindStringSubmatch(list)
	if bad > 0 && (m == nil || m[1] != strconv.FormatInt(bad, 10)) {
		t.Errorf("dlq list (want %d letters for fremont):\n%s", bad, list)
	}
}
