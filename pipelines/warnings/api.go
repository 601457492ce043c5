package warnings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"citybrain/internal/auth"
)

// Hub fans transitions out to live subscribers (the SSE stream).
type Hub struct {
	mu   sync.Mutex
	subs map[chan Transition]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[chan Transition]struct{}{}} }

// hubBuffer is how many transitions wait for one subscriber. A catch-up
// makes thousands in one batch; 1,024 dropped a third of them.
const hubBuffer = 16384

// Subscribe returns a channel of transitions and its cancel function. A
// subscriber that falls hubBuffer transitions behind is dropped (its
// channel is closed) rather than slowing the engine.
func (h *Hub) Subscribe() (<-chan Transition, func()) {
	ch := make(chan Transition, hubBuffer)
	h.mu.Lock()
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	return ch, func() {
		h.mu.Lock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
		h.mu.Unlock()
	}
}

// Publish sends transitions to every subscriber without blocking.
func (h *Hub) Publish(ts []Transition) {
	if len(ts) == 0 {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		for _, t := range ts {
			select {
			case ch <- t:
			default:
				delete(h.subs, ch)
				close(ch)
			}
			if _, ok := h.subs[ch]; !ok {
				break
			}
		}
	}
}

// Authenticator is what the API needs of the platform's users (*auth.Store).
type Authenticator interface {
	FromRequest(r *http.Request) (auth.User, error)
	ScopeOf(u auth.User) auth.Scope
}

// API serves the warnings over HTTP:
//
//	GET /api/warnings          {"warnings": [Transition…], "engine": ProgressReport}: the last transition of every
//	                           active warning, most severe first; "engine" says whether the engine has caught up
//	                           with its topics (after a start it replays their history first)
//	GET /api/warnings?all=1    the history (every transition, newest first; &limit=N, default 1000) from marts.warnings
//	GET /api/warnings/stream   Server-Sent Events: event "warning", data = a Transition, one per transition
//
// Every request needs a logged-in user (401 otherwise); a department user
// sees only the kinds its scope's marts.warnings row filter allows.
type API struct {
	Eng  *Engine
	Hub  *Hub
	Auth Authenticator
	// History returns transitions newest first (nil: ?all=1 answers 503).
	History func(ctx context.Context, limit int) ([]Transition, error)
	// Progress, if set, is the runner's (reported as "engine").
	Progress *Progress
	// Active, if set, gives the active warnings instead of Eng (a partitioned
	// engine: the units this instance owns).
	Active func() []Transition
}

func (a *API) active() []Transition {
	if a.Active != nil {
		return a.Active()
	}
	return a.Eng.Active()
}

// Mount registers the handlers on mux.
func (a *API) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/warnings", a.list)
	mux.HandleFunc("GET /api/warnings/stream", a.stream)
}

func jsonError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// ErrFilter: a department's marts.warnings filter the API cannot evaluate.
var ErrFilter = errors.New("unsupported marts.warnings row filter")

var (
	kindInRE = regexp.MustCompile(`(?is)^\s*kind\s+in\s*\(([^)]*)\)\s*$`)
	kindEqRE = regexp.MustCompile(`(?is)^\s*kind\s*=\s*'([^']*)'\s*$`)
	quotedRE = regexp.MustCompile(`'([^']*)'`)
)

// KindFilter turns a marts.warnings row filter into the set of kinds it
// allows (nil = every kind). It understands "", kind = '…' and
// kind IN ('…', …); anything else is ErrFilter (and the user sees nothing).
func KindFilter(filter string) (map[string]bool, error) {
	if strings.TrimSpace(filter) == "" {
		return nil, nil
	}
	if m := kindEqRE.FindStringSubmatch(filter); m != nil {
		return map[string]bool{m[1]: true}, nil
	}
	if m := kindInRE.FindStringSubmatch(filter); m != nil {
		out := map[string]bool{}
		for _, q := range quotedRE.FindAllStringSubmatch(m[1], -1) {
			out[q[1]] = true
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrFilter, filter)
}

// allowed returns the kinds the request's user may see (nil = all).
func (a *API) allowed(w http.ResponseWriter, r *http.Request) (map[string]bool, bool) {
	u, err := a.Auth.FromRequest(r)
	if err != nil {
		jsonError(w, http.StatusUnauthorized, err.Error())
		return nil, false
	}
	filter, ok := a.Auth.ScopeOf(u).Allows(Table)
	if !ok {
		jsonError(w, http.StatusForbidden, "无权查看预警 / your department may not read marts.warnings")
		return nil, false
	}
	kinds, err := KindFilter(filter)
	if err != nil {
		jsonError(w, http.StatusForbidden, "预警权限过滤条件无法识别 / "+err.Error()+"; use kind = '…' or kind IN (…) in auth.departments")
		return nil, false
	}
	return kinds, true
}

func keep(kinds map[string]bool, ts []Transition) []Transition {
	if kinds == nil {
		return ts
	}
	out := ts[:0:0]
	for _, t := range ts {
		if kinds[t.Kind] {
			out = append(out, t)
		}
	}
	return out
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	kinds, ok := a.allowed(w, r)
	if !ok {
		return
	}
	var ts []Transition
	if r.FormValue("all") != "" && r.FormValue("all") != "0" {
		if a.History == nil {
			jsonError(w, http.StatusServiceUnavailable, "history unavailable")
			return
		}
		limit := 1000
		if l, err := strconv.Atoi(r.FormValue("limit")); err == nil && l > 0 && l <= 100000 {
			limit = l
		}
		var err error
		if ts, err = a.History(r.Context(), limit); err != nil {
			jsonError(w, http.StatusInternalServerError, "预警历史查询失败 / history: "+err.Error())
			return
		}
	} else {
		ts = a.active()
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	out := map[string]any{"warnings": keep(kinds, ts), "as_of": time.Now().UTC()}
	if a.Progress != nil {
		out["engine"] = a.Progress.Report()
	}
	json.NewEncoder(w).Encode(out)
}

func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	kinds, ok := a.allowed(w, r)
	if !ok {
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		jsonError(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	ch, cancel := a.Hub.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": 预警实时流 warnings stream\n\n")
	fl.Flush()
	ping := time.NewTicker(15 * time.Second)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ping.C:
			fmt.Fprint(w, ": ping\n\n")
			fl.Flush()
		case t, open := <-ch:
			if !open {
				return
			}
			if kinds != nil && !kinds[t.Kind] {
				continue
			}
			b, _ := json.Marshal(t)
			fmt.Fprintf(w, "id: %d\nevent: warning\ndata: %s\n\n", t.Seq, b)
			fl.Flush()
		}
	}
}
