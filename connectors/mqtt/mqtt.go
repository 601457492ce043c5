// Package mqtt is the MQTT transport: it subscribes to sensor telemetry
// topics (the water department's pipe pressure, flow and waterlogging
// sensors publish JSON over MQTT) and emits each message as one record.
//
// Why these semantics. MQTT has no offsets to seek to: a message the
// subscriber has acknowledged is gone from the broker. So the connector
//
//   - keeps a persistent session (CleanSession=false under a fixed, required
//     client_id): while citybrain is down or restarting, the broker queues
//     every QoS 1 (or 2) message published to the subscribed topics and
//     delivers it on reconnect;
//   - acknowledges each message (PUBACK) only after emit returned, i.e. after
//     its record is durable in Kafka. A crash, a failed emit or a lost
//     connection leaves the message unacknowledged, and the broker redelivers
//     it: delivery is at least once;
//   - turns at-least-once into exactly-once with the cursor: Stream is the
//     message's topic (one sensor per topic, e.g. water/pressure/P-0012) and
//     Pos is the value of pos_field in the payload, a number the sensor
//     increases strictly with every message (a sequence number, or the
//     observation time read with pos_layout, in µs since 1970). A message
//     whose Pos is not above the stream's position in from (or the last one
//     emitted in this Read) is a redelivery: it is acknowledged and dropped,
//     and counted in Stats().Duplicates.
//
// Publishers must publish with QoS ≥ 1 and the subscription is QoS 1 by
// default: QoS 0 messages are not queued for an absent subscriber. The broker
// only queues for a session that exists, so the first connection of a new
// client_id only receives what is published from then on (Connect
// establishes the session without reading). The broker's own limits decide
// how long an outage can last without loss: in Mosquitto, max_queued_messages
// (default 1000 per client!) and max_queued_bytes must cover the messages of
// the longest expected downtime, and persistence must be on for the queue to
// survive a broker restart.
//
// Memory is bounded: the connector holds at most 4 × batch_size received,
// unacknowledged messages (plus the batch being emitted); when that many wait
// it stops reading the connection, and TCP backpressure leaves the rest
// queued on the broker. (Should that last longer than the keep-alive, the
// connection drops and is re-established; nothing is lost.)
//
// Payloads are flattened by Flatten (nested objects with dots, numbers as
// their JSON text, null as missing) and mapped with the source's mapping by
// column name; the mapping is bound once per payload shape. A payload that is
// not a JSON object, lacks pos_field, exceeds max_record_bytes or fails the
// mapping becomes a reject with the payload as Raw. A reject whose Pos can be
// read advances its stream like a good record (so its redelivery is dropped
// too); one whose Pos cannot be read carries the stream's last position (or
// math.MinInt64 when there is none), so it never moves the resume point.
//
// The client reconnects by itself (with back-off up to 10 s) and
// re-subscribes on every connection; messages received on a connection that
// was lost are not acknowledged (the broker redelivers them on the new one
// and they are dropped as duplicates). A CONNACK refusing the credentials or
// the client_id is permanent (ErrPermanent); everything else, such as a
// refused or timed-out TCP connection, is an ordinary error the caller
// retries.
package mqtt

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"citybrain/connectors"
	"citybrain/connectors/mapping"
)

