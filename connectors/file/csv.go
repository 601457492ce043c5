package file

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// recordReader splits a delimited file into logical records — one physical
// line, or several when a quoted field holds line breaks — and keeps each
// record's raw bytes and first line number, so a malformed record can be
// sent to the dead-letter topic as it was and the rest of the file still
// ingests. A record whose quotes never balance within maxRecordLines lines
// is reported alone (its first line), and reading resumes on the next line.
type recordReader struct {
	br      *bufio.Reader
	line    int64 // physical lines consumed so far
	pending [][]byte
	eof     bool
}

const maxRecordLines = 64

func newRecordReader(r io.Reader) *recordReader {
	return &recordReader{br: bufio.NewReaderSize(r, 1<<20)}
}

// next returns the next logical record without its line terminator, its
// first line number (1-based), and io.EOF at the end. A non-nil unbalanced
// reports a record whose quotes never closed.
func (rr *recordReader) next() (raw []byte, line int64, unbalanced bool, err error) {
	first, err := rr.physical()
	if err != nil {
		return nil, 0, false, err
	}
	line = rr.line
	if bytes.Count(first, []byte{'"'})%2 == 0 {
		return first, line, false, nil
	}
	lines := [][]byte{first}
	quotes := bytes.Count(first, []byte{'"'})
	for len(lines) < maxRecordLines {
		l, err := rr.physical()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, false, err
		}
		lines = append(lines, l)
		quotes += bytes.Count(l, []byte{'"'})
		if quotes%2 == 0 {
			return bytes.Join(lines, []byte{'\n'}), line, false, nil
		}
	}
	// Give back all but the first line.
	rr.pending = append(lines[1:], rr.pending...)
	rr.line -= int64(len(lines) - 1)
	return first, line, true, nil
}

// physical returns one physical line (without \n, \r\n or a lone \r).
func (rr *recordReader) physical() ([]byte, error) {
	if len(rr.pending) > 0 {
		l := rr.pending[0]
		rr.pending = rr.pending[1:]
		rr.line++
		return l, nil
	}
	if rr.eof {
		return nil, io.EOF
	}
	var out []byte
	for {
		b, err := rr.br.ReadSlice('\n')
		out = append(out, b...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			rr.eof = true
			if len(out) == 0 {
				return nil, io.EOF
			}
			break
		}
		if err != nil {
			return nil, err
		}
		break
	}
	rr.line++
	out = bytes.TrimSuffix(out, []byte{'\n'})
	out = bytes.TrimSuffix(out, []byte{'\r'})
	// Old Mac line ends: a lone \r inside is a line break too.
	if i := bytes.IndexByte(out, '\r'); i >= 0 && bytes.Count(out, []byte{'"'})%2 == 0 {
		rest := bytes.Split(out[i+1:], []byte{'\r'})
		rr.pending = append(rest, rr.pending...)
		out = out[:i]
	}
	return out, nil
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
