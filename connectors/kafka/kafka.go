// Package kafkasrc is the upstream-Kafka transport: it consumes a topic of a
// department's own Kafka cluster (traffic sensors, operator mobile-signal
// counts) with github.com/segmentio/kafka-go and maps each message — a JSON
// object, or one delimited text line — through the source's mapping.
//
// The package lives in connectors/kafka but is named kafkasrc, so that it
// does not clash with kafka-go's package name.
//
// # Cursor
//
// Each partition is a stream named "kafka:<topic>/<partition>" — the topic,
// never the cluster's addresses, so moving brokers or renaming hosts keeps
// the positions. Pos is the message's offset in its partition, which Kafka
// makes strictly increasing; no Token is needed. Read continues every
// partition at the offset after its position (a partition never read starts
// at start_at: the earliest retained offset, or the end). No consumer group
// is used and nothing is committed upstream: the positions live in the lake,
// through the cursors.
//
// Because the positions are upstream offsets, they only mean something for
// the topic they were read from. If the department's cluster is replaced or
// the topic deleted and re-created, its offsets start again and the stored
// positions must be reset (a position past a partition's end is reported as
// a permanent error saying so). If the upstream's retention deleted messages
// before they were read, Read emits one reject (no raw bytes) at the offset
// before the first retained one, naming the lost range, and carries on: the
// loss is visible in dlq.<source>, never silent.
//
// # Reading
//
// A Read looks up the topic's partitions and their offset ranges, then
// fetches every partition concurrently (one fetch in flight per partition,
// so memory stays bounded) and emits the mapped messages from the calling
// goroutine in batches of at most batch_rows. Batches may mix partitions;
// each partition's messages stay in offset order. Read returns nil once
// every partition has reached its end offset as of the start of the Read and
// no new message arrived for idle_return; messages arriving meanwhile are
// read too, so a topic that never pauses for idle_return keeps one Read
// going (each batch is durable once emit returns).
//
// Messages are read with read_committed isolation, so records of open
// transactions wait until they commit; kafka-go does not report aborted
// transactions, so records of aborted ones are read like the others.
//
// # Errors
//
// An unknown topic, refused credentials (SASL authentication, topic or
// cluster authorization) and untrusted TLS certificates are permanent
// (connectors.ErrPermanent). An unreachable broker is retried a few times,
// then returned as a plain error for the caller to retry later.
package kafkasrc

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"

	"citybrain/connectors"
	"citybrain/connectors/mapping"
	"citybrain/connectors/mqtt"
)

// Config is the upstream-Kafka transport's part of a source definition.
type Config struct {
	// Brokers are the upstream cluster's bootstrap servers, host:port.
	Brokers []string `yaml:"brokers"`
	// Topic is the topic to consume, all of its partitions.
	Topic string `yaml:"topic"`
	// Format of the message values: json (default; one JSON object per
	// message, flattened: nested objects as dotted names, array elements
	// numbered, columns sorted) or csv (one delimited line per message).
	Format string `yaml:"format"`
	// Delimiter of csv messages: one character, default ","; `\t` for tab.
	Delimiter string `yaml:"delimiter"`
	// Columns names the fields of csv messages, in order, for the mapping's
	// column references; empty: the mapping refers to fields by index.
	Columns []string `yaml:"columns"`
	// Username for SASL authentication; set with Mechanism.
	Username string `yaml:"username"`
	// PasswordEnv names the environment variable holding the SASL password
	// (passwords stay out of YAML).
	PasswordEnv string `yaml:"password_env"`
	// Mechanism is the SASL mechanism: plain (send it only over TLS);
	// empty: no authentication. scram-sha-256 and scram-sha-512 are
	// recognised but not yet supported.
	Mechanism string `yaml:"mechanism"`
	// TLS connects with TLS, verifying the brokers' certificates against
	// the system's trusted roots.
	TLS bool `yaml:"tls"`
	// BatchRows is the most records emitted at once; default 5000.
	BatchRows int `yaml:"batch_rows"`
	// IdleReturn: once caught up, Read returns nil when no new message
	// arrived for this long; default 1s.
	IdleReturn time.Duration `yaml:"idle_return"`
	// MaxRecordBytes is the largest message value mapped; a larger one is
	// rejected with its first MaxRecordBytes bytes. Default 1 MiB.
	MaxRecordBytes int `yaml:"max_record_bytes"`
	// StartAt is where a partition never read starts: earliest (default,
	// the oldest retained message) or latest (only messages produced from
	// the first Read on).
	StartAt string `yaml:"start_at"`
}

