package connectors

import "testing"

// FuzzParseCursor: cursors come back from Kafka headers and the lake;
// parsing never panics and what parses prints back the same.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"a.csv#12", "requests.json#12!page%3D3", "#", "x#-1!", "a#b#c!%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := ParseCursor(s)
		if !ok {
			return
		}
		d, ok := ParseCursor(c.String())
		if !ok || d != c {
			t.Fatalf("%q → %+v → %q → %+v", s, c, c.String(), d)
		}
	})
}
