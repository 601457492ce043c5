// Package service runs the response service inside citybrain serve (role
// warnings): it follows marts.warnings, activates the emergency plans,
// delivers tasks on the configured channels, runs the escalation timers,
// commits the timeline to marts.responses and serves the responder app's
// API (/api/respond/…) and the app itself (/respond/). docs/response.md.
package service

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"citybrain/dashboards/responder"
	"citybrain/internal/app"
	"citybrain/internal/auth"
	"citybrain/pipelines/response"
	"citybrain/pipelines/response/channels"
	"citybrain/pipelines/warnings"
)

func init() {
	app.RegisterService(25, func(rt *app.Runtime) (app.Service, error) {
		c := rt.App.Cfg
		if !c.Response.Enabled || !c.Warnings.Enabled {
			return nil, nil
		}
		// With several warnings instances, one runs the response service
		// (one pager, one writer of marts.responses): the one named.
		if c.Warnings.Partitioned {
			name := ""
			if rt.Instances != nil {
				name = rt.Instances.Name()
			}
			if c.Response.Instance == "" || c.Response.Instance != name {
				rt.App.Log.Info("应急响应服务不在本实例运行 response service not run here", "instance", name, "response.instance", c.Response.Instance,
					"why", "with warnings.partitioned only the instance named by response.instance runs it")
				return nil, nil
			}
		}
		return &Service{}, nil
	})
}

// Service is the response service as a serve service.
type Service struct {
	rt     *app.Runtime
	cfg    response.Config
	eng    *response.Engine
	sink   *response.Sink
	chans  map[string]channels.Channel
	log    *slog.Logger
	stride int64
	stale  atomic.Bool // the plans' tables changed
	kick   chan struct{}
	send   chan struct{} // deliveries queued
	appURL string
}

// Engine is the service's engine (after Start).
func (s *Service) Engine() *response.Engine { return s.eng }

// Name is "response".
func (s *Service) Name() string { return "response" }

// Start opens the state, loads the plans and mounts the API.
func (s *Service) Start(ctx context.Context, rt *app.Runtime) error {
	s.rt = rt
	a := rt.App
	s.cfg = a.Cfg.Response
	s.log = a.Log.With("service", "response")
	s.kick = make(chan struct{}, 1)
	s.send = make(chan struct{}, 1)
	dir := s.cfg.Dir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(a.Cfg.DataDir, dir)
	}
	path := filepath.Join(dir, "state.json")
	st, err := response.LoadState(path)
	if err != nil {
		return err
	}
	s.stride = 1
	if a.Cfg.Warnings.Partitioned {
		s.stride = int64(a.Cfg.Broker.Partitions + 1)
	}
	s.eng = response.NewEngine(s.cfg, st, nil, time.Now, response.SaveState(path))
	if s.sink, err = response.NewSink(s.eng, a.Lake, a.Reg); err != nil {
		return err
	}
	s.sink.OnCommit = func(ctx context.Context, snap int64) {
		rt.Engine.Refresh(ctx, response.Table)
		rt.Commits.Publish(app.Commit{Table: response.Table, Snapshot: snap})
	}
	if err := s.sink.Align(ctx); err != nil {
		s.log.Warn("响应序号未能与 marts.responses 对齐 response sequence not checked against the table", "err", err)
	}
	s.chans = channels.New(s.cfg.Channels)
	configured := make([]string, 0, len(s.chans))
	for n := range s.chans {
		configured = append(configured, n)
	}
	s.eng.SetChannels(configured)
	s.appURL = s.cfg.AppURL
	if s.appURL == "" {
		s.appURL = "http://" + a.Cfg.HTTP.Addr + "/respond/"
	}
	s.stale.Store(true)
	rt.Commits.OnCommit(func(c app.Commit) {
		switch c.Table {
		case "raw.plan_levels", "raw.plan_roles", "raw.role_holders":
			s.stale.Store(true)
			s.poke()
		case warnings.Table, "raw.incidents":
			s.poke()
		}
	})
	api := &response.API{Eng: s.eng, Auth: rt.Auth, Support: func(r *http.Request, tv response.TaskView) (any, error) {
		return response.Support(r.Context(), rt.Engine.Query, tv.Response, response.SupportOptions{KFloor: int64(rt.Auth.Config().SuppressBelow)})
	}}
	api.Mount(rt.Mux)
	responder.Mount(rt.Mux)
	names := make([]string, 0, len(s.chans))
	for n := range s.chans {
		names = append(names, n)
	}
	sort.Strings(names)
	rt.Banner(fmt.Sprintf("应急响应 response: marts.warnings → 预案 plans → tasks on app%s → marts.responses; responder app %s",
		map[bool]string{true: ", " + strings.Join(names, ", "), false: " (no other channel configured: response.channels)"}[len(names) > 0], s.appURL))
	return nil
}

