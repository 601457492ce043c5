package testenv

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// IcebergConnectVersion is the Apache Iceberg release whose Kafka Connect
// sink (org.apache.iceberg:iceberg-kafka-connect) StartKafkaConnect can run.
// It must match iceberg.version in kafkaconnect/pom.xml.
const IcebergConnectVersion = "1.10.1"

//go:embed kafkaconnect/pom.xml
var kafkaConnectPom []byte

const kafkaConnectStartTimeout = 120 * time.Second

// KafkaConnectJars makes sure the class path of an Apache Kafka Connect
// worker (connect-runtime, connect-json and connect-transforms of
// KafkaVersion) with Apache Iceberg's Kafka Connect sink
// (IcebergConnectVersion, with iceberg-parquet and the shaded Hadoop client
// for a HadoopCatalog on the local file system) is in
// CacheDir()/kafka-connect-iceberg-<IcebergConnectVersion>/libs and returns
// that directory, suitable for `java -cp '<libsDir>/*'`.
//
// The first call runs `mvn -q -B dependency:copy-dependencies` on the
// embedded kafkaconnect/pom.xml into MavenRepo() (Maven must be on PATH and
// reach Maven Central); later calls return at once. As KafkaJars, it is safe
// across processes (flock on <base>.lock, a temporary directory renamed into
// place, a marker holding the pom's hash).
func KafkaConnectJars(ctx context.Context) (libsDir string, err error) {
	return mavenJars{dir: "kafka-connect-iceberg-" + IcebergConnectVersion,
		what: fmt.Sprintf("Kafka Connect %s + Iceberg sink %s jars", KafkaVersion, IcebergConnectVersion), pom: kafkaConnectPom,
		expect: []string{"connect-runtime-*.jar", "iceberg-kafka-connect-*.jar", "iceberg-parquet-*.jar"}}.fetch(ctx)
}

// KafkaConnect is an Apache Kafka Connect worker in standalone mode
// (org.apache.kafka.connect.cli.ConnectStandalone) running one connector,
// started from the jars of KafkaConnectJars. Its files (worker.properties,
// connector.properties, offsets, connect.log) live in Dir(). The JVM is a
// child process in its own process group, killed by the kernel if the
// process that started it dies. Callers must call Stop.
type KafkaConnect struct {
	dir  string
	name string
	port int
	cmd  *exec.Cmd
	done chan struct{}

	mu      sync.Mutex
	waitErr error
	stopped bool
}

// KafkaConnectConfig configures StartKafkaConnect.
type KafkaConnectConfig struct {
	// Bootstrap is the broker's client address.
	Bootstrap string
	// Connector is the connector's configuration; "name" and
	// "connector.class" are required.
	Connector map[string]string
	// Worker holds extra worker properties (they override the defaults:
	// JSON converters without schemas, a file offset store in Dir()).
	Worker map[string]string
	// HeapMB is the JVM's -Xmx (default 1024).
	HeapMB int
}