// Config is the MQTT transport's part of a source definition.
type Config struct {
	// Broker is the broker URL: tcp://host:1883, ssl://host:8883 (mqtt://,
	// mqtts://, ws:// and wss:// work too).
	Broker string `yaml:"broker"`
	// Topics are the topic filters subscribed to; MQTT wildcards are allowed
	// (water/pressure/+, water/#). Each topic should carry one sensor: the
	// topic is the cursor's stream.
	Topics []string `yaml:"topics"`
	// ClientID names the persistent session on the broker. It must be stable
	// across restarts (the broker queues messages for it while citybrain is
	// down) and unique: two clients with one id take the session from each
	// other. Required.
	ClientID string `yaml:"client_id"`
	// QoS of the subscription: 1 (default; 0 also means 1, as QoS 0 loses
	// messages while citybrain is down) or 2.
	QoS int `yaml:"qos"`
	// Username, if set, is sent on connect.
	Username string `yaml:"username"`
	// PasswordEnv names the environment variable holding the password
	// (read on every connection attempt, never stored in configuration).
	PasswordEnv string `yaml:"password_env"`
	// PosField is the payload field (dotted for nested objects, e.g.
	// meta.seq) holding a number that increases strictly with every message
	// of a sensor: a sequence number, or the observation time. Required.
	PosField string `yaml:"pos_field"`
	// PosLayout, if set, reads PosField as a time in this Go layout (e.g.
	// "2006-01-02T15:04:05Z07:00"; times without a zone are read as UTC, which
	// keeps their order); Pos is then microseconds since 1970. Empty: PosField
	// is an integer (a JSON number or a string of digits).
	PosLayout string `yaml:"pos_layout"`
	// IdleReturn: Read returns nil after this long without a new message;
	// default 2s.
	IdleReturn time.Duration `yaml:"idle_return"`
	// BatchSize is the most records emitted at once; default 1000.
	BatchSize int `yaml:"batch_size"`
	// Linger is how long Read waits for another message before emitting
	// what it holds; default 20ms. A batch is never held longer than 1s.
	Linger time.Duration `yaml:"linger"`
	// MaxRecordBytes: larger payloads are rejected (Raw truncated to this
	// size); default 1 MiB.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// ConnectTimeout bounds one connection attempt; default 10s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// Defaults.
const (
	DefaultIdleReturn     = 2 * time.Second
	DefaultBatchSize      = 1000
	DefaultLinger         = 20 * time.Millisecond
	DefaultMaxRecordBytes = 1 << 20
	DefaultConnectTimeout = 10 * time.Second
	maxBatchAge           = time.Second
	maxReconnectInterval  = 10 * time.Second
	maxBindCache          = 1024
)

// Validate checks the config.
func (c Config) Validate() error {
	if c.Broker == "" {
		return errors.New("mqtt.broker: a broker URL such as tcp://host:1883 is required")
	}
	u, err := url.Parse(c.Broker)
	if err != nil {
		return fmt.Errorf("mqtt.broker %q: %v", c.Broker, err)
	}
	switch u.Scheme {
	case "tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss":
	default:
		return fmt.Errorf("mqtt.broker %q: scheme must be tcp, mqtt, ssl, tls, mqtts, ws or wss", c.Broker)
	}
	if u.Host == "" {
		return fmt.Errorf("mqtt.broker %q: no host (want e.g. tcp://host:1883)", c.Broker)
	}
	if len(c.Topics) == 0 {
		return errors.New("mqtt.topics: at least one topic filter is required")
	}
	for _, t := range c.Topics {
		if err := validFilter(t); err != nil {
			return fmt.Errorf("mqtt.topics %q: %v", t, err)
		}
	}
	if c.ClientID == "" {
		return errors.New("mqtt.client_id: required (a stable id names the persistent session in which the broker keeps messages while citybrain is down)")
	}
	if len(c.ClientID) > 65535 || strings.ContainsRune(c.ClientID, 0) {
		return fmt.Errorf("mqtt.client_id %q: too long or contains NUL", c.ClientID)
	}
	if c.QoS < 0 || c.QoS > 2 {
		return fmt.Errorf("mqtt.qos %d: want 1 or 2", c.QoS)
	}
	if c.PasswordEnv != "" && c.Username == "" {
		return errors.New("mqtt.password_env: MQTT sends a password only with a username; set mqtt.username")
	}
	if c.PosField == "" {
		return errors.New("mqtt.pos_field: required (the payload field holding a per-sensor sequence number or observation time)")
	}
	if c.IdleReturn < 0 || c.Linger < 0 || c.ConnectTimeout < 0 {
		return errors.New("mqtt: idle_return, linger and connect_timeout must not be negative")
	}
	if c.BatchSize < 0 || c.MaxRecordBytes < 0 {
		return errors.New("mqtt: batch_size and max_record_bytes must not be negative")
	}
	return nil
}

// validFilter checks an MQTT topic filter.
func validFilter(t string) error {
	if t == "" || len(t) > 65535 || strings.ContainsRune(t, 0) {
		return errors.New("empty, too long or contains NUL")
	}
	levels := strings.Split(t, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return errors.New("# must be a whole level and the last one")
		}
		if strings.Contains(l, "+") && l != "+" {
			return errors.New("+ must be a whole level")
		}
	}
	return nil
}

// Stats count messages since New.
type Stats struct {
	// Received messages (redeliveries included).
	Received int64
	// Emitted good records and rejects.
	Emitted, Rejected int64
	// Duplicates: messages dropped because their Pos was not above their
	// stream's position (redeliveries, or a sensor going backwards).
	Duplicates int64
}

