// Package lakewriter writes one Kafka topic into one Iceberg table,
// exactly once.
//
// It reads every partition of the topic from the offsets stored in the
// table's current snapshot, streams records into one Parquet file per table
// partition (event day; parquet-go, so memory holds only each file's
// current row group, at most MaxOpenFiles files), and commits the files
// together with the new offsets and source cursors in one snapshot
// (warehouse.Lake.Commit).
//
// Why parquet-go and not iceberg-go's own Arrow writer: parquet-go streams
// rows into a file with bounded memory and lets the writer name files
// deterministically and describe them (counts, bounds, partition) without
// reading them back; iceberg-go's writer needs Arrow record batches in
// memory and names files with random UUIDs. A
// crash at any moment loses nothing (uncommitted offsets are re-read) and
// duplicates nothing (the snapshot's offsets say what is in; records whose
// source cursor is not beyond the committed one are dropped, which also
// covers producer retries and a replaced broker).
//
// Flushes happen when a batch reaches FlushRows or FlushBytes, when it is
// FlushInterval old, and when no record arrived for IdleFlush.
package lakewriter

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/segmentio/kafka-go"

	"citybrain/connectors"
	"citybrain/internal/broker"
	"citybrain/internal/freshness"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// Config tunes batching.
type Config struct {
	// FlushRows commits a batch when it holds this many records.
	FlushRows int `yaml:"flush_rows"`
	// FlushBytes commits a batch when its records' encoded size reaches this.
	FlushBytes int64 `yaml:"flush_bytes"`
	// FlushInterval commits a batch this long after its first record.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// IdleFlush commits a batch when no record arrived for this long.
	IdleFlush time.Duration `yaml:"idle_flush"`
	// MaxOpenFiles bounds the data files (table partitions) a batch writes
	// at once; a record of one more partition commits the batch first.
	MaxOpenFiles int `yaml:"max_open_files"`
	// Partitioned: the writers of a routed topic on several instances share
	// its partitions through the consumer group citybrain-lake-<source>
	// (group.go); false: each writer reads every partition.
	Partitioned bool `yaml:"partitioned"`
}

// DefaultConfig: 1M rows or 256 MiB, 10 s, 1 s idle, 64 open files.
func DefaultConfig() Config {
	return Config{FlushRows: 1_000_000, FlushBytes: 256 << 20, FlushInterval: 10 * time.Second, IdleFlush: time.Second, MaxOpenFiles: 64}
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.FlushRows < 1 || c.FlushBytes < 1 || c.FlushInterval <= 0 || c.IdleFlush <= 0 || c.MaxOpenFiles < 1 {
		return errors.New("lake_writer: flush_rows, flush_bytes, flush_interval, idle_flush and max_open_files must all be positive")
	}
	return nil
}

// Stats are a writer's running totals.
type Stats struct {
	Rows, Duplicates, Rejects, Commits, ClusterChanges atomic.Int64
	// Replaced counts committed rows replaced by a later row of their
	// natural key (keep_latest), within a batch or across commits.
	Replaced atomic.Int64
	// Merges counts commits made again on another writer's newer state (Only).
	Merges     atomic.Int64
	LastCommit atomic.Int64 // unix ms
}

