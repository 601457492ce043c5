package dashboards_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"image/png"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"citybrain/internal/auth"
	"citybrain/internal/config"
	"citybrain/internal/freshness"
	"citybrain/internal/geo"
	"citybrain/pipelines/extracts"
)

// chromiumPath finds Debian's chromium; in -short mode its absence skips,
// in full mode (make test installs it) it fails.
func chromiumPath(t testing.TB) string {
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: run make test-deps (apt-get install chromium)")
	return ""
}

// screenshotDir is CITYBRAIN_SCREENSHOTS, or the test's artifact directory
// (kept with go test -artifacts -outputdir DIR).
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("CITYBRAIN_SCREENSHOTS"); d != "" {
		os.MkdirAll(d, 0o755)
		return d
	}
	return t.ArtifactDir()
}

// browser is a headless Chromium tab recording console errors.
type browser struct {
	t      *testing.T
	ctx    context.Context
	mu     sync.Mutex
	errors []string
	shots  string
}

func newBrowser(t *testing.T, ctx context.Context) *browser {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromiumPath(t)), chromedp.NoSandbox,
		chromedp.WindowSize(1600, 1000), chromedp.Flag("lang", "zh-CN"))
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancel)
	bctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	b := &browser{t: t, ctx: bctx, shots: screenshotDir(t)}
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatal(err)
	}
	msgs := chromedp.Console(bctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.mu.Lock()
				b.errors = append(b.errors, fmt.Sprintf("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("%s: %v (console: %v)", what, err, b.consoleErrors())
	}
}

func (b *browser) shot(name string) {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Error(err)
	}
	b.t.Logf("screenshot %s", p)
}

func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

