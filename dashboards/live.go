package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// hub fans live events out to the browsers' event streams.
type hub struct {
	mu   sync.Mutex
	subs map[chan event]*liveSub
}

// liveSub is one open page's stream state.
type liveSub struct {
	// lost: events were dropped because the page's buffer was full; the
	// stream tells the page to reload its lists ("refresh") once it drains.
	lost bool
}

type event struct {
	name string
	data []byte
}

// liveBuffer is how many events wait for one page. A catch-up pushes
// thousands of transitions at once; the 64 of before dropped most of them.
const liveBuffer = 8192

func newHub() *hub { return &hub{subs: map[chan event]*liveSub{}} }

func (h *hub) subscribe() chan event {
	ch := make(chan event, liveBuffer)
	h.mu.Lock()
	h.subs[ch] = &liveSub{}
	h.mu.Unlock()
	return ch
}

func (h *hub) unsubscribe(ch chan event) {
	h.mu.Lock()
	delete(h.subs, ch)
	h.mu.Unlock()
}

// takeLost reports (and resets) whether events for ch were dropped.
func (h *hub) takeLost(ch chan event) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if sub, ok := h.subs[ch]; ok && sub.lost {
		sub.lost = false
		return true
	}
	return false
}

// publish sends to every subscriber without blocking; a subscriber whose
// buffer is full misses the event and is told to refresh its lists once
// its stream drains (never silently).
func (h *hub) publish(name string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch, sub := range h.subs {
		select {
		case ch <- event{name, b}:
		default:
			sub.lost = true
		}
	}
}

// freshTick is how often the warnings' freshness is sent to open pages.
const freshTick = 2 * time.Second

// freshLoop sends "freshness" (WarningsFreshness) to the open pages every
// freshTick until ctx ends: a stuck engine ages by itself, with no commit
// to tell the pages.
func (s *Server) freshLoop(ctx context.Context) {
	t := time.NewTicker(freshTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s.live.count() > 0 {
				s.live.publish("freshness", s.liveFreshness())
			}
		}
	}
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// liveStream is GET /api/dash/live: server-sent events "warning" (one
// warning transition, as in marts.warnings), "refresh" (tables changed:
// {"tables": [...]}) and "freshness" (WarningsFreshness with Paths: at once,
// then every freshTick), with a comment every 20 s to keep proxies open.
func (s *Server) liveStream(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeErr(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	ch := s.live.subscribe()
	defer s.live.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	fmt.Fprint(w, "retry: 3000\n: connected\n\n")
	fmt.Fprintf(w, "event: freshness\ndata: %s\n\n", jsonOf(s.liveFreshness()))
	fl.Flush()
	tick := time.NewTicker(20 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			fmt.Fprint(w, ": ping\n\n")
		case ev := <-ch:
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data)
			if len(ch) == 0 && s.live.takeLost(ch) {
				fmt.Fprintf(w, "event: refresh\ndata: %s\n\n", jsonOf(map[string]any{"tables": []string{WarningsTable}, "lost": true}))
			}
		}
		fl.Flush()
	}
}
