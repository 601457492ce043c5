package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"citybrain/internal/auth"
)

// The soak suite (issue 17 item 7): make run's demo at a high simulator
// speed for a long time beside CPU hogs, sampled every -soak-interval.
// It is Manual: `make bench` leaves it out; `make bench SUITES=soak` or
// `go run ./internal/benchrun -suite soak` runs it.
//
// Reproduce (the full run, ≈ 40 min with catch-up):
//
//	make bench SUITES=soak
//	go run ./internal/benchrun -suite soak -soak-duration 30m -soak-speed 1440 -soak-hogs 1
var (
	soakDuration = flag.Duration("soak-duration", 30*time.Minute, "soak: how long to sample after serve is Ready")
	soakSpeed    = flag.Float64("soak-speed", 1440, "soak: sim.speed (simulated seconds per wall second)")
	soakHogs     = flag.Int("soak-hogs", 1, "soak: CPU hogs (busy-loop processes) running beside serve")
	soakInterval = flag.Duration("soak-interval", 10*time.Second, "soak: sampling interval")
	soakBackfill = flag.Int("soak-backfill-days", 7, "soak: sim.backfill_days (make run's is 7)")
	soakBin      = flag.String("soak-bin", "bin/citybrain", "soak: the citybrain binary (built with go build when missing)")
	soakOut      = flag.String("soak-out", "bench", "soak: directory for soak.json, soak.svg and soak.png")
	soakReadyMax = flag.Duration("soak-ready-timeout", 20*time.Minute, "soak: how long serve may take to print Ready")
)

// soakGoalFreshS is the freshness goal (p99 after catch-up), soakGoalRSS
// its RSS growth bound over the second half.
const (
	// soakCaughtUpAgeS: the engine counts as caught up once its event time
	// is this close (wall seconds) to the simulated clock.
	soakCaughtUpAgeS = 60.0
	soakGoalFreshS   = 10.0
	soakGoalRSS      = 0.10
	// soakModelsWarnS is the models path's warn threshold (models/service).
	soakModelsWarnS = 600.0
)

func init() {
	registerSuite(Suite{
		Name:   "soak",
		Manual: true,
		Doc: `Soak: citybrain serve with make run's configuration (citybrain.yaml in a temp directory: own ports, data_dir,
sim.speed, sim.backfill_days) beside busy-loop CPU hogs, sampled every 10 s: /metrics (every freshness path's lag, behind,
event time, snapshot; the lake commit summaries), /api/warnings (engine behind / caught_up / event_time), a pgwire probe
(select max(event_time), count(*) from marts.warnings), the serve process's RSS and CPU (/proc), and per lake table the
data and metadata files and bytes. Warning freshness as the issue defines it — simulated data time → warning visible, in
wall seconds — is measured per transition: the wall time at which the simulated clock (/sim/status) was at the
transition's event_time, to its arrival on /api/warnings/stream (API), on the cockpit's /api/dash/live (SSE, after the
lake commit) and in a pgwire poll every 2 s (visible at the poll that first returned it). "After catch-up": samples and
transitions after the engine reported caught_up with its event time within 60 s of the simulated clock (it first
replays the backfilled history; the figures are over the whole run, and say so, when that never happened). Goals (the issue): freshness
p99 ≤ 10 s after catch-up, RSS growth ≤ 10 % over the second half, files per table bounded by compaction. Samples:
bench/soak.json; chart: bench/soak.svg (and soak.png when rsvg-convert exists).`,
		Reproduce: "make bench SUITES=soak   # = go run ./internal/benchrun -suite soak -soak-duration 30m -soak-speed 1440 -soak-hogs 1",
		Run:       runSoak,
	})
}

