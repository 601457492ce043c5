package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// groupChild is one instance process of a consumer-group bench
// (warnings-scale, lakewriter-group): benchrun itself in a child mode,
// printing JSON lines on stdout.
type groupChild struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	owned []int // the units or partitions it owns now (set by the line handler)
	done  chan struct{}
}

// startGroupChild starts benchrun with args; each stdout line goes to line, under c.mu.
func startGroupChild(ctx context.Context, args []string, line func(c *groupChild, b []byte)) (*groupChild, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &groupChild{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			c.mu.Lock()
			line(c, sc.Bytes())
			c.mu.Unlock()
		}
		cmd.Wait()
	}()
	return c, nil
}

// stop asks the child to stop (SIGTERM: it prints its totals) and waits, killing it after wait.
func (c *groupChild) stop(wait time.Duration) {
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(wait):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// shared reports whether each child owns some of the n units (or
// partitions) and together all of them.
func shared(children []*groupChild, n int) bool {
	all, each := map[int]bool{}, true
	for _, c := range children {
		c.mu.Lock()
		each = each && len(c.owned) > 0
		for _, u := range c.owned {
			all[u] = true
		}
		c.mu.Unlock()
	}
	return each && len(all) == n
}
