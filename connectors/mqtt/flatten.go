package mqtt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// maxDepth bounds the nesting of payloads (objects and arrays).
const maxDepth = 64

// Flatten turns a JSON object into column names and cell values for a
// mapping: nested objects become dotted names ({"loc":{"lat":1}} → loc.lat),
// array elements are numbered (vals.0, vals.1), numbers are kept as their
// JSON text (no float rounding: 0.30 stays "0.30", 12345678901234567 stays
// exact), booleans are "true"/"false", null is "" (missing) and strings are
// their decoded value. Empty objects and arrays yield no column. Columns are
// sorted by name (stably, so a repeated key keeps payload order), which makes
// the header a signature of the payload's shape. The payload must be exactly
// one JSON object (surrounding white space allowed).
func Flatten(payload []byte) (header, row []string, err error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, fmt.Errorf("invalid JSON: %w", jsonErr(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, errors.New("payload is not a JSON object")
	}
	f := flattener{dec: dec}
	if err := f.object("", 1); err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		if err == nil {
			return nil, nil, errors.New("invalid JSON: data after the object")
		}
		return nil, nil, fmt.Errorf("invalid JSON: %w", jsonErr(err))
	}
	sort.Stable(&f)
	return f.keys, f.vals, nil
}

func jsonErr(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

type flattener struct {
	dec  *json.Decoder
	keys []string
	vals []string
}

func (f *flattener) Len() int           { return len(f.keys) }
func (f *flattener) Less(i, j int) bool { return f.keys[i] < f.keys[j] }
func (f *flattener) Swap(i, j int) {
	f.keys[i], f.keys[j] = f.keys[j], f.keys[i]
	f.vals[i], f.vals[j] = f.vals[j], f.vals[i]
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// object reads members up to and including the closing '}'.
func (f *flattener) object(prefix string, depth int) error {
	for f.dec.More() {
		tok, err := f.dec.Token()
		if err != nil {
			return fmt.Errorf("invalid JSON: %w", jsonErr(err))
		}
		name, ok := tok.(string)
		if !ok {
			return fmt.Errorf("invalid JSON: object key %v", tok)
		}
		if err := f.value(join(prefix, name), depth); err != nil {
			return err
		}
	}
	if _, err := f.dec.Token(); err != nil { // '}'
		return fmt.Errorf("invalid JSON: %w", jsonErr(err))
	}
	return nil
}

// value reads one value named key.
func (f *flattener) value(key string, depth int) error {
	tok, err := f.dec.Token()
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", jsonErr(err))
	}
	switch v := tok.(type) {
	case json.Delim:
		if depth >= maxDepth {
			return fmt.Errorf("JSON nested deeper than %d levels", maxDepth)
		}
		if v == '{' {
			return f.object(key, depth+1)
		}
		// '[': elements are numbered.
		for i := 0; f.dec.More(); i++ {
			if err := f.value(join(key, strconv.Itoa(i)), depth+1); err != nil {
				return err
			}
		}
		if _, err := f.dec.Token(); err != nil { // ']'
			return fmt.Errorf("invalid JSON: %w", jsonErr(err))
		}
		return nil
	case string:
		f.add(key, v)
	case json.Number:
		f.add(key, v.String())
	case bool:
		f.add(key, strconv.FormatBool(v))
	case nil:
		f.add(key, "")
	default:
		return fmt.Errorf("invalid JSON: unexpected %v", tok)
	}
	return nil
}

func (f *flattener) add(k, v string) {
	f.keys = append(f.keys, k)
	f.vals = append(f.vals, v)
}

// signature identifies a header (the shape of a payload).
func signature(header []string) string { return strings.Join(header, "\x00") }
