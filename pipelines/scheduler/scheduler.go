// Package scheduler is citybrain's built-in cron: it runs jobs (the
// departments' extracts) at their scheduled times in their time zones,
// makes up runs missed while the platform was down, retries failures with
// exponential backoff, and never runs one job's period twice at once — not
// even across processes or restarts (see Ledger). Each run is handed its
// scheduled time (the period), so outputs are named by it and a re-run
// replaces rather than duplicates.
//
// Time comes from a Clock, so tests drive days of schedule with a
// FakeClock. Apache Airflow is the scale-out alternative (pipelines/airflow
// generates DAGs that call the same binary).
package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Config is the extracts.scheduler section of citybrain.yaml.
type Config struct {
	// Enabled runs the scheduler inside citybrain serve.
	Enabled bool `yaml:"enabled"`
	// CatchUp says what happens to runs missed while serve was down:
	// "all" (each missed period, oldest first, at most MaxCatchUp),
	// "latest" (only the most recent missed one) or "none" (skip them).
	CatchUp string `yaml:"catch_up"`
	// MaxCatchUp bounds the missed periods made up per job ("all").
	MaxCatchUp int `yaml:"max_catch_up"`
	// MaxRetries is how many times a failed run is retried.
	MaxRetries int `yaml:"max_retries"`
	// Backoff is the wait before the first retry; it doubles per retry.
	Backoff time.Duration `yaml:"backoff"`
	// BackoffMax caps the wait between retries.
	BackoffMax time.Duration `yaml:"backoff_max"`
}

// DefaultConfig: enabled, catch up every missed period (at most 24),
// 3 retries from 30 s doubling to at most 10 min.
func DefaultConfig() Config {
	return Config{Enabled: true, CatchUp: "all", MaxCatchUp: 24, MaxRetries: 3, Backoff: 30 * time.Second, BackoffMax: 10 * time.Minute}
}

// Validate checks the section.
func (c Config) Validate() error {
	switch c.CatchUp {
	case "all", "latest", "none":
	default:
		return fmt.Errorf("extracts.scheduler.catch_up %q: want all, latest or none", c.CatchUp)
	}
	if c.MaxCatchUp < 1 {
		return errors.New("extracts.scheduler.max_catch_up must be ≥ 1")
	}
	if c.MaxRetries < 0 || c.Backoff < 0 || c.BackoffMax < 0 {
		return errors.New("extracts.scheduler: max_retries, backoff and backoff_max must be ≥ 0")
	}
	return nil
}

// Job is one scheduled task.
type Job struct {
	// Name is unique among jobs ([A-Za-z0-9_.-]).
	Name     string
	Schedule Schedule
	// Run does the work of one period (the scheduled time). It is called
	// again, after a backoff, when it returns an error, up to
	// Config.MaxRetries times; attempt counts from 1. It must honour ctx.
	Run func(ctx context.Context, period time.Time, attempt int) error
}

// Scheduler runs jobs on their schedules.
type Scheduler struct {
	cfg    Config
	ledger *Ledger
	clock  Clock
	log    *slog.Logger

	mu   sync.Mutex
	jobs []Job
}

