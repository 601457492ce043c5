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

// FuzzSplitStatements: splitting never panics, and every piece is a
// trimmed, non-empty substring of the input.
func FuzzSplitStatements(f *testing.F) {
	for _, s := range []string{"select 1; select 2", "select ';'", "/* x", "$a$;", "'unterminated", "--", `"a;"b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range splitStatements(s) {
			if p == "" || p != strings.TrimSpace(p) || !strings.Contains(s, p) {
				t.Fatalf("piece %q of %q", p, s)
			}
		}
	})
}
