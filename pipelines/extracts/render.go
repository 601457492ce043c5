package extracts

import (
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"
	pqformat "github.com/parquet-go/parquet-go/format"
	"github.com/xuri/excelize/v2"
)

// Column is one output column: its name and DuckDB type name.
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Label is the Chinese label of a lake table's field of that name
	// (bilingual headers); empty for computed columns.
	Label string `json:"label,omitempty"`
}

// Heading is the column's header cell: "观测时间 observed_at", or the name
// when it has no label.
func (c Column) Heading() string {
	if c.Label == "" {
		return c.Name
	}
	return c.Label + " " + c.Name
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
	// Batch writes a batch of rows (it does not keep it).
	Batch(b *colBatch) error
	// Close finishes the output (it does not close the underlying writer).
	Close() error
}

// asyncWriter is a rowWriter that may keep a batch after BatchAsync
// returns: done gives it back.
type asyncWriter interface {
	BatchAsync(b *colBatch, done func()) error
}

// aborter is a rowWriter with goroutines of its own: Abort ends them when
// the output is abandoned (Close ends them otherwise).
type aborter interface {
	Abort()
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

// csvFlush is how much rendered text the CSV writer gathers per write.
const csvFlush = 256 << 10

// csvWriter renders rows into a buffer; a full buffer goes to a goroutine
// of its own that encodes it (GB18030) and writes it (file and SHA-256),
// while the next one is rendered. The buffers go out in order, one writer
// goroutine, so the bytes do not depend on the timing.
type csvWriter struct {
	w     io.Writer
	gb    bool // GB18030 (else UTF-8 with BOM)
	kinds []kind
	loc   *time.Location
	buf   []byte
	out   chan []byte // full buffers to the writing goroutine (nil: not started)
	free  chan []byte // buffers given back
	done  chan error  // the writing goroutine's end
}

func newCSV(w io.Writer, d Definition) rowWriter {
	c := &csvWriter{w: w, loc: d.Location(), gb: d.Encoding == "gb18030", buf: make([]byte, 0, csvFlush+64<<10)}
	if !c.gb {
		c.buf = append(c.buf, "\ufeff"...) // UTF-8 byte order mark: Excel then reads UTF-8
	}
	return c
}

func (c *csvWriter) Header(cols []Column) error {
	c.kinds = make([]kind, len(cols))
	for i, col := range cols {
		c.kinds[i] = kindOf(col.Type)
		if i > 0 {
			c.buf = append(c.buf, ',')
		}
		c.buf = appendCSVField(c.buf, []byte(col.Heading()), false)
	}
	c.buf = append(c.buf, '\r', '\n')
	return nil
}

// Batch renders row by row from the columns, straight into one buffer.
func (c *csvWriter) Batch(b *colBatch) error {
	buf := c.buf
	for r := range b.n {
		for j := range b.cols {
			if j > 0 {
				buf = append(buf, ',')
			}
			v := &b.cols[j]
			if v.valid != nil && !v.valid[r] {
				continue
			}
			if v.over != nil {
				if s, ok := v.over[r]; ok {
					buf = appendCSVText(buf, s)
					continue
				}
			}
			switch v.k {
			case kString:
				buf = appendCSVText(buf, v.str(r))
			case kInt:
				buf = strconv.AppendInt(buf, v.ints[r], 10)
			case kFloat:
				buf = appendFloat(buf, v.floats[r])
			case kBool:
				buf = strconv.AppendBool(buf, v.bools[r])
			case kTimestamp:
				buf = appendMicros(buf, v.ints[r], time.UTC)
			case kTimestampTZ:
				buf = appendMicros(buf, v.ints[r], c.loc)
			case kDate:
				buf = appendDate(buf, v.ints[r])
			}
		}
		buf = append(buf, '\r', '\n')
		if len(buf) >= csvFlush {
			c.buf = buf
			if err := c.flush(); err != nil {
				return err
			}
			buf = c.buf
		}
	}
	c.buf = buf
	return nil
}

// csvBuffers is how many buffers a CSV writer renders into by turns.
const csvBuffers = 3

// flush hands the buffer to the writing goroutine and takes a free one.
func (c *csvWriter) flush() error {
	if c.out == nil {
		c.out, c.free, c.done = make(chan []byte, csvBuffers), make(chan []byte, csvBuffers), make(chan error, 1)
		for range csvBuffers - 1 {
			c.free <- make([]byte, 0, cap(c.buf))
		}
		go c.write()
	}
	c.out <- c.buf
	select {
	case c.buf = <-c.free:
		return nil
	case err := <-c.done:
		// The writer stopped on an error (it writes nothing more).
		c.done <- err
		return err
	}
}

// write is the writing goroutine: encode, write, give the buffer back.
func (c *csvWriter) write() {
	var err error
	var enc []byte // GB18030 bytes of a buffer
	for buf := range c.out {
		if err == nil {
			data := buf
			if c.gb {
				enc = appendGB18030(enc[:0], buf)
				data = enc
			}
			if _, err = c.w.Write(data); err != nil {
				c.done <- err
			}
		}
		c.free <- buf[:0]
	}
	if err == nil {
		c.done <- nil
	}
}

func (c *csvWriter) Close() error {
	err := c.flush()
	close(c.out)
	if werr := <-c.done; err == nil {
		err = werr
	}
	return err
}

// Abort ends the writing goroutine when the output is abandoned.
func (c *csvWriter) Abort() {
	if c.out != nil {
		close(c.out)
		<-c.done
	}
}

// appendFloat renders a double as text() does: shortest, without an
// exponent unless very large or small.
func appendFloat(buf []byte, x float64) []byte {
	if a := math.Abs(x); a != 0 && (a < 1e-6 || a >= 1e15) {
		return strconv.AppendFloat(buf, x, 'g', -1, 64)
	}
	return strconv.AppendFloat(buf, x, 'f', -1, 64)
}

// appendMicros renders a timestamp (µs since 1970) in loc as
// 2006-01-02 15:04:05[.999999], as text() does.
func appendMicros(buf []byte, us int64, loc *time.Location) []byte {
	t := time.UnixMicro(us).In(loc)
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		if t.Nanosecond() != 0 {
			return t.AppendFormat(buf, "2006-01-02 15:04:05.999999")
		}
		return t.AppendFormat(buf, "2006-01-02 15:04:05")
	}
	h, mi, sec := t.Clock()
	buf = appendYMD(buf, y, int(mo), d)
	buf = append(buf, ' ', byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':', byte('0'+sec/10), byte('0'+sec%10))
	if frac := t.Nanosecond() / 1000; frac != 0 {
		var f [7]byte
		f[0] = '.'
		for i := 6; i >= 1; i-- {
			f[i] = byte('0' + frac%10)
			frac /= 10
		}
		n := 7
		for f[n-1] == '0' {
			n--
		}
		buf = append(buf, f[:n]...)
	}
	return buf
}

