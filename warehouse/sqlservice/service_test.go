package sqlservice

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/jackc/pgx/v5"

	"citybrain/internal/app"
	"citybrain/internal/auth"
	"citybrain/internal/config"
	"citybrain/schemas"
	"citybrain/warehouse"
	"citybrain/warehouse/sqlaccess"
	"citybrain/warehouse/sqlaccess/sqltest"
)

func newAPI(t *testing.T, rowCap int) (*sqltest.Fixture, *httptest.Server) {
	f := sqltest.New(t, sqlaccess.DefaultConfig())
	mux := http.NewServeMux()
	(&Handler{Access: f.Access, Auth: f.Users, RowCap: rowCap}).Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return f, srv
}

type result struct {
	Columns   []struct{ Name, Type string } `json:"columns"`
	Rows      [][]any                       `json:"rows"`
	RowCount  int                           `json:"row_count"`
	Truncated bool                          `json:"truncated"`
	Error     string                        `json:"error"`
	Code      string                        `json:"code"`
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func get(t *testing.T, srv *httptest.Server, user, path string) (*http.Response, []byte) {
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	if user != "" {
		req.SetBasicAuth(user, sqltest.Password)
	}
	return do(t, req)
}

func TestSQLJSON(t *testing.T) {
	_, srv := newAPI(t, 5)
	resp, _ := get(t, srv, "", "/api/sql?q=select+1")
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no credentials: %s", resp.Status)
	}
	body := `{"sql": "select grid_cell_id, people_count, window_start from raw.mobile_signal where people_count >= $1 order by people_count", "params": [45]}`
	req, _ := http.NewRequest("POST", srv.URL+"/api/sql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth("analyst", sqltest.Password)
	resp, b := do(t, req)
	var r result
	if err := json.Unmarshal(b, &r); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%s: %s", resp.Status, b)
	}
	if len(r.Rows) != 5 || r.RowCount != 5 || r.Truncated || r.Columns[1].Type != "BIGINT" || r.Rows[0][1] != float64(45) {
		t.Fatalf("result: %s", b)
	}
	if ts, _ := r.Rows[0][2].(string); !strings.HasSuffix(ts, "+08:00") {
		t.Errorf("timestamps in Beijing time: %v", r.Rows[0][2])
	}
	// The console's row cap.
	_, b = get(t, srv, "analyst", "/api/sql?q="+url.QueryEscape("select * from range(100)"))
	json.Unmarshal(b, &r)
	if len(r.Rows) != 5 || !r.Truncated {
		t.Errorf("row cap: %s", b)
	}
	// Refusals: 403 with SQLSTATE.
	resp, b = get(t, srv, "analyst", "/api/sql?q="+url.QueryEscape("COPY raw.weather TO '/tmp/x.csv'"))
	json.Unmarshal(b, &r)
	if resp.StatusCode != 403 || r.Code != "42501" || !strings.Contains(r.Error, "拒绝执行") {
		t.Errorf("COPY over HTTP: %s %s", resp.Status, b)
	}
	// Syntax errors: 400.
	resp, b = get(t, srv, "analyst", "/api/sql?q=selec")
	if resp.StatusCode != 400 {
		t.Errorf("syntax error: %s %s", resp.Status, b)
	}
}

func TestSQLCSVAndArrow(t *testing.T) {
	_, srv := newAPI(t, 5)
	q := url.QueryEscape("select station, observed_at, rain_mm from raw.weather order by observed_at")
	resp, b := get(t, srv, "analyst", "/api/sql?format=csv&q="+q)
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil || resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv: %v %s", err, b)
	}
	if len(recs) != 25 || recs[0][0] != "station" || !strings.HasSuffix(recs[1][1], "+08:00") {
		t.Errorf("csv (no row cap): %d records, %v", len(recs), recs[:2])
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/sql?q="+q, nil)
	req.Header.Set("Accept", "application/vnd.apache.arrow.stream")
	req.SetBasicAuth("analyst", sqltest.Password)
	resp, b = do(t, req)
	rd, err := ipc.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("arrow: %v (%s)", err, resp.Status)
	}
	defer rd.Release()
	if f := rd.Schema().Field(1); f.Type.ID() != arrow.TIMESTAMP {
		t.Errorf("observed_at is %s", f.Type)
	}
	n := 0
	var first float64 = -1
	for rd.Next() {
		rec := rd.RecordBatch()
		if first < 0 && rec.NumRows() > 0 {
			first = rec.Column(2).(*array.Float64).Value(0)
		}
		n += int(rec.NumRows())
	}
	if n != 24 || first != 0.5 {
		t.Errorf("arrow: %d rows, first rain %v", n, first)
	}
}

