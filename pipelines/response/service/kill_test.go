package service

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"citybrain/internal/app"
	"citybrain/internal/auth"
	"citybrain/internal/config"
	"citybrain/internal/freshness"
	"citybrain/internal/sim"
	"citybrain/pipelines/response"
	"citybrain/pipelines/response/channels/channeltest"
	"citybrain/pipelines/warnings"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// killChildEnv tells the test binary it is the response service killed by
// TestResponseKillNine: the directories and the SMS gateway's URL.
const killChildEnv = "CITYBRAIN_RESPONSE_KILL_CHILD"

// killConfig is the configuration the killed service runs with: short
// timers so that escalations and commits happen between the kills.
func killConfig(dataDir, whDir, sms string) config.Config {
	cfg := config.Default()
	cfg.DataDir, cfg.Warehouse.Dir = dataDir, whDir
	cfg.Response.Channels.SMS.URL, cfg.Response.Channels.SMS.Template = sms+"/sms/send", "TPL1"
	cfg.Response.AckAfter, cfg.Response.Tick, cfg.Response.CommitEvery = time.Second, 100*time.Millisecond, 150*time.Millisecond
	cfg.Response.Retry.Base = 10 * time.Millisecond
	return cfg
}

// TestResponseKillChild is the child process of TestResponseKillNine: the
// response service as serve runs it, over the parent's lake, learning of
// the parent's marts.warnings commits by polling the catalog, until killed.
func TestResponseKillChild(t *testing.T) {
	spec := os.Getenv(killChildEnv)
	if spec == "" {
		t.Skip("the child of TestResponseKillNine")
	}
	parts := strings.SplitN(spec, "|", 3)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := killConfig(parts[0], parts[1], parts[2])
	lake, err := warehouse.Open(ctx, cfg.Warehouse, "", log)
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := schemas.Builtin()
	eng, err := warehouse.NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	users, err := auth.Open(auth.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rt := &app.Runtime{App: &app.App{Cfg: cfg, Log: log, Reg: reg, Lake: lake}, Engine: eng, Mux: http.NewServeMux(), Auth: users,
		Commits: app.NewCommitBus(), Fresh: freshness.New(time.Now, freshness.DefaultThresholds())}
	// As serve does: a commit refreshes the engine's view before the
	// services hear of it.
	rt.Commits.OnCommit(func(c app.Commit) { eng.Refresh(ctx, c.Table) })
	svc := &Service{}
	if err := svc.Start(ctx, rt); err != nil {
		t.Fatal(err)
	}
	go app.WatchCommits(ctx, lake, rt.Commits, 100*time.Millisecond)
	fmt.Println("ready")
	svc.Run(ctx)
}

// TestResponseKillNine SIGKILLs the response service over and over while
// warnings arrive, tasks are delivered over SMS, escalate and the timeline
// is committed, then lets it finish: marts.responses holds every event
// once — one activation per response, a notification and a delivery for
// every task's every assignee, sequence numbers without gaps or repeats.
// SMS messages are at least once (a kill between the gateway's answer and
// the recorded delivery sends it again); how many were repeated is logged.
func TestResponseKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a child process 12 times")
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	dataDir, whDir := t.TempDir(), t.TempDir()
	sms := channeltest.StartRecorder(t, channeltest.Reply{Status: 200, Body: `{"code":0}`})
	cfg := killConfig(dataDir, whDir, sms.URL)
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
	// History: the service starts at the table's end.
	commitWarnings(t, ctx, lake, reg, warnings.Transition{WarningID: "old", Seq: 1, Kind: "crowd", Rule: "crowd_venue", SubjectType: "venue",
		SubjectID: "V-old", StreetCode: w.Streets[0].Code, Level: "red", State: "raised", MessageZh: "旧", MessageEn: "old",
		EventTime: epoch, TransitionAt: epoch, RaisedAt: epoch})

	var child *exec.Cmd
	start := func() {
		t.Helper()
		child = exec.Command(os.Args[0], "-test.run=^TestResponseKillChild$", "-test.v")
		child.Env = append(os.Environ(), killChildEnv+"="+dataDir+"|"+whDir+"|"+sms.URL)
		child.Stderr = testWriter{t}
		out, err := child.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if sc.Text() == "ready" {
					ready <- true
				}
			}
			ready <- false
		}()
		select {
		case ok := <-ready:
			if !ok {
				t.Fatal("the response service ended before it was ready")
			}
		case <-time.After(60 * time.Second):
			t.Fatal("the response service did not start in 60 s")
		}
	}
	kill := func() {
		child.Process.Signal(syscall.SIGKILL)
		child.Wait()
	}
	defer func() {
		if child != nil && child.ProcessState == nil {
			kill()
		}
	}()

	// Ten surges, one street each: a yellow warning raised, then (every
	// other one) escalated to orange, and four of them cleared — transitions committed
	// one by one while the service is killed 12 times at random moments.
	type tr struct {
		street, level, state string
		n                    int
	}
	var plan []tr
	for i := range 10 {
		st := w.Streets[1+i%(len(w.Streets)-1)].Code
		plan = append(plan, tr{st, "yellow", "raised", i})
		if i%2 == 0 {
			plan = append(plan, tr{st, "orange", "escalated", i})
		}
	}
	for i := range 10 {
		if i%3 == 0 {
			plan = append(plan, tr{w.Streets[1+i%(len(w.Streets)-1)].Code, "yellow", "cleared", i})
		}
	}
	rng := rand.New(rand.NewPCG(7, 25))
	start()
	kills := 0
	seq := int64(1)
	for k, p := range plan {
		seq++
		now := time.Now()
		commitWarnings(t, ctx, lake, reg, warnings.Transition{WarningID: "W" + strconv.Itoa(p.n), Seq: seq, Kind: "crowd", Rule: "crowd_venue",
			SubjectType: "venue", SubjectID: "V" + strconv.Itoa(p.n), SubjectNameZh: "广场" + strconv.Itoa(p.n), StreetCode: p.street,
			Level: p.level, State: p.state, MessageZh: "客流预警", MessageEn: "crowd warning", EventTime: now, TransitionAt: now, RaisedAt: now})
		if k%2 == 1 && kills < 12 {
			time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
			kill()
			kills++
			start()
		}
	}
	for kills < 12 {
		time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		kill()
		kills++
		start()
	}

	// Let the last run finish: every warning transition seen, every
	// assignee's SMS recorded delivered, and the timeline committed.
	eng, err := warehouse.NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	one := func(q string) int64 {
		t.Helper()
		eng.Refresh(ctx, response.Table)
		rows, err := eng.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var n int64
		if !rows.Next() {
			t.Fatalf("%s: no row (%v)", q, rows.Err())
		}
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		raised := one(`SELECT count(DISTINCT warning_id) FROM marts.responses WHERE event = 'raised'`)
		undelivered := one(`SELECT count(*) FROM (SELECT task_id, person_id FROM marts.responses WHERE event = 'notified' AND channel = 'sms'
			EXCEPT SELECT task_id, person_id FROM marts.responses WHERE event IN ('delivered', 'failed') AND channel = 'sms')`)
		if raised == 10 && undelivered == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 90 s: %d of 10 warnings raised in the timeline, %d SMS notifications without a delivery", raised, undelivered)
		}
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(time.Second) // the last escalations and their commits
	kill()

	n := one(`SELECT count(*) FROM marts.responses`)
	if d := one(`SELECT count(DISTINCT seq) FROM marts.responses`); d != n {
		t.Errorf("%d rows, %d distinct sequence numbers", n, d)
	}
	if span := one(`SELECT max(seq) - min(seq) + 1 FROM marts.responses`); span != n {
		t.Errorf("sequence numbers span %d for %d rows: a gap", span, n)
	}
	// No event twice: the same event of the same task, person, channel and attempt.
	if dup := one(`SELECT count(*) FROM (SELECT 1 FROM marts.responses
			GROUP BY event, response_id, task_id, warning_id, person_id, channel, attempt, warning_level, detail_en HAVING count(*) > 1)`); dup != 0 {
		t.Errorf("%d events recorded more than once", dup)
	}
	// A response is activated once at each plan level it reaches (an
	// escalation to orange activates the HQ's level II in the same response).
	if bad := one(`SELECT count(*) FROM (SELECT response_id FROM marts.responses WHERE response_id IS NOT NULL
			GROUP BY response_id HAVING count(*) FILTER (WHERE event = 'activated') <> count(DISTINCT plan_level) FILTER (WHERE event = 'activated')
				OR count(*) FILTER (WHERE event = 'activated') = 0)`); bad != 0 {
		t.Errorf("%d responses not activated exactly once per plan level", bad)
		rows, _ := eng.Query(ctx, `SELECT response_id, string_agg(event || ':' || coalesce(plan_level, '') || ':' || coalesce(warning_level, '') || ':' || seq, ' ' ORDER BY seq)
			FROM marts.responses WHERE event IN ('activated', 'raised', 'cleared', 'closed') AND task_id IS NULL GROUP BY 1 ORDER BY 1`)
		for rows != nil && rows.Next() {
			var id, ev string
			rows.Scan(&id, &ev)
			t.Logf("%s: %s", id, ev)
		}
	}
	if got := one(`SELECT count(DISTINCT response_id) FROM marts.responses WHERE event = 'activated'`); got != 10 {
		t.Errorf("%d responses activated, want 10 (one per surge)", got)
	}
	tasks := one(`SELECT count(DISTINCT task_id) FROM marts.responses WHERE event = 'notified'`)
	if tasks < 30 {
		t.Errorf("%d tasks notified, want at least 30 (three roles a level)", tasks)
	}
	if esc := one(`SELECT count(*) FROM marts.responses WHERE event = 'escalated'`); esc == 0 {
		t.Errorf("nothing escalated: the kills did not meet the escalation timers")
	}
	notified := one(`SELECT count(*) FROM marts.responses WHERE event = 'notified' AND channel = 'sms'`)
	got := int64(len(sms.Requests()))
	if got < notified {
		t.Errorf("the SMS gateway received %d messages for %d SMS notifications: lost", got, notified)
	}
	t.Logf("%d kills; %d timeline rows, %d responses, %d tasks, %d SMS notifications, %d SMS messages received (%d sent again after a kill)",
		kills, n, 10, tasks, notified, got, got-notified)
}
