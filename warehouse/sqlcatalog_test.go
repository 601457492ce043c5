package warehouse

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"testing"
	"time"
)

// TestSQLCatalogInstancesStartTogether: several instances opening a new
// catalog database at the same moment (the platform's roles started
// together, docs/roles.md) race to create its tables; PostgreSQL answers
// the loser of CREATE TABLE IF NOT EXISTS with a unique violation on
// pg_type. Every open succeeds (found by TestRoles).
func TestSQLCatalogInstancesStartTogether(t *testing.T) {
	_, pg := startS3Services(t)
	ctx := context.Background()
	admin, err := sql.Open("pgx", pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for round := range 3 {
		db := fmt.Sprintf("race_%d_%d", time.Now().UnixNano(), round)
		if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+db); err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(pg.DSN())
		u.Path = "/" + db
		var wg sync.WaitGroup
		errs := make([]error, 6)
		start := make(chan struct{})
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cfg := DefaultConfig()
				cfg.Catalog = "sql"
				cfg.SQL.DSN = u.String()
				cfg.Dir = t.TempDir()
				<-start
				l, err := Open(ctx, cfg, "", slog.New(slog.DiscardHandler))
				if err == nil {
					l.Close()
				}
				errs[i] = err
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d, instance %d: %v", round, i, err)
			}
		}
	}
}
