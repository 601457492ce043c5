// Package broker is the platform's Kafka plumbing: it starts the embedded
// Kafka-protocol broker (franz-go's kfake, log persisted on disk) when no
// cluster is configured, and gives every component the same kafka-go based
// client whichever broker it talks to.
package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Config says which broker to use.
type Config struct {
	// Bootstrap lists the Kafka bootstrap servers (host:port). Empty means
	// start the embedded broker.
	Bootstrap []string `yaml:"bootstrap"`
	// EmbeddedPort is the loopback port of the embedded broker; 0 picks one
	// and records it in the data directory so other processes find it.
	EmbeddedPort int `yaml:"embedded_port"`
	// Partitions is the partition count of topics the platform creates.
	Partitions int `yaml:"partitions"`
	// ReplicationFactor of topics the platform creates on a real cluster.
	ReplicationFactor int `yaml:"replication_factor"`
}

// DefaultConfig is the embedded broker on port 19092 with one partition per topic.
func DefaultConfig() Config {
	return Config{EmbeddedPort: 19092, Partitions: 1, ReplicationFactor: 1}
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.Partitions < 1 {
		return errors.New("broker.partitions must be at least 1")
	}
	if c.ReplicationFactor < 1 {
		return errors.New("broker.replication_factor must be at least 1")
	}
	for _, b := range c.Bootstrap {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("broker.bootstrap %q: want host:port", b)
		}
	}
	return nil
}

// Embedded is the in-process broker.
type Embedded struct {
	cluster *kfake.Cluster
	addr    string
	dir     string
	lock    *os.File
}

