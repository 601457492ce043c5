// Package dashboards is the leaders' web app: a TypeScript single-page app
// (Apache ECharts, bundled by esbuild from web/ into dist/ and embedded in
// the binary) and the JSON API behind it, served by citybrain serve.
//
// Everything on the pages comes from the lake through the API under
// /api/dash/; answers are cached per endpoint and parameters until a table
// they read is committed again, so the cockpit answers from memory. Live
// warnings are pushed as server-sent events. The app works offline: no CDN,
// no map tiles (the district is drawn from the streets' GeoJSON).
//
// Access: a login (session cookie, HttpOnly, SameSite=Strict, Secure when
// auth.secure_cookies is set) and a CSRF token on every state-changing
// request; a strict Content-Security-Policy on every response (no inline
// script); every value from a feed is rendered as text by the app.
package dashboards

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"citybrain/internal/auth"
	"citybrain/internal/freshness"
	"citybrain/warehouse"
)

//go:embed all:dist
var distFS embed.FS

// CSP is the Content-Security-Policy of every response: scripts, styles,
// data and fonts only from this origin; images also as data:/blob: URLs
// (chart exports).
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// SourceHealth is one source's figures for the data-health page.
type SourceHealth struct {
	Source     string    `json:"source"`
	Table      string    `json:"table"`
	Lag        int64     `json:"lag"`
	Rejects    int64     `json:"rejects"`
	Rows       int64     `json:"rows"`
	LastCommit time.Time `json:"last_commit"`
	Note       string    `json:"note,omitempty"`
}

// RejectReason is a dead-letter reason and how often it occurred.
type RejectReason struct {
	Reason string    `json:"reason"`
	Count  int       `json:"count"`
	Last   time.Time `json:"last"`
}

// Deps is what the server reads. Status and Rejects may be nil (no broker).
type Deps struct {
	Engine *warehouse.Engine
	Lake   *warehouse.Lake
	Auth   *auth.Store
	Log    *slog.Logger
	// Status returns per-source lag, rejects and last commit.
	Status func(ctx context.Context) ([]SourceHealth, error)
	// Rejects returns a source's dead-letter reasons, most recent first.
	Rejects func(ctx context.Context, source string) ([]RejectReason, error)
	// CrowdLevels are the warning engine's crowd levels (warnings.crowd),
	// for the thresholds the crowd page draws.
	CrowdLevels CrowdLevels
	// Fresh is citybrain serve's freshness registry (nil: none; the pages
	// then show the broker's status only).
	Fresh *freshness.Registry
	// Expect are the paths the configuration runs (the warning engine when
	// warnings are enabled …): one that has not reported
	// dashboards.stale_after after start is shown as a warning on 数据健康.
	// Component and Name are matched; Table is shown.
	Expect []freshness.Path
	// SeqStride is the number of units of a partitioned warning engine
	// (0 or 1: one engine). Unit k numbers its transitions k, k+stride, …
	// and the units commit to marts.warnings in any order, so the live push
	// follows each unit's sequence on its own.
	SeqStride int64
	// Peers, when set, is the freshness of the paths other serve instances
	// run (internal/instances): 数据健康 shows the platform as one, an
	// instance that went silent as an alarm. Instance is this one's name.
	Peers    func() []freshness.Row
	Instance string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// CrowdLevels are level → threshold maps (blue, yellow, orange, red).
type CrowdLevels struct {
	CapacityRatio map[string]float64 // people / the venue's capacity
	DensityPerM2  map[string]float64 // people per m² of usable area
}

// Server serves the app and its API.
type Server struct {
	cfg     Config
	d       Deps
	cache   *cache
	live    *hub
	dist    fs.FS
	started time.Time // for Deps.Expect's grace

	healthMu   sync.Mutex
	health     *healthSnap
	healthBusy bool

	pushMu sync.Mutex
	// lastSeq is the newest warning transition pushed per unit of the
	// warning engine (seq mod Deps.SeqStride; under pushMu).
	lastSeq map[int64]int64

	mux *http.ServeMux // to see whether the SQL access service mounted /api/sql

	etags sync.Map // embedded file (and encoding) → ETag
}

// New returns a server.
func New(cfg Config, d Deps) *Server {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	sub, _ := fs.Sub(distFS, "dist")
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = DefaultConfig().StaleAfter
	}
	return &Server{cfg: cfg, d: d, cache: newCache(cfg.StaleWait), live: newHub(), dist: sub, started: d.Now()}
}