// soakPath is one freshness path in one sample.
type soakPath struct {
	LagS      float64 `json:"lag_s"`
	EventLagS float64 `json:"event_lag_s,omitempty"`
	Behind    float64 `json:"behind,omitempty"`
	EventTime float64 `json:"event_time,omitempty"` // Unix seconds
	// DataAgeS is how long ago (wall seconds) the simulated clock was at
	// EventTime: the path's data age as the issue defines freshness.
	DataAgeS float64 `json:"data_age_s,omitempty"`
	Snapshot float64 `json:"snapshot,omitempty"`
	Error    bool    `json:"error,omitempty"`
}

// soakTable is one lake table's files in one sample.
type soakTable struct {
	DataFiles     int   `json:"data_files"`
	DataBytes     int64 `json:"data_bytes"`
	MetadataFiles int   `json:"metadata_files"`
	MetadataBytes int64 `json:"metadata_bytes"`
}

// soakSample is one sampling instant.
type soakSample struct {
	T      float64   `json:"t"` // wall seconds since serve started
	Wall   time.Time `json:"wall"`
	SimNow time.Time `json:"sim_now,omitzero"`

	Paths     map[string]soakPath `json:"paths,omitempty"`     // component/name[/table]
	Summaries map[string]float64  `json:"summaries,omitempty"` // name{labels} → value (_sum, _count, _max, counters)

	EngineBehind    int64     `json:"engine_behind"`
	EngineCaughtUp  bool      `json:"engine_caught_up"`
	EngineEventTime time.Time `json:"engine_event_time,omitzero"`
	EngineAgeS      float64   `json:"engine_age_s,omitempty"` // data age of the engine's event time
	ActiveWarnings  int       `json:"active_warnings"`
	APIMS           float64   `json:"api_ms"`

	PGMaxEventTime time.Time `json:"pg_max_event_time,omitzero"`
	PGCount        int64     `json:"pg_count"`
	PGAgeS         float64   `json:"pg_age_s,omitempty"`
	PGMS           float64   `json:"pg_ms"`

	RSSMB    float64 `json:"rss_mb"`
	CPUS     float64 `json:"cpu_s"`     // serve's user+sys seconds so far
	CPUCores float64 `json:"cpu_cores"` // since the previous sample
	Threads  int     `json:"threads"`
	Load1    float64 `json:"load1"`

	Tables map[string]soakTable `json:"tables,omitempty"` // ns.table
	Errors []string             `json:"errors,omitempty"`
}

// soakTransition is one warning transition and when each path showed it.
type soakTransition struct {
	Seq          int64     `json:"seq"`
	WarningID    string    `json:"warning_id"`
	Kind         string    `json:"kind"`
	State        string    `json:"state"`
	Level        string    `json:"level"`
	EventTime    time.Time `json:"event_time"`
	TransitionAt time.Time `json:"transition_at,omitzero"`
	API          time.Time `json:"api,omitzero"`     // arrival on /api/warnings/stream
	Cockpit      time.Time `json:"cockpit,omitzero"` // arrival on /api/dash/live
	PG           time.Time `json:"pg,omitzero"`      // first pgwire poll that returned it
	// *FreshS: wall seconds from the simulated clock reaching EventTime to
	// the arrival (computed at the end, from the clock's calibration).
	APIFreshS     float64 `json:"api_fresh_s,omitempty"`
	CockpitFreshS float64 `json:"cockpit_fresh_s,omitempty"`
	PGFreshS      float64 `json:"pg_fresh_s,omitempty"`
	AfterCatchUp  bool    `json:"after_catch_up"`
}

// soakRecord is bench/soak.json.
type soakRecord struct {
	Machine     Machine           `json:"machine"`
	Command     string            `json:"command"`
	Speed       float64           `json:"speed"`
	Hogs        int               `json:"hogs"`
	BackfillDay int               `json:"backfill_days"`
	Interval    float64           `json:"interval_s"`
	Start       time.Time         `json:"start"`
	ReadyS      float64           `json:"ready_s"`
	CatchUpS    float64           `json:"catch_up_s"` // -1: never
	LiveStart   time.Time         `json:"live_start,omitzero"`
	Summary     map[string]any    `json:"summary"`
	Samples     []soakSample      `json:"samples"`
	Transitions []*soakTransition `json:"transitions"`
}

