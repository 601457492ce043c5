package dashboards_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"citybrain/internal/config"
)

// TestLivePushesBurst: a commit of thousands of transitions at once (a
// catch-up) reaches an open page whole over /api/dash/live — the push read
// only its first 1,000 (by transition_at, which a batch shares) and the
// page's buffer held 64, so most were dropped silently.
func TestLivePushesBurst(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	c.login("leader")
	req, _ := http.NewRequest("GET", c.base+"/api/dash/live", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := c.c.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got := make(chan string, 4096)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		ev := ""
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				ev = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok && ev == "warning" {
				got <- v
			}
		}
		close(got)
	}()
	const n = 2500
	at := time.Now()
	rows := make([]map[string]any, n)
	for i := range rows {
		rows[i] = map[string]any{"warning_id": fmt.Sprintf("B%d", i), "seq": int64(1000 + i), "kind": "crowd", "rule": "crowd_venue.sql",
			"subject_type": "grid_cell", "subject_id": fmt.Sprintf("G%d", i), "level": "blue", "state": "raised", "predicted": false,
			"message_zh": "批量", "message_en": "burst", "event_time": at.Add(-time.Duration(n-i) * time.Minute), "transition_at": at, "raised_at": at}
	}
	time.Sleep(200 * time.Millisecond) // the stream is open
	e.write(e.schema("warnings"), rows...)
	seen := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for len(seen) < n {
		select {
		case v, ok := <-got:
			if !ok {
				t.Fatalf("stream ended after %d of %d", len(seen), n)
			}
			for i := 0; i < n; i++ {
				if strings.Contains(v, fmt.Sprintf(`"warning_id":"B%d"`, i)) {
					seen[fmt.Sprintf("B%d", i)] = true
					break
				}
			}
		case <-deadline:
			t.Fatalf("%d of %d transitions reached the page in 20 s", len(seen), n)
		}
	}
}

// openLive opens /api/dash/live as user and returns its events
// ("name data" lines) until the test ends.
func openLive(t *testing.T, e *env, user string) <-chan string {
	t.Helper()
	c := e.client()
	c.login(user)
	req, _ := http.NewRequest("GET", c.base+"/api/dash/live", nil)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	resp, err := c.c.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	out := make(chan string, 4096)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		ev := ""
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				ev = v
			}
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				out <- ev + " " + v
			}
		}
		close(out)
	}()
	return out
}

// TestLiveScope: the live stream sends a department only the warnings its
// marts.warnings row filter keeps, refresh events only of tables in its
// scope and freshness rows only of its own sources — a leader all of it.
func TestLiveScope(t *testing.T) {
	e := newEnv(t)
	leader, water := openLive(t, e, "leader"), openLive(t, e, "dept_water")
	time.Sleep(300 * time.Millisecond) // both streams are open
	at := time.Now()
	w := func(id, kind string, seq int64) map[string]any {
		return map[string]any{"warning_id": id, "seq": seq, "kind": kind, "rule": kind + ".sql", "subject_type": "venue", "subject_id": "V1",
			"level": "yellow", "state": "raised", "predicted": false, "message_zh": kind, "message_en": kind,
			"event_time": at, "transition_at": at, "raised_at": at}
	}
	e.write(e.schema("warnings"), w("SC1", "crowd", 5001), w("SR1", "rainstorm", 5002))
	e.write(e.schema("police_cases"), map[string]any{"case_id": "P-SCOPE", "occurred_at": at, "category": "theft"})
	collect := func(ch <-chan string) []string {
		var got []string
		deadline := time.After(8 * time.Second)
		for {
			select {
			case v, ok := <-ch:
				if !ok {
					return got
				}
				got = append(got, v)
			case <-deadline:
				return got
			}
		}
	}
	has := func(evs []string, prefix, sub string) bool {
		for _, v := range evs {
			if strings.HasPrefix(v, prefix) && strings.Contains(v, sub) {
				return true
			}
		}
		return false
	}
	var lg []string
	done := make(chan struct{})
	go func() { lg = collect(leader); close(done) }()
	wg := collect(water)
	<-done
	if !has(lg, "warning ", `"SC1"`) || !has(lg, "warning ", `"SR1"`) || !has(lg, "refresh ", "raw.police_cases") {
		t.Errorf("the leader missed events: %q", lg)
	}
	if !has(wg, "warning ", `"SR1"`) {
		t.Errorf("dept_water missed its rainstorm warning: %q", wg)
	}
	if has(wg, "warning ", `"SC1"`) {
		t.Error("dept_water was sent a crowd warning its row filter hides")
	}
	for _, v := range wg {
		for _, bad := range []string{"raw.police_cases", "audit.queries", "raw.mobile_signal"} {
			if strings.Contains(v, bad) {
				t.Errorf("dept_water's stream names %s: %.300s", bad, v)
			}
		}
	}
	if !has(wg, "freshness ", `"paths"`) {
		t.Errorf("dept_water got no freshness: %q", wg)
	}
}

// TestLivePushesUnits: the units of a partitioned warning engine number
// their transitions k, k+3, k+6, … (3 units: seq mod 3) and commit in any order: a
// unit's transitions committed after another unit's higher numbers reach
// the page all the same (one push position per unit).
func TestLivePushesUnits(t *testing.T) {
	e := newEnvCfg(t, false, func(c *config.Config) { c.Warnings.Partitioned, c.Broker.Partitions = true, 2 })
	events := openLive(t, e, "leader")
	at := time.Now()
	row := func(seq int64) map[string]any {
		return map[string]any{"warning_id": fmt.Sprintf("U%d", seq), "seq": seq, "kind": "crowd", "rule": "mobile_signal.crowd_grid_cell",
			"subject_type": "grid_cell", "subject_id": fmt.Sprintf("G%d", seq), "level": "blue", "state": "raised", "predicted": false,
			"message_zh": "单元", "message_en": "unit", "event_time": at, "transition_at": at, "raised_at": at}
	}
	time.Sleep(200 * time.Millisecond) // the stream is open
	// (The fixture's transitions go up to seq 99.)
	e.write(e.schema("warnings"), row(301), row(304))           // unit 1 first, far ahead
	e.write(e.schema("warnings"), row(102), row(105), row(108)) // unit 0, lower numbers, later
	e.write(e.schema("warnings"), row(104), row(107))           // unit 2
	want := map[string]bool{"U301": true, "U304": true, "U102": true, "U105": true, "U108": true, "U104": true, "U107": true}
	deadline := time.After(20 * time.Second)
	for len(want) > 0 {
		select {
		case ev := <-events:
			for id := range want {
				if strings.HasPrefix(ev, "warning ") && strings.Contains(ev, `"warning_id":"`+id+`"`) {
					delete(want, id)
				}
			}
		case <-deadline:
			t.Fatalf("not pushed to the page within 20 s: %v", want)
		}
	}
}
