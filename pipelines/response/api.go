package response

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"citybrain/internal/auth"
)

// Authenticator is what the API needs of the platform's users (*auth.Store).
type Authenticator interface {
	FromRequest(r *http.Request) (auth.User, error)
}

// API serves the responder app's calls (docs/response.md):
//
//	GET  /api/respond/me                    {"user", "person", "admin"}
//	GET  /api/respond/tasks[?all=1]         {"tasks": [TaskView…]}: the person's open tasks (all=1: closed too; admins: everyone's)
//	POST /api/respond/tasks/{id}/ack        acknowledge
//	POST /api/respond/tasks/{id}/progress   {"text": "…"}
//	POST /api/respond/tasks/{id}/close      {"text": "…"}
//	GET  /api/respond/stream                SSE: "tasks" whenever the person's tasks change
//	GET  /api/respond/silences              the silences (admins)
//	POST /api/respond/silences              {"kind","subject_id","street_code","reason","minutes"} (admins)
//	GET  /api/respond/support?task=ID       decision support for the task's event (Support)
//
// A user acts as the person their account is linked to (auth.User.PersonID):
// they see the tasks given to that person only — a street's responders
// their street's tasks. Admins see every task and manage silences.
type API struct {
	Eng  *Engine
	Auth Authenticator
	// Support, if set, answers decision-support questions for a task.
	Support func(r *http.Request, tv TaskView) (any, error)

	mu   sync.Mutex
	subs map[chan struct{}]string // subscriber → person ("" = admin: all)
}

