package pgwire

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"citybrain/internal/testenv"
	"citybrain/warehouse/sqlaccess"
	"citybrain/warehouse/sqlaccess/sqltest"
)

type env struct {
	f    *sqltest.Fixture
	addr string
	srv  *Server
}

func start(t *testing.T, cfg sqlaccess.Config, tc *tls.Config) *env {
	t.Helper()
	f := sqltest.New(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{Access: f.Access, Log: testLogger(t), TLS: tc}
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &env{f: f, addr: ln.Addr().String(), srv: srv}
}

func (e *env) dsn(user, password, sslmode string) string {
	host, port, _ := net.SplitHostPort(e.addr)
	return "postgres://" + user + ":" + password + "@" + host + ":" + port + "/citybrain?sslmode=" + sslmode
}

func (e *env) connect(t *testing.T, user string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, e.dsn(user, sqltest.Password, "disable"))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func sqlstate(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

func TestLogin(t *testing.T) {
	e := start(t, sqlaccess.DefaultConfig(), nil)
	ctx := context.Background()
	for _, tc := range []struct{ user, pw, want string }{
		{"analyst", "wrong-password", "28P01"},
		{"nobody", sqltest.Password, "28P01"},
	} {
		c, err := pgx.Connect(ctx, e.dsn(tc.user, tc.pw, "disable"))
		if err == nil {
			c.Close(ctx)
			t.Fatalf("%s/%s logged in", tc.user, tc.pw)
		}
		if sqlstate(err) != tc.want || !strings.Contains(err.Error(), "用户名或密码错误") {
			t.Errorf("%s: %v", tc.user, err)
		}
	}
	e.connect(t, "analyst")
}

func TestPgxQueries(t *testing.T) {
	e := start(t, sqlaccess.DefaultConfig(), nil)
	c := e.connect(t, "analyst")
	ctx := context.Background()
	// Parameters (binary from pgx), prepared statements, reuse.
	if _, err := c.Prepare(ctx, "busy", "select count(*) from raw.mobile_signal where people_count >= $1 and grid_cell_id <> $2"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		min  int64
		want int64
	}{{40, 10}, {45, 5}, {0, 40}} { // counts below 10 are suppressed (NULL) for analysts
		var n int64
		if err := c.QueryRow(ctx, "busy", tc.min, "none").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != tc.want {
			t.Errorf("people_count >= %d: %d rows, want %d", tc.min, n, tc.want)
		}
	}
	// Type mapping: timestamptz, decimal, lists, text, NULL, bool, date, interval.
	var (
		ts   time.Time
		dec  string
		ints []int32
		strs []*string
		null *string
		b    bool
		d    time.Time
		f    float64
		iv   string
	)
	err := c.QueryRow(ctx, `select TIMESTAMPTZ '2026-11-28 10:00:00+08', 12345.678::DECIMAL(10,3)::VARCHAR, [1,2,3]::INTEGER[], ['a','b c',NULL]::VARCHAR[], NULL::VARCHAR, true, DATE '2026-11-28', 2.5::DOUBLE, (INTERVAL 90 MINUTE)::VARCHAR`).
		Scan(&ts, &dec, &ints, &strs, &null, &b, &d, &f, &iv)
	if err != nil {
		t.Fatal(err)
	}
	if !ts.Equal(time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)) || dec != "12345.678" || len(ints) != 3 || ints[2] != 3 || len(strs) != 3 || *strs[1] != "b c" || strs[2] != nil || null != nil || !b || d.Day() != 28 || f != 2.5 {
		t.Errorf("values: %v %v %v %v %v %v %v %v %v", ts, dec, ints, strs, null, b, d, f, iv)
	}
	var num pgNumeric
	if err := c.QueryRow(ctx, "select 12345.678::DECIMAL(10,3)").Scan(&num.v); err != nil {
		t.Fatal(err)
	}
	if fv, _ := num.v.Float64Value(); fv.Float64 != 12345.678 {
		t.Errorf("numeric = %v", fv)
	}
	// Text-format results and many rows through one portal.
	rows, err := c.Query(ctx, "select i, 'r' || i::VARCHAR from range(5000) t(i)", pgx.QueryResultFormats{pgx.TextFormatCode, pgx.TextFormatCode})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var i int64
		var s string
		if err := rows.Scan(&i, &s); err != nil {
			t.Fatal(err)
		}
		if s != "r"+strconv.FormatInt(i, 10) {
			t.Fatalf("row %d: %q", i, s)
		}
		n++
	}
	if rows.Err() != nil || n != 5000 {
		t.Fatalf("%d rows, %v", n, rows.Err())
	}
	// Transactions the drivers open are accepted; the sandbox stays read-only.
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var one int
	if err := tx.QueryRow(ctx, "select 1").Scan(&one); err != nil || one != 1 {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// Errors carry SQLSTATEs.
	_, err = c.Exec(ctx, "select * from raw.nope")
	if s := sqlstate(err); s != "42501" {
		t.Errorf("missing table: %v", err)
	}
	_, err = c.Exec(ctx, "select from where")
	if s := sqlstate(err); s != "42601" {
		t.Errorf("syntax: %v", err)
	}
}

type pgNumeric struct{ v pgtypeNumeric }

func TestTimeTravelOverWire(t *testing.T) {
	e := start(t, sqlaccess.DefaultConfig(), nil)
	c := e.connect(t, "admin")
	ctx := context.Background()
	for i, want := range []int64{30, 50} {
		var n int64
		q := "select count(*) from raw.mobile_signal AT (VERSION => " + strconv.FormatInt(e.f.Snapshots[i], 10) + ")"
		if err := c.QueryRow(ctx, q).Scan(&n); err != nil || n != want {
			t.Errorf("%s: %d %v, want %d", q, n, err, want)
		}
	}
	var n int64
	if err := c.QueryRow(ctx, "select count(*) from raw.mobile_signal AT (TIMESTAMP => '2099-01-01 00:00:00+08')").Scan(&n); err != nil || n != 50 {
		t.Errorf("AT TIMESTAMP: %d %v", n, err)
	}
}

func TestCancel(t *testing.T) {
	e := start(t, sqlaccess.DefaultConfig(), nil)
	c := e.connect(t, "analyst")
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(500 * time.Millisecond); cancel() }()
	start := time.Now()
	var n int64
	// pgx sends a CancelRequest when the context ends during a query.
	err := c.QueryRow(ctx, "select count(*) from range(100000000000) a").Scan(&n)
	if err == nil {
		t.Fatal("the long query finished")
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("cancel took %s", d)
	}
	// A new connection works; the server is not stuck.
	c2 := e.connect(t, "analyst")
	if err := c2.QueryRow(context.Background(), "select 42").Scan(&n); err != nil || n != 42 {
		t.Fatalf("after cancel: %v", err)
	}
	// The explicit protocol: CancelRequest on a second connection, SQLSTATE 57014.
	pc := c2.PgConn()
	go func() {
		time.Sleep(500 * time.Millisecond)
		pc.CancelRequest(context.Background())
	}()
	err = c2.QueryRow(context.Background(), "select count(*) from range(100000000000) a").Scan(&n)
	if sqlstate(err) != "57014" {
		t.Fatalf("want 57014 canceling statement, got %v", err)
	}
	if err := c2.QueryRow(context.Background(), "select 7").Scan(&n); err != nil || n != 7 {
		t.Fatalf("connection after cancel: %v", err)
	}
}