// charts is what each chart of the page draws (citybrainChartData).
func (b *browser) charts() map[string][]struct {
	Name string
	Data []float64
} {
	return eval[map[string][]struct {
		Name string
		Data []float64
	}](b, `citybrainChartData()`)
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// evalAsync evaluates an expression whose value is a promise.
func evalAsync[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// chartPixel is where a value of a chart is drawn, in the page's viewport
// (the chart scrolled into view): ECharts' convertToPixel(finder, value)
// plus the chart's position.
func (b *browser) chartPixel(card, finder, value string) (x, y float64) {
	b.t.Helper()
	p := eval[[]float64](b, `(() => { const c = citybrainChart(`+fmt.Sprintf("%q", card)+`); c.getDom().scrollIntoView({block: "center"});
		const p = c.convertToPixel(`+finder+`, `+value+`); const r = c.getDom().getBoundingClientRect(); return [r.left + p[0], r.top + p[1]]; })()`)
	if len(p) != 2 || p[0] <= 0 || p[1] <= 0 {
		b.t.Fatalf("pixel of %s in chart %s: %v", value, card, p)
	}
	return p[0], p[1]
}

// mapPixel is where a longitude/latitude is drawn on the one map.
func (b *browser) mapPixel(lon, lat float64) (x, y float64) {
	b.t.Helper()
	return b.chartPixel("map", `{geoIndex: 0}`, fmt.Sprintf("[%v, %v]", lon, lat))
}

// clickAt moves the mouse to (x, y) and clicks there: real input events,
// as a user's, hit-tested by ECharts on its canvas.
func (b *browser) clickAt(what string, x, y float64, then ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.run(what, append([]chromedp.Action[chromedp.Void]{chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y), chromedp.Sleep(100 * time.Millisecond), chromedp.MouseClickXY(x, y)}, then...)...)
}

// wheel turns the mouse wheel n notches at (x, y) (negative dy zooms in;
// DevTools wants a deltaX, which a zero would leave out).
func (b *browser) wheel(x, y float64, n int, dy float64) {
	b.t.Helper()
	acts := []chromedp.Action[chromedp.Void]{chromedp.MouseEvent(input.DispatchMouseEventTypeMouseMoved, x, y)}
	for range n {
		acts = append(acts, chromedp.MouseEvent(input.DispatchMouseEventTypeMouseWheel, x, y, func(p *input.DispatchMouseEventParams) { p.DeltaX, p.DeltaY = 1e-6, dy }), chromedp.Sleep(60*time.Millisecond))
	}
	b.run("wheel", acts...)
}

// expectErrors runs fn and drops the console errors it caused that contain
// want, failing when there was none.
func (b *browser) expectErrors(want string, fn func()) {
	b.t.Helper()
	b.mu.Lock()
	n := len(b.errors)
	b.mu.Unlock()
	fn()
	time.Sleep(300 * time.Millisecond)
	b.mu.Lock()
	defer b.mu.Unlock()
	var kept []string
	found := false
	for _, e := range b.errors[n:] {
		if strings.Contains(e, want) {
			found = true
			continue
		}
		kept = append(kept, e)
	}
	b.errors = append(b.errors[:n], kept...)
	if !found {
		b.t.Errorf("no console error containing %q", want)
	}
}

// download clicks sel and returns the file the page downloaded as name.
func (b *browser) download(dir, sel, name string) []byte {
	b.t.Helper()
	p := filepath.Join(dir, name)
	os.Remove(p)
	b.run("download "+name, chromedp.Click(chromedp.CSS(sel)))
	for range 100 {
		if data, err := os.ReadFile(p); err == nil && len(data) > 0 {
			return data
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.t.Fatalf("%s: no file %s downloaded", sel, name)
	return nil
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func rendered(page string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitReady(chromedp.CSS(`body[data-rendered="` + page + `"]`))
}

func (b *browser) login(base, user string) {
	b.run("login "+user,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#login-user`)),
		chromedp.SendKeys(chromedp.CSS(`#login-user`), user),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), "citybrain-demo"),
		chromedp.Click(chromedp.CSS(`#login-submit`)),
		// the home page: the cockpit, or a department's own page
		chromedp.WaitReady(chromedp.CSS(`body[data-rendered="cockpit"], body[data-rendered="dept"]`)))
}

// browserAs is a fixture lake's server and a headless Chromium logged in
// as user (skipped with -short).
func browserAs(t *testing.T, user string) (*env, *browser) {
	t.Helper()
	if testing.Short() {
		t.Skip("drives headless Chromium; skipped with -short")
	}
	e := newEnv(t)
	b := newBrowser(t, e.ctx)
	b.login(e.srv.URL, user)
	return e, b
}

func (b *browser) logout() {
	b.run("logout", chromedp.Click(chromedp.CSS(`#logout`)), chromedp.WaitVisible(chromedp.CSS(`#login-user`)))
}

func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives headless Chromium; skipped with -short")
	}
	e := newEnv(t)
	b := newBrowser(t, e.ctx)
	base := e.srv.URL

	// Login page, then the cockpit.
	b.run("open", chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#login-user`)))
	b.shot("00-login")
	b.login(base, "leader")
	start := time.Now()
	b.run("cockpit renders", rendered("cockpit"), chromedp.WaitVisible(chromedp.CSS(`#recent-events`)))
	// No freshness reported by the warning engine: no stale banner.
	if n := eval[int](b, `document.querySelectorAll("#stale-banner").length`); n != 0 {
		t.Errorf("stale banner shown with no warnings freshness reported")
	}
	for l, n := range map[string]int{"red": wantActive["red"], "orange": wantActive["orange"], "yellow": 0, "blue": 0} {
		if got := b.text(`.lvl[data-level="` + l + `"] .v`); got != fmt.Sprint(n) {
			t.Errorf("cockpit %s warnings shows %q, want %d", l, got, n)
		}
	}
	if got := b.text(`[data-kpi="9"] .v`); !strings.HasPrefix(got, "2 / 3") {
		t.Errorf("KPI 9 shows %q, want 2 / 3 …", got)
	}
	if got := b.text(`[data-kpi="3"] .v`); !strings.HasPrefix(got, "— / 1") {
		t.Errorf("KPI 3 (no data) shows %q", got)
	}
	// Lower is better (minutes to acknowledge a response task): "≤ goal".
	if got := b.text(`[data-kpi="12"] .v`); !strings.HasPrefix(got, "3.5 / ≤ 5 分钟") {
		t.Errorf("KPI 12 (lower is better) shows %q, want 3.5 / ≤ 5 分钟 …", got)
	}
	ch := b.charts()
	ent := ch["enterprises_by_level_street"]
	if len(ent) != 4 {
		t.Fatalf("enterprise chart series: %+v", ent)
	}
	// Series are red, orange, yellow, blue; categories the streets in adcode order (001, 003, 007).
	want := [][]float64{{1, 0, 1}, {1, 0, 0}, {0, 1, 0}, {0, 1, 0}}
	for i, s := range ent {
		if fmt.Sprint(s.Data) != fmt.Sprint(want[i]) {
			t.Errorf("enterprise chart series %d (%s) = %v, want %v", i, s.Name, s.Data, want[i])
		}
	}
	if sum := sumSeries(ch["trends"], 1); sum != 5 {
		t.Errorf("trend of 12345 events sums to %v, want 5", sum)
	}
	// The XSS complaint shows as text and runs nothing.
	xss := eval[string](b, `String(window.__xss)`)
	imgs := eval[int](b, `document.querySelectorAll("#recent-events img, #recent-events script").length`)
	if xss != "undefined" || imgs != 0 {
		t.Errorf("XSS executed: window.__xss=%v, injected elements=%d", xss, imgs)
	}
	if txt := b.text(`#recent-events`); !strings.Contains(txt, `<script>window.__xss=1</script>`) || !strings.Contains(txt, `onerror=`) {
		t.Errorf("the complaint's text is not shown as text: %q", txt)
	}
	b.shot("01-cockpit")
	t.Logf("cockpit rendered in %s after login", time.Since(start))

	// Every chart card exports its data as CSV and the chart as PNG.
	dl := t.TempDir()
	b.run("downloads", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllow, DownloadPath: dl})
		return err
	}))
	data := b.download(dl, `[data-card="enterprises_by_level_street"] [data-export="csv"]`, "enterprises_by_level_street.csv")
	if !bytes.HasPrefix(data, []byte("\ufeff")) {
		t.Errorf("CSV export lacks the UTF-8 BOM (Excel): %q", data)
	}
	recs, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(data, []byte("\ufeff")))).ReadAll()
	if err != nil {
		t.Fatalf("CSV export: %v: %q", err, data)
	}
	col := map[string]int{}
	for i, c := range recs[0] {
		col[c] = i
	}
	// The words on the screen (等级 红色, 街道 and its name, 数量), each code in a column beside.
	got := map[string]string{}
	labels := map[string]bool{}
	for _, r := range recs[1:] {
		if len(col) == 5 {
			got[r[col["street_code"]]+"/"+r[col["level"]]] = r[col["数量"]]
			labels[r[col["街道"]]+"/"+r[col["等级"]]] = true
		}
	}
	if len(col) != 5 || len(recs) != 6 || got[st1+"/red"] != "1" || got[st1+"/orange"] != "1" || got[st3+"/blue"] != "1" || got[st7+"/red"] != "1" {
		t.Errorf("CSV export of the enterprise chart: %q", recs)
	}
	if !labels["西长安街街道/红色"] || !labels["新街口街道/蓝色"] {
		t.Errorf("CSV export without the labels shown on screen: %q", recs)
	}
	data = b.download(dl, `[data-card="enterprises_by_level_street"] [data-export="png"]`, "enterprises_by_level_street.png")
	if img, err := png.Decode(bytes.NewReader(data)); err != nil {
		t.Errorf("PNG export: %v", err)
	} else if r := img.Bounds(); r.Dx() < 400 || r.Dy() < 200 {
		t.Errorf("PNG export is %v", r)
	}

	// A warning pushed by the engine appears without reload.
	b.run("mark page", chromedp.Evaluate[chromedp.Void](`void (window.__noReload = "kept")`))
	e.pushWarning("W9", "red", "北京北站客流预计超过红色阈值（推送测试）")
	b.run("pushed warning", chromedp.WaitVisible(chromedp.CSS(`#live-warnings [data-warning-id="W9"]`)), chromedp.WaitVisible(chromedp.CSS(`[data-toast="W9"]`)))
	if txt := b.text(`#live-warnings [data-warning-id="W9"]`); !strings.Contains(txt, "推送测试") {
		t.Errorf("pushed warning text %q", txt)
	}
	if got := eval[string](b, `String(window.__noReload)`); got != "kept" {
		t.Errorf("the page reloaded to show the pushed warning (marker %q)", got)
	}
	b.shot("02-cockpit-pushed-warning")

	// Clicking a chart filters the others: a click on 新街口's bar (yellow,
	// category 1, value 0.5) sets the street filter; the warnings and the
	// trends follow.
	x, y := b.chartPixel("enterprises_by_level_street", `{xAxisIndex: 0, yAxisIndex: 0}`, `[1, 0.5]`)
	b.clickAt("click street bar", x, y, chromedp.Sleep(300*time.Millisecond), rendered("cockpit"))
	if got := eval[string](b, `document.querySelector("#f-street").value`); got != st3 {
		t.Errorf("street filter after clicking 新街口's bar = %q, want %s", got, st3)
	}
	if got := b.text(`.lvl[data-level="orange"] .v`); got != "1" {
		t.Errorf("street %s: orange = %q, want 1", st3, got)
	}
	if got := b.text(`.lvl[data-level="red"] .v`); got != "0" {
		t.Errorf("street %s: red = %q, want 0", st3, got)
	}
	if got := sumSeries(b.charts()["trends"], 1); got != 2 {
		t.Errorf("street %s: 12345 events = %v, want 2 (S3, S5)", st3, got)
	}
	b.shot("02b-cockpit-street-clicked")
	b.run("reset filters", chromedp.Click(chromedp.CSS(`#f-reset`)), chromedp.Sleep(300*time.Millisecond), rendered("cockpit"))

	// Clicking a day of the trends narrows the time range to it: today's
	// 12345 events are S1 only.
	days := eval[[]string](b, `citybrainChart("trends").getOption().xAxis[0].data`)
	today := e.date(0).Format(time.DateOnly)
	if len(days) == 0 || days[len(days)-1] != today {
		t.Fatalf("trend days %v, want the last one %s", days, today)
	}
	x, y = b.chartPixel("trends", `{seriesIndex: 1}`, fmt.Sprintf(`[%d, 1]`, len(days)-1))
	b.clickAt("click today in the trends", x, y, chromedp.Sleep(300*time.Millisecond), rendered("cockpit"))
	if from, to := eval[string](b, `document.querySelector("#f-from").value`), eval[string](b, `document.querySelector("#f-to").value`); from != today || to != today {
		t.Errorf("time range after clicking today = %s…%s, want %s", from, to, today)
	}
	if got := sumSeries(b.charts()["trends"], 1); got != 1 {
		t.Errorf("12345 events today = %v, want 1", got)
	}
	b.run("reset filters", chromedp.Click(chromedp.CSS(`#f-reset`)), chromedp.Sleep(300*time.Millisecond), rendered("cockpit"))

	// The industry filter: 餐饮 units are E2 (orange, 西长安街), E4 (blue,
	// 新街口) and E5 (red, 月坛); it is kept when going to the map.
	b.run("industry filter", chromedp.SetValue(chromedp.CSS(`#f-industry`), "餐饮"), chromedp.Evaluate[chromedp.Void](`void document.querySelector("#f-industry").dispatchEvent(new Event("change"))`),
		chromedp.Sleep(300*time.Millisecond), rendered("cockpit"))
	want = [][]float64{{0, 0, 1}, {1, 0, 0}, {0, 0, 0}, {0, 1, 0}}
	for i, s := range b.charts()["enterprises_by_level_street"] {
		if fmt.Sprint(s.Data) != fmt.Sprint(want[i]) {
			t.Errorf("industry 餐饮: enterprise chart series %d (%s) = %v, want %v", i, s.Name, s.Data, want[i])
		}
	}
	b.run("map keeps the filters", chromedp.Click(chromedp.CSS(`[data-nav="map"]`)), chromedp.Sleep(300*time.Millisecond), rendered("map"),
		chromedp.WaitReady(chromedp.CSS(`#layer-label-enterprises[data-layer-count="2"]`)))
	if got := b.text(`#layer-label-enterprises`); !strings.Contains(got, "(2 / 3)") {
		t.Errorf("map with industry 餐饮: enterprises label %q, want (2 / 3): E2, E5 of 3", got)
	}
	b.run("back to the cockpit", chromedp.Click(chromedp.CSS(`[data-nav="cockpit"]`)), chromedp.Sleep(300*time.Millisecond), rendered("cockpit"))
	if got := eval[string](b, `document.querySelector("#f-industry").value`); got != "餐饮" {
		t.Errorf("industry filter after going to the map and back: %q", got)
	}
	b.run("reset filters", chromedp.Click(chromedp.CSS(`#f-reset`)), chromedp.Sleep(300*time.Millisecond), rendered("cockpit"))

	// Security in the page: the session cookie is out of script's reach
	// (HttpOnly); the CSP blocks an injected inline script; a state-changing
	// request without the CSRF token is refused.
	if ck := eval[string](b, `document.cookie`); strings.Contains(ck, auth.SessionCookie) {
		t.Errorf("session cookie readable by script: %q", ck)
	}
	b.expectErrors("Content Security Policy", func() {
		if v := eval[string](b, `(() => { const s = document.createElement("script"); s.textContent = "window.__inline = 1"; document.body.appendChild(s); return String(window.__inline); })()`); v != "undefined" {
			t.Errorf("an injected inline script ran (CSP not enforced): %s", v)
		}
	})
	b.expectErrors("403", func() {
		if code := evalAsync[int](b, `fetch("/api/logout", {method: "POST"}).then(r => r.status)`); code != 403 {
			t.Errorf("POST without the CSRF token: %d, want 403", code)
		}
	})

	// English switch.
	b.run("english", chromedp.Click(chromedp.CSS(`#lang`)), chromedp.Sleep(300*time.Millisecond), rendered("cockpit"))
	if got := b.text(`[data-nav="cockpit"]`); got != "Cockpit" {
		t.Errorf("English nav: %q", got)
	}
	b.shot("03-cockpit-en")
	b.run("chinese", chromedp.Click(chromedp.CSS(`#lang`)), chromedp.Sleep(300*time.Millisecond), rendered("cockpit"))

	// One map: enterprises show red and orange units by default (E1, E2,
	// E5 of 5), all levels on demand; toggle the shelters layer; click
	// features for their details.
	b.run("map", chromedp.Navigate(base+"/#/map"), rendered("map"), chromedp.WaitReady(chromedp.CSS(`#layer-label-enterprises[data-layer-count="3"]`)))
	if got := b.text(`#layer-label-enterprises`); !strings.Contains(got, "(3 / 5)") {
		t.Errorf("enterprises label %q, want (3 / 5)", got)
	}
	b.shot("04a-map-default")
	b.run("all levels", chromedp.Click(chromedp.CSS(`#ent-all-levels`)), chromedp.WaitReady(chromedp.CSS(`#layer-label-enterprises[data-layer-count="5"]`)))
	b.run("toggle shelters", chromedp.Click(chromedp.CSS(`#layer-shelters`)), chromedp.WaitReady(chromedp.CSS(`#layer-label-shelters[data-layer-count="2"]`)))
	series := eval[[]string](b, `citybrainChartData().map.map(s => s.name)`)
	if !strings.Contains(strings.Join(series, ","), "应急避难场所") {
		t.Errorf("map series after toggling shelters: %v", series)
	}
	// A shelter: SH2 人定湖公园, class III, 3,000 people, 新街口.
	x, y = b.mapPixel(116.378, 39.951)
	b.clickAt("click shelter SH2", x, y, chromedp.WaitVisible(chromedp.CSS(`#feature-detail[data-id="SH2"]`)))
	if got := b.text(`#feature-title`); got != "人定湖公园应急避难场所" {
		t.Errorf("shelter details title %q", got)
	}
	for f, want := range map[string]string{"level": "Ⅲ类", "capacity_people": "3,000", "kind": "室外", "street_code": "新街口街道"} {
		if got := b.text(`#feature-detail [data-field="` + f + `"]`); !strings.HasSuffix(got, want) {
			t.Errorf("shelter details %s: %q, want …%s", f, got, want)
		}
	}
	b.shot("04b-map-shelter")
	// A venue: V2 北京北站, with the red warning pushed above.
	x, y = b.mapPixel(116.353, 39.944)
	b.clickAt("click venue V2", x, y, chromedp.WaitVisible(chromedp.CSS(`#feature-detail[data-id="V2"]`)))
	for f, want := range map[string]string{"kind": "火车站", "capacity_people": "20,000", "warning_level": "红色"} {
		if got := b.text(`#feature-detail [data-field="` + f + `"]`); !strings.HasSuffix(got, want) {
			t.Errorf("venue details %s: %q, want …%s", f, got, want)
		}
	}
	b.run("toggle venues off", chromedp.Click(chromedp.CSS(`#layer-venues`)), chromedp.WaitReady(chromedp.CSS(`#layer-label-venues[data-layer-count=""]`)))
	// An enterprise: E1, red, 88; its link opens its risk portrait.
	x, y = b.mapPixel(116.372, 39.905)
	b.clickAt("click enterprise E1", x, y, chromedp.WaitVisible(chromedp.CSS(`#feature-detail[data-id="E1"]`)))
	if got := b.text(`#feature-title`); got != "京西化工仓储有限公司" {
		t.Errorf("enterprise details title %q", got)
	}
	for f, want := range map[string]string{"level": "红色", "score": "88", "industry": "危险化学品", "street_code": "西长安街街道"} {
		if got := b.text(`#feature-detail [data-field="` + f + `"]`); !strings.HasSuffix(got, want) {
			t.Errorf("enterprise details %s: %q, want …%s", f, got, want)
		}
	}
	b.run("factors of E1", chromedp.WaitVisible(chromedp.CSS(`#feature-detail [data-field="top_factors"]`)))
	if got := b.text(`#feature-detail [data-field="top_factors"]`); !strings.Contains(got, "逾期重大隐患 +20") {
		t.Errorf("enterprise details factors %q", got)
	}
	b.shot("04-map")
	b.run("enterprise from the map", chromedp.Click(chromedp.CSS(`#feature-link`)), rendered("enterprise"))
	if got := b.text(`#enterprise-score`); got != "88" {
		t.Errorf("E1 from the map: score %q", got)
	}

	// Clicking a street on the map filters the page by it (and zooms to it).
	streets, err := geo.LoadStreets()
	if err != nil {
		t.Fatal(err)
	}
	dsh, ok := streets.Locate(116.335, 39.935)
	if !ok {
		t.Fatal("116.335, 39.935 is in no street")
	}
	b.run("map again", chromedp.Navigate(base+"/#/map"), rendered("map"))
	x, y = b.mapPixel(116.335, 39.935)
	b.clickAt("click a street", x, y, chromedp.Sleep(300*time.Millisecond), rendered("map"))
	if got := eval[string](b, `document.querySelector("#f-street").value`); got != dsh.Adcode {
		t.Errorf("street filter after clicking %s on the map: %q, want %s", dsh.NameZH, got, dsh.Adcode)
	}
	b.run("reset filters", chromedp.Click(chromedp.CSS(`#f-reset`)), chromedp.Sleep(300*time.Millisecond), rendered("map"))

	// Above dashboards' threshold of points (lowered here to 2) the
	// district view shows enterprises per street; clicking a street's
	// bubble narrows to that street, zooming in shows the units.
	b.run("cluster threshold", chromedp.Evaluate[chromedp.Void](`void localStorage.setItem("citybrain.map.clusterAbove", "2")`),
		chromedp.Navigate(base+"/#/map"), chromedp.Reload(), rendered("map"), chromedp.WaitReady(chromedp.CSS(`[data-card="map"][data-clustered="1"]`)))
	var bubbles []float64
	for _, s := range b.charts()["map"] {
		if s.Name == "企业（风险等级）" {
			bubbles = s.Data
		}
	}
	// Each bubble's label is inside it: drawn inside, and the circle wider than the label's lines.
	if bad := eval[[]string](b, `(() => { const c = citybrainChart("map"), o = c.getOption(), idx = o.series.findIndex((x) => x.id === "enterprises:streets"), s = o.series[idx];
		const out = []; if (s.label.position !== "inside") out.push("position " + s.label.position);
		const ctx = document.createElement("canvas").getContext("2d"); ctx.font = "bold 12px sans-serif";
		const sm = c.getModel().getSeriesByIndex(idx).getData();
		for (let i = 0; i < s.data.length; i++) {
			const size = sm.getItemVisual(i, "symbolSize"), d = Array.isArray(size) ? size[0] : size;
			const lines = String(s.label.formatter({ dataIndex: i })).split("\n").map((l) => l.replace(/\{\w+\|([^}]*)\}/g, "$1"));
			const w = Math.max(...lines.map((l) => ctx.measureText(l).width));
			if (d < w) out.push(s.data[i].name + ": bubble " + d + " px, label " + Math.round(w) + " px");
		}
		return out; })()`); len(bad) > 0 {
		t.Errorf("street bubbles' labels outside their circles: %v", bad)
	}
	if fmt.Sprint(bubbles) != "[2 1]" && fmt.Sprint(bubbles) != "[1 2]" {
		t.Errorf("enterprises per street (red, orange): %v, want 西长安街 2, 月坛 1", bubbles)
	}
	b.shot("04c-map-per-street")
	cx, cy := b.mapPixel(116.37, 39.915)
	b.wheel(cx, cy, 12, -120)
	b.run("zoomed in", chromedp.WaitReady(chromedp.CSS(`[data-card="map"][data-clustered=""]`)))
	b.run("back to the district", chromedp.Navigate(base+"/#/map"), chromedp.Reload(), rendered("map"), chromedp.WaitReady(chromedp.CSS(`[data-card="map"][data-clustered="1"]`)))
	x, y = b.mapPixel((116.372+116.375)/2, (39.905+39.903)/2)
	b.clickAt("click 西长安街's bubble", x, y, chromedp.Sleep(300*time.Millisecond), rendered("map"), chromedp.WaitReady(chromedp.CSS(`[data-card="map"][data-clustered=""]`)))
	if got := eval[string](b, `document.querySelector("#f-street").value`); got != st1 {
		t.Errorf("street filter after clicking 西长安街's bubble: %q", got)
	}
	b.shot("04d-map-street")
	b.run("cluster threshold off", chromedp.Evaluate[chromedp.Void](`void localStorage.removeItem("citybrain.map.clusterAbove")`), chromedp.Click(chromedp.CSS(`#f-reset`)), chromedp.Sleep(300*time.Millisecond), rendered("map"))

	// Risk portrait: street → community → enterprise.
	b.run("risk", chromedp.Navigate(base+"/#/risk"), rendered("risk"), chromedp.WaitVisible(chromedp.CSS(`a[data-street="`+st1+`"]`)))
	b.shot("05-risk-district")
	b.run("drill to street", chromedp.Click(chromedp.CSS(`a[data-street="`+st1+`"]`)), chromedp.WaitVisible(chromedp.CSS(`a[data-community="C001"]`)))
	b.run("drill to community", chromedp.Click(chromedp.CSS(`a[data-community="C001"]`)), chromedp.WaitVisible(chromedp.CSS(`a[data-enterprise="E1"]`)))
	b.shot("06-risk-community")
	b.run("drill to enterprise", chromedp.Click(chromedp.CSS(`a[data-enterprise="E1"]`)), rendered("enterprise"))
	level := eval[string](b, `document.querySelector("#enterprise-level").dataset.level`)
	if level != "red" || b.text(`#enterprise-score`) != "88" {
		t.Errorf("E1 shows level %q score %q, want red 88", level, b.text(`#enterprise-score`))
	}
	if f := b.text(`#factors`); !strings.Contains(f, "逾期重大隐患 +20") {
		t.Errorf("E1 factors %q", f)
	}
	if h := b.charts()["history"]; len(h) != 1 || fmt.Sprint(h[0].Data) != "[70 80 88]" {
		t.Errorf("E1 history chart %+v", h)
	}
	b.shot("07-enterprise")
	b.run("english enterprise", chromedp.Click(chromedp.CSS(`#lang`)), chromedp.Sleep(300*time.Millisecond), rendered("enterprise"))
	if got := b.text(`[data-field="employees"]`); got != "Employees：30" {
		t.Errorf("English enterprise page: %q, want Employees：30", got)
	}
	b.shot("07b-enterprise-en")
	b.run("english map", chromedp.Click(chromedp.CSS(`[data-nav="map"]`)), chromedp.Sleep(300*time.Millisecond), rendered("map"))
	b.shot("07c-map-en")
	b.run("chinese again", chromedp.Click(chromedp.CSS(`#lang`)), chromedp.Sleep(300*time.Millisecond), rendered("map"))

	// Crowd flow of V1.
	b.run("crowd", chromedp.Navigate(base+"/#/crowd/V1"), rendered("crowd"))
	if c := b.charts()["crowd"]; len(c) < 1 || fmt.Sprint(c[0].Data) != fmt.Sprint(wantCrowd) {
		t.Errorf("V1 actual people %+v, want %v", c, wantCrowd)
	}
	b.shot("08-crowd")

	// Data health.
	b.run("health", chromedp.Navigate(base+"/#/health"), rendered("health"))
	if txt := b.text(`[data-card="health"]`); !strings.Contains(txt, "raw.city_events") {
		t.Errorf("health page lacks raw.city_events: %q", txt)
	}
	b.shot("09-health")

	// SQL console (analyst): shown only when the SQL access service serves
	// POST /api/sql in this process.
	b.logout()
	b.login(base, "analyst")
	if sqlServed(e) {
		b.run("sql", chromedp.Navigate(base+"/#/sql"), rendered("sql"),
			chromedp.SetValue(chromedp.CSS(`#sql-text`), "SELECT count(*) AS n FROM raw.city_events"),
			chromedp.Click(chromedp.CSS(`#sql-run`)), chromedp.WaitVisible(chromedp.CSS(`#sql-count`)))
		if got := b.text(`#sql-result td`); got != "5" {
			t.Errorf("SQL console count = %q, want 5", got)
		}
		b.shot("10-sql")
	} else {
		if n := eval[int](b, `document.querySelectorAll('[data-nav="sql"]').length`); n != 0 {
			t.Error("SQL console offered although no service serves /api/sql")
		}
		t.Log("no SQL access service in this test process: the SQL console is left out (as the issue asks)")
	}

	// Admin manages users.
	b.logout()
	b.login(base, "admin")
	b.run("admin", chromedp.Navigate(base+"/#/admin"), rendered("admin"),
		chromedp.SendKeys(chromedp.CSS(`#new-user`), "wang"), chromedp.SendKeys(chromedp.CSS(`#new-password`), "wang-password-1"),
		chromedp.Click(chromedp.CSS(`#add-user`)), chromedp.WaitVisible(chromedp.CSS(`tr[data-user="wang"]`)))
	if _, ok := e.rt.Auth.Get("wang"); !ok {
		t.Error("user wang not created")
	}
	b.shot("11-admin")

	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// sumSeries adds up a chart's series i.