// simClock maps simulated time to wall time: once live, the simulator's
// clock is linear in wall time (sim = simStart + speed × (wall − wallStart));
// before (while it backfills) /sim/status shows how far history is written.
type simClock struct {
	mu          sync.Mutex
	wall        time.Time
	sim         time.Time
	speed       float64
	live        time.Time // sim time at which live feeds began (state start)
	liveRunning bool
}

func (c *simClock) set(wall, sim, live time.Time, speed float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = live
	if !sim.After(live) || speed <= 0 {
		return // still backfilling: no live clock yet
	}
	c.wall, c.sim, c.speed, c.liveRunning = wall, sim, speed, true
}

// wallOf is the wall time at which the simulated clock was at t.
func (c *simClock) wallOf(t time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.liveRunning || c.speed <= 0 {
		return time.Time{}, false
	}
	return c.wall.Add(-time.Duration(float64(c.sim.Sub(t)) / c.speed)), true
}

// soakRun is one soak run's state.
type soakRun struct {
	tmp, root string
	base      string // http://127.0.0.1:port
	pgDSN     string
	pid       int
	start     time.Time
	clock     simClock
	hc        *http.Client

	mu          sync.Mutex
	transitions map[int64]*soakTransition
	catchUp     time.Time
	dashErr     map[string]bool
}