func TestEscapeCorpusOverWire(t *testing.T) {
	e := start(t, sqlaccess.DefaultConfig(), nil)
	tmp := t.TempDir()
	corpus := readCorpus(t, tmp, e.f.Lake.Dir())
	for _, user := range []string{"analyst", "dept_water"} {
		c := e.connect(t, user)
		for _, q := range corpus {
			// Simple protocol (what psql sends) and extended (drivers).
			for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheDescribe} {
				_, err := c.Exec(context.Background(), q, mode)
				if sqlstate(err) != "42501" {
					t.Errorf("%s mode %v: %q not refused: %v", user, mode, q, err)
				}
			}
		}
	}
	if ents, _ := os.ReadDir(tmp); len(ents) > 0 {
		t.Errorf("escapes wrote %d file(s)", len(ents))
	}
}

func readCorpus(t *testing.T, tmp, lake string) []string {
	f, err := os.Open("../sqlaccess/testdata/escapes.sql")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, strings.NewReplacer("${TMP}", tmp, "${LAKE}", lake).Replace(l))
		}
	}
	if len(out) < 30 {
		t.Fatalf("corpus: %d entries", len(out))
	}
	return out
}

func TestDepartmentOverWire(t *testing.T) {
	e := start(t, sqlaccess.DefaultConfig(), nil)
	c := e.connect(t, "dept_water")
	ctx := context.Background()
	var n int64
	if err := c.QueryRow(ctx, "select count(*) from marts.warnings").Scan(&n); err != nil || n != 3 {
		t.Errorf("dept_water warnings: %d %v", n, err)
	}
	if err := c.QueryRow(ctx, "select count(*) from raw.mobile_signal").Scan(&n); sqlstate(err) != "42501" {
		t.Errorf("dept_water read raw.mobile_signal: %v", err)
	}
	if err := c.QueryRow(ctx, "select count(*) from pg_catalog.pg_class where relname = 'mobile_signal'").Scan(&n); err != nil || n != 0 {
		t.Errorf("pg_class shows mobile_signal to dept_water: %d %v", n, err)
	}
}

