// Package lakewriter writes one Kafka topic into one Iceberg table,
// exactly once.
//
// It reads every partition of the topic from the offsets stored in the
// table's current snapshot, buffers records into one Parquet file per
// table partition (event day), and commits the files together with the new
// offsets and source cursors in one snapshot (warehouse.Lake.Commit). A
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
	"encoding/hex"
	"errors"
	"fmt"
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
}

// DefaultConfig: 1M rows or 256 MiB, 10 s, 1 s idle.
func DefaultConfig() Config {
	return Config{FlushRows: 1_000_000, FlushBytes: 256 << 20, FlushInterval: 10 * time.Second, IdleFlush: time.Second}
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.FlushRows < 1 || c.FlushBytes < 1 || c.FlushInterval <= 0 || c.IdleFlush <= 0 {
		return errors.New("lakewriter: flush_rows, flush_bytes, flush_interval and idle_flush must all be positive")
	}
	return nil
}

// Stats are a writer's running totals.
type Stats struct {
	Rows, Duplicates, Rejects, Commits, ClusterChanges atomic.Int64
	LastCommit                                         atomic.Int64 // unix ms
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
	dlq    *kafka.Writer

	// OnCommit, if set, is called after each commit (e.g. to refresh views).
	OnCommit func(ctx context.Context, tableName string, snapshot int64)
	// StopAtEnd makes Run return once it has committed everything that was
	// in the topic when it started (citybrain ingest).
	StopAtEnd bool

	Stats Stats
}

// New returns a writer of raw.<source> into the schema's table.
func New(cfg Config, lake *warehouse.Lake, client *broker.Client, source string, s *schemas.Schema, log *slog.Logger) *Writer {
	return &Writer{cfg: cfg, lake: lake, client: client, schema: s, source: source,
		topic: connectors.RawTopic(source), log: log.With("topic", connectors.RawTopic(source), "table", s.Table),
		dlq: client.Writer(connectors.DLQTopic(source))}
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
	msg       kafka.Message
	err       error
}

// batch is what has been read since the last commit.
type batch struct {
	next    warehouse.State
	parts   map[string]*partBuf
	rows    int64
	bytes   int64
	first   time.Time
	last    time.Time
	dirty   bool // offsets moved since the last commit
	dead    []kafka.Message
	startAt map[int]int64
	table   *table.Table
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
	from := map[int]int64{}
	for p, s := range starts {
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
	state.Offsets[w.topic] = from

	fctx, cancel := context.WithCancel(ctx)
	ch := make(chan fetched, 8192)
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
				return false, f.err
			}
			w.add(b, f.partition, f.msg)
			if b.rows >= int64(w.cfg.FlushRows) || b.bytes >= w.cfg.FlushBytes {
				if t, err = w.flush(ctx, t, b); err != nil {
					return false, err
				}
				b = w.newBatch(b.next, t)
			}
		case now := <-tick.C:
			if b.dirty && (now.Sub(b.first) >= w.cfg.FlushInterval || now.Sub(b.last) >= w.cfg.IdleFlush) {
				if t, err = w.flush(ctx, t, b); err != nil {
					return false, err
				}
				b = w.newBatch(b.next, t)
			}
			if w.StopAtEnd && !b.dirty && caughtUp(b.next.Offsets[w.topic], ends) {
				return true, nil
			}
		}
	}
}

func caughtUp(at map[int]int64, ends broker.Offsets) bool {
	for p, e := range ends {
		if at[p] < e {
			return false
		}
	}
	return true
}