func sumSeries(series []struct {
	Name string
	Data []float64
}, i int) float64 {
	if i >= len(series) {
		return -1
	}
	sum := 0.0
	for _, v := range series[i].Data {
		sum += v
	}
	return sum
}

// sqlServed reports whether a service mounted POST /api/sql on the mux.
func sqlServed(e *env) bool {
	req, _ := http.NewRequest(http.MethodPost, "/api/sql", nil)
	_, pattern := e.rt.Mux.Handler(req)
	return pattern != ""
}

// The extracts page: an admin sees every extract, runs one now and
// downloads its file (bilingual header, BOM); a department's user sees only
// the department's; a leader has no such page.
func TestBrowserExtracts(t *testing.T) {
	if testing.Short() {
		t.Skip("drives headless Chromium; skipped with -short")
	}
	e := newEnvCfg(t, false, func(c *config.Config) {
		c.Extracts.Definitions = []extracts.Definition{
			{Name: "emergency_incidents", Title: "应急管理局每日警情", Department: "emergency", Format: "csv",
				Source: extracts.Source{Table: "raw.incidents"}, OrderBy: []string{"id"}, Schedule: extracts.ScheduleConfig{Cron: "0 6 * * *"}},
			{Name: "water_warnings", Title: "水务局预警", Department: "water", Format: "xlsx",
				Source: extracts.Source{Table: "marts.warnings"}, OrderBy: []string{"warning_id", "transition_at"}},
		}
	})
	b := newBrowser(t, e.ctx)
	base := e.srv.URL
	rows := func() []string {
		return eval[[]string](b, `[...document.querySelectorAll("#extracts [data-extract]")].map(x => x.getAttribute("data-extract"))`)
	}

	b.login(base, "admin")
	b.run("extracts page", chromedp.Navigate(base+"/#/extracts"), rendered("extracts"), chromedp.WaitVisible(chromedp.CSS(`#extracts`)))
	if got := rows(); strings.Join(got, ",") != "emergency_incidents,water_warnings" {
		t.Errorf("admin sees extracts %v", got)
	}
	if got := b.text(`#extracts tbody tr:first-child`); !strings.Contains(got, "尚未运行") {
		t.Errorf("before any run the row says %q", got)
	}
	b.run("run now", chromedp.Click(chromedp.CSS(`[data-run="emergency_incidents"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#extracts [data-download]`)), chromedp.WaitVisible(chromedp.CSS(`#extract-history table`)))
	head := evalAsync[string](b, `fetch(document.querySelector("#extracts [data-download]").href).then(r => r.arrayBuffer()).then(b => new TextDecoder("utf-8", {ignoreBOM: true}).decode(b).split("\r\n")[0])`)
	if !strings.HasPrefix(head, "\ufeff警情编号 id,接警时间 received_at") {
		t.Errorf("downloaded file starts %q, want the BOM and the bilingual header", head)
	}
	if n := eval[int](b, `document.querySelectorAll("#extract-history tbody tr").length`); n != 1 {
		t.Errorf("history shows %d runs, want 1", n)
	}
	if msg := b.text(`#extracts-msg`); msg != "" {
		t.Errorf("run now reported %q", msg)
	}
	b.shot("20-extracts-admin")
	b.logout()

	b.login(base, "dept_water")
	b.run("extracts page (water)", chromedp.Navigate(base+"/#/extracts"), rendered("extracts"), chromedp.WaitVisible(chromedp.CSS(`#extracts`)))
	if got := rows(); strings.Join(got, ",") != "water_warnings" {
		t.Errorf("the water department sees extracts %v, want only its own", got)
	}
	// The emergency extract is not the water department's.
	if code := evalAsync[int](b, `fetch("/api/extracts/emergency_incidents").then(r => r.status)`); code != 404 {
		t.Errorf("the water department reading the emergency extract: HTTP %d, want 404", code)
	}
	b.shot("21-extracts-department")
	b.logout()

	b.login(base, "leader")
	if n := eval[int](b, `document.querySelectorAll('[data-nav="extracts"]').length`); n != 0 {
		t.Errorf("a leader has the extracts page in the menu")
	}
}

