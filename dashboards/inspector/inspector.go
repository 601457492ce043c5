// Package inspector is the grid safety inspector's phone app of issue 25
// (双随机、一公开, docs/inspection.md, "the inspector's phone page"): the
// day's planned visits as cards and on a schematic map, and the result
// form of a visit — pass, rectification ordered or fail, the hazards found
// with their deadlines, notes.
//
// It is built like the responder app (dashboards/responder) for the same
// reasons: one person's few units on a phone, often in a basement or a
// workshop without signal, installed to the home screen. So it is plain
// HTML, one ES2020 script and one style sheet — no framework, no build
// step, nothing loaded from another origin (the map of the day's units is
// an SVG schematic, not tiles) — embedded in the binary and served at
// /inspect/. A service worker keeps the app shell, so the app opens without
// a network; the API (pipelines/inspection.API, /api/inspect/) is never
// cached by it.
//
// A saved result goes to an outbox kept in the phone's localStorage before
// anything is sent, and leaves it only when the server has it (201
// accepted, or 200 duplicate: the result's id, made on the phone when the
// form is saved, lets the server recognise a result sent twice) or when the
// inspector discards a result the server refused (400, its reason shown on
// the form). An outbox that cannot be sent (offline, or a 5xx) is sent again
// when the phone is back online, when the app loads, and every 30 seconds.
//
// Login is the platform's: POST /api/login sets the session cookie and
// returns the CSRF token, GET /api/me returns it again after a reload, and
// every POST carries it in auth.CSRFHeader.
package inspector

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"net/http"
	"strings"
	"time"
)

// Prefix is the path the app is served under; the service worker's scope.
const Prefix = "/inspect/"

// CSP is the Content-Security-Policy of the app's files: everything from
// this origin only, no inline script or style (the app puts all data on the
// page as text), no framing. The service worker and the manifest fall under
// default-src.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

//go:embed static/index.html static/app.js static/app.css static/manifest.webmanifest static/sw.js static/icon.svg
var static embed.FS

// files are the app's files with their content types. The names are not
// content-hashed (there is no build step), so every file is revalidated
// (Cache-Control: no-cache, answered by ETag with a 304): a new binary's
// app is picked up on the next load, and the service worker — not the HTTP
// cache — is what makes the app open offline.
var files = []struct{ name, ctype string }{
	{"index.html", "text/html; charset=utf-8"},
	{"app.js", "text/javascript; charset=utf-8"},
	{"app.css", "text/css; charset=utf-8"},
	{"manifest.webmanifest", "application/manifest+json; charset=utf-8"},
	{"sw.js", "text/javascript; charset=utf-8"},
	{"icon.svg", "image/svg+xml"},
}

type file struct {
	ctype string
	body  []byte
	etag  string
}

// Handler serves the app under Prefix: index.html at Prefix itself, and
// app.js, app.css, manifest.webmanifest, sw.js and icon.svg beside it. Any
// other path is 404, any method but GET and HEAD 405. The app routes inside
// the page (#/d/DAY/v/N), so no path needs the index as a fallback.
func Handler() http.Handler {
	byName := map[string]file{}
	for _, f := range files {
		b, err := static.ReadFile("static/" + f.name)
		if err != nil {
			continue // cannot happen: the go:embed line lists every file
		}
		sum := sha256.Sum256(b)
		byName[f.name] = file{ctype: f.ctype, body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	byName[""] = byName["index.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		f, found := byName[name]
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed / 不支持该请求方法", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
	})
}

// Mount adds the app to mux: GET (and HEAD) /inspect/… and a permanent
// redirect from /inspect to /inspect/. The API it talks to is mounted
// separately (pipelines/inspection.API.Mount).
func Mount(mux *http.ServeMux) {
	mux.Handle("GET "+Prefix, Handler())
	mux.HandleFunc("GET "+strings.TrimSuffix(Prefix, "/"), func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
	})
}
