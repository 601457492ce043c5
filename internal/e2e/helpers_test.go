package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"citybrain/internal/testenv"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "citybrain-e2e-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "citybrain")
	out, err := exec.Command("go", "build", "-o", binary, "citybrain/cmd/citybrain").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build citybrain: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	stopKafka()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the module root (tests run in internal/e2e).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func weatherCSV() string {
	return filepath.Join(repoRoot(), "testdata", "real", "weather", "PRSA_Data_Guanyuan_20130301-20170228.csv")
}

// env is one isolated platform: a config file and a data directory.
type env struct {
	t      *testing.T
	dir    string
	config string
}

// newEnv writes citybrain.yaml with the given extra YAML (appended as is).
func newEnv(t *testing.T, extra string) *env {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`data_dir: %s
log: {level: info, format: text}
http: {addr: "127.0.0.1:0"}
broker: {embedded_port: 0}
lake_writer: {flush_rows: 100000, flush_interval: 2s, idle_flush: 300ms}
warehouse:
  maintenance: {interval: 0s}
sql_access: {pgwire: {listen: "127.0.0.1:0"}}
%s`, filepath.Join(dir, "data"), extra)
	path := filepath.Join(dir, "citybrain.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return &env{t: t, dir: dir, config: path}
}

func (e *env) dataDir() string { return filepath.Join(e.dir, "data") }

// run runs a citybrain command to completion and returns stdout; a failure
// fails the test with both outputs.
func (e *env) run(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.try(args...)
	if err != nil {
		e.t.Fatalf("citybrain %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

func (e *env) try(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--config", e.config}, args...)...)
	cmd.Dir = repoRoot()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

// sqlRows runs citybrain sql --format csv and returns the data rows.
func (e *env) sqlRows(q string) [][]string {
	e.t.Helper()
	out := e.run("sql", "--format", "csv", q)
	recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(recs) < 1 {
		e.t.Fatalf("sql %q: bad csv %q: %v", q, out, err)
	}
	return recs[1:]
}

func (e *env) sqlInt(q string) int64 {
	e.t.Helper()
	rows := e.sqlRows(q)
	n, err := strconv.ParseInt(rows[0][0], 10, 64)
	if err != nil {
		e.t.Fatalf("sql %q: %v", q, err)
	}
	return n
}

// server is a running citybrain serve.
type server struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func (e *env) serve(logName string) *server {
	e.t.Helper()
	return e.serveWith(logName)
}

// serveWith starts citybrain serve with extra arguments (--roles …).
func (e *env) serveWith(logName string, args ...string) *server {
	e.t.Helper()
	logPath := filepath.Join(e.dir, logName)
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(binary, append([]string{"--config", e.config, "serve"}, args...)...)
	cmd.Dir = repoRoot()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { cmd.Wait(); f.Close(); close(s.done) }()
	e.t.Cleanup(func() { s.kill() })
	return s
}

func (s *server) kill() {
	if s.cmd.Process != nil {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-s.done
}

func (s *server) stop(t *testing.T) {
	syscall.Kill(s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		t.Errorf("serve did not stop within 60s of SIGTERM; killing")
		s.kill()
	}
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// Real Kafka, one broker per test binary, started on first use.
var (
	kafkaOnce sync.Once
	kafkaSrv  *testenv.Kafka
	kafkaErr  error
)

func realKafka(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("real Apache Kafka: skipped with -short")
	}
	kafkaOnce.Do(func() {
		dir, err := os.MkdirTemp("", "citybrain-kafka-")
		if err != nil {
			kafkaErr = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		kafkaSrv, kafkaErr = testenv.StartKafka(ctx, dir)
	})
	if kafkaErr != nil {
		t.Fatalf("start Apache Kafka: %v", kafkaErr)
	}
	return kafkaSrv.Bootstrap()
}

func stopKafka() {
	if kafkaSrv != nil {
		kafkaSrv.Stop()
	}
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, s := cond()
		if ok {
			return
		}
		last = s
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
}

// replace edits the env's config file (e.g. to swap the broker or catalog).
func (e *env) replace(old, new string) {
	e.t.Helper()
	b, err := os.ReadFile(e.config)
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		e.t.Fatalf("config has no %q", old)
	}
	if err := os.WriteFile(e.config, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// killRepeatedly starts serve and SIGKILLs it kills times, each after a
// random wait of minMs + [0, spanMs) ms (rng's schedule, seed logged by the
// caller), and returns what count (a one-number SQL query) gave after each
// kill ("-" when it could not run).
func (e *env) killRepeatedly(kills int, rng *rand.Rand, minMs, spanMs int, count string) []string {
	e.t.Helper()
	var progress []string
	for i := range kills {
		s := e.serve(fmt.Sprintf("serve-%02d.log", i))
		time.Sleep(time.Duration(minMs+rng.IntN(spanMs)) * time.Millisecond)
		s.kill()
		if out, _, err := e.try("sql", "--format", "csv", count); err == nil {
			lines := strings.Split(strings.TrimSpace(out), "\n")
			progress = append(progress, lines[len(lines)-1])
		} else {
			progress = append(progress, "-")
		}
	}
	e.t.Logf("rows in the lake after each kill: %s", strings.Join(progress, " "))
	return progress
}
