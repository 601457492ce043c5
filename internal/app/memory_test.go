package app

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"citybrain/internal/freshness"
	"citybrain/warehouse"
)

// TestMetricsMemory: /metrics carries each reported DuckDB database's
// memory (a real in-memory DuckDB holding a table), Go's memory and the
// process's resident set.
func TestMetricsMemory(t *testing.T) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t AS SELECT range AS i, repeat('x', 100) AS s FROM range(200000)"); err != nil {
		t.Fatal(err)
	}
	rt := &Runtime{Mux: http.NewServeMux(), Fresh: freshness.New(time.Now, freshness.DefaultThresholds())}
	rt.MountMetrics()
	rt.ReportMemory(func(ctx context.Context) (map[string]int64, error) {
		n, err := warehouse.DuckDBMemory(ctx, db)
		return map[string]int64{"test": n}, err
	})
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.RemoteAddr = "127.0.0.1:5555"
	rt.Mux.ServeHTTP(rec, req)
	body := rec.Body.String()
	for _, re := range []string{
		`(?m)^citybrain_duckdb_memory_bytes\{db="test"\} ([0-9.e+]+)$`,
		`(?m)^citybrain_go_memory_bytes ([0-9.e+]+)$`,
		`(?m)^citybrain_go_heap_objects_bytes ([0-9.e+]+)$`,
		`(?m)^citybrain_process_resident_bytes ([0-9.e+]+)$`,
	} {
		m := regexp.MustCompile(re).FindStringSubmatch(body)
		if m == nil {
			t.Errorf("no %s in /metrics:\n%s", re, body)
			continue
		}
		// A 200,000-row table (~20 MB of strings) is held in memory.
		if v, _ := strconv.ParseFloat(m[1], 64); v < 1<<20 {
			t.Errorf("%s = %v, want ≥ 1 MiB", re, v)
		}
	}
}
