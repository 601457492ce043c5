package dashboards_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
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
