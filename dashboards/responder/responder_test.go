package responder_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"citybrain/dashboards"
	"citybrain/dashboards/pwa/phonetest"
	"citybrain/dashboards/responder"
	"citybrain/internal/auth"
	"citybrain/pipelines/response"
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
	responder.Mount(mux)
	for _, c := range []struct {
		path, ctype, contains string
	}{
		{"/respond/", "text/html; charset=utf-8", `<html lang="zh-CN">`}, // index.html
		{"/respond/index.html", "text/html; charset=utf-8", `<meta name="viewport" content="width=device-width, initial-scale=1">`},
		{"/respond/app.js", "text/javascript; charset=utf-8", "/api/respond"},
		{"/respond/app.css", "text/css; charset=utf-8", "--touch: 48px"},
		{"/respond/manifest.webmanifest", "application/manifest+json; charset=utf-8", `"start_url"`},
		{"/respond/sw.js", "text/javascript; charset=utf-8", "caches.open"},
		{"/respond/icon.svg", "image/svg+xml", "<svg"},
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
			if r.Header.Get("Content-Security-Policy") != responder.CSP || r.Header.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("security headers missing: %v", r.Header)
			}
			b := body(t, r)
			if !strings.Contains(b, c.contains) {
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
	for _, p := range []string{"/respond/nope.js", "/respond/static/app.js", "/respond/task/T1"} {
		if r := get(t, mux, "GET", p, nil); r.StatusCode != 404 {
			t.Errorf("GET %s: %d, want 404", p, r.StatusCode)
		}
	}
	if r := get(t, mux, "GET", "/respond", nil); r.StatusCode != http.StatusMovedPermanently || r.Header.Get("Location") != "/respond/" {
		t.Errorf("GET /respond: %d → %q, want 301 to /respond/", r.StatusCode, r.Header.Get("Location"))
	}
	if r := get(t, responder.Handler(), "POST", "/respond/", nil); r.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /respond/: %d, want 405", r.StatusCode)
	}
}

