package dashboards_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestSmokeRunning walks every page of a running citybrain serve (make run)
// as admin (or CITYBRAIN_DASH_USER), with screenshots, and fails on console
// errors, page errors and words of the other language in either language.
// It runs only when CITYBRAIN_DASH_URL is set, e.g.
//
//	CITYBRAIN_DASH_URL=http://127.0.0.1:8080 CITYBRAIN_SCREENSHOTS=/tmp/shots go test -run TestSmokeRunning -v ./dashboards/
func TestSmokeRunning(t *testing.T) {
	base := os.Getenv("CITYBRAIN_DASH_URL")
	if base == "" {
		t.Skip("set CITYBRAIN_DASH_URL to a running citybrain serve")
	}
	user := os.Getenv("CITYBRAIN_DASH_USER")
	if user == "" {
		user = "admin"
	}
	b := newBrowser(t, t.Context())
	b.login(strings.TrimSuffix(base, "/"), user)
	for _, p := range []string{"cockpit", "dept", "map", "risk", "crowd", "health", "sql", "extracts", "admin"} {
		if user == "dept_water" && (p == "sql" || p == "admin") {
			continue
		}
		b.run(p, chromedp.Navigate(base+"/#/"+p), chromedp.Sleep(200*time.Millisecond), rendered(p))
		if n := eval[int](b, `document.querySelectorAll("#page-error").length`); n > 0 {
			t.Errorf("%s: %s", p, b.text("#page-error"))
		}
		missing := eval[[]string](b, `[...document.querySelectorAll("[data-missing]")].map(e => e.closest("[data-card]")?.dataset.card + ": " + e.dataset.missing + " " + e.title)`)
		if len(missing) > 0 {
			t.Logf("%s: sections without data: %s", p, strings.Join(missing, "; "))
		}
		b.shot("smoke-" + p)
		// The page's language, in both: on make run's data, not a fixture's.
		for _, lang := range []string{"zh", "en"} {
			b.run(p+" "+lang, chromedp.Evaluate[chromedp.Void](`localStorage.setItem("citybrain.lang", "`+lang+`")`),
				chromedp.Navigate(base+"/?l="+lang+"#/"+p), rendered(p))
			for _, pr := range languageProblems(b, lang) {
				t.Errorf("%s, #/%s: %s", lang, p, pr)
			}
		}
		b.run("zh", chromedp.Evaluate[chromedp.Void](`localStorage.setItem("citybrain.lang", "zh")`))
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
