package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Mosquitto is a throwaway Eclipse Mosquitto MQTT broker started by
// StartMosquitto. It listens on 127.0.0.1 only, keeps its persistence
// database in its directory (so a Restart keeps persistent sessions and the
// QoS 1/2 messages queued for them) and logs to dir/mosquitto.log. Its
// methods are safe for concurrent use.
type Mosquitto struct {
	bin     string
	dir     string
	conf    string
	logFile string
	port    int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been reaped
}

// MosquittoOptions adjust the broker started by StartMosquittoWith.
type MosquittoOptions struct {
	// Users are username → password. When set, anonymous clients are
	// refused and only these users may connect (a password file is made
	// with mosquitto_passwd); when empty, anonymous clients are allowed.
	Users map[string]string
}

// StartMosquitto starts a broker with anonymous access on a free loopback
// port; see StartMosquittoWith.
func StartMosquitto(ctx context.Context, dir string) (*Mosquitto, error) {
	return StartMosquittoWith(ctx, dir, MosquittoOptions{})
}

// StartMosquittoWith writes a broker configuration into dir (created if
// needed: dir/mosquitto.conf, dir/mosquitto.db for persistence,
// dir/mosquitto.log) and starts /usr/sbin/mosquitto (Debian's mosquitto
// package; $PATH is tried too) on a free port of 127.0.0.1. Persistence is
// on and the per-client queue is effectively unbounded (100,000 messages),
// so messages published while a persistent-session subscriber is away
// survive both its absence and a broker Restart. ctx bounds only the
// start-up. The caller must call Stop (e.g. via t.Cleanup); on error nothing
// is left running. Errors include the tail of the broker log; a missing
// binary says to run `make test-deps`.
func StartMosquittoWith(ctx context.Context, dir string, opts MosquittoOptions) (*Mosquitto, error) {
	bin, err := mosquittoBin()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	m := &Mosquitto{
		bin:     bin,
		dir:     dir,
		conf:    filepath.Join(dir, "mosquitto.conf"),
		logFile: filepath.Join(dir, "mosquitto.log"),
	}
	pwFile := ""
	if len(opts.Users) > 0 {
		pwFile = filepath.Join(dir, "passwd")
		if err := writeMosquittoPasswd(ctx, pwFile, opts.Users); err != nil {
			return nil, err
		}
	}
	const attempts = 5
	for i := 0; ; i++ {
		if m.port, err = pickLoopbackPort(); err != nil {
			return nil, err
		}
		if err := m.writeConfig(pwFile); err != nil {
			return nil, err
		}
		err = m.start(ctx)
		if err == nil {
			return m, nil
		}
		if i+1 < attempts && strings.Contains(logTailLines(m.logFile, 20), "Address already in use") {
			continue // lost the race for the port
		}
		return nil, err
	}
}

// Addr returns the broker URL, tcp://127.0.0.1:PORT.
func (m *Mosquitto) Addr() string {
	return "tcp://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port))
}

// Port returns the TCP port the broker listens on (127.0.0.1 only).
func (m *Mosquitto) Port() int { return m.port }

// Dir returns the directory holding the configuration, the persistence
// database and mosquitto.log.
func (m *Mosquitto) Dir() string { return m.dir }

// Stop shuts the broker down with SIGTERM (which makes Mosquitto save its
// persistence database) and waits for it to exit, killing it after 15 s.
// Calling Stop more than once is harmless; later calls return nil.
func (m *Mosquitto) Stop() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopLocked()
}

