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
	"net/url"
	"strconv"
	"strings"

	"citybrain/schemas"
)

// Cursor is a position in a source. Stream names a sequence (a file, an
// API endpoint, a table); Pos numbers the records of the stream and only
// grows (a file's line, or a sequence the transport assigns), which is what
// the lake de-duplicates on; Token is the transport's opaque resume state
// after this record (an API page token, a database watermark and key) for
// transports that cannot resume from Pos alone.
type Cursor struct {
	Stream string `json:"stream"`
	Pos    int64  `json:"pos"`
	Token  string `json:"token,omitempty"`
}

// String renders "stream#pos" or "stream#pos!token" (token query-escaped),
// the form stored in the cb-cursor header and the lake's _cursor column.
func (c Cursor) String() string {
	s := c.Stream + "#" + strconv.FormatInt(c.Pos, 10)
	if c.Token != "" {
		s += "!" + url.QueryEscape(c.Token)
	}
	return s
}

// ParseCursor parses the String form.
func ParseCursor(s string) (Cursor, bool) {
	i := strings.LastIndexByte(s, '#')
	if i < 0 {
		return Cursor{}, false
	}
	rest, token := s[i+1:], ""
	if j := strings.IndexByte(rest, '!'); j >= 0 {
		t, err := url.QueryUnescape(rest[j+1:])
		if err != nil {
			return Cursor{}, false
		}
		rest, token = rest[:j], t
	}
	p, err := strconv.ParseInt(rest, 10, 64)
	if err != nil {
		return Cursor{}, false
	}
	return Cursor{Stream: s[:i], Pos: p, Token: token}, true
}

// Positions are stream → the last cursor done.
type Positions map[string]Cursor

// Advance raises the position of c.Stream to c if that is further.
func (p Positions) Advance(c Cursor) {
	if cur, ok := p[c.Stream]; !ok || c.Pos > cur.Pos {
		p[c.Stream] = c
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
