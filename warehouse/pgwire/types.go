package pgwire

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgtype"
)

// PostgreSQL type OIDs the server reports.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidUnknown     = 705
	oidBoolArr     = 1000
	oidInt2Arr     = 1005
	oidInt4Arr     = 1007
	oidTextArr     = 1009
	oidInt8Arr     = 1016
	oidFloat4Arr   = 1021
	oidFloat8Arr   = 1022
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestampA  = 1115
	oidDateArr     = 1182
	oidTimestamptz = 1184
	oidTstzArr     = 1185
	oidInterval    = 1186
	oidNumericArr  = 1231
	oidTimetz      = 1266
	oidNumeric     = 1700
	oidUUID        = 2950
)

// pgType is how a DuckDB column is presented: its OID, size and typmod.
type pgType struct {
	oid    uint32
	size   int16
	typmod int32
	elem   *pgType // arrays
	duck   duckdb.Type
	scale  int
	// asText: announced as text (a deferred statement described before
	// its types were known), so sent in this type's text form in either
	// format.
	asText bool
}

var arrayOf = map[uint32]uint32{
	oidBool: oidBoolArr, oidInt2: oidInt2Arr, oidInt4: oidInt4Arr, oidInt8: oidInt8Arr, oidText: oidTextArr,
	oidFloat4: oidFloat4Arr, oidFloat8: oidFloat8Arr, oidDate: oidDateArr, oidTimestamp: oidTimestampA,
	oidTimestamptz: oidTstzArr, oidNumeric: oidNumericArr,
}

func mapType(ti duckdb.TypeInfo) pgType {
	if ti == nil {
		return pgType{oid: oidText, size: -1, typmod: -1}
	}
	t := ti.InternalType()
	p := pgType{size: -1, typmod: -1, duck: t}
	if ti.Alias() == "JSON" {
		p.oid = oidJSON
		return p
	}
	switch t {
	case duckdb.TYPE_BOOLEAN:
		p.oid, p.size = oidBool, 1
	case duckdb.TYPE_TINYINT, duckdb.TYPE_SMALLINT, duckdb.TYPE_UTINYINT:
		p.oid, p.size = oidInt2, 2
	case duckdb.TYPE_INTEGER, duckdb.TYPE_USMALLINT:
		p.oid, p.size = oidInt4, 4
	case duckdb.TYPE_BIGINT, duckdb.TYPE_UINTEGER:
		p.oid, p.size = oidInt8, 8
	case duckdb.TYPE_UBIGINT, duckdb.TYPE_HUGEINT, duckdb.TYPE_UHUGEINT, duckdb.TYPE_BIGNUM:
		p.oid = oidNumeric
	case duckdb.TYPE_FLOAT:
		p.oid, p.size = oidFloat4, 4
	case duckdb.TYPE_DOUBLE:
		p.oid, p.size = oidFloat8, 8
	case duckdb.TYPE_DECIMAL:
		p.oid = oidNumeric
		if d, ok := ti.Details().(*duckdb.DecimalDetails); ok {
			p.typmod = (int32(d.Width)<<16 | int32(d.Scale)) + 4
			p.scale = int(d.Scale)
		}
	case duckdb.TYPE_VARCHAR, duckdb.TYPE_ENUM, duckdb.TYPE_BIT:
		p.oid = oidText
	case duckdb.TYPE_BLOB:
		p.oid = oidBytea
	case duckdb.TYPE_DATE:
		p.oid, p.size = oidDate, 4
	case duckdb.TYPE_TIME:
		p.oid, p.size = oidTime, 8
	case duckdb.TYPE_TIME_TZ:
		p.oid, p.size = oidTimetz, 12
	case duckdb.TYPE_TIMESTAMP, duckdb.TYPE_TIMESTAMP_S, duckdb.TYPE_TIMESTAMP_MS, duckdb.TYPE_TIMESTAMP_NS:
		p.oid, p.size = oidTimestamp, 8
	case duckdb.TYPE_TIMESTAMP_TZ:
		p.oid, p.size = oidTimestamptz, 8
	case duckdb.TYPE_INTERVAL:
		p.oid, p.size = oidInterval, 16
	case duckdb.TYPE_UUID:
		p.oid, p.size = oidUUID, 16
	case duckdb.TYPE_LIST, duckdb.TYPE_ARRAY:
		var child duckdb.TypeInfo
		switch d := ti.Details().(type) {
		case *duckdb.ListDetails:
			child = d.Child
		case *duckdb.ArrayDetails:
			child = d.Child
		}
		e := mapType(child)
		if a, ok := arrayOf[e.oid]; ok {
			p.oid, p.elem = a, &e
		} else {
			p.oid = oidText // nested or exotic lists are rendered as text
		}
	default: // STRUCT, MAP, UNION …: JSON text
		p.oid = oidJSON
	}
	return p
}

