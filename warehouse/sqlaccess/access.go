// Package sqlaccess is the analysts' SQL sandbox, shared by the PostgreSQL
// wire server (warehouse/pgwire) and the HTTP SQL API: every statement is
// checked by DuckDB's own parser (one read-only statement, no file access,
// no table outside the user's scope), runs in a DuckDB database that holds
// only the views the user's scope allows (filtered to the department's rows,
// mobile-signal counts below k hidden) with external access limited to the
// lake and the configuration locked, under a statement timeout and memory
// cap, and is appended to the audit table audit.queries.
//
// Why one DuckDB database per scope (admin, everyone else with all tables,
// one per department) and not one shared database: then information_schema,
// duckdb_tables(), SHOW ALL TABLES and pg_catalog show only what the user
// may read, and DuckDB's allowed_directories holds only those tables'
// directories, so a mistake in the statement guard still cannot read
// another department's files.
package sqlaccess

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"citybrain/internal/auth"
	"citybrain/internal/freshness"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// suppressed lists the count columns hidden below auth's k outside the
// admin role.
var suppressed = map[string][]string{"raw.mobile_signal": {"people_count"}}

// Access is the sandboxed SQL service.
type Access struct {
	cfg   Config
	eng   *warehouse.Engine
	lake  *warehouse.Lake
	reg   *schemas.Registry
	users *auth.Store
	log   *slog.Logger
	// Audit receives one entry per statement (nil: not audited).
	Audit *Auditor
	// Fresh, if set, receives each table's query path freshness (QueryPath).
	Fresh *freshness.Registry

	umu    sync.Mutex
	ucfg   auth.Config
	udir   string
	upath  string
	umtime time.Time
	fresh  *auth.Store

	mu     sync.Mutex
	boxes  map[string]*sandbox
	active sync.WaitGroup // open sessions

	// OnBackstop is called when the backstop (backstop.go) must end
	// statements DuckDB cannot interrupt, after they are audited; serve
	// restarts itself. Nil: they are audited and logged, and run on.
	OnBackstop func(reason string)
	bs         backstop

	fonce     sync.Once
	fol       *follower
	refreshMu sync.Mutex // one refresh round at a time
}

// WaitIdle waits up to d for every open session to close.
func (a *Access) WaitIdle(d time.Duration) {
	done := make(chan struct{})
	go func() { a.active.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// New returns the service; sandboxes are opened on first use.
func New(cfg Config, eng *warehouse.Engine, lake *warehouse.Lake, reg *schemas.Registry, users *auth.Store, log *slog.Logger) *Access {
	return &Access{cfg: cfg, eng: eng, lake: lake, reg: reg, users: users, log: log, boxes: map[string]*sandbox{}}
}

// ReloadUsers makes Users re-read the users file when it changes (users
// added or passwords changed with citybrain users while serve runs).
func (a *Access) ReloadUsers(cfg auth.Config, dataDir string) {
	p := cfg.UsersFile
	if p == "" {
		p = "users.json"
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dataDir, p)
	}
	a.umu.Lock()
	defer a.umu.Unlock()
	a.ucfg, a.udir, a.upath = cfg, dataDir, p
	if fi, err := os.Stat(p); err == nil {
		a.umtime = fi.ModTime()
	}
}

// StatementTimeout is the longest a statement may run
// (sql_access.statement_timeout); a session can only lower it.
func (a *Access) StatementTimeout() time.Duration { return a.cfg.StatementTimeout }

// Users is the user store for logins: the file's current content.
func (a *Access) Users() *auth.Store {
	a.umu.Lock()
	defer a.umu.Unlock()
	if a.upath == "" {
		return a.users
	}
	fi, err := os.Stat(a.upath)
	if err == nil && !fi.ModTime().Equal(a.umtime) {
		if s, err := auth.Open(a.ucfg, a.udir); err == nil {
			s.ShareLogins(a.users)
			a.fresh, a.umtime = s, fi.ModTime()
		} else {
			a.log.Warn("users file changed but cannot be read; keeping the previous users", "err", err)
		}
	}
	if a.fresh != nil {
		return a.fresh
	}
	return a.users
}

// Memory is each open sandbox's database memory, as sandbox:<key>.
func (a *Access) Memory(ctx context.Context) (map[string]int64, error) {
	a.mu.Lock()
	boxes := make([]*sandbox, 0, len(a.boxes))
	for _, b := range a.boxes {
		boxes = append(boxes, b)
	}
	a.mu.Unlock()
	out := map[string]int64{}
	for _, b := range boxes {
		if n, err := warehouse.DuckDBMemory(ctx, b.db); err == nil {
			out["sandbox:"+b.key] = n
		}
	}
	return out, nil
}

// Close closes every sandbox.
func (a *Access) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k, b := range a.boxes {
		b.db.Close()
		delete(a.boxes, k)
	}
}