// Writer is the lake writer of one topic.
type Writer struct {
	cfg    Config
	lake   *warehouse.Lake
	client *broker.Client
	schema *schemas.Schema
	topic  string
	source string
	log    *slog.Logger
	// eventIdx is the schema's event-time field (-1: none)
	eventIdx int
	dlq      *kafka.Writer
	// keyIdx is the natural key's fields when the policy is keep_latest
	// (nil: append); seed hashes keys.
	keyIdx []int
	seed   maphash.Seed

	// OnCommit, if set, is called after each commit (e.g. to refresh views).
	OnCommit func(ctx context.Context, tableName string, snapshot int64)
	// StopAtEnd makes Run return once it has committed everything that was
	// in the topic when it started (citybrain ingest).
	StopAtEnd bool
	// Fresh, if set, receives the table's freshness (path source/<source>/<table>):
	// pending from the Kafka append time of the first record not yet
	// committed, the newest event time and snapshot after each commit, and
	// commit durations and batch sizes for /metrics.
	Fresh *freshness.Registry

	Stats Stats

	// Only, when set, are the partitions of the topic this writer owns (a
	// routed topic shared by the lake writers of several instances; group.go):
	// it reads those, and commits only their offsets and high-water marks,
	// merged into the table's current state (merge on commit).
	Only  []int
	owned atomic.Pointer[[]int]
	// Ready, if set, says whether to read the partitions a generation gives (group.go).
	Ready func(partitions []int) bool
}

// owns reports whether the writer reads partition p.
func (w *Writer) owns(p int) bool {
	if w.Only == nil {
		return true
	}
	for _, q := range w.Only {
		if q == p {
			return true
		}
	}
	return false
}

// New returns a writer of raw.<source> into the schema's table.
func New(cfg Config, lake *warehouse.Lake, client *broker.Client, source string, s *schemas.Schema, log *slog.Logger) *Writer {
	return &Writer{cfg: cfg, lake: lake, client: client, schema: s, source: source, eventIdx: s.EventTimeIndex(),
		topic: connectors.RawTopic(source), log: log.With("topic", connectors.RawTopic(source), "table", s.Table),
		dlq: client.Writer(connectors.DLQTopic(source)), keyIdx: s.KeyIndex(), seed: maphash.MakeSeed()}
}

// Policies say what a row does to the committed rows of its natural key.
const (
	// KeepLatest (the default when the schema has a key): the row replaces
	// them, so the table holds one row per key.
	KeepLatest = "keep_latest"
	// Append: every row is added (a source whose repeats are real events).
	Append = "append"
)

// SetPolicy sets the source's de-duplication policy: KeepLatest, Append,
// or "" for the default.
func (w *Writer) SetPolicy(p string) error {
	switch p {
	case "", KeepLatest:
		w.keyIdx = w.schema.KeyIndex()
	case Append:
		w.keyIdx = nil
	default:
		return fmt.Errorf("dedup %q: want %s or %s / 去重策略应为 %s 或 %s", p, KeepLatest, Append, KeepLatest, Append)
	}
	return nil
}

// keyHash hashes a record's natural key. Equal keys hash equal; a
// collision only makes the commit check the file (which is exact).
func (w *Writer) keyHash(rec schemas.Record) uint64 {
	var h maphash.Hash
	h.SetSeed(w.seed)
	var buf [8]byte
	for _, i := range w.keyIdx {
		switch v := rec[i].(type) {
		case string:
			h.WriteString(v)
			h.WriteByte(0)
		case time.Time:
			binary.LittleEndian.PutUint64(buf[:], uint64(v.UnixMicro()))
			h.Write(buf[:])
		default:
			fmt.Fprint(&h, v)
			h.WriteByte(0)
		}
	}
	return h.Sum64()
}

// path is the writer's freshness path.
func (w *Writer) path() freshness.Path {
	return freshness.Path{Component: "source", Name: w.source, Table: w.schema.Table}
}

// Close releases the dead-letter producer.
func (w *Writer) Close() error { return w.dlq.Close() }

