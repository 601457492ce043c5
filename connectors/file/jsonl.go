package file

import (
	"bytes"
	"citybrain/connectors/mapping"
	"encoding/json"
	"os"
)

// maxDepth is the deepest object nesting flattened into dotted keys.
const maxDepth = mapping.MaxJSONDepth

// flattenJSON is the shared JSON flattener (mapping.FlattenJSON).
var flattenJSON = mapping.FlattenJSON

// jsonlRows reads a JSON-lines file.
type jsonlRows struct {
	f           *os.File
	counter     *countingReader
	rr          *recordReader
	after       int64
	max         int
	header, row []string
}

func (s *Source) openJSONL(path string, after int64) (opened, error) {
	f, counter, r, err := s.openText(path)
	if err != nil {
		return opened{}, err
	}
	rr := newRecordReader(r)
	rr.max = s.cfg.MaxRecordBytes
	rr.noCR = true
	return opened{rows: &jsonlRows{f: f, counter: counter, rr: rr, after: after, max: s.cfg.MaxRecordBytes}}, nil
}

func (j *jsonlRows) next() (row, error) {
	for {
		raw, over, err := j.rr.physical()
		if err != nil {
			return row{pos: j.rr.line}, err
		}
		line := j.rr.line
		if line <= j.after {
			continue
		}
		if line == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\ufeff"))
		}
		if over > 0 {
			return row{pos: line, raw: raw, err: tooLong(over, j.max)}, nil
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		r := row{pos: line, raw: raw}
		j.header, j.row, err = flattenJSON(raw, j.header[:0], j.row[:0])
		if err != nil {
			r.err = err
		} else {
			r.header, r.cells = j.header, j.row
			if r.header == nil {
				r.header = []string{} // {}: no columns, but not headerless
			}
		}
		return r, nil
	}
}

func (j *jsonlRows) consumed() int64 { return j.counter.n }
func (j *jsonlRows) Close() error    { return j.f.Close() }

// encode is not used for jsonl (every row has its raw line).
func (j *jsonlRows) encode(cells []string) []byte { return encodeCSV(cells, ',') }

// encodeJSON renders a row as a JSON object of its columns (values as
// strings, HTML characters unescaped), which flattenJSON reads back into
// the same header and cells (a dotted name is one literal key).
func encodeJSON(header, cells []string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	b.WriteByte('{')
	for i, h := range header {
		if i > 0 {
			b.WriteByte(',')
		}
		enc.Encode(h)
		b.Truncate(b.Len() - 1) // Encode's newline
		b.WriteByte(':')
		v := ""
		if i < len(cells) {
			v = cells[i]
		}
		enc.Encode(v)
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('}')
	return b.Bytes()
}