func boxKey(u auth.User) string {
	switch u.Role {
	case auth.RoleAdmin:
		return "admin"
	case auth.RoleDepartment:
		return "dept:" + u.Department
	}
	return "all"
}

func (a *Access) box(ctx context.Context, u auth.User) (*sandbox, error) {
	key := boxKey(u)
	a.mu.Lock()
	defer a.mu.Unlock()
	if b, ok := a.boxes[key]; ok {
		return b, nil
	}
	b, err := a.openBox(ctx, key, a.users.ScopeOf(u), u.Role == auth.RoleAdmin)
	if err != nil {
		return nil, err
	}
	a.boxes[key] = b
	return b, nil
}

// Refresh rebuilds a table's view (and the catalog) in every open sandbox
// now, and returns when done (tests, the audit log's own commits). serve
// uses Notify and Follow instead, which never hold up the committer.
func (a *Access) Refresh(ctx context.Context, table string) {
	f := a.follow()
	f.mu.Lock()
	if _, ok := f.pending[strings.ToLower(table)]; !ok {
		f.pending[strings.ToLower(table)] = time.Now()
	}
	f.mu.Unlock()
	a.refreshPending(ctx)
}

// sandbox is one DuckDB database holding the views of one scope.
type sandbox struct {
	a     *Access
	key   string
	scope auth.Scope
	admin bool
	db    *sql.DB
	conn  *duckdb.Connector

	mu    sync.Mutex
	views map[string]bool // visible tables whose view exists
	dirs  []string

	// catalogStale says catalog.tables / catalog.columns lag the views;
	// catalogMu serialises their rebuilds.
	catalogStale atomic.Bool
	catalogMu    sync.Mutex
}