func runSoak(ctx context.Context, tmp string) []Result {
	fail := func(err error) []Result {
		return []Result{{Name: "soak/freshness_p99", Status: "failed", Reason: err.Error(), Unit: "s"}}
	}
	root, err := os.Getwd()
	if err != nil {
		return fail(err)
	}
	if _, err := os.Stat(filepath.Join(root, "citybrain.yaml")); err != nil {
		return fail(fmt.Errorf("run from the repository root (no citybrain.yaml in %s)", root))
	}
	bin, err := soakBinary(ctx, root, tmp)
	if err != nil {
		return fail(err)
	}
	r := &soakRun{tmp: tmp, root: root, hc: &http.Client{Timeout: 8 * time.Second}, transitions: map[int64]*soakTransition{}}
	cfg, err := r.writeConfig()
	if err != nil {
		return fail(err)
	}
	// Hogs first: the catch-up runs beside them too.
	for i := 0; i < *soakHogs; i++ {
		_, stop, err := startHog()
		if err != nil {
			return fail(fmt.Errorf("cpu hog: %w", err))
		}
		defer stop()
	}
	logf("soak: %d CPU hog(s), sim.speed %.0f, backfill %d days, %s after Ready, sample every %s; serve in %s",
		*soakHogs, *soakSpeed, *soakBackfill, *soakDuration, *soakInterval, tmp)
	logPath := filepath.Join(tmp, "serve.log")
	lf, err := os.Create(logPath)
	if err != nil {
		return fail(err)
	}
	cmd := exec.Command(bin, "--config", cfg, "serve")
	cmd.Dir = tmp // relative paths (data/sim/…) as make run sees them
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	r.start = time.Now()
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fail(err)
	}
	r.pid = cmd.Process.Pid
	done := make(chan struct{})
	go func() { cmd.Wait(); lf.Close(); close(done) }()
	defer func() {
		// The whole group (serve and anything it started): it has its own,
		// so Ctrl-C reached benchrun only; serve commits what it read.
		syscall.Kill(-r.pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			logf("soak: serve did not stop within 60 s of SIGTERM; killing it")
			syscall.Kill(-r.pid, syscall.SIGKILL)
			<-done
		}
	}()
	logTail := func() string {
		b, _ := os.ReadFile(logPath)
		if len(b) > 3000 {
			b = b[len(b)-3000:]
		}
		return string(b)
	}
	logHas := func(s string) bool { b, _ := os.ReadFile(logPath); return bytes.Contains(b, []byte(s)) }

	// Wait for the HTTP listener (the banner), then sample from there on.
	for !logHas("Stop with Ctrl-C") {
		select {
		case <-done:
			return fail(fmt.Errorf("serve exited before it started:\n%s", logTail()))
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(300 * time.Millisecond):
		}
		if time.Since(r.start) > 5*time.Minute {
			return fail(fmt.Errorf("serve did not start in 5 min:\n%s", logTail()))
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range []struct{ path, kind string }{{"/api/warnings/stream", "api"}, {"/api/dash/live", "cockpit"}} {
		wg.Add(1)
		go func() { defer wg.Done(); r.readStream(sctx, s.path, s.kind) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); r.pollPG(sctx) }()
	dash := dashLatency{}
	readyCh := make(chan struct{})
	if *soakDashPause > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); r.probeDash(sctx, &dash, readyCh) }()
	}

	var samples []soakSample
	var ready time.Time
	var prevCPU float64
	prevWall := r.start
	var end time.Time
	tick := time.NewTicker(*soakInterval)
	defer tick.Stop()
	lastLog := time.Time{}
	for {
		s := r.sample(sctx)
		if s.CPUS > 0 {
			if dt := s.Wall.Sub(prevWall).Seconds(); dt > 0 && prevCPU > 0 {
				s.CPUCores = (s.CPUS - prevCPU) / dt
			}
			prevCPU, prevWall = s.CPUS, s.Wall
		}
		samples = append(samples, s)
		if ready.IsZero() && logHas("就绪 Ready") {
			ready = time.Now()
			close(readyCh)
			end = ready.Add(*soakDuration)
			logf("soak: Ready %.0f s after start; sampling until %s", ready.Sub(r.start).Seconds(), end.Format("15:04:05"))
		}
		r.mu.Lock()
		// Caught up: the history is in (Ready), the engine says caught_up and
		// its event time is within a minute of the simulated clock (before its
		// first records, and while far behind, it has said caught_up too).
		if r.catchUp.IsZero() && !ready.IsZero() && s.EngineCaughtUp && s.EngineAgeS > 0 && s.EngineAgeS <= soakCaughtUpAgeS {
			r.catchUp = s.Wall
			logf("soak: warning engine caught up %.0f s after start", s.Wall.Sub(r.start).Seconds())
		}
		r.mu.Unlock()
		if time.Since(lastLog) >= time.Minute {
			lastLog = time.Now()
			logf("soak: t=%.0fs rss %.0f MiB cpu %.2f cores, engine behind %d caught_up %v age %.1fs, pg %d rows, worst lag %s",
				s.T, s.RSSMB, s.CPUCores, s.EngineBehind, s.EngineCaughtUp, s.EngineAgeS, s.PGCount, worstPath(s))
		}
		if ready.IsZero() && time.Since(r.start) > *soakReadyMax {
			cancel()
			wg.Wait()
			return fail(fmt.Errorf("serve printed no Ready in %s:\n%s", *soakReadyMax, logTail()))
		}
		if !end.IsZero() && !time.Now().Before(end) {
			break
		}
		select {
		case <-done:
			cancel()
			wg.Wait()
			return fail(fmt.Errorf("serve exited during the soak:\n%s", logTail()))
		case <-ctx.Done():
			cancel()
			wg.Wait()
			return fail(ctx.Err())
		case <-tick.C:
		}
	}
	cancel()
	wg.Wait()
	rec := r.finish(samples, ready)
	return append(r.report(rec), dashResults(dash)...) // the probe has ended (wg.Wait)
}