// Run writes until ctx is done (or, with StopAtEnd, until caught up).
// Commit conflicts and broker errors are retried with backoff; data never
// stops it.
func (w *Writer) Run(ctx context.Context) error {
	backoff := 500 * time.Millisecond
	for {
		done, err := w.runOnce(ctx)
		if done || ctx.Err() != nil {
			return err
		}
		if errors.Is(err, warehouse.ErrConflict) {
			w.log.Info("another writer committed first; reloading the table's position", "err", err)
			continue
		}
		w.log.Error("lake writer failed; retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

type fetched struct {
	partition int
	msgs      []kafka.Message
	err       error
}

// batch is what has been read since the last commit. Records are written
// straight into one open Parquet file per table partition, so memory holds
// no decoded records, only the files' current row groups; at most
// MaxOpenFiles are open, and a record of yet another partition first
// commits the batch.
type batch struct {
	next  warehouse.State
	files map[string]*warehouse.FileWriter
	rows  int64
	bytes int64
	first time.Time
	last  time.Time
	// newest event time among the batch's records (for freshness)
	newest  time.Time
	dirty   bool // offsets moved since the last commit
	dead    []kafka.Message
	startAt map[int]int64
	table   *table.Table
	name    string // file name shared by the batch's files: <batch>-<hash of start offsets>.parquet
	// The previous record's file: records mostly arrive in event-time
	// order, so the partition is worked out only when the day changes.
	lastFile *warehouse.FileWriter
	lastKey  int64
	// keys hashes the natural keys written (keep_latest); repeats marks the
	// files that got a key twice.
	keys    map[uint64]struct{}
	repeats map[*warehouse.FileWriter]bool
	// touched are the high-water marks this batch moved (Only: merged into
	// the current state on a lost race).
	touched map[string]bool
}

// errBatchFull: the record needs a file beyond MaxOpenFiles; commit first.
var errBatchFull = errors.New("batch has MaxOpenFiles open")

// fileFor returns the open data file of a record's partition.
func (w *Writer) fileFor(b *batch, rec schemas.Record) (*warehouse.FileWriter, error) {
	s := w.schema
	key, cacheable := int64(0), false
	if s.Partition.Transform == "day" || s.Partition.Transform == "month" {
		if t, ok := rec[s.Index(s.Partition.Field)].(time.Time); ok && t.Unix() >= 0 {
			key, cacheable = t.Unix()/86400, true
		}
	}
	if cacheable && b.lastFile != nil && key == b.lastKey {
		return b.lastFile, nil
	}
	value, dir := warehouse.PartitionKey(s, rec)
	fw, ok := b.files[dir]
	if !ok {
		if len(b.files) >= w.cfg.MaxOpenFiles {
			return nil, errBatchFull
		}
		name := b.name
		if dir != "" {
			name = dir + "/" + name
		}
		var err error
		if fw, err = w.lake.NewFileWriter(b.table, s, name, value); err != nil {
			return nil, err
		}
		b.files[dir] = fw
	}
	b.lastFile, b.lastKey = nil, 0
	if cacheable {
		b.lastFile, b.lastKey = fw, key
	}
	return fw, nil
}

func (w *Writer) runOnce(ctx context.Context) (done bool, err error) {
	t, err := w.lake.EnsureTable(ctx, w.schema)
	if err != nil {
		return false, err
	}
	state, err := warehouse.StateOf(t)
	if err != nil {
		return false, err
	}
	cluster, err := w.client.ClusterID(ctx)
	if err != nil {
		return false, err
	}
	starts, err := w.client.StartOffsets(ctx, w.topic)
	if err != nil {
		return false, err
	}
	ends, err := w.client.EndOffsets(ctx, w.topic)
	if err != nil {
		return false, err
	}
	if len(starts) == 0 {
		return false, fmt.Errorf("topic %s does not exist yet", w.topic)
	}
	stored := state.Offsets[w.topic]
	if prev := len(stored); w.schema.RouteBy != "" && prev > 0 && prev != len(starts) {
		// Records keyed by a field went to partition hash(key) mod n: with
		// another n (partitions added, or a replaced broker made the topic
		// anew with another count) a key's later records land in another
		// partition, whose high-water mark could drop them as committed.
		return false, fmt.Errorf("topic %s has %d partitions, the lake read it with %d: its records are keyed by %s (route_by) and their partitions moved; "+
			"主题分区数已变更 — produce to a new source (topic) with the new partition count instead", w.topic, len(starts), prev, w.schema.RouteBy)
	}
	if state.Cluster != "" && state.Cluster != cluster {
		w.Stats.ClusterChanges.Add(1)
		w.log.Warn("Kafka cluster changed since the last commit: its offsets do not apply; reading the topic from the start and dropping records the lake already holds (by source cursor)",
			"old_cluster", state.Cluster, "cluster", cluster)
		stored = nil
	}
	for p, off := range stored {
		if off > ends[p] {
			w.Stats.ClusterChanges.Add(1)
			w.log.Warn("the lake has read further than the topic holds (broker replaced or topic recreated): reading from the start and dropping what the lake already holds",
				"partition", p, "lake_offset", off, "topic_end", ends[p])
			stored = nil
			break
		}
	}
	if stored != nil && w.logReplaced(ctx, state, stored, starts) {
		w.Stats.ClusterChanges.Add(1)
		stored = nil
	}
	from := map[int]int64{}
	for p, s := range starts {
		if !w.owns(p) {
			continue
		}
		off, ok := stored[p]
		if !ok {
			off = s
		}
		if off < s {
			w.log.Error("records were deleted from Kafka by retention before the lake read them; they are lost to the lake — replay them from the source if needed",
				"partition", p, "lake_offset", off, "earliest_available", s)
			off = s
		}
		from[p] = off
	}
	state.Cluster = cluster
	if state.Offsets == nil {
		state.Offsets = map[string]map[int]int64{}
	}
	all := map[int]int64{}
	if w.Only != nil { // the other partitions are other writers': as committed
		for p, off := range state.Offsets[w.topic] {
			all[p] = off
		}
	}
	for p, off := range from {
		all[p] = off
	}
	state.Offsets[w.topic] = all

	fctx, cancel := context.WithCancel(ctx)
	ch := make(chan fetched, 2)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for p, off := range from {
		wg.Add(1)
		go func(p int, off int64) {
			defer wg.Done()
			w.fetch(fctx, p, off, ch)
		}(p, off)
	}
	b := w.newBatch(state, t)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// Graceful stop: commit what was read.
			fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer fcancel()
			_, err := w.flush(fctx, t, b)
			cancel()
			return true, err
		case f := <-ch:
			if f.err != nil {
				b.abort()
				return false, f.err
			}
			now := time.Now()
			for _, m := range f.msgs {
				err := w.add(b, f.partition, m, now)
				if errors.Is(err, errBatchFull) {
					if t, err = w.flush(ctx, t, b); err != nil {
						return false, err
					}
					b = w.newBatch(b.next, t)
					err = w.add(b, f.partition, m, now)
				}
				if err != nil {
					b.abort()
					return false, err
				}
				if b.rows >= int64(w.cfg.FlushRows) || b.bytes >= w.cfg.FlushBytes {
					if t, err = w.flush(ctx, t, b); err != nil {
						return false, err
					}
					b = w.newBatch(b.next, t)
				}
			}
		case now := <-tick.C:
			if b.dirty && (now.Sub(b.first) >= w.cfg.FlushInterval || now.Sub(b.last) >= w.cfg.IdleFlush) {
				if t, err = w.flush(ctx, t, b); err != nil {
					return false, err
				}
				b = w.newBatch(b.next, t)
			}
			if w.StopAtEnd && !b.dirty && caughtUp(b.next.Offsets[w.topic], ends, w.owns) {
				return true, nil
			}
		}
	}
}

// logReplaced tells whether the topic is not the log the lake read: the
// record just before a partition's committed offset must be one the lake
// committed (its cursor at or below the lake's position of its stream).
// After the broker's log was lost under the same cluster id and the
// connector re-produced from the lake's position, the offsets can look
// valid while the records at them are new ones; starting there would skip
// them. One read per partition when the writer starts.
func (w *Writer) logReplaced(ctx context.Context, state warehouse.State, stored map[int]int64, starts map[int]int64) bool {
	for p, off := range stored {
		if off <= starts[p] || off <= 0 {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		var m kafka.Message
		found := false
		errDone := errors.New("done")
		err := w.client.ReadPartition(rctx, w.topic, p, off-1, 1<<20, 50*time.Millisecond, func(msgs []kafka.Message) error {
			for _, x := range msgs {
				if x.Offset == off-1 {
					m, found = x, true
					return errDone
				}
			}
			return nil
		})
		cancel()
		if !found {
			if err != nil && !errors.Is(err, errDone) {
				w.log.Debug("could not read the last committed record to check the log", "partition", p, "err", err)
			}
			continue
		}
		cur, _ := cursorOf(m, w.topic)
		if hw, ok := HighWater(state.Cursors, cur.Stream, p, w.schema.RouteBy != ""); !ok || cur.Pos > hw {
			w.log.Warn("消息代理日志已更换 the topic's log is not the one the lake read (the broker lost its log under the same cluster id): reading from the start and dropping what the lake already holds",
				"partition", p, "lake_offset", off, "record_cursor", cur.String())
			return true
		}
	}
	return false
}

func caughtUp(at map[int]int64, ends broker.Offsets, owns func(int) bool) bool {
	for p, e := range ends {
		if owns(p) && at[p] < e {
			return false
		}
	}
	return true
}

// liveWait is how long a fetch waits at the end of a partition for a first
// record. The broker answers as soon as one arrives, so a long wait costs no
// latency; a short one made the writers of an idle lake ask the broker
// ~120 times a second (a tenth of serve's idle CPU, docs/soak.md).
const liveWait = 5 * time.Second

// fetch reads one partition from off, handing whole fetch responses to the
// main loop (one channel operation per response, not per record). It
// returns on the first error, after reporting it; runOnce then starts over
// from the committed position.
func (w *Writer) fetch(ctx context.Context, p int, off int64, ch chan<- fetched) {
	err := w.client.ReadPartition(ctx, w.topic, p, off, 4<<20, liveWait, func(msgs []kafka.Message) error {
		select {
		case ch <- fetched{partition: p, msgs: msgs}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if err != nil && ctx.Err() == nil {
		select {
		case ch <- fetched{partition: p, err: err}:
		case <-ctx.Done():
		}
	}
}

func (w *Writer) newBatch(state warehouse.State, t *table.Table) *batch {
	next := state.Clone()
	start := map[int]int64{}
	for p, o := range next.Offsets[w.topic] {
		start[p] = o
	}
	b := &batch{next: next, files: map[string]*warehouse.FileWriter{}, startAt: start, table: t, touched: map[string]bool{}}
	if w.keyIdx != nil {
		b.keys, b.repeats = map[uint64]struct{}{}, map[*warehouse.FileWriter]bool{}
	}
	b.name = fmt.Sprintf("%010d-%s.parquet", next.Batch+1, w.batchHash(b))
	return b
}

// cursorOf returns a record's source cursor, parsed and as the string the
// lake stores.
func cursorOf(m kafka.Message, topic string) (connectors.Cursor, string) {
	for _, h := range m.Headers {
		if h.Key == connectors.HeaderCursor {
			s := string(h.Value)
			if c, ok := connectors.ParseCursor(s); ok {
				return c, s
			}
		}
	}
	// Records from producers that carry no cursor are identified by offset.
	c := connectors.Cursor{Stream: "kafka:" + topic + "/" + strconv.Itoa(m.Partition), Pos: m.Offset}
	return c, c.String()
}

// add puts one message into the batch. It returns errBatchFull, having
// changed nothing, when the record needs a file the batch cannot open; any
// other error is a failure to write the file.
func (w *Writer) add(b *batch, p int, m kafka.Message, now time.Time) error {
	cur, curStr := cursorOf(m, w.topic)
	dup := false
	routed := w.schema.RouteBy != ""
	if hw, ok := HighWater(b.next.Cursors, cur.Stream, p, routed); ok && cur.Pos <= hw {
		dup = true
	}
	var rec schemas.Record
	var fw *warehouse.FileWriter
	var bad error
	if !dup {
		if rec, bad = w.schema.Decode(m.Value); bad == nil {
			bad = w.schema.Validate(rec)
		}
		if bad == nil {
			var err error
			if fw, err = w.fileFor(b, rec); err != nil {
				return err
			}
		}
	}
	if !b.dirty {
		b.first = now
		if w.Fresh != nil {
			w.Fresh.Pending(w.path(), m.Time)
		}
	}
	b.dirty = true
	b.last = now
	b.next.Offsets[w.topic][p] = m.Offset + 1
	switch {
	case dup:
		w.Stats.Duplicates.Add(1)
		return nil
	case bad != nil:
		w.Stats.Rejects.Add(1)
		b.dead = append(b.dead, kafka.Message{Key: m.Key, Value: m.Value, Headers: append(m.Headers,
			kafka.Header{Key: connectors.HeaderReason, Value: []byte("lake writer: " + bad.Error())},
			kafka.Header{Key: connectors.HeaderCursor, Value: []byte(curStr)})})
	default:
		if err := fw.Write(rec, curStr); err != nil {
			return err
		}
		if w.keyIdx != nil {
			h := w.keyHash(rec)
			if _, ok := b.keys[h]; ok {
				b.repeats[fw] = true
			} else {
				b.keys[h] = struct{}{}
			}
		}
		if i := w.eventIdx; i >= 0 {
			if t, ok := rec[i].(time.Time); ok && t.After(b.newest) {
				b.newest = t
			}
		}
		b.rows++
		b.bytes += int64(len(m.Value))
	}
	hwKey := cur.Stream
	if routed {
		hwKey = PartitionStream(cur.Stream, p)
	}
	b.next.Cursors[hwKey] = cur.Pos
	if w.Only != nil {
		b.touched[hwKey] = true
	}
	if cur.Token != "" {
		b.next.Tokens[hwKey] = cur.Token
	}
	return nil
}

// mergeTries bounds the merges of one commit.
const mergeTries = 50

// ErrFenced: another writer committed one of this writer's partitions (it
// was paused past the group's session timeout and the partition moved).
var ErrFenced = errors.New("分区已被其他写入器接管 another lake writer committed this writer's partition (fenced)")

// merge rebases the batch's next state on the table's current one: the
// writer's partitions' offsets and the high-water marks its records moved
// are the batch's, the rest as committed. If the current state moved one of the
// writer's partitions, another writer owns it now: ErrFenced.
func (w *Writer) merge(ctx context.Context, b *batch) error {
	t, err := w.lake.Load(ctx, w.schema.Table)
	if err != nil {
		return err
	}
	cur, err := warehouse.StateOf(t)
	if err != nil {
		return err
	}
	for _, p := range w.Only {
		if was, ok := b.startAt[p]; ok && cur.Offsets[w.topic][p] != was {
			return fmt.Errorf("%w: partition %d of %s at offset %d, this writer started its batch at %d", ErrFenced, p, w.topic, cur.Offsets[w.topic][p], was)
		}
	}
	next := cur.Clone()
	if next.Offsets == nil {
		next.Offsets = map[string]map[int]int64{}
	}
	if next.Offsets[w.topic] == nil {
		next.Offsets[w.topic] = map[int]int64{}
	}
	for _, p := range w.Only {
		if off, ok := b.next.Offsets[w.topic][p]; ok {
			next.Offsets[w.topic][p] = off
		}
	}
	// The marks this batch moved: stream@p of the writer's partitions, or
	// the streams of its partitions of a topic that is not routed (a stream
	// is then in one partition, keyed by the stream).
	for k := range b.touched {
		next.Cursors[k] = b.next.Cursors[k]
		if tok, ok := b.next.Tokens[k]; ok {
			next.Tokens[k] = tok
		}
	}
	next.Cluster = b.next.Cluster
	next.Batch = max(next.Batch, b.next.Batch-1) + 1
	b.next = next
	return nil
}

// PartitionStream is the key of a stream's high-water mark in one
// partition of a topic keyed by a field (schemas.Schema.RouteBy): there a
// stream's records are spread over the partitions, each in order, so the
// lake keeps one high-water mark per stream and partition.
func PartitionStream(stream string, partition int) string {
	return stream + "@" + strconv.Itoa(partition)
}

// SplitPartitionStream reverses PartitionStream (ok false: a plain stream).
func SplitPartitionStream(key string) (stream string, partition int, ok bool) {
	i := strings.LastIndexByte(key, '@')
	if i < 0 {
		return key, 0, false
	}
	p, err := strconv.Atoi(key[i+1:])
	if err != nil || p < 0 {
		return key, 0, false
	}
	return key[:i], p, true
}

// HighWater is the committed position of a stream's records read from
// partition p: for a routed topic the stream's mark in that partition, else
// (and for state written before the topic was routed, when the stream was
// in one partition) the stream's own.
func HighWater(cursors map[string]int64, stream string, p int, routed bool) (int64, bool) {
	if routed {
		if hw, ok := cursors[PartitionStream(stream, p)]; ok {
			if old, ok := cursors[stream]; ok && old > hw {
				return old, true
			}
			return hw, true
		}
	}
	hw, ok := cursors[stream]
	return hw, ok
}

// batchHash names a batch by the offsets it starts at, so a replay of the
// same batch after a crash writes the same file names.
func (w *Writer) batchHash(b *batch) string {
	ps := make([]int, 0, len(b.startAt))
	for p := range b.startAt {
		if w.owns(p) { // writers of other partitions name their files by theirs
			ps = append(ps, p)
		}
	}
	sort.Ints(ps)
	var sb strings.Builder
	sb.WriteString(w.topic)
	for _, p := range ps {
		fmt.Fprintf(&sb, "/%d:%d", p, b.startAt[p])
	}
	h := sha256.Sum256([]byte(sb.String()))
	return hex.EncodeToString(h[:4])
}

// closeFiles finishes the batch's files, in partition order.
func (w *Writer) closeFiles(b *batch) ([]iceberg.DataFile, map[string]bool, error) {
	dirs := make([]string, 0, len(b.files))
	for d := range b.files {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	var files []iceberg.DataFile
	repeats := map[string]bool{}
	for i, dir := range dirs {
		df, err := b.files[dir].Close()
		if err != nil {
			for _, df := range files {
				w.removeFile(df.FilePath())
			}
			for _, d := range dirs[i+1:] {
				b.files[d].Abort()
			}
			return nil, nil, err
		}
		files = append(files, df)
		if b.repeats[b.files[dir]] {
			repeats[df.FilePath()] = true
		}
	}
	b.files = map[string]*warehouse.FileWriter{}
	b.lastFile = nil
	b.keys, b.repeats = nil, nil
	if w.keyIdx != nil {
		b.keys, b.repeats = map[uint64]struct{}{}, map[*warehouse.FileWriter]bool{}
	}
	return files, repeats, nil
}

// abort removes the batch's unfinished files.
func (b *batch) abort() {
	for _, fw := range b.files {
		fw.Abort()
	}
	b.files = map[string]*warehouse.FileWriter{}
	b.lastFile = nil
}

// flush sends rejects to the dead-letter topic, closes the batch's files and
// commits them with the batch's position.
func (w *Writer) flush(ctx context.Context, t *table.Table, b *batch) (*table.Table, error) {
	if !b.dirty {
		return t, nil
	}
	if len(b.dead) > 0 {
		if err := w.dlq.WriteMessages(ctx, b.dead...); err != nil {
			b.abort()
			return t, fmt.Errorf("dead-letter %d records: %w", len(b.dead), err)
		}
	}
	files, repeats, err := w.closeFiles(b)
	if err != nil {
		return t, err
	}
	if len(files) == 0 {
		// Nothing to add (only duplicates or rejects): the position alone
		// is committed, so lag clears and a restart does not read (and
		// dead-letter) these records again.
		err := w.lake.CommitPosition(ctx, w.schema.Table, b.next)
		for try := 0; w.Only != nil && errors.Is(err, warehouse.ErrConflict) && try < mergeTries; try++ {
			if err = w.merge(ctx, b); err == nil {
				err = w.lake.CommitPosition(ctx, w.schema.Table, b.next)
			}
		}
		if err != nil {
			w.Fresh.Update(w.path(), func(s *freshness.State) { s.Err = err.Error() })
			return t, err
		}
		b.dirty = false
		w.Fresh.Update(w.path(), func(s *freshness.State) { s.PendingSince, s.Err = time.Time{}, "" })
		return w.lake.Load(ctx, w.schema.Table)
	}
	b.next.Batch++
	tc := time.Now()
	var snap int64
	var dd warehouse.DedupStats
	commit := func() {
		if w.keyIdx != nil {
			snap, dd, err = w.lake.CommitKeyed(ctx, w.schema.Table, w.schema, files, repeats, b.next)
		} else {
			snap, err = w.lake.Commit(ctx, w.schema.Table, files, b.next)
		}
	}
	commit()
	// Writers of other partitions of the topic commit to the same table: a
	// commit that lost the race is merged into the new state and made again
	// with the same files (nothing re-read).
	for try := 0; w.Only != nil && errors.Is(err, warehouse.ErrConflict) && try < mergeTries; try++ {
		if err = w.merge(ctx, b); err == nil {
			w.Stats.Merges.Add(1)
			commit()
		}
	}
	if err != nil {
		for _, df := range files {
			w.removeFile(df.FilePath())
		}
		w.Fresh.Update(w.path(), func(s *freshness.State) { s.Err = err.Error() })
		w.Fresh.Count("citybrain_lake_commit_errors", "Failed lake commits / 数据湖提交失败次数", 1, "table", w.schema.Table)
		return t, err
	}
	if w.Fresh != nil {
		now := time.Now()
		w.Fresh.Update(w.path(), func(s *freshness.State) {
			s.Snapshot, s.Committed, s.PendingSince, s.Err = snap, now, time.Time{}, ""
			if b.newest.After(s.EventTime) {
				s.EventTime = b.newest
			}
		})
		w.Fresh.Observe("citybrain_lake_commit_seconds", "Lake writer commit durations / 数据湖提交耗时", now.Sub(tc).Seconds(), "table", w.schema.Table)
		w.Fresh.Observe("citybrain_lake_batch_rows", "Rows per lake commit / 每次提交行数", float64(b.rows), "table", w.schema.Table)
	}
	b.next.SnapshotID = snap
	b.dirty = false
	if n := dd.Replaced + dd.InBatch; n > 0 {
		w.Stats.Replaced.Add(n)
		if w.Fresh != nil {
			w.Fresh.Count("citybrain_lake_rows_replaced", "Rows replaced by a later version of their key / 被同键新版本替换的行数", float64(n), "table", w.schema.Table)
		}
	}
	w.Stats.Rows.Add(b.rows)
	w.Stats.Commits.Add(1)
	w.Stats.LastCommit.Store(time.Now().UnixMilli())
	w.log.Debug("committed", "snapshot", snap, "rows", b.rows, "files", len(files))
	if w.OnCommit != nil {
		w.OnCommit(ctx, w.schema.Table, snap)
	}
	return w.lake.Load(ctx, w.schema.Table)
}
