package connectors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"citybrain/internal/broker"
	"citybrain/schemas"
)

// Reparser is implemented by transports that can map a dead letter's raw
// bytes again (after its mapping was fixed): at is the letter's original
// cursor (its stream, and its position, which tells which record of a wide
// row it was).
type Reparser interface {
	Reparse(raw []byte, at Cursor) (schemas.Record, error)
}

// Checker is implemented by transports that can tell, without reading,
// whether their source is reachable and configured right.
type Checker interface {
	Check(ctx context.Context) error
}

// DeadLetter is one record of dlq.<source>.
type DeadLetter struct {
	Partition int
	Offset    int64
	Cursor    Cursor
	Reason    string
	Raw       []byte
	Time      time.Time
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
			dl := DeadLetter{Partition: p, Offset: m.Offset, Raw: m.Value, Time: m.Time}
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

// Replays are kept O(1) in the lake's bookkeeping and visible:
//
//   - A replayed record is produced under one stream per dead-letter
//     partition, "replay:dlq.<source>/<p>", at the dead letter's own offset,
//     with its original cursor as the cursor's token (so `_cursor` still
//     names the file and line). The lake writer keeps one position per
//     stream, whatever the number of replayed rows; a replay that is run
//     again produces the same cursors, which the lake drops.
//   - Each replay reads the letters from where the last one stopped (the
//     replay log, topic replays.<source>), re-queues those still failing at
//     the end of dlq.<source> (new, higher offsets: a later replay that
//     passes them is not below the stream's position) and appends what it
//     did to the log. `dlq list` and `dlq show` read the log: pending
//     letters, and which were replayed or re-queued, and when.
//
// A crash between producing and logging makes the next replay read the
// same letters again: records already in are dropped by cursor, letters
// still failing are re-queued once more (a dead letter is at-least-once;
// pending letters are counted once per original cursor).

// ReplayStream is the stream records replayed from one dead-letter
// partition are produced under.
func ReplayStream(source string, partition int) string {
	return "replay:" + DLQTopic(source) + "/" + strconv.Itoa(partition)
}

// ReplayTopic is the replay log of a source.
func ReplayTopic(source string) string { return "replays." + source }

// OriginalCursor is the cursor a record had at its source: a replayed
// record's cursor carries it as its token ("replay:<cursor>" in older lakes).
func OriginalCursor(c Cursor) Cursor {
	if !strings.HasPrefix(c.Stream, "replay:") {
		return c
	}
	if c.Token != "" {
		if o, ok := ParseCursor(c.Token); ok {
			return o
		}
	}
	if o, ok := ParseCursor(strings.TrimPrefix(c.String(), "replay:")); ok && !strings.HasPrefix(o.Stream, "dlq.") {
		return o
	}
	return c
}

// ReplayEntry is one replay, as logged in replays.<source>.
type ReplayEntry struct {
	At time.Time `json:"at"`
	// From and Through are the dead-letter offsets read, per partition:
	// [From, Through).
	From    map[int]int64 `json:"from"`
	Through map[int]int64 `json:"through"`
	// Replayed are the letters (partition → offset ranges, inclusive)
	// written to raw.<source>; Requeued those still failing, re-queued at
	// the end of dlq.<source>.
	Replayed map[int][][2]int64 `json:"replayed"`
	Requeued map[int][][2]int64 `json:"requeued"`
	Reasons  map[string]int     `json:"reasons,omitempty"`
}

// ReadReplayLog returns a source's replays, oldest first (none if it never
// replayed).
func ReadReplayLog(ctx context.Context, c *broker.Client, source string) ([]ReplayEntry, error) {
	topic := ReplayTopic(source)
	parts, err := c.Partitions(ctx, topic)
	if err != nil || len(parts[topic]) == 0 {
		return nil, err
	}
	var out []ReplayEntry
	err = readTopic(ctx, c, topic, nil, func(m kafka.Message) {
		var e ReplayEntry
		if json.Unmarshal(m.Value, &e) == nil {
			out = append(out, e)
		}
	})
	return out, err
}

// readTopic calls fn for every record of topic from the offsets from
// (default: the start) to the current end.
func readTopic(ctx context.Context, c *broker.Client, topic string, from map[int]int64, fn func(kafka.Message)) error {
	ends, err := c.EndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	starts, err := c.StartOffsets(ctx, topic)
	if err != nil {
		return err
	}
	for p, end := range ends {
		start := max(starts[p], from[p])
		if end <= start {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.Brokers, Topic: topic, Partition: p, MaxWait: 200 * time.Millisecond})
		if err := r.SetOffset(start); err != nil {
			r.Close()
			return err
		}
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				r.Close()
				return fmt.Errorf("read %s/%d: %w", topic, p, err)
			}
			fn(m)
			if m.Offset+1 >= end {
				break
			}
		}
		r.Close()
	}
	return nil
}

// Letters is a source's dead letters with what replays did to them.
type Letters struct {
	// Pending are the letters no replay has taken yet (one per original
	// cursor: the latest), oldest first.
	Pending []DeadLetter
	// All is every letter in dlq.<source>.
	All []DeadLetter
	// Log is the replays, oldest first.
	Log []ReplayEntry
	// Through is where the next replay starts, per partition.
	Through map[int]int64
}