// topicRE is what Kafka accepts as a topic name.
var topicRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)

var envRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the config. It does not connect and does not need the
// PasswordEnv variable to be set.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka.brokers: at least one bootstrap server (host:port) is required")
	}
	for _, b := range c.Brokers {
		if _, port, err := net.SplitHostPort(b); err != nil || port == "" {
			return fmt.Errorf("kafka.brokers %q: want host:port", b)
		}
	}
	if !topicRE.MatchString(c.Topic) || c.Topic == "." || c.Topic == ".." {
		return fmt.Errorf("kafka.topic %q: want a Kafka topic name (letters, digits, . _ -)", c.Topic)
	}
	switch strings.ToLower(c.Format) {
	case "", "json":
		if c.Delimiter != "" || len(c.Columns) > 0 {
			return errors.New("kafka.delimiter and kafka.columns apply to format: csv only")
		}
	case "csv":
		if c.Delimiter != "" && c.Delimiter != `\t` && len(c.Delimiter) != 1 {
			return fmt.Errorf("kafka.delimiter %q: want one single-byte character such as , | ; or \\t", c.Delimiter)
		}
		if d := c.delim(); d == '"' || d == '\r' || d == '\n' {
			return fmt.Errorf("kafka.delimiter %q: not usable as a delimiter", c.Delimiter)
		}
		seen := map[string]bool{}
		for _, col := range c.Columns {
			if strings.TrimSpace(col) == "" {
				return errors.New("kafka.columns: a column name is empty")
			}
			if seen[col] {
				return fmt.Errorf("kafka.columns: %s listed twice", col)
			}
			seen[col] = true
		}
	default:
		return fmt.Errorf("kafka.format %q: want json or csv", c.Format)
	}
	switch strings.ToLower(c.Mechanism) {
	case "":
		if c.Username != "" || c.PasswordEnv != "" {
			return errors.New("kafka.username and kafka.password_env need kafka.mechanism (plain)")
		}
	case "scram-sha-256", "scram-sha-512":
		return fmt.Errorf("kafka.mechanism %s: not yet supported (kafka-go's SCRAM needs github.com/xdg-go/scram in go.mod); use plain over tls", c.Mechanism)
	case "plain":
		if c.Username == "" || c.PasswordEnv == "" {
			return fmt.Errorf("kafka.mechanism %s: set kafka.username and kafka.password_env", c.Mechanism)
		}
		if !envRE.MatchString(c.PasswordEnv) {
			return fmt.Errorf("kafka.password_env %q: not an environment variable name", c.PasswordEnv)
		}
	default:
		return fmt.Errorf("kafka.mechanism %q: want plain, scram-sha-256 or scram-sha-512", c.Mechanism)
	}
	if c.BatchRows < 0 || c.IdleReturn < 0 || c.MaxRecordBytes < 0 {
		return errors.New("kafka: batch_rows, idle_return and max_record_bytes must not be negative")
	}
	switch strings.ToLower(c.StartAt) {
	case "", "earliest", "latest":
	default:
		return fmt.Errorf("kafka.start_at %q: want earliest or latest", c.StartAt)
	}
	return nil
}

func (c Config) delim() rune {
	switch c.Delimiter {
	case "":
		return ','
	case `\t`:
		return '\t'
	}
	return rune(c.Delimiter[0])
}

func (c Config) csv() bool { return strings.EqualFold(c.Format, "csv") }

// Tunables of the fetch loop.
const (
	fetchMaxBytes = 4 << 20 // per partition fetch
	maxFetchWait  = 500 * time.Millisecond
	attempts      = 4 // of a request failing with a transient error
	maxBindCache  = 1024
)

