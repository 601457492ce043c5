package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/internal/broker"
	"citybrain/schemas"
)

// Checkpoint is a source's durable progress, kept in
// <data>/connectors/<source>.json and replaced atomically.
type Checkpoint struct {
	Cluster   string    `json:"cluster"`
	Positions Positions `json:"positions"`
	// Produced counts the records this source wrote to raw.<source> on
	// Cluster. A topic that holds fewer has lost its log (the broker's log
	// directory was deleted or the topic recreated, same cluster id).
	Produced int64 `json:"produced"`

	// tails are, for a topic keyed by a field (schemas.Schema.RouteBy), the
	// highest cursor per stream in the last produce request's worth of each
	// partition (Resume): a chunk is written to several partitions, and a
	// crash in its write leaves some of them written; on the re-read the
	// producer skips what its partition already holds. parts is the topic's
	// partition count.
	tails map[int]Positions
	parts int
}

func checkpointPath(dataDir, source string) string {
	return filepath.Join(dataDir, "connectors", source+".json")
}

// LoadCheckpoint reads a source's checkpoint (empty if none).
func LoadCheckpoint(dataDir, source string) (Checkpoint, error) {
	cp := Checkpoint{Positions: Positions{}}
	b, err := os.ReadFile(checkpointPath(dataDir, source))
	if errors.Is(err, os.ErrNotExist) {
		return cp, nil
	}
	if err != nil {
		return cp, fmt.Errorf("read checkpoint of %s: %w", source, err)
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		return cp, fmt.Errorf("checkpoint of %s is corrupt (%v): delete %s to resume from the topic and the lake", source, err, checkpointPath(dataDir, source))
	}
	if cp.Positions == nil {
		cp.Positions = Positions{}
	}
	return cp, nil
}

// Save writes the checkpoint atomically (write, fsync, rename).
func (cp Checkpoint) Save(dataDir, source string) error {
	path := checkpointPath(dataDir, source)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	f.Close()
	return os.Rename(tmp, path)
}

// LakePositions returns the highest cursor per stream that the lake has
// committed for a source's table.
type LakePositions func(ctx context.Context) (Positions, error)

// Resume decides where a source continues. On the broker the checkpoint
// was written against, that is the furthest of the checkpoint and the last
// cursor in the raw topic (the producer writes in order, so the topic holds
// a prefix of the feed). If the broker's cluster id changed — a wiped or
// replaced broker — records acknowledged by the old one but not yet in the
// lake would be lost, so the source restarts from what the lake committed;
// the lake writer drops what it already has by cursor. The same holds when
// the cluster id is unchanged but the raw topic holds fewer records than
// the source produced to it (its log was lost).
//
// routed is set for a schema keyed by a field (RouteBy): see partitionTails.
func Resume(ctx context.Context, c *broker.Client, source string, cp Checkpoint, lake LakePositions, log *slog.Logger, routed bool) (Checkpoint, error) {
	cluster, err := c.ClusterID(ctx)
	if err != nil {
		return cp, err
	}
	ends, err := c.EndOffsets(ctx, RawTopic(source))
	if err != nil {
		return cp, err
	}
	var held int64
	for _, e := range ends {
		held += e
	}
	from := Positions{}
	fromLake := func(why string, args ...any) (Checkpoint, error) {
		lp, err := lake(ctx)
		if err != nil {
			return cp, fmt.Errorf("%s, and the lake position of %s cannot be read: %w", why, source, err)
		}
		log.Warn(why+": resuming from the lake's committed position; records the broker held but the lake had not committed are re-read from the feed",
			append([]any{"source", source, "streams", len(lp)}, args...)...)
		for s, p := range lp {
			from[s] = p
		}
		return Checkpoint{Cluster: cluster, Positions: from, Produced: held}, nil
	}
	if cp.Cluster != "" && cp.Cluster != cluster {
		return fromLake("broker cluster changed 消息代理集群已变更", "old_cluster", cp.Cluster, "cluster", cluster)
	}
	if held < cp.Produced {
		return fromLake("the broker lost its log 消息代理日志丢失 (same cluster id; the raw topic holds fewer records than were produced)",
			"topic", RawTopic(source), "holds", held, "produced", cp.Produced)
	}
	for s, p := range cp.Positions {
		from[s] = p
	}
	parts, err := c.Partitions(ctx, RawTopic(source))
	if err != nil {
		return cp, err
	}
	if routed {
		// A chunk goes to several partitions: the topic's tail is not a
		// prefix of the feed. Resume from the checkpoint (written after the
		// whole chunk was acknowledged) and skip, on the way, what each
		// partition already holds (tails).
		// Without a checkpoint (a lost data directory, the broker kept) the
		// feed is read again from its start: look at the whole partitions.
		window := int64(maxChunk)
		if len(cp.Positions) == 0 {
			window = -1
		}
		tails, err := partitionTails(ctx, c, RawTopic(source), parts[RawTopic(source)], window)
		if err != nil {
			return cp, err
		}
		return Checkpoint{Cluster: cluster, Positions: from, Produced: cp.Produced, tails: tails, parts: len(parts[RawTopic(source)])}, nil
	}
	for _, p := range parts[RawTopic(source)] {
		m, ok, err := c.LastMessage(ctx, RawTopic(source), p)
		if err != nil {
			return cp, err
		}
		if !ok {
			continue
		}
		for _, h := range m.Headers {
			if h.Key == HeaderCursor {
				if cur, ok := ParseCursor(string(h.Value)); ok {
					from.Advance(cur)
				}
			}
		}
	}
	return Checkpoint{Cluster: cluster, Positions: from, Produced: cp.Produced}, nil
}

