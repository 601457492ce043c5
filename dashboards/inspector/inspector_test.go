package inspector_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	_ "github.com/duckdb/duckdb-go/v2" // database/sql driver "duckdb"

	"citybrain/dashboards"
	"citybrain/dashboards/inspector"
	"citybrain/dashboards/pwa/phonetest"
	"citybrain/internal/auth"
	"citybrain/pipelines/inspection"
)

// ---- the handler ------------------------------------------------------------

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlerFiles(t *testing.T) {
	mux := http.NewServeMux()
	inspector.Mount(mux)
	for _, c := range []struct {
		path, ctype, contains string
	}{
		{"/inspect/", "text/html; charset=utf-8", `<html lang="zh-CN">`}, // index.html
		{"/inspect/index.html", "text/html; charset=utf-8", `<meta name="viewport" content="width=device-width, initial-scale=1">`},
		{"/inspect/app.js", "text/javascript; charset=utf-8", "/api/inspect"},
		{"/inspect/app.css", "text/css; charset=utf-8", "--touch: 48px"},
		{"/inspect/manifest.webmanifest", "application/manifest+json; charset=utf-8", `"start_url"`},
		{"/inspect/sw.js", "text/javascript; charset=utf-8", "caches.open"},
		{"/inspect/icon.svg", "image/svg+xml", "<svg"},
	} {
		t.Run(c.path, func(t *testing.T) {
			r := get(t, mux, "GET", c.path, nil)
			if r.StatusCode != 200 {
				t.Fatalf("GET %s: %d", c.path, r.StatusCode)
			}
			if got := r.Header.Get("Content-Type"); got != c.ctype {
				t.Errorf("Content-Type %q, want %q", got, c.ctype)
			}
			// Nothing is content-hashed: everything revalidates, index.html
			// and sw.js above all (a stale worker would pin an old app).
			if got := r.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache", got)
			}
			if r.Header.Get("Content-Security-Policy") != inspector.CSP || r.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("security headers missing: %v", r.Header)
			}
			if b := body(t, r); !strings.Contains(b, c.contains) {
				t.Errorf("body lacks %q", c.contains)
			}
			etag := r.Header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			if r2 := get(t, mux, "GET", c.path, map[string]string{"If-None-Match": etag}); r2.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match: %d, want 304", r2.StatusCode)
			}
			if r3 := get(t, mux, "HEAD", c.path, nil); r3.StatusCode != 200 || body(t, r3) != "" {
				t.Errorf("HEAD: %d", r3.StatusCode)
			}
		})
	}
	for _, p := range []string{"/inspect/nope.js", "/inspect/static/app.js", "/inspect/d/2026-12-07"} {
		if r := get(t, mux, "GET", p, nil); r.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, r.StatusCode)
		}
	}
	if r := get(t, mux, "GET", "/inspect", nil); r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "/inspect/" {
		t.Errorf("GET /inspect: %d → %q, want 301 to /inspect/", r.StatusCode, r.Header.Get("Location"))
	}
	if r := get(t, inspector.Handler(), "POST", "/inspect/", nil); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /inspect/: %d, want 405", r.StatusCode)
	}
}

func TestManifest(t *testing.T) {
	h := inspector.Handler()
	var m struct {
		Name       string `json:"name"`
		ShortName  string `json:"short_name"`
		StartURL   string `json:"start_url"`
		Scope      string `json:"scope"`
		Display    string `json:"display"`
		ThemeColor string `json:"theme_color"`
		Lang       string `json:"lang"`
		Icons      []struct {
			Src   string `json:"src"`
			Sizes string `json:"sizes"`
			Type  string `json:"type"`
		} `json:"icons"`
	}
	if err := json.Unmarshal([]byte(body(t, get(t, h, "GET", "/inspect/manifest.webmanifest", nil))), &m); err != nil {
		t.Fatalf("manifest is not JSON: %v", err)
	}
	if m.Name != "西城监督检查 CityBrain Inspector" || m.ShortName == "" {
		t.Errorf("name %q short_name %q", m.Name, m.ShortName)
	}
	if m.StartURL != "/inspect/" || m.Scope != "/inspect/" || m.Display != "standalone" || m.Lang != "zh-CN" {
		t.Errorf("start_url %q scope %q display %q lang %q", m.StartURL, m.Scope, m.Display, m.Lang)
	}
	if !regexp.MustCompile(`^#[0-9a-fA-F]{6}$`).MatchString(m.ThemeColor) {
		t.Errorf("theme_color %q", m.ThemeColor)
	}
	if len(m.Icons) == 0 {
		t.Fatal("no icons")
	}
	for _, ic := range m.Icons {
		if ic.Type != "image/svg+xml" || ic.Sizes != "any" {
			t.Errorf("icon %+v: want an SVG of any size", ic)
		}
		if r := get(t, h, "GET", ic.Src, nil); r.StatusCode != 200 || r.Header.Get("Content-Type") != "image/svg+xml" {
			t.Errorf("icon %s: %d %s", ic.Src, r.StatusCode, r.Header.Get("Content-Type"))
		}
	}
}

