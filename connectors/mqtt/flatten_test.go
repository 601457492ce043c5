package mqtt

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
)

func TestFlatten(t *testing.T) {
	for _, c := range []struct {
		in     string
		header []string
		row    []string
		err    string
	}{
		{in: `{"seq":12,"value":0.30,"ok":true,"gone":null,"s":"P-1"}`,
			header: []string{"gone", "ok", "s", "seq", "value"}, row: []string{"", "true", "P-1", "12", "0.30"}},
		{in: ` {"loc":{"lat":39.91,"lon":116.36},"vals":[1,{"x":"y"}],"e":{},"a":[]} `,
			header: []string{"loc.lat", "loc.lon", "vals.0", "vals.1.x"}, row: []string{"39.91", "116.36", "1", "y"}},
		{in: `{"big":12345678901234567890,"exp":1e-7}`, header: []string{"big", "exp"}, row: []string{"12345678901234567890", "1e-7"}},
		{in: `{"b":1,"a":2,"b":3}`, header: []string{"a", "b", "b"}, row: []string{"2", "1", "3"}},
		{in: `{}`, header: nil, row: nil},
		{in: `[1,2]`, err: "not a JSON object"},
		{in: `"x"`, err: "not a JSON object"},
		{in: ``, err: "invalid JSON"},
		{in: `{"a":1`, err: "invalid JSON"},
		{in: `{"a":1}{}`, err: "data after"},
		{in: `{"a":1} x`, err: "invalid JSON"},
		{in: `{"a" 1}`, err: "invalid JSON"},
		{in: strings.Repeat(`{"a":`, 70) + "1" + strings.Repeat("}", 70), err: "nested deeper"},
	} {
		h, r, err := Flatten([]byte(c.in))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(h, c.header) || !reflect.DeepEqual(r, c.row) {
			t.Errorf("%s:\n got %q %q\nwant %q %q", c.in, h, r, c.header, c.row)
		}
	}
}

// reference flattens with encoding/json's tree decoding (last duplicate key
// wins), independently of Flatten's token walk.
func reference(v any, prefix string, out map[string]string) {
	key := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			reference(e, key(k), out)
		}
	case []any:
		for i, e := range x {
			reference(e, key(strconv.Itoa(i)), out)
		}
	case string:
		out[prefix] = x
	case json.Number:
		out[prefix] = x.String()
	case bool:
		out[prefix] = strconv.FormatBool(x)
	case nil:
		out[prefix] = ""
	}
}

func depth(b []byte) int {
	d, maxD, inStr, esc := 0, 0, false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case !inStr && (c == '{' || c == '['):
			d++
			maxD = max(maxD, d)
		case !inStr && (c == '}' || c == ']'):
			d--
		}
	}
	return maxD
}

func FuzzFlatten(f *testing.F) {
	for _, s := range []string{
		`{"sensor":"P-0012","seq":1,"value":0.31,"unit":"MPa","alarm":false,"loc":{"lat":39.9,"lon":116.3}}`,
		`{"a":[1,[2,{"b":null}]],"a.1":"x"}`,
		`{"k":"\u4e2d\u6587\ud83d\ude00","e":""}`,
		`{"b":1,"b":2}`, `[]`, `{"a":`, `{} {}`, `null`, `{"x":-0.0e+5}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		h, r, err := Flatten(payload)
		var tree any
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.UseNumber()
		valid := json.Valid(payload) && dec.Decode(&tree) == nil
		_, isObj := tree.(map[string]any)
		if err != nil {
			if valid && isObj && depth(payload) <= maxDepth {
				t.Fatalf("valid object rejected: %v", err)
			}
			return
		}
		if !valid || !isObj {
			t.Fatalf("accepted %q, which is not one JSON object", payload)
		}
		if len(h) != len(r) {
			t.Fatalf("header %d, row %d", len(h), len(r))
		}
		if !sort.StringsAreSorted(h) {
			t.Fatalf("header not sorted: %q", h)
		}
		got := map[string]map[string]bool{}
		for i := range h {
			if got[h[i]] == nil {
				got[h[i]] = map[string]bool{}
			}
			got[h[i]][r[i]] = true
		}
		want := map[string]string{}
		reference(tree, "", want)
		for k, v := range want {
			if !got[k][v] {
				t.Fatalf("column %q: want value %q among %v", k, v, got[k])
			}
		}
		if len(h) < len(want) {
			t.Fatalf("%d columns, reference has %d", len(h), len(want))
		}
	})
}
