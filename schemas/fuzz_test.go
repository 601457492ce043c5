package schemas

import (
	"testing"
	"time"
)

// normalise maps a decoded record to what Encode can represent: strings as
// valid UTF-8 (each invalid byte becomes U+FFFD, as Encode writes it) and
// timestamps truncated to microseconds (Encode's documented precision).
func normalise(s *Schema, r Record) Record {
	out := make(Record, len(r))
	for i, v := range r {
		switch x := v.(type) {
		case string:
			out[i] = string([]rune(x))
		case time.Time:
			if s.Fields[i].Type == Timestamp {
				out[i] = x.Truncate(time.Microsecond)
			} else {
				out[i] = x
			}
		default:
			out[i] = v
		}
	}
	return out
}

// encodableYear reports whether t's UTC year fits RFC 3339's four digits.
func encodableYear(t time.Time) bool { y := t.UTC().Year(); return y >= 0 && y <= 9999 }

func FuzzDecode(f *testing.F) {
	all := allTypes(f)
	w := weather(f)
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456000, time.UTC)
	for _, r := range []Record{
		{"hello", int64(-5), int64(1) << 40, 3.25, true, ts, time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC)},
		{"q\"\\\n\t官园\x01", nil, nil, nil, nil, ts, nil},
		{nil, nil, nil, 1e300, false, ts, nil},
	} {
		f.Add(all.Encode(nil, r), false)
	}
	f.Add(w.Encode(nil, weatherRecord()), true)
	f.Add([]byte(`{"extra":{"a":[1,{"b":"}"}]},"s":"\u5b98\/","ts":"2013-03-01T00:00:00+08:00"}`), false)
	f.Add([]byte(`{"station":"x","observed_at":"2013-03-01T00:00:00.1234567Z","wind_direction":"CV"}`), true)
	f.Fuzz(func(t *testing.T, data []byte, useWeather bool) {
		s := all
		if useWeather {
			s = w
		}
		r, err := s.Decode(data)
		if err != nil {
			return
		}
		if err := s.Validate(r); err != nil {
			return
		}
		for i, f := range s.Fields {
			if tv, ok := r[i].(time.Time); ok && f.Type == Timestamp && !encodableYear(tv) {
				t.Fatalf("regression: Decode accepts %v whose UTC year Encode cannot write as RFC 3339 (see TestTimestampYearOutOfRange)", tv)
			}
		}
		enc := s.Encode(nil, r)
		r2, err := s.Decode(enc)
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(%q))) = %v\nencoded: %s", data, err, enc)
		}
		if want := normalise(s, r); !equalRecords(r2, want) {
			t.Fatalf("round trip changed the record\n in: %q\n got %#v\nwant %#v", data, r2, want)
		}
		if err := s.Validate(r2); err != nil {
			t.Fatalf("re-decoded record invalid: %v", err)
		}
	})
}

// TestTimestampYearOutOfRange: an offset can move a 4-digit-year time out of
// 0000–9999 in UTC; Decode accepts it, Encode writes a year RFC 3339 cannot
// hold, and the record can no longer be decoded.
func TestTimestampYearOutOfRange(t *testing.T) {
	s := allTypes(t)
	for _, in := range []string{`{"ts":"0000-01-01T00:00:00+01:00"}`, `{"ts":"9999-12-31T23:00:00-01:00"}`} {
		r, err := s.Decode([]byte(in))
		if err != nil {
			continue // rejected up front: fine
		}
		if err := s.Validate(r); err != nil {
			continue
		}
		enc := s.Encode(nil, r)
		if _, err := s.Decode(enc); err != nil {
			t.Fatalf("regression: Decode(%s) succeeds and Validate passes, but Encode writes %s which Decode rejects (%v)", in, enc, err)
		}
	}
}
