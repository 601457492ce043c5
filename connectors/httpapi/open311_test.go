package httpapi

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"citybrain/connectors"
	"citybrain/connectors/mapping"
	"citybrain/schemas"
)

// serviceRequest is an Open311 GeoReport v2 service request.
type serviceRequest struct {
	ID          string   `json:"service_request_id"`
	Status      string   `json:"status"`
	ServiceName string   `json:"service_name"`
	Description string   `json:"description"`
	Requested   string   `json:"requested_datetime"`
	Updated     string   `json:"updated_datetime"`
	Lat         *float64 `json:"lat"`
	Long        *float64 `json:"long"`
	Address     string   `json:"address"`

	requested time.Time
}

// nyc311 converts the real NYC 311 sample into Open311 requests. Its times
// are New York local time; in May that is EDT, UTC−4.
func nyc311(t *testing.T) []serviceRequest {
	t.Helper()
	f, err := os.Open("../../testdata/real/city-management/311_Service_Requests_2022-05_sample.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	edt := time.FixedZone("EDT", -4*3600)
	when := func(s string) (time.Time, string) {
		if s == "" {
			return time.Time{}, ""
		}
		tm, err := time.ParseInLocation("01/02/2006 03:04:05 PM", s, edt)
		if err != nil {
			t.Fatal(err)
		}
		return tm, tm.Format(time.RFC3339)
	}
	num := func(s string) *float64 {
		if x, err := strconv.ParseFloat(s, 64); err == nil {
			return &x
		}
		return nil
	}
	var out []serviceRequest
	for _, r := range rows[1:] {
		get := func(name string) string { return r[col[name]] }
		req := serviceRequest{ID: get("Unique Key"), ServiceName: get("Complaint Type"), Description: get("Descriptor"),
			Lat: num(get("Latitude")), Long: num(get("Longitude")), Address: get("Incident Address"), Status: "open"}
		if get("Status") == "Closed" {
			req.Status = "closed"
		}
		req.requested, req.Requested = when(get("Created Date"))
		req.Updated = req.Requested
		for _, c := range []string{"Resolution Action Updated Date", "Closed Date"} {
			if _, u := when(get(c)); u != "" {
				req.Updated = u
				break
			}
		}
		out = append(out, req)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].requested.Before(out[j].requested) })
	return out
}

// open311Server serves requests.json like a GeoReport v2 server: inclusive
// start_date/end_date on requested_datetime, page/page_size paging,
// ascending by requested_datetime.
type open311Server struct {
	reqs []serviceRequest
	mu   sync.Mutex
	seen []string // start_date/end_date of each request
}

