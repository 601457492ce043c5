package cli

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"citybrain/pipelines/extracts/extracttest"
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