// soakBinary is -soak-bin, built with go build when missing.
func soakBinary(ctx context.Context, root, tmp string) (string, error) {
	bin := *soakBin
	if !filepath.IsAbs(bin) {
		bin = filepath.Join(root, bin)
	}
	if _, err := os.Stat(bin); err == nil {
		logf("soak: using %s (make bench rebuilds it; go run alone uses it as it is)", bin)
		return bin, nil
	}
	bin = filepath.Join(tmp, "citybrain")
	logf("soak: %s missing; go build -o %s ./cmd/citybrain", *soakBin, bin)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/citybrain")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// freeAddr is a free loopback address.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// writeConfig copies the repository's citybrain.yaml into tmp with its own
// ports, sim.speed and sim.backfill_days; data_dir stays "data", below tmp
// (serve runs there).
func (r *soakRun) writeConfig() (string, error) {
	b, err := os.ReadFile(filepath.Join(r.root, "citybrain.yaml"))
	if err != nil {
		return "", err
	}
	var addrs [3]string
	for i := range addrs {
		if addrs[i], err = freeAddr(); err != nil {
			return "", err
		}
	}
	httpAddr, mqttAddr, pgAddr := addrs[0], addrs[1], addrs[2]
	cfg := string(b)
	weather := filepath.Join(r.root, "testdata", "real", "weather", "PRSA_Data_Guanyuan_20130301-20170228.csv")
	for _, rp := range [][2]string{
		{"addr: 127.0.0.1:8080", "addr: " + httpAddr},
		{"embedded_port: 19092", "embedded_port: 0"},
		{"speed: 60 ", fmt.Sprintf("speed: %g ", *soakSpeed)},
		{"backfill_days: 7", fmt.Sprintf("backfill_days: %d", *soakBackfill)},
		{"out_dir: data/sim", "out_dir: data/sim\n  weather_file: " + weather + fmt.Sprintf("\n  mqtt: {addr: %q}", mqttAddr)},
		{"(MQTT, embedded broker)\n    enabled: true", fmt.Sprintf("(MQTT, embedded broker)\n    enabled: true\n    mqtt: {broker: \"tcp://%s\"}", mqttAddr)},
	} {
		if !strings.Contains(cfg, rp[0]) {
			return "", fmt.Errorf("citybrain.yaml has no %q: the soak's edits need updating", rp[0])
		}
		cfg = strings.Replace(cfg, rp[0], rp[1], 1)
	}
	cfg = strings.ReplaceAll(cfg, "127.0.0.1:8080/sim", httpAddr+"/sim")
	if strings.Contains(cfg, "\nsql_access:") {
		return "", errors.New("citybrain.yaml sets sql_access: the soak's pgwire edit needs updating")
	}
	cfg += fmt.Sprintf("\nsql_access:\n  pgwire: {listen: %q}\n", pgAddr)
	r.base = "http://" + httpAddr
	r.pgDSN = fmt.Sprintf("postgres://analyst:%s@%s/citybrain?sslmode=disable", auth.DemoPassword, pgAddr)
	// make run runs in the repository: shipped sources read testdata/real/… relative to it
	if err := os.Symlink(filepath.Join(r.root, "testdata"), filepath.Join(r.tmp, "testdata")); err != nil {
		return "", err
	}
	path := filepath.Join(r.tmp, "citybrain.yaml")
	return path, os.WriteFile(path, []byte(cfg), 0o644)
}

// startHog starts one busy-loop process in a process group of its own (a
// terminal's Ctrl-C reaches benchrun, which stops it; Pdeathsig kills it
// if benchrun dies first) and returns its pid and the function that stops it.
func startHog() (int, func(), error) {
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return 0, nil, err
	}
	return cmd.Process.Pid, func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	}, nil
}

