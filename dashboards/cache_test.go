package dashboards

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// The cache answers from memory after a commit: the answer is recomputed
// in the background while the previous one is served (after stale_wait),
// the commit's settle channel closes when the new one is in, answers that
// did not read the table are untouched, a failed recomputation keeps the
// last good answer, and an answer nobody asked for is dropped.
func TestCacheServesStale(t *testing.T) {
	c := newCache(50 * time.Millisecond)
	now := time.Now()
	c.now = func() time.Time { return now }
	var version atomic.Int64
	gate := make(chan struct{})
	var blocked atomic.Bool
	var fail atomic.Bool
	fn := func() ([]byte, []string, error) {
		if blocked.Load() {
			<-gate
		}
		if fail.Load() {
			return nil, nil, errors.New("lake unreadable")
		}
		return []byte{byte('0' + version.Load())}, []string{"marts.warnings"}, nil
	}
	other := func() ([]byte, []string, error) { return []byte("x"), []string{"raw.weather"}, nil }
	get := func(key string, f func() ([]byte, []string, error)) string {
		b, err := c.get(key, f)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := get("a", fn); got != "0" {
		t.Fatalf("first answer %q", got)
	}
	get("b", other)

	// A commit: recomputation blocked; the stale answer comes after the wait.
	blocked.Store(true)
	version.Store(1)
	settled := c.invalidate("marts.warnings")
	t0 := time.Now()
	if got := get("a", fn); got != "0" {
		t.Errorf("during recomputation got %q, want the stale 0", got)
	}
	if d := time.Since(t0); d < 40*time.Millisecond || d > 5*time.Second {
		t.Errorf("stale answer after %v, want about the 50 ms wait", d)
	}
	select {
	case <-settled:
		t.Fatal("settled before the recomputation ended")
	default:
	}
	// Another table's answer is fresh and immediate.
	if got := get("b", other); got != "x" {
		t.Errorf("b = %q", got)
	}
	close(gate)
	blocked.Store(false)
	select {
	case <-settled:
	case <-time.After(10 * time.Second):
		t.Fatal("never settled")
	}
	if got := get("a", fn); got != "1" {
		t.Errorf("after settling got %q, want 1", got)
	}

	// A commit of a table nobody read settles at once.
	select {
	case <-c.invalidate("raw.police_cases"):
	case <-time.After(5 * time.Second):
		t.Fatal("unrelated commit did not settle")
	}

	// A failed recomputation keeps the last good answer.
	fail.Store(true)
	<-c.invalidate("marts.warnings")
	if got := get("a", fn); got != "1" {
		t.Errorf("after a failed recomputation got %q, want the last good 1", got)
	}
	fail.Store(false)

	// Not asked for in idleAfter: dropped on the next commit, recomputed on demand.
	now = now.Add(idleAfter + time.Minute)
	version.Store(2)
	<-c.invalidate("marts.warnings")
	c.mu.Lock()
	_, kept := c.entries["a"]
	c.mu.Unlock()
	if kept {
		t.Error("an idle answer was kept")
	}
	if got := get("a", fn); got != "2" {
		t.Errorf("recomputed on demand: %q, want 2", got)
	}
}

// A commit while an answer is first computed: it is kept, and recomputed
// at once (it may predate the commit).
func TestCacheCommitDuringCompute(t *testing.T) {
	c := newCache(time.Minute)
	var calls atomic.Int64
	started, release := make(chan struct{}), make(chan struct{})
	fn := func() ([]byte, []string, error) {
		n := calls.Add(1)
		if n == 1 {
			close(started)
			<-release
		}
		return []byte{byte('0' + n)}, []string{"marts.warnings"}, nil
	}
	done := make(chan string)
	go func() { b, _ := c.get("a", fn); done <- string(b) }()
	<-started
	c.invalidate("marts.warnings")
	close(release)
	if got := <-done; got != "1" {
		t.Errorf("first request got %q", got)
	}
	// The next request waits (stale_wait 1 min) for the recomputation.
	if b, _ := c.get("a", fn); string(b) != "2" {
		t.Errorf("after the commit got %q, want the recomputed 2", b)
	}
}
