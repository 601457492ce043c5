package testenv

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
)

// KafkaVersion is the Apache Kafka release that StartKafka runs. It must match
// kafka.version in kafka/pom.xml; it names the cache directory
// CacheDir()/kafka-<KafkaVersion>.
const KafkaVersion = "4.4.0"

// kafkaPom is the Maven pom whose dependencies are the broker's class path.
//
//go:embed kafka/pom.xml
var kafkaPom []byte

const (
	kafkaStartTimeout = 90 * time.Second
	kafkaStopTimeout  = 20 * time.Second
	kafkaLogTail      = 40
)

// Kafka is a single-node KRaft Apache Kafka broker on 127.0.0.1 started from
// jars fetched from Maven Central.
//
// The node is both broker and controller (node.id=1), listens for clients on
// PLAINTEXT://127.0.0.1:<port> (see Bootstrap) and keeps its data and metadata
// log under the directory given to StartKafka. Topics are not auto-created and
// all internal topics use replication factor 1.
//
// The broker is a child process in its own process group. Callers must call
// Stop when done (in tests: t.Cleanup(func() { k.Stop() })). As a backstop the
// JVM is also sent SIGKILL by the kernel if the process that started it dies,
// so a crashed or killed test binary does not leak a broker.
//
// A Kafka is safe for concurrent use.
type Kafka struct {
	dir       string // absolute; holds server.properties, kafka.log, data
	libs      string // CacheDir()/kafka-<version>/libs
	port      int    // PLAINTEXT listener
	ctrlPort  int    // CONTROLLER listener
	clusterID string

	mu   sync.Mutex
	proc *kafkaProc // nil when stopped
}

// kafkaProc is one run of the broker JVM.
type kafkaProc struct {
	cmd     *exec.Cmd
	log     *os.File
	done    chan struct{} // closed when the process has exited
	waitErr error         // valid after done is closed
}

// KafkaJars makes sure the jars of Apache Kafka KafkaVersion (broker, tools and
// a log4j2 logging backend) are in CacheDir()/kafka-<KafkaVersion>/libs and
// returns that directory, suitable for `java -cp '<libsDir>/*'`.
//
// The first call runs `mvn -q -B -f <pom> dependency:copy-dependencies` (Maven
// must be on PATH and able to reach Maven Central); later calls return at once.
// It is idempotent and safe to call from several processes at the same time:
// an exclusive flock on CacheDir()/kafka-<KafkaVersion>.lock serialises
// fetches, jars are copied into a temporary directory that is renamed into
// place, and a marker file records the hash of the pom that produced them (a
// changed pom triggers a fresh fetch). ctx bounds waiting for the lock and the
// Maven run.
func KafkaJars(ctx context.Context) (libsDir string, err error) {
	return mavenJars{dir: "kafka-" + KafkaVersion, what: "Kafka " + KafkaVersion + " jars", pom: kafkaPom,
		expect: []string{"kafka_2.13-*.jar"}}.fetch(ctx)
}

