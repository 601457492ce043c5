package file

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxDepth is the deepest object nesting flattened into dotted keys; deeper
// objects are kept as their JSON text under the key reached.
const maxDepth = 32

var errNotObject = errors.New("line is not a JSON object / 该行不是 JSON 对象")

// flattenJSON turns one JSON object into a header (its keys in document
// order, nested objects flattened with dots: "location.lat") and a row of
// values as text: strings unquoted, numbers in their JSON text, true/false,
// null as "", arrays as their compact JSON text. Header and row are appended
// to the given slices (pass [:0] to reuse them).
//
// It is the same flattening as the HTTP API transport's, so one mapping
// reads a feed whether it comes as JSON lines or from an API.
func flattenJSON(raw []byte, header, row []string) ([]string, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	header, row, err := flattenObject(dec, "", 0, header, row)
	if err != nil {
		return header, row, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return header, row, errors.New("bad JSON: trailing data after the object / 对象后有多余内容")
	}
	return header, row, nil
}

func flattenObject(dec *json.Decoder, prefix string, depth int, header, row []string) ([]string, []string, error) {
	tok, err := dec.Token()
	if err != nil {
		if prefix == "" {
			return header, row, fmt.Errorf("%w: %v", errNotObject, err)
		}
		return header, row, fmt.Errorf("bad JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return header, row, errNotObject
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return header, row, fmt.Errorf("bad JSON: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return header, row, errors.New("bad JSON: object key is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return header, row, fmt.Errorf("bad JSON at %s%s: %w", prefix, key, err)
		}
		if len(v) > 0 && v[0] == '{' && depth < maxDepth {
			sub := json.NewDecoder(bytes.NewReader(v))
			if header, row, err = flattenObject(sub, prefix+key+".", depth+1, header, row); err != nil {
				return header, row, err
			}
			continue
		}
		s, err := jsonText(v)
		if err != nil {
			return header, row, fmt.Errorf("bad JSON at %s%s: %w", prefix, key, err)
		}
		header = append(header, prefix+key)
		row = append(row, s)
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return header, row, fmt.Errorf("bad JSON: %w", err)
	}
	return header, row, nil
}

// jsonText renders one JSON value as a cell.
func jsonText(v json.RawMessage) (string, error) {
	if len(v) == 0 {
		return "", errors.New("empty value")
	}
	switch v[0] {
	case '"':
		var s string
		err := json.Unmarshal(v, &s)
		return s, err
	case 'n':
		return "", nil
	case '[', '{':
		var b bytes.Buffer
		if err := json.Compact(&b, v); err != nil {
			return "", err
		}
		return b.String(), nil
	default: // numbers, true, false: their JSON text
		return string(v), nil
	}
}

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
