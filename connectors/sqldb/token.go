package sqldb

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Value types in a token.
const (
	TypeTimestamp = "timestamp" // an instant, RFC 3339 in UTC with nanoseconds
	TypeInt       = "int"       // a signed 64-bit integer
	TypeFloat     = "float"     // a float64, shortest exact form
	TypeText      = "text"      // anything else the driver returned as text or bytes (numeric, uuid …)
	TypeBool      = "bool"
)

// Value is one watermark or key value of a row, typed so that it is bound
// back as the same kind of parameter when the read resumes.
type Value struct {
	Type string
	Text string
}

// Position is where a stream stands: the watermark and key values of the
// last row read.
type Position struct {
	Watermark Value
	Keys      []Value
}

// Token encodes the position as a URL query:
//
//	wt=<type>&wm=<watermark>[&kt=<type>&k=<key>]…
//
// with one kt and one k per tie-breaker column, in sql.key order, e.g.
// "k=4711&kt=int&wm=2026-11-01T08%3A00%3A00Z&wt=timestamp".
func (p Position) Token() string {
	v := url.Values{}
	v.Set("wt", p.Watermark.Type)
	v.Set("wm", p.Watermark.Text)
	for _, k := range p.Keys {
		v.Add("kt", k.Type)
		v.Add("k", k.Text)
	}
	return v.Encode()
}

// DecodeToken parses a Token and checks every value against its type.
func DecodeToken(token string) (Position, error) {
	v, err := url.ParseQuery(token)
	if err != nil {
		return Position{}, fmt.Errorf("bad token %q: %v", token, err)
	}
	if len(v["wt"]) != 1 || len(v["wm"]) != 1 {
		return Position{}, fmt.Errorf("bad token %q: want one wt and one wm", token)
	}
	if len(v["k"]) != len(v["kt"]) {
		return Position{}, fmt.Errorf("bad token %q: %d key values but %d key types", token, len(v["k"]), len(v["kt"]))
	}
	p := Position{Watermark: Value{Type: v.Get("wt"), Text: v.Get("wm")}}
	for i := range v["k"] {
		p.Keys = append(p.Keys, Value{Type: v["kt"][i], Text: v["k"][i]})
	}
	for _, x := range append([]Value{p.Watermark}, p.Keys...) {
		if _, err := x.Arg(); err != nil {
			return Position{}, fmt.Errorf("bad token %q: %v", token, err)
		}
	}
	return p, nil
}

// Arg returns the value as a query parameter of its type.
func (v Value) Arg() (any, error) {
	switch v.Type {
	case TypeTimestamp:
		t, err := time.Parse(time.RFC3339Nano, v.Text)
		if err != nil {
			return nil, fmt.Errorf("timestamp %q: %v", v.Text, err)
		}
		return t.UTC(), nil
	case TypeInt:
		n, err := strconv.ParseInt(v.Text, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("int %q: %v", v.Text, err)
		}
		return n, nil
	case TypeFloat:
		x, err := strconv.ParseFloat(v.Text, 64)
		if err != nil {
			return nil, fmt.Errorf("float %q: %v", v.Text, err)
		}
		return x, nil
	case TypeBool:
		b, err := strconv.ParseBool(v.Text)
		if err != nil {
			return nil, fmt.Errorf("bool %q: %v", v.Text, err)
		}
		return b, nil
	case TypeText:
		return v.Text, nil
	}
	return nil, fmt.Errorf("unknown value type %q (want timestamp, int, float, text or bool)", v.Type)
}

// valueOf types a scanned watermark or key value.
func valueOf(x any) (Value, error) {
	switch x := x.(type) {
	case nil:
		return Value{}, errors.New("is NULL (watermark and key columns must not be NULL)")
	case time.Time:
		return Value{TypeTimestamp, x.UTC().Format(time.RFC3339Nano)}, nil
	case int64:
		return Value{TypeInt, strconv.FormatInt(x, 10)}, nil
	case int32:
		return Value{TypeInt, strconv.FormatInt(int64(x), 10)}, nil
	case int:
		return Value{TypeInt, strconv.Itoa(x)}, nil
	case float64:
		return Value{TypeFloat, strconv.FormatFloat(x, 'g', -1, 64)}, nil
	case float32:
		return Value{TypeFloat, strconv.FormatFloat(float64(x), 'g', -1, 32)}, nil
	case bool:
		return Value{TypeBool, strconv.FormatBool(x)}, nil
	case string:
		return Value{TypeText, x}, nil
	case []byte:
		return Value{TypeText, string(x)}, nil
	case fmt.Stringer:
		return Value{TypeText, x.String()}, nil
	}
	return Value{}, fmt.Errorf("unsupported type %T", x)
}