// StartKafkaConnect writes the worker and connector properties into dir
// (created if needed), starts the standalone worker with its REST listener
// on a free 127.0.0.1 port, and returns once the connector and all its tasks
// report RUNNING, or fails (with the tail of dir/connect.log) if that takes
// longer than 2 minutes, ctx ends, the JVM exits or a task FAILED.
func StartKafkaConnect(ctx context.Context, dir string, cfg KafkaConnectConfig) (*KafkaConnect, error) {
	name := cfg.Connector["name"]
	if name == "" || cfg.Connector["connector.class"] == "" {
		return nil, errors.New("testenv: the connector configuration needs name and connector.class")
	}
	libs, err := KafkaConnectJars(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("java"); err != nil {
		return nil, fmt.Errorf("testenv: java is needed to run Kafka Connect: %w", err)
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, fmt.Errorf("testenv: picking a port for Kafka Connect: %w", err)
	}
	kc := &KafkaConnect{dir: dir, name: name, port: ports[0], done: make(chan struct{})}
	worker := map[string]string{
		"bootstrap.servers":              cfg.Bootstrap,
		"key.converter":                  "org.apache.kafka.connect.storage.StringConverter",
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"key.converter.schemas.enable":   "false",
		"value.converter.schemas.enable": "false",
		"offset.storage.file.filename":   filepath.Join(dir, "connect.offsets"),
		"offset.flush.interval.ms":       "10000",
		"listeners":                      fmt.Sprintf("http://127.0.0.1:%d", kc.port),
		"plugin.discovery":               "only_scan",
	}
	for k, v := range cfg.Worker {
		worker[k] = v
	}
	if err := os.WriteFile(kc.path("worker.properties"), properties(worker), 0o644); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if err := os.WriteFile(kc.path("connector.properties"), properties(cfg.Connector), 0o644); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if err := os.WriteFile(kc.path("log4j2.properties"), []byte(connectLog4j2), 0o644); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	heap := cfg.HeapMB
	if heap <= 0 {
		heap = 1024
	}
	logf, err := os.OpenFile(kc.path("connect.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	cmd := exec.Command("java",
		fmt.Sprintf("-Xmx%dm", heap), "-Xms256m",
		"-XX:+ExitOnOutOfMemoryError",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=file:"+kc.path("log4j2.properties"),
		"-cp", filepath.Join(libs, "*"),
		"org.apache.kafka.connect.cli.ConnectStandalone",
		kc.path("worker.properties"), kc.path("connector.properties"))
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("testenv: starting Kafka Connect: %w", err)
	}
	kc.cmd = cmd
	go func() {
		err := cmd.Wait()
		logf.Close()
		kc.mu.Lock()
		kc.waitErr = err
		kc.mu.Unlock()
		close(kc.done)
	}()
	if err := kc.waitRunning(ctx); err != nil {
		_ = kc.Stop()
		return nil, fmt.Errorf("testenv: Kafka Connect connector %s did not start: %w\n--- last 40 lines of %s ---\n%s",
			name, err, kc.path("connect.log"), kc.LogTail(40))
	}
	return kc, nil
}

// connectLog4j2 logs at INFO to stdout (connect.log), with the noisy
// client configuration dumps at WARN.
const connectLog4j2 = `status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.clients.name = org.apache.kafka.clients
logger.clients.level = warn
logger.common.name = org.apache.kafka.common
logger.common.level = warn
logger.hadoop.name = org.apache.hadoop
logger.hadoop.level = warn
`

func properties(m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteString("# Written by citybrain/internal/testenv.\n")
	for _, k := range keys {
		// Properties escaping: backslashes and line breaks in values.
		v := strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(m[k])
		fmt.Fprintf(&b, "%s=%s\n", k, v)
	}
	return b.Bytes()
}

func (kc *KafkaConnect) path(name string) string { return filepath.Join(kc.dir, name) }

// Dir is the worker's directory (properties, offsets, connect.log).
func (kc *KafkaConnect) Dir() string { return kc.dir }

// Pid is the worker JVM's process id.
func (kc *KafkaConnect) Pid() int { return kc.cmd.Process.Pid }

// Done is closed when the worker JVM has exited.
func (kc *KafkaConnect) Done() <-chan struct{} { return kc.done }

// ProcessState is the exited JVM's state (nil while it runs); its
// SysUsage() is a *syscall.Rusage with the JVM's CPU time and peak RSS.
func (kc *KafkaConnect) ProcessState() *os.ProcessState {
	select {
	case <-kc.done:
		return kc.cmd.ProcessState
	default:
		return nil
	}
}

// connectorStatus is GET /connectors/<name>/status.
type connectorStatus struct {
	Connector struct {
		State string `json:"state"`
		Trace string `json:"trace"`
	} `json:"connector"`
	Tasks []struct {
		ID    int    `json:"id"`
		State string `json:"state"`
		Trace string `json:"trace"`
	} `json:"tasks"`
}

// Status returns the connector's state and its tasks' ("RUNNING", "FAILED"
// …), with the first failure's trace, from the worker's REST API.
func (kc *KafkaConnect) Status(ctx context.Context) (connector string, tasks []string, trace string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d/connectors/%s/status", kc.port, kc.name), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, "", fmt.Errorf("status: HTTP %d", resp.StatusCode)
	}
	var st connectorStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return "", nil, "", err
	}
	trace = st.Connector.Trace
	for _, t := range st.Tasks {
		tasks = append(tasks, t.State)
		if trace == "" && t.Trace != "" {
			trace = t.Trace
		}
	}
	return st.Connector.State, tasks, trace, nil
}

// Failed returns an error when the JVM has exited or the connector or one
// of its tasks is FAILED (with the first lines of the failure's trace).
func (kc *KafkaConnect) Failed(ctx context.Context) error {
	select {
	case <-kc.done:
		kc.mu.Lock()
		defer kc.mu.Unlock()
		return fmt.Errorf("the Kafka Connect worker exited: %v", kc.waitErr)
	default:
	}
	c, tasks, trace, err := kc.Status(ctx)
	if err != nil {
		return nil // not answering is not a failure by itself
	}
	failed := c == "FAILED"
	for _, t := range tasks {
		failed = failed || t == "FAILED"
	}
	if failed {
		return fmt.Errorf("connector %s is %s (tasks %v): %s", kc.name, c, tasks, firstLines(trace, 6))
	}
	return nil
}

func (kc *KafkaConnect) waitRunning(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, kafkaConnectStartTimeout)
	defer cancel()
	var last error
	for {
		select {
		case <-kc.done:
			kc.mu.Lock()
			defer kc.mu.Unlock()
			return fmt.Errorf("the worker exited: %v", kc.waitErr)
		default:
		}
		c, tasks, trace, err := kc.Status(ctx)
		switch {
		case err != nil:
			last = err
		case c == "FAILED":
			return fmt.Errorf("connector FAILED: %s", firstLines(trace, 6))
		default:
			running := c == "RUNNING" && len(tasks) > 0
			for _, t := range tasks {
				if t == "FAILED" {
					return fmt.Errorf("task FAILED: %s", firstLines(trace, 6))
				}
				running = running && t == "RUNNING"
			}
			if running {
				return nil
			}
			last = fmt.Errorf("connector %s, tasks %v", c, tasks)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-kc.done:
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Stop stops the worker: SIGTERM to its process group, SIGKILL after 20 s,
// and waits for the JVM to exit. It is idempotent.
func (kc *KafkaConnect) Stop() error {
	kc.mu.Lock()
	if kc.stopped {
		kc.mu.Unlock()
		<-kc.done
		return nil
	}
	kc.stopped = true
	kc.mu.Unlock()
	pid := kc.cmd.Process.Pid
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-kc.done:
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-kc.done
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL) // stragglers in the group
	return nil
}

// LogTail returns the last n lines of connect.log.
func (kc *KafkaConnect) LogTail(n int) string {
	b, err := os.ReadFile(kc.path("connect.log"))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return tailOfString(string(b), n)
}

// firstLines returns the first n lines of a Java stack trace plus its
// "Caused by" lines (where the reason usually is).
func firstLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	var out []string
	for i, l := range lines {
		if i < n || strings.HasPrefix(strings.TrimSpace(l), "Caused by") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
