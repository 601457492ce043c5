package app

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"citybrain/internal/auth"
	"citybrain/internal/freshness"
	"citybrain/internal/instances"
	"citybrain/warehouse"
)

// Runtime is what citybrain serve hands to each service it runs beside the
// connectors and lake writers (simulator, models, warnings, SQL access,
// extracts, dashboards): the opened platform, the shared query engine, the
// HTTP mux, the users and the commit bus.
type Runtime struct {
	App    *App
	Engine *warehouse.Engine
	// Mux is serve's HTTP mux. /healthz and /api/{status,tables,sql} are
	// taken; services mount their own paths (Go 1.22 patterns).
	Mux *http.ServeMux
	// Auth is the platform's users, roles, departments and sessions.
	Auth *auth.Store
	// Commits tells services about every lake commit (lake writers, models).
	Commits *CommitBus
	// Fresh is the freshness of every path (internal/freshness): each
	// service reports its own; status, 数据健康 and /metrics read it.
	Fresh *freshness.Registry

	// Roles are the roles this serve process runs (docs/roles.md).
	Roles Roles
	// Instances, when set, is the platform's instances (this one and the
	// others sharing the Kafka cluster): /api/freshness and /metrics show
	// their paths and whether they are up.
	Instances *instances.Registry
	// Owned, if set for a role, gives the partitions that role's service owns
	// here by topic (the partitioned warning engine's units), reported in the
	// heartbeats instead of the topics' whole partition lists.
	Owned map[Role]func() map[string][]int

	// OperatorToken, when set, is serve's operator token (kept in
	// <data_dir>/serve.token, readable by serve's user only): a bearer of it
	// reads /metrics and /api/freshness whole (citybrain status, a local
	// Prometheus with bearer_token_file).
	OperatorToken string

	mu     sync.Mutex
	banner []string
	memory []MemoryFunc
}

