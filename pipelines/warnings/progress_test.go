package warnings

import (
	"testing"
	"time"

	"citybrain/internal/freshness"
)

// TestProgressMeasured: "caught up" is measured against the topics' ends,
// not remembered — the engine once reported caught_up while days behind.
func TestProgressMeasured(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	p := &Progress{now: func() time.Time { return now }}
	reg := freshness.New(p.now, freshness.DefaultThresholds())

	// A first start with history in the topics: behind, not caught up, even before any batch —
	// also when an earlier read (before more topics appeared) had reached its ends.
	p.start(now.Add(-time.Second), 0)
	p.start(now, 1_000_000)
	p.pending(now.Add(-3 * time.Second)) // the first fetched record was appended 3 s ago
	if r := p.Report(); r.CaughtUp || r.Behind != 1_000_000 || r.LagS != 3 {
		t.Fatalf("replaying: %+v", r)
	}
	// A batch evaluated, still behind: the wait is measured from the last record evaluated.
	now = now.Add(20 * time.Second)
	ev := time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)
	p.update(400_000, ev, now.Add(-15*time.Second), false)
	p.inputs(time.Date(2026, 12, 8, 5, 25, 0, 0, time.UTC))
	p.fresh(reg)
	r := p.Report()
	if r.CaughtUp || r.LagS != 15 || r.EventTime == nil || !r.EventTime.Equal(ev) {
		t.Fatalf("behind: %+v", r)
	}
	row, _ := reg.Get(EnginePath)
	if row.Behind != 400_000 || row.EventLagS != 4*24*3600-35*60 || row.CaughtUp {
		t.Fatalf("engine freshness: %+v", row)
	}
	// Reaching the ends: caught up, nothing pending.
	changed, caught, _ := p.update(0, ev.Add(time.Hour), now, true)
	if !changed || !caught || !p.Report().CaughtUp || p.Report().LagS != 0 {
		t.Fatalf("caught up: changed %v caught %v %+v", changed, caught, p.Report())
	}
	// New records arrive and the engine stops evaluating (stuck, or starved of CPU):
	// the ends read every 2 s show them behind, and after 10 s it is no longer caught up.
	p.pending(now.Add(time.Second))
	now = now.Add(2 * time.Second)
	p.update(5_000, time.Time{}, time.Time{}, true)
	if !p.Report().CaughtUp {
		t.Fatalf("2 s after the ends: %+v", p.Report())
	}
	now = now.Add(30 * time.Second)
	changed, caught, _ = p.update(90_000, time.Time{}, time.Time{}, true)
	if r := p.Report(); !changed || caught || r.CaughtUp || r.LagS != 31 {
		t.Fatalf("stuck 30 s: changed %v %+v", changed, r)
	}
	// And the report ages by itself, with no update at all.
	now = now.Add(time.Hour)
	if r := p.Report(); r.CaughtUp || r.LagS != 3631 {
		t.Fatalf("stuck an hour: %+v", r)
	}
}

// TestActiveDoesNotWaitForBatch: GET /api/warnings reads the active
// warnings published after the last batch; it does not wait for the batch
// under way (it once timed out through whole catch-up batches).
func TestActiveDoesNotWaitForBatch(t *testing.T) {
	e := newTestEngine(t, DefaultConfig(), "")
	e.Active()
	e.mu.Lock() // a batch under way
	defer e.mu.Unlock()
	done := make(chan struct{})
	go func() { e.Active(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Active waited for the batch under way")
	}
}
