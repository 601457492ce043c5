package dashboards

import (
	"sync"
)

// cache keeps encoded API answers until a table they read is committed.
// Concurrent misses of one key compute it once.
type cache struct {
	mu      sync.RWMutex
	gen     uint64
	entries map[string]*entry
	pending map[string]*call
}

type entry struct {
	body   []byte
	tables []string
}

type call struct {
	done chan struct{}
	body []byte
	err  error
}

func newCache() *cache {
	return &cache{entries: map[string]*entry{}, pending: map[string]*call{}}
}

// get returns the cached answer of key, or computes it with fn (which
// returns the body and the tables it read) and keeps it unless a table
// was committed meanwhile.
func (c *cache) get(key string, fn func() ([]byte, []string, error)) ([]byte, error) {
	c.mu.RLock()
	e, ok := c.entries[key]
	c.mu.RUnlock()
	if ok {
		return e.body, nil
	}
	c.mu.Lock()
	if e, ok := c.entries[key]; ok {
		c.mu.Unlock()
		return e.body, nil
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
	if err == nil && c.gen == gen {
		c.entries[key] = &entry{body: body, tables: tables}
	}
	c.mu.Unlock()
	close(p.done)
	return body, err
}

// invalidate drops the answers that read table ("" drops all).
func (c *cache) invalidate(table string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.entries {
		if table == "" {
			delete(c.entries, k)
			continue
		}
		for _, t := range e.tables {
			if t == table || t == "*" {
				delete(c.entries, k)
				break
			}
		}
	}
}
