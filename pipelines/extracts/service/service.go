// Package service runs the departments' extracts inside citybrain serve:
// the built-in scheduler (unless extracts.scheduler.enabled is false, e.g.
// when Apache Airflow schedules them) and the HTTP API the dashboards use:
//
//	GET  /api/extracts                              extracts the user may see, with their last delivery
//	GET  /api/extracts/{name}                       one extract: definition, next run, recent runs
//	GET  /api/extracts/{name}/history?limit=N       its deliveries, newest first
//	POST /api/extracts/{name}/run?period=&as_of=    run it now; answers with the manifest
//	GET  /api/extracts/deliveries/{id}/download     a delivered file
//
// Users authenticate as for the rest of the API (session cookie + CSRF,
// bearer token, basic auth). Department users see and run only their own
// department's extracts; running is for admins and the department itself.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"citybrain/internal/app"
	"citybrain/internal/auth"
	"citybrain/pipelines/extracts"
	"citybrain/pipelines/scheduler"
)

func init() {
	app.RegisterService(40, New)
}

// Service is the extracts service.
type Service struct {
	rt     *app.Runtime
	runner *extracts.Runner
	sched  *scheduler.Scheduler
	log    *slog.Logger
}

// New builds the service when extracts are configured (nil otherwise).
func New(rt *app.Runtime) (app.Service, error) {
	cfg := rt.App.Cfg.Extracts
	defs, err := cfg.All()
	if err != nil {
		return nil, err
	}
	if len(defs) == 0 {
		return nil, nil
	}
	return &Service{rt: rt, log: rt.App.Log.With("service", "extracts")}, nil
}

// Name is "extracts".
func (s *Service) Name() string { return "extracts" }

// Start opens the runner and mounts the API.
func (s *Service) Start(ctx context.Context, rt *app.Runtime) error {
	cfg := rt.App.Cfg.Extracts
	r, err := extracts.NewRunner(cfg, OutputDir(rt.App.Cfg.DataDir, cfg), rt.Engine, rt.App.Lake, rt.Auth, s.log)
	if err != nil {
		return err
	}
	if p, err := rt.App.Cfg.Models.LoadProject(); err == nil {
		r.Labels = p.ColumnLabels()
	} else {
		s.log.Warn("models project: marts columns get no Chinese labels in extract headers", "err", err)
	}
	s.runner = r
	if cfg.Scheduler.Enabled {
		s.sched = scheduler.New(cfg.Scheduler, r.Ledger(), scheduler.Real{}, s.log)
		jobs, err := r.Jobs()
		if err != nil {
			return err
		}
		for _, j := range jobs {
			if err := s.sched.Add(j); err != nil {
				return err
			}
		}
	}
	Mount(rt.Mux, r, rt.Auth, s.sched)
	state := "scheduler off (Airflow or manual runs)"
	if s.sched != nil {
		state = "scheduler on"
	}
	rt.Banner(fmt.Sprintf("extracts 数据提取: %d defined, %s; GET /api/extracts", len(r.Definitions()), state))
	return nil
}

// Run runs the scheduler until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	if s.sched == nil {
		<-ctx.Done()
		return nil
	}
	return s.sched.Run(ctx)
}

// OutputDir resolves extracts.output_dir against data_dir.
func OutputDir(dataDir string, cfg extracts.Config) string {
	if filepath.IsAbs(cfg.OutputDir) {
		return cfg.OutputDir
	}
	return filepath.Join(dataDir, cfg.OutputDir)
}

// Users is what the API needs of the user store.
type Users interface {
	FromRequest(r *http.Request) (auth.User, error)
}

// Summary is an extract as listed by the API.
type Summary struct {
	extracts.Definition
	NextRun time.Time          `json:"next_run,omitzero"`
	Last    *extracts.Manifest `json:"last,omitempty"`
}

