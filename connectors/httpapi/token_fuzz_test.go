package httpapi

import "testing"

// FuzzDecodeState: a cursor token is untrusted text; decoding it never
// panics whatever the pagination kind.
func FuzzDecodeState(f *testing.F) {
	for _, s := range []string{"", "page=2&skip=25", "offset=100&skip=3&max=2022-05-01T00:10:51Z&tm=1,2", "cursor=abc&skip=0", "%zz", "skip=-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, kind := range []string{PageNone, PageNumber, PageOffset, PageCursor, PageLink} {
			_, _ = decodeState(token, kind, 1)
		}
	})
}
