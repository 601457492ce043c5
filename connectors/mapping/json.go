package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// The JSON flattener shared by every transport of self-describing records
// (JSON lines, HTTP APIs, MQTT-free Kafka payloads): a record becomes the
// header and row of strings a mapping is bound to.

// MaxJSONDepth is the deepest object nesting flattened into dotted keys; deeper
// objects are kept as their JSON text under the key reached.
const MaxJSONDepth = 32

// ErrNotObject: a JSON record is not one object.
var ErrNotObject = errors.New("not a JSON object / 不是 JSON 对象")

// FlattenJSON turns one JSON object into a header (its keys in document
// order, nested objects flattened with dots: "location.lat") and a row of
// values as text: strings unquoted, numbers in their JSON text, true/false,
// null as "", arrays as their compact JSON text. Header and row are appended
// to the given slices (pass [:0] to reuse them).
//
// It is the same flattening as the HTTP API transport's, so one mapping
// reads a feed whether it comes as JSON lines or from an API.
func FlattenJSON(raw []byte, header, row []string) ([]string, []string, error) {
	// Valid JSON (nearly always) takes a scanner that slices the input;
	// anything else takes the decoder, whose errors say what is wrong.
	if json.Valid(raw) {
		f := flattener{data: raw, header: header, row: row}
		f.skipSpace()
		if f.pos < len(f.data) && f.data[f.pos] == '{' {
			f.object("", 0)
			return f.header, f.row, nil
		}
		return header, row, ErrNotObject
	}
	return slowFlatten(raw, header, row)
}

func slowFlatten(raw []byte, header, row []string) ([]string, []string, error) {
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
			return header, row, fmt.Errorf("%w: %v", ErrNotObject, err)
		}
		return header, row, fmt.Errorf("bad JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return header, row, ErrNotObject
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
		if len(v) > 0 && v[0] == '{' && depth < MaxJSONDepth {
			sub := json.NewDecoder(bytes.NewReader(v))
			if header, row, err = flattenObject(sub, prefix+key+".", depth+1, header, row); err != nil {
				return header, row, err
			}
			continue
		}
		s, err := JSONText(v)
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

// JSONText renders one JSON value as a cell.
func JSONText(v json.RawMessage) (string, error) {
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

// flattener walks JSON already known to be valid, slicing keys and values
// out of the input instead of decoding them.
type flattener struct {
	data        []byte
	pos         int
	header, row []string
}

func (f *flattener) skipSpace() {
	for f.pos < len(f.data) {
		switch f.data[f.pos] {
		case ' ', '\t', '\n', '\r':
			f.pos++
		default:
			return
		}
	}
}

// object reads the object at pos (its '{').
func (f *flattener) object(prefix string, depth int) {
	f.pos++ // {
	for {
		f.skipSpace()
		if f.data[f.pos] == '}' {
			f.pos++
			return
		}
		if f.data[f.pos] == ',' {
			f.pos++
			f.skipSpace()
		}
		key := f.str()
		f.skipSpace()
		f.pos++ // :
		f.skipSpace()
		name := prefix + key
		if f.data[f.pos] == '{' && depth < MaxJSONDepth {
			f.object(name+".", depth+1)
			continue
		}
		f.header = append(f.header, name)
		f.row = append(f.row, f.value())
	}
}

// str reads a string at pos, unquoted.
func (f *flattener) str() string {
	start := f.pos
	end := f.skipString()
	body := f.data[start+1 : end-1]
	if bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return string(body)
	}
	var s string
	_ = json.Unmarshal(f.data[start:end], &s) // valid JSON: cannot fail
	return s
}

// skipString moves past the string at pos and returns the end offset.
func (f *flattener) skipString() int {
	i := f.pos + 1
	for {
		switch f.data[i] {
		case '\\':
			i += 2
			continue
		case '"':
			f.pos = i + 1
			return f.pos
		}
		i++
	}
}

// value reads any value at pos as a cell.
func (f *flattener) value() string {
	switch c := f.data[f.pos]; c {
	case '"':
		return f.str()
	case '{', '[':
		start := f.pos
		depth := 0
		for {
			switch f.data[f.pos] {
			case '"':
				f.skipString()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			f.pos++
			if depth == 0 {
				break
			}
		}
		v := f.data[start:f.pos]
		if bytes.ContainsAny(v, " \t\n\r") {
			var b bytes.Buffer
			_ = json.Compact(&b, v)
			return b.String()
		}
		return string(v)
	default: // number, true, false, null
		start := f.pos
		for f.pos < len(f.data) {
			switch f.data[f.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if c == 'n' {
					return ""
				}
				return string(f.data[start:f.pos])
			}
			f.pos++
		}
		if c == 'n' {
			return ""
		}
		return string(f.data[start:f.pos])
	}
}
