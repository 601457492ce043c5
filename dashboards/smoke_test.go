package dashboards_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestSmokeRunning walks every page of a running citybrain serve (make run)
// as admin, with screenshots, and fails on console errors or page errors.
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
	for _, p := range []string{"cockpit", "map", "risk", "crowd", "health", "sql", "extracts", "admin"} {
		b.run(p, chromedp.Navigate(base+"/#/"+p), chromedp.Sleep(200*time.Millisecond), rendered(p))
		if n := eval[int](b, `document.querySelectorAll("#page-error").length`); n > 0 {
			t.Errorf("%s: %s", p, b.text("#page-error"))
		}
		missing := eval[[]string](b, `[...document.querySelectorAll("[data-missing]")].map(e => e.closest("[data-card]")?.dataset.card + ": " + e.dataset.missing + " " + e.title)`)
		if len(missing) > 0 {
			t.Logf("%s: sections without data: %s", p, strings.Join(missing, "; "))
		}
		b.shot("smoke-" + p)
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("console errors:\n%s", strings.Join(errs, "\n"))
	}
}