func (w *Writer) fetch(ctx context.Context, p int, off int64, ch chan<- fetched) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: w.client.Brokers, Topic: w.topic, Partition: p,
		MinBytes: 1, MaxBytes: 32 << 20, MaxWait: 250 * time.Millisecond, QueueCapacity: 4096,
	})
	defer r.Close()
	if err := r.SetOffset(off); err != nil {
		select {
		case ch <- fetched{partition: p, err: err}:
		case <-ctx.Done():
		}
		return
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			err = fmt.Errorf("fetch %s/%d: %w", w.topic, p, err)
		}
		select {
		case ch <- fetched{partition: p, msg: m, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

func (w *Writer) newBatch(state warehouse.State, t *table.Table) *batch {
	next := state.Clone()
	start := map[int]int64{}
	for p, o := range next.Offsets[w.topic] {
		start[p] = o
	}
	return &batch{next: next, parts: map[string]*partBuf{}, startAt: start, table: t}
}

func cursorOf(m kafka.Message, topic string) connectors.Cursor {
	for _, h := range m.Headers {
		if h.Key == connectors.HeaderCursor {
			if c, ok := connectors.ParseCursor(string(h.Value)); ok {
				return c
			}
		}
	}
	// Records from producers that carry no cursor are identified by offset.
	return connectors.Cursor{Stream: "kafka:" + topic + "/" + strconv.Itoa(m.Partition), Pos: m.Offset}
}

func (w *Writer) add(b *batch, p int, m kafka.Message) {
	now := time.Now()
	if !b.dirty {
		b.first = now
	}
	b.dirty = true
	b.last = now
	b.next.Offsets[w.topic][p] = m.Offset + 1
	cur := cursorOf(m, w.topic)
	if hw, ok := b.next.Cursors[cur.Stream]; ok && cur.Pos <= hw {
		w.Stats.Duplicates.Add(1)
		return
	}
	rec, err := w.schema.Decode(m.Value)
	if err == nil {
		err = w.schema.Validate(rec)
	}
	if err == nil {
		partVal, dir := warehouse.PartitionKey(w.schema, rec)
		pb, ok := b.parts[dir]
		if !ok {
			pb = &partBuf{value: partVal}
			b.parts[dir] = pb
		}
		pb.recs = append(pb.recs, rec)
		pb.cursors = append(pb.cursors, cur.String())
	}
	if err != nil {
		w.Stats.Rejects.Add(1)
		b.dead = append(b.dead, kafka.Message{Key: m.Key, Value: m.Value, Headers: append(m.Headers,
			kafka.Header{Key: connectors.HeaderReason, Value: []byte("lake writer: " + err.Error())},
			kafka.Header{Key: connectors.HeaderCursor, Value: []byte(cur.String())})})
	} else {
		b.rows++
		b.bytes += int64(len(m.Value))
	}
	b.next.Cursors[cur.Stream] = cur.Pos
}

// batchHash names a batch by the offsets it starts at, so a replay of the
// same batch after a crash writes the same file names.
func (w *Writer) batchHash(b *batch) string {
	ps := make([]int, 0, len(b.startAt))
	for p := range b.startAt {
		ps = append(ps, p)
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

// partBuf holds a batch's records of one table partition until the flush
// writes them, one file at a time, so that memory is bounded by the batch
// (FlushRows, FlushBytes) however many partitions it spans.
type partBuf struct {
	value   any
	recs    []schemas.Record
	cursors []string
}

// writeFiles writes one data file per partition, in partition order.
func (w *Writer) writeFiles(b *batch) ([]iceberg.DataFile, error) {
	dirs := make([]string, 0, len(b.parts))
	for d := range b.parts {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	hash := w.batchHash(b)
	var files []iceberg.DataFile
	fail := func(err error) ([]iceberg.DataFile, error) {
		for _, df := range files {
			removeLocal(df.FilePath())
		}
		return nil, err
	}
	for _, dir := range dirs {
		pb := b.parts[dir]
		name := fmt.Sprintf("%010d-%s.parquet", b.next.Batch+1, hash)
		if dir != "" {
			name = dir + "/" + name
		}
		fw, err := warehouse.NewFileWriter(b.table, w.schema, name, pb.value)
		if err != nil {
			return fail(err)
		}
		for i, rec := range pb.recs {
			if err := fw.Write(rec, pb.cursors[i]); err != nil {
				fw.Abort()
				return fail(err)
			}
		}
		df, err := fw.Close()
		if err != nil {
			return fail(err)
		}
		files = append(files, df)
	}
	return files, nil
}

// flush sends rejects to the dead-letter topic, closes the batch's files and
// commits them with the batch's position.
func (w *Writer) flush(ctx context.Context, t *table.Table, b *batch) (*table.Table, error) {
	if !b.dirty {
		return t, nil
	}
	if len(b.dead) > 0 {
		if err := w.dlq.WriteMessages(ctx, b.dead...); err != nil {
			return t, fmt.Errorf("dead-letter %d records: %w", len(b.dead), err)
		}
	}
	files, err := w.writeFiles(b)
	if err != nil {
		return t, err
	}
	if len(files) == 0 {
		// Nothing to add (only duplicates or rejects): the position is
		// carried by the next commit that has data.
		b.dirty = false
		return t, nil
	}
	b.next.Batch++
	snap, err := w.lake.Commit(ctx, w.schema.Table, files, b.next)
	if err != nil {
		for _, df := range files {
			removeLocal(df.FilePath())
		}
		return t, err
	}
	b.next.SnapshotID = snap
	b.dirty = false
	w.Stats.Rows.Add(b.rows)
	w.Stats.Commits.Add(1)
	w.Stats.LastCommit.Store(time.Now().UnixMilli())
	w.log.Debug("committed", "snapshot", snap, "rows", b.rows, "files", len(files))
	if w.OnCommit != nil {
		w.OnCommit(ctx, w.schema.Table, snap)
	}
	return w.lake.Load(ctx, w.schema.Table)
}
