package testenv

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
)

func TestPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Keep the Unix socket path short: t.TempDir() can exceed sun_path.
	base, err := os.MkdirTemp("", "cbpg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })

	start := time.Now()
	pg, err := StartPostgres(ctx, filepath.Join(base, "pg"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := pg.Stop(); err != nil {
			t.Error(err)
		}
	})
	t.Logf("postgres up in %v at %s", time.Since(start).Round(time.Millisecond), pg.DSN())

	db, err := sql.Open("pgx", pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE sensors (id int PRIMARY KEY, name text NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO sensors VALUES ($1, $2), ($3, $4)`, 1, "north", 2, "south"); err != nil {
		t.Fatal(err)
	}
	var n int
	var name string
	if err := db.QueryRowContext(ctx, `SELECT count(*), max(name) FROM sensors`).Scan(&n, &name); err != nil {
		t.Fatal(err)
	}
	if n != 2 || name != "south" {
		t.Fatalf("got count=%d max(name)=%q, want 2, south", n, name)
	}
	var dbname string
	if err := db.QueryRowContext(ctx, `SELECT current_database()`).Scan(&dbname); err != nil {
		t.Fatal(err)
	}
	if dbname != PostgresDatabase {
		t.Fatalf("current_database() = %q, want %q", dbname, PostgresDatabase)
	}

	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := pg.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}
