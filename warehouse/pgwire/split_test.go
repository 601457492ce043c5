package pgwire

import (
	"strings"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"select 1", []string{"select 1"}},
		{"select 1; select 2;", []string{"select 1", "select 2"}},
		{"select ';' as a; select 2", []string{"select ';' as a", "select 2"}},
		{`select "a;b" from t`, []string{`select "a;b" from t`}},
		{"select 1 -- ; not a split\n; select 2", []string{"select 1 -- ; not a split", "select 2"}},
		{"select /* ; */ 1", []string{"select /* ; */ 1"}},
		{"select $$a;b$$, $x$;$x$", []string{"select $$a;b$$, $x$;$x$"}},
		{"select 'it''s; fine'", []string{"select 'it''s; fine'"}},
		{" ; ;", nil},
		{"-- only a comment", nil},
	} {
		got := splitStatements(tc.in)
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}
