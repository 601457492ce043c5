package sim

import (
	"context"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"citybrain/internal/auth"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL driver "pgx" for police cases
)

// Runner runs the simulator live: it writes the world, backfills history,
// then advances the simulated clock and emits every feed over its protocol
// (file drops, MQTT, HTTP, PostgreSQL). Its state (epoch, live start, how
// far feeds were emitted) is kept in <out_dir>/state.json so a restart
// continues the same timeline instead of duplicating history.
type Runner struct {
	Sim *Sim
	Cfg Config
	Dir string
	Log *slog.Logger
	// Broker is the embedded MQTT broker (nil when publishing elsewhere).
	Broker *Broker
	// WallNow is the wall clock (time.Now unless a test sets it).
	WallNow func() time.Time
	// Token, when set, is the feeds' secret: /sim/* answers a request
	// carrying "Authorization: Bearer <Token>" (the http connectors, given
	// auth.token_env: CITYBRAIN_SIM_TOKEN) or one Users accepts, and 401
	// otherwise. Empty: the feeds are open (tests).
	Token string
	// Users, when set, also admits the platform's logged-in users (serve).
	Users interface {
		FromRequest(r *http.Request) (auth.User, error)
	}

	stMu      sync.Mutex // guards st between the feed loop and the water publisher
	st        state
	wallStart time.Time
	simStart  time.Time // simulated time at wallStart
	pub       *publisher
	police    *sql.DB

	mu     sync.RWMutex
	served time.Time // HTTP feeds show records up to here
	events []CityEvent
	calls  []Call
	ready  chan struct{}
}

type state struct {
	Seed       int64     `json:"seed"`
	Scale      int       `json:"scale"`
	Epoch      time.Time `json:"epoch"`
	Start      time.Time `json:"start"`
	Emitted    time.Time `json:"emitted"`
	WaterUntil time.Time `json:"water_until"`
}

const stateFile = "state.json"

// NewRunner prepares a live simulator writing below dir. Start (live) is
// cfg.Start, else the state of an earlier run, else now rounded down to 5
// minutes; history is backfilled for cfg.BackfillDays before it.
func NewRunner(cfg Config, dir string, log *slog.Logger) (*Runner, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sim out_dir %s: %w", dir, err)
	}
	r := &Runner{Cfg: cfg, Dir: dir, Log: log, WallNow: time.Now, ready: make(chan struct{})}
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &r.st); err != nil {
			return nil, fmt.Errorf("sim state %s: %w (delete the directory to start over)", filepath.Join(dir, stateFile), err)
		}
		if r.st.Seed != cfg.Seed || r.st.Scale != cfg.Scale {
			return nil, fmt.Errorf("模拟输出目录 %s 由其他 seed/scale 生成 / %s was generated with seed %d scale %d, not %d/%d: delete it or set sim.out_dir",
				dir, dir, r.st.Seed, r.st.Scale, cfg.Seed, cfg.Scale)
		}
	case errors.Is(err, os.ErrNotExist):
		start := time.Now().In(Shanghai).Truncate(5 * time.Minute)
		if cfg.Start != "" {
			start, _ = time.Parse(time.RFC3339, cfg.Start)
		}
		start = start.In(Shanghai).Truncate(time.Hour)
		r.st = state{Seed: cfg.Seed, Scale: cfg.Scale, Start: start, Epoch: start.AddDate(0, 0, -cfg.BackfillDays)}
		r.st.Emitted, r.st.WaterUntil = r.st.Epoch, r.st.Epoch
	default:
		return nil, err
	}
	s, err := New(cfg, r.st.Epoch)
	if err != nil {
		return nil, err
	}
	r.Sim = s
	return r, nil
}

// RewindWater makes the water feed publish again from t (when earlier than
// where it stands): the embedded broker keeps no messages across a restart,
// so serve rewinds to what the lake already holds; the connector's cursor
// (seq) drops what it has seen.
func (r *Runner) RewindWater(t time.Time) {
	r.stMu.Lock()
	defer r.stMu.Unlock()
	if t.Before(r.st.Epoch) {
		t = r.st.Epoch
	}
	if t.Before(r.st.WaterUntil) {
		r.st.WaterUntil = t
	}
}

