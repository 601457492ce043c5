package models

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/duckdb/duckdb-go/v2"

	"citybrain/schemas"
	"citybrain/warehouse"
)

// MartsNamespace is where table and incremental models are materialised.
const MartsNamespace = "marts"

// RunsTable records every model run: inputs' snapshots, vars, outputs.
const RunsTable = "marts.model_runs"

// Summary keys a model's snapshots carry.
const (
	SummaryModel  = "citybrain.model"
	SummaryRunID  = "citybrain.run_id"
	SummaryInputs = "citybrain.inputs"
	SummaryVars   = "citybrain.vars"
)

// Runner runs a project's models over the lake.
type Runner struct {
	Lake    *warehouse.Lake
	Project *Project
	Log     *slog.Logger
	// Progress receives one line per model (nil: silent).
	Progress io.Writer
	// Threads and MemoryLimit tune the runner's DuckDB (0 / "": DuckDB's defaults).
	Threads     int
	MemoryLimit string
	// Now is the clock (as_of_date defaults to its date in Asia/Shanghai).
	Now func() time.Time
	// OnCommit is called after each lake commit (serve publishes it).
	OnCommit func(table string, snapshot int64)
	// OnView is called with each view model's rendered SQL (serve creates
	// the view in the query layer).
	OnView func(name, sql string)

	// onRetry is told of each commit retried after a conflict (tests).
	onRetry func(table string, attempt int)
}

// commitRetries is how often a commit that lost a race to another writer
// of the same table (`citybrain models run` while serve runs the models,
// two serves on one catalog) is retried before the model fails.
var commitRetries = 8

// RunOptions choose what a run does.
type RunOptions struct {
	// Select are dbt-style selectors (model, model+, +model); none: all.
	Select []string
	// FullRefresh rebuilds incremental models from scratch.
	FullRefresh bool
	// Vars override the project's vars (as_of_date, start_date …).
	Vars map[string]any
	// Inputs pin tables (raw.* sources, marts.* models not run) to
	// snapshots; the rest are read at their current snapshot.
	Inputs map[string]int64
	// DryRun computes without committing to the lake or recording the run.
	DryRun bool
	// RunID names the run (default: generated).
	RunID string

	reproduce bool
}

// ModelResult is one model's outcome in a run.
type ModelResult struct {
	Model        string
	Materialized string
	// Status is ok, error or skipped (an input failed).
	Status   string
	Rows     int64
	Snapshot int64
	// Incremental tells whether the model ran incrementally.
	Incremental bool
	Took        time.Duration
	// Compute is the time DuckDB spent building the model's table; Write
	// the time spent writing its Parquet files, Commit the Iceberg commit
	// (Took also holds setting up views and the run's bookkeeping).
	Compute, Write, Commit time.Duration
	Err                    error
}

// RunReport is what a run did.
type RunReport struct {
	RunID    string
	Started  time.Time
	Finished time.Time
	// Inputs are the snapshots read, per table (0: the table was missing).
	Inputs map[string]int64
	Vars   map[string]any
	Models []ModelResult
}

// Err joins the failed models' errors.
func (r *RunReport) Err() error {
	var errs []error
	for _, m := range r.Models {
		if m.Err != nil {
			errs = append(errs, m.Err)
		}
	}
	return errors.Join(errs...)
}

// session is one run's DuckDB and what it has set up.
type session struct {
	r      *Runner
	db     *sql.DB
	conn   *duckdb.Connector
	inputs map[string]int64
	pins   map[string]int64
	viewed map[string]bool
	// readers counts, per model, the models of this run that read it.
	readers map[string]int
}

