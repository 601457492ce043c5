// Package sqltest builds a small lake for the SQL access tests (sqlaccess,
// pgwire, the HTTP API and the service): raw.weather and raw.mobile_signal
// with the canonical schemas, a marts.warnings table with kinds a
// department filter applies to, the demo users, and the Access service.
package sqltest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/apache/iceberg-go"

	"citybrain/internal/auth"
	"citybrain/schemas"
	"citybrain/warehouse"
	"citybrain/warehouse/sqlaccess"
)

// Fixture is a lake with tables, the engine, the users and the service.
type Fixture struct {
	Dir     string
	Lake    *warehouse.Lake
	Engine  *warehouse.Engine
	Users   *auth.Store
	Access  *sqlaccess.Access
	Auditor *sqlaccess.Auditor
	// Snapshots of raw.mobile_signal, oldest first: 30 rows, then 50.
	Snapshots []int64
	// Schemas of the fixture's tables by table name.
	Schemas  map[string]*schemas.Schema
	appended int
}

// Append commits n more plausible rows to one of the fixture's tables
// (raw.weather, raw.mobile_signal, marts.warnings) and returns the snapshot.
func (f *Fixture) Append(ctx context.Context, table string, n int) (int64, error) {
	s, ok := f.Schemas[table]
	if !ok {
		return 0, fmt.Errorf("sqltest: no table %s", table)
	}
	base := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	off := f.appended
	f.appended += n
	return write(ctx, f.Lake, s, n, func(i int) schemas.Record {
		r := generic(s, off+i, base)
		if table == "marts.warnings" {
			r = schemas.Record{fmt.Sprintf("a%d", off+i), WarningKinds[(off+i)%len(WarningKinds)], base.Add(time.Duration(off+i) * time.Minute), int64(i%4 + 1)}
		}
		return r
	})
}

// Password is every demo user's password.
const Password = auth.DemoPassword

const warningsYAML = `
name: fixture_warnings
version: 1
table: marts.warnings
doc: {zh: 预警, en: Warnings}
event_time: raised_at
fields:
  - {name: warning_id, type: string, required: true, doc: {zh: 预警编号, en: Warning id}}
  - {name: kind, type: string, required: true, doc: {zh: 预警类别, en: Kind}}
  - {name: raised_at, type: timestamp, required: true, doc: {zh: 发布时间, en: Raised at}}
  - {name: level, type: int, doc: {zh: 等级, en: Level}}
`

// WarningKinds are marts.warnings' rows' kinds, one row each.
var WarningKinds = []string{"crowd", "rainstorm", "waterlogging", "traffic", "lifeline", "crowd"}

