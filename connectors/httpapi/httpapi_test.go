package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"citybrain/connectors"
	"citybrain/connectors/mapping"
)

type sink struct{ recs []connectors.Record }

func (c *sink) emit(_ context.Context, b []connectors.Record) error {
	c.recs = append(c.recs, b...)
	return nil
}

func (c *sink) positions() connectors.Positions {
	p := connectors.Positions{}
	for _, r := range c.recs {
		p.Advance(r.Cursor)
	}
	return p
}

func newSource(t *testing.T, cfg Config, m *mapping.Mapper) *Source {
	t.Helper()
	s, err := New(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const threeRecords = `[{"cell":"a","window":{"start":"2026-11-01 08:00:00"},"stats":{"people":1}},
{"cell":"b","window":{"start":"2026-11-01 08:00:00"},"stats":{"people":2}},
{"cell":"c","window":{"start":"2026-11-01 08:00:00"},"stats":{"people":3}}]`

func TestRetryHonoursRetryAfter(t *testing.T) {
	m, _ := mobileMapper(t)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) {
		case 1:
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
		default:
			fmt.Fprint(w, threeRecords)
		}
	}))
	defer srv.Close()
	// Backoff of a minute: only honouring Retry-After: 0 finishes in time.
	src := newSource(t, Config{URL: srv.URL, Retry: Retry{MaxAttempts: 5, BaseDelay: time.Minute, MaxDelay: time.Minute}}, m)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var c sink
	if err := src.Read(ctx, nil, c.emit); err != nil {
		t.Fatal(err)
	}
	if len(c.recs) != 3 || n.Load() != 3 {
		t.Fatalf("got %d records in %d requests, want 3 in 3", len(c.recs), n.Load())
	}
}

func TestRetryGivesUp(t *testing.T) {
	m, _ := mobileMapper(t)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer srv.Close()
	src := newSource(t, Config{URL: srv.URL, Retry: Retry{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}}, m)
	var c sink
	err := src.Read(context.Background(), nil, c.emit)
	if err == nil || errors.Is(err, connectors.ErrPermanent) {
		t.Fatalf("got %v, want a non-permanent error", err)
	}
	if n.Load() != 3 {
		t.Fatalf("%d requests, want MaxAttempts = 3", n.Load())
	}
	if !strings.Contains(err.Error(), "500") {
		t.Errorf("error %q does not say what failed", err)
	}
}

func TestTimeoutIsRetriedThenTransient(t *testing.T) {
	m, _ := mobileMapper(t)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(2 * time.Second):
		}
	}))
	defer srv.Close()
	src := newSource(t, Config{URL: srv.URL, Timeout: 50 * time.Millisecond, Retry: Retry{MaxAttempts: 2, BaseDelay: time.Millisecond}}, m)
	err := src.Read(context.Background(), nil, (&sink{}).emit)
	if err == nil || errors.Is(err, connectors.ErrPermanent) || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Fatalf("got %v after %d requests, want a non-permanent error after 2 attempts", err, n.Load())
	}
}

func TestClientErrorsArePermanent(t *testing.T) {
	m, _ := mobileMapper(t)
	for _, code := range []int{400, 401, 403, 404} {
		var n atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n.Add(1)
			http.Error(w, "no", code)
		}))
		src := newSource(t, Config{URL: srv.URL, Retry: Retry{BaseDelay: time.Millisecond}}, m)
		err := src.Read(context.Background(), nil, (&sink{}).emit)
		srv.Close()
		if !errors.Is(err, connectors.ErrPermanent) || n.Load() != 1 {
			t.Errorf("HTTP %d: got %v after %d requests, want ErrPermanent after 1", code, err, n.Load())
		}
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	m, _ := mobileMapper(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	src := newSource(t, Config{URL: srv.URL, Retry: Retry{MaxAttempts: 10, BaseDelay: time.Minute, MaxDelay: time.Minute}}, m)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	err := src.Read(ctx, nil, (&sink{}).emit)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Fatalf("got %v after %v, want context.Canceled promptly", err, time.Since(start))
	}
}

func TestAuth(t *testing.T) {
	m, _ := mobileMapper(t)
	t.Setenv("CB_TEST_HTTP_TOKEN", "s3cret")
	for _, tc := range []struct{ header, want string }{
		{"", "Authorization: Bearer s3cret"},
		{"X-App-Token", "X-App-Token: s3cret"},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			name, value, _ := strings.Cut(tc.want, ": ")
			if r.Header.Get(name) != value {
				http.Error(w, "who are you", http.StatusUnauthorized)
				return
			}
			fmt.Fprint(w, threeRecords)
		}))
		src := newSource(t, Config{URL: srv.URL, Auth: Auth{TokenEnv: "CB_TEST_HTTP_TOKEN", Header: tc.header}}, m)
		var c sink
		err := src.Read(context.Background(), nil, c.emit)
		srv.Close()
		if err != nil || len(c.recs) != 3 {
			t.Errorf("header %q: %v, %d records", tc.header, err, len(c.recs))
		}
	}
	if _, err := New(Config{URL: "http://127.0.0.1/x", Auth: Auth{TokenEnv: "CB_TEST_HTTP_UNSET"}}, m); err == nil {
		t.Error("an unset token variable must fail New")
	}
}

