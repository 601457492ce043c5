package warehouse

// Streamed query results.
//
// Engine.Query (duckdb-go, database/sql) executes a statement to the end
// and materialises its result before the first row is read. For a big
// ordered export that means DuckDB sorts, copies the sorted rows into a
// result on all cores, and only then does the caller start — the copy is
// wasted and the caller's own work (rendering a file) cannot overlap
// DuckDB's.
//
// Stream runs a query with DuckDB's streaming result instead, through the
// C API (github.com/duckdb/duckdb-go-bindings, which duckdb-go is built on):
// the sort runs on DuckDB's threads, then each chunk of up to 2048 rows is
// scanned as the caller asks for it — on about one core, leaving the others
// to the caller — and handed over in DuckDB's own memory (no conversion, no
// copy) until the caller releases it.
//
// duckdb-go does not hand out its connection handles, so Stream runs on a
// DuckDB instance of its own, opened on first use with the engine's
// settings (memory limit, threads, time zone). That instance has none of
// the engine's views: Stream takes self-contained SQL only, such as
// Rewrite's output, whose tables are pinned snapshot files. Anything it
// cannot run (a view, a column type it does not hand over) is reported as
// ErrNotStreamable before any row is produced, and the caller falls back to
// Query.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unsafe"

	bindings "github.com/duckdb/duckdb-go-bindings"
)

// ErrNotStreamable: the query cannot be streamed (it names a view or a
// macro of the engine, or has a column of a type Stream does not hand
// over); run it with Query instead.
var ErrNotStreamable = errors.New("query cannot be streamed")

// streamTypes are the column types Stream hands over, by DuckDB's name.
var streamTypes = map[bindings.Type]string{
	bindings.TypeBoolean: "BOOLEAN", bindings.TypeTinyInt: "TINYINT", bindings.TypeSmallInt: "SMALLINT",
	bindings.TypeInteger: "INTEGER", bindings.TypeBigInt: "BIGINT", bindings.TypeUTinyInt: "UTINYINT",
	bindings.TypeUSmallInt: "USMALLINT", bindings.TypeUInteger: "UINTEGER", bindings.TypeFloat: "FLOAT",
	bindings.TypeDouble: "DOUBLE", bindings.TypeVarchar: "VARCHAR", bindings.TypeDate: "DATE",
	bindings.TypeTimestamp: "TIMESTAMP", bindings.TypeTimestampTZ: "TIMESTAMPTZ", bindings.TypeTimestampS: "TIMESTAMP_S",
	bindings.TypeTimestampMS: "TIMESTAMP_MS", bindings.TypeTimestampNS: "TIMESTAMP_NS",
}

// streamWidth is the bytes per value of each fixed-width type.
var streamWidth = map[string]uintptr{
	"BOOLEAN": 1, "TINYINT": 1, "UTINYINT": 1, "SMALLINT": 2, "USMALLINT": 2, "INTEGER": 4, "UINTEGER": 4,
	"FLOAT": 4, "DATE": 4, "BIGINT": 8, "DOUBLE": 8, "TIMESTAMP": 8, "TIMESTAMPTZ": 8, "TIMESTAMP_S": 8,
	"TIMESTAMP_MS": 8, "TIMESTAMP_NS": 8,
}

// streamDB is the engine's streaming instance.
type streamDB struct {
	once sync.Once
	db   bindings.Database
	err  error
}

// settings are the statements that configure a DuckDB of the engine.
func settings(q QueryConfig) []string {
	var stmts []string
	if q.MemoryLimit != "" {
		stmts = append(stmts, fmt.Sprintf("SET memory_limit = '%s'", strings.ReplaceAll(q.MemoryLimit, "'", "")))
	}
	if q.Threads > 0 {
		stmts = append(stmts, fmt.Sprintf("SET threads = %d", q.Threads))
	}
	return append(stmts, "SET TimeZone = 'Asia/Shanghai'", noFileCache)
}

// noFileCache turns off DuckDB's external file cache, which keeps the bytes
// of every Parquet file read in the buffer pool until the memory limit
// forces them out: the lake's files are local (the OS page cache holds
// them, outside serve's RSS), and a lake that commits new files every
// second grew serve's memory without bound in the soak. Every long-lived
// DuckDB database that reads the lake sets it.
const noFileCache = "SET enable_external_file_cache = false"

