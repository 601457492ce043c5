package extracts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"citybrain/internal/auth"
	"citybrain/pipelines/extracts/extracttest"
	"citybrain/pipelines/scheduler"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// Two streets of Xicheng; department "east" may see only the first's
// incidents, "west" only the second's.
const (
	streetEast = "110102001"
	streetWest = "110102002"
)

var cats = []string{"fire", "medical", "traffic", "police", "other"}

type env struct {
	lake   *warehouse.Lake
	eng    *warehouse.Engine
	store  *auth.Store
	reg    *schemas.Registry
	out    string
	t0     time.Time
	snapIn int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	cfg := warehouse.DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Query.MemoryLimit = "1GB"
	cfg.Query.Threads = 2
	lake, err := warehouse.Open(ctx, cfg, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lake.Close() })
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	e := &env{lake: lake, reg: reg, out: t.TempDir(), t0: time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)}
	e.snapIn = e.fillIncidents(t, 0, 500)
	sig, _ := reg.Get("mobile_signal")
	if _, err := extracttest.Fill(ctx, lake, sig, 40, func(i int, r schemas.Record) {
		r[sig.Index("grid_cell_id")] = fmt.Sprintf("XC-%03d", i%4)
		r[sig.Index("window_start")] = e.t0.Add(time.Duration(i/4) * 15 * time.Minute)
		r[sig.Index("people_count")] = int64(i) // 0..39: those below 10 are suppressed
		r[sig.Index("inflow")] = int64(i % 12)
		r[sig.Index("outflow")] = int64(100 + i)
	}); err != nil {
		t.Fatal(err)
	}
	if e.eng, err = warehouse.NewEngine(ctx, lake); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.eng.Close() })
	ac := auth.DefaultConfig()
	ac.Departments = []auth.Department{
		{Name: "east", NameZh: "东片", Tables: map[string]string{"raw.incidents": "street_code = '" + streetEast + "'", "raw.mobile_signal": ""}},
		{Name: "west", NameZh: "西片", Tables: map[string]string{"raw.incidents": "street_code = '" + streetWest + "'"}},
	}
	if e.store, err = auth.Open(ac, t.TempDir()); err != nil {
		t.Fatal(err)
	}
	return e
}

