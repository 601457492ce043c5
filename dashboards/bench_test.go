package dashboards_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// BenchReport is what TestCockpitBench writes for make bench
// (internal/benchrun, suite "dashboards").
type BenchReport struct {
	Requests    int       `json:"requests"`
	Connections int       `json:"connections"`
	P50MS       float64   `json:"p50_ms"`
	P99MS       float64   `json:"p99_ms"`
	RPS         float64   `json:"rps"`
	Errors      int       `json:"errors"`
	RenderMS    []float64 `json:"render_ms"`
	RenderP50MS float64   `json:"render_p50_ms"`
}

// TestCockpitBench measures the cockpit API under 100 concurrent
// connections (a Go load generator: 100 keep-alive clients, each sending
// requests back to back) and the time from navigation start until the
// cockpit has drawn all its charts in Chromium. It runs only when
// CITYBRAIN_DASH_BENCH names the JSON file to write (make bench).
func TestCockpitBench(t *testing.T) {
	out := os.Getenv("CITYBRAIN_DASH_BENCH")
	if out == "" {
		t.Skip("set CITYBRAIN_DASH_BENCH=<file.json> (make bench runs it)")
	}
	e := newEnv(t)
	c := e.client()
	c.login("leader")
	u, _ := http.NewRequest("GET", e.srv.URL+"/", nil)
	cookies := c.c.Jar.Cookies(u.URL)
	conns, perConn := 100, 200
	if v, _ := strconv.Atoi(os.Getenv("CITYBRAIN_DASH_BENCH_REQUESTS")); v > 0 {
		perConn = v / conns
	}
	// Warm the cache once (the first answer reads the lake).
	c.json("/api/dash/cockpit", &map[string]any{})
	lat := make([]time.Duration, 0, conns*perConn)
	var mu sync.Mutex
	errs := 0
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			mine := make([]time.Duration, 0, perConn)
			bad := 0
			for j := 0; j < perConn; j++ {
				req, _ := http.NewRequest("GET", e.srv.URL+"/api/dash/cockpit", nil)
				for _, ck := range cookies {
					req.AddCookie(ck)
				}
				t0 := time.Now()
				resp, err := cl.Do(req)
				if err == nil {
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || n < 100 {
						err = fmt.Errorf("status %d, %d bytes", resp.StatusCode, n)
					}
				}
				if err != nil {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000
	}
	rep := BenchReport{Requests: len(lat), Connections: conns, P50MS: pct(0.50), P99MS: pct(0.99), RPS: float64(len(lat)) / wall.Seconds(), Errors: errs}

	// Time to a fully rendered cockpit: navigation start → data-rendered.
	b := newBrowser(t, e.ctx)
	b.login(e.srv.URL, "leader")
	for i := 0; i < 5; i++ {
		b.run("reload cockpit", chromedp.Navigate(e.srv.URL+"/?n="+strconv.Itoa(i)+"#/cockpit"), rendered("cockpit"))
		ms, _ := strconv.ParseFloat(eval[string](b, `document.body.dataset.renderedMs`), 64)
		rep.RenderMS = append(rep.RenderMS, ms)
	}
	r := append([]float64(nil), rep.RenderMS...)
	sort.Float64s(r)
	rep.RenderP50MS = r[len(r)/2]
	t.Logf("cockpit API: %d requests, %d connections, p50 %.2f ms, p99 %.2f ms, %.0f req/s, %d errors; rendered in %v ms (p50 %.0f)",
		rep.Requests, conns, rep.P50MS, rep.P99MS, rep.RPS, errs, rep.RenderMS, rep.RenderP50MS)
	bs, _ := json.MarshalIndent(rep, "", "  ")
	if err := os.WriteFile(out, bs, 0o644); err != nil {
		t.Fatal(err)
	}
}