func TestDepartmentOverHTTP(t *testing.T) {
	_, srv := newAPI(t, 100)
	_, b := get(t, srv, "dept_water", "/api/sql?q="+url.QueryEscape("select kind from marts.warnings order by kind"))
	var r result
	json.Unmarshal(b, &r)
	if len(r.Rows) != 3 || r.Rows[0][0] != "lifeline" {
		t.Errorf("dept_water warnings over HTTP: %s", b)
	}
	resp, b := get(t, srv, "dept_water", "/api/sql?q="+url.QueryEscape("select count(*) from raw.mobile_signal"))
	if resp.StatusCode != 403 {
		t.Errorf("dept_water raw.mobile_signal over HTTP: %s %s", resp.Status, b)
	}
	_, b = get(t, srv, "dept_water", "/api/catalog")
	var cat sqlaccess.Catalog
	if err := json.Unmarshal(b, &cat); err != nil || len(cat.Tables) != 2 {
		t.Errorf("dept catalog: %s", b)
	}
}

func TestSessionCookieCSRF(t *testing.T) {
	f, srv := newAPI(t, 100)
	tok, csrf := f.Users.NewSession("analyst")
	post := func(withCSRF bool) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+"/api/sql", strings.NewReader(`{"sql": "select 1"}`))
		req.Header.Set("Content-Type", "application/json")
		req.AddCookie(&http.Cookie{Name: auth.SessionCookie, Value: tok})
		if withCSRF {
			req.Header.Set(auth.CSRFHeader, csrf)
		}
		resp, _ := do(t, req)
		return resp
	}
	if r := post(false); r.StatusCode != 401 {
		t.Errorf("POST without CSRF: %s", r.Status)
	}
	if r := post(true); r.StatusCode != 200 {
		t.Errorf("POST with CSRF: %s", r.Status)
	}
	// A bearer token from /api/token.
	req, _ := http.NewRequest("POST", srv.URL+"/api/token", nil)
	req.SetBasicAuth("analyst", sqltest.Password)
	_, b := do(t, req)
	var tk struct{ Token string }
	json.Unmarshal(b, &tk)
	req, _ = http.NewRequest("GET", srv.URL+"/api/sql?q=select+42", nil)
	req.Header.Set("Authorization", "Bearer "+tk.Token)
	resp, b := do(t, req)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "42") {
		t.Errorf("bearer token: %s %s", resp.Status, b)
	}
}

func TestOpenAPI(t *testing.T) {
	_, srv := newAPI(t, 100)
	resp, b := get(t, srv, "", "/api/openapi.json")
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || resp.StatusCode != 200 || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi: %v %s", err, resp.Status)
	}
	for _, p := range []string{"/api/sql", "/api/catalog", "/api/status", "/api/tables", "/api/token", "/healthz"} {
		if _, ok := doc.Paths[p]; !ok {
			t.Errorf("openapi lacks %s", p)
		}
	}
	if _, ok := doc.Paths["/api/sql"]["post"]; !ok {
		t.Error("openapi lacks POST /api/sql")
	}
}

// TestService runs the service as citybrain serve does: wire server,
// HTTP, commits refreshing views, and the audit log committed on a clean
// shutdown.
func TestService(t *testing.T) {
	f := sqltest.New(t, sqlaccess.DefaultConfig())
	cfg := config.Default()
	cfg.DataDir = f.Dir
	cfg.SQLAccess.PGWire.Listen = "127.0.0.1:0"
	cfg.SQLAccess.Audit.FlushInterval = time.Hour // only the shutdown flush
	reg, _ := schemas.Builtin()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rt := &app.Runtime{App: &app.App{Cfg: cfg, Log: log, Reg: reg, Lake: f.Lake}, Engine: f.Engine, Mux: http.NewServeMux(), Auth: f.Users, Commits: app.NewCommitBus()}
	s := &Service{cfg: cfg.SQLAccess}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.Start(ctx, rt); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	hs := httptest.NewServer(rt.Mux)
	defer hs.Close()
	banner := strings.Join(rt.BannerLines(), "\n")
	if !strings.Contains(banner, "psql -h 127.0.0.1 -p ") {
		t.Errorf("banner: %s", banner)
	}
	host, port, _ := net.SplitHostPort(s.ln.Addr().String())
	c, err := pgx.Connect(ctx, "postgres://analyst:"+sqltest.Password+"@"+host+":"+port+"/citybrain?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := c.QueryRow(ctx, "select count(*) from raw.weather where rain_mm > $1", 10.0).Scan(&n); err != nil || n != 14 {
		t.Fatalf("pgwire through the service: %d %v", n, err)
	}
	c.Close(ctx)
	req, _ := http.NewRequest("GET", hs.URL+"/api/sql?q=select+count(*)+from+raw.weather", nil)
	req.SetBasicAuth("leader", sqltest.Password)
	if resp, b := do(t, req); resp.StatusCode != 200 || !strings.Contains(string(b), "[24]") {
		t.Fatalf("HTTP through the service: %s %s", resp.Status, b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Both statements are in audit.queries, committed on shutdown.
	eng, err := warehouse.NewEngine(context.Background(), f.Lake)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	rows, err := eng.Query(context.Background(), "select user_name, interface, outcome, rows from audit.queries order by started_at")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var u, i, o string
		var r int64
		rows.Scan(&u, &i, &o, &r)
		got = append(got, u+"/"+i+"/"+o)
	}
	if strings.Join(got, " ") != "analyst/pgwire/ok leader/http/ok" {
		t.Errorf("audit after shutdown: %v", got)
	}
}