// Source consumes an upstream topic through a mapping.
type Source struct {
	cfg    Config
	mapper *mapping.Mapper
	prefix string // "kafka:<topic>/"
	tr     *kafka.Transport
	client *kafka.Client
	wait   time.Duration // fetch MaxWait

	mu       sync.Mutex // one Read at a time
	csvBound *mapping.Bound
	bindings map[string]binding // json: by header signature
	anchors  map[int]int64      // start_at latest: where never-read partitions start, while the process runs

	// Skipped counts messages the mapping's filter left out.
	Skipped atomic.Int64
	// Lost counts messages the upstream deleted before they were read.
	Lost atomic.Int64
}

type binding struct {
	b   *mapping.Bound
	err error
}

var _ connectors.Source = (*Source)(nil)

// New returns an upstream-Kafka source. It checks the config but does not
// connect: the first Read does.
func New(cfg Config, m *mapping.Mapper) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("kafka: a mapping is required")
	}
	if cfg.BatchRows <= 0 {
		cfg.BatchRows = 5000
	}
	if cfg.IdleReturn <= 0 {
		cfg.IdleReturn = time.Second
	}
	if cfg.MaxRecordBytes <= 0 {
		cfg.MaxRecordBytes = 1 << 20
	}
	cfg.Format = strings.ToLower(cfg.Format)
	cfg.Mechanism = strings.ToLower(cfg.Mechanism)
	cfg.StartAt = strings.ToLower(cfg.StartAt)
	tr := &kafka.Transport{
		DialTimeout: 5 * time.Second,
		IdleTimeout: 30 * time.Second,
		MetadataTTL: 10 * time.Second,
		ClientID:    "citybrain",
	}
	if cfg.TLS {
		tr.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	s := &Source{
		cfg:      cfg,
		mapper:   m,
		prefix:   "kafka:" + cfg.Topic + "/",
		tr:       tr,
		client:   &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second, Transport: tr},
		wait:     min(cfg.IdleReturn, maxFetchWait),
		bindings: map[string]binding{},
		anchors:  map[int]int64{},
	}
	return s, nil
}

// Stream is the cursor stream of a partition: "kafka:<topic>/<partition>".
func (s *Source) Stream(partition int) string { return s.prefix + strconv.Itoa(partition) }

// Close closes the idle connections to the upstream brokers.
func (s *Source) Close() error {
	s.tr.CloseIdleConnections()
	return nil
}

// sasl sets up authentication, reading the password from the environment.
func (s *Source) sasl() error {
	if s.cfg.Mechanism == "" || s.tr.SASL != nil {
		return nil
	}
	pw := os.Getenv(s.cfg.PasswordEnv)
	if pw == "" {
		return fmt.Errorf("%w: kafka: environment variable %s (kafka.password_env) is empty or unset", connectors.ErrPermanent, s.cfg.PasswordEnv)
	}
	var m sasl.Mechanism = plain.Mechanism{Username: s.cfg.Username, Password: pw}
	s.tr.SASL = m
	return nil
}

// permanent reports whether a client error cannot be fixed by retrying.
func permanent(err error) bool {
	for _, code := range []kafka.Error{
		kafka.UnknownTopicOrPartition, kafka.TopicAuthorizationFailed, kafka.ClusterAuthorizationFailed,
		kafka.SASLAuthenticationFailed, kafka.UnsupportedSASLMechanism, kafka.IllegalSASLState,
		kafka.InvalidTopic, kafka.TopicDeletionDisabled,
	} {
		if errors.Is(err, code) {
			return true
		}
	}
	var (
		unknownCA *x509.UnknownAuthorityError
		hostname  *x509.HostnameError
		invalid   *x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		alert     tls.AlertError
		header    tls.RecordHeaderError
	)
	return errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &header)
}

// retry runs f until it succeeds, fails permanently, or attempts are used
// up, backing off between attempts.
func (s *Source) retry(ctx context.Context, what string, f func() error) error {
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(1<<(i-1)) * 250 * time.Millisecond):
			}
		}
		if err = f(); err == nil {
			return nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return cerr
		}
		if permanent(err) {
			return fmt.Errorf("%w: kafka %s on %s: %s: %w", connectors.ErrPermanent, s.cfg.Topic, strings.Join(s.cfg.Brokers, ","), what, err)
		}
	}
	return fmt.Errorf("kafka %s on %s: %s (%d attempts): %w", s.cfg.Topic, strings.Join(s.cfg.Brokers, ","), what, attempts, err)
}