// New returns a scheduler keeping its ledger in ledger.
func New(cfg Config, ledger *Ledger, clock Clock, log *slog.Logger) *Scheduler {
	if clock == nil {
		clock = Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{cfg: cfg, ledger: ledger, clock: clock, log: log}
}

// Add registers a job.
func (s *Scheduler) Add(j Job) error {
	if !jobRE.MatchString(j.Name) {
		return fmt.Errorf("scheduler: bad job name %q", j.Name)
	}
	if j.Schedule.IsZero() || j.Run == nil {
		return fmt.Errorf("scheduler: job %q needs a schedule and a Run", j.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.jobs {
		if o.Name == j.Name {
			return fmt.Errorf("scheduler: job %q twice", j.Name)
		}
	}
	s.jobs = append(s.jobs, j)
	return nil
}

// Due lists the periods of job that should run at now, given what the
// ledger says was handled and the catch-up policy. The first time a job is
// seen nothing is due: its watermark is set to now, so that enabling an
// extract does not backfill its whole history.
func (s *Scheduler) Due(j Job, now time.Time) ([]time.Time, error) {
	wm, err := s.ledger.Watermark(j.Name)
	if err != nil {
		return nil, err
	}
	if wm.IsZero() {
		return nil, s.ledger.SetWatermark(j.Name, now)
	}
	var due []time.Time
	for p := j.Schedule.Next(wm); !p.IsZero() && !p.After(now); p = j.Schedule.Next(p) {
		due = append(due, p)
		if len(due) > 10000 { // a minutely job down for a week: keep the newest
			due = due[len(due)-s.cfg.MaxCatchUp:]
		}
	}
	if len(due) <= 1 {
		return due, nil
	}
	switch s.cfg.CatchUp {
	case "none":
		// Only a period that is due just now runs; older ones are skipped.
		last := due[len(due)-1]
		for _, p := range due[:len(due)-1] {
			s.skip(j, p, "catch_up: none")
		}
		if now.Sub(last) <= time.Minute {
			return []time.Time{last}, nil
		}
		s.skip(j, last, "catch_up: none")
		return nil, s.ledger.SetWatermark(j.Name, last)
	case "latest":
		for _, p := range due[:len(due)-1] {
			s.skip(j, p, "catch_up: latest")
		}
		return due[len(due)-1:], nil
	default:
		if len(due) > s.cfg.MaxCatchUp {
			for _, p := range due[:len(due)-s.cfg.MaxCatchUp] {
				s.skip(j, p, fmt.Sprintf("catch_up: more than max_catch_up=%d missed", s.cfg.MaxCatchUp))
			}
			due = due[len(due)-s.cfg.MaxCatchUp:]
		}
		return due, nil
	}
}

func (s *Scheduler) skip(j Job, p time.Time, why string) {
	now := s.clock.Now()
	s.log.Warn("missed run skipped", "job", j.Name, "period", p, "reason", why)
	s.ledger.Record(Run{Job: j.Name, Period: p, Status: "skipped", Started: now, Finished: now, Error: why})
}

// Tick runs, one after the other, every period of every job that is due
// now, then returns the runs it made.
func (s *Scheduler) Tick(ctx context.Context) ([]Run, error) {
	s.mu.Lock()
	jobs := append([]Job(nil), s.jobs...)
	s.mu.Unlock()
	var out []Run
	var errs []error
	for _, j := range jobs {
		runs, err := s.tickJob(ctx, j)
		out = append(out, runs...)
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

func (s *Scheduler) tickJob(ctx context.Context, j Job) ([]Run, error) {
	now := s.clock.Now()
	due, err := s.Due(j, now)
	if err != nil {
		return nil, err
	}
	var out []Run
	for i, p := range due {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		r, err := s.RunPeriod(ctx, j, p, i < len(due)-1 || now.Sub(p) > time.Minute)
		if errors.Is(err, ErrBusy) {
			// Another process runs it; it will record the outcome. Do not
			// move the watermark past a period we did not see finish.
			s.log.Info("run already in progress elsewhere", "job", j.Name, "period", p)
			return out, nil
		}
		if err != nil && ctx.Err() != nil {
			return out, ctx.Err()
		}
		if r.Status != "" {
			out = append(out, r)
		}
		if err := s.ledger.SetWatermark(j.Name, p); err != nil {
			return out, err
		}
	}
	return out, nil
}

// RunPeriod runs one period of a job under its claim, with retries. A
// period already recorded as ok is not run again (the returned Run is then
// empty). ErrBusy when another run of the period is going on.
func (s *Scheduler) RunPeriod(ctx context.Context, j Job, period time.Time, catchUp bool) (Run, error) {
	claim, err := s.ledger.Claim(j.Name, period)
	if err != nil {
		return Run{}, err
	}
	defer claim.Release()
	if prev, ok := s.ledger.Last(j.Name, period); ok && prev.Status == "ok" {
		return Run{}, nil
	}
	r := Run{Job: j.Name, Period: period, Started: s.clock.Now(), CatchUp: catchUp}
	for attempt := 1; ; attempt++ {
		r.Attempts = attempt
		err = j.Run(ctx, period, attempt)
		if err == nil {
			r.Status, r.Error = "ok", ""
			break
		}
		r.Status, r.Error = "failed", err.Error()
		if ctx.Err() != nil || attempt > s.cfg.MaxRetries {
			break
		}
		wait := s.backoff(attempt)
		s.log.Warn("run failed; retrying", "job", j.Name, "period", period, "attempt", attempt, "retry_in", wait, "err", err)
		select {
		case <-ctx.Done():
		case <-s.clock.After(wait):
		}
		if ctx.Err() != nil {
			break
		}
	}
	r.Finished = s.clock.Now()
	if r.Status == "failed" {
		s.log.Error("run failed after retries", "job", j.Name, "period", period, "attempts", r.Attempts, "err", r.Error)
	} else {
		s.log.Info("run done", "job", j.Name, "period", period, "attempts", r.Attempts, "catch_up", catchUp)
	}
	if ctx.Err() != nil {
		return r, ctx.Err() // not recorded: the period runs again after a restart
	}
	return r, s.ledger.Record(r)
}

// backoff is the wait after the attempt-th failure.
func (s *Scheduler) backoff(attempt int) time.Duration {
	d := s.cfg.Backoff
	for i := 1; i < attempt && d < s.cfg.BackoffMax; i++ {
		d *= 2
	}
	if s.cfg.BackoffMax > 0 && d > s.cfg.BackoffMax {
		d = s.cfg.BackoffMax
	}
	return d
}

// Next is the earliest time any job is next due (zero: none).
func (s *Scheduler) Next() time.Time {
	s.mu.Lock()
	jobs := append([]Job(nil), s.jobs...)
	s.mu.Unlock()
	var next time.Time
	for _, j := range jobs {
		from, _ := s.ledger.Watermark(j.Name)
		if now := s.clock.Now(); from.IsZero() || from.Before(now) {
			from = now
		}
		if n := j.Schedule.Next(from); !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next
}

// Run ticks (catching up first) and then sleeps until the next scheduled
// time, until ctx is done. It re-checks at least every poll, so a clock
// jump or a new period recorded by another process is noticed.
func (s *Scheduler) Run(ctx context.Context) error {
	const poll = time.Minute
	for {
		if _, err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("scheduler tick", "err", err)
		}
		if ctx.Err() != nil {
			return nil
		}
		wait := poll
		if n := s.Next(); !n.IsZero() {
			wait = min(max(n.Sub(s.clock.Now()), 0), poll)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.clock.After(wait):
		}
	}
}