func TestManifest(t *testing.T) {
	h := responder.Handler()
	var m struct {
		Name       string `json:"name"`
		ShortName  string `json:"short_name"`
		StartURL   string `json:"start_url"`
		Scope      string `json:"scope"`
		Display    string `json:"display"`
		ThemeColor string `json:"theme_color"`
		Lang       string `json:"lang"`
		Icons      []struct {
			Src     string `json:"src"`
			Sizes   string `json:"sizes"`
			Type    string `json:"type"`
			Purpose string `json:"purpose"`
		} `json:"icons"`
	}
	dec := json.NewDecoder(strings.NewReader(body(t, get(t, h, "GET", "/respond/manifest.webmanifest", nil))))
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("manifest is not JSON: %v", err)
	}
	if m.Name != "西城应急响应 CityBrain Responder" || m.ShortName == "" {
		t.Errorf("name %q short_name %q", m.Name, m.ShortName)
	}
	if m.StartURL != "/respond/" || m.Scope != "/respond/" || m.Display != "standalone" || m.Lang != "zh-CN" {
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

// The worker is served from /respond/ (so its scope may be /respond/
// without Service-Worker-Allowed), registered with that scope, keeps the
// shell and leaves the API alone.
func TestServiceWorkerScope(t *testing.T) {
	h := responder.Handler()
	sw := body(t, get(t, h, "GET", "/respond/sw.js", nil))
	app := body(t, get(t, h, "GET", "/respond/app.js", nil))
	if !strings.Contains(app, `register("sw.js", { scope: "./" })`) {
		t.Error(`app.js does not register sw.js with scope "./" (= /respond/)`)
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

// No file loads anything from another origin: no CDN, web font or tiles.
func TestNoExternalURLs(t *testing.T) {
	h := responder.Handler()
	url := regexp.MustCompile(`(?:https?:)?//[a-zA-Z0-9.-]+\.[a-z]{2,}[^\s"'<>)]*`)
	for _, name := range []string{"index.html", "app.js", "app.css", "manifest.webmanifest", "sw.js", "icon.svg"} {
		b := body(t, get(t, h, "GET", "/respond/"+name, nil))
		for _, u := range url.FindAllString(b, -1) {
			if u != "http://www.w3.org/2000/svg" { // the SVG namespace, not a fetch
				t.Errorf("%s refers to %s", name, u)
			}
		}
	}
}

// ---- the app in a phone ------------------------------------------------------

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// People of the fixture. Li Xiang does the field work in street S1 and is
// the deputy of S1's reporting role; Chen Jing commands in street S2.
const (
	liXiang  = "P-S1-FLD"
	zhaoMin  = "P-S1-INF"
	chenJing = "P-S2-CMD"
	password = "responder-test-pw"
)

const dutyField = "到场核实客流，组织疏导，必要时实施限流"

// testPlans: one street plan level III per street (yellow warnings), three
// roles each: the idea of pipelines/response's fixturePlans, smaller.
func testPlans() *response.Plans {
	t0 := time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)
	levels := []response.PlanLevel{
		{PlanID: "P-S1", PlanKind: "street", TitleZh: "西长安街街道突发事件应急预案", TitleEn: "Xichang'anjie street emergency plan", Level: "III", MinWarningLevel: "yellow", StreetCode: "S1", ValidFrom: t0},
		{PlanID: "P-S2", PlanKind: "street", TitleZh: "新街口街道突发事件应急预案", TitleEn: "Xinjiekou street emergency plan", Level: "III", MinWarningLevel: "yellow", StreetCode: "S2", ValidFrom: t0},
	}
	type role struct{ id, zh, en, dutyZh, dutyEn string }
	roles := []role{
		{"commander", "现场指挥", "Site commander", "统一指挥现场处置，决定是否限流或疏散", "Commands on site; decides on limiting entry or evacuating"},
		{"field", "现场处置", "On-site response", dutyField, "Go to the site, check the crowd, direct people; limit entry if needed"},
		{"info", "信息报送", "Reporting", "每 15 分钟向区应急指挥中心报送现场情况", "Report to the district command centre every 15 minutes"},
	}
	people := map[string][3][2]string{ // street → role → {person, name}; deputies
		"S1": {{"P-S1-CMD", "王建国"}, {liXiang, "李响"}, {zhaoMin, "赵敏"}},
		"S2": {{chenJing, "陈静"}, {"P-S2-FLD", "孙磊"}, {"P-S2-INF", "周洁"}},
	}
	deputies := map[string][3][2]string{
		"S1": {{"P-S1-CMD2", "王副"}, {"P-S1-FLD2", "李副"}, {liXiang, "李响"}},
		"S2": {{"P-S2-CMD2", "陈副"}, {"P-S2-FLD2", "孙副"}, {"P-S2-INF2", "周副"}},
	}
	var rs []response.Role
	var hs []response.Holder
	for _, street := range []string{"S1", "S2"} {
		plan := "P-" + street
		for i, r := range roles {
			id := "R-" + plan + "-III-" + r.id
			sup := ""
			if i > 0 {
				sup = "R-" + plan + "-III-commander"
			}
			rs = append(rs, response.Role{RoleID: id, PlanID: plan, Level: "III", RoleZh: r.zh, RoleEn: r.en, DutyZh: r.dutyZh, DutyEn: r.dutyEn,
				SuperiorRoleID: sup, Rank: i + 1, ValidFrom: t0})
			p, d := people[street][i], deputies[street][i]
			hs = append(hs, response.Holder{RoleID: id, PersonID: p[0], PersonName: p[1], DeputyID: d[0], DeputyName: d[1],
				StreetCode: street, Channels: []string{"app"}, ValidFrom: t0})
		}
	}
	return response.NewPlans(levels, rs, hs)
}

var wseq int64

func crowd(id, venue, nameZh, nameEn, street string) response.Warning {
	wseq++
	return response.Warning{WarningID: id, Kind: "crowd", SubjectType: "venue", SubjectID: venue, SubjectNameZh: nameZh, SubjectNameEn: nameEn,
		StreetCode: street, Level: "yellow", State: "raised", MessageZh: "客流达到黄色预警（容量 82%）", MessageEn: "crowd at yellow (82% of capacity)", Seq: wseq}
}

// support answers for venue V1 only ({} for the others: none yet).
func support(_ *http.Request, tv response.TaskView) (any, error) {
	if tv.Response.SubjectID != "V1" {
		return map[string]any{}, nil
	}
	// The information officer's answer stands in for a subject without
	// coordinates of its own (a speed segment): located at its street's centre.
	approx := ""
	if strings.HasSuffix(tv.RoleID, "-info") {
		approx = "street"
	}
	return map[string]any{
		"center":        map[string]float64{"lon": 116.3705, "lat": 39.9065},
		"center_approx": approx,
		"fire_stations": []map[string]any{
			{"name": "西单微型消防站", "lon": 116.3731, "lat": 39.9072, "distance_m": 236.0},
			{"name": "西长安街小型消防站", "lon": 116.3652, "lat": 39.9041, "distance_m": 534.0},
		},
		"shelters": []map[string]any{
			{"name": "西单文化广场应急避难场所", "capacity_people": 3000, "lon": 116.3712, "lat": 39.9101, "distance_m": 405.0},
			{"name": "金融街公园避难场所", "capacity_people": 1200, "lon": 116.3598, "lat": 39.9110, "distance_m": 1021.0},
		},
		"warehouses": []map[string]any{
			{"name": "西城区应急物资储备库（一号）", "lon": 116.3801, "lat": 39.9150, "distance_m": 1240.0},
			{"name": "西城区应急物资储备库（二号）", "lon": 116.3550, "lat": 39.8980, "distance_m": 1620.0},
			{"name": "西城区应急物资储备库（三号）", "lon": 116.3880, "lat": 39.9010, "distance_m": 1597.0},
		},
		"people_nearby":     map[string]int{"count": 1840, "radius_m": 500},
		"responsible_units": []string{"西长安街街道办事处", "西城公安分局西单派出所"},
	}, nil
}

type env struct {
	eng   *response.Engine
	users *auth.Store
	clock *fakeClock
	srv   *httptest.Server
	down  atomic.Bool // the server unreachable: every connection dropped
}

func newEnv(t *testing.T) *env {
	t.Helper()
	users, err := auth.Open(auth.DefaultConfig(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, person := range map[string]string{"li.xiang": liXiang, "chen.jing": chenJing, "wang.unlinked": ""} {
		if err := users.Add(name, password, auth.RoleDepartment, "emergency"); err != nil {
			t.Fatal(err)
		}
		if err := users.Update(name, func(u *auth.User) error { u.PersonID = person; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	e := &env{users: users, clock: &fakeClock{t: time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)}}
	cfg := response.DefaultConfig()
	cfg.GroupBy = "subject" // each venue its own response (its own cards)
	e.eng = response.NewEngine(cfg, nil, testPlans(), e.clock.now, nil)
	mux := http.NewServeMux()
	// The platform's login (POST /api/login, GET /api/me, POST /api/logout)
	// is the dashboards server's; it needs only the users for those routes.
	dashboards.New(dashboards.DefaultConfig(), dashboards.Deps{Auth: users}).Mount(mux)
	(&response.API{Eng: e.eng, Auth: users, Support: support}).Mount(mux)
	responder.Mount(mux)
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if e.down.Load() {
			panic(http.ErrAbortHandler) // the connection drops: "unreachable"
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		e.srv.CloseClientConnections()
		e.srv.Close()
	})
	return e
}

func (e *env) task(t *testing.T, person, venue, role string) response.TaskView {
	t.Helper()
	for _, tv := range e.eng.Tasks(person, true) {
		if tv.Response.SubjectID == venue && strings.HasSuffix(tv.RoleID, "-"+role) {
			return tv
		}
	}
	t.Fatalf("no %s task of %s for %s", role, venue, person)
	return response.TaskView{}
}

// browser is the app in a phone (dashboards/pwa/phonetest).
type browser struct{ *phonetest.Browser }

func newBrowser(t *testing.T) *browser {
	return &browser{phonetest.New(t, "responder", 10*time.Second)}
}

func eval[T any](b *browser, expr string, opts ...chromedp.EvaluateOption) T {
	b.T.Helper()
	return phonetest.Eval[T](b.Browser, expr, opts...)
}

// fits: no horizontal scroll at 390 px, every visible control a thumb's size.
func (b *browser) fits(where string) {
	b.T.Helper()
	b.Fits(where, `button, a.button, .tabs a, input, textarea`)
}

func (b *browser) login(user string) { b.T.Helper(); b.Login(user, password) }

// TestPhone drives the app in headless Chromium emulating a phone against
// a real response engine, the real response API and the platform's login.
func TestPhone(t *testing.T) {
	if testing.Short() {
		t.Skip("drives headless Chromium; skipped with -short")
	}
	start := time.Now()
	e := newEnv(t)
	if err := e.eng.Apply(crowd("W1", "V1", "西单文化广场", "Xidan Culture Square", "S1"), 1); err != nil {
		t.Fatal(err)
	}
	first := e.task(t, liXiang, "V1", "field")
	b := newBrowser(t)
	base := e.srv.URL
	card := func(id string) string { return fmt.Sprintf(`#task-list article[data-task=%q]`, id) }

	// Not logged in: /api/respond/me is 401 and the login form shows.
	b.Do("open the app", chromedp.Navigate(base+"/respond/"), chromedp.WaitVisible(chromedp.CSS(`#login`)))
	if lang := eval[string](b, `document.documentElement.lang`); lang != "zh-CN" {
		t.Errorf("lang %q", lang)
	}
	b.fits("login")
	b.Shot("login")
	b.login("li.xiang")
	b.Do("my task", chromedp.WaitVisible(chromedp.CSS(card(first.ID))))
	if got := b.Text(card(first.ID)); !strings.Contains(got, dutyField) || !strings.Contains(got, "西单文化广场") ||
		!strings.Contains(got, "现场处置") || !strings.Contains(got, "待确认") || !strings.Contains(got, "Ⅲ级响应") {
		t.Errorf("card says %q; want the venue, the role, the duty, Ⅲ级响应 and 待确认", got)
	}
	if cls := eval[string](b, `document.querySelector('`+card(first.ID)+`').className`); !strings.Contains(cls, "lvl-yellow") {
		t.Errorf("card class %q: want the yellow warning's colour", cls)
	}

	// The CSRF header is required: the same POST without it is refused.
	if st := eval[int](b, `fetch("/api/respond/tasks/`+first.ID+`/ack", {method: "POST"}).then((r) => r.status)`, chromedp.EvalAwaitPromise); st != 401 {
		t.Errorf("ack without the CSRF header: %d, want 401", st)
	}

	// Acknowledge.
	b.Do("acknowledge", chromedp.Tap(chromedp.CSS(card(first.ID)+` .act-ack`)),
		chromedp.WaitVisible(chromedp.CSS(card(first.ID)+`[data-state="acknowledged"]`)))
	if got := e.task(t, liXiang, "V1", "field"); got.State != response.TaskAcknowledged || got.AckBy != liXiang {
		t.Errorf("engine: task %s state %s by %q, want acknowledged by %s", got.ID, got.State, got.AckBy, liXiang)
	}
	if st := b.Text(card(first.ID) + ` .state`); !strings.Contains(st, "已确认") {
		t.Errorf("state on the card %q, want 已确认", st)
	}

	// Report progress: an empty report shows the API's error, a real one lands.
	b.Do("empty report", chromedp.Tap(chromedp.CSS(card(first.ID)+` .act-progress`)),
		chromedp.Tap(chromedp.CSS(card(first.ID)+` .act-submit`)),
		chromedp.WaitVisible(chromedp.CSS(card(first.ID)+` .act-error`)))
	if msg := b.Text(card(first.ID) + ` .act-error`); !strings.Contains(msg, "进展内容为空") {
		t.Errorf("error shown %q, want the API's 进展内容为空", msg)
	}
	report := "已到场，正在疏导客流"
	b.Do("report", chromedp.SendKeys(chromedp.CSS(card(first.ID)+` textarea`), report),
		chromedp.Tap(chromedp.CSS(card(first.ID)+` .act-submit`)),
		chromedp.WaitVisible(chromedp.CSS(card(first.ID)+` .last-note`)))
	if notes := e.task(t, liXiang, "V1", "field").Notes; len(notes) != 1 || notes[0].Text != report || notes[0].Person != liXiang {
		t.Errorf("engine notes %+v, want one %q by %s", notes, report, liXiang)
	}

	// A second warning: its task arrives by the stream, without a reload.
	eval[string](b, `window.__sameDocument = "yes"`)
	if err := e.eng.Apply(crowd("W2", "V2", "西单北大街", "Xidan North Street", "S1"), 1); err != nil {
		t.Fatal(err)
	}
	second := e.task(t, liXiang, "V2", "field")
	b.Do("task pushed", chromedp.WaitVisible(chromedp.CSS(card(second.ID))))
	if v := eval[string](b, `window.__sameDocument || "reloaded"`); v != "yes" {
		t.Errorf("the page reloaded (%s): the new task must come by SSE", v)
	}
	// The reporting task unacknowledged past ack_after goes to its deputy,
	// Li Xiang: it arrives with a note that it was escalated.
	e.clock.add(response.DefaultConfig().AckAfter + time.Minute)
	if err := e.eng.Tick(); err != nil {
		t.Fatal(err)
	}
	esc := e.task(t, liXiang, "V1", "info")
	b.Do("escalated task", chromedp.WaitVisible(chromedp.CSS(card(esc.ID)+` .escalation.to-me`)))
	if note := b.Text(card(esc.ID) + ` .escalation`); !strings.Contains(note, "升级转来") || !strings.Contains(note, "赵敏") {
		t.Errorf("escalation note %q, want 升级转来 … 赵敏", note)
	}
	if n := eval[int](b, `document.querySelectorAll("#task-list article.card").length`); n != 4 {
		t.Errorf("%d cards, want 4 (two field tasks, two reporting tasks escalated)", n)
	}
	b.fits("task list")
	b.Shot("tasks")

	// The detail of the first task: the event map and decision support.
	b.Do("detail", chromedp.Tap(chromedp.CSS(card(first.ID)+` .act-details`)), chromedp.WaitVisible(chromedp.CSS(`#event-map`)))
	for sel, want := range map[string]int{`#event-map .marker.fire`: 2, `#event-map .marker.shelter`: 2, `#event-map .marker.store`: 3, `#event-map #event-point`: 1, `#event-map .people-area`: 1} {
		if n := eval[int](b, `document.querySelectorAll("`+sel+`").length`); n != want {
			t.Errorf("%s: %d, want %d", sel, n, want)
		}
	}
	sup := b.Text(`#support`)
	for _, want := range []string{"西单微型消防站", "236 m", "西单文化广场应急避难场所", "可容纳 3,000 人", "西城区应急物资储备库（三号）", "周边约 1,840 人", "西城公安分局西单派出所"} {
		if !strings.Contains(sup, want) {
			t.Errorf("decision support lacks %q: %s", want, sup)
		}
	}
	b.fits("task detail")
	b.Shot("detail")
	if n := eval[int](b, `document.querySelectorAll("#center-approx").length`); n != 0 {
		t.Errorf("an exact location said to be approximate")
	}
	b.Do("detail of the escalated task", chromedp.Navigate(base+"/respond/#/task/"+esc.ID), chromedp.WaitVisible(chromedp.CSS(`#center-approx`)))
	if got := b.Text(`#center-approx`); !strings.Contains(got, "街道中心") {
		t.Errorf("approximate location note %q, want … 街道中心 …", got)
	}

	// The second task has no decision support yet; close it from its detail.
	b.Do("detail 2", chromedp.Navigate(base+"/respond/#/task/"+second.ID), chromedp.WaitVisible(chromedp.CSS(`#no-support`)))
	if got := b.Text(`#no-support`); !strings.Contains(got, "暂无辅助决策数据") {
		t.Errorf("no-support text %q", got)
	}
	b.Do("close", chromedp.Tap(chromedp.CSS(`#detail .act-close`)),
		chromedp.SendKeys(chromedp.CSS(`#detail textarea`), "客流恢复正常"),
		chromedp.Tap(chromedp.CSS(`#detail .act-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#detail article[data-state="closed"]`)))
	if got := e.task(t, liXiang, "V2", "field"); got.State != response.TaskClosed {
		t.Errorf("engine: closed task is %s", got.State)
	}
	if st := b.Text(`#detail .state`); !strings.Contains(st, "已关闭") {
		t.Errorf("state %q, want 已关闭", st)
	}

	// Offline: the worker (scope /respond/) keeps the shell; the API gone,
	// the app says 离线 and shows the tasks it synced last — also after a
	// reload with no server at all.
	scope := eval[string](b, `navigator.serviceWorker.ready.then((r) => r.scope)`, chromedp.EvalAwaitPromise)
	if scope != base+"/respond/" {
		t.Errorf("service worker scope %q, want %s/respond/", scope, base)
	}
	b.Do("list", chromedp.Navigate(base+"/respond/#/"), chromedp.WaitVisible(chromedp.CSS(card(first.ID))))
	e.down.Store(true)
	e.srv.CloseClientConnections()
	b.Do("offline banner", chromedp.WaitVisible(chromedp.CSS(`#offline`)))
	b.Do("reload offline", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`#offline`)), chromedp.WaitVisible(chromedp.CSS(card(first.ID))))
	if got := b.Text(`#offline`); !strings.Contains(got, "离线") || !strings.Contains(got, "offline") {
		t.Errorf("offline banner %q", got)
	}
	if dis := eval[bool](b, `document.querySelector('`+card(esc.ID)+` .act-ack').disabled`); !dis {
		t.Error("acknowledge is enabled offline")
	}
	b.Shot("offline")
	e.down.Store(false)
	b.Do("online again", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(card(first.ID))), chromedp.WaitNotVisible(chromedp.CSS(`#offline`)))

	// Scope: Chen Jing of street S2 sees none of S1's tasks.
	b.Do("log out", chromedp.Tap(chromedp.CSS(`#logout`)), chromedp.WaitVisible(chromedp.CSS(`#login`)))
	b.login("chen.jing")
	b.Do("S2's list", chromedp.WaitVisible(chromedp.CSS(`#empty`)))
	if n := eval[int](b, `document.querySelectorAll("article.card.task").length`); n != 0 {
		t.Errorf("S2's responder sees %d tasks, want none", n)
	}
	if st := eval[int](b, `fetch("/api/respond/support?task=`+first.ID+`").then((r) => r.status)`, chromedp.EvalAwaitPromise); st != 404 {
		t.Errorf("S2's responder asking S1's task's support: %d, want 404", st)
	}
	if n := eval[int](b, `fetch("/api/respond/tasks?all=1").then((r) => r.json()).then((d) => d.tasks.length)`, chromedp.EvalAwaitPromise); n != 0 {
		t.Errorf("S2's responder's tasks (all): %d, want 0", n)
	}
	b.Shot("scope")

	// An account not linked to a responder gets the API's 403 text.
	b.Do("log out 2", chromedp.Tap(chromedp.CSS(`#logout`)), chromedp.WaitVisible(chromedp.CSS(`#login`)))
	b.login("wang.unlinked")
	b.Do("unlinked", chromedp.WaitVisible(chromedp.CSS(`#unlinked-error`)))
	if msg := b.Text(`#unlinked-error`); !strings.Contains(msg, "未关联应急责任人") {
		t.Errorf("unlinked account shows %q", msg)
	}

	if errs := b.Errors(); len(errs) > 0 {
		t.Errorf("errors in the page: %v", errs)
	}
	t.Logf("phone run took %s", time.Since(start).Round(time.Millisecond))
}