// appendDate renders a date (days since 1970) as 2006-01-02.
func appendDate(buf []byte, days int64) []byte {
	t := time.Unix(days*86400, 0).UTC()
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		return t.AppendFormat(buf, "2006-01-02")
	}
	return appendYMD(buf, y, int(mo), d)
}

func appendYMD(buf []byte, y, mo, d int) []byte {
	return append(buf, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+mo/10), byte('0'+mo%10), '-', byte('0'+d/10), byte('0'+d%10))
}

// appendCSVText is appendCSVField for a text cell, without copying it
// first.
func appendCSVText(buf []byte, s string) []byte {
	if len(s) == 0 {
		return buf
	}
	guard := false
	switch s[0] {
	case '=', '+', '@', '\t', '\r':
		guard = true
	case '-':
		guard = len(s) > 1 && (s[1] < '0' || s[1] > '9') && s[1] != '.'
	}
	quote := s[0] == ' ' || s[len(s)-1] == ' '
	if !quote {
		for i := 0; i < len(s); i++ {
			if b := s[i]; b <= ',' && (b == ',' || b == '"' || b == '\n' || b == '\r') {
				quote = true
				break
			}
		}
	}
	if !quote {
		if guard {
			buf = append(buf, '\'')
		}
		return append(buf, s...)
	}
	buf = append(buf, '"')
	if guard {
		buf = append(buf, '\'')
	}
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		buf = append(buf, s[:i+1]...)
		buf = append(buf, '"')
		s = s[i+1:]
	}
	buf = append(buf, s...)
	return append(buf, '"')
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
		head[i] = excelize.Cell{StyleID: bold, Value: c.Heading()}
	}
	if err := x.sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	x.row = 1
	x.cells = make([]any, len(cols))
	return x.sw.SetRow("A1", head)
}