func (r *soakRun) get(ctx context.Context, path string, v any) (time.Time, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", r.base+path, nil)
	if err != nil {
		return time.Time{}, 0, err
	}
	// /metrics is the admins' (and anonymous loopback callers'); the rest is
	// read as a leader would.
	if path == "/metrics" {
		req.SetBasicAuth("admin", auth.DemoPassword)
	} else {
		req.SetBasicAuth("leader", auth.DemoPassword)
	}
	t0 := time.Now()
	resp, err := r.hc.Do(req)
	if err != nil {
		return time.Time{}, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	el := time.Since(t0)
	mid := t0.Add(el / 2)
	if err != nil {
		return mid, el, err
	}
	if resp.StatusCode != 200 {
		return mid, el, fmt.Errorf("GET %s: %s: %.200s", path, resp.Status, body)
	}
	switch p := v.(type) {
	case *[]byte:
		*p = body
		return mid, el, nil
	default:
		return mid, el, json.Unmarshal(body, v)
	}
}

// sample takes one sample; what fails is noted in Errors.
func (r *soakRun) sample(ctx context.Context) soakSample {
	now := time.Now()
	s := soakSample{T: now.Sub(r.start).Seconds(), Wall: now}
	note := func(what string, err error) {
		if err != nil && ctx.Err() == nil {
			s.Errors = append(s.Errors, what+": "+err.Error())
		}
	}
	var st struct {
		Now   time.Time `json:"now"`
		Start time.Time `json:"start"`
		Speed float64   `json:"speed"`
	}
	mid, _, err := r.get(ctx, "/sim/status", &st)
	note("sim status", err)
	if err == nil {
		r.clock.set(mid, st.Now, st.Start, st.Speed)
		s.SimNow = st.Now
	}
	age := func(at time.Time, t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		w, ok := r.clock.wallOf(t)
		if !ok {
			return 0
		}
		return math.Max(at.Sub(w).Seconds(), 0)
	}

	var metrics []byte
	mid, _, err = r.get(ctx, "/metrics", &metrics)
	note("metrics", err)
	if err == nil {
		s.Paths, s.Summaries = parseMetrics(metrics)
		for k, p := range s.Paths {
			if p.EventTime > 0 {
				p.DataAgeS = age(mid, time.Unix(0, int64(p.EventTime*1e9)))
				s.Paths[k] = p
			}
		}
	}

	var ws struct {
		Warnings []json.RawMessage `json:"warnings"`
		Engine   struct {
			Behind    int64     `json:"behind"`
			CaughtUp  bool      `json:"caught_up"`
			EventTime time.Time `json:"event_time"`
		} `json:"engine"`
	}
	mid, el, err := r.get(ctx, "/api/warnings", &ws)
	note("api/warnings", err)
	if err == nil {
		s.EngineBehind, s.EngineCaughtUp, s.EngineEventTime = ws.Engine.Behind, ws.Engine.CaughtUp, ws.Engine.EventTime
		s.EngineAgeS = age(mid, ws.Engine.EventTime)
		s.ActiveWarnings = len(ws.Warnings)
		s.APIMS = float64(el.Microseconds()) / 1000
	}

	pctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	t0 := time.Now()
	err = func() error {
		c, err := pgx.Connect(pctx, r.pgDSN)
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		var mx *time.Time
		if err := c.QueryRow(pctx, "select max(event_time), count(*) from marts.warnings").Scan(&mx, &s.PGCount); err != nil {
			return err
		}
		if mx != nil {
			s.PGMaxEventTime = *mx
		}
		return nil
	}()
	cancel()
	s.PGMS = float64(time.Since(t0).Microseconds()) / 1000
	if err != nil && !strings.Contains(err.Error(), "does not exist") {
		note("pgwire", err)
	}
	s.PGAgeS = age(time.Now(), s.PGMaxEventTime)

	s.RSSMB, s.CPUS, s.Threads = procStats(r.pid)
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			s.Load1, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	s.Tables = lakeFiles(filepath.Join(r.tmp, "data", "lake"))
	return s
}

// procStats reads a process's resident set (MiB), user+sys CPU seconds and
// threads from /proc.
func procStats(pid int) (rssMB, cpuS float64, threads int) {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) >= 2 && f[0] == "VmRSS:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				rssMB = kb / 1024
			}
			if len(f) >= 2 && f[0] == "Threads:" {
				threads, _ = strconv.Atoi(f[1])
			}
		}
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// fields after the command (which may hold spaces) start after ") "
		if i := bytes.LastIndexByte(b, ')'); i > 0 {
			f := strings.Fields(string(b[i+1:]))
			// f[0] is field 3 (state): utime is field 14, stime 15
			if len(f) > 12 {
				ut, _ := strconv.ParseFloat(f[11], 64)
				st, _ := strconv.ParseFloat(f[12], 64)
				cpuS = (ut + st) / 100 // USER_HZ is 100 on Linux
			}
		}
	}
	return rssMB, cpuS, threads
}

