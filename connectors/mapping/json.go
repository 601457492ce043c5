package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
