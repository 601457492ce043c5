package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"citybrain/connectors"
	"citybrain/connectors/connectortest"
	"citybrain/connectors/mapping"
	"citybrain/schemas"
)

// feed is a local JSON API over a growing list of records, paged the way
// one pagination kind expects.
type feed struct {
	kind     string
	mu       sync.Mutex
	recs     []json.RawMessage
	requests atomic.Int64
}

func (f *feed) add(from, to int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := from; i < to; i++ {
		f.recs = append(f.recs, json.RawMessage(fmt.Sprintf(
			`{"cell":"XC-%d","window":{"start":"2026-11-01 08:00:00"},"stats":{"people":%d,"ok":true,"tags":[1,2]},"note":null}`, i%50, i)))
	}
}

func atoi(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

func (f *feed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	f.mu.Lock()
	recs := f.recs
	f.mu.Unlock()
	q := r.URL.Query()
	size := atoi(q.Get("limit"), atoi(q.Get("page_size"), 100))
	page := func(start int) []json.RawMessage {
		start = max(0, min(start, len(recs)))
		return recs[start:min(start+size, len(recs))]
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	switch f.kind {
	case PageNumber: // {"data":{"items":[…]}}, pages from 1
		enc.Encode(map[string]any{"data": map[string]any{"items": page((atoi(q.Get("page"), 1) - 1) * size)}})
	case PageOffset: // a top-level array
		enc.Encode(page(atoi(q.Get("offset"), 0)))
	case PageCursor: // {"items":[…],"meta":{"next_cursor":"c<n>"|null}}
		start := 0
		if c := q.Get("cursor"); c != "" {
			start = atoi(strings.TrimPrefix(c, "c"), -1)
			if start < 0 {
				http.Error(w, "bad cursor", http.StatusBadRequest)
				return
			}
		}
		items := page(start)
		var next any
		if end := start + len(items); end < len(recs) {
			next = "c" + strconv.Itoa(end)
		}
		enc.Encode(map[string]any{"items": items, "meta": map[string]any{"next_cursor": next}})
	case PageLink: // a top-level array, the next page in a Link header
		start := atoi(q.Get("from"), 0)
		items := page(start)
		if end := start + len(items); end < len(recs) {
			w.Header().Set("Link", fmt.Sprintf(`</feed?from=%d&limit=%d>; rel="next", </feed>; rel="first"`, end, size))
		}
		enc.Encode(items)
	}
}

func mobileMapper(t testing.TB) (*mapping.Mapper, *schemas.Schema) {
	t.Helper()
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.Get("mobile_signal")
	if err != nil {
		t.Fatal(err)
	}
	m, err := mapping.New(s, mapping.Spec{Fields: map[string]mapping.FieldSpec{
		"grid_cell_id": {Column: "cell"}, "window_start": {Column: "window.start"}, "people_count": {Column: "stats.people"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

func pagination(kind string) Pagination {
	switch kind {
	case PageNumber:
		return Pagination{Kind: kind, PageSize: 100}
	case PageOffset:
		return Pagination{Kind: kind, PageSize: 100}
	case PageCursor:
		return Pagination{Kind: kind, PageSize: 100, NextCursor: "meta.next_cursor"}
	default:
		return Pagination{Kind: kind, SizeParam: "limit", PageSize: 100}
	}
}

func records(kind string) string {
	switch kind {
	case PageNumber:
		return "data.items"
	case PageCursor:
		return "items"
	}
	return ""
}

// TestConformance runs the transport suite against local JSON APIs, one
// per pagination kind; a growing feed is records appended to the API.
func TestConformance(t *testing.T) {
	m, s := mobileMapper(t)
	for _, kind := range []string{PageNumber, PageCursor, PageOffset, PageLink} {
		t.Run(kind, func(t *testing.T) {
			var cur *feed
			connectortest.Run(t, connectortest.Harness{
				New: func(t *testing.T, n int) connectors.Source {
					cur = &feed{kind: kind}
					cur.add(0, n)
					srv := httptest.NewServer(cur)
					t.Cleanup(srv.Close)
					src, err := New(Config{URL: srv.URL + "/feed", Records: records(kind), Pagination: pagination(kind)}, m)
					if err != nil {
						t.Fatal(err)
					}
					return src
				},
				Append: func(t *testing.T, n, k int) { cur.add(n, n+k) },
				Key:    func(r connectors.Record) int { return int(r.Values[s.Index("people_count")].(int64)) },
				Broken: func(t *testing.T) connectors.Source {
					srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						http.Error(w, `{"error":"invalid token"}`, http.StatusUnauthorized)
					}))
					t.Cleanup(srv.Close)
					src, err := New(Config{URL: srv.URL + "/feed", Pagination: pagination(kind)}, m)
					if err != nil {
						t.Fatal(err)
					}
					return src
				},
			})
		})
	}
}
