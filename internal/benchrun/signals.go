package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Stopping benchrun and the processes its suites start (the soak's
// citybrain serve and CPU hogs). Those run in process groups of their own
// (Setpgid), so a terminal's Ctrl-C reaches benchrun only; benchrun's
// context ends, and each suite stops its children in order (serve gets
// SIGTERM and commits, the hogs are killed) and removes its temp
// directory. Each child also has Pdeathsig SIGKILL, for a benchrun that
// dies without doing so.
//
// The gap was `go run` (which make bench uses): SIGTERM to go run — from
// timeout(1), a CI runner, or make itself, which forwards SIGTERM to its
// children — kills go run and never reaches benchrun, which ran on,
// orphaned, with serve and the hogs. So under go run benchrun watches its
// parent and stops as on SIGTERM when it goes. (go run ignores a SIGINT sent
// to its own pid alone and does not forward it: use Ctrl-C, which signals
// the whole foreground group, or SIGTERM.)

// errParentExited is the cause of the context's end when go run went.
var errParentExited = errors.New("the go run that started benchrun exited")

// signalContext ends on SIGINT, SIGTERM or SIGHUP and, with watchParent,
// when benchrun's parent process exits. From then on those signals have
// their default action again, so a second Ctrl-C ends benchrun at once
// (its children go with it, by Pdeathsig).
func signalContext(watchParent bool) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	cancel := stop
	if watchParent {
		var stopWatch context.CancelFunc
		ctx, stopWatch = untilParentExits(ctx, 500*time.Millisecond)
		cancel = func() { stopWatch(); stop() }
	}
	context.AfterFunc(ctx, func() {
		stop()
		if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) { // not the end of a run
			logf("benchrun: stopping (%v): the suite stops what it started; interrupt again to kill at once", cause)
		}
	})
	return ctx, cancel
}

// untilParentExits returns a context that ends, with errParentExited as
// its cause, once benchrun's parent process has exited (benchrun is then
// re-parented; checked every interval).
func untilParentExits(ctx context.Context, every time.Duration) (context.Context, context.CancelFunc) {
	ppid := os.Getppid()
	ctx, cancel := context.WithCancelCause(ctx)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if os.Getppid() != ppid {
					cancel(fmt.Errorf("%w (pid %d)", errParentExited, ppid))
					return
				}
			}
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// parentIsGoRun reports whether benchrun's parent is the go command.
func parentIsGoRun() bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", os.Getppid()))
	return err == nil && strings.TrimSpace(string(b)) == "go"
}
