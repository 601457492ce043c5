package file

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// FuzzJSONLine checks the JSON-line flattener against encoding/json: any
// input flattens or fails without panicking; a valid JSON object always
// flattens, into as many cells as columns, each leaf at its dotted path
// with its value's text; anything else is refused.
func FuzzJSONLine(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":"x","c":null,"d":true,"e":[1,{"f":2}],"g":{"h":{"i":"<script>alert(1)</script>"}}}`,
		`{}`, `{"a":{}}`, `[1]`, `"s"`, `{"a":1} {"b":2}`, `{"a":`, `{"a.b":1,"a":{"b":2}}`,
		`{"名称":"官园","值":1.5e3}`, `{"a":"\u0000\ud800"}`, " {\"x\" : [ ] }\r",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		header, row, err := flattenJSON(line, nil, nil)
		trimmed := bytes.TrimSpace(line)
		isObject := json.Valid(line) && len(trimmed) > 0 && trimmed[0] == '{'
		if isObject != (err == nil) {
			t.Fatalf("flattenJSON(%q) err = %v, but valid object = %v", line, err, isObject)
		}
		if err != nil {
			return
		}
		if len(header) != len(row) {
			t.Fatalf("%d columns, %d cells", len(header), len(row))
		}
		// Reference: decode with encoding/json and walk it.
		var doc map[string]any
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("encoding/json refuses %q: %v", line, err)
		}
		want := map[string]any{}
		var walk func(prefix string, m map[string]any, depth int)
		walk = func(prefix string, m map[string]any, depth int) {
			for k, v := range m {
				if sub, ok := v.(map[string]any); ok && depth < maxDepth {
					walk(prefix+k+".", sub, depth+1)
					continue
				}
				want[prefix+k] = v
			}
		}
		walk("", doc, 0)
		seen := map[string]bool{}
		for _, h := range header {
			if seen[h] {
				return // duplicate keys: encoding/json keeps the last, the flattener both
			}
			seen[h] = true
		}
		if len(seen) != len(want) {
			if hasDuplicateKeys(line) {
				return // encoding/json keeps the last of duplicate keys; the flattener keeps each
			}
			t.Fatalf("columns %q, want the keys of %v", header, want)
		}
		for i, h := range header {
			w, ok := want[h]
			if !ok {
				t.Fatalf("column %q not in %v", h, want)
			}
			got := row[i]
			switch w := w.(type) {
			case nil:
				if got != "" {
					t.Fatalf("%s: null as %q", h, got)
				}
			case string:
				if got != w {
					t.Fatalf("%s: %q, want %q", h, got, w)
				}
			case json.Number:
				if got != w.String() {
					t.Fatalf("%s: %q, want %q", h, got, w)
				}
			case bool:
				if got != map[bool]string{true: "true", false: "false"}[w] {
					t.Fatalf("%s: %q, want %v", h, got, w)
				}
			default: // arrays (and objects beyond maxDepth): compact JSON of the same value
				if strings.ContainsAny(got, "\n\t") {
					t.Fatalf("%s: %q is not compact", h, got)
				}
				var back any
				d := json.NewDecoder(strings.NewReader(got))
				d.UseNumber()
				if err := d.Decode(&back); err != nil || !reflect.DeepEqual(back, w) {
					t.Fatalf("%s: %q does not decode to %v (%v)", h, got, w, err)
				}
			}
		}
		// A row re-encoded as a JSON object of strings flattens back to the
		// same columns and cells (how parquet rejects are reparsed).
		h2, r2, err := flattenJSON(encodeJSON(header, row), nil, nil)
		if err != nil || !reflect.DeepEqual(h2, header) || !reflect.DeepEqual(r2, row) {
			t.Fatalf("re-encoded row: %q %q %v, want %q %q", h2, r2, err, header, row)
		}
	})
}

// hasDuplicateKeys reports whether any object in the JSON repeats a key.
func hasDuplicateKeys(doc []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(doc))
	type frame struct {
		keys   map[string]bool
		object bool
		expect bool // next string token in an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		top := func() *frame {
			if len(stack) == 0 {
				return nil
			}
			return stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				if f := top(); f != nil && f.object {
					f.expect = true
				}
				stack = append(stack, &frame{keys: map[string]bool{}, object: v == '{', expect: v == '{'})
			case '}', ']':
				stack = stack[:len(stack)-1]
				if f := top(); f != nil && f.object {
					f.expect = true
				}
			}
		default:
			f := top()
			if f == nil || !f.object {
				continue
			}
			if f.expect {
				k, _ := v.(string)
				if f.keys[k] {
					return true
				}
				f.keys[k] = true
				f.expect = false
			} else {
				f.expect = true
			}
		}
	}
}
