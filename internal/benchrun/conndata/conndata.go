// Package conndata makes the deterministic mobile_signal-like feeds the
// connector benchmarks read — a CSV file, a JSON-lines file, paged JSON API
// responses and a PostgreSQL table, all holding the same rows — plus the
// mapping onto the mobile_signal schema, an Emit that only counts, and the
// anchors: the same bytes read by the standard library alone (encoding/csv,
// encoding/json, database/sql), with no mapping.
//
// Row i (0-based) has grid_cell_id XC-250-<i mod 3000>, window_start
// 2026-11-01T00:00:00+08:00 plus 5 minutes × (i·8640/N) (any N spans the
// same 30 days, time-ordered), and people_count, inflow, outflow drawn from
// math/rand/v2 PCG seeded (7, 11) — the same N always gives the same bytes.
//
// Both benchrun (go run ./internal/benchrun -suite connectors) and the Go
// benchmarks in connectors/<transport>/bench_test.go use it; it imports no
// transport package, so the transports' own tests may import it.
package conndata

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for the SQL anchor

	"citybrain/connectors"
	"citybrain/connectors/mapping"
	"citybrain/schemas"
)

// Cells is the number of distinct grid cells.
const Cells = 3000

// Windows is the number of 5-minute windows in 30 days.
const Windows = 30 * 24 * 12

// Start is the first window.
var Start = time.Date(2026, 11, 1, 0, 0, 0, 0, time.FixedZone("CST", 8*3600))

// Columns are the feed's column (CSV header, JSON key, SQL column) names.
var Columns = []string{"grid_cell_id", "window_start", "people_count", "inflow", "outflow"}

// Row is one generated record.
type Row struct {
	Cell                    string
	WindowStart             time.Time
	People, Inflow, Outflow int64
}

var cells = func() []string {
	c := make([]string, Cells)
	for i := range c {
		c[i] = fmt.Sprintf("XC-250-%04d", i)
	}
	return c
}()

// Gen calls fn for rows 0..n-1 in order. The Row is reused between calls.
func Gen(n int, fn func(i int, r *Row) error) error {
	rng := rand.New(rand.NewPCG(7, 11))
	var r Row
	for i := 0; i < n; i++ {
		r.Cell = cells[i%Cells]
		r.WindowStart = Start.Add(time.Duration(int64(i)*Windows/int64(n)) * 5 * time.Minute)
		r.People = int64(rng.IntN(5000))
		r.Inflow = int64(rng.IntN(500))
		r.Outflow = int64(rng.IntN(500))
		if err := fn(i, &r); err != nil {
			return err
		}
	}
	return nil
}

// AppendCSV appends r as a CSV line (with \n).
func AppendCSV(b []byte, r *Row) []byte {
	b = append(b, r.Cell...)
	b = append(b, ',')
	b = r.WindowStart.AppendFormat(b, time.RFC3339)
	b = append(b, ',')
	b = strconv.AppendInt(b, r.People, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, r.Inflow, 10)
	b = append(b, ',')
	b = strconv.AppendInt(b, r.Outflow, 10)
	return append(b, '\n')
}

// AppendJSON appends r as a JSON object (no newline).
func AppendJSON(b []byte, r *Row) []byte {
	b = append(b, `{"grid_cell_id":"`...)
	b = append(b, r.Cell...)
	b = append(b, `","window_start":"`...)
	b = r.WindowStart.AppendFormat(b, time.RFC3339)
	b = append(b, `","people_count":`...)
	b = strconv.AppendInt(b, r.People, 10)
	b = append(b, `,"inflow":`...)
	b = strconv.AppendInt(b, r.Inflow, 10)
	b = append(b, `,"outflow":`...)
	b = strconv.AppendInt(b, r.Outflow, 10)
	return append(b, '}')
}

// WriteCSV writes n rows with a header line to path and returns its size.
func WriteCSV(path string, n int) (int64, error) {
	return writeFile(path, n, func(b []byte) []byte {
		for i, c := range Columns {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, c...)
		}
		return append(b, '\n')
	}, AppendCSV)
}

// WriteJSONL writes n rows as JSON lines to path and returns its size.
func WriteJSONL(path string, n int) (int64, error) {
	return writeFile(path, n, nil, func(b []byte, r *Row) []byte {
		return append(AppendJSON(b, r), '\n')
	})
}

func writeFile(path string, n int, header func([]byte) []byte, line func([]byte, *Row) []byte) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	var size int64
	var b []byte
	if header != nil {
		b = header(b[:0])
		w.Write(b)
		size += int64(len(b))
	}
	err = Gen(n, func(_ int, r *Row) error {
		b = line(b[:0], r)
		size += int64(len(b))
		_, err := w.Write(b)
		return err
	})
	if err == nil {
		err = w.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return size, err
}