// partitionTails reads, in each partition, the last window records (one
// produce request's worth: maxChunk; -1: all) and keeps the highest cursor
// per stream.
func partitionTails(ctx context.Context, c *broker.Client, topic string, parts []int, window int64) (map[int]Positions, error) {
	starts, err := c.StartOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends, err := c.EndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := map[int]Positions{}
	for _, p := range parts {
		end := ends[p]
		from := starts[p]
		if window >= 0 {
			from = max(starts[p], end-window)
		}
		if from >= end {
			continue
		}
		pos := Positions{}
		rctx, cancel := context.WithCancel(ctx)
		err := c.ReadPartition(rctx, topic, p, from, 8<<20, 500*time.Millisecond, func(msgs []kafka.Message) error {
			for _, m := range msgs {
				for _, h := range m.Headers {
					if h.Key == HeaderCursor {
						if cur, ok := ParseCursor(string(h.Value)); ok {
							pos.Advance(cur)
						}
					}
				}
				if m.Offset+1 >= end {
					cancel()
				}
			}
			return nil
		})
		cancel()
		if err != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("read the tail of %s/%d: %w", topic, p, err)
		}
		out[p] = pos
	}
	return out, nil
}

// Producer writes a source's records to raw.<source> and rejects to
// dlq.<source>, then checkpoints.
type Producer struct {
	source  string
	schema  *schemas.Schema
	dataDir string
	raw     *kafka.Writer
	dlq     *kafka.Writer
	cp      Checkpoint
	chunk   int
	// Counters, for progress and status. Skipped counts the records of a
	// re-read chunk their partition already held (keyed topics).
	Good, Rejected, Skipped int64
}

// maxChunk keeps each write within one kafka-go batch, so that a write is
// one produce request and writes are never reordered by retries.
const maxChunk = 10000

// NewProducer returns a producer; cp is the checkpoint Resume started from,
// with cluster set to the broker's cluster id.
func NewProducer(c *broker.Client, source string, s *schemas.Schema, dataDir string, cp Checkpoint) *Producer {
	return &Producer{source: source, schema: s, dataDir: dataDir, cp: cp,
		raw: c.Writer(RawTopic(source)), dlq: c.Writer(DLQTopic(source)), chunk: maxChunk}
}

// Close flushes and closes the writers.
func (p *Producer) Close() error {
	return errors.Join(p.raw.Close(), p.dlq.Close())
}

