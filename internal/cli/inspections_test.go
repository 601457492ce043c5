package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"citybrain/internal/auth"
	"citybrain/pipelines/extracts/extracttest"
	"citybrain/pipelines/inspection"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// TestInspectionsCommands: a month's plan drawn from the lake (preview),
// published once — a second publish refused —, shown, and drawn again with
// its published seed to the same visits; clear errors for a bad month, a
// plan without portraits and a budget that cannot be sized.
func TestInspectionsCommands(t *testing.T) {
	ctx := context.Background()
	dataDir := filepath.Join(t.TempDir(), "data")
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := Run(ctx, append([]string{"--data-dir", dataDir}, args...), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if out, err := run("inspections", "plan", "--month", "2026-12", "--budget", "8"); err == nil || !strings.Contains(err.Error(), "citybrain models run") {
		t.Fatalf("a plan without portraits: %v\n%s", err, out)
	}
	lake, err := warehouse.Open(ctx, warehouse.DefaultConfig(), dataDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// 30 units in two streets: E01 and E16 red, E02–E04 orange (E02
	// inspected in November: not due), the rest yellow and blue.
	var rows []string
	for i := 1; i <= 30; i++ {
		level := map[int]string{1: "red", 16: "red", 2: "orange", 3: "orange", 4: "orange", 5: "yellow", 20: "yellow"}[i]
		if level == "" {
			level = "blue"
		}
		street := "110102001"
		if i > 15 {
			street = "110102003"
		}
		rows = append(rows, fmt.Sprintf("('E%02d', '单位%02d', '%s', '%s')", i, i, street, level))
	}
	if _, err := lake.Materialize(ctx, db, warehouse.MaterializeSpec{Table: "marts.enterprise_risk", Mode: warehouse.MaterializeReplace,
		Query: "SELECT * FROM (VALUES " + strings.Join(rows, ", ") + ") AS t(enterprise_id, enterprise_name, street_code, level)"}); err != nil {
		t.Fatal(err)
	}
	reg, _ := schemas.Builtin()
	fill := func(name string, n int, gen func(i int, s *schemas.Schema, r schemas.Record)) {
		s, _ := reg.Get(name)
		if _, err := extracttest.Fill(ctx, lake, s, n, func(i int, r schemas.Record) { gen(i, s, r) }); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fill("inspectors", 4, func(i int, s *schemas.Schema, r schemas.Record) {
		r[s.Index("inspector_id")], r[s.Index("updated_at")], r[s.Index("name")] = fmt.Sprintf("I%d", i+1), t0, []string{"李怡", "万斌", "张强", "赵敏"}[i]
		r[s.Index("street_code")] = []string{"110102001", "110102001", "110102003", "110102003"}[i]
	})
	fill("inspections", 1, func(i int, s *schemas.Schema, r schemas.Record) {
		r[s.Index("id")], r[s.Index("enterprise_id")], r[s.Index("inspected_at")], r[s.Index("result")], r[s.Index("inspector_id")] =
			"INS1", "E02", time.Date(2026, 11, 12, 2, 0, 0, 0, time.UTC), "pass", "I1"
	})
	lake.Close()

	for _, tc := range []struct {
		args      []string
		want, not string
		fails     bool
	}{
		{args: []string{"inspections", "plan", "--month", "2026-13"}, want: "want YYYY-MM", fails: true},
		{args: []string{"inspections", "plan", "--month", "2026-12"}, want: "--budget", fails: true},
		{args: []string{"inspections", "show", "--month", "2026-12"}, want: "no plan published yet"},
		{args: []string{"inspections", "plan", "--month", "2026-12", "--budget", "8"},
			want: "红色必检 red every month 2 · 橙色按季 orange quarterly 2", not: "已公布 published"},
		{args: []string{"inspections", "plan", "--month", "2026-12", "--budget", "8", "--publish"}, want: "已公布 published: 8 visits"},
		{args: []string{"inspections", "plan", "--month", "2026-12", "--budget", "8", "--publish"}, want: "already published", fails: true},
		{args: []string{"inspections", "show", "--month", "2027-01"}, want: "is not published"},
	} {
		out, err := run(tc.args...)
		if tc.fails != (err != nil) {
			t.Errorf("%v: error %v\n%s", tc.args, err, out)
			continue
		}
		if err != nil {
			out += err.Error()
		}
		if !strings.Contains(out, tc.want) || (tc.not != "" && strings.Contains(out, tc.not)) {
			t.Errorf("%v: want %q (not %q) in:\n%s", tc.args, tc.want, tc.not, out)
		}
	}
	out, err := run("inspections", "show", "--month", "2026-12")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"E01 单位01", "E16 单位16", "mandatory_red", "E03", "E04"} {
		if !strings.Contains(out, want) {
			t.Errorf("published plan lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if !strings.Contains(l, "E02 ") {
			continue
		}
		// Orange, inspected in November: not due before February (it may
		// still be drawn by weight), and never by its last inspector.
		if strings.Contains(l, "mandatory_orange") || strings.Contains(l, " I1 ") {
			t.Errorf("E02 (orange, inspected in November by I1): %s", l)
		}
	}
	// The published seed draws the same plan again.
	var shown, redrawn []string
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 4 && strings.HasPrefix(f[3], "E") {
			shown = append(shown, f[3]+"@"+f[5]+"@"+f[1])
		}
	}
	js, err := run("inspections", "plan", "--month", "2026-12", "--budget", "8", "--json")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(js, "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, `"UnitID": "`); ok {
			redrawn = append(redrawn, strings.TrimSuffix(v, `",`))
		}
	}
	if len(shown) != 8 || len(redrawn) != 8 {
		t.Fatalf("shown %v, redrawn %v: want 8 each", shown, redrawn)
	}
	for i := range shown {
		if !strings.HasPrefix(shown[i], redrawn[i]+"@") {
			t.Errorf("visit %d: published %s, drawn again %s", i+1, shown[i], redrawn[i])
		}
	}
}

// TestInspectorResultsIngested follows results from the inspectors' phone
// API to the lake through the file sources app_inspections and
// app_hazards: a rectify result with two hazards sent twice and a pass,
// then `citybrain ingest` of both sources — twice — leaves exactly two
// inspections and two hazards in raw.*, with the inspector and the
// deadlines the phone gave.
func TestInspectorResultsIngested(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	dataDir := filepath.Join(tmp, "data")
	spool := filepath.Join(dataDir, "inspector_app")
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`CREATE SCHEMA raw`,
		`CREATE TABLE raw.inspectors AS SELECT 'I1' AS inspector_id, TIMESTAMPTZ '2026-01-01 00:00:00+00' AS updated_at, '李怡' AS name, '110102001' AS street_code`,
		`CREATE TABLE raw.enterprises AS SELECT * FROM (VALUES ('E1', TIMESTAMPTZ '2026-01-01 00:00:00+00', '110102001'), ('E2', TIMESTAMPTZ '2026-01-01 00:00:00+00', '110102001'))
			AS t(id, updated_at, street_code)`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	api := &inspection.API{Auth: basicUsers{"li": auth.User{Name: "li", PersonID: "I1"}}, Query: db.QueryContext, Spool: spool, Now: func() time.Time { return now }}
	mux := http.NewServeMux()
	api.Mount(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	send := func(r inspection.Result, want int) {
		t.Helper()
		b, _ := json.Marshal(r)
		req, _ := http.NewRequest("POST", srv.URL+"/api/inspect/results", bytes.NewReader(b))
		req.SetBasicAuth("li", "x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("send %s: %d, want %d", r.ID, resp.StatusCode, want)
		}
	}
	at := now.Add(-time.Hour).Truncate(time.Second)
	deadline := at.In(inspection.Shanghai).AddDate(0, 0, 30).Format(time.DateOnly)
	rectify := inspection.Result{ID: "phone-0001-aaaa", Enterprise: "E1", InspectedAt: at, Result: "rectify", Notes: "责令整改",
		Hazards: []inspection.ResultHazard{{Level: "general", Description: "灭火器过期", Deadline: deadline}, {Level: "major", Description: "消防通道堵塞", Deadline: deadline}}}
	send(rectify, 201)
	send(rectify, 200)
	send(inspection.Result{ID: "phone-0002-bbbb", Enterprise: "E2", InspectedAt: at, Result: "pass"}, 201)

	cfgPath := filepath.Join(tmp, "citybrain.yaml")
	// A free port for each run's embedded broker: the runs share this
	// process, and kafka-go's pooled connections to the last one.
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`data_dir: %[1]s
broker: {embedded_port: 0}
sources:
  - name: app_inspections
    enabled: true
    file: {paths: [%[2]s/inspections/*.jsonl]}
  - name: app_hazards
    enabled: true
    file: {paths: [%[2]s/hazards/*.jsonl]}
`, dataDir, spool)), 0o644)
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if err := Run(ctx, append([]string{"--config", cfgPath}, args...), &out, &errOut); err != nil {
			t.Fatalf("%v: %v\n%s%s", args, err, out.String(), errOut.String())
		}
		return out.String()
	}
	for range 2 {
		run("ingest", "app_inspections", "--no-progress")
		run("ingest", "app_hazards", "--no-progress")
	}
	out := run("sql", "--format", "csv", `SELECT (SELECT count(*) FROM raw.inspections), (SELECT count(*) FROM raw.hazards),
		(SELECT string_agg(id || ':' || result || ':' || inspector_id || ':' || hazards_found, ' ' ORDER BY id) FROM raw.inspections),
		(SELECT string_agg(level || ':' || CAST(deadline AS VARCHAR) || ':' || inspection_id, ' ' ORDER BY id) FROM raw.hazards)`)
	want := fmt.Sprintf("2,2,APP-phone-0001-aaaa:rectify:I1:2 APP-phone-0002-bbbb:pass:I1:0,general:%s:APP-phone-0001-aaaa major:%s:APP-phone-0001-aaaa", deadline, deadline)
	if !strings.Contains(out, want) {
		t.Errorf("the lake after two ingests:\n%s\nwant a row %s", out, want)
	}
}

// basicUsers maps a basic-auth user name to a platform user.
type basicUsers map[string]auth.User

func (b basicUsers) FromRequest(r *http.Request) (auth.User, error) {
	name, _, _ := r.BasicAuth()
	if u, ok := b[name]; ok {
		return u, nil
	}
	return auth.User{}, auth.ErrUnauthenticated
}
