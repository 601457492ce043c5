package file

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"citybrain/connectors"
)

// recordReader splits a delimited file into logical records — one physical
// line, or several when a quoted field holds line breaks — and keeps each
// record's raw bytes and first line number, so a malformed record can be
// sent to the dead-letter topic as it was and the rest of the file still
// ingests. A record whose quotes never balance within maxRecordLines lines
// is reported alone (its first line), and reading resumes on the next line.
//
// With max > 0, a record longer than max bytes is returned truncated to max
// bytes with over set to its full size, and the rest of it is skipped
// without being kept in memory.
type recordReader struct {
	br      *bufio.Reader
	line    int64 // physical lines consumed so far
	pending [][]byte
	eof     bool
	max     int   // longest record kept whole; 0: no limit
	over    int64 // size of the last record returned if it exceeded max, else 0
	noCR    bool  // a lone \r is not a line break (JSON lines)
}

const maxRecordLines = 64

func newRecordReader(r io.Reader) *recordReader {
	return &recordReader{br: bufio.NewReaderSize(r, 1<<20)}
}

// next returns the next logical record without its line terminator, its
// first line number (1-based), and io.EOF at the end. A non-nil unbalanced
// reports a record whose quotes never closed.
func (rr *recordReader) next() (raw []byte, line int64, unbalanced bool, err error) {
	rr.over = 0
	first, over, err := rr.physical()
	if err != nil {
		return nil, 0, false, err
	}
	line = rr.line
	if over > 0 {
		rr.over = over
		return first, line, false, nil
	}
	if bytes.Count(first, []byte{'"'})%2 == 0 {
		return first, line, false, nil
	}
	lines := [][]byte{first}
	size := int64(len(first))
	quotes := bytes.Count(first, []byte{'"'})
	for len(lines) < maxRecordLines {
		l, over, err := rr.physical()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, false, err
		}
		lines = append(lines, l)
		if over > 0 {
			size += 1 + over
		} else {
			size += 1 + int64(len(l))
			quotes += bytes.Count(l, []byte{'"'})
		}
		if over > 0 || (rr.max > 0 && size > int64(rr.max)) {
			// Too long: the record is reported as such, whatever its quotes.
			raw := bytes.Join(lines, []byte{'\n'})
			rr.over = max(size, int64(len(raw)))
			return raw[:rr.max], line, false, nil
		}
		if quotes%2 == 0 {
			return bytes.Join(lines, []byte{'\n'}), line, false, nil
		}
	}
	// Give back all but the first line.
	rr.pending = append(lines[1:], rr.pending...)
	rr.line -= int64(len(lines) - 1)
	return first, line, true, nil
}

// physical returns one physical line (without \n, \r\n or a lone \r). A
// line longer than rr.max comes back truncated to rr.max bytes with its
// full length as over (its lone \r are then not line breaks).
func (rr *recordReader) physical() ([]byte, int64, error) {
	if len(rr.pending) > 0 {
		l := rr.pending[0]
		rr.pending = rr.pending[1:]
		rr.line++
		return l, 0, nil
	}
	if rr.eof {
		return nil, 0, io.EOF
	}
	var out []byte
	var n int64 // bytes of the line, terminator included
	var last2 [2]byte
	for {
		b, err := rr.br.ReadSlice('\n')
		n += int64(len(b))
		if rr.max <= 0 || len(out) < rr.max+2 {
			keep := b
			if rr.max > 0 && len(out)+len(keep) > rr.max+2 {
				keep = keep[:rr.max+2-len(out)]
			}
			out = append(out, keep...)
		}
		for _, c := range b[max(0, len(b)-2):] {
			last2[0], last2[1] = last2[1], c
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			rr.eof = true
			if n == 0 {
				return nil, 0, io.EOF
			}
			break
		}
		if err != nil {
			return nil, 0, err
		}
		break
	}
	rr.line++
	if int64(len(out)) < n { // truncated
		size := n
		if last2[1] == '\n' {
			size--
			if last2[0] == '\r' {
				size--
			}
		}
		if size > int64(rr.max) {
			return out[:rr.max], size, nil
		}
		out = out[:size]
	}
	out = bytes.TrimSuffix(out, []byte{'\n'})
	out = bytes.TrimSuffix(out, []byte{'\r'})
	if rr.max > 0 && len(out) > rr.max {
		return out[:rr.max], int64(len(out)), nil
	}
	// Old Mac line ends: a lone \r inside is a line break too.
	if i := bytes.IndexByte(out, '\r'); i >= 0 && !rr.noCR && bytes.Count(out, []byte{'"'})%2 == 0 {
		rest := bytes.Split(out[i+1:], []byte{'\r'})
		rr.pending = append(rest, rr.pending...)
		out = out[:i]
	}
	return out, 0, nil
}

var errQuote = errors.New("bare or unclosed quote / 引号不匹配")