// StartEmbedded starts kfake on 127.0.0.1 with its log in dataDir/broker. The
// cluster id is made once per log directory and kept in dataDir/broker/cluster.id,
// so a wiped log directory comes back as a different cluster — which is how
// the lake notices that its stored offsets no longer apply.
func StartEmbedded(dataDir string, port int, log *slog.Logger) (*Embedded, error) {
	dir := filepath.Join(dataDir, "broker")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	// One process at a time owns the log: a short CLI command (status,
	// ingest) that opened it finishes within seconds, so wait for it.
	lock, err := lockLogDir(dir, embeddedLockWait, log)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	idFile := filepath.Join(dir, "cluster.id")
	id, err := os.ReadFile(idFile)
	if errors.Is(err, os.ErrNotExist) {
		id = []byte("citybrain-" + uuid.NewString())
		if err := writeFileAtomic(idFile, id); err != nil {
			return nil, fmt.Errorf("embedded broker: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	opts := []kfake.Opt{
		kfake.DataDir(filepath.Join(dir, "log")),
		kfake.ClusterID(strings.TrimSpace(string(id))),
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DefaultNumPartitions(1),
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		if port != 0 {
			return nil, fmt.Errorf("embedded broker on 127.0.0.1:%d: %w (is another citybrain serve running with the same data directory? set broker.embedded_port to use another port)", port, err)
		}
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	addr := c.ListenAddrs()[0]
	if err := writeFileAtomic(filepath.Join(dir, "address"), []byte(addr)); err != nil {
		c.Close()
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	log.Info("embedded broker started", "addr", addr, "cluster", strings.TrimSpace(string(id)), "dir", dir)
	ok = true
	return &Embedded{cluster: c, addr: addr, dir: dir, lock: lock}, nil
}

// embeddedLockWait is how long StartEmbedded waits for another process that
// holds the embedded broker's log.
var embeddedLockWait = 60 * time.Second

// lockLogDir takes an exclusive lock on the broker directory, waiting up to
// wait for another citybrain process to release it.
func lockLogDir(dir string, wait time.Duration, log *slog.Logger) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "broker.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	deadline := time.Now().Add(wait)
	for warned := false; ; {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("内置消息代理日志被另一个 citybrain 进程占用 / the embedded broker's log in %s is held by another citybrain process (%v); wait for it to finish or stop it, then start again", dir, err)
		}
		if !warned {
			log.Warn("waiting for another citybrain process that holds the embedded broker's log", "dir", dir)
			warned = true
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Addr is the broker's host:port.
func (e *Embedded) Addr() string { return e.addr }

// Close stops the broker and flushes its log.
func (e *Embedded) Close() {
	e.cluster.Close()
	_ = os.Remove(filepath.Join(e.dir, "address"))
	e.lock.Close()
}

// EmbeddedInUse reports whether a live process holds the embedded broker's
// log in dataDir (serve, or a CLI command such as ingest).
func EmbeddedInUse(dataDir string) bool {
	return LockHeld(filepath.Join(dataDir, "broker", "broker.lock"))
}

// LockHeld reports whether a live process holds the flock of the file at
// path (false if there is no such file).
func LockHeld(path string) bool {
	f, err := os.OpenFile(path, os.O_RDWR, 0o644)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// RunningEmbeddedAddr returns the address of an embedded broker that another
// process (citybrain serve) runs on dataDir, if one answers.
func RunningEmbeddedAddr(dataDir string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, "broker", "address"))
	if err != nil {
		return "", false
	}
	addr := strings.TrimSpace(string(b))
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", false
	}
	c.Close()
	return addr, true
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Client is the kafka-go based client every component uses.
type Client struct {
	Brokers []string
	cfg     Config
	kc      *kafka.Client

	freshMu   sync.Mutex
	lastFresh map[string]time.Time  // topics asked fresh → when
	known     map[string]knownTopic // topics a fresh answer found
}

// NewClient returns a client of the given bootstrap servers.
func NewClient(brokers []string, cfg Config) *Client {
	return &Client{Brokers: brokers, cfg: cfg, kc: &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}}
}

// ClusterID asks the cluster for its id.
func (c *Client) ClusterID(ctx context.Context) (string, error) {
	md, err := c.kc.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{}})
	if err != nil {
		return "", fmt.Errorf("cluster id from %s: %w", strings.Join(c.Brokers, ","), err)
	}
	if md.ClusterID == "" {
		return "", fmt.Errorf("cluster id from %s: broker returned none", strings.Join(c.Brokers, ","))
	}
	return md.ClusterID, nil
}

// EnsureTopics creates the topics that don't exist yet.
func (c *Client) EnsureTopics(ctx context.Context, topics ...string) error {
	return c.EnsureTopicsWith(ctx, c.cfg.Partitions, topics...)
}

// EnsureTopicsWith creates the topics that don't exist yet with n partitions each.
func (c *Client) EnsureTopicsWith(ctx context.Context, n int, topics ...string) error {
	// On a restart they all exist: the metadata (answered from the client's
	// cache) says so, and no CreateTopics request is sent — on a busy broker
	// those were the first requests to time out (issue 17).
	if parts, err := c.Partitions(ctx, topics...); err == nil && len(parts) == len(topics) {
		return nil
	}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t, NumPartitions: n, ReplicationFactor: c.cfg.ReplicationFactor})
	}
	resp, err := c.kc.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics %v: %w", topics, err)
	}
	for t, err := range resp.Errors {
		if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	// Wait until metadata shows them with leaders.
	deadline := time.Now().Add(30 * time.Second)
	for {
		parts, err := c.Partitions(ctx, topics...)
		if err == nil && len(parts) == len(topics) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("topics %v not ready after 30s: %v", topics, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Partitions returns each topic's partition ids. Topics that don't exist are absent.
//
// kafka-go answers metadata requests from its transport's cache, refreshed
// every few seconds: a topic another process created a moment ago is not in
// it yet. A topic missing from the cached answer is therefore asked again
// once through a fresh connection (at most once a second per topic), so
// that "no such topic" is the broker's answer, not the cache's.
func (c *Client) Partitions(ctx context.Context, topics ...string) (map[string][]int, error) {
	md, err := c.kc.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	out := partitionsOf(md)
	if len(topics) == 0 || len(out) == len(topics) {
		return out, nil
	}
	// What a fresh answer found stays known until the cache has surely
	// caught up (its TTL is 6 s): the next call must not unsee a topic.
	c.freshMu.Lock()
	for _, t := range topics {
		if k, ok := c.known[t]; ok && out[t] == nil && time.Now().Before(k.until) {
			out[t] = k.parts
		}
	}
	c.freshMu.Unlock()
	if len(out) < len(topics) && c.mayAskFresh(topics) {
		fresh := &kafka.Transport{}
		defer fresh.CloseIdleConnections()
		kc := &kafka.Client{Addr: c.kc.Addr, Timeout: c.kc.Timeout, Transport: fresh}
		if md, err := kc.Metadata(ctx, &kafka.MetadataRequest{Topics: topics}); err == nil {
			found := partitionsOf(md)
			c.freshMu.Lock()
			if c.known == nil {
				c.known = map[string]knownTopic{}
			}
			for t, ps := range found {
				out[t] = ps
				c.known[t] = knownTopic{parts: ps, until: time.Now().Add(15 * time.Second)}
			}
			c.freshMu.Unlock()
		}
	}
	return out, nil
}

// knownTopic is a topic a fresh metadata answer found, with its partitions.
type knownTopic struct {
	parts []int
	until time.Time
}

// mayAskFresh limits the fresh metadata requests to one a second for the
// same topics.
func (c *Client) mayAskFresh(topics []string) bool {
	key := strings.Join(topics, "\x00")
	c.freshMu.Lock()
	defer c.freshMu.Unlock()
	now := time.Now()
	if now.Sub(c.lastFresh[key]) < time.Second {
		return false
	}
	if c.lastFresh == nil || len(c.lastFresh) > 1000 {
		c.lastFresh = map[string]time.Time{}
	}
	c.lastFresh[key] = now
	return true
}

func partitionsOf(md *kafka.MetadataResponse) map[string][]int {
	out := map[string][]int{}
	for _, t := range md.Topics {
		if t.Error != nil || len(t.Partitions) == 0 {
			continue
		}
		for _, p := range t.Partitions {
			out[t.Name] = append(out[t.Name], p.ID)
		}
	}
	return out
}

// Offsets are a topic's partition → offset.
type Offsets map[int]int64

// EndOffsets returns the next offset to be written in each partition of topic.
func (c *Client) EndOffsets(ctx context.Context, topic string) (Offsets, error) {
	return c.listOffsets(ctx, topic, kafka.LastOffset)
}

// StartOffsets returns the first available offset in each partition.
func (c *Client) StartOffsets(ctx context.Context, topic string) (Offsets, error) {
	return c.listOffsets(ctx, topic, kafka.FirstOffset)
}

func (c *Client) listOffsets(ctx context.Context, topic string, which int64) (Offsets, error) {
	parts, err := c.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, p := range parts[topic] {
		req.Topics[topic] = append(req.Topics[topic], kafka.OffsetRequest{Partition: p, Timestamp: which})
	}
	if len(req.Topics[topic]) == 0 {
		return Offsets{}, nil
	}
	// A new topic's leader may not be known to every broker yet: retry the
	// errors Kafka marks temporary for a while before giving up.
	var resp *kafka.ListOffsetsResponse
	for attempt := 0; ; attempt++ {
		resp, err = c.kc.ListOffsets(ctx, req)
		if err == nil {
			for _, po := range resp.Topics[topic] {
				if po.Error != nil {
					err = fmt.Errorf("list offsets %s/%d: %w", topic, po.Partition, po.Error)
					break
				}
			}
		}
		var kerr kafka.Error
		if err == nil || attempt >= 100 || !errors.As(err, &kerr) || !kerr.Temporary() {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list offsets %s: %w", topic, err)
	}
	out := Offsets{}
	for _, po := range resp.Topics[topic] {
		if which == kafka.FirstOffset {
			out[po.Partition] = po.FirstOffset
		} else {
			out[po.Partition] = po.LastOffset
		}
	}
	return out, nil
}

// LastMessage reads the last message of a partition, or returns false if it is empty.
//
// It is one fetch request on the client's pooled connections. It used to be
// a kafka.Reader under a 15 s timeout: new connections, metadata and offset
// look-ups, then fetches whose read deadline is little more than MaxWait —
// against a busy broker (serve restarting beside CPU hogs, issue 17) every
// fetch missed that deadline and the read timed out, where this answers in
// about a second.
func (c *Client) LastMessage(ctx context.Context, topic string, partition int) (kafka.Message, bool, error) {
	ends, err := c.listOffsets(ctx, topic, kafka.LastOffset)
	if err != nil {
		return kafka.Message{}, false, err
	}
	starts, err := c.listOffsets(ctx, topic, kafka.FirstOffset)
	if err != nil {
		return kafka.Message{}, false, err
	}
	end, start := ends[partition], starts[partition]
	if end <= start {
		return kafka.Message{}, false, nil
	}
	wrap := func(err error) error { return fmt.Errorf("read last message of %s/%d: %w", topic, partition, err) }
	resp, err := c.kc.Fetch(ctx, &kafka.FetchRequest{Topic: topic, Partition: partition, Offset: end - 1,
		MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 200 * time.Millisecond})
	if err != nil {
		return kafka.Message{}, false, wrap(err)
	}
	if resp.Error != nil {
		return kafka.Message{}, false, wrap(resp.Error)
	}
	// The broker answers with whole record batches: the one holding end-1
	// starts at or before it (and records appended since may follow).
	var last kafka.Message
	found := false
	for {
		r, err := resp.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return kafka.Message{}, false, wrap(err)
		}
		if r.Offset > end-1 {
			break
		}
		m := kafka.Message{Topic: topic, Partition: partition, Offset: r.Offset, Time: r.Time}
		for _, h := range r.Headers { // the slice and its bytes are reused
			m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: bytes.Clone(h.Value)})
		}
		if m.Key, err = readBytes(r.Key); err == nil {
			m.Value, err = readBytes(r.Value)
		}
		if err != nil {
			return kafka.Message{}, false, wrap(err)
		}
		last, found = m, true
		if r.Offset == end-1 {
			break
		}
	}
	if !found {
		return kafka.Message{}, false, wrap(fmt.Errorf("no record at or before offset %d in the fetch response", end-1))
	}
	return last, true, nil
}

// readBytes copies a fetched record's key or value (nil stays nil).
func readBytes(b kafka.Bytes) ([]byte, error) {
	if b == nil {
		return nil, nil
	}
	defer b.Close()
	return io.ReadAll(b)
}

// Writer returns a synchronous producer for topic with acks from all
// in-sync replicas. Each WriteMessages call returns only once the broker
// acknowledged every message in it, and calls are not reordered, which the
// connectors rely on to resume from the topic's tail.
func (c *Client) Writer(topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:                   kafka.TCP(c.Brokers...),
		Topic:                  topic,
		Balancer:               &kafka.Hash{},
		RequiredAcks:           kafka.RequireAll,
		BatchSize:              20000,
		BatchBytes:             16 << 20,
		BatchTimeout:           5 * time.Millisecond,
		MaxAttempts:            10,
		Compression:            kafka.Lz4,
		AllowAutoTopicCreation: false,
	}
}

