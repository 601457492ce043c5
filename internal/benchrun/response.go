package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"citybrain/internal/app"
	"citybrain/internal/auth"
	"citybrain/internal/config"
	"citybrain/internal/freshness"
	"citybrain/internal/sim"
	"citybrain/pipelines/extracts/extracttest"
	respsvc "citybrain/pipelines/response/service"
	"citybrain/pipelines/warnings"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// responseWarnings is how many warnings each condition of the suite sends.
const responseWarnings = 30

func init() {
	registerSuite(Suite{
		Name: "response",
		Doc: `How long from a warning committed to marts.warnings until its responsible people have it: the response
service (pipelines/response/service) as serve runs it, on the simulator's plans (raw.plan_levels, plan_roles,
role_holders in the lake), the SMS channel pointed at a local HTTP gateway. 30 yellow crowd warnings of different
venues (one response each, group_by subject), one at a time: the clock starts when the commit to marts.warnings
returns and serve's commit bus announces it; "in the app" ends when the three tasks of the street's level III are in
the service's state (what the responder app's SSE stream pushes on), "SMS" when the gateway has received the
commander's message. p50 and p99, on a quiet machine and with two CPU-bound processes beside it.`,
		Reproduce: "go run ./internal/benchrun -suite response",
		Run:       runResponseBench,
	})
}

func runResponseBench(ctx context.Context, tmp string) []Result {
	var out []Result
	for _, hogs := range []int{0, 2} {
		rs, err := measureResponse(ctx, filepath.Join(tmp, fmt.Sprintf("hogs%d", hogs)), hogs)
		if err != nil {
			out = append(out, Result{Name: fmt.Sprintf("response (%d hogs)", hogs), Status: "failed", Reason: err.Error(), Unit: "ms"})
			continue
		}
		out = append(out, rs...)
	}
	return out
}

func measureResponse(ctx context.Context, dir string, hogs int) ([]Result, error) {
	log := slog.New(slog.DiscardHandler)
	cfg := config.Default()
	cfg.DataDir = filepath.Join(dir, "data")
	cfg.Warehouse.Dir = filepath.Join(dir, "lake")
	lake, err := warehouse.Open(ctx, cfg.Warehouse, "", log)
	if err != nil {
		return nil, err
	}
	defer lake.Close()
	reg, err := schemas.Builtin()
	if err != nil {
		return nil, err
	}
	w, err := sim.NewWorld(sim.DefaultConfig(), time.Now().Add(-time.Hour))
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"plan_levels", "plan_roles", "role_holders"} {
		s, _ := reg.Get(name)
		if _, err := extracttest.FillText(ctx, lake, s, w.Tables[name].Cols, w.Tables[name].Rows); err != nil {
			return nil, err
		}
	}
	eng, err := warehouse.NewEngine(ctx, lake)
	if err != nil {
		return nil, err
	}
	defer eng.Close()

	// The SMS gateway: when each task's message arrived.
	var mu sync.Mutex
	smsAt := map[string]time.Time{}
	gw := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		at := time.Now()
		var body struct {
			Params struct {
				URL string `json:"url"`
			} `json:"params"`
		}
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &body)
		if _, task, ok := strings.Cut(body.Params.URL, "#task="); ok {
			mu.Lock()
			if _, seen := smsAt[task]; !seen {
				smsAt[task] = at
			}
			mu.Unlock()
		}
		io.WriteString(rw, `{"code":0}`)
	}))
	defer gw.Close()
	cfg.Response.Channels.SMS.URL, cfg.Response.Channels.SMS.Template = gw.URL+"/sms/send", "TPL-BENCH"
	cfg.Response.GroupBy = "subject"
	cfg.Response.CommitEvery = time.Second

	users, err := auth.Open(auth.DefaultConfig(), dir)
	if err != nil {
		return nil, err
	}
	rt := &app.Runtime{App: &app.App{Cfg: cfg, Log: log, Reg: reg, Lake: lake}, Engine: eng, Mux: http.NewServeMux(), Auth: users,
		Commits: app.NewCommitBus(), Fresh: freshness.New(time.Now, freshness.DefaultThresholds())}
	ws, _ := reg.Get("warnings")
	seq := int64(0)
	commit := func(subject, street string) error {
		seq++
		now := time.Now()
		tr := warnings.Transition{WarningID: "BW-" + subject, Seq: seq, Kind: "crowd", Rule: "crowd_venue", SubjectType: "venue", SubjectID: subject,
			SubjectNameZh: "压测场所 " + subject, StreetCode: street, Level: "yellow", State: "raised", MessageZh: "压测", MessageEn: "bench",
			EventTime: now, TransitionAt: now, RaisedAt: now}
		if _, err := extracttest.Fill(ctx, lake, ws, 1, func(_ int, r schemas.Record) { copy(r, tr.Record(ws)) }); err != nil {
			return err
		}
		eng.Refresh(ctx, warnings.Table)
		rt.Commits.Publish(app.Commit{Table: warnings.Table})
		return nil
	}
	if err := commit("history", w.Streets[0].Code); err != nil { // before the service: history, not paged
		return nil, err
	}
	svc := &respsvc.Service{}
	if err := svc.Start(ctx, rt); err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- svc.Run(rctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(30 * time.Second); !svc.Engine().Started(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the response service did not start following marts.warnings")
		}
	}
	for i := 0; i < hogs; i++ {
		_, stop, err := startHog()
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	if hogs > 0 {
		time.Sleep(time.Second)
	}
	var inApp, sms []float64
	for i := 0; i < responseWarnings; i++ {
		subject := fmt.Sprintf("BV%03d", i)
		street := w.Streets[i%len(w.Streets)].Code
		if err := commit(subject, street); err != nil {
			return nil, err
		}
		t0 := time.Now()
		var cmdTask string
		deadline := t0.Add(30 * time.Second)
		for cmdTask == "" {
			n := 0
			for _, tv := range svc.Engine().Tasks("", false) {
				if tv.Response.SubjectID == subject {
					n++
					if tv.Tier == 0 && strings.HasSuffix(tv.RoleID, "-commander") {
						cmdTask = tv.ID
					}
				}
			}
			if n < 3 {
				cmdTask = ""
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("warning %s: no response in 30 s", subject)
			}
			if cmdTask == "" {
				time.Sleep(2 * time.Millisecond)
			}
		}
		inApp = append(inApp, float64(time.Since(t0).Microseconds())/1000)
		for {
			mu.Lock()
			at, ok := smsAt[cmdTask]
			mu.Unlock()
			if ok {
				sms = append(sms, float64(at.Sub(t0).Microseconds())/1000)
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("warning %s: the commander's SMS did not reach the gateway in 30 s", subject)
			}
			time.Sleep(2 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
	}
	cond := "quiet"
	if hogs > 0 {
		cond = fmt.Sprintf("%d CPU hogs beside", hogs)
	}
	mk := func(what string, xs []float64, p float64) Result {
		return Result{Name: fmt.Sprintf("response: warning committed → %s, p%.0f (%s)", what, p, cond), Status: "ok", Figure: percentile(xs, p), Unit: "ms",
			Rows: int64(len(xs))}
	}
	return []Result{mk("tasks in the app", inApp, 50), mk("tasks in the app", inApp, 99), mk("commander's SMS at the gateway", sms, 50),
		mk("commander's SMS at the gateway", sms, 99)}, nil
}
