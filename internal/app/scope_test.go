package app

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"citybrain/internal/auth"
	"citybrain/internal/freshness"
	"citybrain/warehouse"
)

func demoUsers(t *testing.T) *auth.Store {
	t.Helper()
	cfg := auth.DefaultConfig()
	cfg.DemoUsers = true
	cfg.Departments = append(cfg.Departments, auth.Department{Name: "roads", NameZh: "路政",
		Tables: map[string]string{"raw.traffic_speeds": "road_class = 'primary'"}})
	users, err := auth.Open(cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return users
}

// TestScopedMetadata: /api/status, /api/tables and /api/freshness answer
// anonymous callers 401 (only /healthz is open), and a department only
// about its own tables, without whole-table figures of a table it reads
// through a row filter; connector positions are the admins' only.
func TestScopedMetadata(t *testing.T) {
	users := demoUsers(t)
	a := &App{}
	mux := http.NewServeMux()
	a.Mount(mux, nil, users)
	for _, p := range []string{"/api/status", "/api/tables"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", p, nil))
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("anonymous %s: %d, want 401", p, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("/healthz: %d", rec.Code)
	}

	water := users.ScopeOf(auth.User{Name: "w", Role: auth.RoleDepartment, Department: "water"})
	roads := users.ScopeOf(auth.User{Name: "r", Role: auth.RoleDepartment, Department: "roads"})
	analyst := users.ScopeOf(auth.User{Name: "a", Role: auth.RoleAnalyst})
	admin := users.ScopeOf(auth.User{Name: "x", Role: auth.RoleAdmin})

	st := []SourceStatus{
		{Source: "water", Table: "raw.water_telemetry", Rows: 10, Lag: 1},
		{Source: "police", Table: "raw.police_cases", Rows: 20},
		{Source: "traffic", Table: "raw.traffic_speeds", Rows: 30, Rejects: 3},
	}
	if got := ScopeStatus(water, st); len(got) != 1 || got[0].(SourceStatus).Source != "water" {
		t.Errorf("water's status: %+v", got)
	}
	if got := ScopeStatus(roads, st); len(got) != 1 {
		t.Errorf("roads' status: %+v", got)
	} else if m, ok := got[0].(map[string]any); !ok || m["rows"] != nil || m["source"] != "traffic" {
		t.Errorf("roads' row-filtered source shows counts: %+v", got[0])
	}
	if got := ScopeStatus(analyst, st); len(got) != 3 {
		t.Errorf("analyst's status: %d rows", len(got))
	}

	ti := []warehouse.TableInfo{
		{Name: "raw.water_telemetry", Rows: 10, State: warehouse.State{Cluster: "c1"}},
		{Name: "audit.queries", Rows: 5},
		{Name: "marts.warnings", Rows: 7},
		{Name: "raw.police_cases", Rows: 20},
	}
	names := func(xs []any) (out []string) {
		for _, x := range xs {
			switch v := x.(type) {
			case warehouse.TableInfo:
				out = append(out, v.Name)
			case map[string]any:
				out = append(out, v["Name"].(string)+"(filtered)")
			}
		}
		return out
	}
	if got := names(ScopeTables(water, ti)); len(got) != 2 || got[0] != "raw.water_telemetry" || got[1] != "marts.warnings(filtered)" {
		t.Errorf("water's tables: %v", got)
	}
	if got := ScopeTables(analyst, ti); len(got) != 3 || got[0].(warehouse.TableInfo).State.Cluster != "" {
		t.Errorf("analyst's tables (no audit, no connector state): %+v", got)
	}
	if got := ScopeTables(admin, ti); len(got) != 4 || got[0].(warehouse.TableInfo).State.Cluster != "c1" {
		t.Errorf("admin's tables: %+v", got)
	}

	rows := []freshness.Row{
		{State: freshness.State{Path: freshness.Path{Component: "source", Name: "police", Table: "raw.police_cases"}, Behind: 4}},
		{State: freshness.State{Path: freshness.Path{Component: "warnings", Name: "engine", Table: "marts.warnings"}, Behind: 9, Updated: time.Now()}},
		{State: freshness.State{Path: freshness.Path{Component: "models", Name: "runner"}}},
	}
	got := ScopeFreshness(water, rows)
	if len(got) != 2 || got[0].Table != "marts.warnings" || got[0].Behind != 0 || got[1].Component != "models" {
		t.Errorf("water's freshness: %+v", got)
	}
	if got := ScopeFreshness(analyst, rows); len(got) != 3 || got[0].Behind != 4 {
		t.Errorf("analyst's freshness: %+v", got)
	}
}

// TestOperatorToken: serve's operator token (written to data_dir/serve.token,
// mode 0600) reads /api/freshness and /metrics whole; without it an
// anonymous caller gets 401, even on loopback, and a department user only
// its own paths and no /metrics.
func TestOperatorToken(t *testing.T) {
	users := demoUsers(t)
	dir := t.TempDir()
	rt := &Runtime{Mux: http.NewServeMux(), Auth: users, Fresh: freshness.New(time.Now, freshness.DefaultThresholds())}
	rt.Fresh.Set(freshness.State{Path: freshness.Path{Component: "source", Name: "police", Table: "raw.police_cases"}, Committed: time.Now()})
	if err := rt.WriteOperatorToken(dir); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, TokenFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", fi, err)
	}
	tok := ReadOperatorToken(dir)
	if tok == "" || tok != rt.OperatorToken {
		t.Fatalf("read token %q, serve has %q", tok, rt.OperatorToken)
	}
	rt.MountMetrics()
	get := func(path string, set func(*http.Request)) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "127.0.0.1:5555"
		set(req)
		rec := httptest.NewRecorder()
		rt.Mux.ServeHTTP(rec, req)
		return rec
	}
	none := func(*http.Request) {}
	bearer := func(q *http.Request) { q.Header.Set("Authorization", "Bearer "+tok) }
	dept := func(q *http.Request) { q.SetBasicAuth("dept_water", auth.DemoPassword) }
	for _, c := range []struct {
		path string
		set  func(*http.Request)
		code int
		has  string
		not  string
	}{
		{"/api/freshness", none, 401, "", ""},
		{"/metrics", none, 401, "", ""},
		{"/api/freshness", bearer, 200, "raw.police_cases", ""},
		{"/metrics", bearer, 200, "raw.police_cases", ""},
		{"/api/freshness", dept, 200, "", "raw.police_cases"},
		{"/metrics", dept, 403, "", ""},
		{"/api/freshness", func(q *http.Request) { q.Header.Set("Authorization", "Bearer wrong") }, 401, "", ""},
	} {
		rec := get(c.path, c.set)
		if rec.Code != c.code || !strings.Contains(rec.Body.String(), c.has) || (c.not != "" && strings.Contains(rec.Body.String(), c.not)) {
			t.Errorf("%s: %d %.200s; want %d with %q without %q", c.path, rec.Code, rec.Body, c.code, c.has, c.not)
		}
	}
}
