package scheduler

import (
	"sync"
	"time"
)

// Clock is where the scheduler reads the time and waits. Production code
// uses Real; tests a *FakeClock so that days of schedule pass in
// microseconds.
type Clock interface {
	// Now is the current time.
	Now() time.Time
	// After delivers the time once d has passed (at once when d ≤ 0).
	After(d time.Duration) <-chan time.Time
}

// Real is the wall clock.
type Real struct{}

// Now is time.Now.
func (Real) Now() time.Time { return time.Now() }

// After is time.After.
func (Real) After(d time.Duration) <-chan time.Time { return time.After(d) }

var _ Clock = Real{}

// FakeClock is a clock for tests. Its time moves only when told (Set,
// Advance) or — every wait is a jump — when someone waits on After: the
// clock then jumps forward by the wait and the channel fires at once, so a
// retry backoff or a sleep until the next scheduled run costs no real time.
// Waits are recorded in Waits.
type FakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

// NewFakeClock starts at t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{now: t} }

// Now is the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After jumps the clock forward by d and fires at once.
func (c *FakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	if d > 0 {
		c.now = c.now.Add(d)
	}
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

// Set moves the clock to t.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Waits lists every wait asked of After, in order.
func (c *FakeClock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

var _ Clock = (*FakeClock)(nil)
