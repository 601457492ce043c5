package broker

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestEmbeddedLogLock: two processes must never run the embedded broker on
// one log; the second waits for the first and then starts.
func TestEmbeddedLogLock(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	first, err := StartEmbedded(dir, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	old := embeddedLockWait
	defer func() { embeddedLockWait = old }()
	embeddedLockWait = 300 * time.Millisecond
	if second, err := StartEmbedded(dir, 0, log); err == nil {
		second.Close()
		first.Close()
		t.Fatal("a second embedded broker started on a log that is in use")
	} else if !strings.Contains(err.Error(), "held by another citybrain process") {
		t.Errorf("error does not say what holds the log: %v", err)
	}

	embeddedLockWait = 10 * time.Second
	go func() { time.Sleep(500 * time.Millisecond); first.Close() }()
	second, err := StartEmbedded(dir, 0, log)
	if err != nil {
		t.Fatalf("did not start after the first broker stopped: %v", err)
	}
	second.Close()
}
