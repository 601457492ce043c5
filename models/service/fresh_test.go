package service

import (
	"testing"
	"time"
)

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

func TestCommitDelay(t *testing.T) {
	end := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		took time.Duration
		now  time.Time
		want time.Duration
	}{
		{"short run: the debounce", time.Second, end.Add(time.Second), 30 * time.Second},
		{"long run: 19× its time after it ended", 40 * time.Second, end.Add(time.Minute), 11*time.Minute + 40*time.Second},
		{"long ago: the debounce", 40 * time.Second, end.Add(time.Hour), 30 * time.Second},
		{"first: the debounce", 0, end, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := commitDelay(30*time.Second, end, tc.took, tc.now); got != tc.want {
				t.Errorf("commitDelay = %s, want %s", got, tc.want)
			}
		})
	}
}
