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
	subs map[chan event]struct{}
}

type event struct {
	name string
	data []byte
}

func newHub() *hub { return &hub{subs: map[chan event]struct{}{}} }

func (h *hub) subscribe() chan event {
	ch := make(chan event, 64)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch
}

func (h *hub) unsubscribe(ch chan event) {
	h.mu.Lock()
	delete(h.subs, ch)
	h.mu.Unlock()
}

// publish sends to every subscriber; a subscriber whose buffer is full
// misses the event (the page reloads its lists on "refresh").
func (h *hub) publish(name string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- event{name, b}:
		default:
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
		}
		fl.Flush()
	}
}