// JSONPages renders n rows as JSON API pages of pageSize records each, every
// page a top-level array (the last page may be short).
func JSONPages(n, pageSize int) [][]byte {
	var pages [][]byte
	var cur []byte
	Gen(n, func(i int, r *Row) error {
		if i%pageSize == 0 {
			if cur != nil {
				pages = append(pages, append(cur, ']'))
			}
			cur = make([]byte, 0, pageSize*130)
			cur = append(cur, '[')
		} else {
			cur = append(cur, ',')
		}
		cur = AppendJSON(cur, r)
		return nil
	})
	if cur != nil {
		pages = append(pages, append(cur, ']'))
	}
	return pages
}

// PageServer serves pre-rendered pages by offset pagination
// (?offset=K&limit=L, L = the page size the pages were rendered with):
// the page starting at record K, or [] past the end. It counts the body
// bytes it sends.
type PageServer struct {
	Pages    [][]byte
	PageSize int
	Bytes    atomic.Int64
	Requests atomic.Int64
}

func (p *PageServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.Requests.Add(1)
	q := r.URL.Query()
	off, _ := strconv.Atoi(q.Get("offset"))
	if l := q.Get("limit"); l != "" && l != strconv.Itoa(p.PageSize) {
		http.Error(w, "limit must be "+strconv.Itoa(p.PageSize), http.StatusBadRequest)
		return
	}
	if off%p.PageSize != 0 {
		http.Error(w, "offset must be a multiple of the page size", http.StatusBadRequest)
		return
	}
	body := []byte("[]")
	if k := off / p.PageSize; k < len(p.Pages) {
		body = p.Pages[k]
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	n, _ := w.Write(body)
	p.Bytes.Add(int64(n))
}

// Schema returns the mobile_signal schema.
func Schema() (*schemas.Schema, error) {
	reg, err := schemas.Builtin()
	if err != nil {
		return nil, err
	}
	return reg.Get("mobile_signal")
}

// Spec maps the feed's columns (by name) onto mobile_signal.
func Spec() mapping.Spec {
	f := map[string]mapping.FieldSpec{}
	for _, c := range Columns {
		f[c] = mapping.FieldSpec{Column: c}
	}
	return mapping.Spec{Fields: f}
}

// Mapper returns the mapping of Spec onto mobile_signal.
func Mapper() (*mapping.Mapper, error) {
	s, err := Schema()
	if err != nil {
		return nil, err
	}
	return mapping.New(s, Spec())
}

// Counter is an Emit that only counts records and rejects.
type Counter struct {
	Rows, Rejects int64
	FirstReject   error
}

// Emit implements connectors.Emit.
func (c *Counter) Emit(_ context.Context, batch []connectors.Record) error {
	for i := range batch {
		if batch[i].Err != nil {
			c.Rejects++
			if c.FirstReject == nil {
				c.FirstReject = batch[i].Err
			}
			continue
		}
		c.Rows++
	}
	return nil
}

// Check reports an error unless exactly want records and no rejects came.
func (c *Counter) Check(want int64) error {
	if c.Rejects > 0 {
		return fmt.Errorf("%d rejects (first: %v), want none", c.Rejects, c.FirstReject)
	}
	if c.Rows != want {
		return fmt.Errorf("%d records, want %d", c.Rows, want)
	}
	return nil
}

// Measurement is the wall and CPU time (user+sys of the whole process, all
// threads) of one run.
type Measurement struct {
	Rows int64
	Wall time.Duration
	CPU  time.Duration
}

// RowsPerS is rows / wall time.
func (m Measurement) RowsPerS() float64 { return float64(m.Rows) / m.Wall.Seconds() }

// RowsPerCoreS is rows / CPU time.
func (m Measurement) RowsPerCoreS() float64 { return float64(m.Rows) / m.CPU.Seconds() }

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Measure runs fn after a garbage collection and measures it with
// getrusage(RUSAGE_SELF) around it.
func Measure(fn func() (rows int64, err error)) (Measurement, error) {
	runtime.GC()
	c0, t0 := cpuTime(), time.Now()
	rows, err := fn()
	wall, cpu := time.Since(t0), cpuTime()-c0
	return Measurement{Rows: rows, Wall: wall, CPU: cpu}, err
}

// parsed is what the anchors decode a row into.
type parsed struct {
	GridCellID  string    `json:"grid_cell_id"`
	WindowStart time.Time `json:"window_start"`
	PeopleCount int64     `json:"people_count"`
	Inflow      int64     `json:"inflow"`
	Outflow     int64     `json:"outflow"`
}

// sink keeps the anchors' results alive.
var sink atomic.Int64

// AnchorCSV reads a file written by WriteCSV with encoding/csv (reusing
// records) and parses each row with strconv.ParseInt and time.Parse
// (RFC 3339) — the same conversions the mapping makes, without mapping.
func AnchorCSV(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	r.ReuseRecord = true
	r.FieldsPerRecord = len(Columns)
	if _, err := r.Read(); err != nil { // header
		return 0, err
	}
	var n, sum int64
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
		var p parsed
		p.GridCellID = rec[0]
		if p.WindowStart, err = time.Parse(time.RFC3339, rec[1]); err != nil {
			return n, err
		}
		for i, dst := range []*int64{&p.PeopleCount, &p.Inflow, &p.Outflow} {
			if *dst, err = strconv.ParseInt(rec[2+i], 10, 64); err != nil {
				return n, err
			}
		}
		sum += p.PeopleCount + int64(len(p.GridCellID)) + p.WindowStart.Unix()
		n++
	}
	sink.Add(sum)
	return n, nil
}

