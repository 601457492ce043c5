package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/jackc/pgx/v5"

	"citybrain/internal/auth"
	"citybrain/internal/testenv"
	"citybrain/schemas"
	"citybrain/warehouse"
	"citybrain/warehouse/pgwire"
	"citybrain/warehouse/sqlaccess"
)

// queryRows is the size of the query benchmark's table.
const queryRows = 2_000_000

// queryRuns is how many times each side runs; the median counts.
const queryRuns = 3

const queryBenchSchema = `
name: bench_query
version: 1
table: raw.bench_query
doc: {zh: 查询基准表, en: Query benchmark table}
event_time: observed_at
fields:
  - {name: id, type: long, required: true, doc: {zh: 编号, en: Id}}
  - {name: observed_at, type: timestamp, required: true, doc: {zh: 时间, en: Time}}
  - {name: cell, type: string, required: true, doc: {zh: 网格, en: Grid cell}}
  - {name: value, type: double, doc: {zh: 数值, en: Value}}
`

func init() {
	registerSuite(Suite{
		Name: "query",
		Doc: `Rows/s streamed to a client over the PostgreSQL wire protocol (warehouse/pgwire: the analyst
sandbox, SCRAM login) by each kind of client — pgx (extended protocol, binary results, every row scanned
into typed Go values), psql (simple protocol, text, every row printed unaligned to /dev/null), psql's
\copy (COPY TO STDOUT), psycopg 3 (text results parsed into Python values, a cursor iterated) and its
cursor.copy() (COPY TO STDOUT, lines counted in Python) —
against the same SELECT (2M rows: bigint, timestamptz, varchar, double + the lake's _cursor column) run
directly on DuckDB in-process through database/sql, scanning the same values. All read the same Iceberg
table's Parquet files; median of 3 runs each; ratio = client / direct (rows/s). Target ≥ 0.5 each.`,
		Reproduce: "go run ./internal/benchrun -suite query",
		Run:       runQueryBench,
	})
}