// The worker is served from /inspect/ (so its scope may be /inspect/
// without Service-Worker-Allowed), registered with that scope, keeps the
// shell and leaves the API alone.
func TestServiceWorkerScope(t *testing.T) {
	h := inspector.Handler()
	sw := body(t, get(t, h, "GET", "/inspect/sw.js", nil))
	app := body(t, get(t, h, "GET", "/inspect/app.js", nil))
	if !strings.Contains(app, `register("sw.js", { scope: "./" })`) {
		t.Error(`app.js does not register sw.js with scope "./" (= /inspect/)`)
	}
	for _, want := range []string{`new URL("./", self.location).pathname`, `url.pathname.startsWith(SCOPE)`, `"app.js"`, `"app.css"`, `"manifest.webmanifest"`, `"icon.svg"`, `"./"`} {
		if !strings.Contains(sw, want) {
			t.Errorf("sw.js lacks %s", want)
		}
	}
	if regexp.MustCompile("[\"'`]/api").MatchString(sw) {
		t.Error("sw.js names an /api path: the API must not be cached")
	}
}

// No file loads anything from another origin (no CDN, web font or map
// tiles), and the script never parses text as HTML.
func TestNoExternalURLsNorHTML(t *testing.T) {
	h := inspector.Handler()
	url := regexp.MustCompile(`(?:https?:)?//[a-zA-Z0-9.-]+\.[a-z]{2,}[^\s"'<>)]*`)
	for _, name := range []string{"index.html", "app.js", "app.css", "manifest.webmanifest", "sw.js", "icon.svg"} {
		b := body(t, get(t, h, "GET", "/inspect/"+name, nil))
		for _, u := range url.FindAllString(b, -1) {
			if u != "http://www.w3.org/2000/svg" { // the SVG namespace, not a fetch
				t.Errorf("%s refers to %s", name, u)
			}
		}
	}
	app := body(t, get(t, h, "GET", "/inspect/app.js", nil))
	for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("} {
		if strings.Contains(app, bad) {
			t.Errorf("app.js uses %s: server and user text must go on the page as text", bad)
		}
	}
}

// ---- the API's fixture -------------------------------------------------------

const (
	street   = "110102003"
	zhangWei = "I00001" // the inspector of the phone
	liNa     = "I00002" // another inspector of the same street
	password = "inspector-test-pw"
)

// units of the fixture: three visits of Zhang Wei's day, one of Li Na's.
// E2 is 855 m east of E1, E3 885 m north of it.
var units = []struct {
	id, name, address, industry, level, reason, inspector string
	lon, lat                                              float64
}{
	{"E1", "华远食品有限公司", "西长安街 12 号", "食品制造", "red", "mandatory_red", zhangWei, 116.3600, 39.9100},
	{"E2", "金街百货商场", "西单北大街 88 号", "批发零售", "orange", "mandatory_orange", zhangWei, 116.3700, 39.9100},
	{"E3", "宏达印刷厂", "灵境胡同 5 号", "印刷", "yellow", "weighted", zhangWei, 116.3600, 39.9180},
	{"E4", "德胜餐饮店", "府右街 21 号", "餐饮", "blue", "random", liNa, 116.3650, 39.9050},
}

type env struct {
	users *auth.Store
	api   *inspection.API
	spool string
	now   time.Time // the API's clock, fixed
	day   string    // now's day in Shanghai: the plan's day
	srv   *httptest.Server
	down  atomic.Bool // the server unreachable: every connection dropped
	// fail is how many results to answer 503 (the API not asked); lose how
	// many to take and write without the phone hearing the answer (the
	// connection drops after the API's answer).
	fail, lose atomic.Int32

	mu   sync.Mutex
	sent []string // ids of the results POSTed, in order
}

