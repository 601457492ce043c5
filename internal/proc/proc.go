// Package proc reads the running process's own figures (its resident
// memory) and restarts it in place.
//
// Restart is the SQL backstop's last resort (warehouse/sqlaccess): a
// DuckDB call that cannot be interrupted — one scalar function working on
// one huge value — is ended by replacing the whole process image with a
// fresh copy of the same program (execve). The process id, its parent and
// its arguments stay; every thread, every DuckDB database in memory and
// every open file go. citybrain serve is built to survive a kill -9 at any
// moment (the lake and the topics are the state), so this loses nothing.
package proc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// RestartEnv carries the reason for a restart into the new image.
const RestartEnv = "CITYBRAIN_RESTARTED"

// Resident is the process's resident set in bytes (Linux /proc/self/statm).
func Resident() (int64, bool) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, false
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, false
	}
	return pages * int64(os.Getpagesize()), true
}

// Restart replaces the process with a fresh run of the same executable and
// arguments, RestartEnv set to reason. Every descriptor but stdin, stdout
// and stderr is closed by the exec (Go opens its files close-on-exec;
// DuckDB's are marked here), so listening ports and file locks are free
// for the new image. It returns only on failure (the executable was
// removed, say); the caller should then exit.
func Restart(reason string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own executable: %w", err)
	}
	if _, err := os.Stat(exe); err != nil {
		return fmt.Errorf("own executable %s: %w", exe, err)
	}
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range fds {
			fd, err := strconv.Atoi(e.Name())
			if err != nil || fd <= 2 {
				continue
			}
			syscall.CloseOnExec(fd)
		}
	}
	env := append(withoutEnv(os.Environ(), RestartEnv), RestartEnv+"="+strings.ReplaceAll(reason, "\n", " "))
	return syscall.Exec(filepath.Clean(exe), os.Args, env)
}

// Restarted is the reason the previous image gave for restarting this
// process ("" when it was started normally). It clears it, so a child the
// process starts does not inherit it.
func Restarted() string {
	r := os.Getenv(RestartEnv)
	os.Unsetenv(RestartEnv)
	return r
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}
