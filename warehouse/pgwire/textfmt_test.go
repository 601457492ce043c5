package pgwire

import (
	"math/rand"
	"testing"
	"time"
)

// TestAppendTimestamp: the hand-written text form of dates and timestamps
// is time's own layout's (PostgreSQL's), and a zone off whole hours keeps
// its minutes as PostgreSQL writes them.
func TestAppendTimestamp(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	ny, _ := time.LoadLocation("America/New_York")
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 20000; i++ {
		tm := time.Unix(r.Int63n(1<<35)-1<<33, 0).Add(time.Duration(r.Intn(4)) * time.Duration(r.Int63n(int64(time.Second))))
		if i%3 == 0 {
			tm = tm.Truncate(time.Second)
		}
		for _, loc := range []*time.Location{time.UTC, sh, ny} {
			x := tm.In(loc)
			if _, off := x.Zone(); off%3600 != 0 {
				continue // local mean time before standard zones: minutes kept (below)
			}
			if got, want := string(appendTimestamp(nil, x, true)), x.AppendFormat(nil, "2006-01-02 15:04:05.999999-07"); got != string(want) {
				t.Fatalf("%v: %q, want %q", x, got, want)
			}
			if got, want := string(appendTimestamp(nil, x, false)), x.AppendFormat(nil, "2006-01-02 15:04:05.999999"); got != string(want) {
				t.Fatalf("%v: %q, want %q", x, got, want)
			}
			if got, want := string(appendDate(nil, x)), x.AppendFormat(nil, "2006-01-02"); got != string(want) {
				t.Fatalf("%v: %q, want %q", x, got, want)
			}
		}
	}
	india := time.FixedZone("IST", 5*3600+1800)
	if got := string(appendTimestamp(nil, time.Date(2026, 1, 2, 3, 4, 5, 600000000, india), true)); got != "2026-01-02 03:04:05.6+05:30" {
		t.Errorf("IST: %q", got)
	}
	if got := string(appendTimestamp(nil, time.Date(12026, 1, 2, 3, 4, 5, 0, time.UTC), false)); got != "12026-01-02 03:04:05" {
		t.Errorf("year 12026: %q", got)
	}
}
