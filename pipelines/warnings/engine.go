package warnings

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/duckdb/duckdb-go/v2"

	"citybrain/schemas"
	"citybrain/warehouse"
)

// Batch is one micro-batch: decoded records per input schema, and the
// Kafka position after them (stored with the state in one transaction).
type Batch struct {
	Records map[string][]schemas.Record
	Offsets map[string]map[int]int64
}

// Rows counts the batch's records.
func (b Batch) Rows() int {
	n := 0
	for _, rs := range b.Records {
		n += len(rs)
	}
	return n
}

// Engine evaluates the rules on micro-batches and keeps the lifecycle. Its
// methods are safe for concurrent use (they are serialised).
type Engine struct {
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	rules *RuleSet
	// bulk are the bulk forms of the windowed inputs' rules (nil: catch up interval by interval; see bulk.go).
	bulk *bulkRules
	reg  *schemas.Registry

	mu sync.Mutex
	// ckMu serialises checkpoints (Checkpoint, snapshot): a snapshot copies
	// the file outside mu, and no checkpoint may rewrite it meanwhile.
	ckMu sync.Mutex
	db   *sql.DB
	// activeSnap is the active warnings as of the last batch (Active).
	activeSnap atomic.Pointer[[]Transition]
	conn       *sql.Conn
	// rconn reads the queues (outbox, notify_queue) while a batch is being
	// evaluated on conn: it sees committed rows only, and does not wait for
	// the batch, so the sink commits a batch's transitions to marts.warnings
	// while the next batch is evaluated.
	rmu   sync.Mutex
	rconn *sql.Conn
	// stmts caches prepared statements: planning the rules (their macros
	// expand into large expressions) costs more than running them.
	stmts   map[string]*sql.Stmt
	threads int
	lc      *lifecycle
	// staged: input → the DDL of its table in_<input>, created anew for each pass (see pass).
	staged map[string]string
	ph     Phases
	dirty  bool // batches committed since the last checkpoint
	// venueIDs are the ids of the venues table. The crowd_counts rules read
	// only the counts of venues (other sites are ignored by their first
	// statement), so the counts of other sites are not evaluated at all: for
	// a site with an interval per record (the real hourly sample of make run,
	// 6,576 hours) each would be a pass of the rules that changes nothing.
	venueIDs map[string]bool
	// unit is the engine's part of a partitioned engine (unit.go; zero: the whole engine).
	unit Unit
	// venueCells are the grid cells of venues (read by a district unit only).
	venueCells map[string]bool
	// path is the state's DuckDB file ("" in memory).
	path string
	// vf is the venues' fitted forecaster (venueforecast.go; nil: disabled).
	vf *venueForecaster
}

// Phases is the time spent per phase of Process (stage, in, state, rules,
// lifecycle, after, persist, commit).
func (e *Engine) Phases() *Phases { return &e.ph }

// Open opens (or creates) the engine's DuckDB file at path ("" = in memory,
// for back-tests) and loads the rules. now is the clock stamping
// transitions (time.Now in production).
func Open(ctx context.Context, cfg Config, path string, reg *schemas.Registry, log *slog.Logger, now func() time.Time) (*Engine, error) {
	return OpenUnit(ctx, cfg, path, reg, log, now, Unit{})
}

