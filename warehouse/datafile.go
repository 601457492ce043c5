package warehouse

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/parquet-go/parquet-go"

	"citybrain/schemas"
)

// FileWriter streams records of one partition into one Parquet data file.
// Memory is bounded by one row group (RowGroupRows) whatever the file size.
type FileWriter struct {
	lake     *Lake
	s        *schemas.Schema
	spec     iceberg.PartitionSpec
	partVal  any
	uri      string // file:// location recorded in the manifest
	local    string
	f        *os.File
	w        *parquet.GenericWriter[any]
	order    []int // leaf column index → record position (len(Fields) = cursor)
	ids      []int // record position → Iceberg field id (len(Fields) = cursor)
	rows     []parquet.Row
	vals     []parquet.Value // backing store of rows, reused after each WriteRows
	count    int64
	nulls    []int64
	min, max int64 // event time bounds, µs
}

// RowGroupRows bounds a data file's row groups, and so a writer's memory.
const RowGroupRows = 128 * 1024

// PartitionKey returns the partition value and directory name of a record
// for the schema's partitioning (day or month of a timestamp, or identity).
func PartitionKey(s *schemas.Schema, r schemas.Record) (any, string) {
	if s.Partition.Field == "" {
		return nil, ""
	}
	i := s.Index(s.Partition.Field)
	v := r[i]
	name := s.Partition.Field + "_" + s.Partition.Transform
	switch s.Partition.Transform {
	case "day":
		t, _ := v.(time.Time)
		days := int32(t.UTC().Unix() / 86400)
		if t.UTC().Unix() < 0 && t.UTC().Unix()%86400 != 0 {
			days--
		}
		return iceberg.Date(days), name + "=" + t.UTC().Format(time.DateOnly)
	case "month":
		t, _ := v.(time.Time)
		t = t.UTC()
		months := int32((t.Year()-1970)*12 + int(t.Month()) - 1)
		return months, name + "=" + t.Format("2006-01")
	default:
		s, _ := v.(string)
		return s, name + "=" + strings.NewReplacer("/", "_", "=", "_").Replace(s)
	}
}

// DataPath returns the local directory of a table's data files.
func DataPath(t *table.Table) string {
	return filepath.Join(LocalPath(t.Location()), "data")
}

// LocalPath strips a file:// scheme.
func LocalPath(loc string) string {
	return strings.TrimPrefix(loc, "file://")
}

// NewFileWriter creates the data file rel (relative to the table's data
// directory, e.g. "observed_at_day=2013-03-01/0000000007-ab12cd34.parquet").
// An existing file of that name is an uncommitted leftover of a crashed
// writer and is replaced. On a lake on an object store the file is staged
// locally and uploaded by Close (see files.go).
func (l *Lake) NewFileWriter(t *table.Table, s *schemas.Schema, rel string, partVal any) (*FileWriter, error) {
	uri := dataURI(t, path.Clean(rel))
	local := l.stagePath(uri)
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return nil, fmt.Errorf("data file dir: %w", err)
	}
	f, err := os.Create(local)
	if err != nil {
		return nil, fmt.Errorf("create data file: %w", err)
	}
	ids, idList, err := TableIDs(t, s)
	if err != nil {
		f.Close()
		return nil, err
	}
	ps := s.ParquetSchema(ids)
	cols := s.ParquetColumns(ps)
	order := make([]int, len(cols))
	for field, col := range cols {
		order[col] = field
	}
	w := parquet.NewGenericWriter[any](f, ps, parquet.MaxRowsPerRowGroup(RowGroupRows), parquet.PageBufferSize(64<<10),
		parquet.CreatedBy("citybrain", "1", ""))
	return &FileWriter{
		lake: l, s: s, spec: t.Spec(), partVal: partVal, local: local, uri: uri,
		f: f, w: w, order: order, ids: idList, nulls: make([]int64, len(cols)),
		min: 1<<63 - 1, max: -1 << 63,
	}, nil
}

// Write appends one validated record and its source cursor.
func (fw *FileWriter) Write(r schemas.Record, cursor string) error {
	nc := len(fw.order)
	if cap(fw.vals)-len(fw.vals) < nc {
		fw.vals = make([]parquet.Value, 0, writeChunk*nc)
	}
	row := parquet.Row(fw.vals[len(fw.vals) : len(fw.vals)+nc : len(fw.vals)+nc])
	fw.vals = fw.vals[:len(fw.vals)+nc]
	nf := len(fw.s.Fields)
	for col, field := range fw.order {
		var v parquet.Value
		if field == nf {
			v = parquet.ByteArrayValue(stringBytes(cursor))
		} else {
			v = toParquet(fw.s.Fields[field].Type, r[field])
		}
		if v.IsNull() {
			fw.nulls[field]++
			row[col] = v.Level(0, 0, col)
		} else {
			row[col] = v.Level(0, 1, col)
		}
	}
	if et := r[fw.s.EventTimeIndex()]; et != nil {
		us := et.(time.Time).UnixMicro()
		fw.min, fw.max = min(fw.min, us), max(fw.max, us)
	}
	fw.rows = append(fw.rows, row)
	fw.count++
	if len(fw.rows) >= writeChunk {
		return fw.flushRows()
	}
	return nil
}

func (fw *FileWriter) flushRows() error {
	if _, err := fw.w.WriteRows(fw.rows); err != nil {
		return fmt.Errorf("write %s: %w", fw.local, err)
	}
	fw.rows = fw.rows[:0]
	fw.vals = fw.vals[:0]
	return nil
}

// writeChunk rows are handed to the Parquet writer at a time.
const writeChunk = 4096

