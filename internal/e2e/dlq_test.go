package e2e

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"citybrain/internal/app"
	"citybrain/internal/config"
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
	if got := e.sqlInt("select count(*) from raw.weather where pm25 is null and _cursor like 'replay:dlq.weather/%!guanyuan.csv%231003'"); got != 1 {
		t.Errorf("replayed row not found by its replay cursor: %d", got)
	}
	if got := e.sqlInt("select count(*) from raw.weather where observed_at = TIMESTAMPTZ '2013-12-31 16:00:00+00'"); got != 1 {
		t.Errorf("the replayed hour has %d rows, want 1", got)
	}
	// dlq list: one letter pending (the broken line, re-queued), one
	// replayed; show lists the pending one, --all says what became of each.
	list = e.run("dlq", "list")
	if !regexp.MustCompile(`(?m)^weather\s+1\s+1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s`).MatchString(list) {
		t.Errorf("dlq list after replay (want weather, 1 pending, 1 replayed, its time):\n%s", list)
	}
	show = e.run("dlq", "show", "weather")
	if !strings.Contains(show, "guanyuan.csv#1002") || strings.Contains(show, "guanyuan.csv#1003") {
		t.Errorf("dlq show after replay lists other than the pending letter:\n%s", show)
	}
	all := e.run("dlq", "show", "weather", "--all")
	for _, want := range []string{"replayed 已重放 ", "still failing, re-queued 仍失败，已重新排队 ", "pending 待处理"} {
		if !strings.Contains(all, want) {
			t.Errorf("dlq show --all lacks %q:\n%s", want, all)
		}
	}
	out = e.run("dlq", "replay", "weather")
	if !strings.Contains(out, "replayed 已重放 0, still failing 仍失败 1") {
		t.Errorf("second replay output:\n%s", out)
	}
	if got := e.sqlInt("select count(*) from raw.weather"); got != 35064 {
		t.Fatalf("after a second replay rows = %d, want 35064 (exactly once)", got)
	}
	var status []struct {
		Source                 string
		Lag, Rejects, Replayed int64
	}
	if err := json.Unmarshal([]byte(e.run("status", "--json")), &status); err != nil {
		t.Fatal(err)
	}
	for _, st := range status {
		if st.Source == "weather" && (st.Lag != 0 || st.Rejects != 1 || st.Replayed != 1) {
			t.Errorf("status after replays: lag %d, rejects %d, replayed %d; want 0, 1, 1", st.Lag, st.Rejects, st.Replayed)
		}
	}
	check := e.run("connectors", "check")
	if !strings.Contains(check, "weather") || !strings.Contains(check, "ok") {
		t.Errorf("connectors check:\n%s", check)
	}
}

// TestReplayBookkeepingIsConstant: replaying 3,000 fixed rows leaves the
// lake's stream position with a constant number of entries (one per
// dead-letter partition, not one per replayed row), so later commits do not
// carry the replay in their metadata.
func TestReplayBookkeepingIsConstant(t *testing.T) {
	b, err := os.ReadFile(weatherCSV())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	const broken = 3000
	for i := 1; i <= broken; i++ {
		f := strings.Split(lines[i], ",")
		f[5] = "abc" // PM2.5
		lines[i] = strings.Join(f, ",")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "guanyuan.csv")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, weatherSourceYAML(t, "weather", path))
	e.run("ingest", "weather", "--no-progress")
	if got := e.sqlInt("select count(*) from raw.weather"); got != 35064-broken {
		t.Fatalf("rows = %d, want %d", got, 35064-broken)
	}
	e.replace(`null_values:
          - NA`, `null_values:
          - NA
          - abc`)
	if out := e.run("dlq", "replay", "weather"); !strings.Contains(out, "replayed 已重放 3000, still failing 仍失败 0") {
		t.Fatalf("replay output:\n%s", out)
	}
	if got := e.sqlInt("select count(*) from raw.weather"); got != 35064 {
		t.Fatalf("after replay rows = %d, want 35064", got)
	}
	cfg, err := config.Load(e.config, false)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.Open(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), app.NoBroker)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	st, err := a.Lake.State(context.Background(), "raw.weather")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Cursors) > 3 || len(st.Tokens) > 3 {
		t.Fatalf("after replaying %d rows the lake's position holds %d cursors and %d tokens, want ≤ 3 (one per stream): %v", broken, len(st.Cursors), len(st.Tokens), st.Cursors)
	}
}