// newEnv builds the real inspection API over an in-memory DuckDB holding
// the tables it reads, the platform's users and login, and the app, on one
// test server. The clock is fixed at the test's start (the phone stamps a
// result with its own clock, which the API checks against its clock: not
// in the future, not over 30 days old).
func newEnv(t *testing.T) *env {
	t.Helper()
	users, err := auth.Open(auth.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, person := range map[string]string{"zhang.wei": zhangWei, "li.na": liNa, "wang.unlinked": ""} {
		if err := users.Add(name, password, auth.RoleDepartment, "emergency"); err != nil {
			t.Fatal(err)
		}
		if err := users.Update(name, func(u *auth.User) error { u.PersonID = person; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Truncate(time.Second)
	e := &env{users: users, spool: t.TempDir(), now: now, day: now.In(inspection.Shanghai).Format(time.DateOnly)}
	db := newDB(t, now)
	e.api = &inspection.API{Auth: users, Query: db.QueryContext, Spool: e.spool, Now: func() time.Time { return now }}
	mux := http.NewServeMux()
	// The platform's login (POST /api/login, GET /api/me, POST /api/logout)
	// is the dashboards server's; it needs only the users for those routes.
	dashboards.New(dashboards.DefaultConfig(), dashboards.Deps{Auth: users}).Mount(mux)
	e.api.Mount(mux)
	inspector.Mount(mux)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.down.Load() {
			panic(http.ErrAbortHandler) // the connection drops: "unreachable"
		}
		if r.Method == http.MethodPost && r.URL.Path == "/api/inspect/results" {
			b, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(b))
			var res struct{ ID string }
			json.Unmarshal(b, &res)
			e.mu.Lock()
			e.sent = append(e.sent, res.ID)
			e.mu.Unlock()
			if e.fail.Add(-1) >= 0 {
				w.Header().Set("Content-Type", "application/json; charset=utf-8")
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, `{"error": "单位名录不可读，请稍后重试 / raw.enterprises not readable; send it again later"}`)
				return
			}
			e.fail.Store(0)
			if e.lose.Add(-1) >= 0 {
				mux.ServeHTTP(httptest.NewRecorder(), r)
				panic(http.ErrAbortHandler) // taken, but the answer is lost
			}
			e.lose.Store(0)
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		e.srv.CloseClientConnections()
		e.srv.Close()
	})
	return e
}

// newDB creates the tables the API reads (columns of schemas/
// inspectors.v1.yaml, enterprises.v1.yaml, inspections.v1.yaml and
// inspection_plans.v1.yaml) and the month's published plan.
func newDB(t *testing.T, now time.Time) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for _, q := range []string{
		`CREATE SCHEMA raw`,
		`CREATE SCHEMA marts`,
		`CREATE TABLE raw.inspectors (inspector_id VARCHAR, updated_at TIMESTAMP, name VARCHAR, street_code VARCHAR, community_code VARCHAR,
			grid_cells INTEGER, enterprises INTEGER, appointed_on DATE)`,
		`CREATE TABLE raw.enterprises (id VARCHAR, updated_at TIMESTAMP, name VARCHAR, credit_code VARCHAR, industry VARCHAR, address VARCHAR,
			street_code VARCHAR, community_code VARCHAR, longitude DOUBLE, latitude DOUBLE, employees INTEGER, has_liability_insurance BOOLEAN,
			grid_inspector_id VARCHAR)`,
		`CREATE TABLE raw.inspections (id VARCHAR, enterprise_id VARCHAR, inspected_at TIMESTAMP, result VARCHAR, inspector_id VARCHAR,
			hazards_found INTEGER, notes VARCHAR)`,
		`CREATE TABLE marts.inspection_plans (month DATE, visit_no BIGINT, enterprise_id VARCHAR, enterprise_name VARCHAR, street_code VARCHAR,
			inspector_id VARCHAR, inspector_name VARCHAR, day DATE, reason VARCHAR, level VARCHAR, recent_hazards BIGINT, weight DOUBLE,
			seed VARCHAR, budget BIGINT, inputs VARCHAR, published_at TIMESTAMP)`,
	} {
		exec(q)
	}
	month := inspection.MonthStart(now)
	day := now.In(inspection.Shanghai).Format(time.DateOnly)
	year := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	exec(`INSERT INTO raw.inspectors VALUES (?, ?, '张伟', ?, '001', 12, 30, '2023-03-01'), (?, ?, '李娜', ?, '002', 10, 28, '2023-03-01')`,
		zhangWei, year, street, liNa, year, street)
	names := map[string]string{zhangWei: "张伟", liNa: "李娜"}
	for i, u := range units {
		exec(`INSERT INTO raw.enterprises VALUES (?, ?, ?, NULL, ?, ?, ?, '001', ?, ?, 20, true, ?)`,
			u.id, year, u.name, u.industry, u.address, street, u.lon, u.lat, u.inspector)
		exec(`INSERT INTO marts.inspection_plans VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 1.0, '12345', 4, '{}', ?)`,
			month.Format(time.DateOnly), i+1, u.id, u.name, street, u.inspector, names[u.inspector], day, u.reason, u.level, month)
	}
	// E1 was inspected last month: not done this month.
	exec(`INSERT INTO raw.inspections VALUES ('OLD-1', 'E1', ?, 'pass', ?, 0, '')`, month.AddDate(0, 0, -10).UTC(), liNa)
	return db
}