func (r *Runner) open(ctx context.Context, pins map[string]int64) (*session, error) {
	connector, err := duckdb.NewConnector("", func(execer driver.ExecerContext) error {
		// Row order of model outputs carries no meaning (reproduction
		// compares them as multisets), and without it DuckDB builds and
		// writes tables in parallel.
		stmts := []string{"SET TimeZone = 'Asia/Shanghai'", "SET preserve_insertion_order = false"}
		if r.MemoryLimit != "" {
			stmts = append(stmts, fmt.Sprintf("SET memory_limit = '%s'", strings.ReplaceAll(r.MemoryLimit, "'", "")))
		}
		if r.Threads > 0 {
			stmts = append(stmts, fmt.Sprintf("SET threads = %d", r.Threads))
		}
		for _, s := range stmts {
			if _, err := execer.ExecContext(ctx, s, nil); err != nil {
				return fmt.Errorf("duckdb %q: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	s := &session{r: r, db: sql.OpenDB(connector), conn: connector, inputs: map[string]int64{}, pins: pins, viewed: map[string]bool{}}
	if s.pins == nil {
		s.pins = map[string]int64{}
	}
	for _, ns := range []string{"raw", MartsNamespace} {
		if _, err := s.db.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+ns); err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func (s *session) close() {
	s.db.Close()
	s.conn.Close()
}

func (s *session) exec(ctx context.Context, q string) error {
	_, err := s.db.ExecContext(ctx, q)
	return err
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

var shanghai = func() *time.Location {
	l, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return l
}()

// vars is the project's vars overlaid with opts', with as_of_date defaulted.
func (r *Runner) vars(over map[string]any) map[string]any {
	v := map[string]any{}
	for k, x := range r.Project.Vars {
		v[k] = x
	}
	for k, x := range over {
		v[k] = x
	}
	if s, _ := v["as_of_date"].(string); s == "" {
		v["as_of_date"] = r.now().In(shanghai).Format(time.DateOnly)
	}
	return v
}

// lakeView (re)creates the runner's view of a lake table, at its pinned
// snapshot or the current one, and records the snapshot read. A missing
// table is an empty view with the columns of its canonical schema or its
// declared source columns; with neither it is an error.
func (s *session) lakeView(ctx context.Context, name string, declared []SourceColumn) error {
	if s.viewed[name] {
		return nil
	}
	ident := warehouse.Ident(name)
	t, err := s.r.Lake.Load(ctx, name)
	var q string
	switch {
	case errors.Is(err, warehouse.ErrNoTable):
		q, err = emptySelect(name, declared)
		if err != nil {
			return err
		}
		s.inputs[name] = 0
	case err != nil:
		return err
	default:
		snap := t.CurrentSnapshot()
		if id, ok := s.pins[name]; ok {
			if id == 0 {
				snap = nil
			} else if snap = t.SnapshotByID(id); snap == nil {
				return fmt.Errorf("%s has no snapshot %d any more (expired?); 快照已不存在", name, id)
			}
		}
		if snap == nil {
			if q, err = emptyOf(t.Schema()); err != nil {
				return err
			}
			s.inputs[name] = 0
		} else {
			if q, err = s.r.Lake.SnapshotSQL(ctx, t, snap); err != nil {
				return err
			}
			s.inputs[name] = snap.SnapshotID
		}
	}
	if err := s.exec(ctx, fmt.Sprintf("CREATE SCHEMA IF NOT EXISTS %s; DROP VIEW IF EXISTS %s.%s; DROP TABLE IF EXISTS %s.%s; CREATE VIEW %s.%s AS %s",
		quoteIdent(ident[0]), quoteIdent(ident[0]), quoteIdent(ident[1]), quoteIdent(ident[0]), quoteIdent(ident[1]), quoteIdent(ident[0]), quoteIdent(ident[1]), q)); err != nil {
		return fmt.Errorf("view of %s: %w", name, err)
	}
	s.viewed[name] = true
	return nil
}

func emptySelect(name string, declared []SourceColumn) (string, error) {
	if reg, err := schemas.Builtin(); err == nil {
		for _, n := range reg.Names() {
			sc, err := reg.Get(n)
			if err == nil && sc.Table == name {
				return emptyOf(sc.IcebergSchema())
			}
		}
	}
	if len(declared) > 0 {
		cols := make([]string, len(declared))
		for i, c := range declared {
			typ := c.Type
			if typ == "" {
				typ = "VARCHAR"
			}
			cols[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", typ, quoteIdent(c.Name))
		}
		return "SELECT " + strings.Join(cols, ", ") + " WHERE false", nil
	}
	return "", fmt.Errorf("%s does not exist in the lake and has no schema to stand in for it (load it first) / 数据表不存在", name)
}

func emptyOf(sc *iceberg.Schema) (string, error) {
	var cols []string
	for _, f := range sc.Fields() {
		cols = append(cols, fmt.Sprintf("CAST(NULL AS %s) AS %s", warehouse.DuckType(f.Type), quoteIdent(f.Name)))
	}
	if len(cols) == 0 {
		return "", fmt.Errorf("empty schema")
	}
	return "SELECT " + strings.Join(cols, ", ") + " WHERE false", nil
}

func quoteIdent(s string) string  { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
func quoteString(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

func newRunID(now time.Time) string {
	b := make([]byte, 3)
	rand.Read(b)
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

// Run runs the selected models in dependency order. A failing model is
// reported with its name and its downstream models are skipped; the others
// still run. The run (inputs' snapshots, vars, outputs) is recorded in
// marts.model_runs unless DryRun.
func (r *Runner) Run(ctx context.Context, opts RunOptions) (*RunReport, error) {
	names, err := r.Project.Select(opts.Select)
	if err != nil {
		return nil, err
	}
	rep := &RunReport{RunID: opts.RunID, Started: r.now(), Vars: r.vars(opts.Vars)}
	if rep.RunID == "" {
		rep.RunID = newRunID(rep.Started)
	}
	s, err := r.open(ctx, opts.Inputs)
	if err != nil {
		return nil, err
	}
	defer s.close()
	if err := r.runModels(ctx, s, names, opts, rep); err != nil {
		return rep, err
	}
	rep.Finished = r.now()
	rep.Inputs = s.inputs
	if !opts.DryRun {
		if err := r.record(ctx, s, rep); err != nil {
			return rep, err
		}
	}
	return rep, rep.Err()
}

func (r *Runner) runModels(ctx context.Context, s *session, names []string, opts RunOptions, rep *RunReport) error {
	selected := map[string]bool{}
	for _, n := range names {
		selected[n] = true
	}
	s.readers = map[string]int{}
	for _, n := range names {
		for _, ref := range r.Project.Models[n].Refs {
			s.readers[ref]++
		}
	}
	failed := map[string]bool{}
	// Sources and not-selected models are read from the lake.
	for _, n := range names {
		m := r.Project.Models[n]
		for _, src := range m.SourceRefs {
			if err := s.lakeView(ctx, src, r.Project.Sources[src].Columns); err != nil {
				return fmt.Errorf("source %s (model %s): %w", src, n, err)
			}
		}
		for _, ref := range m.Refs {
			if !selected[ref] {
				if err := r.ensureInput(ctx, s, ref, rep.Vars); err != nil {
					return fmt.Errorf("model %s reads %s, which is not selected: %w (run it first or select +%s)", n, ref, err, n)
				}
			}
		}
	}
	for i, n := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := r.Project.Models[n]
		res := ModelResult{Model: n, Materialized: m.Config.Materialized}
		for _, ref := range m.Refs {
			if failed[ref] {
				res.Status = "skipped"
				res.Err = fmt.Errorf("%w: model %s skipped: its input %s failed / 上游模型失败，已跳过", ErrModelFailed, n, ref)
			}
		}
		start := time.Now()
		if res.Status == "" {
			err := r.runModel(ctx, s, m, opts, rep, &res)
			res.Status = "ok"
			if err != nil {
				res.Status = "error"
				res.Err = fmt.Errorf("%w: model %s (%s): %v", ErrModelFailed, n, m.Path, err)
			}
		}
		res.Took = time.Since(start)
		if res.Err != nil {
			failed[n] = true
		}
		rep.Models = append(rep.Models, res)
		r.progress(i+1, len(names), res)
	}
	return nil
}

func (r *Runner) progress(i, n int, res ModelResult) {
	lvl := slog.LevelInfo
	if res.Err != nil {
		lvl = slog.LevelError
	}
	r.log().Log(context.Background(), lvl, "model run", "model", res.Model, "status", res.Status, "rows", res.Rows, "snapshot", res.Snapshot, "took", res.Took.Round(time.Millisecond), "err", res.Err)
	if r.Progress == nil {
		return
	}
	status := map[string]string{"ok": "OK 完成", "error": "ERROR 失败", "skipped": "SKIP 跳过"}[res.Status]
	mat := res.Materialized
	if res.Incremental {
		mat += " (incremental 增量)"
	}
	line := fmt.Sprintf("%2d/%d %-10s %-28s %-26s", i, n, status, MartsNamespace+"."+res.Model, mat)
	if res.Status == "ok" && res.Materialized != "view" {
		line += fmt.Sprintf(" %9d rows", res.Rows)
	}
	line += fmt.Sprintf(" %8s", res.Took.Round(time.Millisecond))
	if res.Status == "ok" && res.Materialized != "view" {
		line += fmt.Sprintf("  (sql %s, write %s, commit %s)", res.Compute.Round(time.Millisecond), res.Write.Round(time.Millisecond), res.Commit.Round(time.Millisecond))
	}
	fmt.Fprintln(r.Progress, line)
	if res.Err != nil && res.Status == "error" {
		fmt.Fprintf(r.Progress, "      %v\n", res.Err)
	}
}

// render renders a model's SQL for this session.
func (r *Runner) render(m *Model, vars map[string]any, incremental bool) (string, error) {
	rc := &renderCtx{
		ref: func(name string) (string, error) {
			return MartsNamespace + "." + quoteIdent(name), nil
		},
		source: func(src, tbl string) (string, error) {
			return quoteIdent(src) + "." + quoteIdent(tbl), nil
		},
		this:        MartsNamespace + "." + quoteIdent(m.Name),
		vars:        vars,
		incremental: incremental,
	}
	out, err := render(m.tpl, rc)
	if err != nil {
		return "", fmt.Errorf("%s: %w", m.Path, err)
	}
	return strings.TrimRight(strings.TrimSpace(out), ";"), nil
}

func (r *Runner) runModel(ctx context.Context, s *session, m *Model, opts RunOptions, rep *RunReport, res *ModelResult) error {
	full := MartsNamespace + "." + m.Name
	qname := MartsNamespace + "." + quoteIdent(m.Name)
	incremental := false
	if m.Config.Materialized == "incremental" && !opts.FullRefresh {
		if opts.reproduce {
			// As the recorded run did: incremental iff it read its own
			// previous state.
			incremental = s.pins[full] != 0
		} else if t, err := r.Lake.Load(ctx, full); err == nil && t.CurrentSnapshot() != nil {
			incremental = true
		}
		if incremental {
			if err := s.lakeView(ctx, full, nil); err != nil {
				return err
			}
			s.inputs["this:"+full] = s.inputs[full]
		}
	}
	res.Incremental = incremental
	q, err := r.render(m, rep.Vars, incremental)
	if err != nil {
		return err
	}
	drop := fmt.Sprintf("DROP VIEW IF EXISTS %s; DROP TABLE IF EXISTS %s; ", qname, qname)
	switch m.Config.Materialized {
	case "view":
		// A view read by two or more models of this run is computed once,
		// into a table of the run's DuckDB (the inputs are pinned for the
		// whole run, so it cannot change meanwhile); the lake and the
		// query layer still get a view.
		kind := "VIEW"
		if s.readers[m.Name] >= 2 {
			kind = "TABLE"
		}
		start := time.Now()
		if err := s.exec(ctx, drop+fmt.Sprintf("CREATE %s %s AS %s", kind, qname, q)); err != nil {
			return err
		}
		res.Compute = time.Since(start)
		if r.OnView != nil && !opts.DryRun {
			r.OnView(full, q)
		}
		s.viewed[full] = true
		return nil
	case "table":
		start := time.Now()
		if err := s.exec(ctx, drop+fmt.Sprintf("CREATE TABLE %s AS %s", qname, q)); err != nil {
			return err
		}
		res.Compute = time.Since(start)
		s.viewed[full] = true
		return r.commit(ctx, s, m, rep, res, warehouse.MaterializeSpec{Table: full, Mode: warehouse.MaterializeReplace,
			Query: "SELECT * FROM " + qname, Doc: m.Doc.String(), Reread: true}, opts.DryRun)
	}
	// incremental
	key := m.partitionKey()
	newT := MartsNamespace + "." + quoteIdent(m.Name+"__new")
	start := time.Now()
	if err := s.exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s; CREATE TABLE %s AS %s", newT, newT, q)); err != nil {
		return err
	}
	res.Compute = time.Since(start)
	defer s.exec(context.WithoutCancel(ctx), "DROP TABLE IF EXISTS "+newT)
	spec := warehouse.MaterializeSpec{Table: full, Mode: warehouse.MaterializeReplace, PartitionBy: key,
		Query: "SELECT * FROM " + newT, Doc: m.Doc.String(), Reread: true}
	// The session's copy of the model becomes what the lake will hold, for
	// downstream models and for comparison when reproducing.
	if incremental {
		spec.Mode = warehouse.MaterializeOverwritePartitions
		merged := fmt.Sprintf("SELECT * FROM %s WHERE %s NOT IN (SELECT DISTINCT %s FROM %s WHERE %s IS NOT NULL) UNION ALL BY NAME SELECT * FROM %s",
			qname, quoteIdent(key), quoteIdent(key), newT, quoteIdent(key), newT)
		tmp := MartsNamespace + "." + quoteIdent(m.Name+"__merged")
		if err := s.exec(ctx, fmt.Sprintf("DROP TABLE IF EXISTS %s; CREATE TABLE %s AS %s; %s ALTER TABLE %s RENAME TO %s",
			tmp, tmp, merged, drop, tmp, quoteIdent(m.Name))); err != nil {
			return err
		}
	} else {
		// A full build: the new rows are the model (no copy).
		if err := s.exec(ctx, fmt.Sprintf("%s ALTER TABLE %s RENAME TO %s", drop, newT, quoteIdent(m.Name))); err != nil {
			return err
		}
		spec.Query = "SELECT * FROM " + qname
	}
	s.viewed[full] = true
	return r.commit(ctx, s, m, rep, res, spec, opts.DryRun)
}

func (r *Runner) commit(ctx context.Context, s *session, m *Model, rep *RunReport, res *ModelResult, spec warehouse.MaterializeSpec, dry bool) error {
	if dry {
		var n int64
		if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM ("+spec.Query+")").Scan(&n); err != nil {
			return err
		}
		res.Rows = n
		return nil
	}
	inputs := r.modelInputs(s, m)
	ib, _ := json.Marshal(inputs)
	vb, _ := json.Marshal(rep.Vars)
	spec.Summary = map[string]string{SummaryModel: m.Name, SummaryRunID: rep.RunID, SummaryInputs: string(ib), SummaryVars: string(vb)}
	mr, err := r.materialize(ctx, s, spec)
	if err != nil {
		return err
	}
	res.Rows, res.Snapshot = mr.Rows, mr.SnapshotID
	res.Write, res.Commit = mr.Write, mr.Commit
	if mr.SnapshotID == 0 {
		if t, err := r.Lake.Load(ctx, spec.Table); err == nil && t.CurrentSnapshot() != nil {
			res.Snapshot = t.CurrentSnapshot().SnapshotID
		}
	}
	if r.OnCommit != nil {
		// Also without a new snapshot: the table may just have been created.
		r.OnCommit(spec.Table, res.Snapshot)
	}
	return nil
}

// materialize commits spec, again on a commit conflict: another writer
// committed the table between this one's read of it and its commit, and
// nothing of this attempt was kept (its files are removed). The rows are in
// the session's DuckDB, so a retry only rewrites them against the table's
// new snapshot: a replace still replaces everything, a partition overwrite
// the partitions this run computed, an append adds to the other's rows.
func (r *Runner) materialize(ctx context.Context, s *session, spec warehouse.MaterializeSpec) (warehouse.MaterializeResult, error) {
	for attempt := 1; ; attempt++ {
		mr, err := r.Lake.Materialize(ctx, s.db, spec)
		if err == nil || !errors.Is(err, warehouse.ErrConflict) || attempt > commitRetries {
			if err != nil && errors.Is(err, warehouse.ErrConflict) {
				err = fmt.Errorf("%w (another writer kept committing %s: is a second citybrain serve running on this lake? / 其他进程持续写入同一表)", err, spec.Table)
			}
			return mr, err
		}
		r.log().Info("commit conflict: another writer committed first, retrying / 提交冲突，重试", "table", spec.Table, "attempt", attempt)
		if r.onRetry != nil {
			r.onRetry(spec.Table, attempt)
		}
		// Back off a little, more each time, with jitter so two runners
		// do not collide in lockstep.
		d := time.Duration(attempt*attempt)*20*time.Millisecond + time.Duration(mrand.Int64N(int64(30*time.Millisecond)))
		select {
		case <-ctx.Done():
			return mr, ctx.Err()
		case <-time.After(d):
		}
	}
}

// modelInputs are the snapshots of the lake tables a model read (sources,
// models not run in this session, its own previous snapshot).
func (r *Runner) modelInputs(s *session, m *Model) map[string]int64 {
	out := map[string]int64{}
	for _, src := range m.SourceRefs {
		out[src] = s.inputs[src]
	}
	for _, ref := range m.Refs {
		if id, ok := s.inputs[MartsNamespace+"."+ref]; ok {
			out[MartsNamespace+"."+ref] = id
		}
	}
	if id, ok := s.inputs["this:"+MartsNamespace+"."+m.Name]; ok {
		out["this:"+MartsNamespace+"."+m.Name] = id
	}
	return out
}

// record appends the run's rows to marts.model_runs.
func (r *Runner) record(ctx context.Context, s *session, rep *RunReport) error {
	ib, _ := json.Marshal(rep.Inputs)
	vb, _ := json.Marshal(rep.Vars)
	var rows []string
	for _, m := range rep.Models {
		msg := ""
		if m.Err != nil {
			msg = m.Err.Error()
		}
		rows = append(rows, fmt.Sprintf("(%s, %s, %s, %s, %d::BIGINT, %d::BIGINT, %t, %d::BIGINT, %s::TIMESTAMPTZ, %s::TIMESTAMPTZ, %s, %s, %s)",
			quoteString(rep.RunID), quoteString(m.Model), quoteString(m.Materialized), quoteString(m.Status), m.Rows, m.Snapshot,
			m.Incremental, m.Took.Milliseconds(), quoteString(rep.Started.UTC().Format(time.RFC3339Nano)),
			quoteString(rep.Finished.UTC().Format(time.RFC3339Nano)), quoteString(string(ib)), quoteString(string(vb)), quoteString(msg)))
	}
	if len(rows) == 0 {
		return nil
	}
	q := "SELECT * FROM (VALUES " + strings.Join(rows, ", ") + ") AS t(run_id, model, materialized, status, rows, snapshot_id, incremental, took_ms, started_at, finished_at, inputs, vars, error)"
	mr, err := r.materialize(ctx, s, warehouse.MaterializeSpec{Table: RunsTable, Mode: warehouse.MaterializeAppend, Query: q,
		Doc:     "模型运行记录（输入快照、变量、输出快照） / Model runs: input snapshots, vars, output snapshots",
		Summary: map[string]string{SummaryRunID: rep.RunID}})
	if err != nil {
		return fmt.Errorf("record run %s: %w", rep.RunID, err)
	}
	if r.OnCommit != nil && mr.SnapshotID != 0 {
		r.OnCommit(RunsTable, mr.SnapshotID)
	}
	return nil
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// LoadRaw creates a raw table with its canonical schema (schemas/*.yaml)
// when it has one, and appends the rows of a DuckDB query to it; columns
// the query lacks are NULL. Fixtures, benchmarks and demos load synthetic
// data this way; the platform itself loads raw tables with the lake writer.
func LoadRaw(ctx context.Context, lake *warehouse.Lake, db *sql.DB, table, query string) error {
	if reg, err := schemas.Builtin(); err == nil {
		for _, n := range reg.Names() {
			if sc, err := reg.Get(n); err == nil && sc.Table == table {
				if _, err := lake.EnsureTable(ctx, sc); err != nil {
					return err
				}
			}
		}
	}
	_, err := lake.Materialize(ctx, db, warehouse.MaterializeSpec{Table: table, Query: query, Mode: warehouse.MaterializeAppend})
	return err
}

// ensureInput makes a model not run in this session readable: a view model
// is recreated from its SQL (and its inputs, recursively), a table or
// incremental model is read from the lake (at its pinned snapshot if any).
func (r *Runner) ensureInput(ctx context.Context, s *session, name string, vars map[string]any) error {
	full := MartsNamespace + "." + name
	if s.viewed[full] {
		return nil
	}
	m := r.Project.Models[name]
	if m.Config.Materialized != "view" {
		return s.lakeView(ctx, full, nil)
	}
	for _, src := range m.SourceRefs {
		if err := s.lakeView(ctx, src, r.Project.Sources[src].Columns); err != nil {
			return err
		}
	}
	for _, ref := range m.Refs {
		if err := r.ensureInput(ctx, s, ref, vars); err != nil {
			return err
		}
	}
	q, err := r.render(m, vars, false)
	if err != nil {
		return err
	}
	if err := s.exec(ctx, fmt.Sprintf("CREATE OR REPLACE VIEW %s.%s AS %s", MartsNamespace, quoteIdent(name), q)); err != nil {
		return fmt.Errorf("view model %s: %w", name, err)
	}
	s.viewed[full] = true
	return nil
}

// EmptySourceSQL is the SELECT of the empty table the runner reads for a
// source the lake does not have yet: its canonical schema's columns, or the
// columns declared in the source's .yml.
func EmptySourceSQL(name string, declared []SourceColumn) (string, error) {
	return emptySelect(name, declared)
}
