package extracts

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

// Column is one output column: its name and DuckDB type name.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// kind is how a column's values are rendered.
type kind int

const (
	kString kind = iota
	kInt
	kFloat
	kBool
	kTimestampTZ
	kTimestamp
	kDate
)

func kindOf(duckType string) kind {
	t := strings.ToUpper(duckType)
	switch {
	case t == "BOOLEAN":
		return kBool
	case t == "TINYINT" || t == "SMALLINT" || t == "INTEGER" || t == "BIGINT" || t == "UTINYINT" || t == "USMALLINT" || t == "UINTEGER" || t == "UBIGINT" || t == "HUGEINT":
		return kInt
	case t == "FLOAT" || t == "DOUBLE" || strings.HasPrefix(t, "DECIMAL"):
		return kFloat
	case t == "TIMESTAMPTZ" || t == "TIMESTAMP WITH TIME ZONE":
		return kTimestampTZ
	case strings.HasPrefix(t, "TIMESTAMP"):
		return kTimestamp
	case t == "DATE":
		return kDate
	}
	return kString
}

// totaler is a rowWriter that wants the row count before the header.
type totaler interface{ SetTotal(n int64) }

// rowWriter renders rows into one output format.
type rowWriter interface {
	// Header starts the output with the columns.
	Header(cols []Column) error
	// Row writes one row of normalised values (nil, int64, float64, bool,
	// string, time.Time).
	Row(vals []any) error
	// Close finishes the output (it does not close the underlying writer).
	Close() error
}

// format is one output format in the explicit registry below.
type format struct {
	ext  string
	open func(w io.Writer, d Definition) rowWriter
}

// formats is every output format.
var formats = map[string]format{
	"csv":     {ext: "csv", open: newCSV},
	"xlsx":    {ext: "xlsx", open: newXLSX},
	"parquet": {ext: "parquet", open: newParquet},
}

