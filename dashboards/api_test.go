package dashboards_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/connectors"
	"citybrain/dashboards"
	"citybrain/internal/auth"
	"citybrain/internal/config"
)

type client struct {
	t    *testing.T
	base string
	c    *http.Client
	csrf string
}

// crowdAnswer is GET /api/dash/crowd/{venue}.
type crowdAnswer struct {
	Venue, Actual, Forecast, Thresholds, Lifecycle section
	Source, Rule                                   string
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: e.t, base: e.srv.URL, c: &http.Client{Jar: jar}}
}

func (c *client) do(method, path string, body any, csrf bool) (*http.Response, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if csrf {
		req.Header.Set(auth.CSRFHeader, c.csrf)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (c *client) login(user string) { c.t.Helper(); c.loginPW(user, auth.DemoPassword) }

func (c *client) loginPW(user, pw string) {
	c.t.Helper()
	resp, b := c.do("POST", "/api/login", map[string]string{"user": user, "password": pw}, false)
	if resp.StatusCode != 200 {
		c.t.Fatalf("login %s: %d %s", user, resp.StatusCode, b)
	}
	var out struct{ CSRF string }
	json.Unmarshal(b, &out)
	c.csrf = out.CSRF
	ck := resp.Header.Get("Set-Cookie")
	for _, want := range []string{auth.SessionCookie + "=", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(ck, want) {
			c.t.Errorf("session cookie %q lacks %s", ck, want)
		}
	}
}

func (c *client) json(path string, v any) {
	c.t.Helper()
	resp, b := c.do("GET", path, nil, false)
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		c.t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

type section struct {
	Rows    []map[string]any
	Missing string
	Detail  string
}

func TestAccessControl(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	resp, _ := c.do("GET", "/", nil, false)
	if csp := resp.Header.Get("Content-Security-Policy"); csp != dashboards.CSP || !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("CSP %q", csp)
	}
	if resp, _ := c.do("GET", "/api/dash/cockpit", nil, false); resp.StatusCode != 401 {
		t.Errorf("cockpit without login: %d, want 401", resp.StatusCode)
	}
	if resp, b := c.do("POST", "/api/login", map[string]string{"user": "leader", "password": "wrong-password"}, false); resp.StatusCode != 401 || !strings.Contains(string(b), "密码错误") {
		t.Errorf("bad password: %d %s", resp.StatusCode, b)
	}
	c.login("leader")
	if resp, _ := c.do("GET", "/api/admin/users", nil, false); resp.StatusCode != 403 {
		t.Errorf("leader lists users: %d, want 403", resp.StatusCode)
	}
	if resp, b := c.do("GET", "/api/dash/cockpit?from=yesterday", nil, false); resp.StatusCode != 400 || !strings.Contains(string(b), "YYYY-MM-DD") {
		t.Errorf("bad from: %d %s", resp.StatusCode, b)
	}
	if resp, _ := c.do("GET", "/api/dash/map/nope", nil, false); resp.StatusCode != 404 {
		t.Errorf("unknown layer: %d", resp.StatusCode)
	}

	adm := e.client()
	adm.login("admin")
	if resp, b := adm.do("POST", "/api/admin/users", map[string]string{"name": "zhang", "password": "long-enough-pw", "role": "leader"}, false); resp.StatusCode != 403 || !strings.Contains(string(b), "CSRF") {
		t.Errorf("add user without CSRF token: %d %s", resp.StatusCode, b)
	}
	if resp, b := adm.do("POST", "/api/admin/users", map[string]string{"name": "zhang", "password": "long-enough-pw", "role": "leader"}, true); resp.StatusCode != 200 {
		t.Fatalf("add user: %d %s", resp.StatusCode, b)
	}
	if resp, b := adm.do("PATCH", "/api/admin/users/zhang", map[string]any{"role": "department", "department": "water"}, true); resp.StatusCode != 200 || !strings.Contains(string(b), `"water"`) {
		t.Errorf("update user: %d %s", resp.StatusCode, b)
	}
	z := e.client()
	z.loginPW("zhang", "long-enough-pw")
	var cp struct{ Lake map[string]section }
	z.json("/api/dash/cockpit", &cp)
	if got := cp.Lake["enterprises_by_level_street"].Missing; got != "no_access" {
		t.Errorf("water department sees enterprise risk: missing=%q", got)
	}
	if resp, _ := adm.do("DELETE", "/api/admin/users/admin", nil, true); resp.StatusCode != 400 {
		t.Errorf("admin deleted itself: %d", resp.StatusCode)
	}
	if resp, _ := adm.do("DELETE", "/api/admin/users/zhang", nil, true); resp.StatusCode != 200 {
		t.Errorf("delete user: %d", resp.StatusCode)
	}
	if resp, _ := z.do("GET", "/api/dash/cockpit", nil, false); resp.StatusCode != 401 {
		t.Errorf("deleted user's session still works: %d", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/api/logout", nil, false); resp.StatusCode != 403 {
		t.Errorf("logout without CSRF: %d, want 403", resp.StatusCode)
	}
	if resp, _ := c.do("POST", "/api/logout", nil, true); resp.StatusCode != 200 {
		t.Errorf("logout: %d", resp.StatusCode)
	}
	if resp, _ := c.do("GET", "/api/dash/cockpit", nil, false); resp.StatusCode != 401 {
		t.Errorf("after logout: %d", resp.StatusCode)
	}
}

func count(rows []map[string]any, keys ...string) map[string]int {
	out := map[string]int{}
	for _, r := range rows {
		var k []string
		for _, key := range keys {
			k = append(k, toString(r[key]))
		}
		out[strings.Join(k, "/")] += int(r["n"].(float64))
	}
	return out
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

func TestCockpitNumbersAndCache(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.login("leader")
	var cp struct {
		Lake      map[string]section
		Freshness section
	}
	c.json("/api/dash/cockpit", &cp)
	byLevel := count(cp.Lake["warnings_by_level"].Rows, "level")
	for l, n := range wantActive {
		if byLevel[l] != n {
			t.Errorf("active %s warnings = %d, want %d (%v)", l, byLevel[l], n, cp.Lake["warnings_by_level"])
		}
	}
	ents := count(cp.Lake["enterprises_by_level_street"].Rows, "street_code", "level")
	for st, lv := range wantEnterprises {
		for l, n := range lv {
			if ents[st+"/"+l] != n {
				t.Errorf("enterprises %s/%s = %d, want %d", st, l, ents[st+"/"+l], n)
			}
		}
	}
	total := 0
	for _, r := range cp.Lake["trend_events"].Rows {
		total += int(r["n"].(float64))
	}
	if total != 5 {
		t.Errorf("12345 events in range = %d, want 5", total)
	}
	if k := cp.Lake["kpis"].Rows; len(k) != 4 || k[0]["target_no"].(float64) != 3 || k[0]["figure"] != nil || k[2]["figure"].(float64) != 2 || k[3]["better"] != "lower" {
		t.Errorf("kpis: %+v, want targets 3 (no figure), 7, 9 (figure 2), 12 (lower is better)", cp.Lake["kpis"])
	}
	if len(cp.Freshness.Rows) == 0 {
		t.Errorf("no freshness rows: %+v", cp.Freshness)
	}
	// Street filter.
	c.json("/api/dash/cockpit?street="+st3, &cp)
	if got := count(cp.Lake["warnings_by_level"].Rows, "level"); got["orange"] != 1 || got["red"] != 0 {
		t.Errorf("street %s warnings = %v, want orange 1", st3, got)
	}
	// A commit of marts.warnings invalidates the cached answer.
	e.pushWarning("W9", "red", "新推送的红色预警")
	c.json("/api/dash/cockpit", &cp)
	if got := count(cp.Lake["warnings_by_level"].Rows, "level")["red"]; got != 2 {
		t.Errorf("after a new red warning, red = %d, want 2 (cache not invalidated?)", got)
	}

	// Enterprise detail, drill-down, crowd, map layers, health.
	var ent map[string]section
	c.json("/api/dash/enterprise/E1", &ent)
	if r := ent["risk"].Rows; len(r) != 1 || r[0]["level"] != "red" || r[0]["score"].(float64) != 88 {
		t.Errorf("E1 risk = %+v", ent["risk"])
	}
	if r := ent["risk_sources"].Rows; len(r) != 2 || r[0]["lec_d"].(float64) != 1440 {
		t.Errorf("E1 risk sources = %+v", ent["risk_sources"])
	}
	if len(ent["history"].Rows) != 3 || len(ent["hazards"].Rows) != 1 {
		t.Errorf("E1 history %d rows, hazards %d rows", len(ent["history"].Rows), len(ent["hazards"].Rows))
	}
	var risk struct{ Communities section }
	c.json("/api/dash/risk?street="+st1, &risk)
	if got := count(risk.Communities.Rows, "community_code", "level"); got["C001/red"] != 1 || got["C001/orange"] != 1 {
		t.Errorf("communities of %s = %v", st1, got)
	}
	var crowd crowdAnswer
	c.json("/api/dash/crowd/V1", &crowd)
	if len(crowd.Actual.Rows) != len(wantCrowd) || crowd.Actual.Rows[4]["people"].(float64) != float64(wantCrowd[4]) {
		t.Errorf("V1 actual = %+v", crowd.Actual)
	}
	// Thresholds: warnings.crowd.capacity_ratio × V1's capacity (10,000; no area).
	levels := e.rt.App.Cfg.Warnings.Crowd.CapacityRatio
	want := map[string]float64{"blue": levels.Blue * 10000, "yellow": levels.Yellow * 10000, "orange": levels.Orange * 10000, "red": levels.Red * 10000}
	for _, r := range crowd.Thresholds.Rows {
		if r["threshold"].(float64) != want[r["level"].(string)] {
			t.Errorf("V1 threshold %v = %v, want %v", r["level"], r["threshold"], want[r["level"].(string)])
		}
	}
	if len(crowd.Thresholds.Rows) != 4 {
		t.Errorf("V1 thresholds %+v", crowd.Thresholds)
	}
	// Forecasts in people: capacity ratio × capacity (the red warning forecast 1.05).
	found := false
	for _, r := range crowd.Forecast.Rows {
		found = found || r["people"] == float64(10500)
	}
	if !found {
		t.Errorf("V1 forecast people %+v, want one at 10500", crowd.Forecast)
	}
	c.json("/api/dash/crowd/V2", &crowd)
	if len(crowd.Actual.Rows) != 2 || crowd.Actual.Rows[1]["people"].(float64) != 500 {
		t.Errorf("V2 actual (gate counts) = %+v", crowd.Actual)
	}
	if crowd.Source != "crowd_counts" {
		t.Errorf("V2 plots %q, want its gate counts", crowd.Source)
	}
	// A venue with both counts plots the one its warnings are raised on.
	e.write(e.schema("crowd_counts"), map[string]any{"site_id": "V1", "observed_at": e.day(0, 9), "interval_s": 3600, "direction": "total", "people": 4321})
	for _, c2 := range []struct{ rule, want string }{{"mobile_signal.crowd_venue", "mobile_signal"}, {"crowd_counts.crowd_venue", "crowd_counts"}} {
		at := time.Now().Add(time.Minute)
		e.write(e.schema("warnings"), map[string]any{"warning_id": "R-" + c2.rule, "seq": 900, "kind": "crowd", "rule": c2.rule, "subject_type": "venue",
			"subject_id": "V1", "level": "yellow", "state": "raised", "predicted": false, "message_zh": "规则", "message_en": "rule",
			"event_time": at, "transition_at": at, "raised_at": at})
		crowd = crowdAnswer{}
		c.json("/api/dash/crowd/V1", &crowd)
		if crowd.Source != c2.want || crowd.Rule != c2.rule {
			t.Errorf("V1 with a %s warning plots %q (rule %q), want %s", c2.rule, crowd.Source, crowd.Rule, c2.want)
		}
		if c2.want == "crowd_counts" && (len(crowd.Actual.Rows) != 1 || crowd.Actual.Rows[0]["people"].(float64) != 4321) {
			t.Errorf("V1 gate counts = %+v", crowd.Actual)
		}
	}
	// The crowd layer hides counts below auth.suppress_below for a leader.
	var cl section
	c.json("/api/dash/map/crowd", &cl)
	for _, r := range cl.Rows {
		if r["id"] == "G3" && r["people"] != nil {
			t.Errorf("G3's 5 people shown to a leader: %v", r)
		}
		if r["id"] == "G1" && r["people"] != float64(wantCrowd[len(wantCrowd)-1]-100) {
			t.Errorf("G1 people %v", r["people"])
		}
	}
	if len(cl.Rows) != 3 {
		t.Errorf("crowd layer rows %+v", cl)
	}
	var layer section
	c.json("/api/dash/map/shelters", &layer)
	if len(layer.Rows) != 2 {
		t.Errorf("shelters layer: %+v", layer)
	}
	c.json("/api/dash/map/fire_stations", &layer)
	if layer.Missing != "no_data" {
		t.Errorf("fire stations (no table): %+v", layer)
	}
	var health struct {
		Sources section
		Tables  map[string]map[string]any
	}
	c.json("/api/dash/health", &health)
	if n := health.Tables["raw.city_events"]["rows_today"]; n != float64(1) {
		t.Errorf("raw.city_events rows today = %v, want 1 (%v)", n, health.Tables["raw.city_events"])
	}
}

// TestDataHealthRejects reads dead letters from a real (embedded) Kafka
// broker: the health page lists their reasons per source.
func TestDataHealthRejects(t *testing.T) {
	e := newEnvWith(t, true)
	w := e.rt.App.Client.Writer(connectors.DLQTopic("city_management"))
	defer w.Close()
	msg := func(reason string) kafka.Message {
		return kafka.Message{Value: []byte("bad,row"), Headers: []kafka.Header{{Key: connectors.HeaderReason, Value: []byte(reason)}}}
	}
	if err := w.WriteMessages(e.ctx, msg("requested_at: 无法解析时间 / cannot parse time"), msg("requested_at: 无法解析时间 / cannot parse time"), msg("status 缺失 / missing")); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.login("leader")
	var h struct {
		Sources section
		Rejects map[string][]struct {
			Reason string
			Count  int
		}
	}
	c.json("/api/dash/health", &h)
	var rejects float64 = -1
	for _, r := range h.Sources.Rows {
		if r["source"] == "city_management" {
			rejects = r["rejects"].(float64)
		}
	}
	if rejects != 3 {
		t.Errorf("city_management rejects = %v, want 3 (%+v)", rejects, h.Sources)
	}
	got := map[string]int{}
	for _, r := range h.Rejects["city_management"] {
		got[r.Reason] = r.Count
	}
	if got["requested_at: 无法解析时间 / cannot parse time"] != 2 || got["status 缺失 / missing"] != 1 {
		t.Errorf("reject reasons %v", h.Rejects)
	}
}

// TestSecureCookies: with auth.secure_cookies the session cookie is Secure
// (and still HttpOnly, SameSite=Strict), at login and at logout.
func TestSecureCookies(t *testing.T) {
	e := newEnvCfg(t, false, func(c *config.Config) { c.Auth.SecureCookies = true })
	c := e.client()
	resp, b := c.do("POST", "/api/login", map[string]string{"user": "leader", "password": auth.DemoPassword}, false)
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, b)
	}
	ck := resp.Header.Get("Set-Cookie")
	for _, want := range []string{"Secure", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(ck, want) {
			t.Errorf("session cookie %q lacks %s", ck, want)
		}
	}
	// Without secure_cookies (the test client speaks plain HTTP) there is no Secure flag.
	plain := newEnv(t).client()
	resp, _ = plain.do("POST", "/api/login", map[string]string{"user": "leader", "password": auth.DemoPassword}, false)
	if ck := resp.Header.Get("Set-Cookie"); strings.Contains(ck, "Secure") {
		t.Errorf("cookie %q is Secure without auth.secure_cookies", ck)
	}
}

// TestEnterpriseLayerLevels: the map's enterprises layer filtered by level,
// with the totals per level under the street and industry filters.
func TestEnterpriseLayerLevels(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.login("leader")
	var l section
	var full struct {
		Rows   []map[string]any
		Totals map[string]int
	}
	c.json("/api/dash/map/enterprises?levels=red,orange", &full)
	ids := map[string]bool{}
	for _, r := range full.Rows {
		ids[r["id"].(string)] = true
	}
	if len(full.Rows) != 3 || !ids["E1"] || !ids["E2"] || !ids["E5"] {
		t.Errorf("red and orange units: %v, want E1, E2, E5", ids)
	}
	if want := map[string]int{"red": 2, "orange": 1, "yellow": 1, "blue": 1}; fmt.Sprint(full.Totals) != fmt.Sprint(want) {
		t.Errorf("totals %v, want %v", full.Totals, want)
	}
	full.Rows, full.Totals = nil, nil // json.Unmarshal would merge into the old map
	c.json("/api/dash/map/enterprises?levels=blue&industry="+url.QueryEscape("餐饮")+"&street="+st3, &full)
	if len(full.Rows) != 1 || full.Rows[0]["id"] != "E4" || fmt.Sprint(full.Totals) != fmt.Sprint(map[string]int{"blue": 1}) {
		t.Errorf("blue 餐饮 units of %s: %+v", st3, full)
	}
	c.json("/api/dash/map/enterprises", &l)
	if len(l.Rows) != 5 {
		t.Errorf("all levels: %d rows, want 5", len(l.Rows))
	}
	if resp, b := c.do("GET", "/api/dash/map/enterprises?levels=red,purple", nil, false); resp.StatusCode != 400 || !strings.Contains(string(b), "等级") {
		t.Errorf("bad level: %d %s", resp.StatusCode, b)
	}
}

// TestLoginLockedWeb: five wrong passwords on the login form lock the
// name (429, until when, the right password too); an admin sees the lock
// and lifts it.
func TestLoginLockedWeb(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	for i := range 5 {
		resp, b := c.do("POST", "/api/login", map[string]string{"user": "leader", "password": "wrong-password"}, false)
		if want := map[bool]int{true: 429, false: 401}[i == 4]; resp.StatusCode != want {
			t.Fatalf("failure %d: %d %s (want %d)", i+1, resp.StatusCode, b, want)
		}
	}
	resp, b := c.do("POST", "/api/login", map[string]string{"user": "leader", "password": auth.DemoPassword}, false)
	if resp.StatusCode != 429 || !strings.Contains(string(b), "锁定") {
		t.Fatalf("right password while locked: %d %s", resp.StatusCode, b)
	}
	admin := e.client()
	admin.login("admin")
	var out struct {
		Locks []auth.Lock `json:"locks"`
	}
	admin.json("/api/admin/locks", &out)
	if len(out.Locks) != 1 || out.Locks[0].Key != "user:leader" || out.Locks[0].Failures != 5 {
		t.Fatalf("locks: %+v", out.Locks)
	}
	if resp, b := c.do("GET", "/api/admin/locks", nil, false); resp.StatusCode != 401 && resp.StatusCode != 403 {
		t.Errorf("locks without admin: %d %s", resp.StatusCode, b)
	}
	if resp, b := admin.do("DELETE", "/api/admin/locks/user:leader", nil, true); resp.StatusCode != 200 {
		t.Fatalf("unlock: %d %s", resp.StatusCode, b)
	}
	c.login("leader")
}

// TestLayerColoursNotLevels: no map layer's own colour is near a level's
// (red, orange, yellow, blue as the page draws them), which would read as
// a risk or a warning.
func TestLayerColoursNotLevels(t *testing.T) {
	src, err := os.ReadFile("web/src/pages/map.ts")
	if err != nil {
		t.Fatal(err)
	}
	i18n, err := os.ReadFile("web/src/i18n.ts")
	if err != nil {
		t.Fatal(err)
	}
	rgb := func(h string) [3]float64 {
		var c [3]float64
		for i := range c {
			v, _ := strconv.ParseUint(h[1+2*i:3+2*i], 16, 8)
			c[i] = float64(v)
		}
		return c
	}
	levels := map[string]string{}
	for _, m := range regexp.MustCompile(`(red|orange|yellow|blue): "(#[0-9a-fA-F]{6})"`).FindAllStringSubmatch(string(i18n), -1) {
		levels[m[1]] = m[2]
	}
	if len(levels) != 4 {
		t.Fatalf("level colours in i18n.ts: %v", levels)
	}
	layers := regexp.MustCompile(`\{ id: "(\w+)", color: "(#[0-9a-fA-F]{6})"`).FindAllStringSubmatch(string(src), -1)
	if len(layers) < 8 {
		t.Fatalf("%d map layers found in map.ts", len(layers))
	}
	for _, m := range layers {
		a := rgb(m[2])
		for l, c := range levels {
			b := rgb(c)
			if d := math.Sqrt((a[0]-b[0])*(a[0]-b[0]) + (a[1]-b[1])*(a[1]-b[1]) + (a[2]-b[2])*(a[2]-b[2])); d < 60 {
				t.Errorf("map layer %s is drawn in %s, %.0f from the %s level's %s", m[1], m[2], d, l, c)
			}
		}
	}
}