// TestBrowserFreshness: the warning engine days behind — the cockpit shows
// a red banner with the age in words, counts no warning as live and marks
// the list; the banner goes away without a reload when the engine catches
// up (live stream); 数据健康 shows the engine's row red and the page not
// green, then green.
func TestBrowserFreshness(t *testing.T) {
	if testing.Short() {
		t.Skip("drives headless Chromium; skipped with -short")
	}
	e := newEnv(t)
	now := time.Now()
	e.rt.Fresh.Set(freshness.State{Path: freshness.Path{Component: "source", Name: "city_management", Table: "raw.city_events"}, EventTime: now.Add(-time.Minute), Committed: now})
	e.rt.Fresh.Set(freshness.State{Path: freshness.Path{Component: "models", Name: "runner", Table: "marts.enterprise_risk"}, Committed: now})
	e.rt.Fresh.Set(freshness.State{Path: freshness.Path{Component: "query", Name: "pgwire", Table: "marts.warnings"}})
	e.staleWarnings(3*time.Hour+12*time.Minute, 48000)
	b := newBrowser(t, e.ctx)
	base := e.srv.URL
	b.login(base, "leader")
	b.run("stale banner", chromedp.WaitVisible(chromedp.CSS(`#stale-banner`)))
	if txt := b.text(`#stale-banner`); !strings.Contains(txt, "预警数据已滞后 3.2 小时（最新事件 ") || !strings.Contains(txt, "Warnings are 3.2 h behind (newest event ") {
		t.Errorf("stale banner says %q", txt)
	}
	// At the top of the page, before every card.
	if first := eval[string](b, `document.querySelector("[data-page=cockpit]").firstElementChild.id`); first != "stale-banner" {
		t.Errorf("first element of the cockpit is %q, want the banner", first)
	}
	// Every active warning is older than the newest data by more than a minute: none is live.
	for l, n := range wantActive {
		if got := b.text(`.lvl[data-level="` + l + `"] .v`); got != "0" {
			t.Errorf("%s live warnings %q, want 0 (the engine is 3 h behind)", l, got)
		}
		if got := eval[string](b, `document.querySelector('.lvl[data-level="`+l+`"] .stale-n')?.dataset.stale || ""`); got != fmt.Sprint(n) {
			t.Errorf("%s warnings not live %q, want %d", l, got, n)
		}
	}
	if n := eval[int](b, `document.querySelectorAll("#live-warnings .w.notlive .tag-notlive").length`); n != 2 {
		t.Errorf("%d warnings marked 非实时, want 2", n)
	}
	if txt := b.text(`#live-warnings [data-warning-id="W1"] .times`); !strings.HasPrefix(txt, "事件时间 ") || !strings.Contains(txt, "处理于 ") {
		t.Errorf("warning W1 times %q: want the event time first, the processing time apart", txt)
	}
	if lv := eval[string](b, `document.querySelector('#freshness-paths tr[data-path="warnings:engine"]')?.dataset.level || ""`); lv != "error" {
		t.Errorf("cockpit freshness card: engine row %q, want error", lv)
	}
	b.shot("30-cockpit-stale")
	b.run("english", chromedp.Click(chromedp.CSS(`#lang`)), chromedp.Sleep(300*time.Millisecond), rendered("cockpit"), chromedp.WaitVisible(chromedp.CSS(`#stale-banner`)))
	b.shot("30b-cockpit-stale-en")
	b.run("chinese", chromedp.Click(chromedp.CSS(`#lang`)), chromedp.Sleep(300*time.Millisecond), rendered("cockpit"))

	b.run("health stale", chromedp.Navigate(base+"/#/health"), rendered("health"), chromedp.WaitVisible(chromedp.CSS(`#health-paths`)))
	if lv := eval[string](b, `document.querySelector("#health-status").dataset.level`); lv != "error" {
		t.Errorf("health page level %q, want error", lv)
	}
	if lv := eval[string](b, `document.querySelector('tr[data-path="warnings:engine"]')?.dataset.level || ""`); lv != "error" {
		t.Errorf("warning engine row level %q, want error", lv)
	}
	if txt := b.text(`tr[data-path="warnings:engine"]`); !strings.Contains(txt, "预警引擎") || !strings.Contains(txt, "3.2 小时") || !strings.Contains(txt, "48,000") {
		t.Errorf("warning engine row %q: want 预警引擎, 3.2 小时, 48,000", txt)
	}
	for _, k := range []string{"source:city_management", "models", "query"} {
		if n := eval[int](b, `document.querySelectorAll('tr[data-path="`+k+`"]').length`); n != 1 {
			t.Errorf("health page: %d rows %s, want 1", n, k)
		}
	}
	b.shot("31-health-stale")

	// The engine catches up: the banner leaves the open cockpit without a reload.
	b.run("cockpit", chromedp.Navigate(base+"/#/cockpit"), rendered("cockpit"), chromedp.WaitVisible(chromedp.CSS(`#stale-banner`)))
	b.run("mark page", chromedp.Evaluate[chromedp.Void](`void (window.__noReload = "kept")`))
	e.caughtUpWarnings()
	b.run("banner gone", chromedp.Poll[chromedp.Void](`document.querySelector("#stale-banner") === null`, chromedp.WithPollingTimeout(10*time.Second)),
		chromedp.Poll[chromedp.Void](`document.querySelector('#freshness-paths tr[data-path="warnings:engine"]')?.dataset.level === "ok"`, chromedp.WithPollingTimeout(10*time.Second)))
	if got := eval[string](b, `String(window.__noReload)`); got != "kept" {
		t.Errorf("the page reloaded (marker %q)", got)
	}
	for l, n := range wantActive {
		if got := b.text(`.lvl[data-level="` + l + `"] .v`); got != fmt.Sprint(n) {
			t.Errorf("caught up: %s live warnings %q, want %d", l, got, n)
		}
	}
	if n := eval[int](b, `document.querySelectorAll("#live-warnings .notlive").length`); n != 0 {
		t.Errorf("caught up: %d warnings still marked not live", n)
	}
	b.shot("32-cockpit-caught-up")
	b.run("health ok", chromedp.Navigate(base+"/#/health"), rendered("health"), chromedp.WaitVisible(chromedp.CSS(`#health-paths`)))
	if lv := eval[string](b, `document.querySelector("#health-status").dataset.level`); lv != "ok" {
		t.Errorf("caught up: health page level %q, want ok", lv)
	}
	b.shot("33-health-ok")
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}

