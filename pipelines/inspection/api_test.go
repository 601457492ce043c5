package inspection

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"citybrain/internal/auth"
)

// fakeAuth maps a basic-auth user to a platform user.
type fakeAuth map[string]auth.User

func (f fakeAuth) FromRequest(r *http.Request) (auth.User, error) {
	name, _, ok := r.BasicAuth()
	if u, found := f[name]; ok && found {
		return u, nil
	}
	return auth.User{}, auth.ErrUnauthenticated
}

// apiNow is the test's day: Tuesday 2026-12-08, 10:00 in Beijing.
var apiNow = time.Date(2026, 12, 8, 10, 0, 0, 0, Shanghai)

// apiFixture is an API over an in-memory DuckDB holding the tables it
// reads: two inspectors of street 001 (I1, I2) and one of 003 (I3); units
// E1–E3 in 001, E9 in 003; December's plan gives I1 E1 and E2 today and E3
// tomorrow, I2 E3 today; E2 was inspected on 12-02.
func apiFixture(t *testing.T) (*API, *httptest.Server) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, q := range []string{
		`CREATE SCHEMA raw`, `CREATE SCHEMA marts`,
		`CREATE TABLE raw.inspectors (inspector_id VARCHAR, updated_at TIMESTAMPTZ, name VARCHAR, street_code VARCHAR)`,
		`INSERT INTO raw.inspectors VALUES ('I1', '2026-01-01', '李怡', '110102001'), ('I2', '2026-01-01', '万斌', '110102001'),
			('I3', '2025-01-01', '张强', '110102001'), ('I3', '2026-01-01', '张强', '110102003')`,
		`CREATE TABLE raw.enterprises (id VARCHAR, updated_at TIMESTAMPTZ, name VARCHAR, industry VARCHAR, address VARCHAR, street_code VARCHAR, longitude DOUBLE, latitude DOUBLE)`,
		`INSERT INTO raw.enterprises VALUES ('E1', '2026-01-01', '一号餐饮', '餐饮', '西长安街1号', '110102001', 116.370, 39.905),
			('E2', '2026-01-01', '二号仓储', '仓储', '西长安街2号', '110102001', 116.372, 39.907),
			('E3', '2026-01-01', '三号商场', '商场', '西长安街3号', '110102001', NULL, NULL),
			('E9', '2026-01-01', '九号酒店', '住宿', '新街口9号', '110102003', 116.36, 39.94)`,
		`CREATE TABLE raw.inspections (id VARCHAR, enterprise_id VARCHAR, inspected_at TIMESTAMPTZ, result VARCHAR, inspector_id VARCHAR)`,
		`INSERT INTO raw.inspections VALUES ('X1', 'E2', '2026-12-02 09:00:00+08', 'pass', 'I1'), ('X0', 'E1', '2026-11-20 09:00:00+08', 'pass', 'I2')`,
		`CREATE TABLE marts.inspection_plans (month DATE, visit_no INT, enterprise_id VARCHAR, enterprise_name VARCHAR, street_code VARCHAR,
			inspector_id VARCHAR, day DATE, reason VARCHAR, level VARCHAR)`,
		`INSERT INTO marts.inspection_plans VALUES ('2026-12-01', 1, 'E1', '一号餐饮', '110102001', 'I1', '2026-12-08', 'mandatory_red', 'red'),
			('2026-12-01', 2, 'E2', '二号仓储', '110102001', 'I1', '2026-12-08', 'weighted', 'blue'),
			('2026-12-01', 3, 'E3', '三号商场', '110102001', 'I1', '2026-12-09', 'random', 'blue'),
			('2026-12-01', 4, 'E3', '三号商场', '110102001', 'I2', '2026-12-08', 'weighted', 'yellow')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	a := &API{Auth: fakeAuth{"li": {Name: "li", PersonID: "I1"}, "zhang": {Name: "zhang", PersonID: "I3"}, "boss": {Name: "boss", Role: auth.RoleAdmin},
		"ghost": {Name: "ghost", PersonID: "I404"}},
		Query: db.QueryContext, Spool: t.TempDir(), Now: func() time.Time { return apiNow }}
	mux := http.NewServeMux()
	a.Mount(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return a, srv
}

func call(t *testing.T, srv *httptest.Server, user, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, srv.URL+path, rd)
	req.SetBasicAuth(user, "x")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestVisitsOfTheDay(t *testing.T) {
	a, srv := apiFixture(t)
	code, out := call(t, srv, "li", "GET", "/api/inspect/visits", nil)
	if code != 200 {
		t.Fatalf("visits: %d %v", code, out)
	}
	vs := out["visits"].([]any)
	if len(vs) != 2 {
		t.Fatalf("li's visits today: %v, want E1 and E2", vs)
	}
	e1, e2 := vs[0].(map[string]any), vs[1].(map[string]any)
	if e1["enterprise_id"] != "E1" || e1["address"] != "西长安街1号" || e1["lon"].(float64) != 116.370 || e1["done"] != nil || e1["reason"] != "mandatory_red" {
		t.Errorf("E1: %v (inspected in November: not done this month)", e1)
	}
	if e2["enterprise_id"] != "E2" || e2["done"] == nil {
		t.Errorf("E2: %v, want done (inspected 12-02)", e2)
	}
	// Tomorrow: E3 only (it has no coordinates).
	if _, out := call(t, srv, "li", "GET", "/api/inspect/visits?day=2026-12-09", nil); len(out["visits"].([]any)) != 1 {
		t.Errorf("tomorrow: %v", out)
	}
	// A result received today marks E1 done before the lake has it.
	res := Result{ID: "r-0000000001", Enterprise: "E1", InspectedAt: apiNow.Add(-time.Hour), Result: "pass"}
	if code, out := call(t, srv, "li", "POST", "/api/inspect/results", res); code != 201 {
		t.Fatalf("submit: %d %v", code, out)
	}
	if _, out := call(t, srv, "li", "GET", "/api/inspect/visits", nil); out["visits"].([]any)[0].(map[string]any)["done"] == nil {
		t.Errorf("E1 not done after its result: %v", out)
	}
	for user, want := range map[string]int{"zhang": 200, "ghost": 403, "boss": 403, "nobody": 401} {
		if code, out := call(t, srv, user, "GET", "/api/inspect/visits", nil); code != want {
			t.Errorf("%s: %d %v, want %d", user, code, out, want)
		}
	}
	if code, _ := call(t, srv, "li", "GET", "/api/inspect/visits?day=8.12.2026", nil); code != 400 {
		t.Errorf("a bad day: %d, want 400", code)
	}
	_ = a
}

func TestResultSpool(t *testing.T) {
	a, srv := apiFixture(t)
	res := Result{ID: "8d0c1c8e-4a7e-4c55-9d0e-2f0a1e5b7c11", Enterprise: "E2", InspectedAt: apiNow.Add(-2 * 24 * time.Hour), Result: "rectify",
		Hazards: []ResultHazard{{Level: "general", Description: "灭火器过期", Deadline: "2026-12-31"}, {Level: "major", Description: " 消防通道堵塞 ", Deadline: "2027-02-01"}},
		Notes:   "现场责令整改"}
	code, out := call(t, srv, "li", "POST", "/api/inspect/results", res)
	if code != 201 || out["status"] != "accepted" || out["hazards"].(float64) != 2 {
		t.Fatalf("first send: %d %v", code, out)
	}
	// Sent again (the phone did not hear the answer): recognised, not written again.
	if code, out := call(t, srv, "li", "POST", "/api/inspect/results", res); code != 200 || out["status"] != "duplicate" {
		t.Fatalf("second send: %d %v", code, out)
	}
	ins, _ := filepath.Glob(filepath.Join(a.Spool, "inspections", "*"))
	hz, _ := filepath.Glob(filepath.Join(a.Spool, "hazards", "*"))
	if len(ins) != 1 || len(hz) != 1 {
		t.Fatalf("spool: %v %v, want one file each (no temporary file left)", ins, hz)
	}
	b, _ := os.ReadFile(ins[0])
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec["id"] != "APP-"+res.ID || rec["inspector_id"] != "I1" || rec["hazards_found"].(float64) != 2 || rec["inspected_at"] != "2026-12-06T02:00:00Z" || rec["result"] != "rectify" {
		t.Errorf("inspection record %v", rec)
	}
	b, _ = os.ReadFile(hz[0])
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], `"description":"消防通道堵塞"`) || !strings.Contains(lines[1], `"id":"APP-`+res.ID+`-2"`) ||
		!strings.Contains(lines[0], `"status":"open"`) || !strings.Contains(lines[0], `"inspection_id":"APP-`+res.ID+`"`) {
		t.Errorf("hazard records:\n%s", b)
	}
	// A crash after the hazards file: the result sent again writes the inspection only.
	os.Remove(ins[0])
	if code, _ := call(t, srv, "li", "POST", "/api/inspect/results", res); code != 201 {
		t.Errorf("resend after a half-written result: %d", code)
	}
	if b2, _ := os.ReadFile(hz[0]); !bytes.Equal(b, b2) {
		t.Errorf("hazards file rewritten")
	}
}

func TestResultsValidated(t *testing.T) {
	_, srv := apiFixture(t)
	ok := func() Result {
		return Result{ID: "r-12345678", Enterprise: "E1", InspectedAt: apiNow.Add(-time.Hour), Result: "rectify",
			Hazards: []ResultHazard{{Level: "general", Description: "安全出口标识缺失", Deadline: "2026-12-20"}}}
	}
	for name, c := range map[string]struct {
		user string
		edit func(*Result)
		want string
	}{
		"bad id":              {"li", func(r *Result) { r.ID = "x/../y" }, "id"},
		"future":              {"li", func(r *Result) { r.InspectedAt = apiNow.Add(time.Hour) }, "in the future"},
		"too old":             {"li", func(r *Result) { r.InspectedAt = apiNow.Add(-31 * 24 * time.Hour) }, "over 30 days old"},
		"no time":             {"li", func(r *Result) { r.InspectedAt = time.Time{} }, "inspected_at is missing"},
		"bad result":          {"li", func(r *Result) { r.Result = "ok" }, "pass, fail or rectify"},
		"pass with hazards":   {"li", func(r *Result) { r.Result = "pass" }, "result pass with hazards"},
		"rectify, no hazards": {"li", func(r *Result) { r.Hazards = nil }, "rectify needs at least one hazard"},
		"bad level":           {"li", func(r *Result) { r.Hazards[0].Level = "minor" }, "major or general"},
		"no description":      {"li", func(r *Result) { r.Hazards[0].Description = "  " }, "description: required"},
		"deadline before":     {"li", func(r *Result) { r.Hazards[0].Deadline = "2026-12-07" }, "before the inspection's day"},
		"bad deadline":        {"li", func(r *Result) { r.Hazards[0].Deadline = "next week" }, "deadline: YYYY-MM-DD"},
		"unknown unit":        {"li", func(r *Result) { r.Enterprise = "E404" }, "not in raw.enterprises"},
		"another street":      {"li", func(r *Result) { r.Enterprise = "E9" }, "not in your street"},
		"moved inspector":     {"zhang", func(r *Result) {}, "not in your street"},
	} {
		r := ok()
		c.edit(&r)
		code, out := call(t, srv, c.user, "POST", "/api/inspect/results", r)
		if msg, _ := out["error"].(string); code != 400 || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %v, want 400 with %q", name, code, out, c.want)
		}
	}
	// Unknown fields and broken JSON are refused too.
	req, _ := http.NewRequest("POST", srv.URL+"/api/inspect/results", strings.NewReader(`{"id":"r-12345678","photo":"…"}`))
	req.SetBasicAuth("li", "x")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 400 {
		t.Errorf("unknown field: %v %v", resp, err)
	}
	if code, _ := call(t, srv, "li", "POST", "/api/inspect/results", ok()); code != 201 {
		t.Errorf("the valid result: %d", code)
	}
}
