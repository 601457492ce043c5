package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// storeSuite is what every Store must do.
func storeSuite(t *testing.T, s Store) {
	t.Helper()
	ctx := context.Background()
	for k, v := range map[string]string{
		"raw/weather/data/00001.parquet":        "PAR1 one",
		"raw/weather/data/00002.parquet":        "PAR1 two two",
		"raw/weather/metadata/v1.metadata.json": `{"format-version":2}`,
		"raw/weather2/data/00001.parquet":       "other table",
		"marts/risk/data/part=1/00001.parquet":  "partitioned",
	} {
		if err := s.Put(ctx, k, []byte(v)); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
	}
	objs, err := s.List(ctx, "raw/weather/")
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range objs {
		keys = append(keys, fmt.Sprintf("%s:%d", o.Key, o.Size))
	}
	if got, want := strings.Join(keys, " "), "raw/weather/data/00001.parquet:8 raw/weather/data/00002.parquet:12 raw/weather/metadata/v1.metadata.json:20"; got != want {
		t.Fatalf("list raw/weather/:\n got %s\nwant %s", got, want)
	}
	rc, err := s.Get(ctx, "raw/weather/data/00002.parquet")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "PAR1 two two" {
		t.Fatalf("get: %q", b)
	}
	if b, err := s.GetRange(ctx, "raw/weather/data/00002.parquet", 5, 3); err != nil || string(b) != "two" {
		t.Fatalf("range 5+3: %q %v", b, err)
	}
	if o, err := s.Stat(ctx, "marts/risk/data/part=1/00001.parquet"); err != nil || o.Size != 11 {
		t.Fatalf("stat: %+v %v", o, err)
	}
	if _, err := s.Get(ctx, "raw/nothing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of a missing key: %v, want ErrNotFound", err)
	}
	if _, err := s.Stat(ctx, "raw/nothing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stat of a missing key: %v, want ErrNotFound", err)
	}
	if err := s.Put(ctx, "raw/weather/data/00001.parquet", []byte("PAR1 replaced")); err != nil {
		t.Fatal(err)
	}
	if b, _ := s.GetRange(ctx, "raw/weather/data/00001.parquet", 0, 100); string(b) != "PAR1 replaced" {
		t.Fatalf("after a second put: %q", b)
	}
	if err := s.Delete(ctx, "raw/weather/data/00001.parquet"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "raw/weather/data/00001.parquet"); err != nil {
		t.Fatalf("a second delete: %v", err)
	}
	if objs, _ := s.List(ctx, "raw/weather/data/"); len(objs) != 1 {
		t.Fatalf("after delete: %v", objs)
	}
}

func TestLocalStore(t *testing.T) {
	s, err := NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	storeSuite(t, s)
	for _, bad := range []string{"", "/", "a\\b"} {
		if err := s.Put(context.Background(), bad, nil); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
	// A key cannot climb out of the root.
	if err := s.Put(context.Background(), "../../escape", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Root, "escape")); err != nil {
		t.Fatalf("../../escape not kept under the root: %v", err)
	}
}

func TestOpenLocation(t *testing.T) {
	dir := t.TempDir()
	for _, loc := range []string{dir, "file://" + dir} {
		s, err := Open(loc, Options{})
		if err != nil || s.URL() != "file://"+dir {
			t.Errorf("%s: %v %v", loc, s, err)
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "k")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s")
	s, err := Open("s3://lake/xicheng/prod/", Options{Endpoint: "http://127.0.0.1:1", PathStyle: true})
	if err != nil || s.URL() != "s3://lake/xicheng/prod" {
		t.Errorf("s3: %v %v", s, err)
	}
	for _, bad := range []string{"s3:///prefix", "gs://b/p"} {
		if _, err := Open(bad, Options{}); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	if _, err := Open("s3://lake/p", Options{}); err == nil || !strings.Contains(err.Error(), "AWS_ACCESS_KEY_ID") {
		t.Errorf("no credentials: %v", err)
	}
}

// countingStore counts Gets and can fail them.
type countingStore struct {
	Store
	gets atomic.Int64
	fail atomic.Bool
	gate chan struct{} // when set, Get waits for it
}

func (c *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	c.gets.Add(1)
	if c.gate != nil {
		<-c.gate
	}
	if c.fail.Load() {
		return nil, errors.New("injected failure")
	}
	return c.Store.Get(ctx, key)
}

func TestCache(t *testing.T) {
	ctx := context.Background()
	local, _ := NewLocal(t.TempDir())
	for i := range 6 {
		local.Put(ctx, fmt.Sprintf("t/data/%d.parquet", i), []byte(strings.Repeat("x", 100)))
	}
	cs := &countingStore{Store: local}
	c, err := NewCache(cs, t.TempDir(), 300)
	if err != nil {
		t.Fatal(err)
	}
	// Hold 0 and 1; read 2..5: the cache stays at 300 bytes but never drops
	// a file in use.
	p0, rel0, err := c.Open(ctx, "t/data/0.parquet")
	if err != nil {
		t.Fatal(err)
	}
	_, rel1, _ := c.Open(ctx, "t/data/1.parquet")
	for i := 2; i < 6; i++ {
		_, rel, err := c.Open(ctx, fmt.Sprintf("t/data/%d.parquet", i))
		if err != nil {
			t.Fatal(err)
		}
		rel()
		if c.Size() > 300 {
			t.Fatalf("cache holds %d bytes, want ≤ 300", c.Size())
		}
	}
	if b, err := os.ReadFile(p0); err != nil || len(b) != 100 {
		t.Fatalf("a file in use was evicted: %v", err)
	}
	rel0()
	rel0() // twice is harmless
	rel1()
	// A hit does not fetch again.
	before := cs.gets.Load()
	_, rel, _ := c.Open(ctx, "t/data/5.parquet")
	rel()
	if cs.gets.Load() != before {
		t.Fatal("a cached object was fetched again")
	}
	st := c.Stats()
	if st.Evictions < 3 || st.Hits < 1 || st.Misses != 6 {
		t.Fatalf("stats %+v", st)
	}
	// Concurrent opens of one key fetch it once.
	local.Put(ctx, "t/data/new.parquet", []byte("new"))
	cs.gate = make(chan struct{})
	before = cs.gets.Load()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, rel, err := c.Open(ctx, "t/data/new.parquet")
			if err == nil {
				rel()
			}
		}()
	}
	close(cs.gate)
	wg.Wait()
	cs.gate = nil
	if n := cs.gets.Load() - before; n != 1 {
		t.Fatalf("8 concurrent opens fetched %d times, want 1", n)
	}
	// A failed fetch is reported and tried again by the next Open.
	local.Put(ctx, "t/data/later.parquet", []byte("later"))
	cs.fail.Store(true)
	if _, _, err := c.Open(ctx, "t/data/later.parquet"); err == nil {
		t.Fatal("no error from a failing store")
	}
	cs.fail.Store(false)
	if p, rel, err := c.Open(ctx, "t/data/later.parquet"); err != nil {
		t.Fatalf("after the store recovered: %v", err)
	} else if b, _ := os.ReadFile(p); string(b) != "later" {
		t.Fatalf("fetched %q", b)
	} else {
		rel()
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(c.dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".fetch-") {
			t.Errorf("temporary file %s left", e.Name())
		}
	}
}