// Built reports whether the web bundle is embedded (make build ran npm).
func (s *Server) Built() bool {
	_, err := fs.Stat(s.dist, "index.html")
	return err == nil
}

// Mount registers the app and the API on mux.
func (s *Server) Mount(mux *http.ServeMux) {
	s.mux = mux
	h := func(pattern string, fn http.HandlerFunc) { mux.Handle(pattern, secure(fn)) }
	h("GET /{$}", s.serveIndex)
	h("GET /assets/", s.serveAsset)
	h("POST /api/login", s.login)
	h("POST /api/logout", s.logout)
	h("GET /api/me", s.me)
	h("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/assets/favicon.svg", http.StatusMovedPermanently)
	})
	admin := []auth.Role{auth.RoleAdmin}
	h("GET /api/admin/users", s.authed(s.listUsers, admin))
	h("POST /api/admin/users", s.authed(s.addUser, admin))
	h("PATCH /api/admin/users/{name}", s.authed(s.updateUser, admin))
	h("DELETE /api/admin/users/{name}", s.authed(s.deleteUser, admin))
	h("GET /api/admin/locks", s.authed(s.listLocks, admin))
	h("DELETE /api/admin/locks/{key}", s.authed(s.unlock, admin))
	h("GET /api/dash/config", s.authed(s.config, nil))
	h("GET /api/dash/cockpit", s.authed(s.cockpit, nil))
	h("GET /api/dash/map/{layer}", s.authed(s.mapLayer, nil))
	h("GET /api/dash/risk", s.authed(s.risk, nil))
	h("GET /api/dash/enterprise/{id}", s.authed(s.enterprise, nil))
	h("GET /api/dash/crowd", s.authed(s.crowdVenues, nil))
	h("GET /api/dash/crowd/{venue}", s.authed(s.crowdVenue, nil))
	h("GET /api/dash/warnings", s.authed(s.activeWarnings, nil))
	h("GET /api/dash/health", s.authed(s.healthPage, nil))
	h("GET /api/dash/dept", s.authed(s.deptPage, nil))
	h("GET /api/dash/live", s.authed(s.liveStream, nil))
}

// sqlAvailable reports whether POST /api/sql is served (by the SQL access
// service); the SQL console page is shown only then.
func (s *Server) sqlAvailable() bool {
	if s.mux == nil {
		return false
	}
	req, _ := http.NewRequest(http.MethodPost, "/api/sql", nil)
	_, pattern := s.mux.Handler(req)
	return pattern != ""
}

// secure sets the security headers every response carries.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", CSP)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

type ctxKey struct{}

// userOf is the authenticated user of a request handled under authed.
func userOf(r *http.Request) auth.User { u, _ := r.Context().Value(ctxKey{}).(auth.User); return u }

// authed requires a logged-in user (and one of roles, when given).
func (s *Server) authed(fn http.HandlerFunc, roles []auth.Role) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := s.d.Auth.FromRequest(r)
		if err != nil {
			code := http.StatusUnauthorized
			if !errors.Is(err, auth.ErrUnauthenticated) {
				code = http.StatusForbidden
			}
			writeErr(w, code, err.Error())
			return
		}
		if len(roles) > 0 {
			ok := false
			for _, ro := range roles {
				ok = ok || u.Role == ro
			}
			if !ok {
				writeErr(w, http.StatusForbidden, "not allowed for role "+string(u.Role)+" / 当前角色无权访问")
				return
			}
		}
		fn(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, u)))
	}
}