func TestRejects(t *testing.T) {
	m, s := mobileMapper(t)
	big := `{"cell":"` + strings.Repeat("x", 300) + `","window":{"start":"2026-11-01 08:00:00"},"stats":{"people":9}}`
	body := `[{"cell":"a","window":{"start":"2026-11-01 08:00:00"},"stats":{"people":1}},
		{"cell":"b","window":{"start":"2026-11-01 08:00:00"},"stats":{"people":"many"}},
		{"cell":"c","stats":{"people":3}},
		42,
		` + big + `,
		{"stats":{"people":6},"window":{"start":"2026-11-01 08:00:00"},"cell":"f"}]`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) }))
	defer srv.Close()
	src := newSource(t, Config{URL: srv.URL + "/api?x=1", MaxRecordBytes: 200}, m)
	var c sink
	if err := src.Read(context.Background(), nil, c.emit); err != nil {
		t.Fatal(err)
	}
	if len(c.recs) != 6 {
		t.Fatalf("%d records, want 6", len(c.recs))
	}
	for i, r := range c.recs {
		if r.Cursor.Stream != srv.URL+"/api" || r.Cursor.Pos != int64(i+1) {
			t.Errorf("record %d cursor %v", i, r.Cursor)
		}
		good := i == 0 || i == 5
		if good != (r.Err == nil) {
			t.Errorf("record %d: err %v", i, r.Err)
		}
		if !good && (len(r.Raw) == 0 || r.Values != nil) {
			t.Errorf("reject %d: raw %q values %v", i, r.Raw, r.Values)
		}
	}
	if got := c.recs[5].Values[s.Index("people_count")]; got != int64(6) {
		t.Errorf("other key order: people_count = %v", got)
	}
	if string(c.recs[3].Raw) != "42" || len(c.recs[4].Raw) != 200 {
		t.Errorf("raw of non-object %q, of oversized %d bytes", c.recs[3].Raw, len(c.recs[4].Raw))
	}
}

// TestSinceTies: an incremental API (inclusive since on a sequence field)
// with several records sharing the boundary value; records added later at
// that same value are read once, old ones not again.
func TestSinceTies(t *testing.T) {
	m, s := mobileMapper(t)
	type rec struct{ id, seq int }
	var mu sync.Mutex
	data := []rec{{0, 1}, {1, 1}, {2, 2}, {3, 2}, {4, 2}}
	var sinces []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		q := r.URL.Query()
		since := atoi(q.Get("after"), 0)
		sinces = append(sinces, q.Get("after"))
		var sel []string
		for _, d := range data {
			if d.seq >= since {
				sel = append(sel, fmt.Sprintf(`{"cell":"c","window":{"start":"2026-11-01 08:00:00"},"stats":{"people":%d},"seq":%d}`, d.id, d.seq))
			}
		}
		size, page := atoi(q.Get("page_size"), 2), atoi(q.Get("page"), 1)
		lo := min((page-1)*size, len(sel))
		fmt.Fprintf(w, "[%s]", strings.Join(sel[lo:min(lo+size, len(sel))], ","))
	}))
	defer srv.Close()
	src := newSource(t, Config{URL: srv.URL, Pagination: Pagination{Kind: PageNumber, PageSize: 2},
		Since: Since{Param: "after", Field: "seq", Initial: "0"}}, m)
	ids := func(rs []connectors.Record) []int {
		var out []int
		for _, r := range rs {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			out = append(out, int(r.Values[s.Index("people_count")].(int64)))
		}
		return out
	}
	var c sink
	if err := src.Read(context.Background(), nil, c.emit); err != nil {
		t.Fatal(err)
	}
	if got := ids(c.recs); !reflect.DeepEqual(got, []int{0, 1, 2, 3, 4}) {
		t.Fatalf("first read %v", got)
	}
	if !contains(sinces, "2") {
		t.Errorf("the since value did not advance to the largest seq: requests used %q", sinces)
	}
	mu.Lock()
	data = append(data, rec{5, 2}, rec{6, 3}, rec{7, 3})
	mu.Unlock()
	for cut := 1; cut <= 3; cut++ { // resume from each record of the second read
		var more sink
		from := c.positions()
		stop := errors.New("stop")
		n := 0
		err := src.Read(context.Background(), from, func(ctx context.Context, b []connectors.Record) error {
			for _, r := range b {
				if n == cut {
					return stop
				}
				n++
				more.recs = append(more.recs, r)
			}
			return nil
		})
		if cut < 3 && !errors.Is(err, stop) || cut == 3 && err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if err := src.Read(context.Background(), more.positions2(from), more.emit); err != nil {
			t.Fatal(err)
		}
		if got := ids(more.recs); !reflect.DeepEqual(got, []int{5, 6, 7}) {
			t.Fatalf("cut %d: second read %v, want [5 6 7]", cut, got)
		}
		for i, r := range more.recs {
			if r.Cursor.Pos != int64(6+i) {
				t.Errorf("cut %d: record %d has Pos %d, want %d", cut, i, r.Cursor.Pos, 6+i)
			}
		}
	}
}

