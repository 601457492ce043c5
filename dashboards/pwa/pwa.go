// Package pwa serves the platform's phone apps (the responder app,
// dashboards/responder; the inspector app, dashboards/inspector): a few
// embedded files — plain HTML, one script, one style sheet, a manifest, a
// service worker, an icon; no build step — under one path prefix, the
// service worker's scope.
//
// The names are not content-hashed, so every file is revalidated
// (Cache-Control: no-cache, answered by ETag with a 304): a new binary's
// app is picked up on the next load, and the service worker — not the
// HTTP cache — is what makes an app open offline.
package pwa

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

// CSP is the Content-Security-Policy of the apps' files: everything from
// this origin only, no inline script or style (the apps put all data on
// the page as text), no framing. The service worker and the manifest fall
// under default-src.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// File is one of an app's files and its content type.
type File struct{ Name, Type string }

// Files are the files every app has, with their types.
var Files = []File{
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

// Handler serves files of fsys under prefix: index.html at prefix itself,
// the others beside it. Any other path is 404, any method but GET and HEAD
// 405. The apps route inside the page (#/…), so no path needs the index as
// a fallback.
func Handler(prefix string, fsys fs.FS, files []File) http.Handler {
	byName := map[string]file{}
	for _, f := range files {
		b, err := fs.ReadFile(fsys, f.Name)
		if err != nil {
			continue // cannot happen for an embedded FS that lists every file
		}
		sum := sha256.Sum256(b)
		byName[f.Name] = file{ctype: f.Type, body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	byName[""] = byName["index.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutPrefix(r.URL.Path, prefix)
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

// Mount adds h to mux: GET (and HEAD) prefix… and a permanent redirect
// from prefix without its slash.
func Mount(mux *http.ServeMux, prefix string, h http.Handler) {
	mux.Handle("GET "+prefix, h)
	mux.HandleFunc("GET "+strings.TrimSuffix(prefix, "/"), func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, prefix, http.StatusMovedPermanently)
	})
}