// Source reads MQTT messages through a mapping. Read must not be called
// concurrently; the other methods may be.
type Source struct {
	cfg    Config
	mapper *mapping.Mapper

	connMu sync.Mutex
	client paho.Client
	closed bool

	mu        sync.Mutex
	queue     []inbound // received, not yet taken by Read
	lastIn    time.Time
	gen       uint64        // connection generation, bumped on every connect and loss
	permErr   error         // CONNACK refusal seen while reconnecting
	subErr    error         // subscription refused (ErrPermanent)
	wake      chan struct{} // a message arrived
	space     chan struct{} // Read took messages from a full queue
	done      chan struct{} // closed by Close
	maxQueued int
	bindings  map[string]binding // by header signature; Read only

	received, emitted, rejected, duplicates atomic.Int64
}

type inbound struct {
	msg paho.Message
	gen uint64
}

type binding struct {
	b   *mapping.Bound
	err error
}

var _ connectors.Source = (*Source)(nil)

// New returns an MQTT source; it connects on the first Read (or Connect).
func New(cfg Config, m *mapping.Mapper) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PasswordEnv != "" {
		if _, ok := os.LookupEnv(cfg.PasswordEnv); !ok {
			return nil, fmt.Errorf("mqtt.password_env: environment variable %s is not set", cfg.PasswordEnv)
		}
	}
	if cfg.QoS == 0 {
		cfg.QoS = 1
	}
	if cfg.IdleReturn == 0 {
		cfg.IdleReturn = DefaultIdleReturn
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.Linger == 0 {
		cfg.Linger = DefaultLinger
	}
	if cfg.MaxRecordBytes == 0 {
		cfg.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	return &Source{cfg: cfg, mapper: m, bindings: map[string]binding{}, maxQueued: 4 * cfg.BatchSize,
		wake: make(chan struct{}, 1), space: make(chan struct{}, 1), done: make(chan struct{})}, nil
}

// Stats returns the counters.
func (s *Source) Stats() Stats {
	return Stats{Received: s.received.Load(), Emitted: s.emitted.Load(), Rejected: s.rejected.Load(), Duplicates: s.duplicates.Load()}
}

var errClosed = fmt.Errorf("%w: mqtt source is closed", connectors.ErrPermanent)

// Connect connects and subscribes, establishing the persistent session (from
// then on the broker queues messages for it). Read calls it; calling it
// earlier is useful only to create the session before anything is read. It
// returns at once when already connected or reconnecting in the background.
// For a new session it returns after the broker confirmed the subscription;
// for an existing one (which the broker starts delivering at once) the
// subscription is renewed in the background.
func (s *Source) Connect(ctx context.Context) error {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.closed {
		return errClosed
	}
	if s.client != nil {
		return nil
	}
	o := paho.NewClientOptions().
		AddBroker(s.cfg.Broker).
		SetClientID(s.cfg.ClientID).
		SetProtocolVersion(4). // MQTT 3.1.1, no silent fall-back to 3.1
		SetCleanSession(false).
		SetOrderMatters(true). // the handler only queues, so it never blocks
		SetAutoAckDisabled(true).
		SetAutoReconnect(true).
		SetConnectRetry(false).
		SetMaxReconnectInterval(maxReconnectInterval).
		SetConnectTimeout(s.cfg.ConnectTimeout).
		SetKeepAlive(30 * time.Second).
		SetDefaultPublishHandler(s.onMessage).
		SetOnConnectHandler(s.onConnect).
		SetConnectionLostHandler(s.onLost).
		SetConnectionNotificationHandler(s.onNotification)
	if s.cfg.Username != "" {
		user, env := s.cfg.Username, s.cfg.PasswordEnv
		o.SetCredentialsProvider(func() (string, string) {
			if env == "" {
				return user, ""
			}
			return user, os.Getenv(env)
		})
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		go c.Disconnect(0)
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return classify(s.cfg.Broker, err)
	}
	if ct, ok := tok.(*paho.ConnectToken); ok && ct.SessionPresent() {
		// The session and its subscriptions exist, and the broker is already
		// sending what it queued: waiting here for the SUBACK could wait
		// behind a full queue that only Read drains. Subscribe in the
		// background; a refusal surfaces in Read.
		go func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				select {
				case <-s.done:
					cancel()
				case <-ctx.Done():
				}
			}()
			if err := s.subscribe(ctx, c); errors.Is(err, connectors.ErrPermanent) {
				s.mu.Lock()
				s.subErr = err
				s.mu.Unlock()
				s.signal(s.wake)
			}
		}()
	} else if err := s.subscribe(ctx, c); err != nil {
		// A new session: nothing is queued for it, so nothing can block
		// the SUBACK. Once this returns the broker keeps messages for it.
		c.Disconnect(0)
		return err
	}
	s.mu.Lock()
	s.permErr = nil
	s.mu.Unlock()
	s.client = c
	return nil
}

