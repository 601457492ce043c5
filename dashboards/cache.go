package dashboards

import (
	"sync"
	"time"
)

// cache keeps encoded API answers, each with the tables it read, and
// answers from memory: a page never waits for the lake unless its
// question was never asked before.
//
// A commit of a table makes the answers that read it stale, not gone:
// they are recomputed in the background at once (precompute on commit;
// refreshSlots at a time, so a burst of commits does not take every core)
// and served as they are until the new answer replaces them. Committed
// tells open pages to refresh only when the recomputations of that commit
// are done (settled), so the page's next request finds the new answer.
// A request for an answer being recomputed waits up to wait for it (a
// quick recomputation is seen by the request right after the commit),
// then gets the stale one. An answer nobody asked for in idleAfter is
// dropped instead of being recomputed. Concurrent misses of one key compute it once.
type cache struct {
	mu      sync.Mutex
	gen     uint64            // commits seen
	touched map[string]uint64 // table → gen of its last commit
	entries map[string]*entry
	pending map[string]*call
	slots   chan struct{}
	now     func() time.Time
	// wait is how long a request for a stale answer waits for its
	// recomputation before it is served the stale one (dashboards.stale_wait).
	wait time.Duration
}

type entry struct {
	body     []byte
	tables   []string
	fn       func() ([]byte, []string, error)
	made     uint64 // gen when its computation began
	at       time.Time
	used     time.Time
	stale    bool
	running  bool            // a recomputation is under way
	again    bool            // committed again while recomputing
	settled  []chan struct{} // closed when it is fresh (or given up)
	failures int
}

type call struct {
	done chan struct{}
	body []byte
	err  error
}

const (
	// refreshSlots is how many answers are recomputed at once.
	refreshSlots = 2
	// idleAfter: an answer not asked for this long is dropped on its next
	// commit rather than recomputed.
	idleAfter = 10 * time.Minute
)

func newCache(wait time.Duration) *cache {
	return &cache{touched: map[string]uint64{}, entries: map[string]*entry{}, pending: map[string]*call{},
		slots: make(chan struct{}, refreshSlots), now: time.Now, wait: wait}
}

// get returns the cached answer of key (stale or not), or computes it with
// fn (which returns the body and the tables it read) and keeps it.
func (c *cache) get(key string, fn func() ([]byte, []string, error)) ([]byte, error) {
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		e.used = c.now()
		e.fn = fn
		if !e.stale || !e.running || c.wait <= 0 {
			c.mu.Unlock()
			return e.body, nil
		}
		// Being recomputed: wait a little for the new answer (a commit is
		// then seen by the next request), else serve the stale one.
		ch := make(chan struct{})
		e.settled = append(e.settled, ch)
		c.mu.Unlock()
		t := time.NewTimer(c.wait)
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
		c.mu.Lock()
		body := e.body
		c.mu.Unlock()
		return body, nil
	}
	if p, ok := c.pending[key]; ok {
		c.mu.Unlock()
		<-p.done
		return p.body, p.err
	}
	p := &call{done: make(chan struct{})}
	c.pending[key] = p
	gen := c.gen
	c.mu.Unlock()

	body, tables, err := fn()
	p.body, p.err = body, err
	c.mu.Lock()
	delete(c.pending, key)
	if err == nil {
		e := &entry{body: body, tables: tables, fn: fn, made: gen, at: c.now(), used: c.now()}
		c.entries[key] = e
		if c.committedSince(e, gen) {
			c.refresh(key, e)
		}
	}
	c.mu.Unlock()
	close(p.done)
	return body, err
}

// committedSince: a table e read was committed after gen.
func (c *cache) committedSince(e *entry, gen uint64) bool {
	for _, t := range e.tables {
		if t == "*" {
			return c.gen > gen
		}
		if c.touched[t] > gen {
			return true
		}
	}
	return false
}

// invalidate marks the answers that read table stale ("" all of them) and
// recomputes them in the background. The channel closes when every one
// of them is fresh again (at once when none read table).
func (c *cache) invalidate(table string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if table != "" {
		c.touched[table] = c.gen
	}
	var waits []chan struct{}
	for k, e := range c.entries {
		if table != "" && !reads(e, table) {
			continue
		}
		if c.now().Sub(e.used) > idleAfter {
			delete(c.entries, k)
			for _, ch := range e.settled {
				close(ch)
			}
			continue
		}
		e.stale = true
		ch := make(chan struct{})
		e.settled = append(e.settled, ch)
		waits = append(waits, ch)
		c.refresh(k, e)
	}
	done := make(chan struct{})
	go func() {
		for _, ch := range waits {
			<-ch
		}
		close(done)
	}()
	return done
}

func reads(e *entry, table string) bool {
	for _, t := range e.tables {
		if t == table || t == "*" {
			return true
		}
	}
	return false
}

// refresh recomputes e in the background (c.mu held); a commit during the
// recomputation makes it run once more.
func (c *cache) refresh(key string, e *entry) {
	e.stale = true
	if e.running {
		e.again = true
		return
	}
	e.running = true
	go func() {
		for {
			c.slots <- struct{}{}
			c.mu.Lock()
			gen, fn := c.gen, e.fn
			e.again = false
			c.mu.Unlock()
			body, tables, err := fn()
			<-c.slots
			c.mu.Lock()
			if c.entries[key] != e { // dropped meanwhile
				e.running = false
				c.settle(e)
				c.mu.Unlock()
				return
			}
			if err == nil {
				e.body, e.tables, e.made, e.at, e.failures = body, tables, gen, c.now(), 0
				e.stale = e.again || c.committedSince(e, gen)
			} else {
				// keep the last good answer; try again on the next commit
				e.failures++
				e.stale = false
			}
			if !e.stale || e.failures > 0 {
				e.running = false
				c.settle(e)
				c.mu.Unlock()
				return
			}
			c.mu.Unlock()
		}
	}()
}

// settle tells those waiting for e that it is done (c.mu held).
func (c *cache) settle(e *entry) {
	for _, ch := range e.settled {
		close(ch)
	}
	e.settled = nil
}
