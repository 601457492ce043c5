package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"citybrain/internal/auth"
	"citybrain/pipelines/extracts"
	"citybrain/pipelines/extracts/extracttest"
	"citybrain/schemas"
	"citybrain/warehouse"
)

func TestAPIScopedToDepartment(t *testing.T) {
	ctx := context.Background()
	wcfg := warehouse.DefaultConfig()
	wcfg.Dir = t.TempDir()
	lake, err := warehouse.Open(ctx, wcfg, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	reg, _ := schemas.Builtin()
	s, _ := reg.Get("incidents")
	if _, err := extracttest.Fill(ctx, lake, s, 100, func(i int, r schemas.Record) {
		r[s.Index("id")] = fmt.Sprintf("JQ%03d", i)
		r[s.Index("received_at")] = time.Date(2026, 11, 27, 0, i, 0, 0, time.UTC)
		r[s.Index("category")] = "fire"
		r[s.Index("street_code")] = []string{"east", "west"}[i%2]
	}); err != nil {
		t.Fatal(err)
	}
	eng, err := warehouse.NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ac := auth.DefaultConfig()
	ac.Departments = []auth.Department{
		{Name: "east", Tables: map[string]string{"raw.incidents": "street_code = 'east'"}},
		{Name: "west", Tables: map[string]string{"raw.incidents": "street_code = 'west'"}},
	}
	users, err := auth.Open(ac, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const pw = "a-long-test-password-1"
	for _, u := range []struct {
		name string
		role auth.Role
		dept string
	}{{"boss", auth.RoleAdmin, ""}, {"ana", auth.RoleAnalyst, ""}, {"e1", auth.RoleDepartment, "east"}, {"w1", auth.RoleDepartment, "west"}} {
		if err := users.Add(u.name, pw, u.role, u.dept); err != nil {
			t.Fatal(err)
		}
	}
	cfg := extracts.DefaultConfig()
	def := func(name, dept string) extracts.Definition {
		return extracts.Definition{Name: name, Department: dept, Format: "csv", Source: extracts.Source{Table: "raw.incidents"},
			Columns: []string{"id", "street_code"}, Schedule: extracts.ScheduleConfig{Cron: "0 6 * * *"}}
	}
	west := def("west-inc", "west")
	west.Encoding = "gb18030"
	cfg.Definitions = []extracts.Definition{def("east-inc", "east"), west}
	r, err := extracts.NewRunner(cfg, t.TempDir(), eng, lake, users, nil)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	Mount(mux, r, users, nil)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(user, method, path string) (int, []byte) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if user != "" {
			req.SetBasicAuth(user, pw)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	if code, _ := call("", "GET", "/api/extracts"); code != 401 {
		t.Errorf("anonymous list: %d", code)
	}
	var list []Summary
	code, b := call("e1", "GET", "/api/extracts")
	json.Unmarshal(b, &list)
	if code != 200 || len(list) != 1 || list[0].Name != "east-inc" || list[0].NextRun.IsZero() {
		t.Errorf("east's list: %d %s", code, b)
	}
	if code, _ := call("boss", "GET", "/api/extracts"); code != 200 {
		t.Errorf("admin list %d", code)
	}
	if code, _ := call("w1", "GET", "/api/extracts/east-inc"); code != 404 {
		t.Errorf("west reading east's extract: %d", code)
	}
	if code, _ := call("w1", "POST", "/api/extracts/east-inc/run"); code != 404 {
		t.Errorf("west running east's extract: %d", code)
	}
	if code, _ := call("ana", "POST", "/api/extracts/east-inc/run"); code != 403 {
		t.Errorf("analyst running: %d", code)
	}
	code, b = call("e1", "POST", "/api/extracts/east-inc/run?period=2026-11-28T06:00:00%2B08:00")
	var m extracts.Manifest
	if code != 200 || json.Unmarshal(b, &m) != nil || m.Rows != 50 {
		t.Fatalf("east's run: %d %s", code, b)
	}
	code, file := call("e1", "GET", "/api/extracts/deliveries/"+m.ID+"/download")
	sum := sha256.Sum256(file)
	if code != 200 || hex.EncodeToString(sum[:]) != m.SHA256 {
		t.Errorf("download: %d, sha %x want %s", code, sum, m.SHA256)
	}
	if code, _ := call("w1", "GET", "/api/extracts/deliveries/"+m.ID+"/download"); code != 404 {
		t.Errorf("west downloading east's file: %d", code)
	}
	// Each file is served in its own encoding.
	code, b = call("w1", "POST", "/api/extracts/west-inc/run?period=2026-11-28T06:00:00%2B08:00")
	var wm extracts.Manifest
	if code != 200 || json.Unmarshal(b, &wm) != nil {
		t.Fatalf("west's run: %d %s", code, b)
	}
	for _, c := range []struct{ user, id, want string }{{"e1", m.ID, "text/csv; charset=utf-8"}, {"w1", wm.ID, "text/csv; charset=gb18030"}} {
		req, _ := http.NewRequest("GET", srv.URL+"/api/extracts/deliveries/"+c.id+"/download", nil)
		req.SetBasicAuth(c.user, pw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Content-Type"); got != c.want {
			t.Errorf("%s's download: Content-Type %q, want %q", c.user, got, c.want)
		}
	}
	code, b = call("e1", "GET", "/api/extracts/east-inc/history")
	var h []extracts.Manifest
	if code != 200 || json.Unmarshal(b, &h) != nil || len(h) != 1 || h[0].ID != m.ID {
		t.Errorf("history: %d %s", code, b)
	}
	if code, _ := call("boss", "POST", "/api/extracts/east-inc/run?period=yesterday"); code != 400 {
		t.Errorf("bad period: %d", code)
	}
}