// classify wraps CONNACK refusals that retrying cannot fix in ErrPermanent.
func classify(broker string, err error) error {
	if isRefusal(err) {
		return fmt.Errorf("%w: mqtt %s refused the connection: %v (check mqtt.username, mqtt.password_env and mqtt.client_id)", connectors.ErrPermanent, broker, err)
	}
	return fmt.Errorf("mqtt: connect %s: %w", broker, err)
}

func isRefusal(err error) bool {
	return errors.Is(err, packets.ErrorRefusedNotAuthorised) ||
		errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) ||
		errors.Is(err, packets.ErrorRefusedIDRejected)
}

func (s *Source) subscribe(ctx context.Context, c paho.Client) error {
	filters := make(map[string]byte, len(s.cfg.Topics))
	for _, t := range s.cfg.Topics {
		filters[t] = byte(s.cfg.QoS)
	}
	tok := c.SubscribeMultiple(filters, nil) // nil: messages go to the default handler
	select {
	case <-tok.Done():
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("mqtt: subscribe %s: %w", strings.Join(s.cfg.Topics, ", "), err)
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for topic, granted := range st.Result() {
			if granted == 0x80 {
				return fmt.Errorf("%w: mqtt: the broker refused the subscription to %q (not allowed for this user?)", connectors.ErrPermanent, topic)
			}
		}
	}
	return nil
}

// onMessage runs on paho's router goroutine, in arrival order. It queues
// the message; when the queue is full (maxQueued) it waits for Read to take
// some, which stops paho reading the socket: TCP backpressure, and the
// broker keeps the rest.
func (s *Source) onMessage(_ paho.Client, m paho.Message) {
	s.received.Add(1)
	for {
		s.mu.Lock()
		if len(s.queue) < s.maxQueued || s.isClosed() {
			s.queue = append(s.queue, inbound{msg: m, gen: s.gen})
			s.lastIn = time.Now()
			s.mu.Unlock()
			break
		}
		s.mu.Unlock()
		select {
		case <-s.space:
		case <-s.done:
		}
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// signal wakes one waiter of c without blocking.
func (s *Source) signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (s *Source) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *Source) onConnect(c paho.Client) {
	s.mu.Lock()
	s.gen++
	first := s.gen == 1
	s.permErr = nil
	s.mu.Unlock()
	if !first {
		// The session normally survives, but a broker that lost it (no
		// persistence) needs the subscriptions again; resubscribing is
		// harmless (retained messages come again and are dropped as
		// duplicates).
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ConnectTimeout)
		defer cancel()
		_ = s.subscribe(ctx, c)
	}
}

func (s *Source) onLost(paho.Client, error) {
	s.mu.Lock()
	s.gen++
	s.mu.Unlock()
}