const notBuilt = `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>CityBrain</title></head><body>
<h1>看板尚未构建 / dashboards not built</h1>
<p>请运行 <code>make build</code>（需要 Node.js 与 npm），然后重启 citybrain serve。</p>
<p>Run <code>make build</code> (needs Node.js and npm), then restart citybrain serve.</p></body></html>`

func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	b, err := fs.ReadFile(s.dist, "index.html")
	if err != nil {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(notBuilt))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", s.etag("index.html", b))
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(b))
}

// hashedAsset matches the content-hashed names of the build (app-<hash>.js).
var hashedAsset = regexp.MustCompile(`-[0-9a-f]{12}\.\w+$`)

// serveAsset serves dist/assets: a content-hashed file (app-<hash>.js) for
// a year, immutable; the others (favicon.svg) revalidated by ETag. A
// browser that accepts brotli or gzip gets the copy the build compressed.
func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(path.Clean(r.URL.Path), "/")
	if !strings.HasPrefix(name, "assets/") || strings.HasSuffix(name, ".br") || strings.HasSuffix(name, ".gz") {
		http.NotFound(w, r)
		return
	}
	body, err := fs.ReadFile(s.dist, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	if hashedAsset.MatchString(name) {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if ct := mime.TypeByExtension(path.Ext(name)); ct != "" {
		h.Set("Content-Type", ct)
	}
	h.Set("Vary", "Accept-Encoding")
	enc := ""
	accept := r.Header.Get("Accept-Encoding")
	for _, e := range []struct{ name, ext string }{{"br", ".br"}, {"gzip", ".gz"}} {
		if acceptsEncoding(accept, e.name) {
			if b, err := fs.ReadFile(s.dist, name+e.ext); err == nil {
				body, enc = b, e.name
				break
			}
		}
	}
	if enc != "" {
		h.Set("Content-Encoding", enc)
	}
	h.Set("ETag", s.etag(name+"#"+enc, body))
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(body))
}

// acceptsEncoding reports whether an Accept-Encoding header allows enc
// (listed, without q=0).
func acceptsEncoding(header, enc string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(name), enc) {
			q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
			return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
		}
	}
	return false
}

// etag is a strong validator of an embedded file's bytes, worked out once.
func (s *Server) etag(key string, body []byte) string {
	if v, ok := s.etags.Load(key); ok {
		return v.(string)
	}
	sum := sha256.Sum256(body)
	tag := `"` + hex.EncodeToString(sum[:8]) + `"`
	s.etags.Store(key, tag)
	return tag
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

type loginReq struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginReq
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "bad request: want JSON {user, password} / 请求格式错误")
		return
	}
	u, err := s.d.Auth.Login(req.User, req.Password, r.RemoteAddr, "web")
	if errors.Is(err, auth.ErrLocked) {
		writeErr(w, http.StatusTooManyRequests, err.Error())
		return
	}
	if err != nil {
		writeErr(w, http.StatusUnauthorized, err.Error())
		return
	}
	token, csrf := s.d.Auth.NewSession(u.Name)
	http.SetCookie(w, &http.Cookie{
		Name: auth.SessionCookie, Value: token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.d.Auth.Config().SecureCookies,
	})
	writeJSON(w, map[string]any{"user": u.Public(), "csrf": csrf})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(auth.SessionCookie); err == nil {
		if _, err := s.d.Auth.FromRequest(r); err != nil {
			writeErr(w, http.StatusForbidden, err.Error())
			return
		}
		s.d.Auth.EndSession(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: auth.SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.d.Auth.Config().SecureCookies})
	writeJSON(w, map[string]bool{"ok": true})
}

// me is the logged-in user and the session's CSRF token, or {"user": null}
// (not a 401: the app asks before showing the login form).
func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	u, err := s.d.Auth.FromRequest(r)
	if err != nil {
		writeJSON(w, map[string]any{"user": nil})
		return
	}
	out := map[string]any{"user": u.Public()}
	if c, err := r.Cookie(auth.SessionCookie); err == nil {
		if _, csrf, ok := s.d.Auth.Session(c.Value); ok {
			out["csrf"] = csrf
		}
	}
	writeJSON(w, out)
}