func TestTLS(t *testing.T) {
	tc := selfSigned(t)
	e := start(t, sqlaccess.DefaultConfig(), tc)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, e.dsn("analyst", sqltest.Password, "require"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, ok := c.PgConn().Conn().(*tls.Conn); !ok {
		t.Fatalf("connection is %T, not TLS", c.PgConn().Conn())
	}
	var n int64
	if err := c.QueryRow(ctx, "select count(*) from raw.weather").Scan(&n); err != nil || n != 24 {
		t.Fatalf("over TLS: %d %v", n, err)
	}
}

func selfSigned(t *testing.T) *tls.Config {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// psql runs Debian's psql (postgresql-client) against the server.
func (e *env) psql(t *testing.T, user string, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("psql")
	if err != nil {
		t.Fatal("psql not installed: make test-deps installs postgresql-client")
	}
	host, port, _ := net.SplitHostPort(e.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append([]string{"-X", "-h", host, "-p", port, "-U", user, "-d", "citybrain", "-v", "ON_ERROR_STOP=1"}, args...)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+sqltest.Password, "PGSSLMODE=disable", "PGCLIENTENCODING=UTF8", "PAGER=", "PSQL_PAGER=", "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPsql(t *testing.T) {
	if testing.Short() {
		t.Skip("runs psql (postgresql-client)")
	}
	e := start(t, sqlaccess.DefaultConfig(), nil)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"-c", `\dt`}, []string{"raw     | weather", "raw     | mobile_signal", "marts   | warnings", "catalog | tables", "table"}},
		{[]string{"-c", `\d raw.weather`}, []string{`Table "raw.weather"`, "observed_at", "timestamp with time zone", "temperature_c", "double precision"}},
		{[]string{"-c", `\d+ marts.warnings`}, []string{"kind", "level", "integer", "预警类别 (Kind)"}},
		{[]string{"-c", `\d+ raw.mobile_signal`}, []string{"时段内人数 (People in the cell)"}},
		{[]string{"-c", `\dt+ raw.*`}, []string{"手机信令网格人数 (Mobile-signal people count per grid cell)"}},
		{[]string{"-c", `\l`}, []string{"citybrain"}},
		{[]string{"-c", `\dn`}, []string{"raw", "marts"}},
		{[]string{"-At", "-c", "select count(*) from raw.mobile_signal AT (VERSION => " + strconv.FormatInt(e.f.Snapshots[0], 10) + ")"}, []string{"30"}},
		{[]string{"-At", "-c", "select count(*) from raw.mobile_signal"}, []string{"50"}},
		{[]string{"-At", "-c", "select TIMESTAMPTZ '2026-11-28 02:00:00Z'"}, []string{"2026-11-28 10:00:00+08"}},
		{[]string{"-At", "-c", "select description_zh from catalog.columns where table_name = 'raw.weather' and column_name = 'rain_mm'"}, []string{"小时降水量"}},
		{[]string{"-At", "-c", "begin; select 1; commit"}, []string{"1"}},
		{[]string{"-At", "-c", "select 2", "-c", "select 3"}, []string{"2", "3"}},
	} {
		out, err := e.psql(t, "analyst", tc.args...)
		if err != nil {
			t.Errorf("psql %v: %v\n%s", tc.args, err, out)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("psql %v: no %q in\n%s", tc.args, w, out)
			}
		}
	}
	// The compatibility schema and DuckDB's empty main are not listed.
	if out, err := e.psql(t, "analyst", "-At", "-c", `\dn`); err != nil || strings.Contains(out, "pgcompat") || strings.Contains(out, "main|") {
		t.Errorf(`\dn`+": %v\n%s", err, out)
	}
	// \copy streams a query to a client-side file through COPY … TO STDOUT.
	dst := filepath.Join(t.TempDir(), "w.csv")
	if out, err := e.psql(t, "analyst", "-c", `\copy (select station, observed_at from raw.weather order by observed_at) to '`+dst+`' with (format csv, header)`); err != nil {
		t.Fatalf("\\copy: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(dst)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 25 || lines[0] != "station,observed_at" {
		t.Errorf("\\copy wrote %d lines: %q", len(lines), lines[:min(3, len(lines))])
	}
	// Refusals reach psql users with the message.
	out, err := e.psql(t, "analyst", "-c", "COPY raw.weather TO '/tmp/citybrain-never.csv'")
	if err == nil || !strings.Contains(out, "拒绝执行 refused") {
		t.Errorf("COPY TO through psql: %v\n%s", err, out)
	}
	out, err = e.psql(t, "dept_water", "-c", `\dt`)
	if err != nil || strings.Contains(out, "mobile_signal") || !strings.Contains(out, "warnings") {
		t.Errorf("dept_water \\dt: %v\n%s", err, out)
	}
	// Cancel from psql: SIGINT makes psql send a CancelRequest.
	host, port, _ := net.SplitHostPort(e.addr)
	cmd := exec.Command("psql", "-X", "-h", host, "-p", port, "-U", "analyst", "-d", "citybrain", "-c", "select count(*) from range(100000000000) a")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+sqltest.Password, "PGSSLMODE=disable")
	var outb strings.Builder
	cmd.Stdout, cmd.Stderr = &outb, &outb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("psql did not stop after SIGINT")
	}
	if !strings.Contains(outb.String(), "canceling statement") && !strings.Contains(outb.String(), "查询已取消") {
		t.Errorf("psql after SIGINT: %s", outb.String())
	}
}