// Mount registers the API on mux. sched may be nil (no next-run times).
func Mount(mux *http.ServeMux, r *extracts.Runner, users Users, sched *scheduler.Scheduler) {
	visible := func(u auth.User, d extracts.Definition) bool {
		return u.Role != auth.RoleDepartment || u.Department == d.Department
	}
	lookup := func(w http.ResponseWriter, req *http.Request) (auth.User, extracts.Definition, bool) {
		u, err := users.FromRequest(req)
		if err != nil {
			writeErr(w, http.StatusUnauthorized, err)
			return u, extracts.Definition{}, false
		}
		d, err := r.Definition(req.PathValue("name"))
		if err != nil || !visible(u, d) {
			writeErr(w, http.StatusNotFound, fmt.Errorf("没有该提取任务 no extract %q", req.PathValue("name")))
			return u, d, false
		}
		return u, d, true
	}
	summary := func(d extracts.Definition) Summary {
		s := Summary{Definition: d}
		if d.Schedule.Cron != "" {
			if sc, err := scheduler.ParseSchedule(d.Schedule.Cron, d.Schedule.Timezone); err == nil {
				s.NextRun = sc.Next(time.Now())
			}
		}
		if h, _ := r.History(d.Name, 1); len(h) > 0 {
			s.Last = &h[0]
		}
		return s
	}
	mux.HandleFunc("GET /api/extracts", func(w http.ResponseWriter, req *http.Request) {
		u, err := users.FromRequest(req)
		if err != nil {
			writeErr(w, http.StatusUnauthorized, err)
			return
		}
		out := []Summary{}
		for _, d := range r.Definitions() {
			if visible(u, d) {
				out = append(out, summary(d))
			}
		}
		writeJSON(w, out)
	})
	mux.HandleFunc("GET /api/extracts/{name}", func(w http.ResponseWriter, req *http.Request) {
		_, d, ok := lookup(w, req)
		if !ok {
			return
		}
		s := summary(d)
		h, _ := r.History(d.Name, 10)
		writeJSON(w, map[string]any{"extract": s, "history": h})
	})
	mux.HandleFunc("GET /api/extracts/{name}/history", func(w http.ResponseWriter, req *http.Request) {
		_, d, ok := lookup(w, req)
		if !ok {
			return
		}
		limit, _ := strconv.Atoi(req.URL.Query().Get("limit"))
		h, err := r.History(d.Name, limit)
		if err != nil {
			writeErr(w, http.StatusInternalServerError, err)
			return
		}
		if h == nil {
			h = []extracts.Manifest{}
		}
		writeJSON(w, h)
	})
	mux.HandleFunc("POST /api/extracts/{name}/run", func(w http.ResponseWriter, req *http.Request) {
		u, d, ok := lookup(w, req)
		if !ok {
			return
		}
		if u.Role != auth.RoleAdmin && !(u.Role == auth.RoleDepartment && u.Department == d.Department) {
			writeErr(w, http.StatusForbidden, errors.New("无权运行 only an admin or the department itself may run its extract"))
			return
		}
		o := extracts.RunOptions{Trigger: "api:" + u.Name}
		if p := req.URL.Query().Get("period"); p != "" {
			t, err := time.Parse(time.RFC3339, p)
			if err != nil {
				writeErr(w, http.StatusBadRequest, fmt.Errorf("period %q: 需要 RFC 3339 时间 want RFC 3339, e.g. 2026-11-28T06:00:00+08:00", p))
				return
			}
			o.Period = t
		}
		if a := req.URL.Query().Get("as_of"); a != "" {
			asOf, err := extracts.ParseAsOf(a, d)
			if err != nil {
				writeErr(w, http.StatusBadRequest, err)
				return
			}
			o.AsOf = asOf
		}
		// The run finishes even if the caller goes away.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(req.Context()), 2*time.Hour)
		defer cancel()
		m, err := r.Run(ctx, d.Name, o)
		if errors.Is(err, scheduler.ErrBusy) {
			writeErr(w, http.StatusConflict, err)
			return
		}
		if err != nil && m == nil {
			writeErr(w, http.StatusBadRequest, err)
			return
		}
		if err != nil {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusBadGateway)
			json.NewEncoder(w).Encode(m)
			return
		}
		writeJSON(w, m)
	})
	mux.HandleFunc("GET /api/extracts/deliveries/{id}/download", func(w http.ResponseWriter, req *http.Request) {
		u, err := users.FromRequest(req)
		if err != nil {
			writeErr(w, http.StatusUnauthorized, err)
			return
		}
		m, err := r.Delivery(req.PathValue("id"))
		if err != nil {
			writeErr(w, http.StatusNotFound, err)
			return
		}
		d, err := r.Definition(m.Extract)
		if err != nil || !visible(u, d) {
			writeErr(w, http.StatusNotFound, fmt.Errorf("没有该投递 no delivery %q", req.PathValue("id")))
			return
		}
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename*=UTF-8''%s", urlPathEscape(m.File)))
		w.Header().Set("X-Citybrain-SHA256", m.SHA256)
		// The file's own encoding (a GB18030 CSV was served as UTF-8 by
		// the content sniffer, and a browser showing it inline garbled it).
		if m.Format == "csv" {
			cs := "utf-8"
			if m.Encoding == "gb18030" {
				cs = "gb18030"
			}
			w.Header().Set("Content-Type", "text/csv; charset="+cs)
		}
		http.ServeFile(w, req, r.FilePath(m))
	})
}

func urlPathEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			b = append(b, c)
		} else {
			b = append(b, '%', hex[c>>4], hex[c&15])
		}
	}
	return string(b)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
}
