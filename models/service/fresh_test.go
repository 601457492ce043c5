package service

import "testing"

// A source's freshness is logged when its status changes, not on every run.
func TestFreshnessLoggedOnChange(t *testing.T) {
	for _, c := range []struct {
		prev   string
		seen   bool
		status string
		want   bool
	}{
		{"", false, "pass", false},      // fresh from the start: nothing to say
		{"", false, "error", true},      // stale at the first run
		{"error", true, "error", false}, // still stale: said already
		{"error", true, "pass", true},   // fresh again
		{"warn", true, "error", true},   // worse
		{"", false, "unchecked", false},
	} {
		if got := freshnessChanged(c.prev, c.seen, c.status); got != c.want {
			t.Errorf("freshnessChanged(%q, %v, %q) = %v, want %v", c.prev, c.seen, c.status, got, c.want)
		}
	}
}