// ReadPartition reads partition p of topic from offset off until ctx ends,
// handing each non-empty fetch response (up to maxBytes; the broker waits
// up to maxWait for a first message) to handle, in order, on the calling
// goroutine. It returns nil once ctx has ended, handle's error, or the
// first error of the broker ("fetch topic/p: …"); "nothing new yet" is
// not an error.
func (c *Client) ReadPartition(ctx context.Context, topic string, p int, off int64, maxBytes int, maxWait time.Duration, handle func([]kafka.Message) error) error {
	wrap := func(err error) error { return fmt.Errorf("fetch %s/%d: %w", topic, p, err) }
	var conn *kafka.Conn
	var err error
	for _, b := range c.Brokers {
		if conn, err = (&kafka.Dialer{Timeout: 10 * time.Second}).DialLeader(ctx, "tcp", b, topic, p); err == nil {
			break
		}
	}
	if err != nil {
		return wrap(err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if _, err := conn.Seek(off, kafka.SeekAbsolute); err != nil {
		return wrap(err)
	}
	for ctx.Err() == nil {
		conn.SetReadDeadline(time.Now().Add(maxWait + 10*time.Second))
		batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: maxBytes, MaxWait: maxWait})
		var msgs []kafka.Message
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				break
			}
			msgs = append(msgs, m)
		}
		if err := batch.Close(); err != nil && ctx.Err() == nil && !isIdle(err) {
			return wrap(err)
		}
		if len(msgs) == 0 {
			continue
		}
		if err := handle(msgs); err != nil {
			return err
		}
	}
	return nil
}

