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
	"embed"
	"io/fs"
	"net/http"

	"citybrain/dashboards/pwa"
)

// Prefix is the path the app is served under; the service worker's scope.
const Prefix = "/inspect/"

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

// Mount adds the app to mux: GET (and HEAD) /inspect/… and a permanent
// redirect from /inspect to /inspect/.
func Mount(mux *http.ServeMux) { pwa.Mount(mux, Prefix, Handler()) }