// New builds the fixture under t.TempDir(); cfg is the service's
// configuration (sqlaccess.DefaultConfig() with changes).
func New(t testing.TB, cfg sqlaccess.Config) *Fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	lake, err := warehouse.Open(ctx, warehouse.DefaultConfig(), dir, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lake.Close() })
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	f := &Fixture{Dir: dir, Lake: lake}
	weather, _ := reg.Get("weather")
	signal, _ := reg.Get("mobile_signal")
	warnings, err := schemas.Parse([]byte(warningsYAML))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	if _, err := write(ctx, lake, weather, 24, func(i int) schemas.Record { return generic(weather, i, base) }); err != nil {
		t.Fatal(err)
	}
	sig := func(off int) func(i int) schemas.Record {
		return func(i int) schemas.Record {
			// people_count 0..29 then 30..: counts below 10 are suppressed for non-admins.
			return schemas.Record{fmt.Sprintf("cell-%03d", (i+off)%7), base.Add(time.Duration(i+off) * 15 * time.Minute), int64(i + off), int64(i), int64(i / 2)}
		}
	}
	s1, err := write(ctx, lake, signal, 30, sig(0))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // distinct snapshot timestamps
	s2, err := write(ctx, lake, signal, 20, sig(30))
	if err != nil {
		t.Fatal(err)
	}
	f.Snapshots = []int64{s1, s2}
	f.Schemas = map[string]*schemas.Schema{weather.Table: weather, signal.Table: signal, warnings.Table: warnings}
	if _, err := write(ctx, lake, warnings, len(WarningKinds), func(i int) schemas.Record {
		return schemas.Record{fmt.Sprintf("w%d", i), WarningKinds[i], base.Add(time.Duration(i) * time.Hour), int64(i%4 + 1)}
	}); err != nil {
		t.Fatal(err)
	}
	if f.Engine, err = warehouse.NewEngine(ctx, lake); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Engine.Close() })
	ac := auth.DefaultConfig()
	ac.DemoUsers = true
	if f.Users, err = auth.Open(ac, dir); err != nil {
		t.Fatal(err)
	}
	f.Access = sqlaccess.New(cfg, f.Engine, lake, reg, f.Users, log)
	t.Cleanup(f.Access.Close)
	f.Auditor, err = sqlaccess.NewAuditor(ctx, cfg.Audit, lake, log, func(table string, _ int64) { f.Access.Refresh(context.Background(), table) })
	if err != nil {
		t.Fatal(err)
	}
	f.Access.Audit = f.Auditor
	f.Users.OnLoginFailure(f.Access.AuditLogin) // as serve wires it
	return f
}

// User returns a demo user.
func (f *Fixture) User(t testing.TB, name string) auth.User {
	u, ok := f.Users.Get(name)
	if !ok {
		t.Fatalf("no user %s", name)
	}
	return u
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) { w.t.Log(string(b)); return len(b), nil }

// generic fills a record of any schema with plausible values.
func generic(s *schemas.Schema, i int, base time.Time) schemas.Record {
	r := make(schemas.Record, len(s.Fields))
	for j, fd := range s.Fields {
		switch fd.Type {
		case schemas.String:
			r[j] = fmt.Sprintf("%s-%d", fd.Name, i%3)
			if len(fd.Enum) > 0 {
				r[j] = fd.Enum[i%len(fd.Enum)]
			}
		case schemas.Int, schemas.Long:
			r[j] = int64(i)
		case schemas.Double:
			r[j] = float64(i) + 0.5
		case schemas.Bool:
			r[j] = i%2 == 0
		case schemas.Timestamp:
			r[j] = base.Add(time.Duration(i) * time.Hour)
		case schemas.Date:
			r[j] = base.AddDate(0, 0, i)
		}
	}
	return r
}

// write appends n records in one commit and returns the snapshot id.
func write(ctx context.Context, lake *warehouse.Lake, s *schemas.Schema, n int, rec func(int) schemas.Record) (int64, error) {
	t, err := lake.EnsureTable(ctx, s)
	if err != nil {
		return 0, err
	}
	st, err := lake.State(ctx, s.Table)
	if err != nil {
		return 0, err
	}
	next := st.Clone()
	next.Batch++
	writers := map[string]*warehouse.FileWriter{}
	for i := 0; i < n; i++ {
		r := rec(i)
		if err := s.Validate(r); err != nil {
			return 0, err
		}
		pv, dir := warehouse.PartitionKey(s, r)
		w := writers[dir]
		if w == nil {
			rel := fmt.Sprintf("%010d.parquet", next.Batch)
			if dir != "" {
				rel = dir + "/" + rel
			}
			if w, err = lake.NewFileWriter(t, s, rel, pv); err != nil {
				return 0, err
			}
			writers[dir] = w
		}
		if err := w.Write(r, fmt.Sprintf("fixture:%d:%d", next.Batch, i)); err != nil {
			return 0, err
		}
	}
	var files []iceberg.DataFile
	for _, w := range writers {
		df, err := w.Close()
		if err != nil {
			return 0, err
		}
		files = append(files, df)
	}
	return lake.Commit(ctx, s.Table, files, next)
}