func (s *Service) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run follows the warnings, runs the timers, delivers and commits until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.deliverLoop(ctx) }()
	go func() { defer wg.Done(); s.commitLoop(ctx) }()
	tick := time.NewTicker(s.cfg.Tick)
	defer tick.Stop()
	s.step(ctx)
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return nil
		case <-s.kick:
			s.step(ctx)
		case <-tick.C:
			if err := s.eng.Tick(); err != nil {
				s.log.Error("响应计时器失败 response timers failed", "err", err)
			}
			s.step(ctx)
		}
		if len(s.eng.Pending()) > 0 {
			select {
			case s.send <- struct{}{}:
			default:
			}
		}
	}
}

// commitLoop commits the timeline every commit_every, and once more at the end.
func (s *Service) commitLoop(ctx context.Context) {
	commit := time.NewTicker(s.cfg.CommitEvery)
	defer commit.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			s.sink.Flush(fctx)
			cancel()
			return
		case <-commit.C:
			if _, err := s.sink.Flush(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("响应时间线提交失败，稍后重试 response timeline commit failed; retried", "err", err)
			}
		}
	}
}

// liveFrom is the data time before which a warning transition is history:
// max_age before the newest data time the warning engine has read (the
// simulator's clock in the demo), or before the clock if that is later.
func (s *Service) liveFrom() time.Time {
	ref := time.Now()
	for _, r := range s.rt.Fresh.Rows() {
		if r.Component == "warnings" && r.InputEventTime.After(ref) {
			ref = r.InputEventTime
		}
	}
	return ref.Add(-s.cfg.MaxAge)
}

// step reloads stale plans and applies the warnings committed since.
func (s *Service) step(ctx context.Context) {
	if s.stale.Swap(false) {
		p, err := response.LoadPlans(ctx, s.rt.Engine.Query)
		if err != nil {
			s.log.Warn("预案未载入，预警将记为无适用预案 plans not loaded; warnings are recorded unplanned until they are", "err", err)
		} else {
			s.eng.SetPlans(p)
			s.demoAccounts(p)
		}
	}
	if err := s.follow(ctx); err != nil && ctx.Err() == nil {
		s.log.Debug("marts.warnings not read", "err", err)
	}
	if err := s.followCalls(ctx); err != nil && ctx.Err() == nil {
		s.log.Debug("raw.incidents not read", "err", err)
	}
}

// followCalls hands the emergency calls received since the last look (and
// 10 minutes before it, for calls that arrive late) to the engine, which
// counts each once.
func (s *Service) followCalls(ctx context.Context) error {
	if s.cfg.Incidents.MinCount <= 0 {
		return nil
	}
	from := s.eng.CallCursor().Add(-10 * time.Minute)
	if lf := s.liveFrom(); from.Before(lf) {
		from = lf
	}
	rows, err := s.rt.Engine.Query(ctx, `SELECT coalesce(id, ''), category, coalesce(street_code, ''), coalesce(title, ''), received_at
		FROM raw.incidents WHERE received_at >= ? ORDER BY received_at LIMIT 5000`, from)
	if err != nil {
		return err
	}
	var ins []response.Incident
	for rows.Next() {
		var in response.Incident
		if err := rows.Scan(&in.ID, &in.Category, &in.StreetCode, &in.Title, &in.At); err != nil {
			rows.Close()
			return err
		}
		ins = append(ins, in)
	}
	err = rows.Err()
	rows.Close()
	if err != nil || len(ins) == 0 {
		return err
	}
	return s.eng.ApplyIncidents(ins, s.liveFrom())
}

// follow applies the marts.warnings transitions after the engine's
// cursors. A first start begins at the table's end: history is not
// re-activated.
func (s *Service) follow(ctx context.Context) error {
	cur := s.eng.Cursors()
	if !s.eng.Started() {
		ends := map[int64]int64{}
		rows, err := s.rt.Engine.Query(ctx, fmt.Sprintf(`SELECT seq %% %d, max(seq) FROM %s GROUP BY 1`, s.stride, warnings.Table))
		if err == nil {
			for rows.Next() {
				var k, v int64
				if rows.Scan(&k, &v) == nil {
					ends[k] = v
				}
			}
			rows.Close()
		}
		return s.eng.Start(ends)
	}
	lo := int64(-1)
	for k := int64(0); k < s.stride; k++ {
		if v := cur[k]; lo < 0 || v < lo {
			lo = v
		}
	}
	for {
		rows, err := s.rt.Engine.Query(ctx, fmt.Sprintf(`SELECT warning_id, kind, subject_type, subject_id, subject_name_zh, subject_name_en,
			street_code, level, state, message_zh, message_en, seq, event_time, transition_at FROM %s WHERE seq > ? ORDER BY seq LIMIT 1000`, warnings.Table), lo)
		if err != nil {
			return err
		}
		var ws []response.Warning
		for rows.Next() {
			var w response.Warning
			var v [11]sql.NullString
			if err := rows.Scan(&v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9], &v[10], &w.Seq, &w.EventTime, &w.TransitionAt); err != nil {
				rows.Close()
				return err
			}
			w.WarningID, w.Kind, w.SubjectType, w.SubjectID, w.SubjectNameZh, w.SubjectNameEn = v[0].String, v[1].String, v[2].String, v[3].String, v[4].String, v[5].String
			w.StreetCode, w.Level, w.State, w.MessageZh, w.MessageEn = v[6].String, v[7].String, v[8].String, v[9].String, v[10].String
			ws = append(ws, w)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
		if err := s.eng.ApplyBatch(ws, s.stride, s.liveFrom()); err != nil {
			return err
		}
		if len(ws) < 1000 {
			return nil
		}
		lo = ws[len(ws)-1].Seq
	}
}

