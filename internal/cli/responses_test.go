package cli

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"citybrain/pipelines/extracts/extracttest"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// TestResponsesCommands: `responses list` before any response says so;
// `responses who` answers as of the day asked (a personnel change on
// 2025-06-10); a role that does not exist and a bad day are clear errors.
func TestResponsesCommands(t *testing.T) {
	ctx := context.Background()
	dataDir := filepath.Join(t.TempDir(), "data")
	lake, err := warehouse.Open(ctx, warehouse.DefaultConfig(), dataDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := schemas.Builtin()
	t0 := time.Date(2021, 1, 1, 1, 0, 0, 0, time.UTC)
	change := time.Date(2025, 6, 10, 1, 0, 0, 0, time.UTC)
	fill := func(name string, n int, gen func(i int, s *schemas.Schema, r schemas.Record)) {
		s, _ := reg.Get(name)
		if _, err := extracttest.Fill(ctx, lake, s, n, func(i int, r schemas.Record) { gen(i, s, r) }); err != nil {
			t.Fatal(err)
		}
	}
	fill("plan_levels", 1, func(i int, s *schemas.Schema, r schemas.Record) {
		r[s.Index("plan_id")], r[s.Index("plan_kind")], r[s.Index("level")], r[s.Index("min_warning_level")], r[s.Index("valid_from")] = "P-S1", "street", "III", "yellow", t0
	})
	fill("plan_roles", 1, func(i int, s *schemas.Schema, r schemas.Record) {
		r[s.Index("role_id")], r[s.Index("plan_id")], r[s.Index("level")], r[s.Index("role_zh")], r[s.Index("duty_zh")], r[s.Index("valid_from")] =
			"R-S1-III-commander", "P-S1", "III", "带班领导", "组织疏导", t0
	})
	fill("role_holders", 2, func(i int, s *schemas.Schema, r schemas.Record) {
		r[s.Index("role_id")] = "R-S1-III-commander"
		r[s.Index("person_id")] = []string{"U1", "U2"}[i]
		r[s.Index("person_name")] = []string{"王伟", "李娜"}[i]
		r[s.Index("deputy_person_id")], r[s.Index("deputy_name")] = "U9", "赵敏"
		r[s.Index("valid_from")] = []time.Time{t0, change}[i]
	})
	lake.Close()
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := Run(ctx, append([]string{"--data-dir", dataDir}, args...), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	for _, tc := range []struct {
		args      []string
		want, not string
	}{
		{[]string{"responses", "list"}, "no responses yet", ""},
		{[]string{"responses", "who", "R-S1-III-commander", "--on", "2025-06-09"}, "U1 王伟", "李娜"},
		{[]string{"responses", "who", "R-S1-III-commander", "--on", "2025-06-10"}, "U2 李娜", "王伟"},
		{[]string{"responses", "--help"}, "silences", ""},
	} {
		out, err := run(tc.args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, out)
		}
		if !strings.Contains(out, tc.want) || (tc.not != "" && strings.Contains(out, tc.not)) {
			t.Errorf("%v: want %q (and not %q) in:\n%s", tc.args, tc.want, tc.not, out)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"responses", "who", "R-nope"}, "no role R-nope"},
		{[]string{"responses", "who", "R-S1-III-commander", "--on", "10/06/2025"}, "YYYY-MM-DD"},
		{[]string{"responses", "timeline", "R000001"}, "no responses yet"},
	} {
		out, err := run(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q\n%s", tc.args, err, tc.want, out)
		}
	}
}
