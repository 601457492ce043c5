package forecast

import "time"

// USFederal is the United States' federal holidays of the years (the real
// samples' country: Brooklyn, Seattle): fixed dates, observed on the
// Friday or Monday when they fall on a weekend, and the Mondays and
// Thursday set by rule, with the day after Thanksgiving.
func USFederal(from, to int) Holidays {
	h := Holidays{Off: map[string]bool{}, Work: map[string]bool{}}
	add := func(t time.Time) { h.Off[t.Format(time.DateOnly)] = true }
	fixed := func(y int, m time.Month, d int) {
		t := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
		switch t.Weekday() {
		case time.Saturday:
			add(t.AddDate(0, 0, -1))
		case time.Sunday:
			add(t.AddDate(0, 0, 1))
		}
		add(t)
	}
	// nth weekday wd of month m (n = -1: the last)
	nth := func(y int, m time.Month, wd time.Weekday, n int) time.Time {
		if n < 0 {
			t := time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC)
			for t.Weekday() != wd {
				t = t.AddDate(0, 0, -1)
			}
			return t
		}
		t := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
		for t.Weekday() != wd {
			t = t.AddDate(0, 0, 1)
		}
		return t.AddDate(0, 0, 7*(n-1))
	}
	for y := from; y <= to; y++ {
		fixed(y, time.January, 1)
		fixed(y, time.July, 4)
		fixed(y, time.November, 11)
		fixed(y, time.December, 25)
		add(nth(y, time.January, time.Monday, 3))  // Martin Luther King Jr. Day
		add(nth(y, time.February, time.Monday, 3)) // Presidents' Day
		add(nth(y, time.May, time.Monday, -1))     // Memorial Day
		add(nth(y, time.September, time.Monday, 1))
		thanks := nth(y, time.November, time.Thursday, 4)
		add(thanks)
		add(thanks.AddDate(0, 0, 1))
	}
	return h
}