// lakeFiles counts each table's files below lake/<ns>/<table>/: those in a
// metadata directory are metadata, the rest data.
func lakeFiles(lake string) map[string]soakTable {
	out := map[string]soakTable{}
	nss, _ := os.ReadDir(lake)
	for _, ns := range nss {
		if !ns.IsDir() {
			continue
		}
		tables, _ := os.ReadDir(filepath.Join(lake, ns.Name()))
		for _, t := range tables {
			if !t.IsDir() {
				continue
			}
			dir := filepath.Join(lake, ns.Name(), t.Name())
			var st soakTable
			filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return nil
				}
				info, err := d.Info()
				if err != nil {
					return nil
				}
				rel, _ := filepath.Rel(dir, p)
				if strings.HasPrefix(rel, "metadata"+string(filepath.Separator)) {
					st.MetadataFiles++
					st.MetadataBytes += info.Size()
				} else {
					st.DataFiles++
					st.DataBytes += info.Size()
				}
				return nil
			})
			out[ns.Name()+"."+t.Name()] = st
		}
	}
	return out
}

// parseMetrics reads the freshness gauges per path and every other series
// of the Prometheus text /metrics serves.
func parseMetrics(b []byte) (map[string]soakPath, map[string]float64) {
	paths := map[string]soakPath{}
	other := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, val, ok := parsePromLine(line)
		if !ok {
			continue
		}
		if !strings.HasPrefix(name, "citybrain_freshness_") {
			other[line[:strings.LastIndexByte(line, ' ')]] = val
			continue
		}
		key := labels["component"] + "/" + labels["name"]
		if t := labels["table"]; t != "" {
			key += "/" + t
		}
		p := paths[key]
		switch name {
		case "citybrain_freshness_lag_seconds":
			p.LagS = val
		case "citybrain_freshness_event_lag_seconds":
			p.EventLagS = val
		case "citybrain_freshness_behind_records":
			p.Behind = val
		case "citybrain_freshness_event_time_seconds":
			p.EventTime = val
		case "citybrain_freshness_snapshot":
			p.Snapshot = val
		case "citybrain_freshness_error":
			p.Error = val != 0
		}
		paths[key] = p
	}
	return paths, other
}

// parsePromLine splits `name{k="v",…} value` (label values Go-quoted, as
// internal/freshness writes them; Prometheus' escaping is the same subset).
func parsePromLine(line string) (name string, labels map[string]string, val float64, ok bool) {
	sp := strings.LastIndexByte(line, ' ')
	if sp < 0 {
		return "", nil, 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(line[sp+1:]), 64)
	if err != nil {
		return "", nil, 0, false
	}
	head := line[:sp]
	labels = map[string]string{}
	i := strings.IndexByte(head, '{')
	if i < 0 {
		return head, labels, v, true
	}
	name = head[:i]
	rest := strings.TrimSuffix(head[i+1:], "}")
	for rest != "" {
		eq := strings.IndexByte(rest, '=')
		if eq < 0 || eq+1 >= len(rest) || rest[eq+1] != '"' {
			return "", nil, 0, false
		}
		k := rest[:eq]
		// find the closing quote, skipping escapes
		j := eq + 2
		for j < len(rest) && rest[j] != '"' {
			if rest[j] == '\\' {
				j++
			}
			j++
		}
		if j >= len(rest) {
			return "", nil, 0, false
		}
		uv, err := strconv.Unquote(rest[eq+1 : j+1])
		if err != nil {
			uv = rest[eq+2 : j]
		}
		labels[k] = uv
		rest = strings.TrimPrefix(rest[j+1:], ",")
	}
	return name, labels, v, true
}

