package dashboards

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"citybrain/internal/auth"
)

// hub fans live events out to the browsers' event streams. Each page
// gets only what its user's scope may see (publishView): a department is
// not told that tables outside its scope changed, nor sent warnings its row
// filter hides, nor the freshness of other departments' sources.
type hub struct {
	mu   sync.Mutex
	subs map[chan event]*liveSub
}

// liveSub is one open page's stream state.
type liveSub struct {
	// scope is the page's user's; key groups equal scopes (scopeKey).
	scope auth.Scope
	key   string
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

func (h *hub) subscribe(sc auth.Scope, key string) chan event {
	ch := make(chan event, liveBuffer)
	h.mu.Lock()
	h.subs[ch] = &liveSub{scope: sc, key: key}
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

// scopes returns one scope per distinct scope key among the subscribers.
func (h *hub) scopes() map[string]auth.Scope {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]auth.Scope{}
	for _, sub := range h.subs {
		out[sub.key] = sub.scope
	}
	return out
}

// publish sends v to every subscriber.
func (h *hub) publish(name string, v any) {
	h.publishView(name, func(auth.Scope) (any, bool) { return v, true })
}

// publishView sends each subscriber what view makes of the event for its
// scope (nothing when view says false), without blocking: a subscriber
// whose buffer is full misses the event and is told to refresh its lists
// once its stream drains (never silently). view runs once per distinct
// scope.
func (h *hub) publishView(name string, view func(sc auth.Scope) (any, bool)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	type out struct {
		b  []byte
		ok bool
	}
	made := map[string]out{}
	for ch, sub := range h.subs {
		o, done := made[sub.key]
		if !done {
			if v, ok := view(sub.scope); ok {
				if b, err := json.Marshal(v); err == nil {
					o = out{b, true}
				}
			}
			made[sub.key] = o
		}
		if !o.ok {
			continue
		}
		select {
		case ch <- event{name, o.b}:
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
				f := s.liveFreshness()
				s.live.publishView("freshness", func(sc auth.Scope) (any, bool) { return scopeFreshness(sc, f), true })
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
	u := userOf(r)
	sc := s.d.Auth.ScopeOf(u)
	ch := s.live.subscribe(sc, scopeKey(u))
	defer s.live.unsubscribe(ch)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	fmt.Fprint(w, "retry: 3000\n: connected\n\n")
	fmt.Fprintf(w, "event: freshness\ndata: %s\n\n", jsonOf(scopeFreshness(sc, s.liveFreshness())))
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
				tables := []string{}
				if sc.Sees(WarningsTable) {
					tables = append(tables, WarningsTable)
				}
				fmt.Fprintf(w, "event: refresh\ndata: %s\n\n", jsonOf(map[string]any{"tables": tables, "lost": true}))
			}
		}
		fl.Flush()
	}
}
