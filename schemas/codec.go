package schemas

import (
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Encode appends the record as a flat JSON object keyed by field name.
// Nil values are written as null; timestamps as RFC 3339 in UTC with
// microseconds; dates as YYYY-MM-DD. The record must have been validated.
func (s *Schema) Encode(dst []byte, r Record) []byte {
	dst = append(dst, '{')
	for i, f := range s.Fields {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, f.Name...)
		dst = append(dst, '"', ':')
		dst = appendValue(dst, f.Type, r[i])
	}
	return append(dst, '}')
}

func appendValue(dst []byte, t Type, v any) []byte {
	if v == nil {
		return append(dst, "null"...)
	}
	switch t {
	case String:
		return appendJSONString(dst, v.(string))
	case Int, Long:
		return strconv.AppendInt(dst, v.(int64), 10)
	case Double:
		f := v.(float64)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return append(dst, "null"...)
		}
		return strconv.AppendFloat(dst, f, 'g', -1, 64)
	case Bool:
		return strconv.AppendBool(dst, v.(bool))
	case Timestamp:
		dst = append(dst, '"')
		dst = v.(time.Time).UTC().AppendFormat(dst, "2006-01-02T15:04:05.999999Z07:00")
		return append(dst, '"')
	case Date:
		dst = append(dst, '"')
		dst = v.(time.Time).AppendFormat(dst, time.DateOnly)
		return append(dst, '"')
	}
	return append(dst, "null"...)
}

const hexDigits = "0123456789abcdef"