// partitions returns the topic's partition ids, sorted.
func (s *Source) partitions(ctx context.Context) ([]int, error) {
	var parts []int
	err := s.retry(ctx, "metadata", func() error {
		md, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{s.cfg.Topic}})
		if err != nil {
			return err
		}
		for _, t := range md.Topics {
			if t.Name != s.cfg.Topic {
				continue
			}
			if t.Error != nil {
				return t.Error
			}
			parts = parts[:0]
			for _, p := range t.Partitions {
				parts = append(parts, p.ID)
			}
			if len(parts) == 0 {
				return kafka.LeaderNotAvailable
			}
			return nil
		}
		return kafka.UnknownTopicOrPartition
	})
	sort.Ints(parts)
	return parts, err
}

// offsets returns each partition's first retained offset and its end (the
// next offset to be written, or the last stable offset under a transaction).
func (s *Source) offsets(ctx context.Context, parts []int) (first, end map[int]int64, err error) {
	list := func(which int64) (map[int]int64, error) {
		out := map[int]int64{}
		err := s.retry(ctx, "list offsets", func() error {
			req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}, IsolationLevel: kafka.ReadCommitted}
			for _, p := range parts {
				req.Topics[s.cfg.Topic] = append(req.Topics[s.cfg.Topic], kafka.OffsetRequest{Partition: p, Timestamp: which})
			}
			resp, err := s.client.ListOffsets(ctx, req)
			if err != nil {
				return err
			}
			for _, po := range resp.Topics[s.cfg.Topic] {
				if po.Error != nil {
					return po.Error
				}
				if which == kafka.FirstOffset {
					out[po.Partition] = po.FirstOffset
				} else {
					out[po.Partition] = po.LastOffset
				}
			}
			for _, p := range parts {
				if _, ok := out[p]; !ok {
					return fmt.Errorf("no offset for partition %d", p)
				}
			}
			return nil
		})
		return out, err
	}
	if first, err = list(kafka.FirstOffset); err != nil {
		return nil, nil, err
	}
	if end, err = list(kafka.LastOffset); err != nil {
		return nil, nil, err
	}
	return first, end, nil
}

// message is one fetched message.
type message struct {
	offset int64
	value  []byte
}

// chunk is what one fetch of one partition produced.
type chunk struct {
	part int
	msgs []message
	next int64 // the offset to fetch next
	err  error
}