func (s *Source) onNotification(_ paho.Client, n paho.ConnectionNotification) {
	if f, ok := n.(paho.ConnectionNotificationFailed); ok && isRefusal(f.Reason) {
		s.mu.Lock()
		s.permErr = f.Reason
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Close disconnects. Messages not yet acknowledged stay with the broker and
// are delivered to the next session with the same client id. Close is
// idempotent.
func (s *Source) Close() error {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if !s.closed {
		close(s.done) // releases a handler waiting for queue space
	}
	s.closed = true
	if s.client != nil {
		s.client.Disconnect(250)
		s.client = nil
	}
	return nil
}

// Read implements connectors.Source: it emits the messages that arrive, in
// batches, acknowledging each batch once emit returned, and returns nil once
// no message arrived for IdleReturn.
func (s *Source) Read(ctx context.Context, from connectors.Positions, emit connectors.Emit) error {
	if err := s.Connect(ctx); err != nil {
		return err
	}
	last := make(map[string]int64, len(from))
	for k, c := range from {
		last[k] = c.Pos
	}
	for {
		batch, err := s.take(ctx)
		if err != nil || len(batch) == 0 {
			return err
		}
		recs := make([]connectors.Record, 0, len(batch))
		for _, in := range batch {
			if rec, ok := s.record(in.msg.Topic(), in.msg.Payload(), last); ok {
				recs = append(recs, rec)
			}
		}
		if len(recs) > 0 {
			if err := emit(ctx, recs); err != nil {
				s.putBack(batch)
				return err
			}
		}
		var bad int64
		for _, r := range recs {
			if r.Err != nil {
				bad++
			}
		}
		s.emitted.Add(int64(len(recs)) - bad)
		s.rejected.Add(bad)
		s.ack(batch)
	}
}

// take waits for messages: it returns nil after IdleReturn without any, or
// up to BatchSize once no other arrived for Linger.
func (s *Source) take(ctx context.Context) ([]inbound, error) {
	idle := time.NewTimer(s.cfg.IdleReturn)
	defer idle.Stop()
	for {
		s.mu.Lock()
		n, perm, subErr := len(s.queue), s.permErr, s.subErr
		s.mu.Unlock()
		if perm != nil {
			return nil, classify(s.cfg.Broker, perm)
		}
		if subErr != nil {
			return nil, subErr
		}
		if n > 0 {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-idle.C:
			return nil, nil
		case <-s.wake:
		}
	}
	deadline := time.Now().Add(maxBatchAge)
	for {
		s.mu.Lock()
		n, lastIn := len(s.queue), s.lastIn
		s.mu.Unlock()
		if n >= s.cfg.BatchSize {
			break
		}
		wait := min(s.cfg.Linger-time.Since(lastIn), time.Until(deadline))
		if wait <= 0 {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-s.wake:
		case <-t.C:
		}
		t.Stop()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := min(len(s.queue), s.cfg.BatchSize)
	batch := make([]inbound, k)
	copy(batch, s.queue)
	s.queue = append(s.queue[:0], s.queue[k:]...)
	select {
	case s.space <- struct{}{}:
	default:
	}
	return batch, nil
}

// putBack returns a batch whose emit failed to the head of the queue: its
// messages are still unacknowledged and the next Read handles them again.
func (s *Source) putBack(batch []inbound) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queue = append(batch, s.queue...)
}

// ack acknowledges, in order, the messages received on the current
// connection; those of a lost connection are redelivered by the broker.
func (s *Source) ack(batch []inbound) {
	s.mu.Lock()
	gen := s.gen
	s.mu.Unlock()
	for _, in := range batch {
		if in.gen == gen {
			in.msg.Ack()
		}
	}
}

// record maps one message; ok is false for a duplicate.
func (s *Source) record(topic string, payload []byte, last map[string]int64) (connectors.Record, bool) {
	reject := func(pos int64, raw []byte, err error) connectors.Record {
		return connectors.Record{Cursor: connectors.Cursor{Stream: topic, Pos: pos}, Raw: append([]byte(nil), raw...), Err: err}
	}
	prev, seen := last[topic]
	unknown := int64(math.MinInt64)
	if seen {
		unknown = prev
	}
	if len(payload) > s.cfg.MaxRecordBytes {
		return reject(unknown, payload[:s.cfg.MaxRecordBytes],
			fmt.Errorf("payload of %d bytes exceeds mqtt.max_record_bytes (%d); raw truncated", len(payload), s.cfg.MaxRecordBytes)), true
	}
	header, row, err := Flatten(payload)
	if err != nil {
		return reject(unknown, payload, err), true
	}
	pos, err := s.pos(header, row)
	if err != nil {
		return reject(unknown, payload, err), true
	}
	if seen && pos <= prev {
		s.duplicates.Add(1)
		return connectors.Record{}, false
	}
	last[topic] = pos
	header, row = s.mapper.PadSorted(header, row)
	bd, ok := s.bindings[signature(header)]
	if !ok {
		bd.b, bd.err = s.mapper.Bind(header)
		if len(s.bindings) >= maxBindCache {
			clear(s.bindings)
		}
		s.bindings[signature(header)] = bd
	}
	if bd.err != nil {
		return reject(pos, payload, bd.err), true
	}
	vals, err := bd.b.Map(row)
	if err != nil {
		return reject(pos, payload, err), true
	}
	return connectors.Record{Cursor: connectors.Cursor{Stream: topic, Pos: pos}, Values: vals}, true
}

// pos reads PosField from a flattened payload.
func (s *Source) pos(header, row []string) (int64, error) {
	v, ok := "", false
	for i, h := range header {
		if h == s.cfg.PosField {
			v, ok = row[i], true
			break
		}
	}
	if !ok || v == "" {
		return 0, fmt.Errorf("payload has no %s (mqtt.pos_field)", s.cfg.PosField)
	}
	if s.cfg.PosLayout == "" {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s (mqtt.pos_field) %q is not an integer", s.cfg.PosField, v)
		}
		return n, nil
	}
	t, err := time.ParseInLocation(s.cfg.PosLayout, strings.TrimSpace(v), time.UTC)
	if err != nil {
		return 0, fmt.Errorf("%s (mqtt.pos_field) %q does not match mqtt.pos_layout %q", s.cfg.PosField, v, s.cfg.PosLayout)
	}
	return t.UnixMicro(), nil
}