// StartKafka starts a fresh single-node KRaft broker whose configuration,
// data and log live under dir (created if needed; typically t.TempDir()).
//
// It fetches the jars with KafkaJars, picks two free loopback ports, writes
// dir/server.properties and dir/log4j2.properties, formats dir/data with a new
// random cluster id (kafka.tools.StorageTool format), and runs
// `java -Xmx512m -cp '<libs>/*' kafka.Kafka dir/server.properties` with stdout
// and stderr appended to dir/kafka.log. It returns once the broker answers a
// metadata request listing itself, or fails after 90 s (or when ctx ends, or
// the JVM exits); on failure the broker is killed and the error includes the
// last 40 lines of dir/kafka.log.
//
// ctx bounds only the start-up; the broker keeps running until Stop. Callers
// must call Stop; in tests register it with t.Cleanup after creating dir
// with t.TempDir, so the broker is stopped before its directory is removed.
func StartKafka(ctx context.Context, dir string) (*Kafka, error) {
	libs, err := KafkaJars(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("java"); err != nil {
		return nil, fmt.Errorf("testenv: java is needed to run Kafka: %w", err)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, fmt.Errorf("testenv: picking ports for kafka: %w", err)
	}
	k := &Kafka{
		dir:       dir,
		libs:      libs,
		port:      ports[0],
		ctrlPort:  ports[1],
		clusterID: newKafkaClusterID(),
	}
	if err := os.WriteFile(k.path("server.properties"), []byte(k.serverProperties()), 0o644); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if err := os.WriteFile(k.path("log4j2.properties"), []byte(kafkaLog4j2), 0o644); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	if err := k.format(ctx); err != nil {
		return nil, err
	}
	if err := k.start(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// Bootstrap returns the broker's client address, "127.0.0.1:<port>". It stays
// the same across Restart.
func (k *Kafka) Bootstrap() string {
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(k.port))
}

// ClusterID returns the KRaft cluster id the storage was formatted with (a
// 22-character URL-safe base64 Kafka Uuid); brokers report it in metadata
// responses. It stays the same across Restart.
func (k *Kafka) ClusterID() string { return k.clusterID }

// Dir returns the absolute directory holding the broker's configuration,
// data (Dir()/data) and log file (Dir()/kafka.log).
func (k *Kafka) Dir() string { return k.dir }

// Stop shuts the broker down: SIGTERM to its process group, then, if it has
// not exited within 20 s, SIGKILL to the group. It waits for the JVM to exit.
// Stop is idempotent and returns nil once the broker is down, whether it shut
// down cleanly or had to be killed. If the broker had already died on its own
// before Stop, Stop returns an error describing that exit (with the log tail).
func (k *Kafka) Stop() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.stopLocked()
}

// Restart stops the broker (as Stop) and starts it again on the same ports
// with the same configuration, cluster id and data directory; nothing is
// wiped, so topics and committed records survive. It waits for readiness as
// StartKafka does, bounded by ctx and 90 s. If the broker had died on its
// own, Restart starts it again all the same. Restart must not be called
// concurrently with itself.
func (k *Kafka) Restart(ctx context.Context) error {
	k.mu.Lock()
	// An error here only means the broker had already died on its own;
	// starting it again is still what was asked for.
	_ = k.stopLocked()
	k.mu.Unlock()
	return k.start(ctx)
}

func (k *Kafka) path(name string) string { return filepath.Join(k.dir, name) }

func (k *Kafka) serverProperties() string {
	return fmt.Sprintf(`# Written by citybrain/internal/testenv.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:%[1]d,CONTROLLER://127.0.0.1:%[2]d
advertised.listeners=PLAINTEXT://127.0.0.1:%[1]d
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
controller.quorum.voters=1@127.0.0.1:%[2]d
log.dirs=%[3]s
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
`, k.port, k.ctrlPort, k.path("data"))
}

// kafkaLog4j2 sends broker logs at INFO to stdout, i.e. to kafka.log.
const kafkaLog4j2 = `status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
`

func (k *Kafka) javaCmd(args ...string) *exec.Cmd {
	full := append([]string{
		"-Xmx512m", "-Xms64m",
		"-XX:+ExitOnOutOfMemoryError",
		"-Djava.awt.headless=true",
		"-Dlog4j2.configurationFile=file:" + k.path("log4j2.properties"),
		"-cp", filepath.Join(k.libs, "*"),
	}, args...)
	cmd := exec.Command("java", full...)
	cmd.Dir = k.dir
	// Own process group, so Stop can signal the JVM and anything it spawns.
	// Pdeathsig is the backstop against leaks: the kernel SIGKILLs the JVM
	// when the OS thread that started it dies, which for Go code (no
	// LockOSThread) means when the test binary exits or crashes.
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	return cmd
}

func (k *Kafka) openLog() (*os.File, error) {
	return os.OpenFile(k.path("kafka.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// format runs kafka.tools.StorageTool format for a fresh data directory.
func (k *Kafka) format(ctx context.Context) error {
	logf, err := k.openLog()
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	defer logf.Close()
	cmd := k.javaCmd("kafka.tools.StorageTool", "format",
		"--cluster-id", k.clusterID, "--config", k.path("server.properties"))
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := runWithContext(ctx, cmd); err != nil {
		return fmt.Errorf("testenv: formatting kafka storage: %w\n%s", err, k.logTail())
	}
	return nil
}

// runWithContext runs cmd, killing its process group if ctx ends first.
func runWithContext(ctx context.Context, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return ctx.Err()
	}
}

// start launches the broker JVM and waits until it serves metadata.
func (k *Kafka) start(ctx context.Context) error {
	k.mu.Lock()
	if k.proc != nil {
		k.mu.Unlock()
		return errors.New("testenv: kafka is already running")
	}
	logf, err := k.openLog()
	if err != nil {
		k.mu.Unlock()
		return fmt.Errorf("testenv: %w", err)
	}
	fmt.Fprintf(logf, "\n==== testenv: starting kafka %s at %s ====\n", KafkaVersion, time.Now().Format(time.RFC3339))
	cmd := k.javaCmd("kafka.Kafka", k.path("server.properties"))
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		k.mu.Unlock()
		return fmt.Errorf("testenv: starting kafka: %w", err)
	}
	p := &kafkaProc{cmd: cmd, log: logf, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	k.proc = p
	k.mu.Unlock()

	if err := k.waitReady(ctx, p); err != nil {
		k.mu.Lock()
		if k.proc == p {
			k.killLocked(p)
			k.proc = nil
		}
		k.mu.Unlock()
		return fmt.Errorf("testenv: kafka did not become ready: %w\n--- last %d lines of %s ---\n%s",
			err, kafkaLogTail, k.path("kafka.log"), k.logTail())
	}
	return nil
}

// waitReady polls the broker with metadata requests until it lists itself
// under the expected cluster id.
func (k *Kafka) waitReady(ctx context.Context, p *kafkaProc) error {
	ctx, cancel := context.WithTimeout(ctx, kafkaStartTimeout)
	defer cancel()
	var last error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("broker process exited: %v", p.waitErr)
		default:
		}
		md, err := k.probe(ctx)
		switch {
		case err != nil:
			last = err
		case md.ClusterID != k.clusterID:
			last = fmt.Errorf("broker reports cluster id %q, want %q", md.ClusterID, k.clusterID)
		case len(md.Brokers) == 0:
			last = errors.New("broker not yet registered")
		default:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last probe: %v)", ctx.Err(), last)
		case <-p.done:
			return fmt.Errorf("broker process exited: %v", p.waitErr)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// probe sends one metadata request over a fresh connection, so that no
// client-side metadata cache or failed-connection state carries over between
// probes.
func (k *Kafka) probe(ctx context.Context) (*kafka.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	tr := &kafka.Transport{DialTimeout: time.Second}
	defer tr.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(k.Bootstrap()), Timeout: 3 * time.Second, Transport: tr}
	return client.Metadata(ctx, &kafka.MetadataRequest{})
}

func (k *Kafka) stopLocked() error {
	p := k.proc
	if p == nil {
		return nil
	}
	k.proc = nil
	select {
	case <-p.done:
		// Died on its own; clean up any stragglers in the group.
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		return fmt.Errorf("testenv: kafka had exited before Stop: %v\n%s", p.waitErr, k.logTail())
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // any leftover group members
		return nil
	case <-time.After(kafkaStopTimeout):
	}
	k.killLocked(p)
	return nil
}

// killLocked SIGKILLs the process group of p and waits for the JVM to exit.
func (k *Kafka) killLocked(p *kafkaProc) {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

func (k *Kafka) logTail() string {
	b, err := os.ReadFile(k.path("kafka.log"))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return tailOfString(string(b), kafkaLogTail)
}

// freePorts returns n distinct currently free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// newKafkaClusterID returns a random Kafka Uuid in its string form (URL-safe
// base64 without padding), avoiding a leading '-' as Kafka's Uuid.randomUuid
// does so that the id is never mistaken for a command-line flag.
func newKafkaClusterID() string {
	for {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			panic(err)
		}
		id := base64.RawURLEncoding.EncodeToString(b[:])
		if !strings.HasPrefix(id, "-") {
			return id
		}
	}
}