// pythonRequirements: psycopg 3 (the Python driver), psycopg2 (the driver
// Superset's images ship) and SQLAlchemy, whose PostgreSQL dialect is what
// Superset introspects with.
var pythonRequirements = []string{"psycopg[binary]==3.2.10", "psycopg2-binary==2.9.13", "SQLAlchemy==2.1.9"}

func pythonVenv(t *testing.T, ctx context.Context) string {
	py, err := testenv.PythonVenv(ctx, "psycopg", pythonRequirements...)
	if err != nil {
		t.Fatal(err)
	}
	return py
}

func TestPsycopg(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Python venv with psycopg")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	py := pythonVenv(t, ctx)
	e := start(t, sqlaccess.DefaultConfig(), nil)
	host, port, _ := net.SplitHostPort(e.addr)
	script := `
import sys, psycopg
dsn = sys.argv[1]
with psycopg.connect(dsn) as conn:
    # psycopg opens a transaction and sends parameters server-side (extended protocol)
    cur = conn.execute("select count(*) from raw.mobile_signal where people_count >= %s and grid_cell_id <> %s", (40, "x"))
    print("count", cur.fetchone()[0])
    cur = conn.execute("select kind from marts.warnings where level = %(l)s order by kind", {"l": 1})
    print("kinds", ",".join(r[0] for r in cur.fetchall()))
    cur = conn.execute("select count(*) from marts.warnings where kind = any(%s) and level = any(%s)", (["crowd", "lifeline"], [1, 2]))
    print("any", cur.fetchone()[0])
    cur = conn.execute("select TIMESTAMPTZ '2026-11-28 02:00:00Z' as t, 1.25::DECIMAL(5,2) as d, [1,2]::INTEGER[] as l")
    t, d, l = cur.fetchone()
    print("types", t.isoformat(), d, l)
    try:
        conn.execute("COPY raw.weather TO '/tmp/x.csv'")
    except psycopg.errors.InsufficientPrivilege as e:
        print("refused", e.sqlstate)
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute("select i from range(3) t(i)")
        print("rows", [r[0] for r in cur])
`
	cmd := exec.CommandContext(ctx, py, "-c", script, "host="+host+" port="+port+" user=analyst password="+sqltest.Password+" dbname=citybrain sslmode=disable")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psycopg: %v\n%s", err, out)
	}
	for _, w := range []string{"count 10", "kinds crowd,lifeline", "types 2026-11-28T10:00:00+08:00 1.25 [1, 2]", "any 3", "refused 42501", "rows [0, 1, 2]"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("psycopg output lacks %q:\n%s", w, out)
		}
	}
}