// TestBrowserScreens: on a phone (390 px) nothing is wider than the screen
// and the nav is one line of whole words; on a 1920×1080 and a 3840×2160
// video wall in 大屏 mode the type grows with the screen and the charts
// fill its height. Screenshots of each.
func TestBrowserScreens(t *testing.T) {
	e, b := browserAs(t, "leader")
	base := e.srv.URL
	for _, sc := range []struct {
		name  string
		w, h  int64
		big   bool
		pages []string
	}{
		{"phone", 390, 844, false, []string{"cockpit", "map", "risk", "crowd", "health"}},
		{"wall-1080p", 1920, 1080, true, []string{"cockpit", "health"}},
		{"wall-4k", 3840, 2160, true, []string{"cockpit"}},
	} {
		vp := chromedp.EmulateViewport(sc.w, sc.h)
		if sc.name == "phone" {
			vp = chromedp.EmulateViewport(sc.w, sc.h, chromedp.EmulateMobile, chromedp.EmulateScale(3))
		}
		q := "?big=0"
		if sc.big {
			q = "?big=1"
		}
		for _, page := range sc.pages {
			b.run(sc.name+" "+page, vp, chromedp.Navigate(base+"/"+q+"#/"+page), rendered(page))
			time.Sleep(300 * time.Millisecond) // charts settle after a resize
			b.shot("screen-" + sc.name + "-" + page)
			if over := eval[float64](b, `document.documentElement.scrollWidth - window.innerWidth`); over > 1 {
				t.Errorf("%s %s: the page is %.0f px wider than the %d px screen", sc.name, page, over, sc.w)
			}
			// Each nav link is one line of whole words.
			if bad := eval[[]string](b, `[...document.querySelectorAll("header.top nav a")].filter(a => {
				const r = a.getBoundingClientRect(), fs = parseFloat(getComputedStyle(a).fontSize);
				return a.getClientRects().length !== 1 || r.height > 2.2 * fs; }).map(a => a.textContent)`); len(bad) > 0 {
				t.Errorf("%s %s: nav links broken over lines: %q", sc.name, page, bad)
			}
			if sc.big && page == "cockpit" {
				fs := eval[float64](b, `parseFloat(getComputedStyle(document.body).fontSize)`)
				if want := float64(sc.w) * 0.0094; fs < want-1 {
					t.Errorf("%s: body text %.1f px, want ≥ %.0f px on a %d px wall", sc.name, fs, want, sc.w)
				}
				kpi := eval[float64](b, `parseFloat(getComputedStyle(document.querySelector(".kpi .v, .lvl .v")).fontSize)`)
				if kpi < 2*fs-1 {
					t.Errorf("%s: key figures %.1f px, want ≥ twice the text (%.1f px)", sc.name, kpi, fs)
				}
				if h := eval[float64](b, `Math.max(...[...document.querySelectorAll(".chart")].map(c => c.getBoundingClientRect().height))`); h < 0.3*float64(sc.h) {
					t.Errorf("%s: the tallest chart is %.0f px of a %d px screen", sc.name, h, sc.h)
				}
				if sizes := eval[[]float64](b, `window.citybrainAxisFontSizes().filter(x => x > 0)`); len(sizes) == 0 || slices.Min(sizes) < 0.8*fs {
					t.Errorf("%s: chart axis labels %v px, want ≥ %.0f px (the page's text)", sc.name, sizes, 0.8*fs)
				}
				if got := eval[float64](b, `document.documentElement.scrollHeight`); got < 0.95*float64(sc.h) {
					t.Errorf("%s: the page fills %.0f of %d px", sc.name, got, sc.h)
				}
			}
		}
	}
	b.run("back to normal", chromedp.EmulateViewport(1600, 1000), chromedp.Navigate(base+"/?big=0#/cockpit"), rendered("cockpit"))
	if eval[bool](b, `document.documentElement.classList.contains("big")`) {
		t.Error("?big=0 left 大屏 mode on")
	}
	// A range ending before it starts: said at the filters, the page kept.
	cards := eval[int](b, `document.querySelectorAll("#page .card").length`)
	eval[bool](b, `(() => { const f = document.getElementById("f-from"), t = document.getElementById("f-to");
		f.value = "2026-12-05"; t.value = "2026-12-01"; t.dispatchEvent(new Event("change")); return true; })()`)
	time.Sleep(200 * time.Millisecond)
	if msg := b.text("#f-error"); !strings.Contains(msg, "结束日期早于开始日期") {
		t.Errorf("reversed date range: the filters say %q", msg)
	}
	if n := eval[int](b, `document.querySelectorAll("#page .card").length`); n != cards || n == 0 {
		t.Errorf("reversed date range: %d cards on the page, were %d", n, cards)
	}
	b.shot("screen-reversed-range")
}

