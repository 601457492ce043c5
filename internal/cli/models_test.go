package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestModelsCommands drives `citybrain models …` on an empty lake: every
// model runs (sources the lake lacks read as empty), tests pass, the run
// reproduces, and bad input gets a clear error.
func TestModelsCommands(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := Run(context.Background(), append([]string{"--data-dir", dir}, args...), &out, &errOut)
		return out.String() + errOut.String(), err
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"models", "ls"}, []string{"enterprise_risk", "incremental", "14 models"}},
		{[]string{"models", "lineage", "--select", "+enterprise_risk"}, []string{"enterprise_risk_daily", "← raw.hazards (source)"}},
		{[]string{"models", "run", "--as-of", "2026-06-30"}, []string{"14/14", "marts.enterprise_risk", "14/14 models ok"}},
		{[]string{"models", "run", "--select", "enterprise_risk_daily+", "--as-of", "2026-06-30"}, []string{"6/6 models ok", "marts.street_watchlist"}},
		{[]string{"models", "test"}, []string{"tests passed"}},
		{[]string{"models", "--help"}, []string{"reproduce", "freshness"}},
	} {
		out, err := run(tc.args...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", tc.args, err, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", tc.args, w, out)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"models", "run", "--as-of", "30/06/2026"}, "YYYY-MM-DD"},
		{[]string{"models", "run", "--select", "nope"}, "no model \"nope\""},
		{[]string{"models", "run", "--vars", "{unclosed"}, "--vars"},
		{[]string{"models", "reproduce", "no-such-run"}, "no such run"},
		{[]string{"models", "freshness"}, "past error_after"},
		{[]string{"models", "ls", "--project-dir", dir + "/missing"}, "project dir"},
	} {
		out, err := run(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q\n%s", tc.args, err, tc.want, out)
		}
	}
}