// TestPlansHeldPerConnection: a client that caches a prepared statement per
// distinct SQL text (pgx's default, 512) makes serve hold at most
// heldPlans DuckDB plans per connection; a statement whose plan was let go
// runs again (prepared anew), and closing the connection frees them all.
func TestPlansHeldPerConnection(t *testing.T) {
	e := start(t, sqlaccess.DefaultConfig(), nil)
	ctx := context.Background()
	c, err := pgx.Connect(ctx, e.dsn("analyst", sqltest.Password, "disable"))
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	if err := c.QueryRow(ctx, "select count(*) from raw.mobile_signal").Scan(&total); err != nil {
		t.Fatal(err)
	}
	count := func(i int) int64 {
		t.Helper()
		var n int64
		// The literal differs each time: pgx prepares and caches each text.
		if err := c.QueryRow(ctx, fmt.Sprintf("select count(*) + %d from raw.mobile_signal", i)).Scan(&n); err != nil {
			t.Fatalf("query %d: %v", i, err)
		}
		return n - int64(i)
	}
	for i := range 3 * heldPlans {
		if n := count(i); n != total {
			t.Fatalf("query %d: %d rows, want %d", i, n, total)
		}
	}
	if got := e.srv.Plans(); got > heldPlans || got < heldPlans/2 {
		t.Errorf("%d plans held after %d distinct statements on one connection, want ≤ %d", got, 3*heldPlans, heldPlans)
	}
	// The first statements' plans were let go: pgx still has them (named) and runs them.
	for i := range 3 {
		if n := count(i); n != total {
			t.Errorf("re-run of statement %d: %d rows, want %d", i, n, total)
		}
	}
	if got := e.srv.Plans(); got > heldPlans {
		t.Errorf("%d plans held, want ≤ %d", got, heldPlans)
	}
	c.Close(ctx)
	deadline := time.Now().Add(5 * time.Second)
	for e.srv.Plans() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := e.srv.Plans(); got != 0 {
		t.Errorf("%d plans held after the connection closed", got)
	}
}