// Fate says what replays did with the letter at partition p, offset off:
// "replayed <time>", "still failing, re-queued <time>", or "" (pending).
func (l Letters) Fate(p int, off int64) string {
	in := func(rs [][2]int64) bool {
		for _, r := range rs {
			if off >= r[0] && off <= r[1] {
				return true
			}
		}
		return false
	}
	for i := len(l.Log) - 1; i >= 0; i-- {
		e := l.Log[i]
		at := e.At.Local().Format("2006-01-02 15:04:05")
		if in(e.Replayed[p]) {
			return "replayed 已重放 " + at
		}
		if in(e.Requeued[p]) {
			return "still failing, re-queued 仍失败，已重新排队 " + at
		}
	}
	return ""
}

// addRange adds off to ranges kept in ascending order.
func addRange(rs [][2]int64, off int64) [][2]int64 {
	if n := len(rs); n > 0 && rs[n-1][1] == off-1 {
		rs[n-1][1] = off
		return rs
	}
	return append(rs, [2]int64{off, off})
}

// ReadLetters reads a source's dead letters and replay log.
func ReadLetters(ctx context.Context, c *broker.Client, source string) (Letters, error) {
	var l Letters
	var err error
	if l.Log, err = ReadReplayLog(ctx, c, source); err != nil {
		return l, err
	}
	l.Through = map[int]int64{}
	for _, e := range l.Log {
		for p, o := range e.Through {
			l.Through[p] = max(l.Through[p], o)
		}
	}
	if l.All, err = ReadDeadLetters(ctx, c, source); err != nil {
		return l, err
	}
	latest := map[string]int{} // original cursor → index in Pending
	for _, d := range l.All {
		if d.Offset < l.Through[d.Partition] {
			continue
		}
		key := d.Cursor.String()
		if d.Cursor.Stream == "" {
			key = fmt.Sprintf("#%d/%d", d.Partition, d.Offset)
		}
		if i, ok := latest[key]; ok {
			l.Pending[i] = d
			continue
		}
		latest[key] = len(l.Pending)
		l.Pending = append(l.Pending, d)
	}
	return l, nil
}

// ReplayResult counts a replay.
type ReplayResult struct {
	Replayed, StillFailing int
	Reasons                map[string]int
}

// Replay maps the pending dead letters of a source again (see the comment
// above ReplayStream), produces those that now map to raw.<source>,
// re-queues those still failing, and logs the replay.
func Replay(ctx context.Context, c *broker.Client, source string, s *schemas.Schema, rp Reparser, p *Producer) (ReplayResult, error) {
	res := ReplayResult{Reasons: map[string]int{}}
	if err := c.EnsureTopics(ctx, ReplayTopic(source)); err != nil {
		return res, err
	}
	letters, err := ReadLetters(ctx, c, source)
	if err != nil {
		return res, err
	}
	// The next replay starts after the letters read now (not at the
	// topic's end: letters may arrive meanwhile).
	entry := ReplayEntry{At: time.Now().UTC(), From: letters.Through, Through: map[int]int64{},
		Replayed: map[int][][2]int64{}, Requeued: map[int][][2]int64{}}
	for pt, o := range letters.Through {
		entry.Through[pt] = o
	}
	for _, d := range letters.All {
		entry.Through[d.Partition] = max(entry.Through[d.Partition], d.Offset+1)
	}
	var good []Record
	var failing []DeadLetter
	var failReasons []string
	for _, d := range letters.Pending {
		orig := OriginalCursor(d.Cursor)
		var rec schemas.Record
		err := errors.New("no cursor header / 缺少游标")
		if orig.Stream != "" {
			if rec, err = rp.Reparse(d.Raw, orig); err == nil {
				err = s.Validate(rec)
			}
		}
		if err != nil {
			res.StillFailing++
			res.Reasons[err.Error()]++
			failing = append(failing, d)
			failReasons = append(failReasons, err.Error())
			entry.Requeued[d.Partition] = addRange(entry.Requeued[d.Partition], d.Offset)
			continue
		}
		good = append(good, Record{Cursor: Cursor{Stream: ReplayStream(source, d.Partition), Pos: d.Offset, Token: orig.String()}, Values: rec})
		entry.Replayed[d.Partition] = addRange(entry.Replayed[d.Partition], d.Offset)
	}
	// Records in offset order per partition: the lake keeps each stream's
	// highest position.
	sort.SliceStable(good, func(i, j int) bool {
		return good[i].Cursor.Stream < good[j].Cursor.Stream || good[i].Cursor.Stream == good[j].Cursor.Stream && good[i].Cursor.Pos < good[j].Cursor.Pos
	})
	if len(good) > 0 {
		if err := p.emitGood(ctx, good); err != nil {
			return res, err
		}
	}
	if len(failing) > 0 {
		msgs := make([]kafka.Message, len(failing))
		for i, d := range failing {
			msgs[i] = kafka.Message{Key: []byte(d.Cursor.Stream), Value: d.Raw, Headers: []kafka.Header{
				{Key: HeaderCursor, Value: []byte(d.Cursor.String())}, {Key: HeaderSource, Value: []byte(source)},
				{Key: HeaderReason, Value: []byte(failReasons[i])}}}
		}
		if err := p.dlq.WriteMessages(ctx, msgs...); err != nil {
			return res, fmt.Errorf("re-queue %d dead letters: %w", len(msgs), err)
		}
	}
	entry.Reasons = res.Reasons
	b, err := json.Marshal(entry)
	if err != nil {
		return res, err
	}
	lw := c.Writer(ReplayTopic(source))
	defer lw.Close()
	if err := lw.WriteMessages(ctx, kafka.Message{Value: b}); err != nil {
		return res, fmt.Errorf("log the replay in %s: %w", ReplayTopic(source), err)
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
			return fmt.Errorf("produce %d replayed records to %s: %w", len(msgs), RawTopic(p.source), broker.Explain(err, p.dataDir))
		}
	}
	return nil
}