// isIdle tells the errors that only mean "nothing new yet".
func isIdle(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || (errors.As(err, &ne) && ne.Timeout())
}

// ConsumerGroup joins the consumer group id over topics with the range
// balancer (partition k of co-partitioned topics goes to one member) and the
// given session timeout; the platform uses groups for ownership only (the
// warning engine's units, the lake writers' partitions), never for offsets.
func (c *Client) ConsumerGroup(id string, topics []string, sessionTimeout time.Duration, debug func(msg string)) (*kafka.ConsumerGroup, error) {
	if sessionTimeout <= 0 {
		sessionTimeout = 10 * time.Second
	}
	return kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: id, Brokers: c.Brokers, Topics: topics,
		GroupBalancers:    []kafka.GroupBalancer{kafka.RangeGroupBalancer{}},
		SessionTimeout:    sessionTimeout,
		HeartbeatInterval: max(sessionTimeout/6, 500*time.Millisecond),
		RebalanceTimeout:  60 * time.Second,
		JoinGroupBackoff:  time.Second,
		Timeout:           10 * time.Second,
		ErrorLogger:       kafka.LoggerFunc(func(f string, a ...any) { debug("consumer group: " + fmt.Sprintf(f, a...)) }),
	})
}

// Rejoin runs member until ctx is done, again after each error with a
// backoff doubling from 1 s to 30 s (told to onErr).
func Rejoin(ctx context.Context, member func(context.Context) error, onErr func(err error, backoff time.Duration)) {
	backoff := time.Second
	for ctx.Err() == nil {
		err := member(ctx)
		if ctx.Err() != nil {
			return
		}
		onErr(err, backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}
