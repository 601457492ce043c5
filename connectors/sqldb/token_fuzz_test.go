package sqldb

import "testing"

// FuzzDecodeToken: a cursor token from the lake or a checkpoint is
// untrusted text; decoding never panics, and what decodes re-encodes to a
// token that decodes to the same position.
func FuzzDecodeToken(f *testing.F) {
	for _, s := range []string{"", "k=1&kt=int&wm=10&wt=int", "wm=2026-11-01T00:00:00Z&wt=timestamp&k=a&kt=text", "wt=bool&wm=true", "%zz", "wt=float&wm=NaN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		p, err := DecodeToken(token)
		if err != nil {
			return
		}
		q, err := DecodeToken(p.Token())
		if err != nil {
			t.Fatalf("re-encoded token %q of %q does not decode: %v", p.Token(), token, err)
		}
		if q.Token() != p.Token() {
			t.Fatalf("token %q → %q → %q", token, p.Token(), q.Token())
		}
	})
}
