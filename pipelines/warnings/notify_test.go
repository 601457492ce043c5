package warnings

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWebhookRetriesAndDeadLetter runs two real local HTTP servers: the
// venue's unit fails twice then accepts; a catch-all hook always fails and
// ends in the dead-letter file with its reason.
func TestWebhookRetriesAndDeadLetter(t *testing.T) {
	var mu sync.Mutex
	var okCalls, badCalls int
	var got Transition
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		okCalls++
		if okCalls <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &got); err != nil || r.Header.Get("Content-Type") == "" {
			t.Errorf("body %s: %v", body, err)
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		badCalls++
		mu.Unlock()
		http.Error(w, "broken receiver", http.StatusInternalServerError)
	}))
	defer bad.Close()

	cfg := observedOnly()
	cfg.Webhooks = []Webhook{{Unit: "xidan-office", URL: ok.URL}, {Unit: "*", URL: bad.URL}, {Unit: "someone-else", URL: bad.URL}}
	cfg.WebhookRetries, cfg.WebhookBackoff, cfg.WebhookTimeout = 3, 10*time.Millisecond, 2*time.Second
	e := newTestEngine(t, cfg, "")
	e.LoadReference(context.Background(), testReference())
	ts := feedVenue(t, e, testT0, []int64{7000})
	var venue Transition
	for _, tr := range ts {
		if tr.SubjectType == "venue" {
			venue = tr
		}
	}
	dead := filepath.Join(t.TempDir(), "dead_letters.jsonl")
	n := NewNotifier(e, cfg, dead, slog.New(slog.NewTextHandler(io.Discard, nil)))
	start := time.Now()
	if err := n.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if okCalls != 3 || got.WarningID != venue.WarningID || got.State != "raised" {
		t.Errorf("unit hook: %d calls (want 3), got %q, want %q", okCalls, got.WarningID, venue.WarningID)
	}
	// The catch-all receives every transition (venue and cells): 4 attempts each.
	if badCalls != 4*len(ts) {
		t.Errorf("catch-all hook: %d calls, want %d (1 + 3 retries per transition)", badCalls, 4*len(ts))
	}
	if time.Since(start) < 30*time.Millisecond { // 10 + 20 ms of backoff at least
		t.Errorf("retries did not back off")
	}
	f, err := os.Open(dead)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []DeadLetter
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var d DeadLetter
		if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, d)
	}
	if len(lines) != len(ts) || lines[0].Attempts != 4 || !strings.Contains(lines[0].Reason, "HTTP 500") || lines[0].URL != bad.URL {
		t.Errorf("dead letters %+v", lines)
	}
	if n.Delivered != 1 || n.Dead != len(ts) {
		t.Errorf("delivered %d dead %d", n.Delivered, n.Dead)
	}
	if q, _ := e.queue(context.Background(), "notify_queue", 10); len(q) != 0 {
		t.Errorf("queue not empty: %d", len(q))
	}
}