// paramOID is the type a parameter is announced as.
func paramOID(t duckdb.Type) uint32 {
	switch t {
	case duckdb.TYPE_BOOLEAN:
		return oidBool
	case duckdb.TYPE_TINYINT, duckdb.TYPE_SMALLINT:
		return oidInt2
	case duckdb.TYPE_INTEGER:
		return oidInt4
	case duckdb.TYPE_BIGINT:
		return oidInt8
	case duckdb.TYPE_FLOAT:
		return oidFloat4
	case duckdb.TYPE_DOUBLE:
		return oidFloat8
	case duckdb.TYPE_DECIMAL, duckdb.TYPE_HUGEINT:
		return oidNumeric
	case duckdb.TYPE_VARCHAR:
		return oidText
	case duckdb.TYPE_DATE:
		return oidDate
	case duckdb.TYPE_TIMESTAMP:
		return oidTimestamp
	case duckdb.TYPE_TIMESTAMP_TZ:
		return oidTimestamptz
	case duckdb.TYPE_BLOB:
		return oidBytea
	}
	return oidText
}

var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// encoder renders values; loc is the session's TimeZone.
type encoder struct {
	loc *time.Location
	m   *pgtype.Map
}

// appendText appends the PostgreSQL text form of v.
func (e *encoder) appendText(dst []byte, v any, t *pgType) []byte {
	switch x := v.(type) {
	case string:
		return append(dst, x...)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case int32:
		return strconv.AppendInt(dst, int64(x), 10)
	case int16:
		return strconv.AppendInt(dst, int64(x), 10)
	case int8:
		return strconv.AppendInt(dst, int64(x), 10)
	case uint8:
		return strconv.AppendUint(dst, uint64(x), 10)
	case uint16:
		return strconv.AppendUint(dst, uint64(x), 10)
	case uint32:
		return strconv.AppendUint(dst, uint64(x), 10)
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case float64:
		return appendFloat(dst, x, 64)
	case float32:
		return appendFloat(dst, float64(x), 32)
	case bool:
		if x {
			return append(dst, 't')
		}
		return append(dst, 'f')
	case time.Time:
		switch t.oid {
		case oidDate:
			return appendDate(dst, x)
		case oidTime:
			return x.AppendFormat(dst, "15:04:05.999999")
		case oidTimetz:
			return x.AppendFormat(dst, "15:04:05.999999-07")
		case oidTimestamptz:
			return appendTimestamp(dst, x.In(e.loc), true)
		}
		return appendTimestamp(dst, x.UTC(), false)
	case []byte:
		if t.oid == oidUUID && len(x) == 16 {
			return appendUUID(dst, x)
		}
		if t.oid == oidBytea {
			dst = append(dst, `\x`...)
			return hex.AppendEncode(dst, x)
		}
		return append(dst, x...)
	case duckdb.UUID:
		return appendUUID(dst, x[:])
	case duckdb.Decimal:
		return append(dst, decimalString(x.Value, int(x.Scale))...)
	case *big.Int:
		return append(dst, x.String()...)
	case duckdb.Interval:
		return appendInterval(dst, x)
	case []any:
		if t.elem == nil {
			b, _ := json.Marshal(jsonable(x))
			return append(dst, b...)
		}
		dst = append(dst, '{')
		for i, el := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			if el == nil {
				dst = append(dst, "NULL"...)
				continue
			}
			s := e.appendText(nil, el, t.elem)
			dst = appendArrayElem(dst, s)
		}
		return append(dst, '}')
	}
	b, err := json.Marshal(jsonable(v))
	if err != nil {
		return fmt.Append(dst, v)
	}
	return append(dst, b...)
}

func appendArrayElem(dst, s []byte) []byte {
	need := len(s) == 0 || strings.EqualFold(string(s), "null")
	for _, c := range s {
		if c == '"' || c == '\\' || c == ',' || c == '{' || c == '}' || c == ' ' || c == '\t' || c == '\n' {
			need = true
			break
		}
	}
	if !need {
		return append(dst, s...)
	}
	dst = append(dst, '"')
	for _, c := range s {
		if c == '"' || c == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, c)
	}
	return append(dst, '"')
}

