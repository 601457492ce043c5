package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"citybrain/internal/auth"
	"citybrain/internal/sim"
)

// browserWarning is one "warning" event as the cockpit's own EventSource
// received it (recorded by a wrapper installed before the page's script).
type browserWarning struct {
	Seq          float64 `json:"seq"`
	WarningID    string  `json:"warning_id"`
	Kind         string  `json:"kind"`
	SubjectType  string  `json:"subject_type"`
	SubjectID    string  `json:"subject_id"`
	State        string  `json:"state"`
	Level        string  `json:"level"`
	EventTime    string  `json:"event_time"`
	TransitionAt string  `json:"transition_at"`
	At           float64 `json:"at"` // Date.now() in the page, ms
}

// recordLiveWarnings wraps EventSource before any page script runs: every
// "warning" event of every EventSource the page opens is pushed, with its
// arrival time, to window.__cbWarnings (the page's own listener still runs).
const recordLiveWarnings = `(() => {
  window.__cbWarnings = []; window.__cbOpen = 0;
  const ES = window.EventSource;
  function Wrapped(url, opts) {
    const es = new ES(url, opts);
    es.addEventListener("open", () => { window.__cbOpen++; });
    es.addEventListener("warning", (ev) => {
      const at = Date.now();
      try {
        const w = JSON.parse(ev.data);
        window.__cbWarnings.push({seq: Number(w.seq), warning_id: String(w.warning_id || ""), kind: String(w.kind || ""),
          subject_type: String(w.subject_type || ""), subject_id: String(w.subject_id || ""), state: String(w.state || ""),
          level: String(w.level || ""), event_time: String(w.event_time || ""), transition_at: String(w.transition_at || ""), at: at});
      } catch (e) { window.__cbWarnings.push({seq: -1, at: at, state: "unparsable"}); }
    });
    return es;
  }
  Wrapped.prototype = ES.prototype;
  Wrapped.CONNECTING = ES.CONNECTING; Wrapped.OPEN = ES.OPEN; Wrapped.CLOSED = ES.CLOSED;
  window.EventSource = Wrapped;
})();`

// apiTransition is a transition from GET /api/warnings/stream (exact
// transition_at; the cockpit's is rounded to the second).
type apiTransition struct {
	Seq          int64     `json:"seq"`
	WarningID    string    `json:"warning_id"`
	Kind         string    `json:"kind"`
	SubjectType  string    `json:"subject_type"`
	SubjectID    string    `json:"subject_id"`
	State        string    `json:"state"`
	Level        string    `json:"level"`
	Predicted    bool      `json:"predicted"`
	HorizonMin   int       `json:"horizon_min"`
	EventTime    time.Time `json:"event_time"`
	TransitionAt time.Time `json:"transition_at"`
	arrived      time.Time
}

