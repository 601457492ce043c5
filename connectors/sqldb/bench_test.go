package sqldb

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"citybrain/connectors"
	"citybrain/internal/benchrun/conndata"
	"citybrain/internal/testenv"
)

// BenchmarkRead measures Source.Read of a PostgreSQL table of 200k
// deterministic mobile_signal rows (package conndata, loaded with COPY) by
// its watermark id with batch_rows 5000, through the mapping into an Emit
// that only counts; anchor=database-sql scans SELECT * FROM the table into
// typed values through database/sql. Needs PostgreSQL (make test-deps);
// skipped with -short. Reproduce with
//
//	go test -run '^$' -bench 'Read' -benchtime 3x ./connectors/sqldb/
//
// (make bench runs the 1M-row version: go run ./internal/benchrun -suite connectors).
func BenchmarkRead(b *testing.B) {
	if testing.Short() {
		b.Skip("needs PostgreSQL; skipped with -short")
	}
	dsn := benchPostgres(b)
	const rows, table = 200_000, "bench_signal"
	if _, err := conndata.LoadPostgres(context.Background(), dsn, table, rows); err != nil {
		b.Fatal(err)
	}
	m, err := conndata.Mapper()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("batch=5000/rows=200000", func(b *testing.B) {
		src, err := New(Config{DSN: dsn, Table: table, Watermark: "id", Key: Columns{"id"}, BatchRows: 5000}, m)
		if err != nil {
			b.Fatal(err)
		}
		defer src.Close()
		b.ReportAllocs()
		for b.Loop() {
			var c conndata.Counter
			if err := src.Read(context.Background(), connectors.Positions{}, c.Emit); err != nil {
				b.Fatal(err)
			}
			if err := c.Check(rows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("anchor=database-sql/rows=200000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if n, err := conndata.AnchorSQL(context.Background(), dsn, table); err != nil || n != rows {
				b.Fatalf("%d rows, %v", n, err)
			}
		}
		b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// benchPostgres is postgres() for benchmarks: the package's shared cluster
// (stopped by TestMain).
func benchPostgres(b *testing.B) string {
	b.Helper()
	pgOnce.Do(func() {
		if pgDir, pgErr = os.MkdirTemp("", "cbsql-"); pgErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if pg, pgErr = testenv.StartPostgres(ctx, pgDir); pgErr != nil {
			return
		}
		if pgDB, pgErr = sql.Open("pgx", pg.DSN()); pgErr == nil {
			pgErr = pgDB.Ping()
		}
	})
	if pgErr != nil {
		b.Fatal(pgErr)
	}
	return pg.DSN()
}
