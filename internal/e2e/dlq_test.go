package e2e

import (
	"strings"
	"testing"
)

// TestDeadLetterReplay: rejects are listed and shown with cursor, reason and
// raw bytes; after the mapping is fixed, replay writes the rows that now map
// into the lake exactly once (a second replay adds nothing), and the rest
// stay dead letters.
func TestDeadLetterReplay(t *testing.T) {
	path, _ := withMalformed(t, t.TempDir())
	e := newEnv(t, weatherSourceYAML(t, "weather", path))
	e.run("ingest", "weather", "--no-progress")
	if got := e.sqlInt("select count(*) from raw.weather"); got != 35064 {
		t.Fatalf("rows = %d, want 35064", got)
	}
	list := e.run("dlq", "list")
	if !strings.Contains(list, "weather") || !strings.Contains(list, " 2 ") && !strings.Contains(list, "\t2\t") && !strings.Contains(list, "  2  ") {
		t.Logf("dlq list:\n%s", list)
	}
	show := e.run("dlq", "show", "weather")
	for _, want := range []string{"guanyuan.csv#1002", "guanyuan.csv#1003", "not a number", "99999,2014"} {
		if !strings.Contains(show, want) {
			t.Errorf("dlq show lacks %q:\n%s", want, show)
		}
	}
	// The fix: "abc" means missing in this feed.
	e.replace(`null_values:
          - NA`, `null_values:
          - NA
          - abc`)
	out := e.run("dlq", "replay", "weather")
	if !strings.Contains(out, "replayed 已重放 1, still failing 仍失败 1") {
		t.Fatalf("replay output:\n%s", out)
	}
	// The replayed line is a later version of the hour 2014-01-01 00:00
	// (Beijing) already in the table: it replaces that row (keep_latest).
	if got := e.sqlInt("select count(*) from raw.weather"); got != 35064 {
		t.Fatalf("after replay rows = %d, want 35064 (the replayed row replaces its hour)", got)
	}
	if got := e.sqlInt("select count(*) from raw.weather where pm25 is null and _cursor like 'replay:guanyuan.csv#1003%'"); got != 1 {
		t.Errorf("replayed row not found by its replay cursor: %d", got)
	}
	if got := e.sqlInt("select count(*) from raw.weather where observed_at = TIMESTAMPTZ '2013-12-31 16:00:00+00'"); got != 1 {
		t.Errorf("the replayed hour has %d rows, want 1", got)
	}
	e.run("dlq", "replay", "weather")
	if got := e.sqlInt("select count(*) from raw.weather"); got != 35064 {
		t.Fatalf("after a second replay rows = %d, want 35064 (exactly once)", got)
	}
	check := e.run("connectors", "check")
	if !strings.Contains(check, "weather") || !strings.Contains(check, "ok") {
		t.Errorf("connectors check:\n%s", check)
	}
}