// TestSurgesWarnedLive (issue 17 item 5): make run's configuration at sim
// speed 1440 (a simulated day a wall minute) with one day of history and a
// live start at 00:00 today (Beijing time), for three simulated days; every
// crowd surge of data/sim/ground_truth.jsonl whose peak falls in those live
// days must raise a warning of its venue before its peak (simulated time: the
// end of the interval that raised it is at or before the peak) and that
// transition must reach the cockpit — the page's own EventSource on
// /api/dash/live, in headless Chromium — within 10 s of its transition_at.
//
// Knobs (for the lead's longer runs): CITYBRAIN_E2E_SURGE_DAYS (3),
// CITYBRAIN_E2E_SURGE_SPEED (1440), CITYBRAIN_E2E_SURGE_TIMEOUT (6m, wall time
// from serve's start). Run alone:
//
//	go test -count=1 -run TestSurgesWarnedLive -v ./internal/e2e/
func TestSurgesWarnedLive(t *testing.T) {
	if testing.Short() {
		t.Skip("runs serve with the simulator and headless Chromium for about five minutes")
	}
	days := envInt(t, "CITYBRAIN_E2E_SURGE_DAYS", 3)
	speed := envInt(t, "CITYBRAIN_E2E_SURGE_SPEED", 1440)
	budget := 6 * time.Minute
	if v := os.Getenv("CITYBRAIN_E2E_SURGE_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CITYBRAIN_E2E_SURGE_TIMEOUT: %v", err)
		}
		budget = d
	}
	const maxDelivery = 10 * time.Second
	chromium := ""
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		t.Fatal("chromium not found: run make test-deps (apt-get install chromium)")
	}

	// make run's citybrain.yaml with its own ports and data directory, one
	// day of history, a fixed live start and the speed.
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(repoRoot(), "citybrain.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(sim.Shanghai)
	liveStart := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, sim.Shanghai)
	windowEnd := liveStart.AddDate(0, 0, days)
	httpPort, mqttPort, pgPort := freePort(t), freePort(t), freePort(t)
	cfg := string(b)
	for _, r := range [][2]string{
		{"addr: 127.0.0.1:8080", fmt.Sprintf("addr: 127.0.0.1:%d", httpPort)},
		{"embedded_port: 19092", "embedded_port: 0"},
		{"speed: 60 ", fmt.Sprintf("speed: %d ", speed)},
		{"backfill_days: 7", "backfill_days: 1\n  start: " + liveStart.Format(time.RFC3339)},
		{"out_dir: data/sim", "out_dir: data/sim\n  weather_file: " + weatherCSV() + fmt.Sprintf("\n  mqtt: {addr: \"127.0.0.1:%d\"}", mqttPort)},
		{"(MQTT, embedded broker)\n    enabled: true", fmt.Sprintf("(MQTT, embedded broker)\n    enabled: true\n    mqtt: {broker: \"tcp://127.0.0.1:%d\"}", mqttPort)},
	} {
		if !strings.Contains(cfg, r[0]) {
			t.Fatalf("citybrain.yaml has no %q", r[0])
		}
		cfg = strings.Replace(cfg, r[0], r[1], 1)
	}
	cfg = strings.ReplaceAll(cfg, "127.0.0.1:8080/sim", fmt.Sprintf("127.0.0.1:%d/sim", httpPort))
	cfg += fmt.Sprintf("\nsql_access:\n  pgwire: {listen: \"127.0.0.1:%d\"}\n", pgPort)
	rcv := startResponseReceivers(t)
	cfg += rcv.yaml()
	// make run runs in the repository: its shipped sources read testdata/real/… relative to it
	if err := os.Symlink(filepath.Join(repoRoot(), "testdata"), filepath.Join(dir, "testdata")); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "citybrain.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "serve.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "--config", cfgPath, "serve")
	cmd.Dir = dir // relative paths (data/sim/…) as make run sees them
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	deadline := start.Add(budget)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); f.Close(); close(done) }()
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	logTail := func() string {
		b, _ := os.ReadFile(logPath)
		if len(b) > 4000 {
			b = b[len(b)-4000:]
		}
		return string(b)
	}
	logHas := func(s string) bool { b, _ := os.ReadFile(logPath); return strings.Contains(string(b), s) }
	for !logHas("Stop with Ctrl-C") {
		select {
		case <-done:
			t.Fatalf("serve exited:\n%s", logTail())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start:\n%s", logTail())
		}
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	t.Logf("serve up %.1f s after start; live start %s, scored window [%s, %s), sim speed %d",
		time.Since(start).Seconds(), liveStart.Format(time.RFC3339), liveStart.Format("01-02 15:04"), windowEnd.Format("01-02 15:04"), speed)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The engine's own stream: exact transition_at per seq.
	var mu sync.Mutex
	api := map[int64]*apiTransition{}
	go followWarningStream(ctx, base, func(tr *apiTransition) {
		mu.Lock()
		if api[tr.Seq] == nil {
			api[tr.Seq] = tr
		}
		mu.Unlock()
	})

	// The cockpit in headless Chromium, with its EventSource recorded.
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1400, 900))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		c, cc := context.WithTimeout(bctx, 60*time.Second)
		defer cc()
		if err := chromedp.Do(c, actions...); err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	// The first action starts Chromium and must run on bctx itself: the
	// browser lives as long as the context of its first action.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	do("record EventSource", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: recordLiveWarnings})
		return err
	}))
	do("login and open the cockpit",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#login-user`)),
		chromedp.SendKeys(chromedp.CSS(`#login-user`), "leader"),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), auth.DemoPassword),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		chromedp.WaitReady(chromedp.CSS(`body[data-rendered="cockpit"]`)))
	evalJS := func(expr string, v any) error {
		c, cc := context.WithTimeout(bctx, 20*time.Second)
		defer cc()
		raw, err := chromedp.Run(c, chromedp.Evaluate[json.RawMessage](expr))
		if err != nil {
			return err
		}
		return json.Unmarshal(raw, v)
	}
	for {
		var open int
		if err := evalJS(`window.__cbOpen || 0`, &open); err != nil {
			t.Fatalf("browser: %v", err)
		}
		if open > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cockpit's EventSource on /api/dash/live never opened")
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("cockpit open in Chromium, its live feed connected, %.1f s after start", time.Since(start).Seconds())

	var browser []browserWarning
	drain := func() {
		var got []browserWarning
		if err := evalJS(`window.__cbWarnings.splice(0)`, &got); err != nil {
			t.Logf("browser: %v", err)
			return
		}
		browser = append(browser, got...)
	}
	type simStatus struct {
		Now   time.Time `json:"now"`
		Start time.Time `json:"start"`
	}
	type engineStatus struct {
		Engine struct {
			Behind    int64     `json:"behind"`
			CaughtUp  bool      `json:"caught_up"`
			EventTime time.Time `json:"event_time"`
		} `json:"engine"`
	}
	var st simStatus
	var eng engineStatus
	var truth []sim.Incident
	var counted []sim.Incident
	lastLog := time.Time{}
	var caughtUp time.Time
	apiFails, apiErr := 0, ""
	for {
		select {
		case <-done:
			t.Fatalf("serve exited:\n%s", logTail())
		default:
		}
		drain()
		if err := getJSON(base+"/sim/status", &st); err != nil {
			t.Logf("sim status: %v", err)
		}
		t0 := time.Now()
		if err := getJSON(base+"/api/warnings", &eng); err != nil {
			apiFails++
			apiErr = fmt.Sprintf("%v after %.1f s", err, time.Since(t0).Seconds())
		}
		// GET /api/warnings may not answer while the engine evaluates a large
		// batch: its freshness in /metrics (loopback) says how far it is too.
		if et := engineEventTime(base); et.After(eng.Engine.EventTime) {
			eng.Engine.EventTime = et
		}
		if caughtUp.IsZero() && eng.Engine.CaughtUp && !eng.Engine.EventTime.IsZero() { // before its first records it says caught up too
			caughtUp = time.Now()
			t.Logf("warning engine caught up with its topics %.0f s after start (engine at %s)", caughtUp.Sub(start).Seconds(), eng.Engine.EventTime.In(sim.Shanghai).Format("01-02 15:04"))
		}
		if time.Since(lastLog) >= 20*time.Second {
			lastLog = time.Now()
			mu.Lock()
			n := len(api)
			mu.Unlock()
			t.Logf("t=%3.0fs sim %s, engine at %s (behind %d, caught up %v), %d transitions on the API stream, %d in the browser; GET /api/warnings failed %d times (last: %s); load %s",
				time.Since(start).Seconds(), st.Now.In(sim.Shanghai).Format("01-02 15:04"), eng.Engine.EventTime.In(sim.Shanghai).Format("01-02 15:04"),
				eng.Engine.Behind, eng.Engine.CaughtUp, n, len(browser), apiFails, apiErr, loadavg())
		}
		// Once the simulated clock is past the window, every surge peaking
		// in it has started and is in the ground truth.
		if counted == nil && !st.Now.Before(windowEnd) {
			truth, err = sim.ReadGroundTruth(filepath.Join(dir, "data", "sim", sim.GroundTruthFile))
			if err != nil {
				t.Fatal(err)
			}
			counted = []sim.Incident{}
			for _, in := range truth {
				if in.Kind == sim.KindCrowdSurge && !in.Peak.Before(liveStart) && in.Peak.Before(windowEnd) {
					counted = append(counted, in)
				}
			}
			if len(counted) == 0 {
				t.Fatalf("no crowd surge peaks in the live window [%s, %s): the test would be vacuous; lengthen CITYBRAIN_E2E_SURGE_DAYS (ground truth: %+v)",
					liveStart.Format(time.RFC3339), windowEnd.Format(time.RFC3339), truth)
			}
		}
		// Done when the engine has evaluated past every counted peak and the
		// last raise had 10 s to reach the browser.
		if counted != nil {
			last := counted[0].Peak
			for _, in := range counted {
				if in.Peak.After(last) {
					last = in.Peak
				}
			}
			if !eng.Engine.EventTime.Before(last) {
				time.Sleep(maxDelivery + 2*time.Second)
				drain()
				break
			}
		}
		if time.Now().After(deadline) {
			drain()
			t.Errorf("out of time (%s from serve's start): simulated clock at %s, the warning engine at %s (behind %d records, caught up %v); window ends %s — the engine is too slow for sim speed %d here (load: %s)",
				budget, st.Now.In(sim.Shanghai).Format("01-02 15:04"), eng.Engine.EventTime.In(sim.Shanghai).Format("01-02 15:04"), eng.Engine.Behind, eng.Engine.CaughtUp,
				windowEnd.Format("01-02 15:04"), speed, loadavg())
			break
		}
		time.Sleep(time.Second)
	}
	if counted == nil {
		t.Fatalf("the simulated clock never reached the end of the window (%s); log:\n%s", windowEnd.Format(time.RFC3339), logTail())
	}

	// Score each surge against marts.warnings (every transition the engine
	// committed; its SSE stream drops events when a batch brings more than
	// its buffer of 1,024), keeping the stream's arrival where it has one.
	var hist struct {
		Warnings []*apiTransition `json:"warnings"`
	}
	histOK := false
	for i := 0; i < 5 && !histOK; i++ {
		if err := getJSONTimeout(base+"/api/warnings?all=1&limit=100000", &hist, 60*time.Second); err != nil {
			t.Logf("GET /api/warnings?all=1: %v", err)
			continue
		}
		histOK = true
	}
	mu.Lock()
	defer mu.Unlock()
	streamed := len(api)
	for _, tr := range hist.Warnings {
		if api[tr.Seq] == nil {
			api[tr.Seq] = tr
		}
	}
	t.Logf("%d transitions in marts.warnings (read: %v), %d of them came on /api/warnings/stream", len(hist.Warnings), histOK, streamed)
	inBrowser := map[int64]browserWarning{}
	for _, w := range browser {
		if _, ok := inBrowser[int64(w.Seq)]; !ok {
			inBrowser[int64(w.Seq)] = w
		}
	}
	var all []*apiTransition
	for _, tr := range api {
		all = append(all, tr)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Seq < all[j].Seq })
	const interval = 5 * time.Minute
	for _, in := range counted {
		var first *apiTransition
		for _, tr := range all {
			if tr.Kind == "crowd" && tr.SubjectID == in.VenueID && (tr.State == "raised" || tr.State == "escalated") &&
				!tr.EventTime.Before(in.Start.Add(-time.Hour)) && tr.EventTime.Before(in.End) {
				first = tr
				break
			}
		}
		if first == nil && eng.Engine.EventTime.Before(in.Peak) {
			t.Errorf("NOT REACHED %s (%s): crowd surge at %s, peak %s: the engine evaluated only up to %s in the time given",
				in.ID, in.NoteEN, in.VenueID, in.Peak.Format("01-02 15:04"), eng.Engine.EventTime.In(sim.Shanghai).Format("01-02 15:04"))
			continue
		}
		if first == nil {
			t.Errorf("MISSED %s (%s): crowd surge at %s, start %s, peak %s, end %s: no crowd warning of the venue was raised (marts.warnings and /api/warnings/stream)",
				in.ID, in.NoteEN, in.VenueID, in.Start.Format("01-02 15:04"), in.Peak.Format("01-02 15:04"), in.End.Format("01-02 15:04"))
			continue
		}
		known := first.EventTime.Add(interval) // the end of the interval that raised it
		lead := in.Peak.Sub(known)
		msg := fmt.Sprintf("%s at %s: %s %s (seq %d, predicted %v, horizon %d min) for the interval %s, %.0f min before the peak %s",
			in.ID, in.VenueID, first.State, first.Level, first.Seq, first.Predicted, first.HorizonMin, first.EventTime.In(sim.Shanghai).Format("01-02 15:04"),
			lead.Minutes(), in.Peak.Format("01-02 15:04"))
		if known.After(in.Peak) {
			t.Errorf("LATE %s: raised after the peak", msg)
		}
		bw, ok := inBrowser[first.Seq]
		if !ok {
			t.Errorf("NOT IN THE COCKPIT %s: transition_at %s, but the cockpit's EventSource never received seq %d (%d warning events reached it)",
				msg, first.TransitionAt.Format("15:04:05.000"), first.Seq, len(browser))
			continue
		}
		arrived := time.UnixMilli(int64(bw.At))
		delay := arrived.Sub(first.TransitionAt)
		msg += fmt.Sprintf("; in the cockpit %.2f s after transition_at", delay.Seconds())
		if !first.arrived.IsZero() {
			msg += fmt.Sprintf(" (API stream %.2f s)", first.arrived.Sub(first.TransitionAt).Seconds())
		}
		if delay > maxDelivery {
			t.Errorf("SLOW %s: want ≤ %s", msg, maxDelivery)
			continue
		}
		t.Logf("ok %s", msg)
	}
	// The first warned surge, followed into the response service (issue 24).
	for _, in := range counted {
		warned := false
		for _, tr := range all {
			warned = warned || (tr.Kind == "crowd" && tr.SubjectID == in.VenueID && tr.State == "raised")
		}
		if warned {
			t.Run("response", func(t *testing.T) { checkSurgeResponse(t, base, chromium, rcv, in) })
			break
		}
	}
	// For the record: how every transition fared in the browser.
	var delays []float64
	missing := 0
	for _, tr := range all {
		if bw, ok := inBrowser[tr.Seq]; ok {
			delays = append(delays, time.UnixMilli(int64(bw.At)).Sub(tr.TransitionAt).Seconds())
		} else if tr.TransitionAt.Before(time.Now().Add(-maxDelivery)) && tr.TransitionAt.After(start) {
			missing++
		}
	}
	sort.Float64s(delays)
	if len(delays) > 0 {
		t.Logf("all transitions: %d on the API stream, %d in the cockpit (p50 %.2f s, max %.2f s after transition_at), %d never reached it; %d surges scored; load %s",
			len(all), len(delays), delays[len(delays)/2], delays[len(delays)-1], missing, len(counted), loadavg())
	}
	if t.Failed() {
		b, _ := os.ReadFile(logPath)
		var eng []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "预警") || strings.Contains(l, "warnings") {
				eng = append(eng, l)
			}
		}
		t.Logf("the warning engine's lines of the serve log (last 25 of %d):\n%s", len(eng), strings.Join(eng[max(0, len(eng)-25):], "\n"))
		t.Logf("serve log tail:\n%s", logTail())
	}
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "?"
}

