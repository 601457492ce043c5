package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxDepth is the deepest object nesting flattened into dotted keys; deeper
// objects are kept as their JSON text under the key reached.
const maxDepth = 32

var errNotObject = errors.New("record is not a JSON object / 记录不是 JSON 对象")

// flatten turns one JSON object into a header (its keys in document order,
// nested objects flattened with dots: "location.latitude") and a row of
// values as text: strings unquoted, numbers in their JSON text, booleans
// true/false, null as "", arrays as their compact JSON text. Header and row
// are appended to the given slices (pass [:0] to reuse them).
func flatten(raw []byte, header, row []string) ([]string, []string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	header, row, err := flattenObject(dec, "", 0, header, row)
	if err != nil {
		return header, row, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return header, row, errors.New("trailing data after the record")
	}
	return header, row, nil
}

func flattenObject(dec *json.Decoder, prefix string, depth int, header, row []string) ([]string, []string, error) {
	tok, err := dec.Token()
	if err != nil {
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
		s, err := scalarText(v)
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

// scalarText renders one JSON value as a cell.
func scalarText(v json.RawMessage) (string, error) {
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

// lookup returns the value at a dotted path of a JSON document (nil when
// absent or null); "" is the document itself.
func lookup(doc []byte, path string) (json.RawMessage, error) {
	cur := json.RawMessage(doc)
	if path == "" {
		return trimNull(cur), nil
	}
	for _, part := range strings.Split(path, ".") {
		cur = trimNull(cur)
		if cur == nil {
			return nil, nil
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(cur, &obj); err != nil {
			return nil, fmt.Errorf("%q is not an object on the path %q", part, path)
		}
		cur = obj[part]
	}
	return trimNull(cur), nil
}

func trimNull(v json.RawMessage) json.RawMessage {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	return v
}