// positions2 is the positions after the records, starting from base.
func (c *sink) positions2(base connectors.Positions) connectors.Positions {
	p := connectors.Positions{}
	for k, v := range base {
		p[k] = v
	}
	for _, r := range c.recs {
		p.Advance(r.Cursor)
	}
	return p
}

func TestResumeFromPosWithoutToken(t *testing.T) {
	m, s := mobileMapper(t)
	f := &feed{kind: PageNumber}
	f.add(0, 250)
	srv := httptest.NewServer(f)
	defer srv.Close()
	src := newSource(t, Config{URL: srv.URL + "/feed", Records: "data.items", Pagination: pagination(PageNumber)}, m)
	var c sink
	from := connectors.Positions{src.Stream(): {Stream: src.Stream(), Pos: 120}}
	if err := src.Read(context.Background(), from, c.emit); err != nil {
		t.Fatal(err)
	}
	if len(c.recs) != 130 || c.recs[0].Values[s.Index("people_count")] != int64(120) || c.recs[0].Cursor.Pos != 121 {
		t.Fatalf("%d records, first %v at %v", len(c.recs), c.recs[0].Values, c.recs[0].Cursor)
	}
}

func TestRateLimit(t *testing.T) {
	m, _ := mobileMapper(t)
	f := &feed{kind: PageNumber}
	f.add(0, 9)
	srv := httptest.NewServer(f)
	defer srv.Close()
	p := pagination(PageNumber)
	p.PageSize = 1
	src := newSource(t, Config{URL: srv.URL + "/feed", Records: "data.items", Pagination: p, RateLimit: 20}, m)
	start := time.Now()
	var c sink
	if err := src.Read(context.Background(), nil, c.emit); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if len(c.recs) != 9 || f.requests.Load() != 10 {
		t.Fatalf("%d records in %d requests, want 9 in 10", len(c.recs), f.requests.Load())
	}
	if took < 400*time.Millisecond { // 9 intervals of 50 ms
		t.Fatalf("10 requests at 20/s took %v, want ≥ 0.45 s", took)
	}
}

func TestPagingIgnored(t *testing.T) {
	m, _ := mobileMapper(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, threeRecords) }))
	defer srv.Close()
	src := newSource(t, Config{URL: srv.URL, Pagination: Pagination{Kind: PageNumber}}, m)
	var c sink
	err := src.Read(context.Background(), nil, c.emit)
	if !errors.Is(err, connectors.ErrPermanent) || len(c.recs) != 3 {
		t.Fatalf("got %v with %d records, want ErrPermanent after the first page", err, len(c.recs))
	}
}

func TestFlatten(t *testing.T) {
	h, r, err := flatten([]byte(`{"a":1,"b":{"c":"x\u00e9","d":{"e":null}},"f":[1, 2],"g":true,"h":1.50e3,"i":{}}`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantH := []string{"a", "b.c", "b.d.e", "f", "g", "h"}
	wantR := []string{"1", "xé", "", "[1,2]", "true", "1.50e3"}
	if !reflect.DeepEqual(h, wantH) || !reflect.DeepEqual(r, wantR) {
		t.Fatalf("got %q %q", h, r)
	}
	for _, bad := range []string{`[1]`, `"s"`, `{"a":1} {}`, `{"a":}`, ``, `{"a":1`} {
		if _, _, err := flatten([]byte(bad), nil, nil); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	bad := []Config{
		{},
		{URL: "ftp://x/y"},
		{URL: "/relative"},
		{URL: "http://h", Method: "DELETE"},
		{URL: "http://h", Pagination: Pagination{Kind: "cursor"}},
		{URL: "http://h", Pagination: Pagination{Kind: "pages"}},
		{URL: "http://h", Since: Since{Param: "start_date"}},
		{URL: "http://h", Since: Since{Param: "s", Field: "f", Layout: "2006-01-02", Initial: "yesterday"}},
		{URL: "http://h", Since: Since{Param: "s", Field: "f", Window: time.Hour, EndParam: "e"}},
		{URL: "http://h", Auth: Auth{Header: "X-Key"}},
		{URL: "http://h", RateLimit: -1},
	}
	for i, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("%d: %+v validated", i, c)
		}
	}
	if err := Open311("https://311.example.gov/open311/v2/").Validate(); err != nil {
		t.Errorf("Open311 profile: %v", err)
	}
}

func TestTokenRoundTrip(t *testing.T) {
	st := state{since: "2022-05-01T00:30:00-04:00", ts: []string{"a1", "b2"}, page: 3, skip: 17, max: "2022-05-01T00:31:00-04:00", tm: []string{"c3"}}
	tok := st.encode(PageNumber)
	got, err := decodeState(tok, PageNumber, 1)
	if err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("%q → %+v, %v", tok, got, err)
	}
	if _, err := decodeState("skip=x", PageNumber, 1); err == nil {
		t.Error("bad skip accepted")
	}
}