// splitFields splits one record into fields (RFC 4180 quoting with the
// given delimiter). Quoted fields may contain the delimiter, doubled quotes
// and line breaks.
func splitFields(rec []byte, delim byte, dst []string) ([]string, error) {
	dst = dst[:0]
	i := 0
	for {
		if i < len(rec) && rec[i] == '"' {
			var sb []byte
			j := i + 1
			for {
				k := bytes.IndexByte(rec[j:], '"')
				if k < 0 {
					return nil, fmt.Errorf("field %d: %w", len(dst)+1, errQuote)
				}
				sb = append(sb, rec[j:j+k]...)
				j += k + 1
				if j < len(rec) && rec[j] == '"' {
					sb = append(sb, '"')
					j++
					continue
				}
				break
			}
			dst = append(dst, string(sb))
			if j == len(rec) {
				return dst, nil
			}
			if rec[j] != delim {
				return nil, fmt.Errorf("field %d: text after closing quote: %w", len(dst), errQuote)
			}
			i = j + 1
			continue
		}
		k := bytes.IndexByte(rec[i:], delim)
		var f []byte
		if k < 0 {
			f = rec[i:]
		} else {
			f = rec[i : i+k]
		}
		if bytes.IndexByte(f, '"') >= 0 {
			return nil, fmt.Errorf("field %d: %w", len(dst)+1, errQuote)
		}
		dst = append(dst, string(f))
		if k < 0 {
			return dst, nil
		}
		i += k + 1
	}
}

// csvRows reads the records of a delimited file.
type csvRows struct {
	f       *os.File
	counter *countingReader
	rr      *recordReader
	delim   byte
	after   int64
	max     int
	fields  []string
}

// openCSV opens a delimited file and reads its header line if it has one.
func (s *Source) openCSV(path string, after int64) (opened, error) {
	f, counter, r, err := s.openText(path)
	if err != nil {
		return opened{}, err
	}
	rr := newRecordReader(r)
	rr.max = s.cfg.MaxRecordBytes
	c := &csvRows{f: f, counter: counter, rr: rr, delim: s.cfg.Delimiter[0], after: after, max: s.cfg.MaxRecordBytes}
	if !s.cfg.Header {
		return opened{rows: c, fixed: true}, nil
	}
	raw, _, unbalanced, err := rr.next()
	if err == io.EOF {
		return opened{rows: c}, nil // empty: no rows, nothing to bind
	}
	if err != nil {
		f.Close()
		return opened{}, fmt.Errorf("read %s header: %w", path, err)
	}
	if rr.over > 0 {
		f.Close()
		return opened{}, fmt.Errorf("%w: %s: header line of %d bytes exceeds file.max_record_bytes %d", connectors.ErrPermanent, path, rr.over, rr.max)
	}
	if unbalanced {
		f.Close()
		return opened{}, fmt.Errorf("%w: %s: header has an unclosed quote", connectors.ErrPermanent, path)
	}
	header, err := splitFields(bytes.TrimPrefix(raw, []byte("\ufeff")), c.delim, nil)
	if err != nil {
		f.Close()
		return opened{}, fmt.Errorf("%w: %s header: %v", connectors.ErrPermanent, path, err)
	}
	return opened{rows: c, fixed: true, header: header}, nil
}

func (c *csvRows) next() (row, error) {
	for {
		raw, line, unbalanced, err := c.rr.next()
		if err != nil {
			return row{pos: c.rr.line}, err
		}
		if line <= c.after {
			continue
		}
		if line == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\ufeff"))
		}
		if c.rr.over > 0 {
			return row{pos: line, raw: raw, err: tooLong(c.rr.over, c.max)}, nil
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		r := row{pos: line, raw: raw}
		if unbalanced {
			r.err = errQuote
		} else if c.fields, err = splitFields(raw, c.delim, c.fields); err != nil {
			r.err = err
		} else {
			r.cells = c.fields
		}
		return r, nil
	}
}

func (c *csvRows) consumed() int64 { return c.counter.n }
func (c *csvRows) Close() error    { return c.f.Close() }

// encode is not used for csv (every row has its raw line).
func (c *csvRows) encode(cells []string) []byte { return encodeCSV(cells, c.delim) }

// encodeCSV renders cells as one RFC 4180 record (quoted where needed),
// which splitFields reads back into the same cells.
func encodeCSV(cells []string, delim byte) []byte {
	var b []byte
	for i, c := range cells {
		if i > 0 {
			b = append(b, delim)
		}
		if c == "" || !strings.ContainsAny(c, string([]byte{delim, '"', '\r', '\n'})) {
			b = append(b, c...)
			continue
		}
		b = append(b, '"')
		b = append(b, strings.ReplaceAll(c, `"`, `""`)...)
		b = append(b, '"')
	}
	return b
}