// MountMetrics serves GET /metrics: every path's freshness and the
// services' counters in the Prometheus text format, to admins and to bearers
// of the operator token (OperatorToken); others get 401 or 403, since table
// names are metadata.
//
// GET /api/freshness is the same paths as JSON ({"rows": [freshness.Row…]}),
// for citybrain status: whole to the operator token, and within the caller's
// scope (ScopeFreshness) to any logged-in user.
func (rt *Runtime) MountMetrics() {
	// caller is the request's scope: everything for the operator token,
	// else the logged-in user's (401 without one).
	caller := func(w http.ResponseWriter, r *http.Request) (auth.Scope, bool) {
		all := auth.Scope{All: true, Admin: true}
		if rt.Auth == nil {
			return all, true
		}
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && rt.OperatorToken != "" &&
			subtle.ConstantTimeCompare([]byte(tok), []byte(rt.OperatorToken)) == 1 {
			return all, true
		}
		u, err := rt.Auth.FromRequest(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Basic realm="citybrain"`)
			http.Error(w, "需要登录 login required (or the operator token of <data_dir>/serve.token as a bearer)", http.StatusUnauthorized)
			return auth.Scope{}, false
		}
		return rt.Auth.ScopeOf(u), true
	}
	rt.Mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		sc, ok := caller(w, r)
		if !ok {
			return
		}
		if !sc.Admin {
			http.Error(w, "仅管理员可读取指标 /metrics is for admins (and the operator token)", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		rt.sampleMemory(r.Context())
		rt.sampleInstances()
		rt.Fresh.WritePrometheus(w)
	})
	rt.Mux.HandleFunc("GET /api/freshness", func(w http.ResponseWriter, r *http.Request) {
		sc, ok := caller(w, r)
		if !ok {
			return
		}
		all := rt.Fresh.Rows()
		body := map[string]any{"as_of": time.Now()}
		if rt.Instances != nil {
			all = append(all, rt.Instances.PeerRows()...)
			if sc.Admin {
				ins := rt.Instances.Instances()
				for i := range ins {
					ins[i].Paths = nil // they are in rows
				}
				body["instances"] = ins
			}
		}
		body["rows"] = ScopeFreshness(sc, all)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		json.NewEncoder(w).Encode(body)
	})
}

// sampleInstances sets citybrain_instance_up for every instance heard
// from (1 up, 0 down), labelled with its name and roles.
func (rt *Runtime) sampleInstances() {
	if rt.Instances == nil {
		return
	}
	for _, in := range rt.Instances.Instances() {
		v := 0.0
		if in.Up {
			v = 1
		}
		rt.Fresh.Gauge("citybrain_instance_up", "Serve instances of the platform, 1 up, 0 stopped or silent for 3 heartbeats / 平台实例是否在线", v, "instance", in.Name, "roles", strings.Join(in.Roles, ","))
	}
}

// AddrFile is where serve writes the address its HTTP server listens on,
// under data_dir (http.addr may name port 0: any free port).
const AddrFile = "serve.addr"

// WriteServeAddr records serve's HTTP address for the commands beside it.
func WriteServeAddr(dataDir, addr string) error {
	return os.WriteFile(filepath.Join(dataDir, AddrFile), []byte(addr+"\n"), 0o644)
}

// ServeAddr is the HTTP address of the serve running on dataDir, as it
// recorded it; fallback when it recorded none.
func ServeAddr(dataDir, fallback string) string {
	b, err := os.ReadFile(filepath.Join(dataDir, AddrFile))
	if err != nil || strings.TrimSpace(string(b)) == "" {
		return fallback
	}
	return strings.TrimSpace(string(b))
}

// TokenFile is where serve keeps its operator token, under data_dir.
const TokenFile = "serve.token"

// WriteOperatorToken makes a new operator token, writes it to
// <dataDir>/serve.token (mode 0600) and sets rt.OperatorToken.
func (rt *Runtime) WriteOperatorToken(dataDir string) error {
	tok := rand.Text()
	if err := os.WriteFile(filepath.Join(dataDir, TokenFile), []byte(tok+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the operator token: %w", err)
	}
	rt.OperatorToken = tok
	return nil
}

// ReadOperatorToken reads the running serve's operator token ("" when
// there is none or it cannot be read).
func ReadOperatorToken(dataDir string) string {
	b, err := os.ReadFile(filepath.Join(dataDir, TokenFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// ScopeFreshness keeps the paths sc may see: those of no table and those
// of a table it sees; a table read through a row filter shows no backlog
// count (Behind), which would count rows the filter hides.
func ScopeFreshness(sc auth.Scope, rows []freshness.Row) []freshness.Row {
	out := []freshness.Row{}
	for _, r := range rows {
		if r.Table == "" || sc.Counts(r.Table) {
			out = append(out, r)
		} else if sc.Sees(r.Table) {
			r.Behind = 0
			out = append(out, r)
		}
	}
	return out
}

// Banner adds a line to what serve prints once everything has started
// (a URL, a psql line).
func (rt *Runtime) Banner(line string) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.banner = append(rt.banner, line)
}

// BannerLines is what services asked serve to print.
func (rt *Runtime) BannerLines() []string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return append([]string(nil), rt.banner...)
}

// Service is a long-running part of citybrain serve.
type Service interface {
	// Name is short and lower-case ("sim", "pgwire", "warnings" …).
	Name() string
	// Start prepares the service (listen, mount HTTP paths, add banner
	// lines) and returns quickly; an error stops serve.
	Start(ctx context.Context, rt *Runtime) error
	// Run does the work until ctx is cancelled, then returns.
	Run(ctx context.Context) error
}

// ServiceFactory builds a service from the runtime's configuration; it
// returns nil, nil when the configuration disables the service.
type ServiceFactory func(rt *Runtime) (Service, error)

var (
	factoriesMu sync.Mutex
	factories   []namedFactory
)

type namedFactory struct {
	order int
	f     ServiceFactory
}

// RegisterService adds a service to citybrain serve (call it from an init
// function of the service's package; internal/cli imports the packages).
// Services start in increasing order (the simulator before the connectors
// read its feeds: order < 0 starts before connectors, ≥ 0 after).
func RegisterService(order int, f ServiceFactory) {
	factoriesMu.Lock()
	defer factoriesMu.Unlock()
	factories = append(factories, namedFactory{order, f})
}

// Services builds the registered services, in start order, keeping those
// with order < 0 first.
func Services(rt *Runtime) (before, after []Service, err error) {
	factoriesMu.Lock()
	fs := append([]namedFactory(nil), factories...)
	factoriesMu.Unlock()
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].order < fs[j-1].order; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
	for _, nf := range fs {
		s, err := nf.f(rt)
		if err != nil {
			return nil, nil, err
		}
		if s == nil {
			continue
		}
		if nf.order < 0 {
			before = append(before, s)
		} else {
			after = append(after, s)
		}
	}
	return before, after, nil
}

// Commit is one lake commit.
type Commit struct {
	Table    string
	Snapshot int64
	At       time.Time
}

// CommitBus fans lake commits out to subscribers. Publish never blocks: a
// subscriber that falls behind loses the oldest pending notifications
// (commits are "something changed" signals; readers re-read the lake).
type CommitBus struct {
	mu   sync.Mutex
	subs []chan Commit
	fns  []func(Commit)
}

// NewCommitBus returns an empty bus.
func NewCommitBus() *CommitBus { return &CommitBus{} }

// Subscribe returns a channel of commits (buffered, lossy when full).
func (b *CommitBus) Subscribe() <-chan Commit {
	ch := make(chan Commit, 256)
	b.mu.Lock()
	b.subs = append(b.subs, ch)
	b.mu.Unlock()
	return ch
}

// OnCommit calls fn synchronously for each commit (keep it quick).
func (b *CommitBus) OnCommit(fn func(Commit)) {
	b.mu.Lock()
	b.fns = append(b.fns, fn)
	b.mu.Unlock()
}

// Publish announces a commit.
func (b *CommitBus) Publish(c Commit) {
	if c.At.IsZero() {
		c.At = time.Now()
	}
	b.mu.Lock()
	subs, fns := b.subs, b.fns
	b.mu.Unlock()
	for _, fn := range fns {
		fn(c)
	}
	for _, ch := range subs {
	send:
		for {
			select {
			case ch <- c:
				break send
			default:
			}
			select { // full: drop the oldest
			case <-ch:
			default:
			}
		}
	}
}