// Epoch is the first instant of simulated history; Start is where live
// feeds begin.
func (r *Runner) Epoch() time.Time { return r.st.Epoch }

// Start is the simulated time live feeds begin at.
func (r *Runner) Start() time.Time { return r.st.Start }

// Now is the simulated time.
func (r *Runner) Now() time.Time {
	r.stMu.Lock()
	wallStart, simStart, emitted := r.wallStart, r.simStart, r.st.Emitted
	r.stMu.Unlock()
	if wallStart.IsZero() {
		return emitted
	}
	el := r.WallNow().Sub(wallStart)
	if r.Cfg.Clock == ClockAccelerated {
		el = time.Duration(float64(el) * r.Cfg.Speed)
	}
	return simStart.Add(el)
}

// Served is how far the HTTP feeds show records.
func (r *Runner) Served() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.served
}

// Ready is closed once the history has been backfilled.
func (r *Runner) Ready() <-chan struct{} { return r.ready }

// setState updates the state under its lock and saves it.
func (r *Runner) setState(fn func(*state)) error {
	r.stMu.Lock()
	defer r.stMu.Unlock()
	fn(&r.st)
	return r.saveState()
}

// State is a copy of the runner's state.
func (r *Runner) state() state {
	r.stMu.Lock()
	defer r.stMu.Unlock()
	return r.st
}

func (r *Runner) saveState() error {
	b, _ := json.MarshalIndent(r.st, "", "  ")
	tmp := filepath.Join(r.Dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(r.Dir, stateFile))
}

// Prepare writes the world and connects the MQTT publisher and the police
// database. It does not emit feeds.
func (r *Runner) Prepare(ctx context.Context) error {
	t0 := time.Now()
	rows, err := r.Sim.W.WriteWorld(r.Dir)
	if err != nil {
		return fmt.Errorf("write world: %w", err)
	}
	r.Log.Info("sim world written", "dir", filepath.Join(r.Dir, WorldDir), "rows", rows, "cells", len(r.Sim.W.Cells), "took", time.Since(t0).Round(time.Millisecond))
	url := r.Cfg.MQTT.Broker
	if r.Broker != nil {
		url = r.Broker.URL()
	}
	if url != "" {
		if r.pub, err = newPublisher(ctx, url, r.Cfg.MQTT.TopicPrefix, r.Broker); err != nil {
			return err
		}
	}
	if dsn := r.policeDSN(); dsn != "" {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return fmt.Errorf("police database: %w", err)
		}
		if _, err := db.ExecContext(ctx, policeDDL); err != nil {
			db.Close()
			return fmt.Errorf("警情数据库不可用 / police database (sim.police_dsn): %w", err)
		}
		r.police = db
	}
	// HTTP feeds: the requests and calls already emitted by an earlier run
	for t := r.st.Epoch; t.Before(r.st.Emitted.Truncate(time.Hour)); t = t.Add(time.Hour) {
		r.events = append(r.events, r.Sim.CityEvents(t)...)
		r.calls = append(r.calls, r.Sim.Calls(t)...)
	}
	r.served = r.st.Emitted.Truncate(time.Hour)
	return nil
}

func (r *Runner) policeDSN() string {
	if r.Cfg.PoliceDSN != "" {
		return r.Cfg.PoliceDSN
	}
	return os.Getenv("CITYBRAIN_SIM_POLICE_DSN")
}

// PoliceTable is the PostgreSQL table police cases are written to.
const PoliceTable = "sim_police_cases"

const policeDDL = `CREATE TABLE IF NOT EXISTS ` + PoliceTable + ` (
  id bigserial PRIMARY KEY,
  case_id text UNIQUE NOT NULL,
  occurred_at timestamptz NOT NULL,
  category text, description text, offense_code text, district text, beat text, address text,
  longitude double precision, latitude double precision,
  recorded_at timestamptz NOT NULL DEFAULT now())`