// spoolFiles are the spool's files of a kind (inspections, hazards).
func (e *env) spoolFiles(t *testing.T, kind string) []string {
	t.Helper()
	fs, err := filepath.Glob(filepath.Join(e.spool, kind, "*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(fs)
	return fs
}

// lines are a spool file's JSON records.
func lines(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		out = append(out, m)
	}
	return out
}

// inspectionOf is the spool's inspection of a unit (fails unless exactly one).
func (e *env) inspectionOf(t *testing.T, enterprise string) (id string, rec map[string]any) {
	t.Helper()
	var found []string
	for _, f := range e.spoolFiles(t, "inspections") {
		ls := lines(t, f)
		if len(ls) != 1 {
			t.Errorf("%s: %d lines, want 1", f, len(ls))
			continue
		}
		if ls[0]["enterprise_id"] == enterprise {
			found = append(found, f)
			rec = ls[0]
		}
	}
	if len(found) != 1 {
		t.Fatalf("spool: %d inspections of %s (%v), want 1", len(found), enterprise, found)
	}
	return strings.TrimSuffix(filepath.Base(found[0]), ".jsonl"), rec
}

// ---- the API, from Go: a result sent twice is written once --------------------

func TestResultSentTwice(t *testing.T) {
	e := newEnv(t)
	res := inspection.Result{
		ID: "0f8e2a44-6b1c-4d7e-9a55-3c2b1d0e9f71", Enterprise: "E2", InspectedAt: e.now.Add(-time.Hour), Result: "rectify",
		Hazards: []inspection.ResultHazard{{Level: "general", Description: "消防通道堆放杂物", Deadline: e.now.AddDate(0, 0, 30).In(inspection.Shanghai).Format(time.DateOnly)}},
		Notes:   "现场责令清理",
	}
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	send := func() (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest("POST", e.srv.URL+"/api/inspect/results", bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("zhang.wei", password)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	for i, want := range []struct {
		code   int
		status string
	}{{http.StatusCreated, "accepted"}, {http.StatusOK, "duplicate"}} {
		code, out := send()
		if code != want.code || out["status"] != want.status {
			t.Errorf("send %d: %d %v, want %d %s", i+1, code, out, want.code, want.status)
		}
		if out["inspection_id"] != "APP-"+res.ID {
			t.Errorf("send %d: inspection_id %v, want APP-%s", i+1, out["inspection_id"], res.ID)
		}
	}
	ins := e.spoolFiles(t, "inspections")
	hz := e.spoolFiles(t, "hazards")
	if len(ins) != 1 || len(hz) != 1 {
		t.Fatalf("spool: inspections %v hazards %v, want one file each", ins, hz)
	}
	id, rec := e.inspectionOf(t, "E2")
	if id != res.ID || rec["id"] != "APP-"+res.ID || rec["result"] != "rectify" || rec["inspector_id"] != zhangWei {
		t.Errorf("inspection %s: %v", id, rec)
	}
	if ls := lines(t, hz[0]); len(ls) != 1 || ls[0]["description"] != "消防通道堆放杂物" || ls[0]["inspection_id"] != "APP-"+res.ID {
		t.Errorf("hazards: %v, want the one hazard once", ls)
	}
}

// ---- the app in a phone ------------------------------------------------------

// browser is the app in a phone (dashboards/pwa/phonetest).
type browser struct{ *phonetest.Browser }

func newBrowser(t *testing.T) *browser {
	return &browser{phonetest.New(t, "inspector", 15*time.Second)}
}

func eval[T any](b *browser, expr string, opts ...chromedp.EvaluateOption) T {
	b.T.Helper()
	return phonetest.Eval[T](b.Browser, expr, opts...)
}

// fits: no horizontal scroll at 390 px, every visible control a thumb's size, nothing past the right edge.
func (b *browser) fits(where string) {
	b.T.Helper()
	b.Fits(where, `button, a.button, .visit-main, label.choice, input:not([type=radio]), textarea`)
	wide := eval[[]string](b, `[...document.querySelectorAll("main *, header *")]
		.filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > 390.5)
		.map((e) => e.tagName + "." + e.getAttribute("class"))`)
	if len(wide) > 0 {
		b.T.Errorf("%s: elements past the right edge: %v", where, wide)
	}
}

func (b *browser) login(user string) { b.T.Helper(); b.Login(user, password) }

// offline cuts the phone's network (the page and its service worker) and
// sets navigator.onLine, as the phone's radio would; online gives it back
// (the page gets its "online" event).
func (b *browser) network(offline bool) {
	b.T.Helper()
	b.Do(fmt.Sprintf("network offline=%v", offline), chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		conds := []*network.Conditions{}
		if offline {
			conds = append(conds, &network.Conditions{Offline: true, DownloadThroughput: -1, UploadThroughput: -1})
		}
		if _, err := cdp.Call(ctx, t, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
			EmulateOfflineServiceWorker: &offline, MatchedNetworkConditions: conds}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.OverrideNetworkState, network.OverrideNetworkStateParams{
			Offline: offline, DownloadThroughput: -1, UploadThroughput: -1})
		return err
	}))
}

// outbox is the phone's outbox, as the app keeps it.
type outboxItem struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Error  string `json:"error"`
	Result struct {
		ID          string `json:"id"`
		Enterprise  string `json:"enterprise_id"`
		InspectedAt string `json:"inspected_at"`
		Result      string `json:"result"`
		Hazards     []struct {
			Level, Description, Deadline string
		} `json:"hazards"`
	} `json:"result"`
}