func (b *sandbox) visible(table string) bool {
	table = strings.ToLower(table)
	ns, _, _ := strings.Cut(table, ".")
	if ns == "catalog" {
		return table == "catalog.tables" || table == "catalog.columns"
	}
	if ns == "audit" && !b.admin {
		return false
	}
	if _, ok := b.scope.Allows(table); !ok {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.views[table]
}

// filtered says a table is read through the scope's row filter.
func (b *sandbox) filtered(table string) bool {
	f, ok := b.scope.Allows(strings.ToLower(table))
	return ok && f != ""
}

func (b *sandbox) mayRead(table string) bool {
	ns, _, _ := strings.Cut(table, ".")
	if ns == "audit" && !b.admin {
		return false
	}
	_, ok := b.scope.Allows(table)
	return ok
}

func quoteIdent(s string) string  { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func quoteString(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

func (a *Access) openBox(ctx context.Context, key string, scope auth.Scope, admin bool) (*sandbox, error) {
	b := &sandbox{a: a, key: key, scope: scope, admin: admin, views: map[string]bool{}}
	tables, err := a.lake.Tables(ctx)
	if err != nil {
		return nil, err
	}
	lakeDir := a.lake.LocalRoot()
	dirs := map[string]bool{}
	switch {
	case admin:
		dirs[lakeDir] = true
	case scope.All:
		for _, t := range tables {
			if ns, _, _ := strings.Cut(t.Name, "."); ns != "audit" {
				dirs[filepath.Join(lakeDir, ns)] = true
			}
		}
		dirs[filepath.Join(lakeDir, "raw")], dirs[filepath.Join(lakeDir, "marts")] = true, true
	default:
		for t := range scope.Tables {
			ns, name, _ := strings.Cut(t, ".")
			dirs[filepath.Join(lakeDir, ns, name)] = true
		}
	}
	for _, t := range tables {
		if !b.mayRead(t.Name) {
			continue
		}
		if tt, err := a.lake.Load(ctx, t.Name); err == nil {
			dirs[a.lake.LocalDir(tt.Location())] = true
		}
	}
	for d := range dirs {
		b.dirs = append(b.dirs, strings.TrimSuffix(d, "/")+"/")
	}
	sort.Strings(b.dirs)
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("open sandbox: %w", err)
	}
	b.conn = connector
	b.db = sql.OpenDB(connector)
	setup := []string{"SET GLOBAL TimeZone = 'Asia/Shanghai'"}
	if a.cfg.MemoryLimit != "" {
		setup = append(setup, "SET GLOBAL memory_limit = "+quoteString(a.cfg.MemoryLimit))
	}
	if a.cfg.Threads > 0 {
		setup = append(setup, fmt.Sprintf("SET GLOBAL threads = %d", a.cfg.Threads))
	}
	quoted := make([]string, len(b.dirs))
	for i, d := range b.dirs {
		quoted[i] = quoteString(d)
	}
	setup = append(setup,
		"SET GLOBAL autoinstall_known_extensions = false",
		"SET GLOBAL enable_external_file_cache = false", // local files: the OS caches them (warehouse.noFileCache)
		"SET GLOBAL allowed_directories = ["+strings.Join(quoted, ", ")+"]",
		"SET GLOBAL enable_external_access = false",
		"CREATE SCHEMA catalog",
		"SET GLOBAL lock_configuration = true",
	)
	setup = append(setup, pgCompat...)
	setup = append(setup, boundedMacros()...)
	for _, s := range setup {
		if _, err := b.db.ExecContext(ctx, s); err != nil {
			b.db.Close()
			return nil, fmt.Errorf("sandbox %s: %s: %w", key, s, err)
		}
	}
	for _, t := range tables {
		if err := b.refresh(ctx, t.Name, false); err != nil {
			a.log.Warn("sandbox view", "table", t.Name, "sandbox", key, "err", err)
		}
	}
	if err := b.buildCatalog(ctx); err != nil {
		b.db.Close()
		return nil, err
	}
	a.log.Debug("sandbox opened", "sandbox", key, "tables", len(b.views), "dirs", b.dirs)
	return b, nil
}

// engineBody is the SELECT of the engine's view of a table.
func (a *Access) engineBody(ctx context.Context, table string) (string, error) {
	if body, ok := a.eng.ViewSQL(table); ok {
		return body, nil
	}
	ns, name, _ := strings.Cut(table, ".")
	var def string
	err := a.eng.DB().QueryRowContext(ctx, "SELECT sql FROM duckdb_views() WHERE schema_name = $1 AND view_name = $2", ns, name).Scan(&def)
	if errors.Is(err, sql.ErrNoRows) {
		if err := a.eng.Refresh(ctx, table); err != nil {
			return "", err
		}
		err = a.eng.DB().QueryRowContext(ctx, "SELECT sql FROM duckdb_views() WHERE schema_name = $1 AND view_name = $2", ns, name).Scan(&def)
	}
	if err != nil {
		return "", fmt.Errorf("view of %s: %w", table, err)
	}
	i := strings.Index(def, " AS ")
	if i < 0 {
		return "", fmt.Errorf("view of %s: unexpected definition", table)
	}
	return strings.TrimSuffix(strings.TrimSpace(def[i+4:]), ";"), nil
}

// wrap applies the scope (row filter, suppression) to a table's source
// (a FROM item with its alias).
func (b *sandbox) wrap(table, from string) string {
	proj := "*"
	if k := b.scope.Suppress; k > 0 && !b.admin {
		var reps []string
		for _, c := range suppressed[table] {
			reps = append(reps, fmt.Sprintf("CASE WHEN %s < %d THEN NULL ELSE %s END AS %s", quoteIdent(c), k, quoteIdent(c), quoteIdent(c)))
		}
		if len(reps) > 0 {
			proj = "* REPLACE (" + strings.Join(reps, ", ") + ")"
		}
	}
	q := fmt.Sprintf("SELECT %s FROM %s", proj, from)
	if f, _ := b.scope.Allows(table); f != "" {
		q += " WHERE (" + f + ")"
	}
	return q
}

func (b *sandbox) refresh(ctx context.Context, table string, catalog bool) error {
	table = strings.ToLower(table)
	if !b.mayRead(table) {
		return nil
	}
	body, err := b.a.engineBody(ctx, table)
	if err != nil {
		return err
	}
	return b.refreshBody(ctx, table, body, catalog)
}

// refreshBody (re)creates a table's view over body, the engine's SELECT of it.
func (b *sandbox) refreshBody(ctx context.Context, table, body string, catalog bool) error {
	ns, name, _ := strings.Cut(table, ".")
	view := quoteIdent(ns) + "." + quoteIdent(name)
	stmts := []string{
		"CREATE SCHEMA IF NOT EXISTS " + quoteIdent(ns),
		fmt.Sprintf("CREATE OR REPLACE VIEW %s AS %s", view, b.wrap(table, "("+body+") AS "+quoteIdent(name))),
	}
	// Descriptions for tools that show them (psql \d+, DBeaver), set again
	// with the view (replacing it drops them), in one round trip.
	d := b.a.docs(ctx, table)
	if d.doc.ZH != "" {
		stmts = append(stmts, fmt.Sprintf("COMMENT ON VIEW %s IS %s", view, quoteString(d.doc.String())))
	}
	var cols []string
	for col, doc := range d.cols {
		// _cursor is a column of the tables the lake writers fill (raw.*) only.
		if doc.ZH != "" && (col != schemas.CursorField || ns == "raw") {
			cols = append(cols, fmt.Sprintf("COMMENT ON COLUMN %s.%s IS %s", view, quoteIdent(col), quoteString(doc.String())))
		}
	}
	sort.Strings(cols)
	if _, err := b.db.ExecContext(ctx, strings.Join(append(stmts, cols...), ";\n")); err != nil {
		if _, err := b.db.ExecContext(ctx, strings.Join(stmts[:2], ";\n")); err != nil {
			return fmt.Errorf("sandbox view %s: %w", table, err)
		}
		// A column the view lacks (schema drift): the comments one by one, failures harmless.
		for _, c := range append(stmts[2:], cols...) {
			b.db.ExecContext(ctx, c)
		}
	}
	b.mu.Lock()
	b.views[table] = true
	b.mu.Unlock()
	if catalog {
		return b.buildCatalog(ctx)
	}
	return nil
}

// atRE finds time-travel references (the engine's syntax).
var atRE = regexp.MustCompile(`(?i)\b([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\s+AT\s*\(\s*(VERSION|TIMESTAMP)\s*=>\s*('[^']*'|[0-9]+)\s*\)`)

// rewrite turns time-travel references into the files of the snapshot
// they name, and references whose filters rule out some of a table's files
// into a SELECT over the others (the engine's statement pruning), with the
// scope applied.
func (b *sandbox) rewrite(ctx context.Context, q string) (string, error) {
	q, err := b.a.eng.PruneStatement(ctx, q, func(table, from string) (string, bool) {
		if !b.visible(table) {
			return "", false
		}
		return b.wrap(table, from), true
	})
	if err != nil {
		return "", &Error{Code: "58030", Msg: err.Error(), err: err}
	}
	var rerr error
	out := atRE.ReplaceAllStringFunc(q, func(m string) string {
		if rerr != nil {
			return m
		}
		g := atRE.FindStringSubmatch(m)
		table := strings.ToLower(g[1] + "." + g[2])
		if !b.visible(table) {
			rerr = &Error{Code: "42501", err: ErrRefused, Msg: fmt.Sprintf("无权访问表 %s，或该表不存在 (table %s does not exist or is outside your scope)", table, table)}
			return m
		}
		src, err := b.a.eng.Rewrite(ctx, m)
		if err != nil {
			rerr = &Error{Code: "22023", Msg: err.Error(), err: err}
			return m
		}
		return "(" + b.wrap(table, src) + ") AS " + quoteIdent(g[2])
	})
	return out, rerr
}

// Session is one user's connection to their sandbox (a PostgreSQL wire
// connection, or one HTTP request). It is not safe for concurrent use.
type Session struct {
	a      *Access
	box    *sandbox
	conn   *sql.Conn
	User   auth.User
	Iface  string // pgwire | http
	Client string
	closed bool
}

// Open starts a session for an authenticated user.
func (a *Access) Open(ctx context.Context, u auth.User, iface, client string) (*Session, error) {
	b, err := a.box(ctx, u)
	if err != nil {
		return nil, err
	}
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	a.active.Add(1)
	return &Session{a: a, box: b, conn: conn, User: u, Iface: iface, Client: client}, nil
}

// Close releases the session's connection.
func (s *Session) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	s.a.active.Done()
	return s.conn.Close()
}

// StatementTimeout is the configured limit per statement.
func (s *Session) StatementTimeout() time.Duration { return s.a.cfg.StatementTimeout }

// Column is a result column; Type is nil when DuckDB's type has no
// driver description (an untyped NULL).
type Column struct {
	Name string
	Type duckdb.TypeInfo
}

// Stmt is a checked, prepared statement.
type Stmt struct {
	s      *Session
	SQL    string // as the user wrote it
	run    string // what DuckDB prepared (after the time-travel rewrite)
	raw    *duckdb.Stmt
	Empty  bool
	Params []duckdb.Type
	// Cols is the result's shape as prepared. When Deferred, DuckDB could
	// not bind the statement without its parameters' values (a catalog
	// query whose types depend on them) and Cols is nil: the shape is
	// known only once the statement runs (Rows.Columns) or is probed
	// (Shape).
	Cols     []Column
	Deferred bool
}

// Prepare checks q against the sandbox and prepares it. Refusals are
// audited here; executions when their rows are closed.
func (s *Session) Prepare(ctx context.Context, q string) (*Stmt, error) {
	return s.PrepareAs(ctx, q, q)
}

// PrepareAs is Prepare of q (what runs: a client's statement after the
// wire server's catalog rewrites) audited as orig (what the client sent).
func (s *Session) PrepareAs(ctx context.Context, orig, q string) (*Stmt, error) {
	st := &Stmt{s: s, SQL: orig}
	if strings.TrimSpace(strings.Trim(leadingRE.ReplaceAllString(q, ""), "; \t\r\n")) == "" {
		st.Empty = true
		return st, nil
	}
	// Constant expressions are folded while preparing: a statement can
	// run here as long as when it executes.
	ctx, cancel := context.WithTimeout(ctx, s.a.cfg.StatementTimeout)
	defer cancel()
	c := s.a.watch(s, orig)
	c.enter()
	defer s.a.unwatch(c)
	var err error
	if r, pos, ok := fullWidth(q); ok {
		err = fullWidthError(r, pos)
	}
	if err == nil {
		err = s.box.ensureCatalog(ctx, q)
	}
	if err == nil {
		err = guard(ctx, s.conn, s.box, q)
	}
	var rq string
	if err == nil {
		rq, err = s.box.rewrite(ctx, q)
	}
	if err == nil {
		err = s.conn.Raw(func(dc any) error {
			c, ok := dc.(*duckdb.Conn)
			if !ok {
				return fmt.Errorf("unexpected driver connection %T", dc)
			}
			ps, err := c.PrepareContext(ctx, rq)
			if err != nil {
				return err
			}
			st.raw = ps.(*duckdb.Stmt)
			st.run = rq
			return nil
		})
	}
	if err == nil {
		err = st.describe()
	}
	if err != nil {
		err = classify(ctx, err)
		s.audit(orig, time.Now(), 0, 0, err)
		if st.raw != nil {
			st.raw.Close()
		}
		return nil, err
	}
	return st, nil
}

func (st *Stmt) describe() error {
	n := st.raw.NumInput()
	for i := 1; i <= n; i++ {
		t, err := st.raw.ParamType(i)
		if err != nil {
			t = duckdb.TYPE_INVALID
		}
		st.Params = append(st.Params, t)
	}
	nc, err := st.raw.ColumnCount()
	if err != nil {
		return err
	}
	if t, _ := st.raw.ColumnType(0); nc == 1 && t == duckdb.TYPE_INVALID {
		// DuckDB reports one INVALID column when it must see the
		// parameters' values before it can bind the statement.
		st.Deferred = true
		return nil
	}
	for i := 0; i < nc; i++ {
		name, err := st.raw.ColumnName(i)
		if err != nil {
			return err
		}
		ti, err := st.raw.ColumnTypeInfo(i)
		if err != nil {
			ti = nil // a type the driver cannot describe (a bare NULL): sent as text
		}
		st.Cols = append(st.Cols, Column{Name: name, Type: ti})
	}
	return nil
}

// Close releases the prepared statement.
func (st *Stmt) Close() {
	if st.raw != nil {
		st.raw.Close()
		st.raw = nil
	}
}

// Rows is a running statement's result; Close ends it and audits it.
type Rows struct {
	st      *Stmt
	rows    driver.Rows
	cancel  context.CancelFunc
	ctx     context.Context
	start   time.Time
	n       int64
	err     error
	closed  bool // no rows to read (empty statement)
	done    bool
	call    *call // what the backstop watches
	Columns []Column
}

// Query runs the statement with args (nil for NULL), under the statement
// timeout. The context cancels it (a PostgreSQL CancelRequest, a closed
// HTTP connection).
func (st *Stmt) Query(ctx context.Context, args []any) (*Rows, error) {
	start := time.Now()
	if st.Empty {
		return &Rows{st: st, start: start, closed: true}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, st.s.a.cfg.StatementTimeout)
	named := make([]driver.NamedValue, len(args))
	for i, v := range args {
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	c := st.s.a.watch(st.s, st.SQL)
	c.enter()
	rows, err := st.raw.QueryContext(ctx, named)
	c.leave()
	if err != nil {
		st.s.a.unwatch(c)
		err = classify(ctx, err)
		cancel()
		st.s.audit(st.SQL, start, 0, time.Since(start), err)
		return nil, err
	}
	if st.Deferred {
		return &Rows{st: st, rows: rows, cancel: cancel, ctx: ctx, start: start, call: c, Columns: resultColumns(rows)}, nil
	}
	if got := len(rows.Columns()); got != len(st.Cols) {
		// DuckDB re-bound the statement to another shape (a catalog query
		// whose types depend on its parameters): refuse rather than read
		// a row into the wrong number of columns.
		rows.Close()
		cancel()
		st.s.a.unwatch(c)
		err := fmt.Errorf("statement returned %d columns where it was prepared with %d; run it without preparing / 语句结果列数与预备时不一致", got, len(st.Cols))
		st.s.audit(st.SQL, start, 0, time.Since(start), err)
		return nil, err
	}
	return &Rows{st: st, rows: rows, cancel: cancel, ctx: ctx, start: start, call: c, Columns: st.Cols}, nil
}

// Shape is the result's shape with args bound (nil for NULL), without
// reading any row: the statement runs under LIMIT 0. It is how a
// Deferred statement is described before it is executed; the column
// names and count hold for any arguments, the types only for arguments
// of the same types.
func (st *Stmt) Shape(ctx context.Context, args []any) ([]Column, error) {
	if !st.Deferred {
		return st.Cols, nil
	}
	ctx, cancel := context.WithTimeout(ctx, st.s.a.cfg.StatementTimeout)
	defer cancel()
	c := st.s.a.watch(st.s, st.SQL)
	c.enter()
	defer st.s.a.unwatch(c)
	body := strings.TrimRight(strings.TrimSpace(st.run), "; \t\r\n")
	q := "SELECT * FROM (\n" + body + "\n) AS shape LIMIT 0"
	var cols []Column
	err := st.s.conn.Raw(func(dc any) error {
		c, ok := dc.(*duckdb.Conn)
		if !ok {
			return fmt.Errorf("unexpected driver connection %T", dc)
		}
		ps, err := c.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer ps.Close()
		named := make([]driver.NamedValue, len(args))
		for i, v := range args {
			named[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
		}
		rows, err := ps.(*duckdb.Stmt).QueryContext(ctx, named)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols = resultColumns(rows)
		return nil
	})
	if err != nil {
		return nil, classify(ctx, err)
	}
	return cols, nil
}

// resultColumns is the shape of an executed result: its names, and its
// types read back from DuckDB's type names (the driver gives a result's
// types only as names).
func resultColumns(rows driver.Rows) []Column {
	names := rows.Columns()
	cols := make([]Column, len(names))
	tn, _ := rows.(driver.RowsColumnTypeDatabaseTypeName)
	for i, n := range names {
		cols[i].Name = n
		if tn != nil {
			cols[i].Type = typeFromName(tn.ColumnTypeDatabaseTypeName(i))
		}
	}
	return cols
}

// typeNames are DuckDB's names of its primitive types.
var typeNames = map[string]duckdb.Type{
	"BOOLEAN": duckdb.TYPE_BOOLEAN, "TINYINT": duckdb.TYPE_TINYINT, "SMALLINT": duckdb.TYPE_SMALLINT,
	"INTEGER": duckdb.TYPE_INTEGER, "BIGINT": duckdb.TYPE_BIGINT, "UTINYINT": duckdb.TYPE_UTINYINT,
	"USMALLINT": duckdb.TYPE_USMALLINT, "UINTEGER": duckdb.TYPE_UINTEGER, "UBIGINT": duckdb.TYPE_UBIGINT,
	"FLOAT": duckdb.TYPE_FLOAT, "DOUBLE": duckdb.TYPE_DOUBLE, "TIMESTAMP": duckdb.TYPE_TIMESTAMP,
	"DATE": duckdb.TYPE_DATE, "TIME": duckdb.TYPE_TIME, "INTERVAL": duckdb.TYPE_INTERVAL,
	"HUGEINT": duckdb.TYPE_HUGEINT, "UHUGEINT": duckdb.TYPE_UHUGEINT, "VARCHAR": duckdb.TYPE_VARCHAR,
	"BLOB": duckdb.TYPE_BLOB, "TIMESTAMP_S": duckdb.TYPE_TIMESTAMP_S, "TIMESTAMP_MS": duckdb.TYPE_TIMESTAMP_MS,
	"TIMESTAMP_NS": duckdb.TYPE_TIMESTAMP_NS, "UUID": duckdb.TYPE_UUID, "BIT": duckdb.TYPE_BIT,
	"TIMETZ": duckdb.TYPE_TIME_TZ, "TIMESTAMPTZ": duckdb.TYPE_TIMESTAMP_TZ,
	"ENUM": duckdb.TYPE_VARCHAR, // an ENUM's values are strings
}

var decimalNameRE = regexp.MustCompile(`^DECIMAL\((\d+),(\d+)\)$`)
var arrayNameRE = regexp.MustCompile(`^(.*)\[(\d*)\]$`)

// typeFromName reads a DuckDB type name back into a TypeInfo; nil for
// what has no description here (STRUCT, MAP, UNION, JSON, NULL), which
// is then sent as text.
func typeFromName(name string) duckdb.TypeInfo {
	if t, ok := typeNames[name]; ok {
		ti, _ := duckdb.NewTypeInfo(t)
		return ti
	}
	if m := decimalNameRE.FindStringSubmatch(name); m != nil {
		w, _ := strconv.Atoi(m[1])
		s, _ := strconv.Atoi(m[2])
		ti, _ := duckdb.NewDecimalInfo(uint8(w), uint8(s))
		return ti
	}
	if m := arrayNameRE.FindStringSubmatch(name); m != nil {
		child := typeFromName(m[1])
		if child == nil {
			return nil
		}
		if m[2] == "" {
			ti, _ := duckdb.NewListInfo(child)
			return ti
		}
		n, _ := strconv.ParseUint(m[2], 10, 64)
		ti, _ := duckdb.NewArrayInfo(child, n)
		return ti
	}
	return nil
}

// Next fills dest with the next row; io.EOF at the end.
func (r *Rows) Next(dest []driver.Value) error {
	if r.closed {
		return errEOF
	}
	r.call.enter()
	err := r.rows.Next(dest)
	r.call.leave()
	if err != nil {
		if err.Error() != "EOF" {
			r.err = classify(r.ctx, err)
			return r.err
		}
		return err
	}
	r.n++
	return nil
}

// Count is how many rows were read.
func (r *Rows) Count() int64 { return r.n }

// Close ends the statement and writes its audit entry; fail records an
// error that happened while sending the rows (nil: none).
func (r *Rows) Close(fail error) {
	if r.done {
		return
	}
	r.done = true
	if r.rows != nil {
		r.rows.Close()
		r.cancel()
	}
	r.st.s.a.unwatch(r.call)
	if r.st.Empty {
		return
	}
	err := r.err
	if err == nil {
		err = fail
	}
	r.st.s.audit(r.st.SQL, r.start, r.n, time.Since(r.start), err)
}

var errEOF = errors.New("EOF")

// ErrTimeout: the statement ran past its timeout (match with errors.Is).
var ErrTimeout = errors.New("statement timeout")

// classify gives DuckDB errors their SQLSTATE and explains timeouts.
func classify(ctx context.Context, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	msg := err.Error()
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &Error{Code: "57014", Msg: "查询超时 statement timeout: the query ran longer than sql_access.statement_timeout; narrow it (where, limit) or ask an admin", err: fmt.Errorf("%w: %w", ErrTimeout, err)}
	case errors.Is(ctx.Err(), context.Canceled) || strings.Contains(msg, "INTERRUPT") || strings.Contains(msg, "Interrupted"):
		return &Error{Code: "57014", Msg: "查询已取消 canceling statement due to user request", err: err}
	case strings.Contains(msg, "Permission Error") || strings.Contains(msg, "file system operations are disabled"):
		return &Error{Code: "42501", Msg: "拒绝执行 refused: 不能访问该文件 (file access outside your tables is not allowed): " + msg, err: ErrRefused}
	case strings.Contains(msg, errTooLarge):
		return &Error{Code: "53200", Msg: "内存不足 out of memory: " + msg, err: err}
	case strings.Contains(msg, "Out of Memory") || strings.Contains(msg, "memory limit"):
		return &Error{Code: "53200", Msg: "内存不足 out of memory: the query needs more than sql_access.memory_limit; aggregate or filter it: " + msg, err: err}
	case strings.Contains(msg, "Catalog Error") && strings.Contains(msg, "does not exist"):
		return &Error{Code: "42P01", Msg: msg + "\n提示 hint: select * from catalog.tables lists the tables you may query", err: err}
	case strings.Contains(msg, "Parser Error"):
		return &Error{Code: "42601", Msg: msg, err: err}
	case strings.Contains(msg, "Binder Error"):
		return &Error{Code: "42703", Msg: msg, err: err}
	case strings.Contains(msg, "Conversion Error") || strings.Contains(msg, "Invalid Input"):
		return &Error{Code: "22P02", Msg: msg, err: err}
	}
	return &Error{Code: "XX000", Msg: msg, err: err}
}

// AuditLogin records a failed or refused login (auth.Store.OnLoginFailure).
func (a *Access) AuditLogin(f auth.LoginFailure) {
	if a.Audit == nil {
		return
	}
	role, dept := "-", ""
	if u, ok := a.Users().Get(f.User); ok {
		role, dept = string(u.Role), u.Department
	}
	e := Entry{At: time.Now(), User: f.User, Role: role, Department: dept, Interface: f.Interface, Client: f.Addr,
		SQL: "-- login 登录", Outcome: "login_failed"}
	if f.Locked {
		e.Outcome = "login_locked"
	}
	if f.Err != nil {
		e.Error = f.Err.Error()
	}
	a.Audit.Add(e)
}

func (s *Session) audit(q string, start time.Time, rows int64, d time.Duration, err error) {
	if s.a.Audit == nil {
		return
	}
	e := Entry{At: start, User: s.User.Name, Role: string(s.User.Role), Department: s.User.Department,
		Interface: s.Iface, Client: s.Client, SQL: q, Rows: rows, Duration: d, Outcome: "ok"}
	if err != nil {
		e.Error = err.Error()
		var se *Error
		switch {
		case errors.Is(err, ErrRefused):
			e.Outcome = "refused"
		case errors.Is(err, ErrTimeout):
			e.Outcome = "timeout"
		case errors.As(err, &se) && se.Code == "57014":
			e.Outcome = "cancelled"
		case errors.As(err, &se) && se.Code == "53200":
			e.Outcome = "memory"
		default:
			e.Outcome = "error"
		}
	}
	s.a.Audit.Add(e)
}
