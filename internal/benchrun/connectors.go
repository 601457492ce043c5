package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"citybrain/connectors"
	"citybrain/connectors/file"
	"citybrain/connectors/httpapi"
	"citybrain/connectors/sqldb"
	"citybrain/internal/benchrun/conndata"
	"citybrain/internal/testenv"
)

// The connectors suite: per transport, records read by Source.Read through
// the mapping (conndata.Spec, onto mobile_signal) into an Emit that only
// counts, in this process (no Kafka). Wall and CPU (getrusage of the whole
// process) are taken around Read alone; each run must yield exactly the
// rows generated and no reject. Each is compared with the same bytes read
// by the standard library alone in the same run (the anchor).

// httpPageSize is the page size of the HTTP benchmark.
const httpPageSize = 1000

// sqlBatchRows is sql.batch_rows of the SQL benchmark.
const sqlBatchRows = 5000

func runConnectors(ctx context.Context, rows, httpRows int, keep bool) []Result {
	dir, err := os.MkdirTemp("", "citybrain-bench-conn-")
	if err != nil {
		return []Result{{Name: "connector/*", Status: "failed", Reason: err.Error()}}
	}
	if keep {
		logf("data directory kept: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	var out []Result
	for _, b := range []struct {
		name string
		fn   func(context.Context, *Result, string) error
	}{
		{"file/csv", func(ctx context.Context, r *Result, dir string) error { return benchCSV(ctx, r, dir, rows) }},
		{"file/jsonl", func(ctx context.Context, r *Result, dir string) error { return benchJSONL(ctx, r, dir, rows) }},
		{"http", func(ctx context.Context, r *Result, dir string) error { return benchHTTP(ctx, r, httpRows) }},
		{"sql", func(ctx context.Context, r *Result, dir string) error { return benchSQL(ctx, r, rows) }},
	} {
		if ctx.Err() != nil {
			break
		}
		r := Result{Name: "connector/" + b.name, Transport: b.name, Unit: "rows/s per core"}
		logf("=== %s", r.Name)
		err := b.fn(ctx, &r, dir)
		var skip *skipError
		switch {
		case errors.As(err, &skip):
			r.Status, r.Reason = "skipped", skip.reason
		case err != nil:
			r.Status, r.Reason = "failed", err.Error()
		default:
			r.Status = "ok"
			logf("%s: %d rows in %.2fs wall, %.2fs CPU: %s rows/s, %s rows/s per core, %.1f MB/s; %s: %s rows/s per core → %.2f×",
				r.Name, r.Rows, r.WallS, r.CPUS, num(r.RowsPerS), num(r.RowsPerCoreS), r.MBPerS,
				r.Anchor.Name, num(r.Anchor.Figure), r.Anchor.Ratio)
		}
		if r.Status != "ok" {
			logf("=== %s: %s: %s", r.Name, r.Status, r.Reason)
		}
		out = append(out, r)
	}
	return out
}

// skipError marks a benchmark that cannot run here.
type skipError struct{ reason string }

func (e *skipError) Error() string { return e.reason }

// read runs src.Read into a counting Emit and checks it yields want rows.
func read(ctx context.Context, src connectors.Source, want int64) (conndata.Measurement, error) {
	var c conndata.Counter
	m, err := conndata.Measure(func() (int64, error) {
		err := src.Read(ctx, connectors.Positions{}, c.Emit)
		return c.Rows, err
	})
	if err != nil {
		return m, fmt.Errorf("read: %w", err)
	}
	return m, c.Check(want)
}

// fill sets the figures of r from our run and the anchor's.
func fill(r *Result, ours, anchor conndata.Measurement, inputBytes int64, anchorName string) error {
	if anchor.Rows != ours.Rows {
		return fmt.Errorf("anchor read %d rows, the transport %d", anchor.Rows, ours.Rows)
	}
	r.Rows = ours.Rows
	r.InputBytes = inputBytes
	r.WallS = ours.Wall.Seconds()
	r.CPUS = ours.CPU.Seconds()
	r.RowsPerS = ours.RowsPerS()
	r.RowsPerCoreS = ours.RowsPerCoreS()
	r.MBPerS = float64(inputBytes) / ours.Wall.Seconds() / 1e6
	r.Figure = r.RowsPerCoreS
	r.Anchor = &Anchor{Name: anchorName, Figure: anchor.RowsPerCoreS(), Unit: "rows/s per core",
		Ratio: r.RowsPerCoreS / anchor.RowsPerCoreS(), RowsPerS: anchor.RowsPerS()}
	logf("anchor %s: %d rows in %.2fs wall, %.2fs CPU", anchorName, anchor.Rows, anchor.Wall.Seconds(), anchor.CPU.Seconds())
	return nil
}

func benchCSV(ctx context.Context, r *Result, dir string, n int) error {
	path := filepath.Join(dir, "signal.csv")
	size, err := conndata.WriteCSV(path, n)
	if err != nil {
		return err
	}
	logf("wrote %s: %d rows, %.1f MB", path, n, float64(size)/1e6)
	m, err := conndata.Mapper()
	if err != nil {
		return err
	}
	src, err := file.New(file.Config{Paths: []string{path}, Header: true}, m)
	if err != nil {
		return err
	}
	ours, err := read(ctx, src, int64(n))
	if err != nil {
		return err
	}
	anchor, err := conndata.Measure(func() (int64, error) { return conndata.AnchorCSV(path) })
	if err != nil {
		return fmt.Errorf("anchor: %w", err)
	}
	return fill(r, ours, anchor, size, "encoding/csv + strconv/time.Parse")
}

func benchJSONL(ctx context.Context, r *Result, dir string, n int) error {
	path := filepath.Join(dir, "signal.jsonl")
	size, err := conndata.WriteJSONL(path, n)
	if err != nil {
		return err
	}
	logf("wrote %s: %d rows, %.1f MB", path, n, float64(size)/1e6)
	m, err := conndata.Mapper()
	if err != nil {
		return err
	}
	src, err := file.New(file.Config{Paths: []string{path}, Format: file.FormatJSONL}, m)
	if err != nil {
		return err
	}
	ours, err := read(ctx, src, int64(n))
	if err != nil {
		return err
	}
	anchor, err := conndata.Measure(func() (int64, error) { return conndata.AnchorJSONL(path) })
	if err != nil {
		return fmt.Errorf("anchor: %w", err)
	}
	return fill(r, ours, anchor, size, "encoding/json")
}

func benchHTTP(ctx context.Context, r *Result, n int) error {
	pages := conndata.JSONPages(n, httpPageSize)
	ps := &conndata.PageServer{Pages: pages, PageSize: httpPageSize}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return &skipError{fmt.Sprintf("cannot listen on 127.0.0.1: %v", err)}
	}
	srv := httptest.NewUnstartedServer(ps)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	m, err := conndata.Mapper()
	if err != nil {
		return err
	}
	src, err := httpapi.New(httpapi.Config{URL: srv.URL + "/signals",
		Pagination: httpapi.Pagination{Kind: httpapi.PageOffset, PageSize: httpPageSize}}, m)
	if err != nil {
		return err
	}
	ours, err := read(ctx, src, int64(n))
	if err != nil {
		return err
	}
	logf("http: %d requests, %.1f MB of response bodies", ps.Requests.Load(), float64(ps.Bytes.Load())/1e6)
	anchor, err := conndata.Measure(func() (int64, error) { return conndata.AnchorJSONPages(pages) })
	if err != nil {
		return fmt.Errorf("anchor: %w", err)
	}
	return fill(r, ours, anchor, ps.Bytes.Load(), "encoding/json")
}

func benchSQL(ctx context.Context, r *Result, n int) error {
	// A short path: the server's Unix socket lives in it.
	dir, err := os.MkdirTemp("", "cbpg-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	pg, err := testenv.StartPostgres(sctx, dir)
	cancel()
	if err != nil {
		return &skipError{fmt.Sprintf("PostgreSQL did not start: %v", firstLine(err.Error()))}
	}
	defer func() {
		if err := pg.Stop(); err != nil {
			logf("stopping PostgreSQL: %v", err)
		}
	}()
	const table = "bench_signal"
	t0 := time.Now()
	size, err := conndata.LoadPostgres(ctx, pg.DSN(), table, n)
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	logf("loaded %d rows (%.1f MB as text) into %s in %.1fs", n, float64(size)/1e6, table, time.Since(t0).Seconds())
	m, err := conndata.Mapper()
	if err != nil {
		return err
	}
	src, err := sqldb.New(sqldb.Config{DSN: pg.DSN(), Table: table, Watermark: "id", Key: sqldb.Columns{"id"}, BatchRows: sqlBatchRows}, m)
	if err != nil {
		return err
	}
	defer src.Close()
	ours, err := read(ctx, src, int64(n))
	if err != nil {
		return err
	}
	anchor, err := conndata.Measure(func() (int64, error) { return conndata.AnchorSQL(ctx, pg.DSN(), table) })
	if err != nil {
		return fmt.Errorf("anchor: %w", err)
	}
	return fill(r, ours, anchor, size, "database/sql SELECT *")
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
