package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"citybrain/internal/testenv"
)

const signalMapping = `    mapping:
      timezone: Asia/Shanghai
      fields:
        grid_cell_id: {column: cell}
        window_start: {column: ts}
        people_count: {column: people}
        inflow:       {column: inflow}
        outflow:      {column: outflow}
`

// killLoop starts and SIGKILLs serve at random moments, then lets it finish
// and checks the lake holds exactly n records with the checksum.
func killLoop(t *testing.T, e *env, n int, sum int64, kills int) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, 3))
	t.Logf("kill schedule seed %d", seed)
	e.killRepeatedly(kills, rng, 200, 900, "select count(*) from raw.mobile_signal")
	s := e.serve("serve-final.log")
	waitFor(t, "every record in the lake", 3*time.Minute, func() (bool, string) {
		out, errOut, err := e.try("sql", "--format", "csv", "select count(*) from raw.mobile_signal")
		if err != nil {
			return false, errOut
		}
		return strings.Contains(out, "\n"+strconv.Itoa(n)), out
	})
	time.Sleep(1500 * time.Millisecond)
	rows := e.sqlRows("select count(*), count(distinct _cursor), sum(people_count) from raw.mobile_signal")
	s.stop(t)
	if rows[0][0] != strconv.Itoa(n) || rows[0][1] != rows[0][0] || rows[0][2] != strconv.FormatInt(sum, 10) {
		t.Fatalf("lake: count, distinct cursors, checksum = %v; want %d, %d, %d\n%s", rows[0], n, n, sum, s.logTail())
	}
	t.Logf("after %d SIGKILLs: %v (want %d, %d, %d)", kills, rows[0], n, n, sum)
}

// TestKillNineHTTP: the HTTP API transport killed mid-page resumes exactly
// (page + skip in the cursor token).
func TestKillNineHTTP(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test: skipped with -short")
	}
	const n = 60_000
	type rec struct {
		Cell    string `json:"cell"`
		TS      string `json:"ts"`
		People  int64  `json:"people"`
		Inflow  int64  `json:"inflow"`
		Outflow int64  `json:"outflow"`
	}
	rng := rand.New(rand.NewPCG(11, 12))
	recs := make([]rec, n)
	var sum int64
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := range recs {
		recs[i] = rec{Cell: fmt.Sprintf("XC-%04d", i%3000), TS: start.Add(time.Duration(i/3000) * 5 * time.Minute).Format(time.RFC3339), People: rng.Int64N(5000), Inflow: rng.Int64N(100), Outflow: rng.Int64N(100)}
		sum += recs[i].People
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		size, _ := strconv.Atoi(r.URL.Query().Get("page_size"))
		from := min((page-1)*size, n)
		to := min(from+size, n)
		time.Sleep(2 * time.Millisecond)
		json.NewEncoder(w).Encode(recs[from:to])
	}))
	defer srv.Close()
	cfg := fmt.Sprintf(`lake_writer: {flush_rows: 2500, flush_interval: 500ms, idle_flush: 200ms}
sources:
  - name: signal_http
    schema: mobile_signal
    transport: http
    poll_interval: 200ms
    http: {url: %q, pagination: {kind: page, page_size: 500}}
%s`, srv.URL+"/signal", signalMapping) + disableOthers("signal_http")
	e := newEnv(t, "")
	e.replace("lake_writer: {flush_rows: 100000, flush_interval: 2s, idle_flush: 300ms}\n", "")
	b, _ := os.ReadFile(e.config)
	os.WriteFile(e.config, append(b, cfg...), 0o644)
	if out := e.run("connectors", "check", "--source", "signal_http"); !strings.Contains(out, "ok") {
		t.Fatalf("connectors check: %s", out)
	}
	killLoop(t, e, n, sum, 10)
}

// TestKillNineSQL: the database transport killed mid-table resumes exactly
// after the last (watermark, key) committed, with many rows per watermark.
func TestKillNineSQL(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test: skipped with -short")
	}
	const n = 60_000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "cbkill-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	pg, err := testenv.StartPostgres(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	db, err := sql.Open("pgx", pg.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// 30 rows share each updated_at: ties on the watermark everywhere.
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`
create table signal (id bigint primary key, updated_at timestamptz not null, cell text, ts timestamptz, people bigint, inflow bigint, outflow bigint);
insert into signal select i, timestamptz '2026-11-01 00:00:00+08' + (i / 30) * interval '1 second',
  'XC-' || lpad((i %% 3000)::text, 4, '0'), timestamptz '2026-11-01 00:00:00+08' + (i / 3000) * interval '5 minutes',
  (i * 7919) %% 5000, i %% 100, i %% 77 from generate_series(0, %d) as i;`, n-1)); err != nil {
		t.Fatal(err)
	}
	var sum int64
	if err := db.QueryRowContext(ctx, "select sum(people) from signal").Scan(&sum); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SIGNAL_DSN", pg.DSN())
	cfg := fmt.Sprintf(`lake_writer: {flush_rows: 2500, flush_interval: 500ms, idle_flush: 200ms}
sources:
  - name: signal_sql
    schema: mobile_signal
    transport: sql
    poll_interval: 200ms
    sql: {dsn_env: SIGNAL_DSN, table: signal, watermark: updated_at, key: id, batch_rows: 700}
%s`, signalMapping) + disableOthers("signal_sql")
	e := newEnv(t, "")
	e.replace("lake_writer: {flush_rows: 100000, flush_interval: 2s, idle_flush: 300ms}\n", "")
	b, _ := os.ReadFile(e.config)
	os.WriteFile(e.config, append(b, cfg...), 0o644)
	if out := e.run("connectors", "check", "--source", "signal_sql"); !strings.Contains(out, "ok") {
		t.Fatalf("connectors check: %s", out)
	}
	if _, errOut, err := e.try("connectors", "check", "--source", "weather_missing"); err == nil {
		t.Errorf("check of an unknown source should fail: %s", errOut)
	}
	killLoop(t, e, n, sum, 10)
}