func (x *xlsxWriter) Batch(b *colBatch) error {
	for r := range b.n {
		if x.row > MaxXLSXRows {
			return ErrTooManyRows
		}
		x.row++
		for i := range b.cols {
			v := b.cols[i].value(r)
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
		if err := x.sw.SetRow(cell, x.cells); err != nil {
			return err
		}
	}
	return nil
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

// parquetWriter encodes each column on a goroutine of its own: a batch is
// handed to every column's goroutine and given back (done) once the last
// column has taken its values, so the columns of successive batches encode
// side by side without waiting for one another. Row groups are written
// with parquet-go's concurrent row group writers: when a row group is
// full, its columns go on with the next one while a committer goroutine
// waits for the last column of the full one and appends it to the file, so
// there is no barrier between row groups. Each column receives its batches
// in order and the row groups are committed in order, so the file's bytes
// do not depend on the scheduling.
type parquetWriter struct {
	out     io.Writer
	w       *parquet.GenericWriter[any]
	kinds   []kind
	rows    int                                    // in the current row group
	group   *parquetGroup                          // the row group being filled
	groups  chan *parquet.ConcurrentRowGroupWriter // free row group writers
	made    int                                    // row group writers made
	commits chan *parquetGroup                     // full row groups, in order
	commitd chan struct{}                          // closed when the committer ends
	cols    []chan parquetTask
	busy    sync.WaitGroup // column tasks not yet finished
	turns   chan struct{}  // a token per column that may encode at once
	mu      sync.Mutex
	err     error // the first column or commit error
}

// parquetGroup is a row group being written.
type parquetGroup struct {
	rg      *parquet.ConcurrentRowGroupWriter
	cws     []*parquet.ColumnWriter
	pending sync.WaitGroup // its column tasks not yet finished
}

// parquetTask is one batch for one column of a row group.
type parquetTask struct {
	b    *colBatch
	cw   *parquet.ColumnWriter
	g    *parquetGroup
	last bool          // the row group's last batch: flush the column
	left *atomic.Int32 // columns still to take the batch
	done func()        // gives the batch back (may be nil)
}

// parquetRowGroup is the rows of a row group (DuckDB's COPY default).
const parquetRowGroup = 122880

// parquetGroups is how many row groups may be in flight (being filled or
// waiting for their commit); it bounds the memory of encoded pages.
const parquetGroups = 3

// parquetQueue is how many batches a column may have waiting.
const parquetQueue = 8

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
	// Statistics as DuckDB writes them: per column chunk and in the page
	// index, not again in every page header.
	p.w = parquet.NewGenericWriter[any](p.out, schema, parquet.Compression(fastSnappy{}), parquet.CreatedBy("citybrain", "1", ""),
		parquet.PageBufferSize(256<<10), parquet.DataPageStatistics(false))
	// As many columns encode at once as there are cores. The reader
	// shares them: it waits for DuckDB's sort, then scans the sorted rows
	// on about one core, and leaving it a core of its own was measured
	// slower (1.21–1.27× DuckDB's COPY against 1.09×).
	p.turns = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	p.groups = make(chan *parquet.ConcurrentRowGroupWriter, parquetGroups)
	p.commits = make(chan *parquetGroup, parquetGroups)
	p.commitd = make(chan struct{})
	go p.committer()
	p.cols = make([]chan parquetTask, len(cols))
	for j := range cols {
		p.cols[j] = make(chan parquetTask, parquetQueue)
		go p.column(j, p.cols[j])
	}
	return nil
}

// column is column j's goroutine.
func (p *parquetWriter) column(j int, tasks <-chan parquetTask) {
	vals := make([]parquet.Value, parquetPiece)
	for t := range tasks {
		if p.failed() == nil {
			p.turns <- struct{}{}
			for lo := 0; lo < t.b.n; lo += parquetPiece {
				if _, err := t.cw.WriteRowValues(parquetValues(vals, &t.b.cols[j], j, lo, min(lo+parquetPiece, t.b.n))); err != nil {
					p.fail(err)
					break
				}
			}
			if t.last {
				// The column's last page is compressed here, in
				// parallel, rather than by the commit.
				if err := t.cw.Flush(); err != nil {
					p.fail(err)
				}
			}
			<-p.turns
		}
		if t.left.Add(-1) == 0 && t.done != nil {
			t.done()
		}
		t.g.pending.Done()
		p.busy.Done()
	}
}

// committer appends the full row groups to the file in order and frees
// their writers for reuse.
func (p *parquetWriter) committer() {
	defer close(p.commitd)
	for g := range p.commits {
		g.pending.Wait()
		if p.failed() == nil {
			if _, err := g.rg.Commit(); err != nil {
				p.fail(err)
			}
		}
		p.groups <- g.rg
	}
}

// newGroup starts a row group, on a free writer (waiting for a commit when
// parquetGroups are in flight).
func (p *parquetWriter) newGroup() *parquetGroup {
	var rg *parquet.ConcurrentRowGroupWriter
	if p.made < parquetGroups {
		rg = p.w.BeginRowGroup()
		p.made++
	} else {
		rg = <-p.groups
	}
	return &parquetGroup{rg: rg, cws: rg.ColumnWriters()}
}

func (p *parquetWriter) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

func (p *parquetWriter) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Batch writes a batch and returns once every column has taken it.
func (p *parquetWriter) Batch(b *colBatch) error {
	if err := p.BatchAsync(b, nil); err != nil {
		return err
	}
	p.busy.Wait()
	return p.failed()
}

// BatchAsync hands the batch to the columns and returns; done is called
// (on a column's goroutine) once the batch is no longer needed.
func (p *parquetWriter) BatchAsync(b *colBatch, done func()) error {
	if err := p.failed(); err != nil {
		if done != nil {
			done()
		}
		return err
	}
	if p.group == nil {
		p.group = p.newGroup()
	}
	g := p.group
	p.rows += b.n
	last := p.rows >= parquetRowGroup
	left := new(atomic.Int32)
	left.Store(int32(len(p.cols)))
	p.busy.Add(len(p.cols))
	g.pending.Add(len(p.cols))
	for j, c := range p.cols {
		c <- parquetTask{b: b, cw: g.cws[j], g: g, last: last, left: left, done: done}
	}
	if last {
		p.rows = 0
		p.group = nil
		p.commits <- g
	}
	return nil
}

// Abort stops the column goroutines without finishing the file.
func (p *parquetWriter) Abort() {
	p.fail(errors.New("parquet: aborted"))
	p.stop()
}

// stop commits the row group being filled (unless failed), waits for the
// columns and the committer, and ends their goroutines.
func (p *parquetWriter) stop() {
	if p.cols == nil {
		return
	}
	if p.group != nil {
		p.commits <- p.group
		p.group = nil
	}
	close(p.commits)
	<-p.commitd
	p.busy.Wait()
	for _, c := range p.cols {
		close(c)
	}
	p.cols = nil
}

// parquetPiece is how many values go to a column writer at a time (their
// parquet.Values stay in the core's L1 cache).
const parquetPiece = 256

// parquetValues fills vals with cells lo..hi of column j: one loop per
// kind, then the levels set in place (Value.Level, which returns a copy,
// costs ten times as much per cell), then the nulls and the cells that do
// not fit the type.
func parquetValues(vals []parquet.Value, v *colVec, j, lo, hi int) []parquet.Value {
	vals = vals[:hi-lo]
	switch v.k {
	case kString:
		// Not copied here: the column writer copies the bytes.
		for r := range vals {
			vals[r] = parquet.ByteArrayValue(v.bytes(lo + r))
		}
	case kInt, kTimestamp, kTimestampTZ:
		for r, x := range v.ints[lo:hi] {
			vals[r] = parquet.Int64Value(x)
		}
	case kDate:
		for r, x := range v.ints[lo:hi] {
			vals[r] = parquet.Int32Value(int32(x))
		}
	case kFloat:
		for r, x := range v.floats[lo:hi] {
			vals[r] = parquet.DoubleValue(x)
		}
	case kBool:
		for r, x := range v.bools[lo:hi] {
			vals[r] = parquet.BooleanValue(x)
		}
	}
	for r := range vals {
		vals[r].SetDefinitionLevel(1)
		vals[r].SetColumnIndex(j)
	}
	for r, s := range v.over {
		if r < lo || r >= hi {
			continue
		}
		r -= lo
		if v.k == kString {
			vals[r] = parquet.ByteArrayValue([]byte(s)).Level(0, 1, j)
		} else {
			vals[r] = parquet.NullValue().Level(0, 0, j) // does not fit the column's type
		}
	}
	if v.valid != nil {
		null := parquet.NullValue().Level(0, 0, j)
		for r, ok := range v.valid[lo:hi] {
			if !ok {
				vals[r] = null
			}
		}
	}
	return vals
}

// fastSnappy is Parquet's SNAPPY codec at the fast level (s2's snappy-
// compatible block encoder; parquet.Snappy uses the slower "better" one).
// The output is plain snappy: any reader decodes it.
type fastSnappy struct{}

func (fastSnappy) String() string                              { return "SNAPPY" }
func (fastSnappy) CompressionCodec() pqformat.CompressionCodec { return pqformat.Snappy }
func (fastSnappy) Encode(dst, src []byte) ([]byte, error) {
	return s2.EncodeSnappy(dst[:cap(dst)], src), nil
}
func (fastSnappy) Decode(dst, src []byte) ([]byte, error) { return s2.Decode(dst[:cap(dst)], src) }

func (p *parquetWriter) Close() error {
	if p.w == nil {
		return errors.New("parquet: no header")
	}
	p.stop()
	if err := p.failed(); err != nil {
		return err
	}
	return p.w.Close()
}
