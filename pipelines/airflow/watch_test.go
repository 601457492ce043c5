package airflow

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestWatchRidesOutBusyServer: a few failed polls in a row (an API server
// too busy to answer) do not end a Watch; a refused login or too many
// failures in a row do.
func TestWatchRidesOutBusyServer(t *testing.T) {
	var polls, failFirst atomic.Int64
	var status atomic.Int64
	status.Store(http.StatusServiceUnavailable)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/api/v1/version":
			w.Write([]byte(`{"version":"2.11.2"}`))
		case strings.HasSuffix(r.URL.Path, "/taskInstances"):
			w.Write([]byte(`{"task_instances":[{"task_id":"t","state":"success"}]}`))
		case strings.Contains(r.URL.Path, "/dagRuns/"):
			if polls.Add(1) <= failFirst.Load() {
				w.WriteHeader(int(status.Load()))
				return
			}
			w.Write([]byte(`{"dag_id":"d","dag_run_id":"r","state":"success"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, "admin", "pw", APIv1)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	failFirst.Store(watchMaxFailures - 1)
	r, err := c.Watch(ctx, "d", "r", time.Millisecond, nil)
	if err != nil || r.State != "success" {
		t.Fatalf("after %d failed polls: %+v %v", watchMaxFailures-1, r, err)
	}

	polls.Store(0)
	failFirst.Store(watchMaxFailures)
	if _, err := c.Watch(ctx, "d", "r", time.Millisecond, nil); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("after %d failed polls: %v, want the 503", watchMaxFailures, err)
	}

	polls.Store(0)
	failFirst.Store(1)
	status.Store(http.StatusUnauthorized)
	if _, err := c.Watch(ctx, "d", "r", time.Millisecond, nil); !errors.Is(err, ErrAuth) {
		t.Fatalf("refused login: %v, want ErrAuth at once", err)
	}
	if polls.Load() != 1 {
		t.Errorf("polled %d times after a refused login", polls.Load())
	}
}

// TestDescendants: the test's clean-up finds grandchildren that left the
// process group.
func TestDescendants(t *testing.T) {
	cmd := exec.Command("sh", "-c", "setsid sleep 30 & sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var got []int
	for i := 0; i < 50 && len(got) < 2; i++ {
		time.Sleep(20 * time.Millisecond)
		got = descendants(cmd.Process.Pid)
	}
	if len(got) != 2 {
		t.Fatalf("descendants = %v, want the two sleeps", got)
	}
	for _, p := range got {
		syscall.Kill(p, syscall.SIGKILL)
	}
}