func runQueryBench(ctx context.Context, tmp string) []Result {
	fail := func(err error) []Result {
		return []Result{{Name: "query/pgwire", Status: "failed", Reason: err.Error(), Unit: "rows/s"}}
	}
	log := slog.New(slog.DiscardHandler)
	dataDir := filepath.Join(tmp, "data")
	lake, err := warehouse.Open(ctx, warehouse.DefaultConfig(), dataDir, log)
	if err != nil {
		return fail(err)
	}
	defer lake.Close()
	s, err := schemas.Parse([]byte(queryBenchSchema))
	if err != nil {
		return fail(err)
	}
	if err := writeQueryTable(ctx, lake, s); err != nil {
		return fail(fmt.Errorf("write table: %w", err))
	}
	eng, err := warehouse.NewEngine(ctx, lake)
	if err != nil {
		return fail(err)
	}
	defer eng.Close()
	acfg := auth.DefaultConfig()
	acfg.DemoUsers = true
	users, err := auth.Open(acfg, dataDir)
	if err != nil {
		return fail(err)
	}
	reg, _ := schemas.Builtin()
	access := sqlaccess.New(sqlaccess.DefaultConfig(), eng, lake, reg, users, log)
	defer access.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv := &pgwire.Server{Access: access, Log: log}
	go srv.Serve(sctx, ln)

	const q = "select id, observed_at, cell, value, _cursor from raw.bench_query"
	direct := func() (int64, error) {
		rows, err := eng.DB().QueryContext(ctx, q)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		var n, id int64
		var ts time.Time
		var cell, cur string
		var v float64
		for rows.Next() {
			if err := rows.Scan(&id, &ts, &cell, &v, &cur); err != nil {
				return n, err
			}
			n++
		}
		return n, rows.Err()
	}
	wire := func() (int64, error) {
		c, err := pgx.Connect(ctx, fmt.Sprintf("postgres://analyst:%s@%s/citybrain?sslmode=disable", auth.DemoPassword, ln.Addr()))
		if err != nil {
			return 0, err
		}
		defer c.Close(ctx)
		rows, err := c.Query(ctx, q)
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		var n, id int64
		var ts time.Time
		var cell, cur string
		var v float64
		for rows.Next() {
			if err := rows.Scan(&id, &ts, &cell, &v, &cur); err != nil {
				return n, err
			}
			n++
		}
		return n, rows.Err()
	}
	measure := func(f func() (int64, error)) (float64, error) {
		var rates []float64
		for i := 0; i < queryRuns; i++ {
			start := time.Now()
			n, err := f()
			if err != nil {
				return 0, err
			}
			if n != queryRows {
				return 0, fmt.Errorf("read %d rows, want %d", n, queryRows)
			}
			rates = append(rates, float64(n)/time.Since(start).Seconds())
		}
		sort.Float64s(rates)
		return rates[len(rates)/2], nil
	}
	dRate, err := measure(direct)
	if err != nil {
		return fail(fmt.Errorf("direct: %w", err))
	}
	anchor := func(rate float64) *Anchor {
		return &Anchor{Name: "DuckDB in-process (database/sql)", Figure: dRate, Unit: "rows/s", Ratio: rate / dRate, RowsPerS: dRate}
	}
	var out []Result
	// clientCPU is the CPU the last client process used (user + system):
	// with the server's in the same figure, it says which side limits.
	var clientCPU time.Duration
	add := func(name, how string, f func() (int64, error)) {
		clientCPU = 0
		rate, err := measure(f)
		if err != nil {
			out = append(out, Result{Name: name, Status: "failed", Reason: err.Error(), Unit: "rows/s"})
			return
		}
		if clientCPU > 0 {
			how += fmt.Sprintf("; the client process used %.2f s of CPU for %.2f s of wall time", clientCPU.Seconds(), float64(queryRows)/rate)
		}
		out = append(out, Result{Name: name, Status: "ok", Rows: queryRows, Figure: rate, Unit: "rows/s", RowsPerS: rate,
			Reason: how + "; target ≥ 0.5 of direct", Anchor: anchor(rate)})
	}
	add("query/pgwire", "pgx: extended protocol, binary results, typed scan", wire)
	// The text format's clients: psql (simple protocol, every row into
	// memory, printed unaligned to /dev/null), \copy (COPY TO STDOUT) and
	// psycopg 3 (extended protocol, text results parsed into Python values).
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	psql, perr := exec.LookPath("psql")
	pgEnv := append(os.Environ(), "PGPASSWORD="+auth.DemoPassword, "PGHOST="+host, "PGPORT="+port, "PGUSER=analyst", "PGDATABASE=citybrain", "PGSSLMODE=disable")
	runPsql := func(cmd string) func() (int64, error) {
		return func() (int64, error) {
			if perr != nil {
				return 0, fmt.Errorf("psql not installed (make test-deps installs postgresql-client): %w", perr)
			}
			c := exec.CommandContext(ctx, psql, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", cmd, "-o", "/dev/null")
			c.Env = pgEnv
			if b, err := c.CombinedOutput(); err != nil {
				return 0, fmt.Errorf("psql: %v: %s", err, b)
			}
			clientCPU = c.ProcessState.UserTime() + c.ProcessState.SystemTime()
			return queryRows, nil
		}
	}
	add("query/psql", "psql -A -t -c (simple protocol, text)", runPsql(q))
	add("query/psql_copy", "psql \\copy (COPY TO STDOUT, text)", runPsql(`\copy (`+q+`) to '/dev/null'`))
	py, pyErr := testenv.PythonVenv(ctx, "psycopg-bench", "psycopg[binary]==3.2.10")
	runPy := func(script string) func() (int64, error) {
		return func() (int64, error) {
			if pyErr != nil {
				return 0, pyErr
			}
			c := exec.CommandContext(ctx, py, "-c", script, fmt.Sprintf("host=%s port=%s user=analyst password=%s dbname=citybrain sslmode=disable", host, port, auth.DemoPassword), q)
			b, err := c.CombinedOutput()
			if err != nil {
				return 0, fmt.Errorf("psycopg: %v: %s", err, b)
			}
			clientCPU = c.ProcessState.UserTime() + c.ProcessState.SystemTime()
			var n int64
			fmt.Sscan(string(b), &n)
			return n, nil
		}
	}
	add("query/psycopg", "psycopg 3: cursor iteration, text results into Python values", runPy(`import sys, psycopg
with psycopg.connect(sys.argv[1]) as conn:
    n = 0
    for _ in conn.execute(sys.argv[2]):
        n += 1
    print(n)`))
	add("query/psycopg_fetchall", "psycopg 3: cursor.fetchall() (pandas.read_sql's path), text results into Python values", runPy(`import sys, psycopg
with psycopg.connect(sys.argv[1]) as conn:
    print(len(conn.execute(sys.argv[2]).fetchall()))`))
	add("query/psycopg_binary", "psycopg 3: cursor iteration, binary results (execute(binary=True)) into Python values", runPy(`import sys, psycopg
with psycopg.connect(sys.argv[1]) as conn:
    n = 0
    for _ in conn.cursor(binary=True).execute(sys.argv[2]):
        n += 1
    print(n)`))
	add("query/psycopg_copy", "psycopg 3: cursor.copy(COPY … TO STDOUT), lines counted", runPy(`import sys, psycopg
with psycopg.connect(sys.argv[1]) as conn:
    n = 0
    with conn.cursor().copy("COPY (" + sys.argv[2] + ") TO STDOUT") as cp:
        for data in cp:
            n += bytes(data).count(b"\n")
    print(n)`))
	return out
}

func writeQueryTable(ctx context.Context, lake *warehouse.Lake, s *schemas.Schema) error {
	t, err := lake.EnsureTable(ctx, s)
	if err != nil {
		return err
	}
	st, err := lake.State(ctx, s.Table)
	if err != nil {
		return err
	}
	next := st.Clone()
	next.Batch++
	w, err := lake.NewFileWriter(t, s, "0000000001.parquet", nil)
	if err != nil {
		return err
	}
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < queryRows; i++ {
		r := schemas.Record{int64(i), base.Add(time.Duration(i) * time.Second), fmt.Sprintf("cell-%04d", i%5000), float64(i%1000) / 7}
		if err := w.Write(r, fmt.Sprintf("bench:%d", i)); err != nil {
			w.Abort()
			return err
		}
	}
	df, err := w.Close()
	if err != nil {
		return err
	}
	_, err = lake.Commit(ctx, s.Table, []iceberg.DataFile{df}, next)
	return err
}
