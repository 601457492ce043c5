package warehouse

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/duckdb/duckdb-go/v2"

	"citybrain/warehouse/objstore"
)

// Engine is the DuckDB query layer over the lake. Every Iceberg table is a
// view of the Parquet files of its current snapshot (read_parquet over the
// snapshot's file list, so no DuckDB extension is needed and the engine
// works offline). Views are rebuilt by Refresh, which the lake writer calls
// after each commit and the engine's own Query calls when the table's
// metadata changed since the view was built.
//
// Time travel uses DuckDB's own syntax for versioned tables:
//
//	SELECT count(*) FROM raw.weather AT (VERSION => 4620193761893812387);
//	SELECT count(*) FROM raw.weather AT (TIMESTAMP => '2026-11-28 10:00:00+08');
//
// The engine rewrites such references to the files of that snapshot.
type Engine struct {
	lake *Lake
	db   *sql.DB
	conn *duckdb.Connector

	mu    sync.Mutex
	views map[string]string // table → metadata location the view was built from
	// bodies are the SELECTs of the views built from the lake (ViewSQL), so
	// the SQL layer copies a view into its sandboxes without asking DuckDB
	// to render every view of the catalog (duckdb_views()) at each commit.
	bodies map[string]string
	// damaged holds the tables whose metadata or data files cannot be read:
	// their view raises the error, the other tables keep serving.
	damaged map[string]string

	stream streamDB // Stream's own DuckDB, opened on first use

	// pins release the cached copies a view reads (a lake on an object
	// store), by table.
	pins map[string]func()
	// viewAt is the last-updated time of the metadata each view was built
	// from (refreshes race outside the lock; the newer wins).
	viewAt map[string]int64

	// onDemand: the lake is on an object store and the engine was opened
	// OnDemand — a table's view is built (its files fetched) only when a
	// statement first reads the table whole; whole lists those tables.
	onDemand bool
	whole    map[string]bool
	// refRE finds references to the lake's tables in a statement: raw.*,
	// marts.* and the other namespaces the catalog had at open (a table
	// Spark wrote, enrich.*).
	refRE *regexp.Regexp
}

// EngineOption configures NewEngine.
type EngineOption func(*Engine)

// OnDemand builds the views of a lake on an object store when statements
// need them, not at open: a command that runs a few statements (citybrain
// sql, an extract) fetches only the files they read — with a filter, the
// files the filter can match (prune.go) — instead of every current file of
// every table. Until then a table has no view; statements reach it through
// Query and Rewrite, which build it. serve opens its engine without it (its
// dashboards, SQL sessions and view models read the views directly). No
// effect on a local lake, whose views cost nothing to build.
func OnDemand() EngineOption { return func(e *Engine) { e.onDemand = true } }

// pinGrace is how long the cached copies of files a view or a time-travel
// statement read stay pinned after the view was replaced (or the statement
// rewritten): statements running on the old view, and sandboxes that copied
// it, finish reading them.
const pinGrace = 10 * time.Minute

// errUnavailable marks a refresh that failed because the object store did
// not answer: the table is not damaged, its previous view keeps serving.
var errUnavailable = errors.New("对象存储暂不可用 object store unavailable")