// jsonable makes DuckDB's nested values (maps with non-string keys,
// decimals, intervals) encodable as JSON.
func jsonable(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonable(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonable(e)
		}
		return out
	case duckdb.Map:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case duckdb.Decimal:
		return json.Number(decimalString(x.Value, int(x.Scale)))
	case *big.Int:
		return json.Number(x.String())
	case duckdb.Interval:
		return string(appendInterval(nil, x))
	case []byte:
		return hex.EncodeToString(x)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return strconv.FormatFloat(x, 'g', -1, 64)
		}
	}
	return v
}

// appendDate writes t's date as PostgreSQL does (2026-11-28); years outside
// 1–9999 through time's own layout.
func appendDate(dst []byte, t time.Time) []byte {
	y, m, d := t.Date()
	if y < 1 || y > 9999 {
		return t.AppendFormat(dst, "2006-01-02")
	}
	dst = appendDigits(dst, y, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(m), 2)
	dst = append(dst, '-')
	return appendDigits(dst, d, 2)
}

// appendTimestamp writes t as PostgreSQL's text format does
// (2026-11-28 10:00:00.25+08; zone only if zone, with :MM when not whole
// hours). It is the text path's hot spot: time.AppendFormat took a third of
// psql's and \copy's encoding time.
func appendTimestamp(dst []byte, t time.Time, zone bool) []byte {
	y, m, d := t.Date()
	if y < 1 || y > 9999 {
		if zone {
			return t.AppendFormat(dst, "2006-01-02 15:04:05.999999-07:00")
		}
		return t.AppendFormat(dst, "2006-01-02 15:04:05.999999")
	}
	h, mi, sec := t.Clock()
	dst = appendDigits(dst, y, 4)
	dst = append(dst, '-')
	dst = appendDigits(dst, int(m), 2)
	dst = append(dst, '-')
	dst = appendDigits(dst, d, 2)
	dst = append(dst, ' ')
	dst = appendDigits(dst, h, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, mi, 2)
	dst = append(dst, ':')
	dst = appendDigits(dst, sec, 2)
	if us := t.Nanosecond() / 1000; us != 0 {
		n := 6
		for us%10 == 0 {
			us /= 10
			n--
		}
		dst = append(dst, '.')
		dst = appendDigits(dst, us, n)
	}
	if zone {
		_, off := t.Zone()
		if off < 0 {
			dst = append(dst, '-')
			off = -off
		} else {
			dst = append(dst, '+')
		}
		dst = appendDigits(dst, off/3600, 2)
		if mm := off % 3600 / 60; mm != 0 {
			dst = append(dst, ':')
			dst = appendDigits(dst, mm, 2)
		}
	}
	return dst
}

// appendDigits writes v (≥ 0) with at least n digits, zero-padded.
func appendDigits(dst []byte, v, n int) []byte {
	var buf [20]byte
	i := len(buf)
	for v >= 10 || n > 1 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		n--
	}
	i--
	buf[i] = byte('0' + v)
	return append(dst, buf[i:]...)
}

func appendFloat(dst []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, "NaN"...)
	case math.IsInf(f, 1):
		return append(dst, "Infinity"...)
	case math.IsInf(f, -1):
		return append(dst, "-Infinity"...)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, bits)
}

func appendUUID(dst, b []byte) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], b[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], b[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], b[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], b[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], b[10:16])
	return append(dst, buf[:]...)
}