func (b *browser) outbox() []outboxItem {
	b.T.Helper()
	s := eval[string](b, `localStorage.getItem("citybrain.inspector.outbox.v1") || "[]"`)
	var out []outboxItem
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		b.T.Fatalf("outbox %q: %v", s, err)
	}
	return out
}

// waitUntil polls ok for up to d; failing, it says what it waited for and
// what state says.
func waitUntil(t *testing.T, what string, d time.Duration, ok func() bool, state func() string) {
	t.Helper()
	for end := time.Now().Add(d); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s: not after %s (%s)", what, d, state())
		}
	}
}

// TestPhone drives the app in headless Chromium emulating a phone against
// the real inspection API, the platform's users and login: the day's
// visits and their map, a result sent, a result saved offline and sent by
// itself when the phone is back online (after a reload without network),
// a result the API refuses shown on its form and fixed.
func TestPhone(t *testing.T) {
	if testing.Short() {
		t.Skip("drives headless Chromium; skipped with -short")
	}
	start := time.Now()
	e := newEnv(t)
	b := newBrowser(t)
	base := e.srv.URL
	card := func(n int) string { return fmt.Sprintf(`#visit-list article[data-visit="%d"]`, n) }
	shanghaiDay := func(days int) string {
		return time.Now().In(inspection.Shanghai).AddDate(0, 0, days).Format(time.DateOnly)
	}

	// Not logged in: the login form.
	b.Do("open the app", chromedp.Navigate(base+"/inspect/"), chromedp.WaitVisible(chromedp.CSS(`#login`)))
	if lang := eval[string](b, `document.documentElement.lang`); lang != "zh-CN" {
		t.Errorf("lang %q", lang)
	}
	b.fits("login")
	b.Shot("login")
	b.login("zhang.wei")

	// Today's visits: Zhang Wei's three, not Li Na's; the map with three points.
	b.Do("today's visits", chromedp.WaitVisible(chromedp.CSS(card(3))))
	if n := b.Count(`#visit-list article.visit`); n != 3 {
		t.Errorf("%d visits shown, want 3", n)
	}
	list := b.Text(`#visit-list`)
	if strings.Contains(list, "德胜餐饮店") || b.Count(card(4)) != 0 {
		t.Errorf("Li Na's visit shown to Zhang Wei: %s", list)
	}
	if got := eval[string](b, `document.querySelector("#day-label").dataset.day`); got != e.day {
		t.Errorf("day shown %q, want the API's day %s", got, e.day)
	}
	if title := b.Text(`#visits-view h1`); !strings.Contains(title, "今日检查") || !strings.Contains(title, "Today's visits") {
		t.Errorf("title %q", title)
	}
	for i, want := range []struct{ level, badge, reason string }{
		{"red", "红色", "红色必检"}, {"orange", "橙色", "橙色按季"}, {"yellow", "黄色", "风险加权"},
	} {
		u := units[i]
		c := card(i + 1)
		text := b.Text(c)
		for _, s := range []string{u.name, u.address, want.badge, want.reason, "待检查"} {
			if !strings.Contains(text, s) {
				t.Errorf("card %d lacks %q: %s", i+1, s, text)
			}
		}
		if cls := eval[string](b, `document.querySelector('`+c+` .level').className`); !strings.Contains(cls, "bg-"+want.level) {
			t.Errorf("card %d badge class %q, want bg-%s", i+1, cls, want.level)
		}
	}
	if n := b.Count(`#visits-map .marker`); n != 3 {
		t.Errorf("map: %d points, want 3", n)
	}
	// E2 is east of E1 (to the right), E3 north of it (above).
	xy := eval[[][]float64](b, `[1, 2, 3].map((n) => { const c = document.querySelector('#visits-map .marker[data-visit="' + n + '"] circle');
		return [Number(c.getAttribute("cx")), Number(c.getAttribute("cy"))]; })`)
	if len(xy) != 3 || !(xy[1][0] > xy[0][0]+50) || abs(xy[1][1]-xy[0][1]) > 1 || !(xy[2][1] < xy[0][1]-50) || abs(xy[2][0]-xy[0][0]) > 1 {
		t.Errorf("map points %v: want E2 right of E1 at the same height, E3 above E1", xy)
	}
	b.fits("visits")
	b.Shot("visits")

	// The day picker: the next day has no visits, back to today.
	b.Do("next day", chromedp.Tap(chromedp.CSS(`#day-next`)), chromedp.WaitVisible(chromedp.CSS(`#empty`)))
	if got := eval[string](b, `document.querySelector("#day-label").dataset.day`); got != addDay(e.day, 1) {
		t.Errorf("next day shows %q, want %s", got, addDay(e.day, 1))
	}
	if n := b.Count(`#visit-list article.visit`); n != 0 {
		t.Errorf("next day: %d visits, want 0", n)
	}
	b.Do("back to today", chromedp.Tap(chromedp.CSS(`#day-prev`)), chromedp.WaitVisible(chromedp.CSS(card(3))))

	// A result's id: crypto.randomUUID, or random letters and digits where
	// it is missing (not a secure context), as the API wants them.
	ids := eval[[]string](b, `[newID(), (() => { crypto.randomUUID = undefined; try { return newID(); } finally { delete crypto.randomUUID; } })()]`)
	for _, id := range ids {
		if !regexp.MustCompile(`^[A-Za-z0-9-]{8,64}$`).MatchString(id) {
			t.Errorf("result id %q: want 8–64 letters, digits, dashes", id)
		}
	}
	if len(ids) != 2 || len(ids[1]) != 32 || strings.Contains(ids[1], "-") || ids[0] == ids[1] {
		t.Errorf("ids %q: want a UUID, then 32 random hex digits", ids)
	}

	// The CSRF header is required: the same POST without it is refused.
	if st := eval[int](b, `fetch("/api/inspect/results", {method: "POST", body: "{}"}).then((r) => r.status)`, chromedp.EvalAwaitPromise); st != 401 {
		t.Errorf("POST without the CSRF header: %d, want 401", st)
	}

	// Visit 1: pass. The server first answers 503: the result stays queued
	// and the app sends it again by itself a little later; then the server
	// takes it but the phone does not hear the answer, and it is sent again
	// (by Chromium itself, which sends a POST again when a reused
	// connection drops before any answer, or by the app): the server says
	// duplicate, and that counts as sent. It shows done, and is in the
	// spool once.
	b.Do("open visit 1", chromedp.Tap(chromedp.CSS(card(1)+` .visit-main`)), chromedp.WaitVisible(chromedp.CSS(`#result-form`)))
	if hidden := eval[bool](b, `document.querySelector("#hazards").hidden`); !hidden {
		t.Error("hazards shown before a result is chosen")
	}
	b.fits("form")
	e.mu.Lock()
	e.sent = nil
	e.mu.Unlock()
	e.fail.Store(1)
	e.lose.Store(1)
	// A hazard typed under rectify is not sent once the result is pass.
	b.Do("rectify, a hazard", chromedp.Tap(chromedp.CSS(`label[for="r-rectify"]`)), chromedp.Tap(chromedp.CSS(`#add-hazard`)),
		chromedp.SendKeys(chromedp.CSS(`#hz-1-desc`), "灭火器过期"))
	b.Do("pass", chromedp.Tap(chromedp.CSS(`label[for="r-pass"]`)), chromedp.WaitNotVisible(chromedp.CSS(`#hazards`)), chromedp.Tap(chromedp.CSS(`#save`)),
		chromedp.WaitVisible(chromedp.CSS(card(1)+`[data-state="done"]`)))
	e.mu.Lock()
	sent := slices.Clone(e.sent)
	e.mu.Unlock()
	if len(sent) < 3 || len(slices.Compact(slices.Clone(sent))) != 1 {
		t.Errorf("results POSTed: %v, want one result sent three times or more (a 503, an answer lost, then a duplicate)", sent)
	}
	if got := b.Text(card(1) + ` .state`); !strings.Contains(got, "已检查") {
		t.Errorf("visit 1 state %q, want ✓ 已检查", got)
	}
	id1, rec := e.inspectionOf(t, "E1")
	if rec["result"] != "pass" || rec["inspector_id"] != zhangWei || rec["id"] != "APP-"+id1 || rec["hazards_found"] != 0.0 {
		t.Errorf("spool inspection of E1: %v", rec)
	}
	if len(b.outbox()) != 0 {
		t.Errorf("outbox after sending: %v, want empty", b.outbox())
	}
	if !eval[bool](b, `document.querySelector("#outbox").hidden`) {
		t.Errorf("outbox banner shown with nothing to send: %q", b.Text(`#outbox`))
	}

	// The service worker (scope /inspect/) holds the shell.
	scope := eval[string](b, `navigator.serviceWorker.ready.then((r) => r.scope)`, chromedp.EvalAwaitPromise)
	if scope != base+"/inspect/" {
		t.Errorf("service worker scope %q, want %s/inspect/", scope, base)
	}

	// Offline: visit 2 rectified with two hazards is saved and waits.
	b.network(true)
	b.Do("offline banner", chromedp.WaitVisible(chromedp.CSS(`#offline`)))
	b.Do("open visit 2", chromedp.Tap(chromedp.CSS(card(2)+` .visit-main`)), chromedp.WaitVisible(chromedp.CSS(`#result-form`)))
	b.Do("rectify with hazards", chromedp.Tap(chromedp.CSS(`label[for="r-rectify"]`)), chromedp.WaitVisible(chromedp.CSS(`#hazards`)),
		chromedp.Tap(chromedp.CSS(`#add-hazard`)), chromedp.Tap(chromedp.CSS(`#add-hazard`)), chromedp.Tap(chromedp.CSS(`#add-hazard`)),
		chromedp.WaitVisible(chromedp.CSS(`#hz-3`)))
	deadlines := eval[[]string](b, `[...document.querySelectorAll(".hz-deadline")].map((e) => e.value)`)
	if want := shanghaiDay(30); len(deadlines) != 3 || deadlines[0] != want || deadlines[2] != want {
		t.Errorf("new hazards' deadlines %v, want %s (30 days: general)", deadlines, want)
	}
	b.Do("two hazards", chromedp.Tap(chromedp.CSS(`#hz-3 .hz-remove`)),
		chromedp.SendKeys(chromedp.CSS(`#hz-1-desc`), "消防通道堆放杂物"),
		chromedp.Tap(chromedp.CSS(`label[for="hz-2-major"]`)),
		chromedp.SendKeys(chromedp.CSS(`#hz-2-desc`), "配电箱无防护罩"),
		chromedp.SendKeys(chromedp.CSS(`#notes`), "现场责令整改"))
	if n := b.Count(`#hazard-list .hazard`); n != 2 {
		t.Errorf("%d hazard rows after removing one of three, want 2", n)
	}
	if got := eval[string](b, `document.querySelector("#hz-2-deadline").value`); got != shanghaiDay(60) {
		t.Errorf("major hazard's deadline %q, want %s (60 days)", got, shanghaiDay(60))
	}
	b.fits("form with hazards")
	b.Shot("form")
	b.Do("save offline", chromedp.Tap(chromedp.CSS(`#save`)), chromedp.WaitVisible(chromedp.CSS(card(2)+`[data-state="queued"]`)))
	if got := b.Text(`#outbox`); !strings.Contains(got, "待发送 1 条") || !strings.Contains(got, "1 waiting to send") {
		t.Errorf("outbox banner %q, want 待发送 1 条 / 1 waiting to send", got)
	}
	ob := b.outbox()
	if len(ob) != 1 || ob[0].Status != "queued" || ob[0].Result.Enterprise != "E2" || ob[0].Result.Result != "rectify" || len(ob[0].Result.Hazards) != 2 ||
		!regexp.MustCompile(`^[A-Za-z0-9-]{8,64}$`).MatchString(ob[0].ID) || ob[0].Result.ID != ob[0].ID {
		t.Fatalf("outbox %+v, want one queued rectify of E2 with two hazards and an id of 8–64 letters, digits, dashes", ob)
	}
	if at, err := time.Parse(time.RFC3339, ob[0].Result.InspectedAt); err != nil || time.Since(at) > time.Minute {
		t.Errorf("inspected_at %q (%v): want now, RFC 3339", ob[0].Result.InspectedAt, err)
	}
	if n, hz := len(e.spoolFiles(t, "inspections")), e.spoolFiles(t, "hazards"); n != 1 || len(hz) != 0 {
		t.Errorf("spool while offline: %d inspections, hazards %v; want only visit 1's", n, hz)
	}
	b.fits("offline")
	b.Shot("offline")

	// A reload without any network: the worker serves the shell (the server
	// is down too), the visits kept on the phone show, the outbox survives.
	e.down.Store(true)
	e.srv.CloseClientConnections()
	b.Do("reload offline", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(card(2)+`[data-state="queued"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#offline`)), chromedp.WaitVisible(chromedp.CSS(`#outbox`)))
	if got := b.Text(`#outbox`); !strings.Contains(got, "待发送 1 条") {
		t.Errorf("outbox banner after the reload %q, want 待发送 1 条", got)
	}
	if st := eval[string](b, `document.querySelector('`+card(1)+`').dataset.state`); st != "done" {
		t.Errorf("visit 1 after the offline reload: %s, want done", st)
	}
	if n := len(e.spoolFiles(t, "inspections")); n != 1 {
		t.Errorf("spool after the offline reload: %d inspections, want 1", n)
	}

	// Back online: the result goes by itself.
	e.down.Store(false)
	b.network(false)
	waitUntil(t, "visit 2's result in the spool", 15*time.Second, func() bool { return len(e.spoolFiles(t, "inspections")) == 2 },
		func() string {
			return fmt.Sprintf("onLine %v, outbox %+v", eval[bool](b, `navigator.onLine`), b.outbox())
		})
	id2, rec := e.inspectionOf(t, "E2")
	if id2 != ob[0].ID || rec["result"] != "rectify" || rec["hazards_found"] != 2.0 || rec["notes"] != "现场责令整改" {
		t.Errorf("spool inspection of E2 %s: %v; want the outbox's %s, rectify, 2 hazards", id2, rec, ob[0].ID)
	}
	hz := lines(t, filepath.Join(e.spool, "hazards", id2+".jsonl"))
	if len(hz) != 2 {
		t.Fatalf("hazards of E2: %d lines, want 2: %v", len(hz), hz)
	}
	for i, want := range []struct{ level, desc, deadline string }{
		{"general", "消防通道堆放杂物", shanghaiDay(30)}, {"major", "配电箱无防护罩", shanghaiDay(60)},
	} {
		if h := hz[i]; h["level"] != want.level || h["description"] != want.desc || h["deadline"] != want.deadline || h["enterprise_id"] != "E2" {
			t.Errorf("hazard %d: %v, want %s %q by %s", i+1, h, want.level, want.desc, want.deadline)
		}
	}
	b.Do("sent", chromedp.WaitVisible(chromedp.CSS(card(2)+`[data-state="done"]`)), chromedp.WaitNotVisible(chromedp.CSS(`#outbox`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#offline`)))
	if len(b.outbox()) != 0 {
		t.Errorf("outbox after coming online: %v, want empty", b.outbox())
	}

	// Visit 3: rectify without a hazard. The API refuses it (400): its text
	// shows on the form, and the result stays until fixed.
	const refusal = "责令整改须登记至少一项隐患"
	b.Do("open visit 3", chromedp.Tap(chromedp.CSS(card(3)+` .visit-main`)), chromedp.WaitVisible(chromedp.CSS(`#result-form`)))
	b.Do("rectify without hazards", chromedp.Tap(chromedp.CSS(`label[for="r-rectify"]`)), chromedp.Tap(chromedp.CSS(`#save`)),
		chromedp.WaitVisible(chromedp.CSS(`#form-error`)))
	if msg := b.Text(`#form-error`); !strings.Contains(msg, refusal) || !strings.Contains(msg, "rectify needs at least one hazard") {
		t.Errorf("form error %q, want the API's %s / rectify needs at least one hazard", msg, refusal)
	}
	if ob := b.outbox(); len(ob) != 1 || ob[0].Status != "rejected" || !strings.Contains(ob[0].Error, refusal) {
		t.Errorf("outbox after the 400: %+v, want the result kept, refused", ob)
	}
	if got := b.Text(`#outbox`); !strings.Contains(got, "需修改 1 条") || strings.Contains(got, "待发送") {
		t.Errorf("outbox banner %q, want 需修改 1 条 and nothing waiting", got)
	}
	b.fits("refused")
	b.Shot("refused")
	// Still there after a reload, on the card and behind the banner's link;
	// fixed, it goes.
	b.Do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#form-error`)))
	if msg := b.Text(`#form-error`); !strings.Contains(msg, refusal) {
		t.Errorf("form error after a reload %q", msg)
	}
	b.Do("the list", chromedp.Tap(chromedp.CSS(`#cancel`)), chromedp.WaitVisible(chromedp.CSS(card(3)+`[data-state="rejected"]`)))
	if got := b.Text(card(3) + ` .state`); !strings.Contains(got, "需修改") {
		t.Errorf("visit 3 state %q, want 需修改", got)
	}
	b.Do("the banner's link", chromedp.Tap(chromedp.CSS(`#outbox-fix`)), chromedp.WaitVisible(chromedp.CSS(`#form-error`)))
	if got := eval[string](b, `document.querySelector('input[name="result"]:checked').value`); got != "rectify" {
		t.Errorf("the refused result's form shows %q, want rectify", got)
	}
	b.Do("fix", chromedp.Tap(chromedp.CSS(`#add-hazard`)), chromedp.SendKeys(chromedp.CSS(`#hz-1-desc`), "危化品未分区存放"),
		chromedp.Tap(chromedp.CSS(`#save`)), chromedp.WaitVisible(chromedp.CSS(card(3)+`[data-state="done"]`)))
	if _, rec := e.inspectionOf(t, "E3"); rec["result"] != "rectify" || rec["hazards_found"] != 1.0 {
		t.Errorf("spool inspection of E3: %v", rec)
	}
	if ob := b.outbox(); len(ob) != 0 {
		t.Errorf("outbox after the fix: %+v, want empty", ob)
	}
	if n := len(e.spoolFiles(t, "inspections")); n != 3 {
		t.Errorf("%d inspections in the spool, want 3", n)
	}
	if title := b.Text(`#visits-view h1`); !strings.Contains(title, "今日检查") || b.Count(`#day-label .today`) != 1 {
		t.Errorf("back from a visit opened by its address: title %q, want 今日检查 and the today mark", title)
	}
	b.Shot("done")

	// Li Na sees her visit only.
	b.Do("log out", chromedp.Tap(chromedp.CSS(`#logout`)), chromedp.WaitVisible(chromedp.CSS(`#login`)))
	b.login("li.na")
	b.Do("Li Na's visits", chromedp.WaitVisible(chromedp.CSS(card(4))))
	if n := b.Count(`#visit-list article.visit`); n != 1 {
		t.Errorf("Li Na sees %d visits, want 1", n)
	}

	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("errors in the page: %v", errs)
	}
	t.Logf("phone run took %s", time.Since(start).Round(time.Millisecond))
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func addDay(day string, n int) string {
	d, err := time.Parse(time.DateOnly, day)
	if err != nil {
		panic(err)
	}
	return d.AddDate(0, 0, n).Format(time.DateOnly)
}