// Restart stops the broker (saving its persistence database) and starts it
// again on the same port with the same configuration: persistent sessions,
// their subscriptions and queued QoS 1/2 messages survive. Clients see the
// connection drop and must reconnect. ctx bounds the start-up.
func (m *Mosquitto) Restart(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.stopLocked(); err != nil {
		return err
	}
	// The port was ours a moment ago; the kernel may take a moment to
	// release it, so retry briefly.
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := m.startLocked(ctx)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil ||
			!strings.Contains(logTailLines(m.logFile, 20), "Address already in use") {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (m *Mosquitto) start(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.startLocked(ctx)
}

func (m *Mosquitto) startLocked(ctx context.Context) error {
	logf, err := os.OpenFile(m.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "--- testenv: starting mosquitto on %s at %s ---\n", m.Addr(), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(m.bin, "-c", m.conf)
	cmd.Dir = m.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Own process group, so Stop can signal it; Pdeathsig is the backstop
	// against leaking a broker when the test binary dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: starting %s: %w", m.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	m.cmd, m.exited = cmd, exited

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(m.port))
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			m.cmd = nil
			return fmt.Errorf("testenv: mosquitto exited during start-up (%v)\n--- %s (tail) ---\n%s",
				cmd.ProcessState, m.logFile, logTailLines(m.logFile, 40))
		case <-ctx.Done():
			m.stopLocked()
			return fmt.Errorf("testenv: mosquitto did not listen on %s: %w\n--- %s (tail) ---\n%s",
				addr, ctx.Err(), m.logFile, logTailLines(m.logFile, 40))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (m *Mosquitto) stopLocked() error {
	if m.cmd == nil {
		return nil
	}
	cmd, exited := m.cmd, m.exited
	m.cmd = nil
	pgid := -cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-exited:
		return nil
	case <-time.After(15 * time.Second):
	}
	_ = syscall.Kill(pgid, syscall.SIGKILL)
	<-exited
	return fmt.Errorf("testenv: mosquitto did not stop within 15 s of SIGTERM; killed\n--- %s (tail) ---\n%s",
		m.logFile, logTailLines(m.logFile, 40))
}

// writeConfig writes mosquitto.conf for the current port.
func (m *Mosquitto) writeConfig(pwFile string) error {
	var b strings.Builder
	b.WriteString("# Written by citybrain internal/testenv; rewritten on every start.\n")
	if os.Geteuid() == 0 {
		// Mosquitto drops root privileges to the mosquitto user by default,
		// which could not write the persistence file in a root-owned dir.
		b.WriteString("user root\n")
	}
	fmt.Fprintf(&b, "listener %d 127.0.0.1\n", m.port)
	if pwFile != "" {
		b.WriteString("allow_anonymous false\n")
		fmt.Fprintf(&b, "password_file %s\n", pwFile)
	} else {
		b.WriteString("allow_anonymous true\n")
	}
	b.WriteString("persistence true\n")
	fmt.Fprintf(&b, "persistence_location %s/\n", m.dir)
	b.WriteString("persistence_file mosquitto.db\n")
	b.WriteString("autosave_interval 60\n")
	b.WriteString("max_queued_messages 100000\n")
	b.WriteString("log_dest stderr\n")
	b.WriteString("log_type error\nlog_type warning\nlog_type notice\nlog_type information\n")
	b.WriteString("connection_messages true\n")
	b.WriteString("log_timestamp_format %Y-%m-%dT%H:%M:%S\n")
	return os.WriteFile(m.conf, []byte(b.String()), 0o600)
}

func writeMosquittoPasswd(ctx context.Context, path string, users map[string]string) error {
	tool := "/usr/bin/mosquitto_passwd"
	if _, err := os.Stat(tool); err != nil {
		if tool, err = exec.LookPath("mosquitto_passwd"); err != nil {
			return errMosquittoMissing
		}
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		return err
	}
	names := make([]string, 0, len(users))
	for u := range users {
		names = append(names, u)
	}
	sort.Strings(names)
	for _, u := range names {
		out, err := exec.CommandContext(ctx, tool, "-b", path, u, users[u]).CombinedOutput()
		if err != nil {
			return fmt.Errorf("testenv: mosquitto_passwd %s: %v\n%s", u, err, out)
		}
	}
	return nil
}

var errMosquittoMissing = errors.New("testenv: the mosquitto broker (/usr/sbin/mosquitto) was not found; run make test-deps (apt-get install mosquitto)")

// mosquittoBin locates the broker binary.
func mosquittoBin() (string, error) {
	const debian = "/usr/sbin/mosquitto"
	if fi, err := os.Stat(debian); err == nil && !fi.IsDir() {
		return debian, nil
	}
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	return "", errMosquittoMissing
}