// fillIncidents commits n incidents numbered from first: even ones in the
// east street, odd ones in the west, with Chinese text and a phone number.
func (e *env) fillIncidents(t *testing.T, first, n int) int64 {
	t.Helper()
	s, _ := e.reg.Get("incidents")
	id, err := extracttest.Fill(context.Background(), e.lake, s, n, func(i int, r schemas.Record) {
		i += first
		street := streetEast
		if i%2 == 1 {
			street = streetWest
		}
		r[s.Index("id")] = fmt.Sprintf("JQ%06d", i)
		r[s.Index("received_at")] = e.t0.Add(time.Duration(i) * time.Minute)
		r[s.Index("category")] = cats[i%len(cats)]
		r[s.Index("title")] = fmt.Sprintf("西城区警情 %d, \"quoted\"", i)
		r[s.Index("address")] = fmt.Sprintf("西长安街%d号 / 电话 1381234%04d", i, i)
		r[s.Index("street_code")] = street
		r[s.Index("longitude")] = 116.36 + float64(i)/1e4
		r[s.Index("latitude")] = 39.91
		if i%7 == 0 {
			r[s.Index("latitude")] = nil
		}
		r[s.Index("source_system")] = "=cmd|' /C calc'!A0" // a formula injection attempt
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *env) runner(t *testing.T, defs ...Definition) *Runner {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Definitions = defs
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	r, err := NewRunner(cfg, e.out, e.eng, e.lake, e.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Sleep = func(ctx context.Context, d time.Duration) error { return nil }
	return r
}

func incidentsDef(name, dept, format, enc string) Definition {
	return Definition{
		Name: name, Title: "警情日报 daily incidents", Department: dept,
		Source:  Source{Table: "raw.incidents"},
		Columns: []string{"id", "received_at", "category", "title", "address", "street_code", "latitude", "source_system"},
		OrderBy: []string{"id"},
		Format:  format, Encoding: enc,
		Schedule: ScheduleConfig{Cron: "0 6 * * *"},
	}
}

var period = time.Date(2026, 11, 28, 6, 0, 0, 0, time.FixedZone("CST", 8*3600))

func TestCSVEncodings(t *testing.T) {
	e := newEnv(t)
	r := e.runner(t, incidentsDef("bom", "east", "csv", ""), incidentsDef("gb", "east", "csv", "gb18030"))
	ctx := context.Background()
	mb, err := r.Run(ctx, "bom", RunOptions{Period: period})
	if err != nil {
		t.Fatal(err)
	}
	mg, err := r.Run(ctx, "gb", RunOptions{Period: period})
	if err != nil {
		t.Fatal(err)
	}
	bom, _ := os.ReadFile(r.FilePath(mb))
	gb, _ := os.ReadFile(r.FilePath(mg))
	if !bytes.HasPrefix(bom, []byte{0xEF, 0xBB, 0xBF}) {
		t.Fatalf("utf-8-bom file starts % x", bom[:8])
	}
	if bytes.HasPrefix(gb, []byte{0xEF, 0xBB, 0xBF}) {
		t.Error("gb18030 file has a UTF-8 BOM")
	}
	// 西城 is CE F7 B3 C7 in GB18030 (GB2312 row/cell 46-87, 19-39).
	if !bytes.Contains(gb, []byte{0xCE, 0xF7, 0xB3, 0xC7}) {
		t.Error("gb18030 file lacks the GB18030 bytes of 西城")
	}
	if bytes.Contains(gb, []byte("西城")) {
		t.Error("gb18030 file contains UTF-8 Chinese")
	}
	text := string(bom[3:])
	lines := strings.Split(strings.TrimSuffix(text, "\r\n"), "\r\n")
	// Bilingual headers: the fields' Chinese labels (schemas/incidents) before the names.
	if lines[0] != "警情编号 id,接警时间 received_at,警情类别 category,警情标题 title,事发地址 address,所属街道区划代码 street_code,纬度 latitude,来源系统 source_system" {
		t.Errorf("header %q", lines[0])
	}
	if mb.Rows != 250 || len(lines) != 251 {
		t.Errorf("rows %d, lines %d; want 250 (east's half)", mb.Rows, len(lines))
	}
	// First row: id JQ000000, received 2026-11-27 00:00 UTC = 08:00 Beijing
	// (raw timestamps are UTC-adjusted and shown in the extract's zone).
	want := `JQ000000,2026-11-27 08:00:00,fire,"西城区警情 0, ""quoted""",西长安街0号 / 电话 13812340000,110102001,,'=cmd|' /C calc'!A0`
	if lines[1] != want {
		t.Errorf("row 1:\n got %s\nwant %s", lines[1], want)
	}
	if mb.SHA256 != sha(bom) || mb.Bytes != int64(len(bom)) {
		t.Errorf("manifest sha/bytes do not match the file")
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestDepartmentNeverGetsOtherRows(t *testing.T) {
	e := newEnv(t)
	east := incidentsDef("east-inc", "east", "csv", "")
	west := incidentsDef("west-inc", "west", "csv", "")
	// A SQL source: even a query that asks for the other street by name
	// returns nothing — the scope filter is applied under it.
	sneaky := Definition{Name: "sneaky", Department: "east", Format: "csv",
		Source: Source{SQL: `SELECT i.id, i.street_code, (SELECT count(*) FROM raw.incidents) AS n_visible
			FROM raw.incidents i WHERE i.street_code IN ('` + streetEast + `', '` + streetWest + `') ORDER BY i.id`}}
	cte := Definition{Name: "cte", Department: "west", Format: "csv",
		Source: Source{SQL: `WITH x AS (SELECT street_code, count(*) AS n FROM raw.incidents GROUP BY ALL) SELECT * FROM x ORDER BY street_code`}}
	r := e.runner(t, east, west, sneaky, cte,
		Definition{Name: "out-of-scope", Department: "west", Format: "csv", Source: Source{Table: "raw.mobile_signal"}},
		Definition{Name: "join-out", Department: "west", Format: "csv", Source: Source{SQL: "SELECT * FROM raw.incidents JOIN raw.mobile_signal ON true ORDER BY 1"}},
		Definition{Name: "quoted", Department: "west", Format: "csv", Source: Source{SQL: `SELECT * FROM "raw"."incidents" ORDER BY 1`}},
		Definition{Name: "file", Department: "west", Format: "csv", Source: Source{SQL: `SELECT * FROM read_csv('/etc/passwd') ORDER BY 1`}},
		Definition{Name: "two", Department: "west", Format: "csv", Source: Source{SQL: `SELECT 1 FROM raw.incidents ORDER BY 1; SELECT 2`}},
		Definition{Name: "noorder", Department: "west", Format: "csv", Source: Source{SQL: `SELECT * FROM raw.incidents`}},
	)
	ctx := context.Background()
	check := func(name, wantStreet string, wantRows int64) {
		m, err := r.Run(ctx, name, RunOptions{Period: period})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, _ := os.ReadFile(r.FilePath(m))
		if strings.Contains(string(b), map[string]string{streetEast: streetWest, streetWest: streetEast}[wantStreet]) {
			t.Errorf("%s (%s) received the other department's rows", name, m.Department)
		}
		if !strings.Contains(string(b), wantStreet) {
			t.Errorf("%s lacks its own rows", name)
		}
		if m.Rows != wantRows {
			t.Errorf("%s: %d rows, want %d", name, m.Rows, wantRows)
		}
	}
	check("east-inc", streetEast, 250)
	check("west-inc", streetWest, 250)
	check("sneaky", streetEast, 250)
	check("cte", streetWest, 1)
	m, _ := r.Delivery(DeliveryID("sneaky", period))
	b, _ := os.ReadFile(r.FilePath(m))
	if !strings.Contains(string(b), ",250\r\n") {
		t.Errorf("sneaky's scalar subquery saw more than east's rows:\n%s", strings.SplitN(string(b), "\n", 3)[1])
	}
	for name, want := range map[string]error{"out-of-scope": ErrScope, "join-out": ErrScope, "quoted": ErrScope, "file": ErrScope, "two": ErrDefinition, "noorder": ErrDefinition} {
		_, err := r.Run(ctx, name, RunOptions{Period: period})
		if !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", name, err, want)
		}
		if err != nil && !hasHan(err.Error()) {
			t.Errorf("%s: error has no Chinese: %v", name, err)
		}
	}
}

func TestSuppressAndPII(t *testing.T) {
	e := newEnv(t)
	sig := Definition{Name: "signal", Department: "east", Format: "csv", Source: Source{Table: "raw.mobile_signal"},
		Columns: []string{"grid_cell_id", "window_start", "people_count", "inflow", "outflow"}, OrderBy: []string{"window_start", "grid_cell_id"}}
	agg := Definition{Name: "signal-sum", Department: "east", Format: "csv",
		Source: Source{SQL: "SELECT grid_cell_id, sum(people_count) AS total, count(people_count) AS counted FROM raw.mobile_signal GROUP BY 1 ORDER BY 1"}}
	pii := incidentsDef("pii", "east", "csv", "")
	pii.PII = []PIIRule{{Column: "address", Action: "mask"}, {Column: "id", Action: "hash", Salt: "s"}, {Column: "title", Action: "drop"}}
	r := e.runner(t, sig, agg, pii)
	ctx := context.Background()
	m, err := r.Run(ctx, "signal", RunOptions{Period: period})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(r.FilePath(m))
	lines := strings.Split(strings.TrimSpace(string(b[3:])), "\r\n")
	if lines[1] != "XC-000,2026-11-27 08:00:00,,,100" || lines[40] != "XC-003,2026-11-27 10:15:00,39,,139" {
		t.Errorf("suppression: %q … %q", lines[1], lines[40])
	}
	m, err = r.Run(ctx, "signal-sum", RunOptions{Period: period})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(r.FilePath(m))
	// cell XC-000 has counts 0,4,8,…,36: only 12…36 (7 values) survive.
	if !strings.Contains(string(b), "XC-000,168,7\r\n") {
		t.Errorf("aggregate over suppressed counts:\n%s", b)
	}
	m, err = r.Run(ctx, "pii", RunOptions{Period: period})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(r.FilePath(m))
	lines = strings.Split(string(b[3:]), "\r\n")
	if lines[0] != "警情编号 id,接警时间 received_at,警情类别 category,事发地址 address,所属街道区划代码 street_code,纬度 latitude,来源系统 source_system" {
		t.Errorf("pii header %q", lines[0])
	}
	wantID := sha([]byte("sJQ000000"))
	if !strings.HasPrefix(lines[1], wantID+",") || !strings.Contains(lines[1], ",西长安****************0000,") {
		t.Errorf("pii row %q", lines[1])
	}
	if strings.Contains(string(b), "1381234") {
		t.Error("masked phone numbers leaked")
	}
}

func TestReproducibleAsOf(t *testing.T) {
	e := newEnv(t)
	defs := []Definition{incidentsDef("r-csv", "east", "csv", "gb18030"), incidentsDef("r-xlsx", "east", "xlsx", ""), incidentsDef("r-parquet", "east", "parquet", "")}
	r := e.runner(t, defs...)
	ctx := context.Background()
	first := map[string]*Manifest{}
	for _, d := range defs {
		m, err := r.Run(ctx, d.Name, RunOptions{Period: period})
		if err != nil {
			t.Fatal(err)
		}
		if m.Snapshots["raw.incidents"] != e.snapIn {
			t.Errorf("%s: manifest snapshot %v, want %d", d.Name, m.Snapshots, e.snapIn)
		}
		first[d.Name] = m
	}
	// New data arrives; the next run differs, a run as of the first
	// snapshot gives the very same bytes.
	e.fillIncidents(t, 500, 100)
	time.Sleep(10 * time.Millisecond)
	for _, d := range defs {
		m, err := r.Run(ctx, d.Name, RunOptions{Period: period})
		if err != nil {
			t.Fatal(err)
		}
		if m.SHA256 == first[d.Name].SHA256 || m.Rows != 300 {
			t.Errorf("%s: new snapshot gave the same file (%d rows)", d.Name, m.Rows)
		}
		m, err = r.Run(ctx, d.Name, RunOptions{Period: period, AsOf: map[string]int64{"raw.incidents": e.snapIn}})
		if err != nil {
			t.Fatal(err)
		}
		if m.SHA256 != first[d.Name].SHA256 || m.Rows != 250 {
			t.Errorf("%s: --as-of gave sha %s (%d rows), want %s", d.Name, m.SHA256, m.Rows, first[d.Name].SHA256)
		}
		b, _ := os.ReadFile(r.FilePath(m))
		if sha(b) != m.SHA256 {
			t.Errorf("%s: file does not match its manifest", d.Name)
		}
		files, _ := filepath.Glob(filepath.Join(e.out, d.Name, "*."+d.Ext()))
		if len(files) != 1 {
			t.Errorf("%s: re-runs of one period left %d files, want 1 (replaced)", d.Name, len(files))
		}
	}
	if _, err := r.Run(ctx, "r-csv", RunOptions{Period: period, AsOf: map[string]int64{"raw.incidents": 12345}}); !errors.Is(err, warehouse.ErrTimeTravel) {
		t.Errorf("unknown snapshot: %v", err)
	}
	h, err := r.History("r-csv", 0)
	if err != nil || len(h) != 4 || h[0].Status != "failed" || h[1].Status != "ok" {
		t.Errorf("history: %d entries, err %v", len(h), err)
	}
}

func TestScheduledExtracts(t *testing.T) {
	e := newEnv(t)
	d := incidentsDef("sched", "east", "csv", "")
	d.Retention = 48 * time.Hour
	dest := t.TempDir()
	d.Delivery = []Delivery{{Type: "dir", Path: dest}}
	r := e.runner(t, d)
	clk := scheduler.NewFakeClock(time.Date(2026, 11, 20, 5, 0, 0, 0, time.UTC))
	r.Now = clk.Now
	s := scheduler.New(scheduler.DefaultConfig(), r.Ledger(), clk, nil)
	jobs, err := r.Jobs()
	if err != nil || len(jobs) != 1 {
		t.Fatalf("jobs %v %v", jobs, err)
	}
	s.Add(jobs[0])
	ctx := context.Background()
	s.Tick(ctx)                                            // first sight: nothing is backfilled
	clk.Set(time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC)) // 09:00 Beijing, three days later
	runs, err := s.Tick(ctx)
	if err != nil || len(runs) != 3 {
		t.Fatalf("catch-up: %d runs, %v", len(runs), err)
	}
	got, _ := filepath.Glob(filepath.Join(dest, "*.csv"))
	want := []string{"sched_20261121T0600.csv", "sched_20261122T0600.csv", "sched_20261123T0600.csv"}
	if len(got) != 3 {
		t.Fatalf("delivered %v, want %v", got, want)
	}
	for i := range want {
		if filepath.Base(got[i]) != want[i] {
			t.Errorf("file %d: %s, want %s", i, filepath.Base(got[i]), want[i])
		}
		if _, err := os.Stat(got[i] + ".manifest.json"); err != nil {
			t.Errorf("no manifest beside %s", got[i])
		}
		// The department's staff can read the copies and the file kept
		// (the older ones are past the retention already).
		for _, f := range []string{got[i], filepath.Join(e.out, "sched", want[2])} {
			if fi, err := os.Stat(f); err != nil {
				t.Error(err)
			} else if fi.Mode().Perm() != 0o644 {
				t.Errorf("%s: mode %v, want 0644", f, fi.Mode())
			}
		}
	}
	// Retention 48 h: the oldest kept file goes on the next run.
	clk.Set(time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC))
	s.Tick(ctx)
	kept, _ := filepath.Glob(filepath.Join(e.out, "sched", "*.csv"))
	if len(kept) != 2 {
		t.Errorf("retention: %d files kept, want 2: %v", len(kept), kept)
	}
	// A manual run of a period whose scheduled run is going on is refused.
	c, _ := r.Ledger().Claim("sched", time.Date(2026, 11, 24, 6, 0, 0, 0, period.Location()))
	_, err = r.Run(ctx, "sched", RunOptions{Period: time.Date(2026, 11, 24, 6, 0, 0, 0, period.Location())})
	c.Release()
	if !errors.Is(err, scheduler.ErrBusy) {
		t.Errorf("manual run during a scheduled one: %v, want ErrBusy", err)
	}
}

func hasHan(s string) bool {
	for _, r := range s {
		if r >= 0x4e00 && r <= 0x9fff {
			return true
		}
	}
	return false
}

// A SQL source may use :period_start and :period_end (the definition is
// checked with the period filled in), and they bound the rows.
func TestSQLSourcePeriodParams(t *testing.T) {
	e := newEnv(t)
	d := Definition{Name: "sql-period", Department: "east", Format: "csv", Schedule: ScheduleConfig{Cron: "0 6 * * *"},
		Source: Source{SQL: `SELECT id, received_at FROM raw.incidents
			WHERE received_at >= :period_start + INTERVAL 3 HOUR AND received_at < :period_end ORDER BY id`}}
	r := e.runner(t, d)
	m, err := r.Run(context.Background(), d.Name, RunOptions{Period: period, NoDeliver: true})
	if err != nil {
		t.Fatal(err)
	}
	// The period is 27 Nov 06:00 – 28 Nov 06:00 CST, so the window is
	// 27 Nov 01:00Z – 22:00Z: minutes 60–499 of the 500 rows, the even
	// ones (the east street's).
	if m.Rows != 220 {
		t.Fatalf("%d rows, want 220", m.Rows)
	}
	if !strings.Contains(m.Query, "TIMESTAMPTZ '2026-11-27 06:00:00.000000+08:00'") {
		t.Errorf("the period is not in the query: %s", m.Query)
	}
}

// header: names gives the plain names; Parquet keeps the names; a computed
// column of a SQL source has no label; a bad header is refused.
func TestHeaders(t *testing.T) {
	e := newEnv(t)
	names := incidentsDef("names", "east", "csv", "")
	names.Header = "names"
	pq := incidentsDef("pq", "east", "parquet", "")
	sqlDef := Definition{Name: "computed", Department: "east", Format: "xlsx",
		Source: Source{SQL: "SELECT id, length(title) AS title_len FROM raw.incidents ORDER BY id"}}
	r := e.runner(t, names, pq, sqlDef)
	ctx := context.Background()
	m, err := r.Run(ctx, "names", RunOptions{Period: period, NoDeliver: true})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(r.FilePath(m))
	if head, _, _ := strings.Cut(string(b[3:]), "\r\n"); head != "id,received_at,category,title,address,street_code,latitude,source_system" {
		t.Errorf("header: names gave %q", head)
	}
	m, err = r.Run(ctx, "pq", RunOptions{Period: period, NoDeliver: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Columns {
		if c.Label != "" {
			t.Errorf("parquet column %v has a label", c)
		}
	}
	m, err = r.Run(ctx, "computed", RunOptions{Period: period, NoDeliver: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Columns) != 2 || m.Columns[0].Heading() != "警情编号 id" || m.Columns[1].Heading() != "title_len" {
		t.Errorf("xlsx columns %+v", m.Columns)
	}
	for _, bad := range []Definition{{Header: "zh", Format: "csv"}, {Header: "names", Format: "parquet"}} {
		bad.Name, bad.Department, bad.Source = "bad", "east", Source{Table: "raw.incidents"}
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "header") {
			t.Errorf("header %q on %s: %v", bad.Header, bad.Format, err)
		}
	}
}

// A table source without columns delivers the table's fields, not the
// lake's bookkeeping (_cursor).
func TestAllColumnsWithoutCursor(t *testing.T) {
	e := newEnv(t)
	d := Definition{Name: "all", Department: "east", Format: "csv", Source: Source{Table: "raw.incidents"}, OrderBy: []string{"id"}}
	r := e.runner(t, d)
	ctx := context.Background()
	rows, err := e.eng.Query(ctx, "SELECT * FROM raw.incidents LIMIT 0")
	if err != nil {
		t.Fatal(err)
	}
	lake, _ := rows.Columns()
	rows.Close()
	if !slices.Contains(lake, "_cursor") {
		t.Fatalf("the test table has no _cursor (%v): the test proves nothing", lake)
	}
	m, err := r.Run(ctx, d.Name, RunOptions{Period: period, NoDeliver: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range m.Columns {
		got = append(got, c.Name)
	}
	if len(got) != len(lake)-1 || slices.Contains(got, "_cursor") || got[0] != "id" {
		t.Errorf("columns %v (the table has %v)", got, lake)
	}
}
