package scheduler

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var shanghai, _ = time.LoadLocation("Asia/Shanghai")

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04", s, shanghai)
	if err != nil {
		panic(err)
	}
	return t
}

func TestScheduleNext(t *testing.T) {
	for _, tc := range []struct {
		expr, tz, from, want string
	}{
		{"0 6 * * *", "", "2026-11-28 05:59", "2026-11-28 06:00"},
		{"0 6 * * *", "", "2026-11-28 06:00", "2026-11-29 06:00"},
		{"*/15 * * * *", "", "2026-11-28 06:01", "2026-11-28 06:15"},
		{"30 8 * * 1-5", "", "2026-11-28 09:00", "2026-11-30 08:30"}, // Saturday → Monday
		{"0 0 1 * *", "", "2026-11-28 09:00", "2026-12-01 00:00"},
		{"@daily", "", "2026-12-31 23:00", "2027-01-01 00:00"},
		{"0 9 * * 0", "", "2026-11-28 09:00", "2026-11-29 09:00"},
		{"0 9 * * 7", "", "2026-11-28 09:00", "2026-11-29 09:00"},
		{"0 6 * * *", "UTC", "2026-11-28 13:00", "2026-11-28 14:00"}, // 06:00 UTC = 14:00 Beijing
	} {
		s, err := ParseSchedule(tc.expr, tc.tz)
		if err != nil {
			t.Fatalf("%s: %v", tc.expr, err)
		}
		got := s.Next(at(tc.from))
		if !got.Equal(at(tc.want)) {
			t.Errorf("%s (%s) after %s: got %s, want %s", tc.expr, tc.tz, tc.from, got.In(shanghai), tc.want)
		}
		if p := s.Prev(got); !p.Equal(got) {
			t.Errorf("%s Prev(%s) = %s", tc.expr, got, p)
		}
	}
	for _, bad := range []string{"", "* * * *", "60 * * * *", "* 24 * * *", "a * * * *", "*/0 * * * *", "5-1 * * * *"} {
		if _, err := ParseSchedule(bad, ""); !errors.Is(err, ErrSchedule) {
			t.Errorf("%q: want ErrSchedule, got %v", bad, err)
		}
	}
	if _, err := ParseSchedule("0 6 * * *", "Mars/Olympus"); !errors.Is(err, ErrSchedule) {
		t.Errorf("bad zone: %v", err)
	}
}

type recorder struct {
	mu      sync.Mutex
	periods []time.Time
	fail    map[int64]int // period (unix) → failures left
	sleep   time.Duration
	running atomic.Int32
	overlap atomic.Bool
}