// Read implements connectors.Source.
func (s *Source) Read(ctx context.Context, from connectors.Positions, emit connectors.Emit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.sasl(); err != nil {
		return err
	}
	if s.cfg.csv() && s.csvBound == nil {
		b, err := s.mapper.Bind(s.cfg.Columns)
		if err != nil {
			return fmt.Errorf("%w: kafka %s: %v", connectors.ErrPermanent, s.cfg.Topic, err)
		}
		s.csvBound = b
	}
	parts, err := s.partitions(ctx)
	if err != nil {
		return err
	}
	first, end, err := s.offsets(ctx, parts)
	if err != nil {
		return err
	}
	known := map[int]bool{}
	for _, p := range parts {
		known[p] = true
	}
	for stream := range from {
		if rest, ok := strings.CutPrefix(stream, s.prefix); ok {
			if p, err := strconv.Atoi(rest); err == nil && !known[p] {
				return fmt.Errorf("%w: kafka: position %v names partition %d, but topic %s has partitions 0..%d now: was the topic re-created? Reset the source's positions",
					connectors.ErrPermanent, from[stream], p, s.cfg.Topic, len(parts)-1)
			}
		}
	}

	// Where each partition starts, and the rejects reporting lost ranges.
	var batch []connectors.Record
	next := map[int]int64{}
	for _, p := range parts {
		stream := s.Stream(p)
		cur, seen := from[stream]
		switch {
		case seen:
			n := cur.Pos + 1
			if n > end[p] {
				return fmt.Errorf("%w: kafka: position %v is past the end (offset %d) of %s/%d: the upstream topic was re-created or its cluster replaced; reset the source's positions",
					connectors.ErrPermanent, cur, end[p], s.cfg.Topic, p)
			}
			if n < first[p] {
				lost := first[p] - n
				s.Lost.Add(lost)
				batch = append(batch, connectors.Record{
					Cursor: connectors.Cursor{Stream: stream, Pos: first[p] - 1},
					Err: fmt.Errorf("kafka %s/%d: offsets %d..%d (%d messages) were deleted by the upstream's retention before they were read",
						s.cfg.Topic, p, n, first[p]-1, lost),
				})
				n = first[p]
			}
			next[p] = n
		case s.cfg.StartAt == "latest":
			a, ok := s.anchors[p]
			if !ok || a < first[p] || a > end[p] {
				a = end[p]
				s.anchors[p] = a
			}
			next[p] = a
		default:
			next[p] = first[p]
		}
	}

	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	out := make(chan chunk)
	caught := map[int]bool{}
	for _, p := range parts {
		caught[p] = next[p] >= end[p]
		wg.Add(1)
		go func(p int, off int64) {
			defer wg.Done()
			s.fetchLoop(fctx, p, off, out)
		}(p, next[p])
	}

	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := emit(ctx, batch)
		batch = batch[:0:0] // emit may keep the slice
		return err
	}
	lastMsg := time.Now()
	timer := time.NewTimer(s.cfg.IdleReturn)
	defer timer.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		all := true
		for _, c := range caught {
			all = all && c
		}
		if all && time.Since(lastMsg) >= s.cfg.IdleReturn {
			return flush()
		}
		var c chunk
		select {
		case c = <-out:
		default:
			// Nothing ready: hand over what we have before waiting.
			if err := flush(); err != nil {
				return err
			}
			timer.Reset(max(s.cfg.IdleReturn-time.Since(lastMsg), time.Millisecond))
			select {
			case c = <-out:
			case <-timer.C:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if c.err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return cerr
			}
			return c.err
		}
		if len(c.msgs) > 0 {
			lastMsg = time.Now()
		}
		if len(c.msgs) == 0 || c.next >= end[c.part] {
			caught[c.part] = true
		}
		stream := s.Stream(c.part)
		for _, m := range c.msgs {
			rec, ok := s.mapMessage(stream, m)
			if !ok {
				continue
			}
			batch = append(batch, rec)
			if len(batch) >= s.cfg.BatchRows {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
}

// fetchLoop fetches partition p from off on and sends what it gets to out
// until ctx ends or a fetch fails for good.
func (s *Source) fetchLoop(ctx context.Context, p int, off int64, out chan<- chunk) {
	for {
		var c chunk
		err := s.retry(ctx, "fetch partition "+strconv.Itoa(p), func() error {
			var err error
			c, err = s.fetch(ctx, p, off)
			return err
		})
		if err != nil {
			c = chunk{part: p, err: err}
		}
		select {
		case out <- c:
		case <-ctx.Done():
			return
		}
		if c.err != nil {
			return
		}
		off = c.next
	}
}

// fetch reads what partition p holds from off on, up to fetchMaxBytes.
func (s *Source) fetch(ctx context.Context, p int, off int64) (chunk, error) {
	resp, err := s.client.Fetch(ctx, &kafka.FetchRequest{
		Topic: s.cfg.Topic, Partition: p, Offset: off,
		MinBytes: 1, MaxBytes: fetchMaxBytes, MaxWait: s.wait,
		IsolationLevel: kafka.ReadCommitted,
	})
	if err != nil {
		return chunk{}, err
	}
	if resp.Error != nil {
		if errors.Is(resp.Error, kafka.OffsetOutOfRange) {
			// Retention overtook the read: the next Read reports the gap.
			return chunk{}, fmt.Errorf("kafka %s/%d: offset %d is no longer available (retention): %w", s.cfg.Topic, p, off, resp.Error)
		}
		return chunk{}, resp.Error
	}
	c := chunk{part: p, next: off}
	take := func(r *kafka.Record) error {
		defer func() {
			if r.Key != nil {
				r.Key.Close()
			}
			if r.Value != nil {
				r.Value.Close()
			}
		}()
		if r.Offset < off { // batches are returned whole
			return nil
		}
		v, err := protocol.ReadAll(r.Value)
		if err != nil {
			return err
		}
		c.msgs = append(c.msgs, message{offset: r.Offset, value: v})
		c.next = r.Offset + 1
		return nil
	}
	if stream, ok := resp.Records.(*protocol.RecordStream); ok {
		// Walk the batches ourselves so that trailing control batches
		// (transaction markers) are stepped over too.
		for _, rr := range stream.Records {
			control := false
			if _, ok := rr.(*protocol.ControlBatch); ok {
				control = true
			}
			for {
				r, err := rr.ReadRecord()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					return chunk{}, err
				}
				if control {
					if r.Offset >= c.next {
						c.next = r.Offset + 1
					}
					if r.Key != nil {
						r.Key.Close()
					}
					if r.Value != nil {
						r.Value.Close()
					}
					continue
				}
				if err := take(r); err != nil {
					return chunk{}, err
				}
			}
		}
		return c, nil
	}
	for {
		r, err := resp.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			return c, nil
		}
		if err != nil {
			return chunk{}, err
		}
		if err := take(r); err != nil {
			return chunk{}, err
		}
	}
}