// normalize maps a value scanned from DuckDB to the few types writers know.
func normalize(v any) any {
	switch x := v.(type) {
	case nil, string, bool, int64, float64, time.Time:
		return x
	case int:
		return int64(x)
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return int64(x)
	case uint16:
		return int64(x)
	case uint32:
		return int64(x)
	case uint64:
		if x > math.MaxInt64 {
			return strconv.FormatUint(x, 10)
		}
		return int64(x)
	case float32:
		return float64(x)
	case []byte:
		return string(x)
	case *big.Int:
		if x.IsInt64() {
			return x.Int64()
		}
		return x.String()
	case fmt.Stringer:
		return x.String()
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Struct {
		// duckdb.Decimal and friends have a Float64 method.
		if m := rv.MethodByName("Float64"); m.IsValid() && m.Type().NumIn() == 0 && m.Type().NumOut() == 1 {
			if f, ok := m.Call(nil)[0].Interface().(float64); ok {
				return f
			}
		}
	}
	return fmt.Sprint(v)
}

// text renders a value as the text of a CSV cell.
func text(v any, k kind, loc *time.Location, buf []byte) []byte {
	switch x := v.(type) {
	case nil:
		return buf
	case string:
		return append(buf, x...)
	case int64:
		return strconv.AppendInt(buf, x, 10)
	case float64:
		if a := math.Abs(x); a != 0 && (a < 1e-6 || a >= 1e15) {
			return strconv.AppendFloat(buf, x, 'g', -1, 64)
		}
		return strconv.AppendFloat(buf, x, 'f', -1, 64)
	case bool:
		return strconv.AppendBool(buf, x)
	case time.Time:
		switch k {
		case kDate:
			return x.UTC().AppendFormat(buf, "2006-01-02")
		case kTimestampTZ:
			x = x.In(loc)
		default:
			x = x.UTC()
		}
		if x.Nanosecond() != 0 {
			return x.AppendFormat(buf, "2006-01-02 15:04:05.999999")
		}
		return x.AppendFormat(buf, "2006-01-02 15:04:05")
	}
	return fmt.Append(buf, v)
}

// ---- CSV ----

type csvWriter struct {
	w     *bufio.Writer
	enc   io.WriteCloser // GB18030 transformer, or nil
	kinds []kind
	loc   *time.Location
	buf   []byte
	cell  []byte
}

func newCSV(w io.Writer, d Definition) rowWriter {
	c := &csvWriter{loc: d.Location()}
	if d.Encoding == "gb18030" {
		c.enc = transform.NewWriter(w, simplifiedchinese.GB18030.NewEncoder())
		c.w = bufio.NewWriterSize(c.enc, 256<<10)
	} else {
		c.w = bufio.NewWriterSize(w, 256<<10)
		c.w.WriteString("\ufeff") // UTF-8 byte order mark: Excel then reads UTF-8
	}
	return c
}

func (c *csvWriter) Header(cols []Column) error {
	c.kinds = make([]kind, len(cols))
	c.buf = c.buf[:0]
	for i, col := range cols {
		c.kinds[i] = kindOf(col.Type)
		if i > 0 {
			c.buf = append(c.buf, ',')
		}
		c.buf = appendCSVField(c.buf, []byte(col.Name), false)
	}
	c.buf = append(c.buf, '\r', '\n')
	_, err := c.w.Write(c.buf)
	return err
}

func (c *csvWriter) Row(vals []any) error {
	c.buf = c.buf[:0]
	for i, v := range vals {
		if i > 0 {
			c.buf = append(c.buf, ',')
		}
		c.cell = text(v, c.kinds[i], c.loc, c.cell[:0])
		_, isStr := v.(string)
		c.buf = appendCSVField(c.buf, c.cell, isStr)
	}
	c.buf = append(c.buf, '\r', '\n')
	_, err := c.w.Write(c.buf)
	return err
}

func (c *csvWriter) Close() error {
	if err := c.w.Flush(); err != nil {
		return err
	}
	if c.enc != nil {
		return c.enc.Close()
	}
	return nil
}

// appendCSVField quotes per RFC 4180 when needed. Text that a spreadsheet
// would run as a formula (=, +, -, @ first) gets a leading apostrophe:
// feeds are untrusted and these files are opened in Excel.
func appendCSVField(buf, f []byte, isText bool) []byte {
	if isText && len(f) > 0 {
		switch f[0] {
		case '=', '+', '@', '\t', '\r':
			f = append([]byte{'\''}, f...)
		case '-':
			if len(f) > 1 && (f[1] < '0' || f[1] > '9') && f[1] != '.' {
				f = append([]byte{'\''}, f...)
			}
		}
	}
	quote := false
	for _, b := range f {
		if b == ',' || b == '"' || b == '\n' || b == '\r' {
			quote = true
			break
		}
	}
	if len(f) > 0 && (f[0] == ' ' || f[len(f)-1] == ' ') {
		quote = true
	}
	if !quote {
		return append(buf, f...)
	}
	buf = append(buf, '"')
	for _, b := range f {
		if b == '"' {
			buf = append(buf, '"')
		}
		buf = append(buf, b)
	}
	return append(buf, '"')
}

// ---- XLSX ----

// MaxXLSXRows is Excel's sheet limit (1,048,576) less the header row.
const MaxXLSXRows = 1048575

// ErrTooManyRows: more rows than an Excel sheet holds.
var ErrTooManyRows = errors.New("超过 Excel 工作表行数上限 more rows than an Excel sheet holds (1,048,575 + header); use csv or parquet")

type xlsxWriter struct {
	total  int64 // rows to come (for the sheet's dimension), -1 unknown
	out    io.Writer
	f      *excelize.File
	sw     *excelize.StreamWriter
	kinds  []kind
	loc    *time.Location
	row    int
	styles map[kind]int
	cells  []any
}

// sheetName is the one sheet of an extract workbook.
const sheetName = "数据 data"

func newXLSX(w io.Writer, d Definition) rowWriter {
	return &xlsxWriter{out: w, loc: d.Location(), total: -1}
}

// SetTotal tells the writer how many rows will come: the sheet's dimension
// (A1:H251) is written before the rows, and readers such as openpyxl's
// read-only mode trust it.
func (x *xlsxWriter) SetTotal(n int64) { x.total = n }

func (x *xlsxWriter) Header(cols []Column) error {
	x.f = excelize.NewFile()
	if err := x.f.SetSheetName("Sheet1", sheetName); err != nil {
		return err
	}
	// Fixed document properties: a re-run must give the same bytes.
	if err := x.f.SetDocProps(&excelize.DocProperties{Creator: "citybrain", Created: "2000-01-01T00:00:00Z", Modified: "2000-01-01T00:00:00Z"}); err != nil {
		return err
	}
	x.styles = map[kind]int{}
	// In a fixed order: style ids are part of the bytes.
	for _, ks := range []struct {
		k kind
		f string
	}{{kTimestampTZ, "yyyy-mm-dd hh:mm:ss"}, {kTimestamp, "yyyy-mm-dd hh:mm:ss"}, {kDate, "yyyy-mm-dd"}} {
		k, fmtStr := ks.k, ks.f
		id, err := x.f.NewStyle(&excelize.Style{CustomNumFmt: &fmtStr})
		if err != nil {
			return err
		}
		x.styles[k] = id
	}
	bold, err := x.f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	if x.total >= 0 && len(cols) > 0 {
		last, err := excelize.CoordinatesToCellName(len(cols), int(min(x.total, MaxXLSXRows)+1))
		if err != nil {
			return err
		}
		if err := x.f.SetSheetDimension(sheetName, "A1:"+last); err != nil {
			return err
		}
	}
	if x.sw, err = x.f.NewStreamWriter(sheetName); err != nil {
		return err
	}
	x.kinds = make([]kind, len(cols))
	head := make([]any, len(cols))
	for i, c := range cols {
		x.kinds[i] = kindOf(c.Type)
		head[i] = excelize.Cell{StyleID: bold, Value: c.Name}
	}
	if err := x.sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	x.row = 1
	x.cells = make([]any, len(cols))
	return x.sw.SetRow("A1", head)
}

func (x *xlsxWriter) Row(vals []any) error {
	if x.row > MaxXLSXRows {
		return ErrTooManyRows
	}
	x.row++
	for i, v := range vals {
		switch t := v.(type) {
		case time.Time:
			if x.kinds[i] == kTimestampTZ {
				t = t.In(x.loc)
			} else {
				t = t.UTC()
			}
			// Excel has no zones: store the wall-clock time.
			wall := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
			x.cells[i] = excelize.Cell{StyleID: x.styles[x.kinds[i]], Value: wall}
		default:
			x.cells[i] = v
		}
	}
	cell, err := excelize.CoordinatesToCellName(1, x.row)
	if err != nil {
		return err
	}
	return x.sw.SetRow(cell, x.cells)
}

func (x *xlsxWriter) Close() error {
	if x.sw == nil {
		return errors.New("xlsx: no header")
	}
	if err := x.sw.Flush(); err != nil {
		return err
	}
	_, err := x.f.WriteTo(x.out)
	x.f.Close()
	return err
}

// ---- Parquet ----

// orderedGroup is a Parquet group whose fields keep the order given
// (parquet.Group sorts them by name; an extract keeps its column order).
type orderedGroup struct {
	names []string
	nodes []parquet.Node
}

type orderedField struct {
	parquet.Node
	name string
}

func (f orderedField) Name() string                           { return f.name }
func (f orderedField) Value(base reflect.Value) reflect.Value { return reflect.Value{} }

func (g *orderedGroup) ID() int                     { return 0 }
func (g *orderedGroup) String() string              { return "extract" }
func (g *orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g *orderedGroup) Optional() bool              { return false }
func (g *orderedGroup) Repeated() bool              { return false }
func (g *orderedGroup) Required() bool              { return true }
func (g *orderedGroup) Leaf() bool                  { return false }
func (g *orderedGroup) Encoding() encoding.Encoding { return nil }
func (g *orderedGroup) Compression() compress.Codec { return nil }
func (g *orderedGroup) GoType() reflect.Type        { return reflect.TypeOf(map[string]any{}) }
func (g *orderedGroup) Fields() []parquet.Field {
	out := make([]parquet.Field, len(g.nodes))
	for i := range g.nodes {
		out[i] = orderedField{Node: g.nodes[i], name: g.names[i]}
	}
	return out
}

type parquetWriter struct {
	out   io.Writer
	w     *parquet.GenericWriter[any]
	kinds []kind
	rows  []parquet.Row
	vals  []parquet.Value
	n     int
}

// parquetBatch is how many rows are handed to the writer at once.
const parquetBatch = 4096

func newParquet(w io.Writer, d Definition) rowWriter { return &parquetWriter{out: w} }

func (p *parquetWriter) Header(cols []Column) error {
	g := &orderedGroup{}
	p.kinds = make([]kind, len(cols))
	for i, c := range cols {
		k := kindOf(c.Type)
		p.kinds[i] = k
		var n parquet.Node
		switch k {
		case kBool:
			n = parquet.Leaf(parquet.BooleanType)
		case kInt:
			n = parquet.Int(64)
		case kFloat:
			n = parquet.Leaf(parquet.DoubleType)
		case kTimestampTZ:
			n = parquet.TimestampAdjusted(parquet.Microsecond, true)
		case kTimestamp:
			n = parquet.TimestampAdjusted(parquet.Microsecond, false)
		case kDate:
			n = parquet.Date()
		default:
			n = parquet.String()
		}
		g.names = append(g.names, c.Name)
		g.nodes = append(g.nodes, parquet.Optional(n))
	}
	schema := parquet.NewSchema("extract", g)
	p.w = parquet.NewGenericWriter[any](p.out, schema, parquet.Compression(&parquet.Snappy), parquet.CreatedBy("citybrain", "1", ""),
		parquet.PageBufferSize(256<<10))
	p.rows = make([]parquet.Row, parquetBatch)
	p.vals = make([]parquet.Value, parquetBatch*len(cols))
	for i := range p.rows {
		p.rows[i] = p.vals[i*len(cols) : (i+1)*len(cols) : (i+1)*len(cols)]
	}
	return nil
}

func (p *parquetWriter) Row(vals []any) error {
	r := p.rows[p.n]
	for i, v := range vals {
		var pv parquet.Value
		switch x := v.(type) {
		case nil:
			r[i] = parquet.NullValue().Level(0, 0, i)
			continue
		case int64:
			pv = parquet.Int64Value(x)
		case float64:
			pv = parquet.DoubleValue(x)
		case bool:
			pv = parquet.BooleanValue(x)
		case string:
			if p.kinds[i] != kString {
				r[i] = parquet.NullValue().Level(0, 0, i)
				continue
			}
			pv = parquet.ByteArrayValue([]byte(x))
		case time.Time:
			if p.kinds[i] == kDate {
				days := x.UTC().Unix() / 86400
				if x.UTC().Unix() < 0 && x.UTC().Unix()%86400 != 0 {
					days--
				}
				pv = parquet.Int32Value(int32(days))
			} else {
				pv = parquet.Int64Value(x.UnixMicro())
			}
		default:
			pv = parquet.ByteArrayValue([]byte(fmt.Sprint(x)))
		}
		r[i] = pv.Level(0, 1, i)
	}
	p.n++
	if p.n == len(p.rows) {
		return p.flush()
	}
	return nil
}

func (p *parquetWriter) flush() error {
	if p.n == 0 {
		return nil
	}
	_, err := p.w.WriteRows(p.rows[:p.n])
	p.n = 0
	return err
}

func (p *parquetWriter) Close() error {
	if p.w == nil {
		return errors.New("parquet: no header")
	}
	if err := p.flush(); err != nil {
		return err
	}
	return p.w.Close()
}