// emit writes every feed for simulated (from, to]: hours and intervals
// that end in it.
func (r *Runner) emit(ctx context.Context, from, to time.Time) (RowCounts, error) {
	n, err := r.Sim.WriteChunk(r.Dir, from, to, ChunkOptions{Police: r.police == nil})
	if err != nil {
		return n, err
	}
	var evs []CityEvent
	var calls []Call
	var police [][]string
	eachEnd(from, to, time.Hour, func(t time.Time) {
		evs = append(evs, r.Sim.CityEvents(t)...)
		calls = append(calls, r.Sim.Calls(t)...)
		if r.police != nil {
			police = append(police, r.Sim.PoliceRows(t)...)
		}
	})
	if len(police) > 0 {
		if err := r.insertPolice(ctx, police); err != nil {
			return n, err
		}
		n[FeedPolice] += len(police)
	}
	r.mu.Lock()
	r.events = append(r.events, evs...)
	r.calls = append(r.calls, calls...)
	if to.Truncate(time.Hour).After(r.served) {
		r.served = to.Truncate(time.Hour)
	}
	r.mu.Unlock()
	n[FeedCity] += len(evs)
	n[FeedCalls] += len(calls)
	return n, r.setState(func(st *state) { st.Emitted = to })
}

func (r *Runner) insertPolice(ctx context.Context, rows [][]string) error {
	tx, err := r.police.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO `+PoliceTable+` (case_id, occurred_at, category, description, offense_code, district, beat, address, longitude, latitude)
VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT (case_id) DO NOTHING`)
	if err != nil {
		return err
	}
	for _, x := range rows {
		lon, _ := strconv.ParseFloat(x[8], 64)
		lat, _ := strconv.ParseFloat(x[9], 64)
		at, _ := time.Parse(time.RFC3339, x[1])
		if _, err := stmt.ExecContext(ctx, x[0], at, x[2], x[3], x[4], x[5], x[6], x[7], lon, lat); err != nil {
			return fmt.Errorf("insert police case %s: %w", x[0], err)
		}
	}
	return tx.Commit()
}

// publishWater publishes the water readings of intervals ending in
// (WaterUntil, until].
func (r *Runner) publishWater(ctx context.Context, until time.Time) error {
	from := r.state().WaterUntil
	if r.pub == nil || !until.After(from) {
		return nil
	}
	if len(r.Sim.W.Sensors) > 0 {
		if err := r.pub.waitSubscriber(ctx, r.Sim.W.Sensors[0].ID); err != nil {
			return err
		}
	}
	d := r.Cfg.Rates.WaterInterval
	var batch []WaterMsg
	flush := func(upTo time.Time) error {
		if err := r.pub.publish(ctx, batch); err != nil {
			return err
		}
		batch = batch[:0]
		return r.setState(func(st *state) { st.WaterUntil = upTo })
	}
	var err error
	eachEnd(from, until, d, func(t time.Time) {
		if err != nil {
			return
		}
		batch = append(batch, r.Sim.WaterMsgs(t)...)
		if len(batch) >= 5000 {
			err = flush(t.Add(d))
		}
	})
	if err != nil {
		return err
	}
	return flush(until.Truncate(d))
}

// eachEnd calls fn with the start of every interval of length d whose end
// lies in (from, to].
func eachEnd(from, to time.Time, d time.Duration, fn func(time.Time)) {
	t := from.Add(-d).Truncate(d)
	for !t.Add(d).After(from) {
		t = t.Add(d)
	}
	for ; !t.Add(d).After(to); t = t.Add(d) {
		fn(t)
	}
}

// Run backfills the history not yet emitted, then follows the clock until
// ctx is done.
func (r *Runner) Run(ctx context.Context) error {
	defer func() {
		if r.pub != nil {
			r.pub.close()
		}
		if r.police != nil {
			r.police.Close()
		}
	}()
	// history, a day at a time
	t0 := time.Now()
	total := 0
	for r.st.Emitted.Before(r.st.Start) {
		to := r.st.Emitted.Add(24 * time.Hour).Truncate(24 * time.Hour)
		if to.After(r.st.Start) || !to.After(r.st.Emitted) {
			to = r.st.Start
		}
		n, err := r.emit(ctx, r.st.Emitted, to)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sim backfill: %w", err)
		}
		for _, v := range n {
			total += v
		}
		if err := r.writeGroundTruth(to); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	if total > 0 {
		el := time.Since(t0)
		r.Log.Info("sim history backfilled", "days", r.Cfg.BackfillDays, "rows", total, "took", el.Round(time.Millisecond),
			"rows_per_s", int(float64(total)/el.Seconds()))
	}
	close(r.ready)
	waterErr := make(chan error, 1)
	waterUntil := make(chan time.Time, 1)
	go func() {
		var err error
		for until := range waterUntil {
			if err = r.publishWater(ctx, until); err != nil && ctx.Err() == nil {
				r.Log.Error("sim water feed", "err", err)
			}
		}
		waterErr <- err
	}()
	defer func() { close(waterUntil); <-waterErr }()
	signal := func(t time.Time) {
		select {
		case <-waterUntil:
		default:
		}
		waterUntil <- t
	}
	signal(r.st.Emitted)
	// live
	r.stMu.Lock()
	r.wallStart, r.simStart = r.WallNow(), r.st.Emitted
	r.stMu.Unlock()
	step := min(r.Cfg.Rates.MobileInterval, r.Cfg.Rates.TrafficInterval, r.Cfg.Rates.WaterInterval)
	tick := time.NewTicker(r.Cfg.Tick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		now := r.Now().Truncate(step)
		if !now.After(r.st.Emitted) {
			continue
		}
		// at most a simulated day per tick, so one slow tick cannot stall
		if now.Sub(r.st.Emitted) > 24*time.Hour {
			now = r.st.Emitted.Add(24 * time.Hour)
		}
		if _, err := r.emit(ctx, r.st.Emitted, now); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sim feeds: %w", err)
		}
		if err := r.writeGroundTruth(now); err != nil {
			return err
		}
		signal(now)
	}
}

// writeGroundTruth writes the incidents that started before t.
func (r *Runner) writeGroundTruth(t time.Time) error {
	return WriteGroundTruth(filepath.Join(r.Dir, GroundTruthFile), r.Sim.Incidents(r.st.Epoch, t))
}

// HTTP paths served by Mount.
const (
	Open311Path     = "/sim/open311/v2/requests.json"
	ServicesPath    = "/sim/open311/v2/services.json"
	CallsPath       = "/sim/emergency/v1/calls"
	StatusPath      = "/sim/status"
	GroundTruthPath = "/sim/ground_truth"
)

// Mount adds the simulator's HTTP feeds to mux: the Open311 GeoReport v2
// endpoint of the 12345 hotline and the emergency-call API.
//
// With Token set, every path needs the token or a logged-in user (Token).
func (r *Runner) Mount(mux *http.ServeMux) {
	h := func(pattern string, fn http.HandlerFunc) { mux.HandleFunc(pattern, r.authorized(fn)) }
	h("GET "+Open311Path, r.serveOpen311)
	h("GET "+ServicesPath, r.serveServices)
	h("GET "+CallsPath, r.serveCalls)
	h("GET "+StatusPath, r.serveStatus)
	h("GET "+GroundTruthPath, func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "application/x-ndjson; charset=utf-8")
		http.ServeFile(w, req, filepath.Join(r.Dir, GroundTruthFile))
	})
}

// TokenEnv is the environment variable holding the feeds' token (Token).
const TokenEnv = "CITYBRAIN_SIM_TOKEN"

func (r *Runner) authorized(fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if r.Token != "" {
			bearer := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
			ok := subtle.ConstantTimeCompare([]byte(bearer), []byte(r.Token)) == 1
			if !ok && r.Users != nil {
				_, err := r.Users.FromRequest(req)
				ok = err == nil
			}
			if !ok {
				w.Header().Set("WWW-Authenticate", `Basic realm="citybrain"`)
				httpError(w, http.StatusUnauthorized, "需要登录或模拟器令牌",
					"login required: log in, or send Authorization: Bearer $"+TokenEnv)
				return
			}
		}
		fn(w, req)
	}
}

func httpError(w http.ResponseWriter, code int, zh, en string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"code": code, "description": zh + " / " + en})
}

func parseISO(v string) (time.Time, error) {
	for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(l, v, Shanghai); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q", v)
}

func pageArgs(q map[string][]string, sizeKey string, def, maxSize int) (size int, err error) {
	size = def
	if v := first(q, sizeKey); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > maxSize {
			return 0, fmt.Errorf("%s must be 1–%d", sizeKey, maxSize)
		}
	}
	return size, nil
}

func first(q map[string][]string, k string) string {
	if v := q[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// serveOpen311 answers GET requests.json: start_date/end_date (inclusive,
// on requested_datetime; default the last 90 days), page/page_size.
func (r *Runner) serveOpen311(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	served := r.Served()
	end := served
	start := served.AddDate(0, 0, -90)
	var err error
	if v := q.Get("start_date"); v != "" {
		if start, err = parseISO(v); err != nil {
			httpError(w, 400, "start_date 格式错误", "start_date: want ISO 8601")
			return
		}
	}
	if v := q.Get("end_date"); v != "" {
		if end, err = parseISO(v); err != nil {
			httpError(w, 400, "end_date 格式错误", "end_date: want ISO 8601")
			return
		}
	}
	size, err := pageArgs(q, "page_size", 100, 1000)
	if err != nil {
		httpError(w, 400, "page_size 超出范围", err.Error())
		return
	}
	page := 1
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 {
			httpError(w, 400, "page 须为正整数", "page must be a positive integer")
			return
		}
	}
	r.mu.RLock()
	var sel []CityEvent
	for _, e := range r.events {
		if !e.Requested.Before(start) && !e.Requested.After(end) && e.Requested.Before(served) {
			sel = append(sel, e)
		}
	}
	r.mu.RUnlock()
	sort.SliceStable(sel, func(i, j int) bool { return sel[i].Requested.Before(sel[j].Requested) })
	lo := min((page-1)*size, len(sel))
	hi := min(lo+size, len(sel))
	out := make([]map[string]any, 0, hi-lo)
	for _, e := range sel[lo:hi] {
		out = append(out, e.Open311(served))
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(out)
}

func (r *Runner) serveServices(w http.ResponseWriter, _ *http.Request) {
	var out []map[string]any
	for _, c := range cityCats {
		out = append(out, map[string]any{"service_code": c.code, "service_name": c.zh, "description": c.zh, "metadata": false, "type": "realtime", "group": c.agency})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(out)
}

// serveCalls answers GET calls?since=RFC3339&cursor=N&limit=M with
// {"data":[…],"next_cursor":"…"|null}: calls received at or after since,
// in order, up to the simulated present.
func (r *Runner) serveCalls(w http.ResponseWriter, req *http.Request) {
	q := req.URL.Query()
	var since time.Time
	var err error
	if v := q.Get("since"); v != "" {
		if since, err = parseISO(v); err != nil {
			httpError(w, 400, "since 格式错误", "since: want RFC 3339")
			return
		}
	}
	limit, err := pageArgs(q, "limit", 100, 1000)
	if err != nil {
		httpError(w, 400, "limit 超出范围", err.Error())
		return
	}
	off := 0
	if v := q.Get("cursor"); v != "" {
		if off, err = strconv.Atoi(v); err != nil || off < 0 {
			httpError(w, 400, "cursor 无效", "cursor: not one this API returned")
			return
		}
	}
	served := r.Served()
	r.mu.RLock()
	var sel []Call
	for _, c := range r.calls {
		if !c.at.Before(since) && c.at.Before(served) {
			sel = append(sel, c)
		}
	}
	r.mu.RUnlock()
	sort.SliceStable(sel, func(i, j int) bool { return sel[i].at.Before(sel[j].at) })
	lo := min(off, len(sel))
	hi := min(lo+limit, len(sel))
	var next any
	if hi < len(sel) {
		next = strconv.Itoa(hi)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	data := sel[lo:hi]
	if data == nil {
		data = []Call{}
	}
	enc.Encode(map[string]any{"data": data, "next_cursor": next})
}

func (r *Runner) serveStatus(w http.ResponseWriter, _ *http.Request) {
	st := r.state()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(map[string]any{
		"now": ts(r.Now()), "epoch": ts(st.Epoch), "start": ts(st.Start), "emitted": ts(st.Emitted), "water_until": ts(st.WaterUntil),
		"clock": r.Cfg.Clock, "speed": r.Cfg.Speed, "seed": r.Cfg.Seed, "scale": r.Cfg.Scale, "out_dir": r.Dir,
		"cells": len(r.Sim.W.Cells), "sensors": len(r.Sim.W.Sensors),
	})
}