// mapMessage maps one message; ok is false for a message the mapping's
// filter skips.
func (s *Source) mapMessage(stream string, m message) (connectors.Record, bool) {
	rec := connectors.Record{Cursor: connectors.Cursor{Stream: stream, Pos: m.offset}}
	reject := func(raw []byte, err error) (connectors.Record, bool) {
		rec.Raw = raw
		rec.Err = fmt.Errorf("%s offset %d: %w", stream, m.offset, err)
		return rec, true
	}
	if len(m.value) > s.cfg.MaxRecordBytes {
		return reject(m.value[:s.cfg.MaxRecordBytes],
			fmt.Errorf("message of %d bytes exceeds kafka.max_record_bytes (%d); raw truncated", len(m.value), s.cfg.MaxRecordBytes))
	}
	var (
		b   *mapping.Bound
		row []string
		err error
	)
	if s.cfg.csv() {
		b = s.csvBound
		row, err = DecodeCSV(m.value, s.cfg.delim())
	} else {
		var header []string
		if header, row, err = mqtt.Flatten(m.value); err == nil {
			header, row = s.mapper.PadSorted(header, row)
			bd, ok := s.bindings[signature(header)]
			if !ok {
				bd.b, bd.err = s.mapper.Bind(header)
				if len(s.bindings) >= maxBindCache {
					clear(s.bindings)
				}
				s.bindings[signature(header)] = bd
			}
			b, err = bd.b, bd.err
		}
	}
	if err != nil {
		return reject(m.value, err)
	}
	if rec.Values, err = b.Map(row); err != nil {
		if errors.Is(err, mapping.ErrSkipped) {
			s.Skipped.Add(1)
			return connectors.Record{}, false
		}
		rec.Values = nil
		return reject(m.value, err)
	}
	return rec, true
}

func signature(header []string) string { return strings.Join(header, "\x00") }

var errEmpty = errors.New("empty message")

// DecodeCSV splits one message holding one delimited line (RFC 4180
// quoting; a UTF-8 BOM and a final line ending are allowed) into fields.
func DecodeCSV(value []byte, delim rune) ([]string, error) {
	value = bytes.TrimPrefix(value, []byte("\ufeff"))
	if len(bytes.TrimSpace(value)) == 0 {
		return nil, errEmpty
	}
	r := csv.NewReader(bytes.NewReader(value))
	r.Comma = delim
	r.FieldsPerRecord = -1
	fields, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("bad CSV: %w", err)
	}
	if _, err := r.Read(); !errors.Is(err, io.EOF) {
		return nil, errors.New("bad CSV: the message holds more than one line")
	}
	return fields, nil
}