// backgroundPurge lets jemalloc (DuckDB's allocator, one per process)
// return freed memory to the OS on background threads, instead of only
// when an allocating thread happens to pass by. NewEngine sets it.
const backgroundPurge = "SET allocator_background_threads = true"

func (e *Engine) streamInstance() (bindings.Database, error) {
	s := &e.stream
	s.once.Do(func() {
		if bindings.Open("", &s.db) == bindings.StateError {
			s.err = errors.New("warehouse: open the streaming DuckDB")
		}
	})
	return s.db, s.err
}

// closeStream closes the streaming instance if it was opened.
func (e *Engine) closeStream() {
	e.stream.once.Do(func() { e.stream.err = errors.New("warehouse: engine closed") })
	if e.stream.err == nil {
		bindings.Close(&e.stream.db)
		e.stream.err = errors.New("warehouse: engine closed")
	}
}

// StreamColumn is a column of a streamed result.
type StreamColumn struct {
	Name string
	Type string // BOOLEAN, TINYINT … BIGINT, UTINYINT … UINTEGER, FLOAT, DOUBLE, VARCHAR, DATE, TIMESTAMP, TIMESTAMPTZ, TIMESTAMP_S|MS|NS
}

// Chunk is up to 2048 rows of a streamed result, column by column, in
// DuckDB's memory: its slices and strings are valid until Release.
type Chunk struct {
	n     int
	cols  []StreamColumn
	data  []unsafe.Pointer
	valid []unsafe.Pointer // validity masks (nil: no nulls)
	ch    bindings.DataChunk
	done  func()
	once  sync.Once
}

// Len is the chunk's rows.
func (c *Chunk) Len() int { return c.n }

// Valid reports which rows of column j are not NULL, into dst; nil when
// every row is valid.
func (c *Chunk) Valid(j int, dst []bool) []bool {
	if c.valid[j] == nil {
		return nil
	}
	words := unsafe.Slice((*uint64)(c.valid[j]), (c.n+63)/64)
	null := false
	for i := range c.n {
		if words[i/64]&(1<<(i%64)) == 0 {
			null = true
			break
		}
	}
	if !null {
		return nil
	}
	dst = dst[:0]
	for i := range c.n {
		dst = append(dst, words[i/64]&(1<<(i%64)) != 0)
	}
	return dst
}

// Strings is VARCHAR column j, read in place (see StringColumn).
func (c *Chunk) Strings(j int) StringColumn {
	if c.cols[j].Type != "VARCHAR" {
		panic("warehouse: Chunk.Strings of a " + c.cols[j].Type + " column")
	}
	return StringColumn{base: c.data[j], n: c.n}
}

// StringColumn is a VARCHAR column of a chunk in DuckDB's memory: nothing
// is converted or copied until a cell is asked for, and the bytes are valid
// until the chunk is released. A NULL cell's bytes are undefined (see
// Chunk.Valid).
type StringColumn struct {
	base unsafe.Pointer // duckdb_string_t[n]
	n    int
}

// Bytes is cell i (not to be changed).
func (s StringColumn) Bytes(i int) []byte {
	if uint(i) >= uint(s.n) {
		panic("warehouse: StringColumn index out of range")
	}
	// duckdb_string_t: a uint32 length, then up to 12 bytes inline, or a
	// 4-byte prefix and a pointer to the bytes.
	p := unsafe.Add(s.base, i*16)
	n := *(*uint32)(p)
	if n <= 12 {
		return unsafe.Slice((*byte)(unsafe.Add(p, 4)), n)
	}
	return unsafe.Slice(*(**byte)(unsafe.Add(p, 8)), n)
}

// Len is the column's rows.
func (s StringColumn) Len() int { return s.n }

// Fixed is a fixed-width column's Go type.
type Fixed interface {
	bool | int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | float32 | float64
}

// Column is fixed-width column j as a slice of T in DuckDB's memory (a
// BOOLEAN as bool, TINYINT int8 … BIGINT int64, UTINYINT uint8 … UINTEGER
// uint32, FLOAT float32, DOUBLE float64, DATE int32 days since 1970, the
// TIMESTAMPs int64 in their unit). T must have the column's width.
func Column[T Fixed](c *Chunk, j int) []T {
	var zero T
	if w, ok := streamWidth[c.cols[j].Type]; !ok || w != unsafe.Sizeof(zero) {
		panic(fmt.Sprintf("warehouse: Column[%T] of a %s column", zero, c.cols[j].Type))
	}
	return unsafe.Slice((*T)(c.data[j]), c.n)
}