// NewEngine opens an in-memory DuckDB and creates a view for every table.
func NewEngine(ctx context.Context, lake *Lake, opts ...EngineOption) (*Engine, error) {
	q := lake.cfg.Query
	connector, err := duckdb.NewConnector("", func(execer driver.ExecerContext) error {
		for _, s := range settings(q) {
			if _, err := execer.ExecContext(ctx, s, nil); err != nil {
				return fmt.Errorf("duckdb %q: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	e := &Engine{lake: lake, db: sql.OpenDB(connector), conn: connector, views: map[string]string{}, bodies: map[string]string{}, damaged: map[string]string{}, pins: map[string]func(){}, viewAt: map[string]int64{}, whole: map[string]bool{}}
	for _, o := range opts {
		o(e)
	}
	e.onDemand = e.onDemand && lake.Remote()
	e.refRE = tableRefRE
	if nss, err := lake.cat.ListNamespaces(ctx, nil); err == nil {
		names := []string{"raw", "marts"}
		for _, ns := range nss {
			if n := strings.Join(ns, "."); n != "raw" && n != "marts" && !strings.Contains(n, ".") {
				names = append(names, regexp.QuoteMeta(n))
			}
		}
		e.refRE = regexp.MustCompile(`(?i)\b(` + strings.Join(names, "|") + `)\.([a-z_][a-z0-9_]*)`)
	}
	if _, err := e.db.ExecContext(ctx, backgroundPurge); err != nil {
		e.Close()
		return nil, fmt.Errorf("duckdb %q: %w", backgroundPurge, err)
	}
	if e.onDemand {
		return e, nil
	}
	if err := e.RefreshAll(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// DB is the underlying DuckDB handle (for trusted, internal callers).
func (e *Engine) DB() *sql.DB { return e.db }

// Close closes DuckDB.
func (e *Engine) Close() error {
	err := e.db.Close()
	e.conn.Close()
	e.closeStream()
	return err
}

// RefreshAll rebuilds the view of every table whose metadata changed. A
// table that cannot be read is isolated (see Damaged), not an error: one
// truncated file must not stop every query.
func (e *Engine) RefreshAll(ctx context.Context) error {
	nss, err := e.lake.cat.ListNamespaces(ctx, nil)
	if err != nil {
		return fmt.Errorf("list namespaces: %w", err)
	}
	for _, ns := range nss {
		for ident, err := range e.lake.cat.ListTables(ctx, ns) {
			if err != nil {
				return err
			}
			if err := e.Refresh(ctx, strings.Join(ident, ".")); err != nil && ctx.Err() != nil {
				return err
			}
		}
	}
	return nil
}

// Damaged returns the tables whose view could not be built, with why.
func (e *Engine) Damaged() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]string, len(e.damaged))
	for k, v := range e.damaged {
		out[k] = v
	}
	return out
}

// DamagedHint is what to do about a damaged table.
const DamagedHint = "run `citybrain lake check` / 请运行 citybrain lake check 检查并修复"

// Refresh rebuilds one table's view if its metadata changed. If the table
// cannot be read, its view becomes one that raises the error (naming the
// file), it is listed by Damaged, and the error is returned.
func (e *Engine) Refresh(ctx context.Context, name string) error {
	e.wantWhole(name)
	_, err := e.refreshLoaded(ctx, name)
	return err
}

// wantWhole marks a table's view as needed (OnDemand engines build it).
func (e *Engine) wantWhole(name string) {
	e.mu.Lock()
	e.whole[name] = true
	e.mu.Unlock()
}

// refreshLoaded is Refresh, returning the table as it loaded it (nil when
// the load failed) so a statement's time travel does not load it again.
func (e *Engine) refreshLoaded(ctx context.Context, name string) (*table.Table, error) {
	t, err := e.lake.Load(ctx, name)
	if err != nil {
		return nil, e.refreshAfter(ctx, name, nil, err)
	}
	return t, e.refreshAfter(ctx, name, t, nil)
}

// refreshAfter rebuilds the view of t (loaded, or failed to load with err).
func (e *Engine) refreshAfter(ctx context.Context, name string, t *table.Table, err error) error {
	if err != nil {
		if errors.Is(err, ErrNoTable) {
			return err
		}
		return e.markDamaged(ctx, name, "load:"+err.Error(), fmt.Errorf("%s: %w", e.lake.newestMetadata(name), err))
	}
	e.mu.Lock()
	if e.onDemand && !e.whole[name] {
		e.mu.Unlock()
		return nil // built when a statement reads the table whole
	}
	switch e.views[name] {
	case t.MetadataLocation():
		e.mu.Unlock()
		return nil
	case "damaged:" + t.MetadataLocation():
		// Damaged at this metadata: not tried again until it changes (a
		// commit, a rollback); a data file restored by hand needs a restart.
		why := e.damaged[name]
		e.mu.Unlock()
		return errors.New(why)
	}
	e.mu.Unlock()
	if err := e.refresh(ctx, name, t); err != nil {
		if errors.Is(err, errUnavailable) {
			e.lake.log.Warn("视图未刷新，沿用上一版本 view not refreshed, the previous one keeps serving", "table", name, "err", err)
			return err
		}
		return e.markDamaged(ctx, name, t.MetadataLocation(), err)
	}
	e.mu.Lock()
	delete(e.damaged, name)
	e.mu.Unlock()
	return nil
}

// markDamaged replaces a table's view by one that raises err, once per
// version of the damage (key).
func (e *Engine) markDamaged(ctx context.Context, name, key string, err error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	msg := fmt.Sprintf("数据表已损坏 table %s is damaged: %v; %s", name, err, DamagedHint)
	if e.views[name] == "damaged:"+key {
		return errors.New(msg)
	}
	ident := Ident(name)
	for _, s := range []string{
		"CREATE SCHEMA IF NOT EXISTS " + quoteIdent(ident[0]),
		// The WHERE makes every query of the view raise, count(*) too.
		fmt.Sprintf("CREATE OR REPLACE VIEW %s.%s AS SELECT true AS damaged WHERE error(%s) IS NULL", quoteIdent(ident[0]), quoteIdent(ident[1]), quoteString(msg)),
	} {
		if _, xerr := e.db.ExecContext(ctx, s); xerr != nil {
			return errors.Join(err, xerr)
		}
	}
	e.views[name] = "damaged:" + key
	delete(e.bodies, name)
	delete(e.viewAt, name)
	e.damaged[name] = msg
	e.lake.log.Error("数据表已损坏，已隔离 table damaged and isolated; the other tables keep serving", "table", name, "err", err, "next", DamagedHint)
	return errors.New(msg)
}

// refresh builds the view of t's current snapshot.
//
// The files are planned (and, on an object store, fetched) before the
// engine's lock is taken: a slow download must not hold up every other
// table's refresh and every sandbox reading the views. Of two refreshes of
// one table racing, the newer metadata wins.
func (e *Engine) refresh(ctx context.Context, name string, t *table.Table) error {
	src, release, err := e.source(ctx, t, nil)
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			release()
		}
	}()
	e.mu.Lock()
	defer e.mu.Unlock()
	at := t.Metadata().LastUpdatedMillis()
	if e.views[name] == t.MetadataLocation() || at < e.viewAt[name] {
		return nil // built meanwhile from this or newer metadata
	}
	ident := Ident(name)
	stmts := []string{
		"CREATE SCHEMA IF NOT EXISTS " + quoteIdent(ident[0]),
		fmt.Sprintf("CREATE OR REPLACE VIEW %s.%s AS %s", quoteIdent(ident[0]), quoteIdent(ident[1]), src),
	}
	if c := t.Properties()["comment"]; c != "" {
		stmts = append(stmts, fmt.Sprintf("COMMENT ON VIEW %s.%s IS %s", quoteIdent(ident[0]), quoteIdent(ident[1]), quoteString(c)))
	}
	for _, s := range stmts {
		if _, err := e.db.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("refresh view %s: %w", name, err)
		}
	}
	e.views[name] = t.MetadataLocation()
	e.viewAt[name] = at
	e.bodies[name] = src
	if old := e.pins[name]; old != nil {
		time.AfterFunc(pinGrace, old)
	}
	e.pins[name] = release
	done = true
	return nil
}

// ViewSQL returns the SELECT of a table's view as the engine last built it
// from the lake; ok is false for a table it has not built (or a damaged one).
func (e *Engine) ViewSQL(name string) (body string, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	body, ok = e.bodies[name]
	return body, ok
}

// source is the SELECT that reads a snapshot (nil: current) of a table,
// and the release of the cached copies it reads (a lake on an object store:
// the files are fetched into the cache first).
func (e *Engine) source(ctx context.Context, t *table.Table, snap *table.Snapshot) (string, func(), error) {
	return e.lake.snapshotSource(ctx, t, snap)
}

func (l *Lake) snapshotSource(ctx context.Context, t *table.Table, snap *table.Snapshot) (string, func(), error) {
	files, err := l.snapshotFiles(ctx, t, snap)
	if err != nil {
		return "", nil, err
	}
	return l.filesSource(ctx, snapshotSchema(t, snap), files)
}

// snapshotSchema is the schema a snapshot (nil: current) was written with.
func snapshotSchema(t *table.Table, snap *table.Snapshot) *iceberg.Schema {
	sc := t.Schema()
	if snap != nil && snap.SchemaID != nil {
		for _, s := range t.Metadata().Schemas() {
			if s.ID == *snap.SchemaID {
				sc = s
			}
		}
	}
	return sc
}

// filesSource is the SELECT that reads the given data files with schema sc,
// and the release of the cached copies it reads (fetched first, on an
// object store).
func (l *Lake) filesSource(ctx context.Context, sc *iceberg.Schema, files []string) (string, func(), error) {
	paths, release, err := l.openFiles(ctx, files)
	if err != nil {
		if !errors.Is(err, objstore.ErrNotFound) && ctx.Err() == nil {
			err = fmt.Errorf("%w: %v", errUnavailable, err)
		}
		return "", nil, err
	}
	cols := make([]string, 0, len(sc.Fields()))
	for _, f := range sc.Fields() {
		from := "NULL"
		if len(files) > 0 {
			from = quoteIdent(f.Name)
		}
		cols = append(cols, fmt.Sprintf("CAST(%s AS %s) AS %s", from, duckType(f.Type), quoteIdent(f.Name)))
	}
	if len(files) == 0 {
		return "SELECT " + strings.Join(cols, ", ") + " WHERE false", release, nil
	}
	quoted := make([]string, len(paths))
	for i, p := range paths {
		quoted[i] = quoteString(p)
	}
	return fmt.Sprintf("SELECT %s FROM read_parquet([%s], union_by_name = true)", strings.Join(cols, ", "), strings.Join(quoted, ", ")), release, nil
}

// snapshotFiles lists the paths of a snapshot's data files (see
// snapshotDataFiles).
func (l *Lake) snapshotFiles(ctx context.Context, t *table.Table, snap *table.Snapshot) ([]string, error) {
	dfs, err := l.snapshotDataFiles(ctx, t, snap)
	if err != nil {
		return nil, err
	}
	files := make([]string, len(dfs))
	for i, f := range dfs {
		files[i] = f.FilePath()
	}
	return files, nil
}

// snapshotDataFiles is a snapshot's data files (nil: current) with their
// manifest entries' partition values and column bounds, remembered: a
// snapshot's files never change, and planning reads its manifest list and
// manifests (from the bucket, on an object store: 55 ms for 15 manifests in
// the lake-s3 bench, at every time-travel statement). Statement pruning
// (prune.go) evaluates its filters against the remembered entries.
func (l *Lake) snapshotDataFiles(ctx context.Context, t *table.Table, snap *table.Snapshot) ([]iceberg.DataFile, error) {
	if snap == nil {
		snap = t.CurrentSnapshot()
	}
	if snap == nil {
		return nil, nil
	}
	key := t.Location() + "@" + strconv.FormatInt(snap.SnapshotID, 10)
	l.pmu.Lock()
	files, ok := l.planned[key]
	l.pmu.Unlock()
	if ok {
		return files, nil
	}
	files, err := planDataFiles(l.ioCtx(ctx), t, snap)
	if err != nil {
		return nil, err
	}
	l.pmu.Lock()
	if l.planned == nil || len(l.planned) >= plannedMax {
		l.planned = map[string][]iceberg.DataFile{} // simple bound: start over
	}
	l.planned[key] = files
	l.pmu.Unlock()
	return files, nil
}

// plannedMax bounds the remembered snapshot plans.
const plannedMax = 512

// SnapshotFiles lists the data files of a snapshot (nil: current).
func SnapshotFiles(ctx context.Context, t *table.Table, snap *table.Snapshot) ([]string, error) {
	if snap == nil {
		snap = t.CurrentSnapshot()
	}
	if snap == nil {
		return nil, nil
	}
	dfs, err := planDataFiles(ctx, t, snap)
	if err != nil {
		return nil, err
	}
	files := make([]string, len(dfs))
	for i, f := range dfs {
		files[i] = f.FilePath()
	}
	return files, nil
}

func planDataFiles(ctx context.Context, t *table.Table, snap *table.Snapshot) ([]iceberg.DataFile, error) {
	tasks, err := t.Scan(table.WithSnapshotID(snap.SnapshotID)).PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan files of %s@%d: %w", strings.Join(t.Identifier(), "."), snap.SnapshotID, err)
	}
	files := make([]iceberg.DataFile, 0, len(tasks))
	for _, task := range tasks {
		if len(task.DeleteFiles)+len(task.EqualityDeleteFiles)+len(task.DeletionVectorFiles) > 0 {
			return nil, fmt.Errorf("%s has row-level deletes, which the query layer does not read yet", strings.Join(t.Identifier(), "."))
		}
		files = append(files, task.File)
	}
	return files, nil
}