// Emit implements Emit: rejects first, then good records, in chunks that
// each fit one produce request; then the checkpoint. A crash between the two
// writes re-sends that chunk's rejects on restart (dead letters are
// at-least-once, deduplicated by their cursor); good records are never
// duplicated in the lake.
func (p *Producer) Emit(ctx context.Context, batch []Record) error {
	for start := 0; start < len(batch); start += p.chunk {
		part := batch[start:min(start+p.chunk, len(batch))]
		if err := p.emitChunk(ctx, part); err != nil {
			return err
		}
	}
	return nil
}

// routeKey is the Kafka key of a record keyed by a field's value.
func routeKey(v any) []byte {
	switch x := v.(type) {
	case string:
		return []byte(x)
	case nil:
		return nil
	default:
		return []byte(fmt.Sprint(x))
	}
}

// skipWritten drops the records of a re-read chunk that their partition
// already holds (a keyed topic after a crash in a write: see tails).
func (p *Producer) skipWritten(recs []Record) []Record {
	if len(p.cp.tails) == 0 || p.cp.parts == 0 {
		return recs
	}
	ri := p.schema.RouteIndex()
	parts := make([]int, p.cp.parts)
	for i := range parts {
		parts[i] = i
	}
	out := recs[:0:0]
	for _, r := range recs {
		part := (&kafka.Hash{}).Balance(kafka.Message{Key: routeKey(r.Values[ri])}, parts...)
		if held, ok := p.cp.tails[part][r.Cursor.Stream]; ok && r.Cursor.Pos <= held.Pos {
			p.Skipped++
			continue
		}
		out = append(out, r)
	}
	return out
}

// messages encodes good records as raw.<source> messages.
func (p *Producer) messages(recs []Record) []kafka.Message {
	schemaHdr := []byte(p.schema.Name + ".v" + strconv.Itoa(p.schema.Version))
	src := []byte(p.source)
	out := make([]kafka.Message, 0, len(recs))
	ri := p.schema.RouteIndex()
	for _, r := range recs {
		key := []byte(r.Cursor.Stream)
		if ri >= 0 {
			key = routeKey(r.Values[ri])
		}
		out = append(out, kafka.Message{Key: key, Value: p.schema.Encode(nil, r.Values), Headers: []kafka.Header{
			{Key: HeaderCursor, Value: []byte(r.Cursor.String())}, {Key: HeaderSource, Value: src}, {Key: HeaderSchema, Value: schemaHdr},
		}})
	}
	return out
}

func (p *Producer) emitChunk(ctx context.Context, part []Record) error {
	var dead []kafka.Message
	good := make([]Record, 0, len(part))
	src := []byte(p.source)
	for _, r := range part {
		if r.Err != nil {
			dead = append(dead, kafka.Message{Key: []byte(r.Cursor.Stream), Value: r.Raw, Headers: []kafka.Header{
				{Key: HeaderCursor, Value: []byte(r.Cursor.String())}, {Key: HeaderSource, Value: src}, {Key: HeaderReason, Value: []byte(r.Err.Error())},
			}})
			continue
		}
		good = append(good, r)
	}
	if len(dead) > 0 {
		if err := p.dlq.WriteMessages(ctx, dead...); err != nil {
			return fmt.Errorf("produce %d rejects to %s: %w", len(dead), DLQTopic(p.source), broker.Explain(err, p.dataDir))
		}
	}
	good = p.skipWritten(good)
	if len(good) > 0 {
		if err := p.raw.WriteMessages(ctx, p.messages(good)...); err != nil {
			return fmt.Errorf("produce %d records to %s: %w", len(good), RawTopic(p.source), broker.Explain(err, p.dataDir))
		}
		p.cp.Produced += int64(len(good))
	}
	for _, r := range part {
		p.cp.Positions.Advance(r.Cursor)
	}
	p.Good += int64(len(good))
	p.Rejected += int64(len(dead))
	return p.cp.Save(p.dataDir, p.source)
}
