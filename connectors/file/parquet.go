package file

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"citybrain/connectors"
)

// parquetBatch is how many rows are decoded at once.
const parquetBatch = 256

// parquetRows reads a Parquet file row group by row group, a few rows at a
// time, so memory stays bounded by the pages being read.
type parquetRows struct {
	f      *os.File
	pf     *parquet.File
	size   int64
	total  int64
	header []string
	leaves []parquetLeaf
	groups []parquet.RowGroup
	g      int   // next row group
	start  int64 // row number (0-based) of the first row of the current group
	rows   parquet.Rows
	buf    []parquet.Row
	have   int   // rows in buf
	at     int   // next row in buf
	n      int64 // rows returned or skipped (the last row's number)
	after  int64
	col    [][]string // per leaf, the values of the current row
}

type parquetLeaf struct {
	name     string
	repeated bool
	text     func(parquet.Value) string
	quote    bool // a JSON string inside a repeated column's array
}

func (s *Source) openParquet(path string, after int64) (opened, error) {
	f, err := os.Open(path)
	if err != nil {
		return opened{}, fmt.Errorf("%w: %v", connectors.ErrPermanent, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return opened{}, fmt.Errorf("%w: %v", connectors.ErrPermanent, err)
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		f.Close()
		return opened{}, fmt.Errorf("%w: %s: not a readable parquet file: %v", connectors.ErrPermanent, path, err)
	}
	p := &parquetRows{f: f, pf: pf, size: st.Size(), total: pf.NumRows(), groups: pf.RowGroups(), after: after}
	schema := pf.Schema()
	for i, cp := range schema.Columns() {
		name := strings.Join(cp, ".")
		leaf, ok := schema.Lookup(cp...)
		if !ok || leaf.ColumnIndex != i {
			f.Close()
			return opened{}, fmt.Errorf("%w: %s: column %s not found in its own schema", connectors.ErrPermanent, path, name)
		}
		text, quote := valueText(leaf.Node.Type())
		p.header = append(p.header, name)
		p.leaves = append(p.leaves, parquetLeaf{name: name, repeated: leaf.MaxRepetitionLevel > 0, text: text, quote: quote})
	}
	p.col = make([][]string, len(p.leaves))
	p.buf = make([]parquet.Row, parquetBatch)
	if after > 0 {
		p.n = min(after, p.total)
	}
	return opened{rows: p, fixed: true, header: p.header}, nil
}

func (p *parquetRows) next() (row, error) {
	for p.at >= p.have {
		if p.rows == nil {
			// Skip whole row groups before the resume point.
			for p.g < len(p.groups) && p.start+p.groups[p.g].NumRows() <= p.n {
				p.start += p.groups[p.g].NumRows()
				p.g++
			}
			if p.g >= len(p.groups) {
				return row{}, io.EOF
			}
			p.rows = p.groups[p.g].Rows()
			if skip := p.n - p.start; skip > 0 {
				if err := p.rows.SeekToRow(skip); err != nil {
					return row{pos: p.n + 1}, err
				}
			}
		}
		n, err := p.rows.ReadRows(p.buf)
		p.have, p.at = n, 0
		if err == io.EOF || (err == nil && n == 0) {
			if n > 0 {
				break
			}
			p.rows.Close()
			p.rows = nil
			p.start += p.groups[p.g].NumRows()
			p.g++
			continue
		}
		if err != nil {
			return row{pos: p.n + 1}, err
		}
	}
	r := p.buf[p.at]
	p.at++
	p.n++
	for i := range p.col {
		p.col[i] = p.col[i][:0]
	}
	for _, v := range r {
		c := v.Column()
		if c < 0 || c >= len(p.leaves) {
			continue
		}
		if v.IsNull() {
			continue
		}
		p.col[c] = append(p.col[c], p.leaves[c].text(v))
	}
	cells := make([]string, len(p.leaves))
	for i, l := range p.leaves {
		vals := p.col[i]
		switch {
		case !l.repeated && len(vals) > 0:
			cells[i] = vals[0]
		case l.repeated && len(vals) > 0:
			var b strings.Builder
			b.WriteByte('[')
			for k, v := range vals {
				if k > 0 {
					b.WriteByte(',')
				}
				if l.quote {
					q, _ := json.Marshal(v)
					b.Write(q)
				} else {
					b.WriteString(v)
				}
			}
			b.WriteByte(']')
			cells[i] = b.String()
		}
	}
	return row{pos: p.n, cells: cells}, nil
}

func (p *parquetRows) consumed() int64 {
	if p.total == 0 {
		return p.size
	}
	return p.size * min(p.n, p.total) / p.total
}

// encode: a parquet row's reject is a JSON object of its columns, which
// Reparse flattens back into the same header and cells.
func (p *parquetRows) encode(cells []string) []byte { return encodeJSON(p.header, cells) }

func (p *parquetRows) Close() error {
	if p.rows != nil {
		p.rows.Close()
	}
	return p.f.Close()
}

// valueText returns how a column's values are rendered as text, and whether
// that text is a JSON string (not a number or boolean) inside an array.
func valueText(t parquet.Type) (func(parquet.Value) string, bool) {
	if lt := t.LogicalType(); lt != nil {
		switch l := lt.Value.(type) {
		case *format.TimestampType:
			unit := unitOf(l.Unit)
			return func(v parquet.Value) string {
				t := epochTime(v.Int64(), unit)
				if l.IsAdjustedToUTC {
					return t.Format(time.RFC3339Nano)
				}
				// A local wall time: no offset, so the mapping's timezone applies.
				return t.Format("2006-01-02T15:04:05.999999999")
			}, true
		case *format.DateType:
			return func(v parquet.Value) string {
				return time.Unix(int64(v.Int32())*86400, 0).UTC().Format("2006-01-02")
			}, true
		case *format.TimeType:
			unit := unitOf(l.Unit)
			return func(v parquet.Value) string {
				var d int64
				if v.Kind() == parquet.Int32 {
					d = int64(v.Int32())
				} else {
					d = v.Int64()
				}
				return epochTime(d, unit).UTC().Format("15:04:05.999999999")
			}, true
		case *format.DecimalType:
			scale := int(l.Scale)
			return func(v parquet.Value) string { return decimalText(v, scale) }, false
		case *format.UUIDType:
			return func(v parquet.Value) string {
				b := v.ByteArray()
				if len(b) != 16 {
					return hex.EncodeToString(b)
				}
				h := hex.EncodeToString(b)
				return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
			}, true
		}
	}
	if ct := t.ConvertedType(); ct != nil {
		switch *ct {
		case deprecated.TimestampMillis:
			return func(v parquet.Value) string { return epochTime(v.Int64(), time.Millisecond).Format(time.RFC3339Nano) }, true
		case deprecated.TimestampMicros:
			return func(v parquet.Value) string { return epochTime(v.Int64(), time.Microsecond).Format(time.RFC3339Nano) }, true
		case deprecated.Date:
			return func(v parquet.Value) string {
				return time.Unix(int64(v.Int32())*86400, 0).UTC().Format("2006-01-02")
			}, true
		}
	}
	switch t.Kind() {
	case parquet.Boolean:
		return func(v parquet.Value) string { return strconv.FormatBool(v.Boolean()) }, false
	case parquet.Int32:
		return func(v parquet.Value) string { return strconv.FormatInt(int64(v.Int32()), 10) }, false
	case parquet.Int64:
		return func(v parquet.Value) string { return strconv.FormatInt(v.Int64(), 10) }, false
	case parquet.Int96:
		return func(v parquet.Value) string { return int96Time(v.Int96()).Format(time.RFC3339Nano) }, true
	case parquet.Float:
		return func(v parquet.Value) string { return strconv.FormatFloat(float64(v.Float()), 'g', -1, 32) }, false
	case parquet.Double:
		return func(v parquet.Value) string { return strconv.FormatFloat(v.Double(), 'g', -1, 64) }, false
	}
	// BYTE_ARRAY and FIXED_LEN_BYTE_ARRAY: strings, enums, JSON, or bytes.
	return func(v parquet.Value) string { return string(v.ByteArray()) }, true
}

func unitOf(u format.TimeUnit) time.Duration {
	switch u.Value.(type) {
	case *format.MilliSeconds:
		return time.Millisecond
	case *format.MicroSeconds:
		return time.Microsecond
	}
	return time.Nanosecond
}

func epochTime(n int64, unit time.Duration) time.Time {
	switch unit {
	case time.Millisecond:
		return time.UnixMilli(n).UTC()
	case time.Microsecond:
		return time.UnixMicro(n).UTC()
	}
	return time.Unix(0, n).UTC()
}

// int96Time decodes the legacy INT96 timestamp: nanoseconds of the day,
// then the Julian day.
func int96Time(i deprecated.Int96) time.Time {
	nanos := int64(i[1])<<32 | int64(i[0])
	day := int64(i[2]) - 2440588 // Julian day of 1970-01-01
	return time.Unix(day*86400, nanos).UTC()
}

// decimalText renders an unscaled decimal (INT32, INT64 or big-endian
// two's-complement bytes) with its scale.
func decimalText(v parquet.Value, scale int) string {
	var n big.Int
	switch v.Kind() {
	case parquet.Int32:
		n.SetInt64(int64(v.Int32()))
	case parquet.Int64:
		n.SetInt64(v.Int64())
	default:
		b := v.ByteArray()
		n.SetBytes(b)
		if len(b) > 0 && b[0]&0x80 != 0 { // negative: subtract 2^(8·len)
			var m big.Int
			m.Lsh(big.NewInt(1), uint(8*len(b)))
			n.Sub(&n, &m)
		}
	}
	if scale <= 0 {
		return n.String()
	}
	neg := n.Sign() < 0
	digits := new(big.Int).Abs(&n).String()
	for len(digits) <= scale {
		digits = "0" + digits
	}
	s := digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	if neg {
		s = "-" + s
	}
	return s
}
