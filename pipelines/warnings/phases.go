package warnings

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Phases accumulates the time spent in each phase of the pipeline (decode,
// stage, state, rules, lifecycle, persist, commit, sink …), for profiling and
// the bench's per-phase figures. Safe for concurrent use.
type Phases struct {
	mu sync.Mutex
	d  map[string]time.Duration
	n  map[string]int
}

// Add adds d to phase p.
func (ph *Phases) Add(p string, d time.Duration) {
	if ph == nil {
		return
	}
	ph.mu.Lock()
	if ph.d == nil {
		ph.d, ph.n = map[string]time.Duration{}, map[string]int{}
	}
	ph.d[p] += d
	ph.n[p]++
	ph.mu.Unlock()
}

// Since adds the time since t to phase p and returns now.
func (ph *Phases) Since(p string, t time.Time) time.Time {
	now := time.Now()
	ph.Add(p, now.Sub(t))
	return now
}

// Snapshot copies the totals.
func (ph *Phases) Snapshot() map[string]time.Duration {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	out := make(map[string]time.Duration, len(ph.d))
	for k, v := range ph.d {
		out[k] = v
	}
	return out
}

// Count is how many times phase p was added.
func (ph *Phases) Count(p string) int {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	return ph.n[p]
}

// Reset clears the totals.
func (ph *Phases) Reset() {
	ph.mu.Lock()
	ph.d, ph.n = nil, nil
	ph.mu.Unlock()
}

// String lists the phases, longest first: "state 1.2s (10×), …".
func (ph *Phases) String() string {
	ph.mu.Lock()
	defer ph.mu.Unlock()
	keys := make([]string, 0, len(ph.d))
	for k := range ph.d {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return ph.d[keys[i]] > ph.d[keys[j]] })
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %s (%d×)", k, ph.d[k].Round(time.Millisecond), ph.n[k]))
	}
	return strings.Join(parts, ", ")
}
