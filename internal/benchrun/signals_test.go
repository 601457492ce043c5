package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSuiteStopsChildren runs a stand-in for `go run` (a launcher that
// starts benchrun's signal handling and a soak CPU hog in a child process
// and waits for it, as go run does) and checks that the hog is gone after
// each way of stopping: SIGTERM to the launcher (it dies, the child is
// orphaned: it used to run on with its hogs and serve), SIGTERM and
// SIGINT to the child itself.
func TestSuiteStopsChildren(t *testing.T) {
	switch os.Getenv("BENCHRUN_SIGNAL_TEST") {
	case "launcher":
		cmd := exec.Command(os.Args[0], "-test.run=^TestSuiteStopsChildren$")
		cmd.Env = append(os.Environ(), "BENCHRUN_SIGNAL_TEST=suite")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	case "suite":
		ctx, stop := signalContext(true)
		defer stop()
		pid, stopHog, err := startHog()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pids := fmt.Sprintf("%d %d\n", os.Getpid(), pid)
		if err := os.WriteFile(os.Getenv("BENCHRUN_SIGNAL_TEST_PIDS"), []byte(pids), 0o644); err != nil {
			stopHog()
			os.Exit(1)
		}
		<-ctx.Done()
		stopHog()
		fmt.Fprintf(os.Stderr, "suite stopped: %v\n", context.Cause(ctx))
		os.Exit(0)
	}

	for _, c := range []struct {
		name   string
		to     string // launcher or suite
		signal syscall.Signal
		cause  string
	}{
		{"SIGTERM to go run", "launcher", syscall.SIGTERM, "the go run that started benchrun exited"},
		{"SIGTERM to benchrun", "suite", syscall.SIGTERM, "terminated signal received"},
		{"SIGINT to benchrun", "suite", syscall.SIGINT, "interrupt signal received"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pids")
			launcher := exec.Command(os.Args[0], "-test.run=^TestSuiteStopsChildren$")
			launcher.Env = append(os.Environ(), "BENCHRUN_SIGNAL_TEST=launcher", "BENCHRUN_SIGNAL_TEST_PIDS="+pidFile)
			var out bytes.Buffer
			launcher.Stdout, launcher.Stderr = &out, &out
			if err := launcher.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() { launcher.Wait(); close(exited) }()
			var suite, hog int
			killAll := func() {
				if hog > 0 {
					syscall.Kill(-hog, syscall.SIGKILL)
				}
				if suite > 0 {
					syscall.Kill(suite, syscall.SIGKILL)
				}
				launcher.Process.Kill()
			}
			// output is what the launcher and benchrun said, once both are done
			// (benchrun keeps the launcher's stdout open after it dies).
			output := func() string {
				select {
				case <-exited:
				case <-time.After(10 * time.Second):
					killAll()
					<-exited
				}
				return out.String()
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				b, _ := os.ReadFile(pidFile)
				if _, err := fmt.Sscanf(string(b), "%d %d\n", &suite, &hog); err == nil {
					break
				}
				if time.Now().After(deadline) {
					killAll()
					t.Fatalf("the suite did not start its hog in 30 s:\n%s", output())
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Cleanup(func() { killAll(); <-exited }) // whatever happens, no hog is left behind
			target := launcher.Process.Pid
			if c.to == "suite" {
				target = suite
			}
			if err := syscall.Kill(target, c.signal); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(10 * time.Second); !gone(hog) || !gone(suite); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					h, s := gone(hog), gone(suite)
					killAll()
					t.Fatalf("10 s after %s: hog gone %v, benchrun gone %v\n%s", c.name, h, s, output())
				}
			}
			if out := output(); !strings.Contains(out, "suite stopped: "+c.cause) {
				t.Errorf("benchrun stopped without saying %q:\n%s", c.cause, out)
			}
		})
	}
}

// gone reports whether a process has exited (a zombie counts: nobody may
// reap an orphan soon).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// pid (comm) state …: comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z'
}
