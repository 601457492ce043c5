package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"citybrain/internal/broker"
)

// TestReadOnlyCommandsDuringIngest: while `citybrain ingest` owns the
// embedded broker (no serve), status, dlq list and show use its broker
// instead of waiting for its lock, and sql and tables read the lake; each
// succeeds while the ingest is still running.
func TestReadOnlyCommandsDuringIngest(t *testing.T) {
	drop := t.TempDir()
	writeSignal(t, drop, 200_000, 20_000, 11)
	// One broken line, so dlq show has a letter to show.
	os.WriteFile(filepath.Join(drop, "signal-0000.csv"), append(mustRead(t, filepath.Join(drop, "signal-0000.csv")), []byte("XC-9999,not a time,1,2,3\n")...), 0o644)
	e := newEnv(t, signalSourceYAML("signal", filepath.Join(drop, "*.csv")))
	e.run("ingest", "signal", "--no-progress") // topics and table exist; a dead letter
	// More files, and an ingest of them in the background.
	more := t.TempDir()
	writeSignal(t, more, 200_000, 20_000, 13)
	for i := 0; i < 10; i++ {
		os.Rename(filepath.Join(more, fmt.Sprintf("signal-%04d.csv", i)), filepath.Join(drop, fmt.Sprintf("later-%04d.csv", i)))
	}
	cmd := exec.Command(binary, "--config", e.config, "ingest", "signal", "--no-progress")
	cmd.Dir = repoRoot()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	waitFor(t, "the ingest to own the embedded broker", time.Minute, func() (bool, string) {
		_, ok := broker.RunningEmbeddedAddr(e.dataDir())
		return ok && broker.EmbeddedInUse(e.dataDir()), ""
	})
	checks := []struct {
		args []string
		want string
	}{
		{[]string{"dlq", "show", "signal"}, "not a time"},
		{[]string{"dlq", "list"}, "signal"},
		{[]string{"status"}, "signal"},
		{[]string{"sql", "select count(*) > 0 from raw.mobile_signal"}, "true"},
		{[]string{"tables"}, "raw.mobile_signal"},
	}
	for _, c := range checks {
		out, errOut, err := e.try(append(c.args, "--log-level", "warn")...)
		if err != nil || !strings.Contains(out, c.want) {
			t.Errorf("citybrain %s during an ingest: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(c.args, " "), err, out, errOut)
		}
		if strings.Contains(errOut, "waiting for another citybrain process") {
			t.Errorf("citybrain %s waited for the ingest's broker lock:\n%s", strings.Join(c.args, " "), errOut)
		}
	}
	select {
	case err := <-done:
		done <- err
		t.Fatalf("the ingest ended (%v) before the read-only commands did: the test proves nothing; give it more input", err)
	default:
	}
	if err := <-done; err != nil {
		t.Fatalf("ingest: %v", err)
	}
	done <- nil
	if got := e.sqlInt("select count(*) from raw.mobile_signal"); got != 400_000 {
		t.Fatalf("rows = %d, want 400000", got)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