// OpenUnit opens the state of one unit of a partitioned engine (unit.go):
// only the unit's rules, its sequence numbered k, k+Count, ….
func OpenUnit(ctx context.Context, cfg Config, path string, reg *schemas.Registry, log *slog.Logger, now func() time.Time, unit Unit) (*Engine, error) {
	rules, err := LoadRules(cfg.RulesDir)
	if err != nil {
		return nil, err
	}
	bulk, err := loadBulkRules(cfg.RulesDir, rules)
	if err != nil {
		return nil, err
	}
	if err := unit.keepRules(reg, rules, bulk); err != nil {
		return nil, err
	}
	if path != "" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, fmt.Errorf("warnings state dir: %w", err)
		}
	}
	connector, err := duckdb.NewConnector(path, func(execer driver.ExecerContext) error {
		// Checkpoints: the runner checkpoints the state once no record has
		// arrived for idleCheckpoint (after each burst), so DuckDB's own
		// checkpoint at commit is pushed out to a 256 MB WAL (default 16 MB,
		// which at scale 100 fell on one batch in two or three and made its
		// commit cost 100–300 ms on the append-to-queryable path). The idle
		// checkpoint also vacuums the deleted rows of the per-cell tables, which
		// a much larger threshold without it left to slow their scans. A WAL
		// is durable either way; a restart replays at most 256 MB of it.
		for _, s := range []string{"SET TimeZone = 'UTC'", "SET memory_limit = '2GB'", "SET checkpoint_threshold = '256MB'"} {
			if _, err := execer.ExecContext(ctx, s, nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("预警状态库无法打开 open warnings state %s: %w", path, err)
	}
	db := sql.OpenDB(connector)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	rconn, err := db.Conn(ctx)
	if err != nil {
		conn.Close()
		db.Close()
		return nil, err
	}
	e := &Engine{cfg: cfg, log: log, now: now, rules: rules, bulk: bulk, reg: reg, db: db, conn: conn, rconn: rconn, staged: map[string]string{},
		lc: &lifecycle{lowerAfter: cfg.LowerAfter, now: now, active: map[string]*Active{}, changed: map[string]bool{}}, unit: unit, path: path}
	if unit.Partitioned() {
		e.lc.stride, e.lc.seq = int64(unit.Count), int64(unit.Index)
	}
	if cfg.Crowd.Forecaster.Enabled && cfg.Crowd.Interval > 0 {
		e.vf = newVenueForecaster(cfg.Crowd)
	}
	if err := e.init(ctx); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// prepared returns the cached prepared statement of q.
func (e *Engine) prepared(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := e.stmts[q]; ok {
		return st, nil
	}
	st, err := e.conn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if e.stmts == nil {
		e.stmts = map[string]*sql.Stmt{}
	}
	e.stmts[q] = st
	return st, nil
}

// execStmt runs a statement prepared once (DDL and transaction control run directly).
func (e *Engine) execStmt(ctx context.Context, q string, args ...any) (sql.Result, error) {
	head := strings.ToUpper(strings.TrimSpace(firstCode(q)))
	if !strings.HasPrefix(head, "DELETE") && !strings.HasPrefix(head, "INSERT INTO TEMP.") {
		// Statements that change state run unprepared: a reused prepared
		// INSERT … ON CONFLICT DO UPDATE corrupted rows in DuckDB 1.4.
		return e.conn.ExecContext(ctx, q, args...)
	}
	st, err := e.prepared(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// firstCode is the SQL after leading comment lines.
func firstCode(q string) string {
	for _, line := range strings.Split(q, "\n") {
		l := strings.TrimSpace(line)
		if l != "" && !strings.HasPrefix(l, "--") {
			return l
		}
	}
	return ""
}

// Close closes the state file.
func (e *Engine) Close() error {
	for _, st := range e.stmts {
		st.Close()
	}
	e.rconn.Close()
	e.conn.Close()
	return e.db.Close()
}

// Config is the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

func (e *Engine) exec(ctx context.Context, what string, stmts ...string) error {
	for _, s := range stmts {
		_, err := e.execStmt(ctx, s)
		if err != nil {
			return fmt.Errorf("%s: %w\n-- statement:\n%s", what, err, s)
		}
	}
	return nil
}

func (e *Engine) init(ctx context.Context) error {
	if err := e.exec(ctx, "规则 schema.sql", SplitStatements(e.rules.Schema)...); err != nil {
		return err
	}
	if err := e.exec(ctx, "params", e.paramsSQL()...); err != nil {
		return err
	}
	if err := e.loadVenueIDs(ctx); err != nil {
		return err
	}
	// Restore the lifecycle.
	rows, err := e.conn.QueryContext(ctx, "SELECT rule, subject_type, subject_id, state_json FROM active_warnings")
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var rule, st, id, js string
		if err := rows.Scan(&rule, &st, &id, &js); err != nil {
			return err
		}
		var a Active
		if err := json.Unmarshal([]byte(js), &a); err != nil {
			return fmt.Errorf("active warning %s/%s: %w", rule, id, err)
		}
		e.lc.active[rule+"|"+st+"|"+id] = &a
	}
	if err := rows.Err(); err != nil {
		return err
	}
	var seq sql.NullString
	if err := e.conn.QueryRowContext(ctx, "SELECT value FROM engine_meta WHERE key = 'seq'").Scan(&seq); err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if seq.Valid {
		fmt.Sscan(seq.String, &e.lc.seq)
	}
	return nil
}

func f(v float64) string { return fmt.Sprintf("CAST(%v AS DOUBLE)", v) }

// paramsSQL builds the one-row params table and the horizons table from the config.
func (e *Engine) paramsSQL() []string {
	c := e.cfg
	cr := c.Crowd
	ivl := cr.Interval.Minutes()
	rho := math.Pow(cr.PersistencePerHour, ivl/60)
	phi := math.Pow(cr.TrendDampingPerHour, ivl/60)
	cols := []string{
		f(float64(cr.SlotMinutes)) + " AS slot_min", fmt.Sprint(cr.TZOffsetMinutes) + " AS tz_offset_min",
		f(ivl) + " AS interval_min", fmt.Sprint(cr.BaselineMinSamples) + " AS min_n",
		f(float64(cr.BaselineMinPeople)) + " AS base_min_people", f(c.Hysteresis) + " AS hyst",
		f(rho) + " AS rho", f(phi) + " AS phi",
	}
	lv := func(prefix string, l Levels) {
		cols = append(cols, f(l.Blue)+" AS "+prefix+"_b", f(l.Yellow)+" AS "+prefix+"_y", f(l.Orange)+" AS "+prefix+"_o", f(l.Red)+" AS "+prefix+"_r")
	}
	lv("cd", cr.DensityPerM2)
	lv("cc", cr.CapacityRatio)
	lv("cb", cr.BaselineRatio)
	lv("cx", cr.ExcessRatio)
	for _, r := range []struct {
		p string
		l RainLevel
	}{{"rain_b", c.Rain.Blue}, {"rain_y", c.Rain.Yellow}, {"rain_o", c.Rain.Orange}, {"rain_r", c.Rain.Red}} {
		cols = append(cols, fmt.Sprintf("%d AS %s_h", r.l.Hours, r.p), f(r.l.MM)+" AS "+r.p+"_mm")
	}
	ll := c.Lifeline
	cols = append(cols, f(ll.PressureMinMPa)+" AS p_min", f(ll.PressureMaxMPa)+" AS p_max", f(ll.DropWindow.Minutes())+" AS drop_window_min")
	lv("oob", ll.OutOfBand)
	lv("drop", ll.Drop)
	lv("gas", ll.GasLEL)
	lv("wd", ll.WaterDepthM)
	tc := c.Traffic
	lv("ci", tc.CongestionIndex)
	lv("col", tc.Collisions)
	cols = append(cols, f(tc.CollisionWindow.Minutes())+" AS col_window_min", f(tc.CollisionCellDeg)+" AS col_cell_deg")
	hz := []string{"(0, 0.0)"}
	for _, h := range cr.Horizons {
		hz = append(hz, fmt.Sprintf("(%d, %v)", h, float64(h)/ivl))
	}
	return []string{
		"CREATE OR REPLACE TABLE params AS SELECT " + strings.Join(cols, ", "),
		"CREATE OR REPLACE TABLE horizons AS SELECT * FROM (VALUES " + strings.Join(hz, ", ") + ") t(horizon_min, k)",
	}
}

// Reference is the venue and grid reference data the crowd rules need.
type Reference struct {
	GridCells  []GridCell
	Venues     []Venue
	VenueCells []VenueCell
}

// GridCell is a row of raw.grid_cells.
type GridCell struct {
	ID, StreetCode string
	AreaM2         float64
}

// Venue is a row of raw.venues.
type Venue struct {
	ID, NameZh, NameEn, Kind string
	Capacity                 int64
	AreaM2                   float64
	StreetCode, Responsible  string
}

// VenueCell says a grid cell belongs to a venue (raw.venue_cells).
type VenueCell struct {
	VenueID, GridCellID string
	// Share of the cell's people counted for the venue (0 = 1, the whole cell).
	Share float64
}

// LoadReference replaces the reference tables.
func (e *Engine) LoadReference(ctx context.Context, ref Reference) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.exec(ctx, "reference", "BEGIN", "DELETE FROM grid_cells", "DELETE FROM venues", "DELETE FROM venue_cells"); err != nil {
		return err
	}
	err := e.appendRows(ctx, "main", "grid_cells", len(ref.GridCells), func(i int) []driver.Value {
		g := ref.GridCells[i]
		return []driver.Value{g.ID, nullStr(g.StreetCode), g.AreaM2}
	})
	if err == nil {
		err = e.appendRows(ctx, "main", "venues", len(ref.Venues), func(i int) []driver.Value {
			v := ref.Venues[i]
			return []driver.Value{v.ID, v.NameZh, nullStr(v.NameEn), nullStr(v.Kind), v.Capacity, v.AreaM2, nullStr(v.StreetCode), nullStr(v.Responsible)}
		})
	}
	if err == nil {
		err = e.appendRows(ctx, "main", "venue_cells", len(ref.VenueCells), func(i int) []driver.Value {
			vc := ref.VenueCells[i]
			share := vc.Share
			if share <= 0 {
				share = 1
			}
			return []driver.Value{vc.VenueID, vc.GridCellID, share}
		})
	}
	if err != nil {
		e.exec(ctx, "rollback", "ROLLBACK")
		return err
	}
	if err := e.exec(ctx, "reference", "COMMIT"); err != nil {
		return err
	}
	return e.loadVenueIDs(ctx)
}

// loadVenueIDs reads the venues' ids from the venues table.
func (e *Engine) loadVenueIDs(ctx context.Context) error {
	rows, err := e.conn.QueryContext(ctx, "SELECT venue_id FROM venues")
	if err != nil {
		return err
	}
	defer rows.Close()
	ids := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return err
		}
		ids[id] = true
	}
	if err := rows.Err(); err != nil {
		return err
	}
	e.venueIDs = ids
	if !e.unit.District() {
		return nil
	}
	crows, err := e.conn.QueryContext(ctx, "SELECT DISTINCT grid_cell_id FROM venue_cells")
	if err != nil {
		return err
	}
	defer crows.Close()
	cells := map[string]bool{}
	for crows.Next() {
		var id string
		if err := crows.Scan(&id); err != nil {
			return err
		}
		cells[id] = true
	}
	e.venueCells = cells
	return crows.Err()
}

// venueCounts keeps the crowd counts of sites that are venues.
func (e *Engine) venueCounts(s *schemas.Schema, recs []schemas.Record) []schemas.Record {
	si := s.Index("site_id")
	out := recs[:0:0]
	for _, r := range recs {
		if id, ok := r[si].(string); ok && e.venueIDs[id] {
			out = append(out, r)
		}
	}
	return out
}

func nullStr(s string) driver.Value {
	if s == "" {
		return nil
	}
	return s
}

func (e *Engine) appendRows(ctx context.Context, schema, table string, n int, row func(i int) []driver.Value) error {
	if n == 0 {
		return nil
	}
	return e.conn.Raw(func(dc any) error {
		a, err := duckdb.NewAppender(dc.(driver.Conn), "", schema, table)
		if err != nil {
			return fmt.Errorf("appender %s: %w", table, err)
		}
		for i := 0; i < n; i++ {
			if err := a.AppendRow(row(i)...); err != nil {
				a.Close()
				return fmt.Errorf("append %s: %w", table, err)
			}
		}
		return a.Close()
	})
}

func duckType(t schemas.Type) string {
	switch t {
	case schemas.Int, schemas.Long:
		return "BIGINT"
	case schemas.Double:
		return "DOUBLE"
	case schemas.Bool:
		return "BOOLEAN"
	case schemas.Timestamp:
		return "TIMESTAMP"
	case schemas.Date:
		return "DATE"
	}
	return "VARCHAR"
}

// ensureInput creates the temporary table in_<input> of an input (once).
func (e *Engine) ensureInput(ctx context.Context, s *schemas.Schema) error {
	if e.staged[s.Name] != "" {
		return nil
	}
	var cols []string
	for _, fd := range s.Fields {
		cols = append(cols, fmt.Sprintf("%q %s", fd.Name, duckType(fd.Type)))
	}
	ddl := fmt.Sprintf("CREATE OR REPLACE TEMP TABLE in_%s (%s)", s.Name, strings.Join(cols, ", "))
	if err := e.exec(ctx, "staging", ddl); err != nil {
		return err
	}
	e.staged[s.Name] = ddl
	return nil
}

// windowed inputs are evaluated one interval at a time, oldest first, with
// one row per key in each interval (the last one read wins; no key: every row,
// crowd_counts.state.sql keeps one per site) — or, for a batch of many
// intervals, all of them at once in bulk (bulk.go).
var windowed = map[string]struct{ Time, Key string }{
	"mobile_signal": {"window_start", "grid_cell_id"},
	"crowd_counts":  {"observed_at", ""},
}

// passes splits an input's records into the record sets evaluated one after
// the other: one per interval for windowed inputs, else all of them.
func passes(s *schemas.Schema, recs []schemas.Record) [][]schemas.Record {
	w, ok := windowed[s.Name]
	if !ok {
		return [][]schemas.Record{recs}
	}
	ti, ki := s.Index(w.Time), s.Index(w.Key)
	type slot struct {
		at   time.Time
		recs []schemas.Record
		pos  map[any]int
	}
	byTime := map[time.Time]*slot{}
	var order []*slot
	for _, r := range recs {
		at, ok := r[ti].(time.Time)
		if !ok || (ki >= 0 && r[ki] == nil) {
			continue
		}
		at = at.UTC()
		sl := byTime[at]
		if sl == nil {
			sl = &slot{at: at, pos: map[any]int{}}
			byTime[at] = sl
			order = append(order, sl)
		}
		if ki < 0 {
			sl.recs = append(sl.recs, r)
			continue
		}
		if i, dup := sl.pos[r[ki]]; dup {
			sl.recs[i] = r
			continue
		}
		sl.pos[r[ki]] = len(sl.recs)
		sl.recs = append(sl.recs, r)
	}
	sort.Slice(order, func(i, j int) bool { return order[i].at.Before(order[j].at) })
	out := make([][]schemas.Record, len(order))
	for i, sl := range order {
		out[i] = sl.recs
	}
	return out
}

// Memory is the state database's memory (read on a connection of its own,
// without waiting for a batch).
func (e *Engine) Memory(ctx context.Context) (map[string]int64, error) {
	n, err := warehouse.DuckDBMemory(ctx, e.db)
	if err != nil {
		return nil, err
	}
	return map[string]int64{"warnings": n}, nil
}

// Checkpoint writes the WAL into the state file if batches were committed
// since the last checkpoint. The runner calls it when no record has arrived
// for a while, so the cost stays off the append-to-queryable path.
func (e *Engine) Checkpoint(ctx context.Context) error {
	e.ckMu.Lock()
	defer e.ckMu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.dirty {
		return nil
	}
	t := time.Now()
	e.log.Debug("warnings state checkpoint")
	defer func() { e.log.Debug("warnings state checkpoint done", "took", time.Since(t)) }()
	if _, err := e.conn.ExecContext(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("预警状态库检查点失败 warnings state checkpoint: %w", err)
	}
	e.ph.Since("checkpoint", t)
	e.dirty = false
	return nil
}

// Process evaluates one micro-batch and returns the transitions it made.
// State, lifecycle, offsets, outbox and notification queue change in one
// transaction: either all of the batch is applied or none of it.
func (e *Engine) Process(ctx context.Context, b Batch) ([]Transition, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	defer e.publishActive()
	t0 := time.Now()
	defer func() { e.ph.Since("process", t0) }()
	schemaOf := map[string]*schemas.Schema{}
	for name, recs := range b.Records {
		if len(recs) == 0 {
			continue
		}
		s, err := e.reg.Get(name)
		if err != nil {
			return nil, err
		}
		if err := e.ensureInput(ctx, s); err != nil {
			return nil, err
		}
		schemaOf[name] = s
	}
	// Keep the lifecycle as it was in case the transaction fails.
	saved := map[string]Active{}
	for k, a := range e.lc.active {
		saved[k] = *a
	}
	savedSeq := e.lc.seq
	e.lc.changed = map[string]bool{}
	var out []Transition
	err := e.exec(ctx, "begin", "BEGIN")
	if err == nil {
		out, err = e.evaluate(ctx, b, schemaOf)
	}
	if err == nil {
		t := time.Now()
		err = e.persist(ctx, b, out)
		t = e.ph.Since("persist", t)
		if err == nil {
			err = e.exec(ctx, "commit", "COMMIT")
			e.ph.Since("commit", t)
			e.dirty = true
		}
	}
	if err != nil {
		e.exec(context.WithoutCancel(ctx), "rollback", "ROLLBACK")
		e.lc.active = map[string]*Active{}
		for k, a := range saved {
			a := a
			e.lc.active[k] = &a
		}
		e.lc.seq = savedSeq
		if e.vf != nil { // its models took the batch's counts: rebuilt from venue_count_history
			sync := e.vf.sync
			e.vf = newVenueForecaster(e.cfg.Crowd)
			e.vf.sync = sync
		}
		return nil, err
	}
	return out, nil
}

func (e *Engine) evaluate(ctx context.Context, b Batch, schemaOf map[string]*schemas.Schema) ([]Transition, error) {
	var out []Transition
	for _, in := range Inputs {
		s := schemaOf[in]
		if s == nil {
			continue
		}
		recs := b.Records[in]
		if in == "crowd_counts" {
			recs = e.venueCounts(s, recs)
		}
		if in == "mobile_signal" && e.unit.District() {
			recs = e.venueCellRecords(s, recs)
		}
		ps := passes(s, recs)
		if e.useBulk(in, len(ps)) {
			ts, err := e.bulkPass(ctx, s, ps)
			if err != nil {
				return nil, err
			}
			out = append(out, ts...)
			continue
		}
		for _, recs := range ps {
			ts, err := e.pass(ctx, s, recs)
			if err != nil {
				return nil, err
			}
			out = append(out, ts...)
		}
	}
	return out, nil
}

// pass loads one record set into in_<input>, then runs the input's state
// statements, rules and after statements.
func (e *Engine) pass(ctx context.Context, s *schemas.Schema, recs []schemas.Record) ([]Transition, error) {
	in := s.Name
	t := time.Now()
	// Small passes run on one thread (less scheduling than work); large ones on two.
	threads := 1
	if len(recs) >= 20000 {
		threads = 2
	}
	if threads != e.threads {
		if _, err := e.conn.ExecContext(ctx, fmt.Sprintf("SET threads = %d", threads)); err != nil {
			return nil, err
		}
		e.threads = threads
	}
	// The staging table is created anew, not emptied: a DELETE leaves the table's row count (which
	// the planner's estimates use) growing with every pass, and the joins of the state statements
	// then built their hash tables on the 262,144-row state instead of the few staged rows.
	if _, err := e.conn.ExecContext(ctx, e.staged[in]); err != nil {
		return nil, err
	}
	if err := e.stage(ctx, s, recs); err != nil {
		return nil, err
	}
	t = e.ph.Since("stage", t)
	for i, st := range e.rules.State[in] {
		if err := e.exec(ctx, "规则 rule "+in+".state.sql", st); err != nil {
			return nil, err
		}
		t = e.ph.Since(fmt.Sprintf("state.%s.%d", in, i+1), t)
	}
	if in == "crowd_counts" {
		if err := e.forecastVenues(ctx, venueForecastQuery("venue_count_in", "")); err != nil {
			return nil, err
		}
		t = e.ph.Since("forecast."+in, t)
	}
	var sigs []Signal
	names := make([]string, 0, len(e.rules.Rules[in]))
	for n := range e.rules.Rules[in] {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ss, err := e.signals(ctx, in+"."+n, e.rules.Rules[in][n])
		if err != nil {
			return nil, err
		}
		sigs = append(sigs, ss...)
	}
	t = e.ph.Since("rules", t)
	sort.SliceStable(sigs, func(i, j int) bool { return sigs[i].EventTime.Before(sigs[j].EventTime) })
	var out []Transition
	for i := range sigs {
		if t := e.lc.apply(&sigs[i]); t != nil {
			out = append(out, *t)
		}
	}
	if err := e.syncActive(ctx); err != nil {
		return nil, err
	}
	t = e.ph.Since("lifecycle", t)
	if err := e.exec(ctx, "规则 rule "+in+".after.sql", e.rules.After[in]...); err != nil {
		return nil, err
	}
	e.ph.Since("after", t)
	return out, nil
}

// stage appends records (times in UTC) to the input's staging table in_<input>.
func (e *Engine) stage(ctx context.Context, s *schemas.Schema, recs []schemas.Record) error {
	vals := make([]driver.Value, len(s.Fields))
	return e.appendRows(ctx, "main", "in_"+s.Name, len(recs), func(i int) []driver.Value {
		for j, v := range recs[i] {
			if t, ok := v.(time.Time); ok {
				v = t.UTC()
			}
			vals[j] = v
		}
		return vals
	})
}

// signals runs one rule and reads its rows by column name.
func (e *Engine) signals(ctx context.Context, rule, query string) ([]Signal, error) {
	st, err := e.prepared(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("规则执行失败 rule %s: %w (fix rules/%s.sql)", rule, err, rule)
	}
	rows, err := st.QueryContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("规则执行失败 rule %s: %w (fix rules/%s.sql)", rule, err, rule)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var out []Signal
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("rule %s: %w", rule, err)
		}
		s := Signal{Rule: rule}
		for i, c := range cols {
			v := vals[i]
			switch c {
			case "kind":
				s.Kind = str(v)
			case "metric":
				s.Metric = str(v)
			case "subject_type":
				s.SubjectType = str(v)
			case "subject_id":
				s.SubjectID = str(v)
			case "subject_name_zh":
				s.SubjectNameZh = str(v)
			case "subject_name_en":
				s.SubjectNameEn = str(v)
			case "street_code":
				s.StreetCode = str(v)
			case "responsible_unit":
				s.ResponsibleUnit = str(v)
			case "event_time":
				t, _ := v.(time.Time)
				s.EventTime = t.UTC()
			case "level":
				s.Level = int(num(v))
			case "hold_level":
				s.HoldLevel = int(num(v))
			case "predicted":
				s.Predicted, _ = v.(bool)
			case "horizon_min":
				s.HorizonMin = int(num(v))
			case "observed_value":
				s.Observed = numPtr(v)
			case "forecast_value":
				s.Forecast = numPtr(v)
			case "threshold":
				s.Threshold = numPtr(v)
			case "unit":
				s.Unit = str(v)
			case "people_count":
				if p := numPtr(v); p != nil {
					n := int64(*p)
					s.PeopleCount = &n
				}
			case "baseline_value":
				s.Baseline = numPtr(v)
			case "_only_if_active": // bulk rules (bulk.go)
				s.onlyIfActive, _ = v.(bool)
			default:
				if v != nil {
					if s.Details == nil {
						s.Details = map[string]any{}
					}
					if p := numPtr(v); p != nil {
						s.Details[c] = *p
					} else {
						s.Details[c] = v
					}
				}
			}
		}
		if s.Kind == "" || s.SubjectID == "" || s.EventTime.IsZero() {
			return nil, fmt.Errorf("rule %s: a row lacks kind, subject_id or event_time (every rule must return them)", rule)
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

func num(v any) float64 {
	if p := numPtr(v); p != nil {
		return *p
	}
	return 0
}

func numPtr(v any) *float64 {
	var x float64
	switch n := v.(type) {
	case float64:
		x = n
	case float32:
		x = float64(n)
	case int64:
		x = float64(n)
	case int32:
		x = float64(n)
	case int:
		x = float64(n)
	case int16:
		x = float64(n)
	case int8:
		x = float64(n)
	case uint64:
		x = float64(n)
	case uint32:
		x = float64(n)
	case duckdb.Decimal:
		x = n.Float64()
	case *big.Int:
		x, _ = new(big.Float).SetInt(n).Float64()
	default:
		return nil
	}
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return nil
	}
	return &x
}

// syncActive writes the lifecycle changes of the pass to active_warnings.
// One DELETE for every changed key and one append of the open ones: a
// statement per key cost a pass ~15 ms at the live edge.
func (e *Engine) syncActive(ctx context.Context) error {
	if len(e.lc.changed) == 0 {
		return nil
	}
	keys := make([]string, 0, len(e.lc.changed))
	var open [][]driver.Value
	for k := range e.lc.changed {
		keys = append(keys, "'"+strings.ReplaceAll(k, "'", "''")+"'")
		if a, ok := e.lc.active[k]; ok {
			parts := strings.SplitN(k, "|", 3)
			js, _ := json.Marshal(a)
			open = append(open, []driver.Value{parts[0], parts[1], parts[2], string(js)})
		}
	}
	if _, err := e.conn.ExecContext(ctx, "DELETE FROM active_warnings WHERE rule || '|' || subject_type || '|' || subject_id IN ("+strings.Join(keys, ", ")+")"); err != nil {
		return err
	}
	if err := e.appendRows(ctx, "main", "active_warnings", len(open), func(i int) []driver.Value { return open[i] }); err != nil {
		return err
	}
	e.lc.changed = map[string]bool{}
	return nil
}

// persist stores offsets, the sequence, the outbox and the notification queue.
func (e *Engine) persist(ctx context.Context, b Batch, out []Transition) error {
	for topic, ps := range b.Offsets {
		for p, o := range ps {
			if _, err := e.conn.ExecContext(ctx, "INSERT OR REPLACE INTO engine_offsets VALUES (?, ?, ?)", topic, p, o); err != nil {
				return err
			}
		}
	}
	if _, err := e.conn.ExecContext(ctx, "INSERT OR REPLACE INTO engine_meta VALUES ('seq', ?)", fmt.Sprint(e.lc.seq)); err != nil {
		return err
	}
	if len(out) == 0 {
		return nil
	}
	notify := len(e.cfg.Webhooks) > 0
	if err := e.appendRows(ctx, "main", "outbox", len(out), func(i int) []driver.Value {
		js, _ := json.Marshal(out[i])
		return []driver.Value{out[i].Seq, string(js)}
	}); err != nil {
		return err
	}
	if notify {
		return e.appendRows(ctx, "main", "notify_queue", len(out), func(i int) []driver.Value {
			js, _ := json.Marshal(out[i])
			return []driver.Value{out[i].Seq, string(js)}
		})
	}
	return nil
}

// Offsets is the stored Kafka position: topic → partition → next offset.
func (e *Engine) Offsets(ctx context.Context) (map[string]map[int]int64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rows, err := e.conn.QueryContext(ctx, "SELECT topic, part, next_offset FROM engine_offsets")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]map[int]int64{}
	for rows.Next() {
		var t string
		var p int
		var o int64
		if err := rows.Scan(&t, &p, &o); err != nil {
			return nil, err
		}
		if out[t] == nil {
			out[t] = map[int]int64{}
		}
		out[t][p] = o
	}
	return out, rows.Err()
}