// Mount adds the routes to mux.
func (a *API) Mount(mux *http.ServeMux) {
	a.subs = map[chan struct{}]string{}
	prev := a.Eng.OnChange
	a.Eng.OnChange = func(people []string) {
		if prev != nil {
			prev(people)
		}
		a.changed(people)
	}
	mux.HandleFunc("GET /api/respond/me", a.me)
	mux.HandleFunc("GET /api/respond/tasks", a.tasks)
	mux.HandleFunc("POST /api/respond/tasks/{id}/{action}", a.act)
	mux.HandleFunc("GET /api/respond/stream", a.stream)
	mux.HandleFunc("GET /api/respond/silences", a.silences)
	mux.HandleFunc("POST /api/respond/silences", a.addSilence)
	mux.HandleFunc("GET /api/respond/support", a.support)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// who returns the request's user and the person they act as ("" for an
// admin without a person: everyone).
func (a *API) who(w http.ResponseWriter, r *http.Request) (auth.User, string, bool) {
	u, err := a.Auth.FromRequest(r)
	if err != nil {
		fail(w, http.StatusUnauthorized, err.Error())
		return u, "", false
	}
	if u.PersonID == "" && u.Role != auth.RoleAdmin {
		fail(w, http.StatusForbidden, "该账号未关联应急责任人 / this account is not linked to a responder: an admin runs citybrain users add NAME --person <person_id>")
		return u, "", false
	}
	return u, u.PersonID, true
}

func (a *API) me(w http.ResponseWriter, r *http.Request) {
	u, person, ok := a.who(w, r)
	if !ok {
		return
	}
	out := map[string]any{"user": u.Name, "display_name": u.DisplayName, "admin": u.Role == auth.RoleAdmin, "person_id": person}
	if p, found := a.Eng.Person(person); found {
		out["person"] = p
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) tasks(w http.ResponseWriter, r *http.Request) {
	_, person, ok := a.who(w, r)
	if !ok {
		return
	}
	tasks := a.Eng.Tasks(person, r.URL.Query().Get("all") == "1")
	if tasks == nil {
		tasks = []TaskView{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": tasks, "now": a.Eng.now()})
}

func (a *API) act(w http.ResponseWriter, r *http.Request) {
	_, person, ok := a.who(w, r)
	if !ok {
		return
	}
	if person == "" {
		fail(w, http.StatusForbidden, "管理员账号未关联责任人，不能代为处置 / an admin without a person cannot act on tasks")
		return
	}
	var body struct {
		Text string `json:"text"`
	}
	if r.ContentLength != 0 {
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil {
			fail(w, http.StatusBadRequest, "请求体须为 JSON {\"text\": …} / body must be JSON: "+err.Error())
			return
		}
	}
	id := r.PathValue("id")
	var err error
	switch r.PathValue("action") {
	case "ack":
		err = a.Eng.Ack(id, person)
	case "progress":
		err = a.Eng.Progress(id, person, body.Text)
	case "close":
		err = a.Eng.Close(id, person, strings.TrimSpace(body.Text))
	default:
		fail(w, http.StatusNotFound, "unknown action (ack, progress, close) / 未知操作")
		return
	}
	switch {
	case errors.Is(err, ErrNoTask):
		fail(w, http.StatusNotFound, err.Error())
	case errors.Is(err, ErrNotYours):
		fail(w, http.StatusForbidden, err.Error())
	case err != nil:
		fail(w, http.StatusBadRequest, err.Error())
	default:
		for _, tv := range a.Eng.Tasks(person, true) {
			if tv.ID == id {
				writeJSON(w, http.StatusOK, tv)
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"id": id})
	}
}

func (a *API) changed(people []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ch, p := range a.subs {
		hit := p == ""
		for _, q := range people {
			hit = hit || q == p
		}
		if hit {
			select {
			case ch <- struct{}{}:
			default: // one pending signal is enough
			}
		}
	}
}

// stream is the in-app channel: an SSE "tasks" event with the person's
// open tasks on every change, and a comment every 15 s to keep proxies open.
func (a *API) stream(w http.ResponseWriter, r *http.Request) {
	_, person, ok := a.who(w, r)
	if !ok {
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		fail(w, http.StatusInternalServerError, "streaming unsupported")
		return
	}
	ch := make(chan struct{}, 1)
	a.mu.Lock()
	a.subs[ch] = person
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.subs, ch)
		a.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	send := func() {
		tasks := a.Eng.Tasks(person, false)
		if tasks == nil {
			tasks = []TaskView{}
		}
		b, _ := json.Marshal(map[string]any{"tasks": tasks})
		fmt.Fprintf(w, "event: tasks\ndata: %s\n\n", b)
		fl.Flush()
	}
	send()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-ch:
			send()
		case <-keep.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		}
	}
}

func (a *API) admin(w http.ResponseWriter, r *http.Request) (auth.User, bool) {
	u, err := a.Auth.FromRequest(r)
	if err != nil {
		fail(w, http.StatusUnauthorized, err.Error())
		return u, false
	}
	if u.Role != auth.RoleAdmin {
		fail(w, http.StatusForbidden, "仅管理员可管理静默 / only admins manage silences")
		return u, false
	}
	return u, true
}

func (a *API) silences(w http.ResponseWriter, r *http.Request) {
	if _, ok := a.admin(w, r); !ok {
		return
	}
	s := a.Eng.Silences()
	if s == nil {
		s = []Silence{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"silences": s})
}

func (a *API) addSilence(w http.ResponseWriter, r *http.Request) {
	u, ok := a.admin(w, r)
	if !ok {
		return
	}
	var body struct {
		Kind, SubjectID, StreetCode, Reason string
		Minutes                             int
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		fail(w, http.StatusBadRequest, "请求体须为 JSON / body must be JSON: "+err.Error())
		return
	}
	str := func(k string) string { s, _ := raw[k].(string); return s }
	body.Kind, body.SubjectID, body.StreetCode, body.Reason = str("kind"), str("subject_id"), str("street_code"), str("reason")
	if m, ok := raw["minutes"].(float64); ok {
		body.Minutes = int(m)
	}
	if body.Minutes <= 0 {
		fail(w, http.StatusBadRequest, "minutes 须为正整数（静默时长）/ minutes (how long) must be positive")
		return
	}
	now := a.Eng.now()
	s, err := a.Eng.AddSilence(Silence{Kind: body.Kind, SubjectID: body.SubjectID, StreetCode: body.StreetCode, Reason: body.Reason,
		Author: u.Name, StartsAt: now, EndsAt: now.Add(time.Duration(body.Minutes) * time.Minute)})
	if err != nil {
		fail(w, http.StatusBadRequest, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, s)
}

func (a *API) support(w http.ResponseWriter, r *http.Request) {
	_, person, ok := a.who(w, r)
	if !ok {
		return
	}
	id := r.URL.Query().Get("task")
	for _, tv := range a.Eng.Tasks(person, true) {
		if tv.ID != id {
			continue
		}
		if a.Support == nil {
			writeJSON(w, http.StatusOK, map[string]any{})
			return
		}
		v, err := a.Support(r, tv)
		if err != nil {
			fail(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, v)
		return
	}
	fail(w, http.StatusNotFound, ErrNoTask.Error())
}
