package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"citybrain/internal/app"
	"citybrain/internal/auth"
	"citybrain/internal/config"
	"citybrain/internal/freshness"
	"citybrain/internal/sim"
	"citybrain/pipelines/extracts/extracttest"
	"citybrain/pipelines/response"
	"citybrain/pipelines/response/channels/channeltest"
	"citybrain/pipelines/warnings"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// fillSim writes a simulator table into the lake through its schema.
func fillSim(t *testing.T, ctx context.Context, lake *warehouse.Lake, reg *schemas.Registry, tab *sim.Table) {
	t.Helper()
	s, err := reg.Get(tab.Name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := extracttest.FillText(ctx, lake, s, tab.Cols, tab.Rows); err != nil {
		t.Fatalf("fill %s: %v", tab.Name, err)
	}
}

// commitWarnings writes transitions to marts.warnings as the engine's sink would.
func commitWarnings(t *testing.T, ctx context.Context, lake *warehouse.Lake, reg *schemas.Registry, ts ...warnings.Transition) {
	t.Helper()
	s, _ := reg.Get("warnings")
	if _, err := extracttest.Fill(ctx, lake, s, len(ts), func(i int, r schemas.Record) { copy(r, ts[i].Record(s)) }); err != nil {
		t.Fatal(err)
	}
}

// TestResponseFlow runs the service as serve does, on the simulator's
// plans: a yellow crowd warning at a venue → the venue's street plan at
// level III → its three roles' holders notified in the app and on their
// channels (SMTP, WeCom and DingTalk robots, SMS gateway — local
// receivers) → one acknowledges through the API, one reports progress,
// the third does not and escalates to the deputy → the deputy and the
// others close → the response closes; the timeline in marts.responses.
func TestResponseFlow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Warehouse.Dir = t.TempDir()
	lake, err := warehouse.Open(ctx, cfg.Warehouse, "", log)
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	reg, _ := schemas.Builtin()
	epoch := time.Now().Add(-time.Hour)
	w, err := sim.NewWorld(sim.DefaultConfig(), epoch)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"plan_levels", "plan_roles", "role_holders"} {
		fillSim(t, ctx, lake, reg, w.Tables[name])
	}
	eng, err := warehouse.NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	plans, err := response.LoadPlans(ctx, eng.Query)
	if err != nil {
		t.Fatal(err)
	}
	cmd, field, ok := plans.FirstStreetLevel("III", time.Now())
	if !ok {
		t.Fatal("the simulator's plans have no street level III")
	}
	street := cmd.StreetCode

	smtp := channeltest.StartSMTP(t, nil, "", "")
	robotOK := channeltest.Reply{Status: 200, Body: `{"errcode":0,"errmsg":"ok"}`}
	wecom, ding, sms := channeltest.StartRecorder(t, robotOK), channeltest.StartRecorder(t, robotOK), channeltest.StartRecorder(t, channeltest.Reply{Status: 200, Body: `{"code":0}`})
	cfg.Response.Channels.Email.Addr, cfg.Response.Channels.Email.From = smtp.Addr(), "城市大脑 <noreply@xicheng.example.gov.cn>"
	cfg.Response.Channels.WeCom.Webhook = wecom.URL + "/cgi-bin/webhook/send?key=test"
	cfg.Response.Channels.DingTalk.Webhook = ding.URL + "/robot/send?access_token=test"
	// The DingTalk robot takes 4 s to answer its first message: the other
	// channels must not wait for it.
	var dingSlow sync.Once
	ding.SetCheck(func(*http.Request, []byte) (int, string) {
		dingSlow.Do(func() { time.Sleep(4 * time.Second) })
		return 0, ""
	})
	cfg.Response.Channels.SMS.URL, cfg.Response.Channels.SMS.Template = sms.URL+"/sms/send", "TPL1"
	cfg.Response.AckAfter, cfg.Response.Tick, cfg.Response.CommitEvery = 2*time.Second, 100*time.Millisecond, 200*time.Millisecond
	cfg.Response.Retry.Base = 10 * time.Millisecond

	users, err := auth.Open(auth.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rt := &app.Runtime{App: &app.App{Cfg: cfg, Log: log, Reg: reg, Lake: lake}, Engine: eng, Mux: http.NewServeMux(), Auth: users,
		Commits: app.NewCommitBus(), Fresh: freshness.New(time.Now, freshness.DefaultThresholds())}
	// The service starts on a table with history: that is not activated.
	commitWarnings(t, ctx, lake, reg, warnings.Transition{WarningID: "old", Seq: 1, Kind: "crowd", Rule: "crowd_venue", SubjectType: "venue",
		SubjectID: "V-old", StreetCode: street, Level: "red", State: "raised", MessageZh: "旧", MessageEn: "old",
		EventTime: epoch, TransitionAt: epoch, RaisedAt: epoch})
	eng.Refresh(ctx, warnings.Table)
	svc := &Service{}
	if err := svc.Start(ctx, rt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	srv := httptest.NewServer(rt.Mux)
	defer srv.Close()
	// Its first look at marts.warnings sets the cursors at the table's end.
	waitFor(t, 10*time.Second, "the service's first look at marts.warnings", svc.eng.Started)

	const pw = "a-long-test-password-1"
	people := map[string]string{}
	for _, h := range []response.Holder{cmd, field} {
		people[h.PersonID] = "p_" + strings.ToLower(h.PersonID)
	}
	people[cmd.DeputyID] = "p_" + strings.ToLower(cmd.DeputyID)
	for person, name := range people {
		must(t, users.Add(name, pw, auth.RoleDepartment, "emergency"))
		must(t, users.Update(name, func(u *auth.User) error { u.PersonID = person; return nil }))
	}
	call := func(user, method, path string, body any) (int, map[string]any) {
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.URL+path, rd)
		req.SetBasicAuth(user, pw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	myTasks := func(user string) []map[string]any {
		code, out := call(user, "GET", "/api/respond/tasks", nil)
		if code != 200 {
			t.Fatalf("tasks of %s: %d %v", user, code, out)
		}
		var ts []map[string]any
		for _, x := range out["tasks"].([]any) {
			ts = append(ts, x.(map[string]any))
		}
		return ts
	}

	// The surge: a yellow crowd warning of a venue in the street.
	now := time.Now()
	commitWarnings(t, ctx, lake, reg, warnings.Transition{WarningID: "W-surge", Seq: 2, Kind: "crowd", Rule: "crowd_venue", SubjectType: "venue",
		SubjectID: "V-1", SubjectNameZh: "测试广场", SubjectNameEn: "Test Plaza", StreetCode: street, Level: "yellow", State: "raised",
		MessageZh: "测试广场客流达到黄色预警", MessageEn: "Test Plaza crowd yellow", EventTime: now, TransitionAt: now, RaisedAt: now})
	eng.Refresh(ctx, warnings.Table)
	rt.Commits.Publish(app.Commit{Table: warnings.Table})

	var cmdTask, fieldTask map[string]any
	waitFor(t, 10*time.Second, "the commander's and the field lead's tasks", func() bool {
		ct, ft := myTasks(people[cmd.PersonID]), myTasks(people[field.PersonID])
		if len(ct) == 1 && len(ft) == 1 {
			cmdTask, fieldTask = ct[0], ft[0]
			return true
		}
		return false
	})
	if lvl := cmdTask["level"]; lvl != "III" {
		t.Errorf("task level %v, want III", lvl)
	}
	if d, _ := cmdTask["duty_zh"].(string); d == "" {
		t.Error("the task carries no duty text")
	}
	// Scope: the commander does not see the field lead's task, a stranger nothing.
	if code, _ := call(people[cmd.PersonID], "POST", "/api/respond/tasks/"+fieldTask["id"].(string)+"/ack", nil); code != http.StatusForbidden {
		t.Errorf("commander acknowledging the field lead's task: %d, want 403", code)
	}
	// E-mail and SMS go out while the DingTalk robot is still answering.
	waitFor(t, 2500*time.Millisecond, "e-mail and SMS beside a slow DingTalk robot", func() bool {
		return len(smtp.Received()) > 0 && len(sms.Requests()) > 0
	})
	// Every channel got its message.
	waitFor(t, 10*time.Second, "the deliveries on every channel", func() bool {
		return len(smtp.Received()) > 0 && len(wecom.Requests()) > 0 && len(ding.Requests()) > 0 && len(sms.Requests()) > 0
	})
	if m := smtp.Received()[0]; !strings.Contains(string(m.Data), "Subject:") || len(m.Rcpt) != 1 {
		t.Errorf("the e-mail to %v has no subject: %q", m.Rcpt, m.Data[:min(200, len(m.Data))])
	}
	// The field lead acknowledges and reports progress; the commander does not.
	if code, out := call(people[field.PersonID], "POST", "/api/respond/tasks/"+fieldTask["id"].(string)+"/ack", nil); code != 200 || out["state"] != "acknowledged" {
		t.Fatalf("ack: %d %v", code, out)
	}
	if code, out := call(people[field.PersonID], "POST", "/api/respond/tasks/"+fieldTask["id"].(string)+"/progress", map[string]string{"text": "已到场疏导 on site"}); code != 200 {
		t.Fatalf("progress: %d %v", code, out)
	}
	// After ack_after the commander's task goes to the deputy.
	waitFor(t, 15*time.Second, "the commander's task with the deputy", func() bool { return len(myTasks(people[cmd.DeputyID])) == 1 })
	dt := myTasks(people[cmd.DeputyID])[0]
	if dt["id"] != cmdTask["id"] {
		t.Errorf("the deputy got %v, want the commander's task %v", dt["id"], cmdTask["id"])
	}
	if code, out := call(people[cmd.DeputyID], "POST", "/api/respond/tasks/"+cmdTask["id"].(string)+"/close", map[string]string{"text": "已处置 done"}); code != 200 {
		t.Fatalf("deputy close: %d %v", code, out)
	}
	// The remaining tasks (the field lead's, the information officer's) close.
	for _, tv := range svc.eng.Tasks("", false) {
		if err := svc.eng.Close(tv.ID, tv.Assignee(), "处置完毕"); err != nil {
			t.Fatal(err)
		}
	}
	// The timeline in marts.responses.
	var tl map[string][]string
	waitFor(t, 10*time.Second, "the closed response in marts.responses", func() bool {
		eng.Refresh(ctx, response.Table)
		rows, err := eng.Query(ctx, `SELECT event, coalesce(channel, ''), coalesce(person_id, ''), coalesce(task_id, ''), coalesce(plan_level, ''), coalesce(subject_id, '') FROM marts.responses ORDER BY seq`)
		if err != nil {
			return false
		}
		defer rows.Close()
		tl = map[string][]string{}
		for rows.Next() {
			var ev, ch, p, tk, pl, subj string
			rows.Scan(&ev, &ch, &p, &tk, &pl, &subj)
			tl[ev] = append(tl[ev], fmt.Sprintf("%s|%s|%s|%s|%s", ch, p, tk, pl, subj))
		}
		n := 0
		for _, x := range tl["closed"] {
			if strings.Split(x, "|")[2] == "" {
				n++
			}
		}
		dingDone := false
		for _, x := range tl["delivered"] {
			dingDone = dingDone || strings.HasPrefix(x, "dingtalk|")
		}
		return n == 1 && dingDone
	})
	t.Logf("timeline: %d events: raised %d, activated %d, notified %d, delivered %d, failed %d, acknowledged %d, progress %d, escalated %d, closed %d",
		func() int {
			n := 0
			for _, v := range tl {
				n += len(v)
			}
			return n
		}(), len(tl["raised"]), len(tl["activated"]), len(tl["notified"]), len(tl["delivered"]), len(tl["failed"]), len(tl["acknowledged"]),
		len(tl["progress"]), len(tl["escalated"]), len(tl["closed"]))
	for _, x := range append(tl["raised"], tl["activated"]...) {
		if strings.HasSuffix(x, "|V-old") {
			t.Errorf("the history before the service started was activated: %s", x)
		}
	}
	if len(tl["raised"]) != 1 || len(tl["activated"]) != 1 || !strings.Contains(tl["activated"][0], "|III|") {
		t.Errorf("raised %v, activated %v; want one response at level III", tl["raised"], tl["activated"])
	}
	chans := map[string]bool{}
	for _, x := range tl["delivered"] {
		chans[strings.Split(x, "|")[0]] = true
	}
	for _, c := range []string{"app", "email", "sms", "wecom", "dingtalk"} {
		if !chans[c] {
			t.Errorf("no delivery on %s in the timeline (delivered: %v, failed: %v)", c, tl["delivered"], tl["failed"])
		}
	}
	var escToDeputy bool
	for _, x := range tl["escalated"] {
		escToDeputy = escToDeputy || strings.Split(x, "|")[1] == cmd.DeputyID
	}
	if !escToDeputy || len(tl["acknowledged"]) < 2 || len(tl["progress"]) != 1 || len(tl["closed"]) != 4 {
		t.Errorf("escalated %v (deputy %s), acknowledged %d, progress %d, closed %d; want the deputy, ≥2, 1, 3 tasks + the response",
			tl["escalated"], cmd.DeputyID, len(tl["acknowledged"]), len(tl["progress"]), len(tl["closed"]))
	}
	// Three fire calls in the street within the window: the fire-safety
	// HQ's level activates for the street (one call would not).
	incSchema, _ := reg.Get("incidents")
	callAt := time.Now().Add(-5 * time.Minute)
	if _, err := extracttest.Fill(ctx, lake, incSchema, 3, func(i int, r schemas.Record) {
		r[incSchema.Index("id")] = fmt.Sprintf("E2E-F%d", i)
		r[incSchema.Index("received_at")] = callAt.Add(time.Duration(i) * time.Minute)
		r[incSchema.Index("category")] = "fire"
		r[incSchema.Index("title")] = "商铺起火"
		r[incSchema.Index("street_code")] = street
	}); err != nil {
		t.Fatal(err)
	}
	eng.Refresh(ctx, "raw.incidents")
	rt.Commits.Publish(app.Commit{Table: "raw.incidents"})
	waitFor(t, 10*time.Second, "the incident response", func() bool {
		for _, tv := range svc.eng.Tasks("", false) {
			if tv.Response.Kind == "incident" && tv.Response.StreetCode == street {
				if !strings.HasPrefix(tv.Response.PlanID, "P-HQ") {
					t.Errorf("fire calls activated %s %s, want a special HQ's plan", tv.Response.PlanID, tv.Level)
				}
				return true
			}
		}
		return false
	})
	// Stopped with nothing in flight, a restart must commit nothing.
	waitFor(t, 10*time.Second, "the deliveries and the timeline drained", func() bool { return len(svc.eng.Pending()) == 0 && len(svc.eng.Outbox()) == 0 })
	cancel()
	<-done
	// Exactly once: after a restart on the same state, what the table held
	// is held once (the incident's tasks may escalate meanwhile: new events).
	eng.Refresh(ctx, response.Table)
	count := func(upTo int64) (int, int64) {
		rows, err := eng.Query(context.Background(), `SELECT count(*), count(DISTINCT seq), coalesce(max(seq), 0), count(*) FILTER (WHERE seq <= ?) FROM marts.responses`, upTo)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		rows.Next()
		var n, d, upToN int
		var top int64
		rows.Scan(&n, &d, &top, &upToN)
		if n != d {
			t.Errorf("marts.responses: %d rows, %d distinct seq", n, d)
		}
		return upToN, top
	}
	before, top := count(1 << 62)
	ctx2, cancel2 := context.WithCancel(context.Background())
	svc2 := &Service{}
	rt.Mux = http.NewServeMux()
	must(t, svc2.Start(ctx2, rt))
	go func() { done <- svc2.Run(ctx2) }()
	time.Sleep(500 * time.Millisecond)
	cancel2()
	<-done
	eng.Refresh(context.Background(), response.Table)
	if after, _ := count(top); after != before {
		t.Errorf("rows up to seq %d after a restart: %d, before %d", top, after, before)
	}
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testWriter sends the service's log to the test's.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// With a partitioned warning engine only the instance response.instance
// names runs the service (one pager); on one process it runs by default.
func TestOneInstanceRunsIt(t *testing.T) {
	names := func(cfg config.Config) []string {
		rt := &app.Runtime{App: &app.App{Cfg: cfg, Log: slog.New(slog.DiscardHandler)}}
		before, after, err := app.Services(rt)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range append(before, after...) {
			out = append(out, s.Name())
		}
		return out
	}
	cfg := config.Default()
	if got := names(cfg); !slices.Contains(got, "response") {
		t.Errorf("one process: services %v, want response among them", got)
	}
	cfg.Warnings.Partitioned = true
	if got := names(cfg); slices.Contains(got, "response") {
		t.Errorf("partitioned, response.instance unset: services %v, want no response service", got)
	}
}
