package objstore

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"citybrain/internal/testenv"
)

// faultProxy stands in front of the real server: it answers the next
// failN requests with 503 SlowDown, and delays every request by delay.
type faultProxy struct {
	failN  atomic.Int64
	failed atomic.Int64
	delay  atomic.Int64 // nanoseconds
}

func (f *faultProxy) handler(target string) http.Handler {
	u, _ := url.Parse(target)
	rp := httputil.NewSingleHostReverseProxy(u) // the Host header is kept: the signature was made for it
	rp.ErrorLog = log.New(io.Discard, "", 0)    // the server down is part of the test
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d := time.Duration(f.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		if f.failN.Add(-1) >= 0 {
			f.failed.Add(1)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			return
		}
		rp.ServeHTTP(w, r)
	})
}

// TestS3Store: the store on a real S3-compatible server (SeaweedFS, built
// and started by internal/testenv), under a prefix, through a proxy that
// injects faults: 503 SlowDown answers are retried, a slow server is waited
// for within the caller's deadline and reported past it, and a call made
// while the server is down succeeds once it is back. The read-through cache
// serves the objects as local files.
func TestS3Store(t *testing.T) {
	if testing.Short() {
		t.Skip("starts SeaweedFS")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sw, err := testenv.StartSeaweedFS(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Stop() })
	fp := &faultProxy{}
	srv := httptest.NewServer(fp.handler(sw.Endpoint()))
	t.Cleanup(srv.Close)
	s, err := NewS3("lake", "xicheng/prod", Options{Endpoint: srv.URL, PathStyle: true,
		AccessKey: testenv.SeaweedAccessKey, SecretKey: testenv.SeaweedSecretKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureBucket(ctx); err != nil {
		t.Fatalf("a second EnsureBucket: %v", err)
	}
	storeSuite(t, s)

	// 503 SlowDown, three times: retried, the write lands.
	fp.failN.Store(3)
	if err := s.Put(ctx, "raw/slow/data/1.parquet", []byte("after 503s")); err != nil {
		t.Fatalf("put through three 503s: %v", err)
	}
	if n := fp.failed.Load(); n != 3 {
		t.Fatalf("%d requests answered 503, want 3", n)
	}
	if b, err := s.GetRange(ctx, "raw/slow/data/1.parquet", 0, 100); err != nil || string(b) != "after 503s" {
		t.Fatalf("read back: %q %v", b, err)
	}
	// A slow server: past the caller's deadline the call fails (and says
	// so); within it, it succeeds.
	fp.delay.Store(int64(1500 * time.Millisecond))
	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = s.Stat(short, "raw/slow/data/1.parquet")
	cancelShort()
	if err == nil {
		t.Fatal("a call past its deadline succeeded")
	}
	if _, err := s.Stat(ctx, "raw/slow/data/1.parquet"); err != nil {
		t.Fatalf("a slow call within its deadline: %v", err)
	}
	fp.delay.Store(0)
	// The server down: a write waits for it to come back.
	if err := sw.Stop(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Put(ctx, "raw/restart/data/1.parquet", []byte("written across a restart")) }()
	time.Sleep(2 * time.Second)
	select {
	case err := <-done:
		t.Fatalf("the put returned while the server was down: %v", err)
	default:
	}
	if err := sw.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("put across a server restart: %v", err)
	}
	// Everything written before is still there, and readable as local files.
	c, err := NewCache(s, t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"raw/restart/data/1.parquet": "written across a restart", "raw/weather/data/00002.parquet": "PAR1 two two"} {
		p, rel, err := c.Open(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != want {
			t.Errorf("%s cached as %q, want %q", k, b, want)
		}
		rel()
	}
}
