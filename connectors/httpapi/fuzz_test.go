package httpapi

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzFlatten: the flattening decoder never panics, keeps header and row
// aligned, and accepts every valid JSON object.
func FuzzFlatten(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":{"c":"x","d":{"e":null}},"f":[1,2],"g":true}`,
		`{"service_request_id":"54049402","lat":40.83,"long":-73.92,"requested_datetime":"2022-05-01T00:00:03-04:00"}`,
		`{"a":{"a":{"a":{"a":{}}}}}`, `{"":""}`, `{"a.b":1,"a":{"b":2}}`, `{"\u00e9\ud83d\ude00":"\n"}`,
		`[1]`, `{`, `{"a":1}x`, `{"a":1,}`, `nul`, `{"a":"\xff"}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, r, err := flatten(b, nil, nil)
		if len(h) != len(r) {
			t.Fatalf("header %d keys, row %d values", len(h), len(r))
		}
		trimmed := bytes.TrimSpace(b)
		if json.Valid(b) && len(trimmed) > 0 && trimmed[0] == '{' && err != nil {
			t.Fatalf("valid object %q: %v", b, err)
		}
		lookup(b, "a.b")
	})
}
