package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestModelsRunWhileServing runs `citybrain models run` from the CLI while
// `citybrain serve` runs the same models every second: both commit the same
// marts tables, and the CLI's runs (and serve's) must all succeed, a commit
// that loses the race being retried.
func TestModelsRunWhileServing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts citybrain serve")
	}
	e := newEnv(t, "models: {interval: 1s, on_commit: false, test: false}\n")
	s := e.serve("serve.log")
	waitFor(t, "serve's first model run", 3*time.Minute, func() (bool, string) {
		out, errOut, err := e.try("sql", "--format", "csv", "select count(distinct run_id) from marts.model_runs")
		return err == nil && !strings.HasSuffix(strings.TrimSpace(out), "\n0"), out + errOut + "\nserve log:\n" + s.logTail()
	})
	for i := range 3 {
		out := e.run("models", "run", "--as-of", "2026-06-30")
		if !strings.Contains(out, "14/14 models ok") || !strings.Contains(out, "serve is running") {
			t.Fatalf("CLI run %d while serving:\n%s", i, out)
		}
	}
	log := s.logTail()
	s.stop(t)
	if strings.Contains(log, "model run failed") {
		t.Errorf("serve's model runs failed meanwhile:\n%s", log)
	}
	serveRuns := e.sqlInt("select count(distinct run_id) from marts.model_runs where vars not like '%2026-06-30%'")
	cliRuns := e.sqlInt("select count(distinct run_id) from marts.model_runs where vars like '%\"as_of_date\":\"2026-06-30\"%'")
	if cliRuns != 3 || serveRuns < 2 {
		t.Errorf("runs recorded: %d from the CLI (want 3), %d from serve (want ≥ 2)", cliRuns, serveRuns)
	}
	t.Logf("%d CLI runs and %d serve runs committed the same marts", cliRuns, serveRuns)
}
