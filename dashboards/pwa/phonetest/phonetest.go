// Package phonetest drives the platform's phone apps (dashboards/responder,
// dashboards/inspector) in headless Chromium emulating a 390×844 phone with
// touch, for their tests: the page's own errors are collected, every step
// has a timeout, a failed step leaves a screenshot.
package phonetest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/device"
)

// ChromiumPath finds Chromium (make test-deps installs Debian's chromium),
// failing the test when there is none.
func ChromiumPath(t testing.TB) string {
	t.Helper()
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	t.Fatal("chromium not found: run make test-deps (apt-get install chromium)")
	return ""
}

// Phone is a 390×844 Android phone at device scale 3, with touch.
var Phone = device.Info{
	Name:      "CityBrain test phone",
	UserAgent: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
	Width:     390, Height: 844, Scale: 3, Mobile: true, Touch: true,
}

// Browser is one headless Chromium emulating Phone, in zh-CN.
type Browser struct {
	T   *testing.T
	Ctx context.Context
	// Name prefixes the screenshots' file names (responder-tasks.png).
	Name string
	// Step bounds each Do.
	Step time.Duration

	mu  sync.Mutex
	exc []string
	dir string
}

// New starts the browser; it is closed when the test ends.
func New(t *testing.T, name string, step time.Duration) *Browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(ChromiumPath(t)), chromedp.NoSandbox,
		chromedp.WindowSize(int(Phone.Width), int(Phone.Height)), chromedp.Flag("lang", "zh-CN"))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	bctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	b := &Browser{T: t, Ctx: bctx, Name: name, Step: step, dir: t.TempDir()}
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank"), chromedp.Emulate(Phone)); err != nil {
		t.Fatal(err)
	}
	msgs := chromedp.Console(bctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			// The page's own errors; the browser's network log (a 401
			// before login, a 400, refused connections offline) is expected.
			if m.Type == chromedp.ConsoleException || (m.Type == chromedp.ConsoleError && m.Source != "network") {
				b.mu.Lock()
				b.exc = append(b.exc, fmt.Sprintf("%s: %s (%s:%d)", m.Type, m.Text, m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// Do runs actions within Step; a failure saves a screenshot and ends the
// test, with the page's errors.
func (b *Browser) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.T.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, b.Step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.Shot("failed")
		b.T.Fatalf("%s: %v (page errors: %v)", what, err, b.Errors())
	}
}

// Errors are the page's errors so far.
func (b *Browser) Errors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.exc...)
}

// Eval evaluates a JavaScript expression in the page.
func Eval[T any](b *Browser, expr string, opts ...chromedp.EvaluateOption) T {
	b.T.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, opts...))
	if err != nil {
		b.T.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// Text is the text of the first element sel matches.
func (b *Browser) Text(sel string) string {
	b.T.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(chromedp.CSS(sel)))
	if err != nil {
		b.T.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// Count is how many elements sel matches.
func (b *Browser) Count(sel string) int {
	b.T.Helper()
	return Eval[int](b, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
}

// Shot saves a screenshot in the test's directory and, when set, in
// CITYBRAIN_SCREENSHOTS, as <Name>-<name>.png.
func (b *Browser) Shot(name string) {
	ctx, cancel := context.WithTimeout(b.Ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.T.Logf("screenshot %s: %v", name, err)
		return
	}
	dirs := []string{b.dir}
	if d := os.Getenv("CITYBRAIN_SCREENSHOTS"); d != "" {
		os.MkdirAll(d, 0o755)
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		p := filepath.Join(d, b.Name+"-"+name+".png")
		if err := os.WriteFile(p, png, 0o644); err != nil {
			b.T.Error(err)
			continue
		}
		b.T.Logf("screenshot %s", p)
	}
}

// Fits asserts the page has no horizontal scroll at the phone's width and
// that every visible element targets matches is a thumb's size (44 px).
func (b *Browser) Fits(where, targets string) {
	b.T.Helper()
	if w := Eval[int64](b, `Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)`); w > Phone.Width {
		b.T.Errorf("%s: scrollWidth %d > %d (horizontal scroll)", where, w, Phone.Width)
	}
	small := Eval[[]string](b, fmt.Sprintf(`[...document.querySelectorAll(%q)]
		.filter((e) => e.getClientRects().length && (e.getBoundingClientRect().height < 44 || e.getBoundingClientRect().width < 44))
		.map((e) => e.className + " " + e.textContent.trim() + " " + Math.round(e.getBoundingClientRect().height))`, targets))
	if len(small) > 0 {
		b.T.Errorf("%s: touch targets under 44 px: %v", where, small)
	}
}

// Login logs in through the platform's login form.
func (b *Browser) Login(user, password string) {
	b.T.Helper()
	b.Do("log in as "+user,
		chromedp.WaitVisible(chromedp.CSS(`#login-user`)),
		chromedp.SendKeys(chromedp.CSS(`#login-user`), user),
		chromedp.SendKeys(chromedp.CSS(`#login-password`), password),
		chromedp.Tap(chromedp.CSS(`#login-submit`)))
}
