package connectors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/internal/broker"
	"citybrain/schemas"
)

// Reparser is implemented by transports that can map a dead letter's raw
// bytes again (after its mapping was fixed): stream is the stream it came from.
type Reparser interface {
	Reparse(raw []byte, stream string) (schemas.Record, error)
}

// Checker is implemented by transports that can tell, without reading,
// whether their source is reachable and configured right.
type Checker interface {
	Check(ctx context.Context) error
}

// DeadLetter is one record of dlq.<source>.
type DeadLetter struct {
	Offset int64
	Cursor Cursor
	Reason string
	Raw    []byte
	Time   time.Time
}

// ReadDeadLetters returns every record in dlq.<source>, oldest first.
func ReadDeadLetters(ctx context.Context, c *broker.Client, source string) ([]DeadLetter, error) {
	topic := DLQTopic(source)
	ends, err := c.EndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	starts, err := c.StartOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	for p, end := range ends {
		if end <= starts[p] {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.Brokers, Topic: topic, Partition: p, MaxWait: 200 * time.Millisecond})
		if err := r.SetOffset(starts[p]); err != nil {
			r.Close()
			return nil, err
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("read %s/%d: %w", topic, p, err)
			}
			dl := DeadLetter{Offset: m.Offset, Raw: m.Value, Time: m.Time}
			for _, h := range m.Headers {
				switch h.Key {
				case HeaderCursor:
					dl.Cursor, _ = ParseCursor(string(h.Value))
				case HeaderReason:
					dl.Reason = string(h.Value)
				}
			}
			out = append(out, dl)
			if m.Offset+1 >= end {
				break
			}
		}
		r.Close()
	}
	return out, nil
}

// ReplayStream is the stream a replayed dead letter is produced under: one
// stream per dead letter (its original cursor), position 1, so the lake
// writer takes each replayed record exactly once however often replay runs,
// independently of the original stream's position (which has moved past it).
func ReplayStream(c Cursor) string { return "replay:" + c.String() }

// ReplayResult counts a replay.
type ReplayResult struct {
	Replayed, StillFailing int
	Reasons                map[string]int
}

// Replay maps every dead letter of a source again and produces those that
// now map to raw.<source>. Those still failing stay in dlq.<source> (they
// are not re-added). Records already replayed are produced again but the
// lake drops them by cursor, so a replay is exactly once in the lake.
func Replay(ctx context.Context, c *broker.Client, source string, s *schemas.Schema, rp Reparser, p *Producer) (ReplayResult, error) {
	res := ReplayResult{Reasons: map[string]int{}}
	dead, err := ReadDeadLetters(ctx, c, source)
	if err != nil {
		return res, err
	}
	var good []Record
	for _, d := range dead {
		if d.Cursor.Stream == "" {
			res.StillFailing++
			res.Reasons["no cursor header"]++
			continue
		}
		rec, err := rp.Reparse(d.Raw, d.Cursor.Stream)
		if err == nil {
			err = s.Validate(rec)
		}
		if err != nil {
			res.StillFailing++
			res.Reasons[err.Error()]++
			continue
		}
		good = append(good, Record{Cursor: Cursor{Stream: ReplayStream(d.Cursor), Pos: 1}, Values: rec})
	}
	if len(good) > 0 {
		if err := p.emitGood(ctx, good); err != nil {
			return res, err
		}
	}
	res.Replayed = len(good)
	return res, nil
}

// emitGood produces good records without touching the checkpoint (replays
// are not positions of the feed).
func (p *Producer) emitGood(ctx context.Context, recs []Record) error {
	for start := 0; start < len(recs); start += p.chunk {
		part := recs[start:min(start+p.chunk, len(recs))]
		for _, r := range part {
			if r.Err != nil {
				return errors.New("emitGood: reject in good records")
			}
		}
		msgs := p.messages(part)
		if err := p.raw.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("produce %d replayed records to %s: %w", len(msgs), RawTopic(p.source), err)
		}
	}
	return nil
}
