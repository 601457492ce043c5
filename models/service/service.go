// Package service runs the model runner inside citybrain serve: all models
// at start, every models.interval, and (debounced) after commits to the
// tables the models read. It publishes its own commits on the commit bus so
// the query layer, dashboards and extracts see new marts at once. It is a
// separate package because internal/config imports models for its Config
// and the service needs internal/app.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"citybrain/internal/app"
	"citybrain/internal/freshness"
	"citybrain/models"
)

func init() {
	app.RegisterService(10, New)
}

// New builds the service; nil when models.enabled is false.
func New(rt *app.Runtime) (app.Service, error) {
	cfg := rt.App.Cfg.Models
	if !cfg.Enabled {
		return nil, nil
	}
	p, err := cfg.LoadProject()
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, project: p}, nil
}

// Service is the models service of citybrain serve.
type Service struct {
	cfg     models.Config
	project *models.Project
	rt      *app.Runtime
	runner  *models.Runner
	sources map[string]bool

	mu   sync.Mutex
	last *status
	// inputsAt is when an input was first committed after the last run started (zero: none).
	inputsAt time.Time
	// freshLogged is the freshness status last logged per source: a
	// source's status is logged when it changes, not on every run.
	freshLogged map[string]string
}

var _ app.Service = (*Service)(nil)

