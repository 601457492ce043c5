package mapping

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// BindCache binds one mapping to the headers of self-describing records
// (JSON lines, API pages, Parquet files), one binding per distinct header.
// Records whose keys vary wildly still work; only the caching stops at
// MaxBindings distinct headers.
type BindCache struct {
	m       *Mapper
	mu      sync.Mutex
	entries map[string]bindEntry
}

type bindEntry struct {
	b   *Bound
	err error
}

// MaxBindings caps a BindCache.
const MaxBindings = 1024

// NewBindCache returns an empty cache for m.
func NewBindCache(m *Mapper) *BindCache {
	return &BindCache{m: m, entries: map[string]bindEntry{}}
}

// Bind returns the mapping bound to header, from the cache when it has it.
func (c *BindCache) Bind(header []string) (*Bound, error) {
	sig := strings.Join(header, "\x00")
	c.mu.Lock()
	e, ok := c.entries[sig]
	c.mu.Unlock()
	if ok {
		return e.b, e.err
	}
	b, err := c.m.Bind(header)
	if err != nil {
		err = fmt.Errorf("record keys do not fit the mapping / 字段与映射不符: %w", err)
	}
	c.mu.Lock()
	if len(c.entries) < MaxBindings {
		c.entries[sig] = bindEntry{b, err}
	}
	c.mu.Unlock()
	return b, err
}

// PadSorted adds the columns the mapping reads (Columns) that a record
// lacks, as missing values, so an optional field absent from a message is
// null rather than a header mismatch. The result is sorted by column name;
// header and row are not modified.
func (m *Mapper) PadSorted(header, row []string) ([]string, []string) {
	m.colsOnce.Do(func() { m.cols = m.Columns() })
	sorted := sort.StringsAreSorted(header)
	has := func(c string) bool {
		if sorted {
			i := sort.SearchStrings(header, c)
			return i < len(header) && header[i] == c
		}
		for _, h := range header {
			if h == c {
				return true
			}
		}
		return false
	}
	var missing []string
	for _, c := range m.cols {
		if !has(c) {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return header, row
	}
	keys := append(append(make([]string, 0, len(header)+len(missing)), header...), missing...)
	vals := append(append(make([]string, 0, len(keys)), row...), make([]string, len(missing))...)
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	h, r := make([]string, len(idx)), make([]string, len(idx))
	for i, j := range idx {
		h[i], r[i] = keys[j], vals[j]
	}
	return h, r
}