func decimalString(v *big.Int, scale int) string {
	if v == nil {
		return "0"
	}
	s := new(big.Int).Abs(v).String()
	neg := v.Sign() < 0
	if scale > 0 {
		for len(s) <= scale {
			s = "0" + s
		}
		s = s[:len(s)-scale] + "." + s[len(s)-scale:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

func appendInterval(dst []byte, iv duckdb.Interval) []byte {
	if y, m := iv.Months/12, iv.Months%12; y != 0 || m != 0 {
		if y != 0 {
			dst = fmt.Appendf(dst, "%d years ", y)
		}
		if m != 0 {
			dst = fmt.Appendf(dst, "%d mons ", m)
		}
	}
	if iv.Days != 0 {
		dst = fmt.Appendf(dst, "%d days ", iv.Days)
	}
	us := iv.Micros
	sign := ""
	if us < 0 {
		sign, us = "-", -us
	}
	h, us := us/3_600_000_000, us%3_600_000_000
	m, us := us/60_000_000, us%60_000_000
	s, us := us/1_000_000, us%1_000_000
	dst = fmt.Appendf(dst, "%s%02d:%02d:%02d", sign, h, m, s)
	if us != 0 {
		frac := strings.TrimRight(fmt.Sprintf("%06d", us), "0")
		dst = append(append(dst, '.'), frac...)
	}
	return dst
}

// appendBinary appends the PostgreSQL binary form of v.
func (e *encoder) appendBinary(dst []byte, v any, t *pgType) ([]byte, error) {
	switch t.oid {
	case oidBool:
		if b, _ := v.(bool); b {
			return append(dst, 1), nil
		}
		return append(dst, 0), nil
	case oidInt2:
		n, _ := toInt64(v)
		return binary.BigEndian.AppendUint16(dst, uint16(n)), nil
	case oidInt4:
		n, _ := toInt64(v)
		return binary.BigEndian.AppendUint32(dst, uint32(n)), nil
	case oidInt8:
		n, _ := toInt64(v)
		return binary.BigEndian.AppendUint64(dst, uint64(n)), nil
	case oidFloat4:
		f, _ := v.(float32)
		return binary.BigEndian.AppendUint32(dst, math.Float32bits(f)), nil
	case oidFloat8:
		f, _ := v.(float64)
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(f)), nil
	case oidText, oidVarchar, oidJSON:
		return e.appendText(dst, v, t), nil
	case oidBytea:
		b, _ := v.([]byte)
		return append(dst, b...), nil
	case oidUUID:
		switch x := v.(type) {
		case []byte:
			return append(dst, x...), nil
		case duckdb.UUID:
			return append(dst, x[:]...), nil
		}
	case oidTimestamp, oidTimestamptz:
		if tm, ok := v.(time.Time); ok {
			us := tm.Sub(pgEpoch).Microseconds()
			if t.oid == oidTimestamp {
				us = time.Date(tm.Year(), tm.Month(), tm.Day(), tm.Hour(), tm.Minute(), tm.Second(), tm.Nanosecond(), time.UTC).Sub(pgEpoch).Microseconds()
			}
			return binary.BigEndian.AppendUint64(dst, uint64(us)), nil
		}
	case oidDate:
		if tm, ok := v.(time.Time); ok {
			d := time.Date(tm.Year(), tm.Month(), tm.Day(), 0, 0, 0, 0, time.UTC).Sub(pgEpoch).Hours() / 24
			return binary.BigEndian.AppendUint32(dst, uint32(int32(math.Floor(d)))), nil
		}
	case oidTime:
		if tm, ok := v.(time.Time); ok {
			us := int64(tm.Hour())*3_600_000_000 + int64(tm.Minute())*60_000_000 + int64(tm.Second())*1_000_000 + int64(tm.Nanosecond()/1000)
			return binary.BigEndian.AppendUint64(dst, uint64(us)), nil
		}
	case oidInterval:
		if iv, ok := v.(duckdb.Interval); ok {
			dst = binary.BigEndian.AppendUint64(dst, uint64(iv.Micros))
			dst = binary.BigEndian.AppendUint32(dst, uint32(iv.Days))
			return binary.BigEndian.AppendUint32(dst, uint32(iv.Months)), nil
		}
	}
	// numeric, arrays and the rest: pgx's codecs.
	pv, err := e.pgValue(v, t)
	if err != nil {
		return nil, err
	}
	return e.m.Encode(t.oid, pgtype.BinaryFormatCode, pv, dst)
}

// pgValue converts a DuckDB value to what pgx's codecs take.
func (e *encoder) pgValue(v any, t *pgType) (any, error) {
	switch x := v.(type) {
	case duckdb.Decimal:
		return pgtype.Numeric{Int: x.Value, Exp: -int32(x.Scale), Valid: true}, nil
	case *big.Int:
		return pgtype.Numeric{Int: x, Valid: true}, nil
	case uint64:
		return pgtype.Numeric{Int: new(big.Int).SetUint64(x), Valid: true}, nil
	case []any:
		if t.elem == nil {
			return string(e.appendText(nil, x, t)), nil
		}
		out := make([]any, len(x))
		for i, el := range x {
			if el == nil {
				continue
			}
			pv, err := e.pgValue(el, t.elem)
			if err != nil {
				return nil, err
			}
			out[i] = pv
		}
		return out, nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	}
	return v, nil
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint64:
		return int64(x), true
	}
	return 0, false
}

// decodeParam turns a Bind parameter into a value DuckDB binds, by the
// type DuckDB inferred for it (oid is what the client announced or 0).
func decodeParam(m *pgtype.Map, oid uint32, format int16, data []byte, want duckdb.Type) (any, error) {
	if data == nil {
		return nil, nil
	}
	if arrayElem[oid] != 0 {
		return decodeArray(m, oid, format, data)
	}
	if format == 0 {
		s := string(data)
		switch want {
		case duckdb.TYPE_BOOLEAN:
			switch strings.ToLower(strings.TrimSpace(s)) {
			case "t", "true", "on", "yes", "1":
				return true, nil
			case "f", "false", "off", "no", "0":
				return false, nil
			}
			return nil, fmt.Errorf("invalid boolean %q", s)
		case duckdb.TYPE_TINYINT, duckdb.TYPE_SMALLINT, duckdb.TYPE_INTEGER, duckdb.TYPE_BIGINT:
			return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		case duckdb.TYPE_FLOAT, duckdb.TYPE_DOUBLE:
			return strconv.ParseFloat(strings.TrimSpace(s), 64)
		}
		return s, nil
	}
	if oid == 0 {
		oid = paramOID(want)
	}
	var v any
	if err := m.Scan(oid, pgtype.BinaryFormatCode, data, &v); err != nil {
		return nil, fmt.Errorf("parameter of type %d: %w", oid, err)
	}
	switch x := v.(type) {
	case pgtype.Numeric:
		f, err := x.Float64Value()
		if err != nil {
			return nil, err
		}
		return f.Float64, nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case [16]byte:
		return string(appendUUID(nil, x[:])), nil
	}
	return v, nil
}

// arrayElem maps the array types a client may send a parameter as (psycopg
// sends a Python list as one; "kind = any(%s)") to their element types.
var arrayElem = map[uint32]uint32{
	oidBoolArr: oidBool, oidInt2Arr: oidInt2, oidInt4Arr: oidInt4, oidInt8Arr: oidInt8, oidTextArr: oidText,
	1015: oidVarchar, oidFloat4Arr: oidFloat4, oidFloat8Arr: oidFloat8, oidNumericArr: oidNumeric,
	oidDateArr: oidDate, oidTimestampA: oidTimestamp, oidTstzArr: oidTimestamptz,
}

// decodeArray decodes an array parameter (text '{1,3}' or binary) into a
// typed Go slice DuckDB binds as a LIST: []int64, []float64, []bool,
// []string or []time.Time (NULL elements: a []any).
func decodeArray(m *pgtype.Map, oid uint32, format int16, data []byte) (any, error) {
	var v []any
	if err := m.Scan(oid, format, data, &v); err != nil {
		return nil, fmt.Errorf("array parameter of type %d: %w", oid, err)
	}
	out := make([]any, len(v))
	hasNull := false
	for i, e := range v {
		switch x := e.(type) {
		case nil:
			hasNull = true
		case int16:
			out[i] = int64(x)
		case int32:
			out[i] = int64(x)
		case float32:
			out[i] = float64(x)
		case pgtype.Numeric:
			f, err := x.Float64Value()
			if err != nil {
				return nil, err
			}
			out[i] = f.Float64
		default:
			out[i] = x
		}
	}
	if hasNull || len(out) == 0 {
		return out, nil
	}
	switch arrayElem[oid] {
	case oidInt2, oidInt4, oidInt8:
		return typed[int64](out), nil
	case oidFloat4, oidFloat8, oidNumeric:
		return typed[float64](out), nil
	case oidBool:
		return typed[bool](out), nil
	case oidText, oidVarchar:
		return typed[string](out), nil
	case oidDate, oidTimestamp, oidTimestamptz:
		return typed[time.Time](out), nil
	}
	return out, nil
}

func typed[T any](xs []any) []T {
	out := make([]T, len(xs))
	for i, x := range xs {
		out[i], _ = x.(T)
	}
	return out
}

// untypedArray reads a parameter neither the client nor DuckDB typed that
// is a PostgreSQL array literal ('{1,3}', '{crowd,lifeline}': a list a
// client sent as text) into a list: numbers when every element is one, with
// the same list as strings as other (for a text column), else strings.
func untypedArray(m *pgtype.Map, data []byte) (v, other any, ok bool) {
	s := strings.TrimSpace(string(data))
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, nil, false
	}
	var elems []*string
	if err := m.Scan(oidTextArr, pgtype.TextFormatCode, []byte(s), &elems); err != nil {
		return nil, nil, false
	}
	strs := make([]string, len(elems))
	ints := make([]int64, len(elems))
	floats := make([]float64, len(elems))
	isInt, isFloat := len(elems) > 0, len(elems) > 0
	for i, e := range elems {
		if e == nil {
			return nil, nil, false // NULL elements: leave the text to DuckDB
		}
		strs[i] = *e
		var err error
		if ints[i], err = strconv.ParseInt(*e, 10, 64); err != nil {
			isInt = false
		}
		if floats[i], err = strconv.ParseFloat(*e, 64); err != nil {
			isFloat = false
		}
	}
	switch {
	case isInt:
		return ints, strs, true
	case isFloat:
		return floats, strs, true
	}
	return strs, nil, true
}
