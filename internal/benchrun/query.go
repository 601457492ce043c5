package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sort"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/jackc/pgx/v5"

	"citybrain/internal/auth"
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
sandbox, SCRAM login, extended protocol, binary results) by pgx, scanning every row into typed Go values,
against the same SELECT (2M rows: bigint, timestamptz, varchar, double + the lake's _cursor column) run
directly on DuckDB in-process through database/sql, scanning the same values. Both read the same Iceberg
table's Parquet files; median of 3 runs each; ratio = ours / direct (rows/s). Target ≥ 0.5.`,
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
	wRate, err := measure(wire)
	if err != nil {
		return fail(fmt.Errorf("pgwire: %w", err))
	}
	return []Result{{
		Name: "query/pgwire", Status: "ok", Rows: queryRows, Figure: wRate, Unit: "rows/s", RowsPerS: wRate,
		Reason: "target ≥ 0.5 of direct",
		Anchor: &Anchor{Name: "DuckDB in-process (database/sql)", Figure: dRate, Unit: "rows/s", Ratio: wRate / dRate, RowsPerS: dRate},
	}}
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
	w, err := warehouse.NewFileWriter(t, s, "0000000001.parquet", nil)
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