// TestLoginLocked: five wrong passwords over pgwire lock the name (the
// right password then fails with 28000 and says until when); each failure
// and the refusal are rows of audit.queries; an admin's unlock lifts it.
func TestLoginLocked(t *testing.T) {
	e := start(t, sqlaccess.DefaultConfig(), nil)
	ctx := context.Background()
	for i := range 5 {
		c, err := pgx.Connect(ctx, e.dsn("analyst", "wrong-password", "disable"))
		if err == nil {
			c.Close(ctx)
			t.Fatal("logged in with a wrong password")
		}
		if want := map[bool]string{true: "28000", false: "28P01"}[i == 4]; sqlstate(err) != want {
			t.Fatalf("failure %d: %v (want %s)", i+1, err, want)
		}
	}
	_, err := pgx.Connect(ctx, e.dsn("analyst", sqltest.Password, "disable"))
	if sqlstate(err) != "28000" || !strings.Contains(err.Error(), "锁定") || !strings.Contains(err.Error(), "left") {
		t.Fatalf("right password while locked: %v", err)
	}
	if err := e.f.Auditor.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	admin := e.connect(t, "admin")
	var failed, locked int64
	if err := admin.QueryRow(ctx, "select count(*) filter (where outcome = 'login_failed'), count(*) filter (where outcome = 'login_locked') from audit.queries where user_name = 'analyst' and interface = 'pgwire' and client like '127.0.0.1%'").Scan(&failed, &locked); err != nil {
		t.Fatal(err)
	}
	if failed != 5 || locked != 1 {
		t.Fatalf("audit: %d login_failed, %d login_locked; want 5, 1", failed, locked)
	}
	if !e.f.Users.Unlock("analyst") {
		t.Fatal("no lock to lift")
	}
	e.connect(t, "analyst")
}

// TestMultiStatementAndFullWidth: a simple query with several statements
// runs each (as PostgreSQL does), each checked and audited on its own, and
// stops at the first refused; SQL typed in full-width characters (a
// Chinese keyboard's 全角 mode) gets a clear error, audited.
func TestMultiStatementAndFullWidth(t *testing.T) {
	e := start(t, sqlaccess.DefaultConfig(), nil)
	ctx := context.Background()
	c := e.connect(t, "analyst")
	res, err := c.PgConn().Exec(ctx, "select 1 as a; select 2 as b").ReadAll()
	if err != nil || len(res) != 2 || string(res[0].Rows[0][0]) != "1" || string(res[1].Rows[0][0]) != "2" {
		t.Fatalf("select 1; select 2: %v, %v", res, err)
	}
	res, err = c.PgConn().Exec(ctx, "select 3 as c; create table t (x int); select 4").ReadAll()
	if sqlstate(err) != "42501" || len(res) < 1 || string(res[0].Rows[0][0]) != "3" {
		t.Fatalf("select; create; select: %v, %v (want the first result, then 42501)", res, err)
	}
	for _, q := range []string{"ＳＥＬＥＣＴ　１", "select １", "select 1；"} {
		_, err := c.PgConn().Exec(ctx, q).ReadAll()
		if sqlstate(err) != "42601" || !strings.Contains(err.Error(), "全角") {
			t.Errorf("%q: %v, want 42601 naming 全角 (full-width)", q, err)
		}
	}
	// Full-width text inside a string literal is data.
	res, err = c.PgConn().Exec(ctx, "select '（全角）' as s").ReadAll()
	if err != nil || string(res[0].Rows[0][0]) != "（全角）" {
		t.Fatalf("full-width in a literal: %v, %v", res, err)
	}
	if err := e.f.Auditor.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	admin := e.connect(t, "admin")
	var n int64
	if err := admin.QueryRow(ctx, "select count(*) from audit.queries where user_name = 'analyst' and (sql in ('select 1 as a', 'select 2 as b', 'select 3 as c', 'create table t (x int)') or sql like '%１%')").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 6 {
		t.Errorf("audited %d of the statements, want 6 (4 run or refused, 2 full-width)", n)
	}
}