// Release gives the chunk's memory back to DuckDB (once; any goroutine).
func (c *Chunk) Release() {
	c.once.Do(func() {
		bindings.DestroyDataChunk(&c.ch)
		c.done()
	})
}

// Stream runs a self-contained query (see the top of this file) and calls
// cols once with its columns, then chunk with each chunk of rows in order;
// each chunk belongs to the callee until it calls Release, which it may do
// after Stream has returned. ErrNotStreamable (before cols is called) means
// the caller should use Query.
func (e *Engine) Stream(ctx context.Context, query string, cols func([]StreamColumn) error, chunk func(*Chunk) error) (err error) {
	db, err := e.streamInstance()
	if err != nil {
		return err
	}
	var conn bindings.Connection
	if bindings.Connect(db, &conn) == bindings.StateError {
		return errors.New("warehouse: connect to the streaming DuckDB")
	}
	// The connection, statement and result live until the last chunk is
	// released (a chunk's strings may point into the result's blocks).
	var st bindings.PreparedStatement
	var pend bindings.PendingResult
	var res bindings.Result
	var haveRes bool
	var out sync.WaitGroup
	out.Add(1)
	defer func() {
		out.Done()
		go func() {
			out.Wait()
			if haveRes {
				bindings.DestroyResult(&res)
			}
			bindings.DestroyPending(&pend)
			bindings.DestroyPrepare(&st)
			bindings.Disconnect(&conn)
		}()
	}()
	for _, s := range settings(e.lake.cfg.Query) {
		var r bindings.Result
		state := bindings.Query(conn, s, &r)
		msg := bindings.ResultError(&r)
		bindings.DestroyResult(&r)
		if state == bindings.StateError {
			return fmt.Errorf("warehouse: streaming DuckDB %q: %s", s, msg)
		}
	}
	if bindings.Prepare(conn, query, &st) == bindings.StateError {
		return fmt.Errorf("%w: %s", ErrNotStreamable, bindings.PrepareError(st))
	}
	n := int(bindings.PreparedStatementColumnCount(st))
	columns := make([]StreamColumn, n)
	for j := range n {
		t := bindings.PreparedStatementColumnType(st, bindings.IdxT(j))
		name, ok := streamTypes[t]
		if !ok {
			return fmt.Errorf("%w: column %q has DuckDB type id %d", ErrNotStreamable, bindings.PreparedStatementColumnName(st, bindings.IdxT(j)), t)
		}
		columns[j] = StreamColumn{Name: bindings.PreparedStatementColumnName(st, bindings.IdxT(j)), Type: name}
	}
	if bindings.PendingPreparedStreaming(st, &pend) == bindings.StateError {
		return fmt.Errorf("warehouse: stream: %s", bindings.PendingError(pend))
	}
	// Cancelling ctx interrupts the query, wherever it is (and the
	// connection outlives the interrupt).
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		bindings.Interrupt(conn)
		close(interrupted)
	})
	defer func() {
		if !stop() {
			<-interrupted
		}
	}()
	state := bindings.ExecutePending(pend, &res)
	haveRes = true
	if state == bindings.StateError {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("warehouse: stream: %s", bindings.ResultError(&res))
	}
	if err := cols(columns); err != nil {
		return err
	}
	for ctx.Err() == nil {
		ch := bindings.FetchChunk(res)
		if ch.Ptr == nil {
			break
		}
		rows := int(bindings.DataChunkGetSize(ch))
		if rows == 0 {
			bindings.DestroyDataChunk(&ch)
			break
		}
		c := &Chunk{n: rows, cols: columns, data: make([]unsafe.Pointer, n), valid: make([]unsafe.Pointer, n), ch: ch, done: out.Done}
		for j := range n {
			v := bindings.DataChunkGetVector(ch, bindings.IdxT(j))
			c.data[j] = bindings.VectorGetData(v)
			c.valid[j] = bindings.VectorGetValidity(v)
		}
		out.Add(1)
		if err := chunk(c); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if msg := bindings.ResultError(&res); msg != "" {
		return fmt.Errorf("warehouse: stream: %s", msg)
	}
	return nil
}
