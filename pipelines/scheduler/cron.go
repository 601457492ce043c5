package scheduler

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultTimezone is where a schedule without a zone is read: the
// departments' working day is Beijing time.
const DefaultTimezone = "Asia/Shanghai"

// Schedule is a five-field cron expression read in a time zone.
//
//	minute hour day-of-month month day-of-week
//
// Each field is `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a
// comma-separated list of those; day-of-week 0 and 7 are Sunday. As in cron,
// when both day fields are restricted a day matching either one fires.
// Shorthands: @hourly, @daily (@midnight), @weekly, @monthly, @yearly
// (@annually).
type Schedule struct {
	expr                     string
	loc                      *time.Location
	min, hour, dom, mon, dow uint64 // bit sets
	domStar, dowStar         bool
}

// ErrSchedule: a cron expression or time zone that cannot be read.
var ErrSchedule = errors.New("schedule")

var shorthands = map[string]string{
	"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
	"@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *",
}

// ParseSchedule reads expr in the zone tz ("" = Asia/Shanghai).
func ParseSchedule(expr, tz string) (Schedule, error) {
	if tz == "" {
		tz = DefaultTimezone
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return Schedule{}, fmt.Errorf("%w: 时区无效 unknown time zone %q (e.g. Asia/Shanghai)", ErrSchedule, tz)
	}
	s := Schedule{expr: strings.TrimSpace(expr), loc: loc}
	e := s.expr
	if full, ok := shorthands[strings.ToLower(e)]; ok {
		e = full
	}
	f := strings.Fields(e)
	if len(f) != 5 {
		return Schedule{}, fmt.Errorf("%w: cron 表达式应有 5 个字段 %q: want 5 fields \"minute hour day-of-month month day-of-week\", e.g. \"0 6 * * *\"", ErrSchedule, expr)
	}
	specs := []struct {
		dst      *uint64
		lo, hi   int
		name     string
		starFlag *bool
	}{
		{&s.min, 0, 59, "minute", nil},
		{&s.hour, 0, 23, "hour", nil},
		{&s.dom, 1, 31, "day-of-month", &s.domStar},
		{&s.mon, 1, 12, "month", nil},
		{&s.dow, 0, 7, "day-of-week", &s.dowStar},
	}
	for i, sp := range specs {
		bits, err := parseField(f[i], sp.lo, sp.hi)
		if err != nil {
			return Schedule{}, fmt.Errorf("%w: cron 字段 %s %q: %v", ErrSchedule, sp.name, f[i], err)
		}
		*sp.dst = bits
		if sp.starFlag != nil {
			*sp.starFlag = f[i] == "*" || strings.HasPrefix(f[i], "*/")
		}
	}
	if s.dow&(1<<7) != 0 {
		s.dow |= 1
	}
	return s, nil
}

func parseField(f string, lo, hi int) (uint64, error) {
	var bits uint64
	for _, part := range strings.Split(f, ",") {
		rng, stepS, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepS)
			if err != nil || n <= 0 {
				return 0, fmt.Errorf("bad step %q", stepS)
			}
			step = n
		}
		a, b := lo, hi
		switch {
		case rng == "*":
		case strings.Contains(rng, "-"):
			as, bs, _ := strings.Cut(rng, "-")
			var err1, err2 error
			a, err1 = strconv.Atoi(as)
			b, err2 = strconv.Atoi(bs)
			if err1 != nil || err2 != nil {
				return 0, fmt.Errorf("bad range %q", rng)
			}
		default:
			n, err := strconv.Atoi(rng)
			if err != nil {
				return 0, fmt.Errorf("bad value %q", rng)
			}
			a, b = n, n
			if hasStep {
				b = hi
			}
		}
		if a < lo || b > hi || a > b {
			return 0, fmt.Errorf("%q out of range %d-%d", part, lo, hi)
		}
		for v := a; v <= b; v += step {
			bits |= 1 << uint(v)
		}
	}
	return bits, nil
}

// String is the expression as written.
func (s Schedule) String() string { return s.expr }

// Location is the zone the schedule is read in.
func (s Schedule) Location() *time.Location { return s.loc }

// IsZero reports whether s was never parsed.
func (s Schedule) IsZero() bool { return s.loc == nil }

func (s Schedule) dayMatches(t time.Time) bool {
	d := s.dom&(1<<uint(t.Day())) != 0
	w := s.dow&(1<<uint(t.Weekday())) != 0
	if s.domStar || s.dowStar {
		return d && w
	}
	return d || w
}

// Next is the first scheduled time strictly after t (zero if none within
// five years, e.g. "0 0 30 2 *").
func (s Schedule) Next(t time.Time) time.Time {
	t = t.In(s.loc).Truncate(time.Minute).Add(time.Minute)
	limit := t.AddDate(5, 0, 0)
	for t.Before(limit) {
		if s.mon&(1<<uint(t.Month())) == 0 {
			t = time.Date(t.Year(), t.Month()+1, 1, 0, 0, 0, 0, s.loc)
			continue
		}
		if !s.dayMatches(t) {
			t = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, s.loc)
			continue
		}
		if s.hour&(1<<uint(t.Hour())) == 0 {
			t = time.Date(t.Year(), t.Month(), t.Day(), t.Hour()+1, 0, 0, 0, s.loc)
			continue
		}
		if s.min&(1<<uint(t.Minute())) == 0 {
			t = t.Add(time.Minute)
			continue
		}
		return t
	}
	return time.Time{}
}

// Prev is the last scheduled time at or before t (zero if none within the
// previous 400 days).
func (s Schedule) Prev(t time.Time) time.Time {
	for _, back := range []time.Duration{2 * time.Hour, 48 * time.Hour, 32 * 24 * time.Hour, 400 * 24 * time.Hour} {
		var last time.Time
		for n := s.Next(t.Add(-back)); !n.IsZero() && !n.After(t); n = s.Next(n) {
			last = n
		}
		if !last.IsZero() {
			return last
		}
	}
	return time.Time{}
}
