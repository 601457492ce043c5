package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"time"

	"citybrain/internal/auth"
)

// The soak's dashboard probe (issue #20.1: every dashboard API answers in
// p99 ≤ 300 ms with two CPU hogs running): from Ready on, every API the
// pages call is requested in turn, as the leader and as dept_water, one
// request at a time with soakDashPause between rounds — a leader and a
// department with their pages open, not a load test (TestCockpitBench
// is that). Latency is the client's: request sent → body read.

var soakDashPause = flag.Duration("soak-dash-pause", 2*time.Second, "soak: pause between rounds of the dashboard API probe (0: no probe)")

// dashTargetMS is the goal for every dashboard API, p99.
const dashTargetMS = 300

// dashLatency is one endpoint's latencies in ms, by who asked.
type dashLatency map[string][]float64

// probeDash requests every dashboard API until ctx ends.
func (r *soakRun) probeDash(ctx context.Context, into *dashLatency, ready <-chan struct{}) {
	select {
	case <-ready:
	case <-ctx.Done():
		return
	}
	hc := &http.Client{Timeout: 2 * time.Minute}
	get := func(user, path string, v any) (float64, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", r.base+path, nil)
		if err != nil {
			return 0, err
		}
		req.SetBasicAuth(user, auth.DemoPassword)
		t0 := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		ms := float64(time.Since(t0).Microseconds()) / 1000
		if err != nil {
			return ms, err
		}
		if resp.StatusCode != 200 {
			return ms, fmt.Errorf("%s: %s", path, resp.Status)
		}
		if v != nil {
			return ms, json.Unmarshal(body, v)
		}
		return ms, nil
	}
	layers := []string{"crowd", "venues", "enterprises", "shelters", "warehouses", "fire_stations", "waterlogging", "lifeline", "incidents"}
	for ctx.Err() == nil {
		for _, user := range []string{"leader", "dept_water"} {
			// The pages' first calls, then what they drill into.
			var venues struct {
				Venues struct {
					Rows []map[string]any `json:"rows"`
				} `json:"venues"`
			}
			var ents struct {
				Rows []map[string]any `json:"rows"`
			}
			calls := []struct {
				name, path string
				v          any
			}{
				{"config", "/api/dash/config", nil},
				{"cockpit", "/api/dash/cockpit", nil},
				{"warnings", "/api/dash/warnings", nil},
				{"risk", "/api/dash/risk", nil},
				{"risk?street", "/api/dash/risk?street=110102003", nil},
				{"crowd", "/api/dash/crowd", &venues},
				{"health", "/api/dash/health", nil},
			}
			for _, l := range layers {
				var v any
				if l == "enterprises" {
					v = &ents
				}
				calls = append(calls, struct {
					name, path string
					v          any
				}{"map/" + l, "/api/dash/map/" + l, v})
			}
			for _, c := range calls {
				ms, err := get(user, c.path, c.v)
				if ctx.Err() != nil {
					return
				}
				r.noteDash(into, user, c.name, ms, err)
			}
			if len(venues.Venues.Rows) > 0 {
				id := fmt.Sprint(venues.Venues.Rows[0]["venue_id"])
				ms, err := get(user, "/api/dash/crowd/"+url.PathEscape(id), nil)
				r.noteDash(into, user, "crowd/{venue}", ms, err)
			}
			if len(ents.Rows) > 0 {
				id := fmt.Sprint(ents.Rows[len(ents.Rows)/2]["id"])
				ms, err := get(user, "/api/dash/enterprise/"+url.PathEscape(id), nil)
				r.noteDash(into, user, "enterprise/{id}", ms, err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(*soakDashPause):
		}
	}
}

// noteDash records one answer (an error or refusal counts as its time, and
// is logged once per endpoint).
func (r *soakRun) noteDash(into *dashLatency, user, name string, ms float64, err error) {
	key := name + " (" + user + ")"
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		if r.dashErr == nil {
			r.dashErr = map[string]bool{}
		}
		if !r.dashErr[key] {
			r.dashErr[key] = true
			logf("soak: dashboard probe %s: %v", key, err)
		}
		return
	}
	(*into)[key] = append((*into)[key], ms)
}

// dashResults is one result per endpoint and user: p99 against the goal.
func dashResults(lat dashLatency) []Result {
	keys := make([]string, 0, len(lat))
	for k := range lat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []Result
	for _, k := range keys {
		xs := lat[k]
		p99, p50, mx := percentile(xs, 99), percentile(xs, 50), percentile(xs, 100)
		out = append(out, Result{Name: "soak/dash " + k, Status: "ok", Figure: p99, Unit: "ms p99", Rows: int64(len(xs)),
			Reason: fmt.Sprintf("p50 %.0f ms, max %.0f ms over %d requests", p50, mx, len(xs)),
			Anchor: &Anchor{Name: "goal (issue #20.1)", Figure: dashTargetMS, Unit: "ms", Ratio: p99 / dashTargetMS}})
	}
	return out
}