// readStream follows one SSE stream of warning transitions (reconnecting)
// and records each one's arrival.
func (r *soakRun) readStream(ctx context.Context, path, kind string) {
	for ctx.Err() == nil {
		err := r.readStreamOnce(ctx, path, kind)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			logf("soak: %s: %v (reconnecting)", path, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

func (r *soakRun) readStreamOnce(ctx context.Context, path, kind string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", r.base+path, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth("leader", auth.DemoPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
		return fmt.Errorf("%s: %s", resp.Status, b)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(line[6:])
		case strings.HasPrefix(line, "data:") && event == "warning":
			at := time.Now()
			var w struct {
				Seq          json.Number `json:"seq"`
				WarningID    string      `json:"warning_id"`
				Kind         string      `json:"kind"`
				State        string      `json:"state"`
				Level        string      `json:"level"`
				EventTime    time.Time   `json:"event_time"`
				TransitionAt time.Time   `json:"transition_at"`
			}
			dec := json.NewDecoder(strings.NewReader(strings.TrimSpace(line[5:])))
			dec.UseNumber()
			if dec.Decode(&w) != nil {
				continue
			}
			seq, err := w.Seq.Int64()
			if err != nil {
				continue
			}
			r.mu.Lock()
			tr := r.transition(seq)
			tr.WarningID, tr.Kind, tr.State, tr.Level = w.WarningID, w.Kind, w.State, w.Level
			if tr.EventTime.IsZero() {
				tr.EventTime = w.EventTime
			}
			switch kind {
			case "api":
				tr.TransitionAt = w.TransitionAt // exact; the cockpit's is in seconds
				if tr.API.IsZero() {
					tr.API = at
				}
			case "cockpit":
				if tr.Cockpit.IsZero() {
					tr.Cockpit = at
				}
			}
			r.mu.Unlock()
		case line == "":
			event = ""
		}
	}
	return sc.Err()
}

// transition is the record of seq (r.mu held).
func (r *soakRun) transition(seq int64) *soakTransition {
	tr := r.transitions[seq]
	if tr == nil {
		tr = &soakTransition{Seq: seq}
		r.transitions[seq] = tr
	}
	return tr
}

// pollPG asks pgwire every 2 s for transitions it has not returned yet.
func (r *soakRun) pollPG(ctx context.Context) {
	var c *pgx.Conn
	defer func() {
		if c != nil {
			c.Close(context.Background())
		}
	}()
	last := int64(-1)
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
		if c == nil {
			var err error
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			c, err = pgx.Connect(cctx, r.pgDSN)
			cancel()
			if err != nil {
				c = nil
				continue
			}
		}
		qctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		rows, err := c.Query(qctx, fmt.Sprintf("select seq, event_time from marts.warnings where seq > %d order by seq", last))
		if err != nil {
			cancel()
			if !strings.Contains(err.Error(), "does not exist") && ctx.Err() == nil {
				c.Close(context.Background())
				c = nil
			}
			continue
		}
		type row struct {
			seq int64
			et  time.Time
		}
		var got []row
		for rows.Next() {
			var x row
			if rows.Scan(&x.seq, &x.et) == nil {
				got = append(got, x)
			}
		}
		rows.Close()
		cancel()
		at := time.Now()
		r.mu.Lock()
		for _, x := range got {
			tr := r.transition(x.seq)
			if tr.PG.IsZero() {
				tr.PG = at
			}
			if tr.EventTime.IsZero() {
				tr.EventTime = x.et
			}
			last = max(last, x.seq)
		}
		r.mu.Unlock()
	}
}

// worstPath names the path with the largest lag in a sample.
func worstPath(s soakSample) string {
	k, v := "", -1.0
	for name, p := range s.Paths {
		if p.LagS > v {
			k, v = name, p.LagS
		}
	}
	if k == "" {
		return "-"
	}
	return fmt.Sprintf("%s %.1fs", k, v)
}

// percentile is the nearest-rank p-th percentile (0 < p ≤ 100) of xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// percentile50 is the median (NaN for none; models.go's median wants some).
func percentile50(xs []float64) float64 { return percentile(xs, 50) }