// TestBrowserLoading: while an answer is on its way every panel says it is
// loading — the page's placeholders on a page's first answer, the venue's
// panel while its series load, a map layer being added — and no
// placeholder is left once the answers are in.
func TestBrowserLoading(t *testing.T) {
	e, b := browserAs(t, "leader")
	base := e.srv.URL
	b.run("cockpit", chromedp.Navigate(base+"/#/cockpit"), rendered("cockpit"))
	holdPath := func(prefix string) func() {
		ch := make(chan struct{})
		f := func(path string) <-chan struct{} {
			if strings.HasPrefix(path, prefix) {
				return ch
			}
			return nil
		}
		e.hold.Store(&f)
		var once sync.Once
		return func() { once.Do(func() { e.hold.Store(nil); close(ch) }) }
	}
	waitLoading := func(what, sel string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			t.Fatalf("%s: no loading state (%s): %v", what, sel, err)
		}
		if txt := b.text(sel); !strings.Contains(txt, "加载中") {
			t.Errorf("%s: loading state says %q, want 加载中…", what, txt)
		}
	}
	for _, pg := range []struct{ page, api string }{{"risk", "/api/dash/risk"}, {"health", "/api/dash/health"}, {"crowd", "/api/dash/crowd"}} {
		release := holdPath(pg.api)
		b.run("open "+pg.page, chromedp.Navigate(base+"/#/"+pg.page))
		waitLoading(pg.page, "#loading [data-loading]")
		if n := eval[int](b, `document.querySelectorAll("#loading [data-loading]").length`); n < 3 {
			t.Errorf("%s: %d placeholder panels, want the page's panels", pg.page, n)
		}
		b.shot("loading-" + pg.page)
		release()
		b.run(pg.page+" rendered", rendered(pg.page))
		if n := eval[int](b, `document.querySelectorAll("[data-loading]").length`); n != 0 {
			t.Errorf("%s: %d loading placeholders left after rendering", pg.page, n)
		}
	}
	// The venue's series load after the list: its panel says so meanwhile.
	release := holdPath("/api/dash/crowd/")
	b.run("crowd V2", chromedp.Navigate(base+"/#/crowd/V2"))
	waitLoading("venue panel", "#page [data-loading]")
	release()
	b.run("crowd V2 rendered", rendered("crowd"))
	// A map layer switched on: the layer list says it is loading.
	b.run("map", chromedp.Navigate(base+"/#/map"), rendered("map"))
	if eval[bool](b, `document.getElementById("layer-incidents").checked`) {
		b.run("incidents off", chromedp.Click(chromedp.CSS("#layer-incidents")))
	}
	release = holdPath("/api/dash/map/incidents")
	b.run("incidents on", chromedp.Click(chromedp.CSS("#layer-incidents")))
	waitLoading("map layer", "#map-hint")
	release()
	time.Sleep(300 * time.Millisecond)
	if txt := b.text("#map-hint"); strings.Contains(txt, "加载中") {
		t.Errorf("map hint still says %q after the layer loaded", txt)
	}
}

// TestBrowserReloads: a leader reloading the cockpit with another query
// (?big=1, a shared link) ten times in a row. Each page left stayed in the
// back-forward cache with its live stream open; the sixth took the last of
// the six connections the browser allows per server and the next page
// never loaded. Pages now close their stream when left.
func TestBrowserReloads(t *testing.T) {
	e, b := browserAs(t, "leader")
	for i := 0; i < 10; i++ {
		b.run(fmt.Sprintf("reload %d", i), chromedp.Navigate(fmt.Sprintf("%s/?n=%d#/cockpit", e.srv.URL, i)), rendered("cockpit"))
	}
}