// Active returns the last transition of every active warning, most severe first.
//
// It does not wait for the batch under way: the list is the one published
// after the last batch (GET /api/warnings used to wait for whole catch-up
// batches, minutes under load).
func (e *Engine) Active() []Transition {
	p := e.activeSnap.Load()
	if p == nil {
		e.mu.Lock()
		e.publishActive()
		e.mu.Unlock()
		p = e.activeSnap.Load()
	}
	return append(make([]Transition, 0, len(*p)), (*p)...)
}

// publishActive publishes the active warnings for Active; e.mu is held.
func (e *Engine) publishActive() {
	out := make([]Transition, 0, len(e.lc.active))
	for _, a := range e.lc.active {
		out = append(out, a.Last)
	}
	sort.Slice(out, func(i, j int) bool {
		li, lj := LevelOf(out[i].Level), LevelOf(out[j].Level)
		if li != lj {
			return li > lj
		}
		return out[i].Seq > out[j].Seq
	})
	e.activeSnap.Store(&out)
}

// queue reads pending transitions of a queue table (outbox or notify_queue) in seq order.
// It reads committed rows on its own connection, without waiting for the batch under way.
func (e *Engine) queue(ctx context.Context, table string, limit int) ([]Transition, error) {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	rows, err := e.rconn.QueryContext(ctx, fmt.Sprintf("SELECT json FROM %s ORDER BY seq LIMIT %d", table, limit))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Transition
	for rows.Next() {
		var js string
		if err := rows.Scan(&js); err != nil {
			return nil, err
		}
		var t Transition
		if err := json.Unmarshal([]byte(js), &t); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (e *Engine) dequeue(ctx context.Context, table string, upTo int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.conn.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE seq <= ?", table), upTo)
	return err
}

func (e *Engine) dequeueOne(ctx context.Context, table string, seq int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, err := e.conn.ExecContext(ctx, fmt.Sprintf("DELETE FROM %s WHERE seq = ?", table), seq)
	return err
}

// Query runs a read query on the engine's state (for tests and the CLI).
func (e *Engine) Query(ctx context.Context, q string, args ...any) ([][]any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rows, err := e.conn.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out [][]any
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		out = append(out, vals)
	}
	return out, rows.Err()
}

// Rules is the loaded rule set.
func (e *Engine) Rules() *RuleSet { return e.rules }