// TestCursors: DECLARE … CURSOR, FETCH n / NEXT / ALL, MOVE and CLOSE read
// a result a piece at a time (psycopg's named cursors, pandas' chunksize);
// the query is checked by the sandbox; WITHOUT HOLD cursors end with their
// transaction; backward reads are refused.
func TestCursors(t *testing.T) {
	e := start(t, sqlaccess.DefaultConfig(), nil)
	ctx := context.Background()
	c := e.connect(t, "analyst").PgConn()
	exec := func(q string) ([]*pgconn.Result, error) { return c.Exec(ctx, q).ReadAll() }
	if _, err := exec(`DECLARE cur CURSOR FOR select i from range(10) t(i) order by i`); sqlstate(err) != "25P01" {
		t.Fatalf("DECLARE outside a transaction: %v, want 25P01", err)
	}
	if _, err := exec(`BEGIN; DECLARE "Cur" NO SCROLL CURSOR WITHOUT HOLD FOR select i, i * 2 as d from range(10) t(i) order by i`); err != nil {
		t.Fatal(err)
	}
	ints := func(r *pgconn.Result) []string {
		var out []string
		for _, row := range r.Rows {
			out = append(out, string(row[0]))
		}
		return out
	}
	res, err := exec(`FETCH FORWARD 3 FROM "Cur"`)
	if err != nil || len(res) != 1 || strings.Join(ints(res[0]), ",") != "0,1,2" || res[0].CommandTag.String() != "FETCH 3" || len(res[0].FieldDescriptions) != 2 {
		t.Fatalf("FETCH 3: %v %v", res, err)
	}
	if res, err = exec(`MOVE 2 IN "Cur"; FETCH NEXT FROM "Cur"; FETCH ALL FROM "Cur"; FETCH 5 FROM "Cur"`); err != nil {
		t.Fatal(err)
	}
	if res[0].CommandTag.String() != "MOVE 2" || strings.Join(ints(res[1]), ",") != "5" || strings.Join(ints(res[2]), ",") != "6,7,8,9" || res[3].CommandTag.String() != "FETCH 0" {
		t.Fatalf("MOVE/FETCH: %v / %v / %v / %v", res[0].CommandTag, ints(res[1]), ints(res[2]), res[3].CommandTag)
	}
	if _, err := exec(`FETCH BACKWARD 1 FROM "Cur"`); sqlstate(err) != "55000" {
		t.Fatalf("FETCH BACKWARD: %v, want 55000", err)
	}
	exec("ROLLBACK")
	// The sandbox checks the query; the cursor ends with the transaction.
	if _, err := exec(`BEGIN; DECLARE bad CURSOR FOR select * from audit.queries`); sqlstate(err) != "42501" {
		t.Fatalf("DECLARE over a table outside the scope: %v, want 42501", err)
	}
	exec("ROLLBACK")
	if _, err := exec(`BEGIN; DECLARE c2 CURSOR FOR select 1; COMMIT; FETCH 1 FROM c2`); sqlstate(err) != "34000" {
		t.Fatalf("FETCH after COMMIT: %v, want 34000", err)
	}
	// WITH HOLD outlives the transaction; CLOSE ends it.
	if _, err := exec(`DECLARE h CURSOR WITH HOLD FOR select i from range(3) t(i)`); err != nil {
		t.Fatal(err)
	}
	if res, err = exec(`FETCH 2 FROM h; CLOSE h`); err != nil || strings.Join(ints(res[0]), ",") != "0,1" || res[1].CommandTag.String() != "CLOSE CURSOR" {
		t.Fatalf("WITH HOLD: %q %v %v", ints(res[0]), res[1].CommandTag, err)
	}
	if _, err := exec(`CLOSE h`); sqlstate(err) != "34000" {
		t.Fatalf("CLOSE twice: %v", err)
	}
	// Extended protocol (what psycopg 3 does): DECLARE with a parameter, FETCH prepared.
	if _, err := exec("BEGIN"); err != nil {
		t.Fatal(err)
	}
	if rr := c.ExecParams(ctx, `DECLARE p CURSOR FOR select i from range(100) t(i) where i >= $1 order by i`, [][]byte{[]byte("95")}, nil, nil, nil).Read(); rr.Err != nil {
		t.Fatal(rr.Err)
	}
	rr := c.ExecParams(ctx, `FETCH FORWARD 10 FROM p`, nil, nil, nil, nil).Read()
	if rr.Err != nil || len(rr.Rows) != 5 || string(rr.Rows[0][0]) != "95" {
		t.Fatalf("extended FETCH: %v %v", rr.Rows, rr.Err)
	}
	exec("COMMIT")
}

