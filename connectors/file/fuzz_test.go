package file

import (
	"bytes"
	"encoding/csv"
	"reflect"
	"strings"
	"testing"
)

var fuzzDelims = []byte{',', '|', '\t', ';'}

func FuzzSplitFields(f *testing.F) {
	f.Add("a,b,c", uint8(0))
	f.Add(`"a ""q"" b",,x`, uint8(0))
	f.Add("x|y\x1f\"q|r\"", uint8(1))
	f.Add(" lead\x1ftrail \x1f\x1f", uint8(2))
	f.Add(`1,2013,3,1,0,4,4,14,20,300,69,-0.7,1023,-18.8,0,"NNW",4.4,"Guanyuan"`, uint8(0))
	f.Add("官园\x1f西城区;北京", uint8(3))
	f.Add(`"unclosed`, uint8(0))
	f.Add(`a"b`, uint8(0))
	f.Fuzz(func(t *testing.T, in string, d uint8) {
		delim := fuzzDelims[int(d)%len(fuzzDelims)]

		// Any input: no panic; fields never contain the delimiter unless quoted.
		if got, err := splitFields([]byte(in), delim, nil); err == nil && !strings.ContainsRune(in, '"') {
			if want := strings.Split(in, string(delim)); !reflect.DeepEqual(got, want) {
				t.Fatalf("unquoted %q: got %q, want %q", in, got, want)
			}
		}

		// A record written by encoding/csv from fields without line breaks
		// splits back into those fields.
		fields := strings.Split(strings.NewReplacer("\r", "", "\n", "").Replace(in), "\x1f")
		var buf bytes.Buffer
		w := csv.NewWriter(&buf)
		w.Comma = rune(delim)
		if err := w.Write(fields); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		rec := bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
		got, err := splitFields(rec, delim, nil)
		if err != nil {
			t.Fatalf("splitFields(%q) of fields %q: %v", rec, fields, err)
		}
		if !reflect.DeepEqual(got, fields) {
			t.Fatalf("splitFields(%q) = %q, want %q", rec, got, fields)
		}
	})
}
