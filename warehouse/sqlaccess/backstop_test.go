package sqlaccess_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"citybrain/warehouse/sqlaccess"
	"citybrain/warehouse/sqlaccess/sqltest"
)

// backstopFixture is a fixture whose OnBackstop reports on a channel
// (serve restarts instead).
func backstopFixture(t *testing.T, cfg sqlaccess.Config) (*sqltest.Fixture, chan string) {
	f := sqltest.New(t, cfg)
	fired := make(chan string, 8)
	f.Access.OnBackstop = func(reason string) { fired <- reason }
	return f, fired
}

func outcomes(t *testing.T, f *sqltest.Fixture) map[string]string {
	t.Helper()
	if err := f.Auditor.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	rows, err := run(t, f, "admin", "select sql, string_agg(outcome, ',' order by outcome) from audit.queries group by sql")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range rows {
		got[r[0].(string)] = r[1].(string)
	}
	return got
}

// A scalar call DuckDB cannot interrupt (levenshtein of two long strings
// is one call on one row) is reported once it runs the grace past its
// statement timeout, audited as killed; a statement beside it as
// cancelled. A long statement DuckDB can interrupt ends at its timeout and
// never reaches the backstop.
func TestBackstopUninterruptible(t *testing.T) {
	cfg := sqlaccess.DefaultConfig()
	cfg.StatementTimeout = 500 * time.Millisecond
	cfg.Backstop.Grace = 500 * time.Millisecond
	f, fired := backstopFixture(t, cfg)

	// Interruptible: ends at the timeout, nothing fired.
	long := "select count(*) from range(10000000000) a, range(10) b"
	if _, err := run(t, f, "analyst", long); err == nil || !strings.Contains(err.Error(), "57014") && !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("%s: %v, want a timeout", long, err)
	}
	select {
	case r := <-fired:
		t.Fatalf("backstop fired on an interruptible statement: %s", r)
	case <-time.After(1500 * time.Millisecond):
	}

	// A cursor left open (no DuckDB call running) is not a culprit.
	ctx := context.Background()
	idle, err := f.Access.Open(ctx, f.User(t, "analyst"), "pgwire", "idle")
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	ist, err := idle.Prepare(ctx, "select * from range(10)")
	if err != nil {
		t.Fatal(err)
	}
	irows, err := ist.Query(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}

	bomb := "select levenshtein(repeat('a', 50000), repeat('b', 50000))"
	start := time.Now()
	done := make(chan error, 1)
	go func() { _, err := run(t, f, "dept_water", bomb); done <- err }()
	select {
	case r := <-fired:
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("fired after %v", took)
		}
		if !strings.Contains(r, "levenshtein") || !strings.Contains(r, "dept_water") || !strings.Contains(r, "could not be interrupted") {
			t.Errorf("reason %q: want the user, the statement and why", r)
		}
	case err := <-done:
		t.Fatalf("statement ended (%v) before the backstop fired; make it longer", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("backstop did not fire")
	}
	<-done // it runs on: nothing here restarts the process
	irows.Close(nil)
	ist.Close()
	got := outcomes(t, f)
	if !strings.Contains(got[bomb], "killed") {
		t.Errorf("audit of %s: %q, want killed", bomb, got[bomb])
	}
	if !strings.Contains(got["select * from range(10)"], "cancelled") {
		t.Errorf("audit of the open cursor: %q, want cancelled", got["select * from range(10)"])
	}
	if got[long] != "timeout" {
		t.Errorf("audit of %s: %q, want timeout only", long, got[long])
	}
	select {
	case r := <-fired:
		t.Errorf("fired twice: %s", r)
	default:
	}
}

// A statement that grows serve's memory beyond the running statements'
// limits and the slack is reported while it runs, audited as killed:
// list_sort of 16 M elements took 1.5 GB under a 100 MB memory_limit
// (replace() building a 256 MB string took 490 MB), outside DuckDB's
// buffer pool.
func TestBackstopMemory(t *testing.T) {
	cfg := sqlaccess.DefaultConfig()
	cfg.MemoryLimit = "100MB"
	cfg.Backstop.MemorySlack = "300MB"
	f, fired := backstopFixture(t, cfg)
	bomb := "select length(list_sort(range(16000000)))"
	done := make(chan error, 1)
	go func() { _, err := run(t, f, "analyst", bomb); done <- err }()
	select {
	case r := <-fired:
		if !strings.Contains(r, "resident memory") || !strings.Contains(r, "analyst") {
			t.Errorf("reason %q: want the user and the memory", r)
		}
	case err := <-done:
		t.Fatalf("statement ended (%v) before the backstop fired", err)
	case <-time.After(2 * time.Minute):
		t.Fatal("backstop did not fire")
	}
	<-done
	if got := outcomes(t, f); !strings.Contains(got[bomb], "killed") {
		t.Errorf("audit of the bomb: %q, want killed", got[bomb])
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"2GB": 2e9, "1.5GiB": 1.5 * (1 << 30), "512 MB": 512e6, "100": 100, "": 0, "64KiB": 64 << 10, "1.25 GiB": 1.25 * (1 << 30)} {
		if got, err := sqlaccess.ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"lots", "2XB", "-1GB"} {
		if _, err := sqlaccess.ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
}