// status is what GET /api/models returns.
type status struct {
	RunID    string    `json:"run_id"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Trigger  string    `json:"trigger"`
	// Selected are the selectors of a partial run (a commit-triggered run
	// rebuilds what reads the committed sources); absent: every model ran.
	Selected []string         `json:"selected,omitempty"`
	Models   []modelStatus    `json:"models"`
	Tests    []testStatus     `json:"tests,omitempty"`
	Inputs   map[string]int64 `json:"inputs"`
	// Freshness is each declared source's status after the run.
	Freshness []freshStatus `json:"freshness,omitempty"`
	Error     string        `json:"error,omitempty"`
}

type modelStatus struct {
	Model    string `json:"model"`
	Status   string `json:"status"`
	Rows     int64  `json:"rows"`
	Snapshot int64  `json:"snapshot"`
	Millis   int64  `json:"ms"`
	Error    string `json:"error,omitempty"`
}

type freshStatus struct {
	Source string     `json:"source"`
	Status string     `json:"status"`
	Newest *time.Time `json:"newest,omitempty"`
}

type testStatus struct {
	Name    string `json:"name"`
	Model   string `json:"model"`
	Status  string `json:"status"`
	Failing int64  `json:"failing"`
}

// FreshPath is the model runner's freshness path: pending from the first
// commit of a model's input after the last run started; the newest snapshot
// and commit time of the marts after each run.
var FreshPath = freshness.Path{Component: "models", Name: "runner"}

// reportFresh writes the run's outcome to the freshness registry.
func (s *Service) reportFresh(rep *models.RunReport, err error) {
	reg := s.rt.Fresh
	if reg == nil {
		return
	}
	s.mu.Lock()
	again := s.inputsAt
	s.mu.Unlock()
	reg.Update(FreshPath, func(st *freshness.State) {
		st.PendingSince = again // zero unless an input was committed during the run
		st.Err = ""
		if err != nil {
			st.Err = err.Error()
			return
		}
		if rep == nil {
			return
		}
		st.Committed = rep.Finished
		for _, m := range rep.Models {
			if m.Snapshot > st.Snapshot {
				st.Snapshot = m.Snapshot
			}
		}
	})
	if rep != nil {
		reg.Observe("citybrain_models_run_seconds", "Model run durations / 模型运行耗时", rep.Finished.Sub(rep.Started).Seconds())
	}
	if err != nil {
		reg.Count("citybrain_models_run_errors", "Failed model runs / 模型运行失败次数", 1)
	}
}

// inputCommitted marks the runner pending from an input's commit at at.
func (s *Service) inputCommitted(at time.Time) {
	s.mu.Lock()
	if s.inputsAt.IsZero() {
		s.inputsAt = at
	}
	s.mu.Unlock()
	s.rt.Fresh.Pending(FreshPath, at)
}

// Name is "models".
func (*Service) Name() string { return "models" }

// Start builds the runner and mounts GET /api/models.
func (s *Service) Start(ctx context.Context, rt *app.Runtime) error {
	s.rt = rt
	a := rt.App
	s.runner = &models.Runner{
		Lake: a.Lake, Project: s.project, Log: a.Log.With("service", "models"),
		Threads: backgroundThreads(s.cfg.Threads), MemoryLimit: s.cfg.MemoryLimit,
		OnCommit: func(table string, snapshot int64) {
			if rt.Engine != nil {
				if err := rt.Engine.Refresh(context.Background(), table); err != nil {
					a.Log.Warn("refresh view", "table", table, "err", err)
				}
			}
			rt.Commits.Publish(app.Commit{Table: table, Snapshot: snapshot})
		},
		OnView: func(name, sql string) {
			if rt.Engine == nil {
				return
			}
			ns, tbl, _ := strings.Cut(name, ".")
			q := "CREATE SCHEMA IF NOT EXISTS " + ns + "; CREATE OR REPLACE VIEW " + ns + `."` + tbl + `" AS ` + sql
			if _, err := rt.Engine.DB().ExecContext(context.Background(), q); err != nil {
				a.Log.Warn("view model in the query layer", "model", name, "err", err)
			}
		},
	}
	// Marts are rebuilt in runs minutes apart (commit-triggered runs keep to 5 % of the time):
	// their freshness is judged on that scale, not on the warnings' minute.
	rt.Fresh.SetThresholds(FreshPath.Component, freshness.Thresholds{Warn: 10 * time.Minute, Error: 30 * time.Minute})
	s.sources = map[string]bool{}
	for _, m := range s.project.Models {
		for _, src := range m.SourceRefs {
			s.sources[src] = true
		}
	}
	// GET /api/models: the last run's models, tests, inputs and sources'
	// freshness — table names and row counts of every source, so for a
	// logged-in admin, leader or analyst; a department gets the count only.
	rt.Mux.HandleFunc("GET /api/models", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if rt.Auth != nil {
			u, err := rt.Auth.FromRequest(r)
			if err != nil {
				w.WriteHeader(http.StatusUnauthorized)
				json.NewEncoder(w).Encode(map[string]string{"error": "需要登录 login required: " + err.Error()})
				return
			}
			if !rt.Auth.ScopeOf(u).All {
				json.NewEncoder(w).Encode(map[string]any{"models": len(s.project.Models)})
				return
			}
		}
		s.mu.Lock()
		st := s.last
		s.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]any{"models": len(s.project.Models), "last_run": st})
	})
	rt.Banner("models: " + strconv.Itoa(len(s.project.Models)) + " models → marts.* (GET /api/models; citybrain models ls)")
	return nil
}

// commitDuty caps the share of time commit-triggered runs take: after a
// run that took d, the next commit-triggered one starts no sooner than
// d·(1/commitDuty − 1) after it ended (and never before models.debounce).
// Sources that commit every few seconds (the simulator at speed 60, the
// live feeds) otherwise kept the runner busy about half the time, rebuilding
// marts whose inputs had barely changed. At 5 % (and models.debounce 3 min),
// the demo at sim.speed 60 rebuilds the marts about every three minutes.
const commitDuty = 0.05

// commitDelay is how long to wait, at now, before a commit-triggered run,
// given when the last run ended and how long it took.
func commitDelay(debounce time.Duration, lastEnd time.Time, lastTook time.Duration, now time.Time) time.Duration {
	gap := time.Duration(float64(lastTook) * (1/commitDuty - 1))
	return max(debounce, lastEnd.Add(gap).Sub(now))
}

// liveWaitMax is the longest a model run waits for the warning engine to
// catch up (freshness.Registry.Yield): the marts' freshness goal is minutes.
const liveWaitMax = 3 * time.Minute

// backgroundThreads is the runner's DuckDB threads in serve: as configured,
// or (0) half the cores. A run that takes every core stalls the live path
// (the warning engine, the lake writers) for as long as it lasts: beside two
// CPU hogs on 2 cores, the engine fell 20–30 s behind during model runs.
func backgroundThreads(configured int) int {
	if configured > 0 {
		return configured
	}
	return max(1, runtime.NumCPU()/2)
}

// Run runs the models now, on the schedule and after source commits.
func (s *Service) Run(ctx context.Context) error {
	commits := s.rt.Commits.Subscribe()
	var lastEnd time.Time
	var lastTook time.Duration
	changed := map[string]bool{} // sources committed since the last run
	run := func(trigger string) {
		if trigger != "start" {
			// The live path first: wait (≤ liveWaitMax) while the
			// warning engine is behind.
			if w := s.rt.Fresh.Yield(ctx, 2*time.Second, liveWaitMax); w > time.Second {
				s.rt.App.Log.Info("model run waited for the warning engine to catch up", "service", "models", "trigger", trigger, "waited", w.Round(time.Second))
			}
		}
		start := time.Now()
		var sel []string
		if trigger == "commit" {
			sel = s.downstreamOf(changed)
		}
		clear(changed)
		s.runOnce(ctx, trigger, sel)
		lastEnd = time.Now()
		lastTook = lastEnd.Sub(start)
	}
	run("start")
	var tick <-chan time.Time
	if s.cfg.Interval > 0 {
		t := time.NewTicker(s.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	var debounce *time.Timer
	var fire <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
			run("schedule")
		case c := <-commits:
			if !s.cfg.OnCommit || !s.sources[c.Table] {
				continue
			}
			s.inputCommitted(c.At)
			changed[c.Table] = true
			if debounce == nil {
				debounce = time.NewTimer(commitDelay(s.cfg.Debounce, lastEnd, lastTook, time.Now()))
				fire = debounce.C
			}
		case <-fire:
			debounce, fire = nil, nil
			run("commit")
		}
	}
}

// downstreamOf selects the models that read a changed source, and every
// model downstream of them ("model+"); nil (every model) after a run that
// failed, so a broken model is retried whatever its inputs.
func (s *Service) downstreamOf(changed map[string]bool) []string {
	s.mu.Lock()
	failed := s.last != nil && s.last.Error != ""
	for _, m := range s.lastModels() {
		failed = failed || m.Status != "ok"
	}
	s.mu.Unlock()
	if failed {
		return nil
	}
	var sel []string
	for _, name := range s.project.Order() {
		for _, src := range s.project.Models[name].SourceRefs {
			if changed[src] {
				sel = append(sel, name+"+")
				break
			}
		}
	}
	return sel
}

// runOnce runs the selected models (sel: dbt-style selectors; nil: all).
func (s *Service) runOnce(ctx context.Context, trigger string, sel []string) {
	log := s.rt.App.Log.With("service", "models", "trigger", trigger)
	// Inputs committed from now on are not in this run: pending again after it.
	s.mu.Lock()
	s.inputsAt = time.Time{}
	s.mu.Unlock()
	rep, err := s.runner.Run(ctx, models.RunOptions{Select: sel})
	if ctx.Err() != nil {
		return
	}
	s.reportFresh(rep, err)
	st := &status{Trigger: trigger}
	if rep != nil {
		st.RunID, st.Started, st.Finished, st.Inputs = rep.RunID, rep.Started, rep.Finished, rep.Inputs
		for _, m := range rep.Models {
			ms := modelStatus{Model: m.Model, Status: m.Status, Rows: m.Rows, Snapshot: m.Snapshot, Millis: m.Took.Milliseconds()}
			if m.Err != nil {
				ms.Error = m.Err.Error()
			}
			st.Models = append(st.Models, ms)
		}
	}
	if err != nil {
		st.Error = err.Error()
		log.Error("model run failed; fix the model and it runs again on the next trigger / 模型运行失败", "err", err)
	} else {
		log.Info("models run", "run_id", rep.RunID, "models", len(rep.Models), "took", rep.Finished.Sub(rep.Started).Round(time.Millisecond))
	}
	if s.cfg.Test && (err == nil || !errors.Is(err, models.ErrProject)) {
		res, terr := s.runner.Test(ctx, sel, nil)
		for _, t := range res {
			st.Tests = append(st.Tests, testStatus{Name: t.Name, Model: t.Model, Status: t.Status, Failing: t.Failing})
		}
		if terr != nil && ctx.Err() == nil {
			log.Warn("data tests failed / 数据测试未通过", "err", terr)
		}
	}
	if fr, err := s.runner.Freshness(ctx); err == nil {
		if s.freshLogged == nil {
			s.freshLogged = map[string]string{}
		}
		for _, f := range fr {
			if prev, seen := s.freshLogged[f.Source]; freshnessChanged(prev, seen, f.Status) {
				s.freshLogged[f.Source] = f.Status
				switch {
				case f.Latest.IsZero():
					log.Warn("数据源尚无数据 source has no rows yet: check its connector (citybrain status) if this lasts", "source", f.Source)
				case f.Status == "warn":
					log.Warn("source is getting stale / 数据源更新滞后", "source", f.Source, "newest", f.Latest, "age", f.Age.Round(time.Minute))
				case f.Status == "error":
					log.Error("source is stale: check its connector (citybrain status) / 数据源超时未更新", "source", f.Source, "newest", f.Latest, "age", f.Age.Round(time.Minute))
				case prev != "":
					log.Info("数据源已恢复更新 source is fresh again", "source", f.Source, "newest", f.Latest)
				}
			}
			fs := freshStatus{Source: f.Source, Status: f.Status}
			if !f.Latest.IsZero() {
				latest := f.Latest
				fs.Newest = &latest
			}
			st.Freshness = append(st.Freshness, fs)
		}
	}
	s.mu.Lock()
	if sel != nil {
		// A partial run: the models it did not run keep their last outcome.
		ran := map[string]bool{}
		for _, m := range st.Models {
			ran[m.Model] = true
		}
		for _, m := range s.lastModels() {
			if !ran[m.Model] {
				st.Models = append(st.Models, m)
			}
		}
		st.Selected = sel
	}
	s.last = st
	s.mu.Unlock()
}

// lastModels is the last run's model outcomes (s.mu held).
func (s *Service) lastModels() []modelStatus {
	if s.last == nil {
		return nil
	}
	return s.last.Models
}

// freshnessChanged says whether a source's freshness status is worth a log
// line: when it differs from the one logged last, and not for a source
// first seen fresh or not checked at all.
func freshnessChanged(prev string, seen bool, status string) bool {
	return status != "unchecked" && prev != status && (seen || status != "pass")
}