// DuckType is the DuckDB type the query layer gives a column of Iceberg type t.
func DuckType(t iceberg.Type) string { return duckType(t) }

func duckType(t iceberg.Type) string {
	switch t.(type) {
	case iceberg.StringType:
		return "VARCHAR"
	case iceberg.Int32Type:
		return "INTEGER"
	case iceberg.Int64Type:
		return "BIGINT"
	case iceberg.Float64Type:
		return "DOUBLE"
	case iceberg.Float32Type:
		return "FLOAT"
	case iceberg.BooleanType:
		return "BOOLEAN"
	case iceberg.TimestampTzType:
		return "TIMESTAMPTZ"
	case iceberg.TimestampType:
		return "TIMESTAMP"
	case iceberg.DateType:
		return "DATE"
	}
	return "VARCHAR"
}

func quoteIdent(s string) string  { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func quoteString(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// ErrTimeTravel: a time-travel reference names no snapshot.
var ErrTimeTravel = errors.New("time travel")

var atRE = regexp.MustCompile(`(?i)\b([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\s+AT\s*\(\s*(VERSION|TIMESTAMP)\s*=>\s*('[^']*'|[0-9]+)\s*\)`)

// Rewrite replaces time-travel references with the files of the snapshot
// they name, and references whose filters rule out some of the table's
// files with a SELECT over the others (prune.go).
func (e *Engine) Rewrite(ctx context.Context, query string) (string, error) {
	return e.rewrite(ctx, query, nil)
}

// rewrite is Rewrite with the tables the statement's refresh loaded.
func (e *Engine) rewrite(ctx context.Context, query string, loaded map[string]*table.Table) (string, error) {
	query, err := e.pruneStatement(ctx, query, loaded, nil)
	if err != nil {
		return "", err
	}
	if e.onDemand {
		// The references pruning left read the views: build them.
		for _, m := range e.refRE.FindAllStringSubmatch(atRE.ReplaceAllString(query, ""), -1) {
			name := strings.ToLower(m[1] + "." + m[2])
			e.mu.Lock()
			built := e.whole[name]
			e.mu.Unlock()
			if built {
				continue
			}
			e.wantWhole(name)
			if t := loaded[name]; t != nil {
				err = e.refreshAfter(ctx, name, t, nil)
			} else {
				_, err = e.refreshLoaded(ctx, name)
			}
			if err != nil && !errors.Is(err, ErrNoTable) {
				return "", err
			}
		}
	}
	var rerr error
	out := atRE.ReplaceAllStringFunc(query, func(m string) string {
		if rerr != nil {
			return m
		}
		g := atRE.FindStringSubmatch(m)
		name := strings.ToLower(g[1] + "." + g[2])
		t := loaded[name]
		if t == nil {
			var err error
			if t, err = e.lake.Load(ctx, name); err != nil {
				rerr = err
				return m
			}
		}
		var snap *table.Snapshot
		arg := strings.Trim(g[4], "'")
		if strings.EqualFold(g[3], "VERSION") {
			id, err := strconv.ParseInt(arg, 10, 64)
			if err != nil {
				rerr = fmt.Errorf("%w: VERSION wants a snapshot id, got %q", ErrTimeTravel, arg)
				return m
			}
			if snap = t.SnapshotByID(id); snap == nil {
				rerr = fmt.Errorf("%w: %s has no snapshot %d (see `citybrain tables --snapshots`); 没有该快照", ErrTimeTravel, name, id)
				return m
			}
		} else {
			ts, err := parseTime(arg)
			if err != nil {
				rerr = fmt.Errorf("%w: TIMESTAMP %q: %v", ErrTimeTravel, arg, err)
				return m
			}
			if snap = t.SnapshotAsOf(ts.UnixMilli(), true); snap == nil {
				rerr = fmt.Errorf("%w: %s has no snapshot at or before %s; 该时间点之前没有快照", ErrTimeTravel, name, ts.Format(time.RFC3339))
				return m
			}
		}
		src, release, err := e.source(ctx, t, snap)
		if err != nil {
			rerr = err
			return m
		}
		time.AfterFunc(pinGrace, release)
		return "(" + src + ") AS " + quoteIdent(g[2])
	})
	if rerr != nil {
		return "", rerr
	}
	return out, nil
}

func parseTime(s string) (time.Time, error) {
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999-07", "2006-01-02 15:04:05-07:00", "2006-01-02 15:04:05", "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, shanghai); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("want e.g. '2026-11-28 10:00:00' (Asia/Shanghai) or RFC 3339")
}

var tableRefRE = regexp.MustCompile(`(?i)\b(raw|marts)\.([a-z_][a-z0-9_]*)`)

// Query runs SQL against the current snapshots (and any AT (...) snapshot).
func (e *Engine) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	loaded := map[string]*table.Table{}
	for _, m := range e.refRE.FindAllStringSubmatch(query, -1) {
		name := strings.ToLower(m[1] + "." + m[2])
		if _, ok := loaded[name]; ok {
			continue
		}
		t, err := e.refreshLoaded(ctx, name)
		if err != nil && !errors.Is(err, ErrNoTable) {
			return nil, err
		}
		loaded[name] = t
	}
	q, err := e.rewrite(ctx, query, loaded)
	if err != nil {
		return nil, err
	}
	return e.db.QueryContext(ctx, q, args...)
}

// DuckDBMemory is the memory a DuckDB database holds (the sum of
// duckdb_memory(): buffer pool, caches and operators' allocations).
func DuckDBMemory(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) (int64, error) {
	var n int64
	err := q.QueryRowContext(ctx, "SELECT coalesce(sum(memory_usage_bytes), 0)::BIGINT FROM duckdb_memory()").Scan(&n)
	return n, err
}

// Memory is the memory of the engine's database (the query views; not
// Stream's own, which extracts open on first use).
func (e *Engine) Memory(ctx context.Context) (map[string]int64, error) {
	n, err := DuckDBMemory(ctx, e.db)
	if err != nil {
		return nil, err
	}
	return map[string]int64{"query": n}, nil
}