// deliverLoop hands the queued notifications to one worker per channel —
// an e-mail server that times out does not hold up the SMS — and each
// worker records every attempt of its deliveries.
func (s *Service) deliverLoop(ctx context.Context) {
	retry := channels.Retry{Max: s.cfg.Retry.MaxAttempts, Base: s.cfg.Retry.Base, Cap: s.cfg.Retry.Cap}
	var mu sync.Mutex
	inflight := map[string]bool{}
	queues := map[string]chan response.Delivery{}
	var wg sync.WaitGroup
	defer wg.Wait()
	for name, ch := range s.chans {
		q := make(chan response.Delivery, 256)
		queues[name] = q
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case d := <-q:
					msg := channels.Message{TaskID: d.TaskID, ResponseID: d.ResponseID, Level: d.Level, WarningLevel: d.WarnLevel,
						TitleZh: d.TitleZh, TitleEn: d.TitleEn, BodyZh: d.BodyZh, BodyEn: d.BodyEn, URL: s.appURL + "#task=" + d.TaskID, At: d.Queued}
					var attempts []response.Attempt
					for _, a := range channels.Deliver(ctx, ch, channels.Recipient{PersonID: d.PersonID, Name: d.Name, Mobile: d.Mobile, Email: d.Email}, msg, retry) {
						attempts = append(attempts, response.Attempt{At: a.At, Err: a.Err})
					}
					if ctx.Err() != nil {
						return // not recorded: sent again after the restart (at least once)
					}
					if err := s.eng.Delivered(d.ID, attempts); err != nil {
						s.log.Error("投递结果未保存 delivery not recorded", "err", err)
					}
					mu.Lock()
					delete(inflight, d.ID)
					mu.Unlock()
				}
			}
		}()
	}
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		for _, d := range s.eng.Pending() {
			mu.Lock()
			busy := inflight[d.ID]
			mu.Unlock()
			if busy {
				continue
			}
			q, ok := queues[d.Channel]
			if !ok {
				// Queued before the channel's configuration went away.
				err := fmt.Errorf("渠道 %s 未配置 / channel %s not configured: set response.channels.%s", d.Channel, d.Channel, d.Channel)
				if err := s.eng.Delivered(d.ID, []response.Attempt{{At: time.Now(), Err: err}}); err != nil {
					s.log.Error("投递结果未保存 delivery not recorded", "err", err)
				}
				continue
			}
			mu.Lock()
			inflight[d.ID] = true
			mu.Unlock()
			select {
			case q <- d:
			default: // the channel's worker is that far behind: next round
				mu.Lock()
				delete(inflight, d.ID)
				mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.send:
		}
	}
}

// demoAccounts gives make run's demo (auth.demo_users) responder accounts:
// responder (the first street's level III commander), responder2 (its field
// lead) and responder_deputy (the commander's deputy), password citybrain-demo.
func (s *Service) demoAccounts(p *response.Plans) {
	st := s.rt.Auth
	if st == nil || !st.Config().DemoUsers {
		return
	}
	cmd, field, ok := p.FirstStreetLevel("III", time.Now())
	if !ok {
		return
	}
	for _, acc := range []struct{ name, person, display string }{
		{"responder", cmd.PersonID, cmd.PersonName}, {"responder2", field.PersonID, field.PersonName}, {"responder_deputy", cmd.DeputyID, cmd.DeputyName},
	} {
		if acc.person == "" {
			continue
		}
		if _, exists := st.Get(acc.name); exists {
			continue
		}
		if err := st.Add(acc.name, auth.DemoPassword, auth.RoleDepartment, "emergency"); err != nil {
			s.log.Warn("demo responder account not added", "user", acc.name, "err", err)
			continue
		}
		st.Update(acc.name, func(u *auth.User) error { u.PersonID, u.DisplayName = acc.person, acc.display; return nil })
	}
}
