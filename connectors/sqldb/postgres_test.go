package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"citybrain/connectors"
	"citybrain/connectors/connectortest"
	"citybrain/connectors/mapping"
	"citybrain/internal/testenv"
	"citybrain/schemas"
)

// One PostgreSQL cluster serves every test of the package.
var (
	pgOnce sync.Once
	pg     *testenv.Postgres
	pgDB   *sql.DB
	pgErr  error
	pgDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if pg != nil {
		pgDB.Close()
		pg.Stop()
	}
	if pgDir != "" {
		os.RemoveAll(pgDir)
	}
	os.Exit(code)
}

// postgres returns the shared cluster's DSN and a handle for test setup.
func postgres(t *testing.T) (string, *sql.DB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL; skipped with -short")
	}
	pgOnce.Do(func() {
		// A short path: the server's Unix socket lives in it.
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
		t.Fatal(pgErr)
	}
	return pg.DSN(), pgDB
}

func exec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

var tables atomic.Int64

// mobileSchema is the target schema of the tests.
func mobileSchema(t testing.TB) *schemas.Schema {
	t.Helper()
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.Get("mobile_signal")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// mapperForTest maps police-incident-like rows onto mobile_signal:
// category → grid_cell_id, updated_at → window_start, n → people_count.
func mapperForTest(t testing.TB) *mapping.Mapper {
	t.Helper()
	m, err := mapping.New(mobileSchema(t), mapping.Spec{Fields: map[string]mapping.FieldSpec{
		"grid_cell_id": {Column: "category"}, "window_start": {Column: "updated_at"}, "people_count": {Column: "n"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var base = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// insertIncidents adds records from..to-1; record i is stamped base + i/per
// seconds, so runs of per records share one watermark value.
func insertIncidents(t *testing.T, db *sql.DB, table string, from, to, per int) {
	t.Helper()
	exec(t, db, fmt.Sprintf(`INSERT INTO %s (updated_at, category, n)
		SELECT $1::timestamptz + (g / $4::int) * interval '1 second', 'XC-' || (g %% 50), g
		FROM generate_series($2::int, $3::int) AS g ORDER BY g`, table), base, from, to-1, per)
}

func newTable(t *testing.T, db *sql.DB) string {
	t.Helper()
	name := "incidents_" + strconv.FormatInt(tables.Add(1), 10)
	exec(t, db, `CREATE TABLE `+name+` (id bigserial PRIMARY KEY, updated_at timestamptz NOT NULL, category text, n int NOT NULL)`)
	exec(t, db, `CREATE INDEX ON `+name+` (updated_at, id)`)
	return name
}

func open(t *testing.T, cfg Config, m *mapping.Mapper) *Source {
	t.Helper()
	src, err := New(cfg, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func TestConformance(t *testing.T) {
	dsn, db := postgres(t)
	s := mobileSchema(t)
	m := mapperForTest(t)
	var last string
	connectortest.Run(t, connectortest.Harness{
		New: func(t *testing.T, n int) connectors.Source {
			last = newTable(t, db)
			insertIncidents(t, db, last, 0, n, 7) // 7 rows per timestamp: cuts fall among ties
			return open(t, Config{DSN: dsn, Table: last, Watermark: "updated_at", Key: Columns{"id"}, BatchRows: 64}, m)
		},
		Append: func(t *testing.T, n, k int) { insertIncidents(t, db, last, n, n+k, 7) },
		Key:    func(r connectors.Record) int { return int(r.Values[s.Index("people_count")].(int64)) },
		Broken: func(t *testing.T) connectors.Source {
			return open(t, Config{DSN: dsn, Table: "no_such_table", Watermark: "updated_at", Key: Columns{"id"}}, m)
		},
	})
}

type collect struct {
	recs  []connectors.Record
	limit int
}

var errCut = errors.New("cut")

func (c *collect) emit(_ context.Context, batch []connectors.Record) error {
	for _, r := range batch {
		if c.limit > 0 && len(c.recs) >= c.limit {
			return errCut
		}
		c.recs = append(c.recs, r)
	}
	return nil
}

func (c *collect) positions() connectors.Positions {
	p := connectors.Positions{}
	for _, r := range c.recs {
		p.Advance(r.Cursor)
	}
	return p
}

// TestTiesOnOneWatermark: 1000 rows with the same watermark, pages of 64,
// cut inside a page, at a page end and just after one; every resume
// continues exactly after the last row emitted.
func TestTiesOnOneWatermark(t *testing.T) {
	dsn, db := postgres(t)
	s := mobileSchema(t)
	table := newTable(t, db)
	insertIncidents(t, db, table, 0, 1000, 1_000_000) // all at base
	src := open(t, Config{DSN: dsn, Table: table, Watermark: "updated_at", Key: Columns{"id"}, BatchRows: 64}, mapperForTest(t))
	for _, cut := range []int{100, 128, 129} {
		t.Run(fmt.Sprintf("cut=%d", cut), func(t *testing.T) {
			first := collect{limit: cut}
			if err := src.Read(context.Background(), connectors.Positions{}, first.emit); !errors.Is(err, errCut) {
				t.Fatalf("Read returned %v, want emit's error", err)
			}
			if len(first.recs) != cut {
				t.Fatalf("first read %d records", len(first.recs))
			}
			// Resume twice more from cuts, then to the end.
			all := first.recs
			from := first.positions()
			for _, more := range []int{1, 64} {
				c := collect{limit: more}
				if err := src.Read(context.Background(), from, c.emit); !errors.Is(err, errCut) {
					t.Fatal(err)
				}
				all = append(all, c.recs...)
				from = c.positions()
			}
			var rest collect
			if err := src.Read(context.Background(), from, rest.emit); err != nil {
				t.Fatal(err)
			}
			all = append(all, rest.recs...)
			seen := map[int64]int{}
			for i, r := range all {
				if r.Err != nil {
					t.Fatalf("reject: %v", r.Err)
				}
				if r.Cursor.Pos != int64(i+1) || r.Cursor.Stream != "pgx:"+table {
					t.Fatalf("record %d has cursor %v", i, r.Cursor)
				}
				seen[r.Values[s.Index("people_count")].(int64)]++
			}
			if len(all) != 1000 || len(seen) != 1000 {
				t.Fatalf("read %d records, %d distinct; want 1000 once each", len(all), len(seen))
			}
			// The token names the watermark and the key of the row.
			p, err := DecodeToken(all[cut-1].Cursor.Token)
			if err != nil || p.Watermark.Type != TypeTimestamp || p.Watermark.Text != "2026-11-01T00:00:00Z" || p.Keys[0].Type != TypeInt {
				t.Fatalf("token %q: %+v %v", all[cut-1].Cursor.Token, p, err)
			}
			// A cursor through its string form resumes the same way.
			c, ok := connectors.ParseCursor(all[cut-1].Cursor.String())
			if !ok {
				t.Fatal("cursor does not parse")
			}
			var again collect
			if err := src.Read(context.Background(), connectors.Positions{c.Stream: c}, again.emit); err != nil {
				t.Fatal(err)
			}
			if len(again.recs) != 1000-cut || again.recs[0].Cursor.Pos != int64(cut+1) {
				t.Fatalf("resume from %v: %d records, first %v", c, len(again.recs), again.recs[0].Cursor)
			}
		})
	}
}

// TestNullsAndRejects: a NULL in an optional column maps to a missing
// value; a row the mapping refuses becomes a reject carrying the row as
// JSON; a zone-less timestamp takes the mapping's timezone; a query names
// its own stream.
func TestNullsAndRejects(t *testing.T) {
	dsn, db := postgres(t)
	s := mobileSchema(t)
	exec(t, db, `CREATE TABLE signals (id int PRIMARY KEY, seq bigint NOT NULL, cell text, local_ts timestamp, people text, inflow bigint)`)
	exec(t, db, `INSERT INTO signals VALUES
		(1, 10, 'XC-1', '2026-11-01 08:00:00', '12', NULL),
		(2, 10, 'XC-2', '2026-11-01 08:15:00', 'many', 3),
		(3, 11, 'XC-3', '2026-11-01 08:30:00.25', '7', 4)`)
	m, err := mapping.New(s, mapping.Spec{Timezone: "Asia/Shanghai", Fields: map[string]mapping.FieldSpec{
		"grid_cell_id": {Column: "cell"}, "window_start": {Column: "local_ts"},
		"people_count": {Column: "people"}, "inflow": {Column: "inflow"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	os.Setenv("CBSQL_TEST_DSN", dsn)
	src := open(t, Config{DSNEnv: "CBSQL_TEST_DSN", Name: "signals",
		Query:     "SELECT id, seq, cell, local_ts, people, inflow FROM signals WHERE cell LIKE 'XC-%';",
		Watermark: "seq", Key: Columns{"id"}, BatchRows: 2}, m)
	var c collect
	if err := src.Read(context.Background(), connectors.Positions{}, c.emit); err != nil {
		t.Fatal(err)
	}
	if len(c.recs) != 3 {
		t.Fatalf("%d records", len(c.recs))
	}
	r := c.recs[0]
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	if r.Values[s.Index("inflow")] != nil || r.Values[s.Index("people_count")] != int64(12) {
		t.Fatalf("record 1: %v", r.Values)
	}
	if got := r.Values[s.Index("window_start")].(time.Time); !got.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("08:00 Asia/Shanghai read as %v", got)
	}
	if r.Cursor.Stream != "pgx:signals" || r.Cursor.Pos != 1 || r.Cursor.Token != "k=1&kt=int&wm=10&wt=int" {
		t.Fatalf("cursor %v", r.Cursor)
	}
	rej := c.recs[1]
	if rej.Err == nil || rej.Values != nil {
		t.Fatalf("row 2 not rejected: %v", rej.Values)
	}
	wantRaw := `{"id":"2","seq":"10","cell":"XC-2","local_ts":"2026-11-01 08:15:00","people":"many","inflow":"3"}`
	if string(rej.Raw) != wantRaw {
		t.Fatalf("reject raw\n got %s\nwant %s", rej.Raw, wantRaw)
	}
	if rej.Cursor.Pos != 2 {
		t.Fatalf("reject cursor %v", rej.Cursor)
	}
	if got := c.recs[2].Values[s.Index("window_start")].(time.Time); !got.Equal(time.Date(2026, 11, 1, 0, 30, 0, 250e6, time.UTC)) {
		t.Fatalf("fractional local time read as %v", got)
	}
	// Resuming after the reject yields only the third row.
	var rest collect
	if err := src.Read(context.Background(), connectors.Positions{"pgx:signals": rej.Cursor}, rest.emit); err != nil {
		t.Fatal(err)
	}
	if len(rest.recs) != 1 || rest.recs[0].Cursor.Pos != 3 || rest.recs[0].Values[s.Index("people_count")] != int64(7) {
		t.Fatalf("resume after reject: %+v", rest.recs)
	}
}

func TestErrors(t *testing.T) {
	dsn, db := postgres(t)
	m := mapperForTest(t)
	table := newTable(t, db)
	insertIncidents(t, db, table, 0, 10, 1)
	cfg := func(mod func(*Config)) Config {
		c := Config{DSN: dsn, Table: table, Watermark: "updated_at", Key: Columns{"id"}}
		mod(&c)
		return c
	}
	permanent := map[string]Config{
		"missing table":    cfg(func(c *Config) { c.Table = "public.nope" }),
		"missing schema":   cfg(func(c *Config) { c.Table = "nope.incidents" }),
		"missing column":   cfg(func(c *Config) { c.Watermark = "changed_at" }),
		"missing key":      cfg(func(c *Config) { c.Key = Columns{"uid"} }),
		"missing database": cfg(func(c *Config) { c.DSN = replaceDB(t, dsn, "nope") }),
		"unknown role":     cfg(func(c *Config) { c.DSN = replaceUser(t, dsn, "nobody") }),
		"unparsable dsn":   cfg(func(c *Config) { c.DSN = "postgres://a:b@[::1" }),
		"unset dsn_env":    cfg(func(c *Config) { c.DSN, c.DSNEnv = "", "CBSQL_TEST_UNSET" }),
		"bad query":        cfg(func(c *Config) { c.Table, c.Name, c.Query = "", "q", "SELECT * FROM "+table+" WHERE" }),
		"mapping unbound":  cfg(func(c *Config) { c.Table, c.Name, c.Query = "", "q2", "SELECT id, updated_at FROM "+table }),
		"unregistered drv": cfg(func(c *Config) { c.Driver, c.Dialect = "nosuchdriver", "postgres" }),
	}
	for name, c := range permanent {
		t.Run(name, func(t *testing.T) {
			var col collect
			err := open(t, c, m).Read(context.Background(), connectors.Positions{}, col.emit)
			if !errors.Is(err, connectors.ErrPermanent) {
				t.Fatalf("got %v, want ErrPermanent", err)
			}
			if strings.Contains(err.Error(), ":"+testenv.PostgresPassword+"@") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
	t.Run("bad token", func(t *testing.T) {
		src := open(t, cfg(func(*Config) {}), m)
		var col collect
		err := src.Read(context.Background(), connectors.Positions{src.Stream(): {Stream: src.Stream(), Pos: 5, Token: "wt=int&wm=x"}}, col.emit)
		if !errors.Is(err, connectors.ErrPermanent) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("connection refused is transient", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		src := open(t, cfg(func(c *Config) {
			c.DSN = "postgres://citybrain:secret@" + addr + "/citybrain?sslmode=disable&connect_timeout=5"
		}), m)
		var col collect
		err = src.Read(context.Background(), connectors.Positions{}, col.emit)
		if err == nil || errors.Is(err, connectors.ErrPermanent) {
			t.Fatalf("got %v, want a transient error", err)
		}
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		var col collect
		if err := open(t, cfg(func(*Config) {}), m).Read(ctx, connectors.Positions{}, col.emit); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("poll timeout stops between pages", func(t *testing.T) {
		src := open(t, cfg(func(c *Config) { c.BatchRows = 3; c.PollTimeout = time.Nanosecond }), m)
		var col collect
		if err := src.Read(context.Background(), connectors.Positions{}, col.emit); err != nil {
			t.Fatal(err)
		}
		if len(col.recs) != 3 {
			t.Fatalf("read %d records in one slice, want one page of 3", len(col.recs))
		}
	})
}

func replaceDB(t *testing.T, dsn, db string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + db
	return u.String()
}

func replaceUser(t *testing.T, dsn, user string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(user)
	return u.String()
}