// engineEventTime is the warning engine's newest event time from /metrics
// (citybrain_freshness_event_time_seconds of warnings/engine); zero if absent.
func engineEventTime(base string) time.Time {
	c := http.Client{Timeout: 5 * time.Second}
	req, err := http.NewRequest("GET", base+"/metrics", nil)
	if err != nil {
		return time.Time{}
	}
	req.SetBasicAuth("admin", auth.DemoPassword) // /metrics is the admins'
	resp, err := c.Do(req)
	if err != nil {
		return time.Time{}
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "citybrain_freshness_event_time_seconds{") && strings.Contains(l, `component="warnings",name="engine"`) {
			f := strings.Fields(l)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil && v > 0 {
				return time.Unix(0, int64(v*1e9))
			}
		}
	}
	return time.Time{}
}

// getJSON GETs a URL as the demo leader and decodes the answer.
func getJSON(url string, v any) error { return getJSONTimeout(url, v, 8*time.Second) }

func getJSONTimeout(url string, v any, timeout time.Duration) error {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth("leader", auth.DemoPassword)
	c := http.Client{Timeout: timeout}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// followWarningStream reads GET /api/warnings/stream until ctx ends
// (reconnecting) and hands each transition, with its arrival, to fn.
func followWarningStream(ctx context.Context, base string, fn func(*apiTransition)) {
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/warnings/stream", nil)
		if err != nil {
			return
		}
		req.SetBasicAuth("leader", auth.DemoPassword)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 4<<20)
			for sc.Scan() {
				line := sc.Text()
				if !strings.HasPrefix(line, "data:") {
					continue
				}
				var tr apiTransition
				if json.Unmarshal([]byte(strings.TrimSpace(line[5:])), &tr) == nil && tr.Seq > 0 {
					tr.arrived = time.Now()
					fn(&tr)
				}
			}
			resp.Body.Close()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
