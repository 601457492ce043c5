package objstore

import (
	"container/list"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sync"
)

// Cache keeps local copies of a store's objects for readers that need a
// file (DuckDB reads Parquet by path; its httpfs extension is not
// installable offline). Objects are immutable — a key's content never
// changes — so a copy never goes stale. The copies' total size is kept
// under MaxBytes by evicting the least recently used ones not in use; a
// file handed out by Open stays until its release is called. Concurrent
// Opens of one key fetch it once. A download is written to a temporary
// name and renamed when complete; the directory is emptied when the cache
// is made (copies are not indexed across restarts: it refills as queries
// need it).
type Cache struct {
	store    Store
	dir      string
	maxBytes int64

	mu      sync.Mutex
	entries map[string]*entry // by key
	lru     *list.List        // of *entry, most recent at the front
	size    int64
	stats   CacheStats
}

// CacheStats count what Open did.
type CacheStats struct {
	Hits, Misses, Evictions int64
	FetchedBytes            int64
}

type entry struct {
	key, path string
	size      int64
	pins      int
	ready     chan struct{} // closed once fetched (or failed)
	err       error
	elem      *list.Element
	dropped   bool // Drop while in use: removed at the last release
}

// NewCache is a cache of store's objects in dir (created if missing), at
// most maxBytes of copies not in use.
func NewCache(store Store, dir string, maxBytes int64) (*Cache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	c := &Cache{store: store, dir: dir, maxBytes: maxBytes, entries: map[string]*entry{}, lru: list.New()}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		os.RemoveAll(filepath.Join(dir, e.Name()))
	}
	return c, nil
}

// pathOf lays copies out by key, so a directory of the cache holds the
// copies of one prefix (a table's files): readers can be confined to it.
func (c *Cache) pathOf(key string) string {
	return filepath.Join(c.dir, filepath.FromSlash(path.Clean("/"+key)))
}

// Dir is the local directory of the copies of keys under prefix.
func (c *Cache) Dir(prefix string) string {
	return filepath.Join(c.dir, filepath.FromSlash(path.Clean("/"+prefix)))
}

// Open returns a local file holding the object, fetched if not cached, and
// the function that releases it (the copy may then be evicted).
func (c *Cache) Open(ctx context.Context, key string) (string, func(), error) {
	c.mu.Lock()
	e := c.entries[key]
	if e != nil {
		e.pins++
		if e.elem != nil {
			c.lru.MoveToFront(e.elem)
		}
		c.stats.Hits++
		c.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			c.unpin(e)
			return "", nil, ctx.Err()
		}
		if e.err != nil {
			c.unpin(e)
			return "", nil, e.err
		}
		return e.path, c.releaser(e), nil
	}
	e = &entry{key: key, path: c.pathOf(key), pins: 1, ready: make(chan struct{})}
	c.entries[key] = e
	c.stats.Misses++
	c.mu.Unlock()

	size, err := c.fetch(ctx, key, e.path)
	c.mu.Lock()
	if err != nil {
		e.err = err
		delete(c.entries, key) // the next Open tries again
		c.mu.Unlock()
		close(e.ready)
		return "", nil, err
	}
	e.size = size
	e.elem = c.lru.PushFront(e)
	c.size += size
	c.stats.FetchedBytes += size
	c.evictLocked()
	c.mu.Unlock()
	close(e.ready)
	return e.path, c.releaser(e), nil
}

func (c *Cache) fetch(ctx context.Context, key, dst string) (int64, error) {
	rc, err := c.store.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(filepath.Dir(dst), ".fetch-*")
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return 0, fmt.Errorf("缓存对象失败 fetching %s: %w", key, err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		os.Remove(f.Name())
		return 0, err
	}
	return n, nil
}

func (c *Cache) releaser(e *entry) func() {
	var once sync.Once
	return func() { once.Do(func() { c.unpin(e) }) }
}

func (c *Cache) unpin(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.pins--
	if e.dropped && e.pins == 0 {
		os.Remove(e.path)
	}
	c.evictLocked()
}

// evictLocked removes least recently used copies not in use until the
// total is under maxBytes (copies in use may keep it above).
func (c *Cache) evictLocked() {
	for el := c.lru.Back(); el != nil && c.size > c.maxBytes; {
		prev := el.Prev()
		e := el.Value.(*entry)
		if e.pins == 0 {
			c.lru.Remove(el)
			delete(c.entries, e.key)
			c.size -= e.size
			c.stats.Evictions++
			os.Remove(e.path)
		}
		el = prev
	}
}

// Adopt moves a local file that holds the object's content (a file just
// uploaded from it) into the cache, so the writer's own copy is not
// downloaded again. The file is renamed: it must be on the cache's file
// system (else it is left alone and the object is fetched when opened).
func (c *Cache) Adopt(key, local string) {
	st, err := os.Stat(local)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; ok {
		os.Remove(local)
		return
	}
	e := &entry{key: key, path: c.pathOf(key), ready: make(chan struct{})}
	if err := os.MkdirAll(filepath.Dir(e.path), 0o755); err != nil {
		return
	}
	if err := os.Rename(local, e.path); err != nil {
		return
	}
	close(e.ready)
	e.size = st.Size()
	e.elem = c.lru.PushFront(e)
	c.entries[key] = e
	c.size += e.size
	c.evictLocked()
}

// Drop forgets the object's copy (the object was deleted); a copy in use
// stays on disk until its last release, then goes.
func (c *Cache) Drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || e.elem == nil {
		return
	}
	delete(c.entries, key)
	c.lru.Remove(e.elem)
	e.elem = nil
	c.size -= e.size
	if e.pins == 0 {
		os.Remove(e.path)
	} else {
		e.dropped = true
	}
}

// Size is the bytes of the copies held now.
func (c *Cache) Size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}

// Stats are the counts so far.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}