type userReq struct {
	Name        string  `json:"name"`
	Password    string  `json:"password"`
	Role        string  `json:"role"`
	Department  string  `json:"department"`
	DisplayName *string `json:"display_name"`
	Disabled    *bool   `json:"disabled"`
	// PersonID links the account to a responder of the emergency plans
	// (raw.role_holders.person_id; "" unlinks).
	PersonID *string `json:"person_id"`
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	var deps []map[string]string
	for _, d := range s.d.Auth.Config().Departments {
		en := d.NameEn
		if en == "" {
			en = d.Name
		}
		deps = append(deps, map[string]string{"name": d.Name, "name_zh": d.NameZh, "name_en": en})
	}
	writeJSON(w, map[string]any{"users": s.d.Auth.List(), "departments": deps})
}

// listLocks lists the user names and client addresses locked after failed logins.
func (s *Server) listLocks(w http.ResponseWriter, r *http.Request) {
	locks := s.d.Auth.Locks()
	if locks == nil {
		locks = []auth.Lock{}
	}
	writeJSON(w, map[string]any{"locks": locks})
}

// unlock lifts a lock ("user:NAME" or "addr:IP").
func (s *Server) unlock(w http.ResponseWriter, r *http.Request) {
	if !s.d.Auth.Unlock(r.PathValue("key")) {
		writeErr(w, http.StatusNotFound, "no such lock / 没有该锁定: "+r.PathValue("key"))
		return
	}
	writeJSON(w, map[string]bool{"ok": true})
}

func decodeUser(w http.ResponseWriter, r *http.Request) (userReq, bool) {
	var req userReq
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8192)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "bad request: want JSON / 请求格式错误: "+err.Error())
		return req, false
	}
	return req, true
}

func (s *Server) addUser(w http.ResponseWriter, r *http.Request) {
	req, ok := decodeUser(w, r)
	if !ok {
		return
	}
	if err := s.d.Auth.Add(req.Name, req.Password, auth.Role(req.Role), req.Department); err != nil {
		writeErr(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.DisplayName != nil || req.PersonID != nil {
		s.d.Auth.Update(req.Name, func(u *auth.User) error {
			if req.DisplayName != nil {
				u.DisplayName = *req.DisplayName
			}
			if req.PersonID != nil {
				u.PersonID = *req.PersonID
			}
			return nil
		})
	}
	u, _ := s.d.Auth.Get(req.Name)
	writeJSON(w, u.Public())
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	req, ok := decodeUser(w, r)
	if !ok {
		return
	}
	if name == userOf(r).Name && ((req.Role != "" && req.Role != string(auth.RoleAdmin)) || (req.Disabled != nil && *req.Disabled)) {
		writeErr(w, http.StatusBadRequest, "an admin cannot demote or disable itself / 不能降级或停用自己的管理员账号")
		return
	}
	err := s.d.Auth.Update(name, func(u *auth.User) error {
		if req.Role != "" {
			u.Role = auth.Role(req.Role)
			u.Department = req.Department
		}
		if req.DisplayName != nil {
			u.DisplayName = *req.DisplayName
		}
		if req.Disabled != nil {
			u.Disabled = *req.Disabled
		}
		if req.PersonID != nil {
			u.PersonID = *req.PersonID
		}
		return nil
	})
	if err == nil && req.Password != "" {
		err = s.d.Auth.SetPassword(name, req.Password)
	}
	if err != nil {
		code := http.StatusBadRequest
		if errors.Is(err, auth.ErrNoUser) {
			code = http.StatusNotFound
		}
		writeErr(w, code, err.Error())
		return
	}
	u, _ := s.d.Auth.Get(name)
	writeJSON(w, u.Public())
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if name == userOf(r).Name {
		writeErr(w, http.StatusBadRequest, "an admin cannot delete itself / 不能删除自己的账号")
		return
	}
	if err := s.d.Auth.Delete(name); err != nil {
		writeErr(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, map[string]bool{"ok": true})
}