// TestAnyOfList: "x = any($1)" with a list parameter (psycopg sends a
// Python list as an array; pgx a Go slice). DuckDB cannot type the
// parameter, so it is described as unspecified, the client sends the list
// as text ('{1,3}') and it is bound as a list of numbers (or strings when a
// text column is compared). pgx's cached-statement mode also describes the
// result columns before it sees the values: as text (see deferred), which
// pgx scans into strings.
func TestAnyOfList(t *testing.T) {
	e := start(t, sqlaccess.DefaultConfig(), nil)
	c := e.connect(t, "analyst")
	ctx := context.Background()
	for _, tc := range []struct {
		q    string
		arg  any
		want int64
	}{
		{"select count(*) from marts.warnings where kind = any($1)", []string{"crowd", "lifeline"}, 3},
		{"select count(*) from marts.warnings where level = any($1)", []int64{1, 2}, 4},
		{"select count(*) from marts.warnings where level = any($1)", []int32{3}, 1},
		{"select count(*) from marts.warnings where kind <> all($1)", []string{"crowd"}, 4},
	} {
		for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec, pgx.QueryExecModeDescribeExec} {
			var n string
			if err := c.QueryRow(ctx, tc.q, mode, tc.arg).Scan(&n); err != nil {
				t.Errorf("%s %v (%v): %v", tc.q, tc.arg, mode, err)
				continue
			}
			if n != fmt.Sprint(tc.want) {
				t.Errorf("%s %v (%v): %s, want %d", tc.q, tc.arg, mode, n, tc.want)
			}
		}
	}
	// A list of digits compared with a text column is read as strings.
	var n string
	if err := c.QueryRow(ctx, "select count(*) from raw.weather where station = any($1)", pgx.QueryExecModeExec, []string{"1", "2"}).Scan(&n); err != nil || n != "0" {
		t.Errorf("station = any(['1', '2']): %v %v", n, err)
	}
}

// TestReadAheadClientGone: a client that drops its connection in the middle
// of a large result (read ahead by a goroutine of its own) frees the
// connection's statement and goroutines; one that reads it whole gets every
// row once, in order.
func TestReadAheadClientGone(t *testing.T) {
	e := start(t, sqlaccess.DefaultConfig(), nil)
	ctx := context.Background()
	c := e.connect(t, "analyst")
	rows, err := c.Query(ctx, "select i from range(3000000) t(i)")
	if err != nil {
		t.Fatal(err)
	}
	var want int64
	for rows.Next() {
		var i int64
		if err := rows.Scan(&i); err != nil || i != want {
			t.Fatalf("row %d: %d %v", want, i, err)
		}
		want++
	}
	if rows.Err() != nil || want != 3000000 {
		t.Fatalf("%d rows: %v", want, rows.Err())
	}
	before := runtime.NumGoroutine()
	for k := 0; k < 5; k++ {
		raw, err := pgx.Connect(ctx, e.dsn("analyst", sqltest.Password, "disable"))
		if err != nil {
			t.Fatal(err)
		}
		r, err := raw.Query(ctx, "select i, repeat('x', 100) from range(5000000) t(i)")
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; n < 10 && r.Next(); n++ {
		}
		raw.PgConn().Conn().Close() // gone without a word
	}
	deadline := time.Now().Add(15 * time.Second)
	for (e.srv.Plans() > 1 || runtime.NumGoroutine() > before+2) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if p, g := e.srv.Plans(), runtime.NumGoroutine(); p > 1 || g > before+2 {
		t.Errorf("after 5 clients left mid-result: %d plans held (want ≤ 1), %d goroutines (were %d)", p, g, before)
	}
	var n int64
	if err := c.QueryRow(ctx, "select count(*) from raw.weather").Scan(&n); err != nil {
		t.Errorf("the server after the dropped clients: %v", err)
	}
}