func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Decode parses a flat JSON object produced by Encode (or by any writer of the
// same shape) into a record. Unknown keys are ignored so that readers of an
// older version accept records of a newer one; missing keys are nil. Numbers
// are accepted for double fields whatever their form; integral fields reject
// fractions. The result is not validated: call Validate.
func (s *Schema) Decode(data []byte) (Record, error) {
	r := make(Record, len(s.Fields))
	return r, s.DecodeInto(r, data)
}

// DecodeInto is Decode into a caller-owned record of len(Fields).
func (s *Schema) DecodeInto(r Record, data []byte) error {
	for i := range r {
		r[i] = nil
	}
	d := decoder{data: data}
	d.skipSpace()
	if !d.consume('{') {
		return d.errorf("want '{'")
	}
	d.skipSpace()
	if d.consume('}') {
		d.skipSpace()
		if d.pos != len(d.data) {
			return d.errorf("trailing data")
		}
		return nil
	}
	for {
		d.skipSpace()
		key, err := d.key()
		if err != nil {
			return err
		}
		d.skipSpace()
		if !d.consume(':') {
			return d.errorf("want ':' after key %q", key)
		}
		d.skipSpace()
		idx, known := s.index[string(key)] // no allocation: the compiler optimises map[string(bytes)]
		if !known {
			if err := d.skipValue(); err != nil {
				return err
			}
		} else {
			v, err := d.value(s.Fields[idx])
			if err != nil {
				return err
			}
			r[idx] = v
		}
		d.skipSpace()
		if d.consume(',') {
			continue
		}
		if d.consume('}') {
			break
		}
		return d.errorf("want ',' or '}'")
	}
	d.skipSpace()
	if d.pos != len(d.data) {
		return d.errorf("trailing data")
	}
	return nil
}

type decoder struct {
	data []byte
	pos  int
}

func (d *decoder) errorf(format string, a ...any) error {
	return fmt.Errorf("%w: json at byte %d: %s", ErrInvalidRecord, d.pos, fmt.Sprintf(format, a...))
}

func (d *decoder) skipSpace() {
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *decoder) consume(c byte) bool {
	if d.pos < len(d.data) && d.data[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

func (d *decoder) literal(word string) bool {
	if len(d.data)-d.pos >= len(word) && string(d.data[d.pos:d.pos+len(word)]) == word {
		d.pos += len(word)
		return true
	}
	return false
}

// key reads an object key, without allocating when it has no escapes.
func (d *decoder) key() ([]byte, error) {
	if d.pos < len(d.data) && d.data[d.pos] == '"' {
		end := d.pos + 1
		for end < len(d.data) && d.data[end] != '"' && d.data[end] != '\\' {
			end++
		}
		if end < len(d.data) && d.data[end] == '"' {
			k := d.data[d.pos+1 : end]
			d.pos = end + 1
			return k, nil
		}
	}
	s, err := d.str()
	return []byte(s), err
}

// str reads a JSON string at pos.
func (d *decoder) str() (string, error) {
	if !d.consume('"') {
		return "", d.errorf("want string")
	}
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if c == '"' {
			s := string(d.data[start:d.pos])
			d.pos++
			return s, nil
		}
		if c == '\\' {
			return d.slowStr(start - 1)
		}
		d.pos++
	}
	return "", d.errorf("unterminated string")
}

func (d *decoder) slowStr(start int) (string, error) {
	d.pos = start + 1
	for d.pos < len(d.data) {
		switch d.data[d.pos] {
		case '\\':
			d.pos += 2
			continue
		case '"':
			d.pos++
			s, err := unquoteJSON(d.data[start+1 : d.pos-1])
			if err != nil {
				return "", d.errorf("bad string escape: %v", err)
			}
			return s, nil
		}
		d.pos++
	}
	return "", d.errorf("unterminated string")
}

func unquoteJSON(b []byte) (string, error) {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			out = append(out, b[i])
			continue
		}
		i++
		if i >= len(b) {
			return "", fmt.Errorf("dangling backslash")
		}
		switch b[i] {
		case '"', '\\', '/':
			out = append(out, b[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			if i+4 >= len(b) {
				return "", fmt.Errorf("short \\u escape")
			}
			n, err := strconv.ParseUint(string(b[i+1:i+5]), 16, 16)
			if err != nil {
				return "", err
			}
			r := rune(n)
			i += 4
			// A UTF-16 surrogate pair (\ud83d\ude00) is one character.
			if utf16.IsSurrogate(r) && i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if n2, err := strconv.ParseUint(string(b[i+3:i+7]), 16, 16); err == nil {
					if pair := utf16.DecodeRune(r, rune(n2)); pair != utf8.RuneError {
						r = pair
						i += 6
					}
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", fmt.Errorf("unknown escape \\%c", b[i])
		}
	}
	return string(out), nil
}

func (d *decoder) number() ([]byte, error) {
	start := d.pos
	for d.pos < len(d.data) {
		c := d.data[d.pos]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			d.pos++
			continue
		}
		break
	}
	if d.pos == start {
		return nil, d.errorf("want value")
	}
	return d.data[start:d.pos], nil
}

func (d *decoder) value(f Field) (any, error) {
	if d.literal("null") {
		return nil, nil
	}
	switch f.Type {
	case String:
		return d.str()
	case Int, Long:
		b, err := d.number()
		if err != nil {
			return nil, err
		}
		n, err := parseInt(b)
		if err != nil {
			return nil, d.errorf("%s: %q is not an integer", f.Name, b)
		}
		return n, nil
	case Double:
		b, err := d.number()
		if err != nil {
			return nil, err
		}
		x, err := strconv.ParseFloat(string(b), 64)
		if err != nil {
			return nil, d.errorf("%s: %q is not a number", f.Name, b)
		}
		return x, nil
	case Bool:
		if d.literal("true") {
			return true, nil
		}
		if d.literal("false") {
			return false, nil
		}
		return nil, d.errorf("%s: want true or false", f.Name)
	case Timestamp:
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, d.errorf("%s: %q is not an RFC 3339 time", f.Name, s)
		}
		if y := t.UTC().Year(); y < 1 || y > 9999 {
			return nil, d.errorf("%s: %q is outside years 0001–9999 in UTC", f.Name, s)
		}
		return t.UTC(), nil
	case Date:
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return nil, d.errorf("%s: %q is not a date", f.Name, s)
		}
		return t, nil
	}
	return nil, d.errorf("%s: unsupported type %s", f.Name, f.Type)
}

func (d *decoder) skipValue() error {
	if d.pos >= len(d.data) {
		return d.errorf("want value")
	}
	switch c := d.data[d.pos]; {
	case c == '"':
		_, err := d.str()
		return err
	case c == '{' || c == '[':
		depth := 0
		for d.pos < len(d.data) {
			switch d.data[d.pos] {
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					d.pos++
					return nil
				}
			case '"':
				if _, err := d.str(); err != nil {
					return err
				}
				continue
			}
			d.pos++
		}
		return d.errorf("unterminated container")
	case d.literal("null"), d.literal("true"), d.literal("false"):
		return nil
	default:
		_, err := d.number()
		return err
	}
}

// parseInt parses a decimal integer, without allocating for the usual
// short ones.
func parseInt(b []byte) (int64, error) {
	if n := len(b); n > 0 && n <= 18 {
		i, neg := 0, b[0] == '-'
		if neg {
			i = 1
		}
		if i < n {
			var v int64
			for ; i < n; i++ {
				c := b[i]
				if c < '0' || c > '9' {
					return strconv.ParseInt(string(b), 10, 64)
				}
				v = v*10 + int64(c-'0')
			}
			if neg {
				v = -v
			}
			return v, nil
		}
	}
	return strconv.ParseInt(string(b), 10, 64)
}