func (o *open311Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/open311/v2/requests.json" {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	bound := func(name string) (time.Time, bool) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, false
		}
		tm, err := time.Parse(time.RFC3339, v)
		if err != nil {
			http.Error(w, `[{"code":400,"description":"bad `+name+`"}]`, http.StatusBadRequest)
			return time.Time{}, false
		}
		return tm, true
	}
	from, hasFrom := bound("start_date")
	to, hasTo := bound("end_date")
	if hasFrom && hasTo && to.Sub(from) > 90*24*time.Hour {
		http.Error(w, `[{"code":400,"description":"range over 90 days"}]`, http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	o.seen = append(o.seen, q.Get("start_date")+"/"+q.Get("end_date"))
	o.mu.Unlock()
	var sel []serviceRequest
	for _, sr := range o.reqs {
		if hasFrom && sr.requested.Before(from) || hasTo && sr.requested.After(to) {
			continue
		}
		sel = append(sel, sr)
	}
	page, size := atoi(q.Get("page"), 1), atoi(q.Get("page_size"), 1000)
	lo := min(max(page-1, 0)*size, len(sel))
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(sel[lo:min(lo+size, len(sel))])
}

const cityEventYAML = `name: city_event
version: 1
table: raw.city_events
doc: {zh: 城市管理事件, en: City-management event}
event_time: requested_at
fields:
  - {name: id, type: string, required: true, doc: {zh: 编号, en: Id}}
  - {name: requested_at, type: timestamp, required: true, doc: {zh: 受理时间, en: Requested at}}
  - {name: status, type: string, enum: [open, closed], doc: {zh: 状态, en: Status}}
  - {name: category, type: string, doc: {zh: 类别, en: Category}}
  - {name: lat, type: double, doc: {zh: 纬度, en: Latitude}}
  - {name: lon, type: double, doc: {zh: 经度, en: Longitude}}
`

func TestOpen311RealSample(t *testing.T) {
	reqs := nyc311(t)
	if len(reqs) != 924 {
		t.Fatalf("sample has %d requests, want 924", len(reqs))
	}
	o := &open311Server{reqs: reqs}
	srv := httptest.NewServer(o)
	defer srv.Close()

	schema, err := schemas.Parse([]byte(cityEventYAML))
	if err != nil {
		t.Fatal(err)
	}
	m, err := mapping.New(schema, mapping.Spec{Fields: map[string]mapping.FieldSpec{
		"id": {Column: "service_request_id"}, "requested_at": {Column: "requested_datetime"},
		"status": {Column: "status"}, "category": {Column: "service_name"},
		"lat": {Column: "lat"}, "lon": {Column: "long"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := Open311(srv.URL + "/open311/v2/")
	cfg.Pagination.PageSize = 50
	cfg.RateLimit = 0
	cfg.Since.Initial = "2022-05-01T00:00:00-04:00"
	// Windows of 10m51s over the two hours of the sample, so that the first
	// ends on 00:10:51, when three requests arrived in the same second (a
	// tie at the boundary of two windows); "now" is 03:00 that night so the
	// windows stop there.
	cfg.Since.Window = 10*time.Minute + 51*time.Second
	open := func() *Source {
		s := newSource(t, cfg, m)
		s.now = func() time.Time { return time.Date(2022, 5, 1, 3, 0, 0, 0, time.FixedZone("EDT", -4*3600)) }
		return s
	}
	idx := schema.Index("id")
	check := func(t *testing.T, recs []connectors.Record) {
		t.Helper()
		seen := map[string]bool{}
		for i, r := range recs {
			if r.Err != nil {
				t.Fatalf("reject %v: %v (%s)", r.Cursor, r.Err, r.Raw)
			}
			if r.Cursor.Pos != int64(i+1) || r.Cursor.Stream != srv.URL+"/open311/v2/requests.json" {
				t.Fatalf("record %d cursor %v", i, r.Cursor)
			}
			id := r.Values[idx].(string)
			if seen[id] {
				t.Fatalf("request %s read twice (at %v)", id, r.Cursor)
			}
			seen[id] = true
		}
		if len(recs) != 924 {
			t.Fatalf("read %d requests, want 924", len(recs))
		}
	}

	src := open()
	var all sink
	if err := src.Read(context.Background(), nil, all.emit); err != nil {
		t.Fatal(err)
	}
	check(t, all.recs)
	first := all.recs[0].Values
	if first[idx] != "54049402" || first[schema.Index("category")] != "Noise - Residential" ||
		!first[schema.Index("requested_at")].(time.Time).Equal(time.Date(2022, 5, 1, 4, 0, 3, 0, time.UTC)) {
		t.Errorf("first request %v", first)
	}
	for _, w := range []string{"2022-05-01T00:00:00-04:00/2022-05-01T00:10:51-04:00", "2022-05-01T00:10:51-04:00/2022-05-01T00:21:42-04:00"} {
		if !contains(o.seen, w) {
			t.Errorf("no request for the window %s (requests: %q)", w, o.seen)
		}
	}

	// Nothing new: a read from the end emits nothing.
	var none sink
	if err := src.Read(context.Background(), all.positions(), none.emit); err != nil || len(none.recs) != 0 {
		t.Fatalf("read from the end: %v, %d records", err, len(none.recs))
	}

	// Resume mid-page (and across a window boundary) with a fresh source.
	for _, cut := range []int{75, 1, 49, 50, 51, 333, 923} {
		stop := errors.New("stop")
		var part sink
		err := open().Read(context.Background(), nil, func(ctx context.Context, b []connectors.Record) error {
			for _, r := range b {
				if len(part.recs) == cut {
					return stop
				}
				part.recs = append(part.recs, r)
			}
			return nil
		})
		if !errors.Is(err, stop) {
			t.Fatalf("cut %d: %v", cut, err)
		}
		if err := open().Read(context.Background(), part.positions(), part.emit); err != nil {
			t.Fatal(err)
		}
		t.Run("cut="+strconv.Itoa(cut), func(t *testing.T) { check(t, part.recs) })
		if tok := part.recs[cut-1].Cursor.Token; cut == 75 && !strings.Contains(tok, "skip=25") {
			t.Errorf("cut 75: token %q should resume after 25 records of page 2", tok)
		}
	}
}