// stringBytes views a string's bytes without copying. Safe here because
// parquet-go copies values into its page buffers in WriteRows, before the
// row buffer is reused, and never writes through the slice.
func stringBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func toParquet(t schemas.Type, v any) parquet.Value {
	if v == nil {
		return parquet.NullValue()
	}
	switch t {
	case schemas.String:
		return parquet.ByteArrayValue(stringBytes(v.(string)))
	case schemas.Int:
		return parquet.Int32Value(int32(v.(int64)))
	case schemas.Long:
		return parquet.Int64Value(v.(int64))
	case schemas.Double:
		return parquet.DoubleValue(v.(float64))
	case schemas.Bool:
		return parquet.BooleanValue(v.(bool))
	case schemas.Timestamp:
		return parquet.Int64Value(v.(time.Time).UnixMicro())
	case schemas.Date:
		return parquet.Int32Value(int32(v.(time.Time).Unix() / 86400))
	}
	return parquet.NullValue()
}

// TableIDs returns the table's field id of every canonical field and of
// _cursor, by name and by record position (cursor last). Every field of the
// schema must exist in the table.
func TableIDs(t *table.Table, s *schemas.Schema) (schemas.IDs, []int, error) {
	sc := t.Schema()
	ids := schemas.IDs{}
	list := make([]int, 0, len(s.Fields)+1)
	names := make([]string, 0, len(s.Fields)+1)
	for _, f := range s.Fields {
		names = append(names, f.Name)
	}
	names = append(names, schemas.CursorField)
	for _, n := range names {
		f, ok := sc.FindFieldByName(n)
		if !ok {
			return nil, nil, fmt.Errorf("table %s has no column %s: evolve the table to schema %s v%d first", strings.Join(t.Identifier(), "."), n, s.Name, s.Version)
		}
		ids[n] = f.ID
		list = append(list, f.ID)
	}
	return ids, list, nil
}

// Rows is the number of records written so far.
func (fw *FileWriter) Rows() int64 { return fw.count }

// Abort closes and removes the file.
func (fw *FileWriter) Abort() {
	fw.f.Close()
	os.Remove(fw.local)
}

// Close finishes the file, syncs it to disk (and uploads it, on an object
// store) and describes it for the manifest.
func (fw *FileWriter) Close() (iceberg.DataFile, error) {
	if len(fw.rows) > 0 {
		if err := fw.flushRows(); err != nil {
			fw.Abort()
			return nil, err
		}
	}
	if err := fw.w.Close(); err != nil {
		fw.Abort()
		return nil, fmt.Errorf("close %s: %w", fw.local, err)
	}
	if err := fw.f.Sync(); err != nil {
		fw.Abort()
		return nil, fmt.Errorf("sync %s: %w", fw.local, err)
	}
	st, err := fw.f.Stat()
	if err != nil {
		fw.Abort()
		return nil, err
	}
	fw.f.Close()
	if err := fw.lake.publish(context.Background(), fw.uri); err != nil {
		os.Remove(fw.local)
		return nil, fmt.Errorf("upload %s: %w", fw.uri, err)
	}
	return fw.describe(st.Size())
}

func (fw *FileWriter) describe(size int64) (iceberg.DataFile, error) {
	partData := map[int]any{}
	logical := map[int]string{}
	if fw.s.Partition.Field != "" {
		partData[schemas.PartitionFieldID] = fw.partVal
		if fw.s.Partition.Transform == "day" {
			logical[schemas.PartitionFieldID] = "date"
		}
	}
	b, err := iceberg.NewDataFileBuilder(fw.spec, iceberg.EntryContentData, fw.uri, iceberg.ParquetFile,
		partData, logical, nil, fw.count, size)
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", fw.local, err)
	}
	values := map[int]int64{}
	nulls := map[int]int64{}
	for i, id := range fw.ids {
		values[id] = fw.count
		nulls[id] = fw.nulls[i]
	}
	b.ValueCounts(values).NullValueCounts(nulls)
	if fw.count > 0 && fw.min <= fw.max {
		id := fw.ids[fw.s.EventTimeIndex()]
		lo, hi := make([]byte, 8), make([]byte, 8)
		binary.LittleEndian.PutUint64(lo, uint64(fw.min))
		binary.LittleEndian.PutUint64(hi, uint64(fw.max))
		b.LowerBoundValues(map[int][]byte{id: lo}).UpperBoundValues(map[int][]byte{id: hi})
	}
	return b.Build(), nil
}

// WriteFiles writes n records into one data file per partition, each named
// name under its partition's directory, and returns them closed, in the
// order their partitions first appeared. rec returns record i and its
// cursor; each record is validated. On an error every file is removed.
func (l *Lake) WriteFiles(t *table.Table, s *schemas.Schema, name string, n int, rec func(i int) (schemas.Record, string)) ([]iceberg.DataFile, error) {
	files := map[string]*FileWriter{}
	var order []string
	fail := func(err error) ([]iceberg.DataFile, error) {
		for _, fw := range files {
			fw.Abort()
		}
		return nil, err
	}
	for i := range n {
		r, cursor := rec(i)
		if err := s.Validate(r); err != nil {
			return fail(fmt.Errorf("%s %s: %w", s.Table, cursor, err))
		}
		val, dir := PartitionKey(s, r)
		fw, ok := files[dir]
		if !ok {
			rel := name
			if dir != "" {
				rel = dir + "/" + name
			}
			var err error
			if fw, err = l.NewFileWriter(t, s, rel, val); err != nil {
				return fail(err)
			}
			files[dir] = fw
			order = append(order, dir)
		}
		if err := fw.Write(r, cursor); err != nil {
			return fail(err)
		}
	}
	out := make([]iceberg.DataFile, 0, len(order))
	for _, d := range order {
		df, err := files[d].Close()
		if err != nil {
			return fail(err)
		}
		out = append(out, df)
	}
	return out, nil
}