// AnchorJSONL decodes a file written by WriteJSONL line by line with
// json.Unmarshal into a typed struct.
func AnchorJSONL(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(bufio.NewReaderSize(f, 1<<20))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	var n, sum int64
	for sc.Scan() {
		var p parsed
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return n, err
		}
		sum += p.PeopleCount + int64(len(p.GridCellID)) + p.WindowStart.Unix()
		n++
	}
	sink.Add(sum)
	return n, sc.Err()
}

// AnchorJSONPages decodes pages (top-level arrays) with json.Unmarshal into
// a typed slice — the same bytes the HTTP transport receives, no HTTP.
func AnchorJSONPages(pages [][]byte) (int64, error) {
	var n, sum int64
	for _, pg := range pages {
		var ps []parsed
		if err := json.Unmarshal(pg, &ps); err != nil {
			return n, err
		}
		for _, p := range ps {
			sum += p.PeopleCount + int64(len(p.GridCellID)) + p.WindowStart.Unix()
		}
		n += int64(len(ps))
	}
	sink.Add(sum)
	return n, nil
}

// LoadPostgres creates table (id bigint primary key, then Columns) and fills
// it with n rows by COPY FROM STDIN, then VACUUM ANALYZEs it so reads do
// not pay for hint bits. It returns the rows' size as text: the sum of
// octet_length(row::text), the input bytes of MB/s.
func LoadPostgres(ctx context.Context, dsn, table string, n int) (int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `DROP TABLE IF EXISTS `+pgx.Identifier{table}.Sanitize()+`;
		CREATE TABLE `+pgx.Identifier{table}.Sanitize()+` (id bigint NOT NULL, grid_cell_id text NOT NULL,
		window_start timestamptz NOT NULL, people_count bigint NOT NULL, inflow bigint, outflow bigint)`); err != nil {
		return 0, err
	}
	rows := make(chan []any, 1024)
	genErr := make(chan error, 1)
	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		defer close(rows)
		genErr <- Gen(n, func(i int, r *Row) error {
			select {
			case rows <- []any{int64(i + 1), r.Cell, r.WindowStart, r.People, r.Inflow, r.Outflow}:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
	}()
	var cur []any
	src := pgx.CopyFromFunc(func() ([]any, error) {
		var ok bool
		if cur, ok = <-rows; !ok {
			return nil, nil
		}
		return cur, nil
	})
	copied, err := conn.CopyFrom(ctx, pgx.Identifier{table}, append([]string{"id"}, Columns...), src)
	if err != nil {
		return 0, fmt.Errorf("copy: %w", err)
	}
	if err := <-genErr; err != nil {
		return 0, err
	}
	if copied != int64(n) {
		return 0, fmt.Errorf("copied %d rows, want %d", copied, n)
	}
	q := pgx.Identifier{table}.Sanitize()
	if _, err := conn.Exec(ctx, `ALTER TABLE `+q+` ADD PRIMARY KEY (id)`); err != nil {
		return 0, err
	}
	if _, err := conn.Exec(ctx, `VACUUM (ANALYZE) `+q); err != nil {
		return 0, err
	}
	var size int64
	if err := conn.QueryRow(ctx, `SELECT sum(octet_length(t::text))::bigint FROM `+q+` AS t`).Scan(&size); err != nil {
		return 0, err
	}
	return size, nil
}

// AnchorSQL scans `SELECT * FROM table` through database/sql (driver pgx)
// into typed Go values: one query, no paging, no mapping.
func AnchorSQL(ctx context.Context, dsn, table string) (int64, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT * FROM `+pgx.Identifier{table}.Sanitize())
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	var n, sum int64
	var id int64
	var p parsed
	var in, out sql.NullInt64
	for rows.Next() {
		if err := rows.Scan(&id, &p.GridCellID, &p.WindowStart, &p.PeopleCount, &in, &out); err != nil {
			return n, err
		}
		sum += p.PeopleCount + int64(len(p.GridCellID)) + p.WindowStart.Unix() + in.Int64
		n++
	}
	sink.Add(sum)
	if err := rows.Err(); err != nil {
		return n, err
	}
	if n == 0 {
		return 0, errors.New("empty table")
	}
	return n, nil
}