func (r *recorder) run(ctx context.Context, p time.Time, attempt int) error {
	if r.running.Add(1) > 1 {
		r.overlap.Store(true)
	}
	defer r.running.Add(-1)
	if r.sleep > 0 {
		time.Sleep(r.sleep)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail[p.Unix()] > 0 {
		r.fail[p.Unix()]--
		return errors.New("delivery endpoint down")
	}
	r.periods = append(r.periods, p)
	return nil
}

func newSched(t *testing.T, dir string, clk Clock, cfg Config) *Scheduler {
	t.Helper()
	l, err := OpenLedger(dir)
	if err != nil {
		t.Fatal(err)
	}
	return New(cfg, l, clk, nil)
}

func daily(t *testing.T) Schedule {
	s, err := ParseSchedule("0 6 * * *", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunOnScheduleWithFakeClock(t *testing.T) {
	dir := t.TempDir()
	clk := NewFakeClock(at("2026-11-28 05:00"))
	s := newSched(t, dir, clk, DefaultConfig())
	rec := &recorder{}
	if err := s.Add(Job{Name: "water_daily", Schedule: daily(t), Run: rec.run}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Run(ctx) }()
	deadline := time.After(20 * time.Second)
	for {
		rec.mu.Lock()
		n := len(rec.periods)
		rec.mu.Unlock()
		if n >= 3 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("only %d runs", n)
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	<-done
	want := []time.Time{at("2026-11-28 06:00"), at("2026-11-29 06:00"), at("2026-11-30 06:00")}
	for i, w := range want {
		if !rec.periods[i].Equal(w) {
			t.Errorf("run %d: period %s, want %s", i, rec.periods[i], w)
		}
	}
}

func TestCatchUpAfterDowntime(t *testing.T) {
	for _, tc := range []struct {
		policy string
		want   []string
	}{
		{"all", []string{"2026-11-29 06:00", "2026-11-30 06:00", "2026-12-01 06:00"}},
		{"latest", []string{"2026-12-01 06:00"}},
		{"none", nil},
	} {
		t.Run("catch_up="+tc.policy, func(t *testing.T) {
			dir := t.TempDir()
			clk := NewFakeClock(at("2026-11-28 07:00"))
			cfg := DefaultConfig()
			cfg.CatchUp = tc.policy
			rec := &recorder{}
			s := newSched(t, dir, clk, cfg)
			s.Add(Job{Name: "x", Schedule: daily(t), Run: rec.run})
			if runs, err := s.Tick(context.Background()); err != nil || len(runs) != 0 {
				t.Fatalf("first tick: %v %v (a new job must not backfill)", runs, err)
			}
			// serve is down for three days and a bit; a new process starts.
			clk.Set(at("2026-12-01 09:30"))
			s2 := newSched(t, dir, clk, cfg)
			s2.Add(Job{Name: "x", Schedule: daily(t), Run: rec.run})
			runs, err := s2.Tick(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(rec.periods) != len(tc.want) {
				t.Fatalf("ran %v, want %v", rec.periods, tc.want)
			}
			for i, w := range tc.want {
				if !rec.periods[i].Equal(at(w)) {
					t.Errorf("run %d: %s, want %s", i, rec.periods[i], w)
				}
				if !runs[i].CatchUp {
					t.Errorf("run %d not marked catch_up", i)
				}
			}
			// Nothing more is due until tomorrow, and a restart does not re-run.
			if runs, _ := newSchedWith(t, dir, clk, cfg, rec).Tick(context.Background()); len(runs) != 0 {
				t.Errorf("re-ran after restart: %v", runs)
			}
			l, _ := OpenLedger(dir)
			all, _ := l.Runs("x")
			skipped := 0
			for _, r := range all {
				if r.Status == "skipped" {
					skipped++
				}
			}
			if skipped != 3-len(tc.want) {
				t.Errorf("%d skipped records, want %d", skipped, 3-len(tc.want))
			}
		})
	}
}

func newSchedWith(t *testing.T, dir string, clk Clock, cfg Config, rec *recorder) *Scheduler {
	s := newSched(t, dir, clk, cfg)
	s.Add(Job{Name: "x", Schedule: daily(t), Run: rec.run})
	return s
}

func TestRetryWithBackoff(t *testing.T) {
	dir := t.TempDir()
	clk := NewFakeClock(at("2026-11-28 05:00"))
	cfg := DefaultConfig()
	cfg.MaxRetries, cfg.Backoff, cfg.BackoffMax = 3, 30*time.Second, 90*time.Second
	p := at("2026-11-28 06:00")
	rec := &recorder{fail: map[int64]int{p.Unix(): 3}}
	s := newSched(t, dir, clk, cfg)
	j := Job{Name: "r", Schedule: daily(t), Run: rec.run}
	s.Add(j)
	s.Tick(context.Background())
	clk.Set(at("2026-11-28 06:00"))
	runs, err := s.Tick(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Status != "ok" || runs[0].Attempts != 4 {
		t.Fatalf("runs %+v, want one ok run after 4 attempts", runs)
	}
	waits := clk.Waits()
	want := []time.Duration{30 * time.Second, 60 * time.Second, 90 * time.Second}
	if len(waits) != len(want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Errorf("wait %d = %s, want %s", i, waits[i], want[i])
		}
	}
	// Out of retries: recorded as failed, the schedule moves on.
	p2 := at("2026-11-29 06:00")
	rec.fail[p2.Unix()] = 10
	clk.Set(p2)
	runs, _ = s.Tick(context.Background())
	if len(runs) != 1 || runs[0].Status != "failed" || runs[0].Attempts != 4 || runs[0].Error == "" {
		t.Fatalf("runs %+v, want one failed run after 4 attempts", runs)
	}
	l, _ := OpenLedger(dir)
	if r, ok := l.Last("r", p2); !ok || r.Status != "failed" {
		t.Errorf("ledger: %+v %v", r, ok)
	}
}

func TestNoDoubleRun(t *testing.T) {
	dir := t.TempDir()
	clk := NewFakeClock(at("2026-11-28 05:00"))
	rec := &recorder{sleep: 50 * time.Millisecond}
	// Three schedulers on one data directory: three serve processes, or a
	// serve and two restarts racing.
	var ss []*Scheduler
	for range 3 {
		s := newSched(t, dir, clk, DefaultConfig())
		s.Add(Job{Name: "d", Schedule: daily(t), Run: rec.run})
		ss = append(ss, s)
	}
	ss[0].Tick(context.Background())
	clk.Set(at("2026-12-01 06:00")) // four periods due
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				s.Tick(context.Background())
			}
		}()
	}
	wg.Wait()
	if rec.overlap.Load() {
		t.Error("two runs of the job overlapped")
	}
	seen := map[time.Time]int{}
	for _, p := range rec.periods {
		seen[p]++
	}
	for p, n := range seen {
		if n != 1 {
			t.Errorf("period %s ran %d times", p, n)
		}
	}
	if len(seen) != 4 {
		t.Errorf("%d periods ran, want 4: %v", len(seen), rec.periods)
	}
	// A held claim is refused, also to a manual run.
	l, _ := OpenLedger(dir)
	c, err := l.Claim("d", at("2026-12-02 06:00"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Claim("d", at("2026-12-02 06:00")); !errors.Is(err, ErrBusy) {
		t.Errorf("second claim: %v, want ErrBusy", err)
	}
	c.Release()
	c2, err := l.Claim("d", at("2026-12-02 06:00"))
	if err != nil {
		t.Errorf("claim after release: %v", err)
	}
	c2.Release()
}
