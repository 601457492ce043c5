// Package connectors pulls department feeds into Kafka.
//
// A connector is a transport (one package each: file, …) that reads a feed
// and emits Records in cursor order, plus a mapping (package mapping) that
// turns each row into a canonical record or a reject. The Producer writes
// records to raw.<source> and rejects to dlq.<source>, each with its source
// cursor in a header, and checkpoints the cursor only after the broker
// acknowledged them. Resume finds where to continue after a crash or a
// replaced broker: the checkpoint, the tail of the topic, or — if the
// broker's cluster changed — what the lake has committed.
package connectors

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"citybrain/schemas"
)

// Cursor is a position in a source: Stream names a sequence (a file, an API
// endpoint, a table) and Pos the position in it (line, page, watermark).
// Positions within a stream only grow.
type Cursor struct {
	Stream string
	Pos    int64
}

// String renders "stream#pos", the form stored in the cb-cursor header and
// the lake's _cursor column.
func (c Cursor) String() string { return c.Stream + "#" + strconv.FormatInt(c.Pos, 10) }

// ParseCursor parses the String form.
func ParseCursor(s string) (Cursor, bool) {
	i := strings.LastIndexByte(s, '#')
	if i < 0 {
		return Cursor{}, false
	}
	p, err := strconv.ParseInt(s[i+1:], 10, 64)
	if err != nil {
		return Cursor{}, false
	}
	return Cursor{Stream: s[:i], Pos: p}, true
}

// Positions are stream → last position done.
type Positions map[string]int64

// Advance raises the position of c.Stream to c.Pos if that is further.
func (p Positions) Advance(c Cursor) {
	if cur, ok := p[c.Stream]; !ok || c.Pos > cur {
		p[c.Stream] = c.Pos
	}
}

// Record is one row read from a feed: a canonical record, or a reject with
// the reason and the original bytes.
type Record struct {
	Cursor Cursor
	Values schemas.Record
	// Raw is the row as the feed sent it (set for rejects, optional otherwise).
	Raw []byte
	// Err says why the row was rejected; nil for good records.
	Err error
}

// Emit receives records in cursor order. It returns only once they are
// durable (acknowledged by the broker); an error stops the source.
type Emit func(ctx context.Context, batch []Record) error

// Source is a transport reading one feed.
type Source interface {
	// Read emits every record after the positions in from, in cursor order,
	// in batches, and returns nil when the feed has nothing more for now.
	// It returns ctx.Err() when cancelled, and the error of emit as is.
	// Transport errors that retrying cannot fix (a missing file, bad
	// credentials) are returned wrapped in ErrPermanent.
	Read(ctx context.Context, from Positions, emit Emit) error
}

// ErrPermanent marks source errors that retrying will not fix.
var ErrPermanent = errors.New("permanent source error")

// Headers of records in raw.* and dlq.* topics.
const (
	HeaderCursor = "cb-cursor"
	HeaderSource = "cb-source"
	HeaderSchema = "cb-schema"
	HeaderReason = "cb-reason"
)

// Topic names.
func RawTopic(source string) string { return "raw." + source }

// DLQTopic is the dead-letter topic of a source.
func DLQTopic(source string) string { return "dlq." + source }
