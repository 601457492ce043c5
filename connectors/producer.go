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
func Resume(ctx context.Context, c *broker.Client, source string, cp Checkpoint, lake LakePositions, log *slog.Logger) (Checkpoint, error) {
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
	// Counters, for progress and status.
	Good, Rejected int64
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

// messages encodes good records as raw.<source> messages.
func (p *Producer) messages(recs []Record) []kafka.Message {
	schemaHdr := []byte(p.schema.Name + ".v" + strconv.Itoa(p.schema.Version))
	src := []byte(p.source)
	out := make([]kafka.Message, 0, len(recs))
	for _, r := range recs {
		out = append(out, kafka.Message{Key: []byte(r.Cursor.Stream), Value: p.schema.Encode(nil, r.Values), Headers: []kafka.Header{
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
