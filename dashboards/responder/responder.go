// Package responder is the responder web app of issue #24: the phone app in
// which a person named in an emergency plan sees the tasks the response
// service gave them, acknowledges them, reports progress and closes them
// (docs/response.md, "Responder app").
//
// It is a separate app from the leaders' dashboards because its users and
// its constraints differ: one person's few tasks on a phone, often on a poor
// connection, installed to the home screen. So it is plain HTML, one ES2020
// script and one style sheet — no framework, no build step, nothing loaded
// from another origin (no CDN, web fonts or map tiles: the event map is an
// SVG schematic) — embedded in the binary and served at /respond/. A
// service worker keeps the app shell, so the app opens without a network
// and says it is offline; the API (pipelines/response.API, /api/respond/)
// is never cached.
//
// Login is the platform's: POST /api/login sets the session cookie and
// returns the CSRF token, GET /api/me returns it again after a reload, and
// every state-changing call carries it in auth.CSRFHeader.
package responder

import (
	"embed"
	"io/fs"
	"net/http"

	"citybrain/dashboards/pwa"
)

// Prefix is the path the app is served under; the service worker's scope.
const Prefix = "/respond/"

// CSP is the Content-Security-Policy of the app's files (pwa.CSP).
const CSP = pwa.CSP

//go:embed static/index.html static/app.js static/app.css static/manifest.webmanifest static/sw.js static/icon.svg
var static embed.FS

// Handler serves the app under Prefix (pwa.Handler): index.html at Prefix
// itself, app.js, app.css, manifest.webmanifest, sw.js and icon.svg beside
// it; any other path 404, any method but GET and HEAD 405.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // cannot happen: the go:embed line names static/
	}
	return pwa.Handler(Prefix, sub, pwa.Files)
}

// Mount adds the app to mux: GET (and HEAD) /respond/… and a permanent
// redirect from /respond to /respond/.
func Mount(mux *http.ServeMux) { pwa.Mount(mux, Prefix, Handler()) }
