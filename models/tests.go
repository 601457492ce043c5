package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TestResult is one data test's outcome.
type TestResult struct {
	// Name is dbt's: not_null_<model>_<column>, or the tests/*.sql file name.
	Name   string
	Model  string
	Column string
	Kind   string
	// Failing is the number of rows the test returned.
	Failing  int64
	Severity string
	// Status is pass, fail, warn or error (the test's SQL failed).
	Status string
	Err    error
	SQL    string
}

// Message says what failed and where, naming the model.
func (t TestResult) Message() string {
	where := "model " + t.Model
	if t.Column != "" {
		where += ", column " + t.Column
	}
	if t.Err != nil {
		return fmt.Sprintf("%s (%s): %v", t.Name, where, t.Err)
	}
	return fmt.Sprintf("%s (%s): %d failing rows / %d 行未通过", t.Name, where, t.Failing, t.Failing)
}

// testSQL is the query returning a generic test's failing rows.
func testSQL(model string, col Column, dt DataTest) string {
	m := MartsNamespace + "." + quoteIdent(model)
	c := quoteIdent(col.Name)
	switch dt.Kind {
	case "not_null":
		return fmt.Sprintf("SELECT * FROM %s WHERE %s IS NULL", m, c)
	case "unique":
		return fmt.Sprintf("SELECT %s, count(*) AS n FROM %s WHERE %s IS NOT NULL GROUP BY %s HAVING count(*) > 1", c, m, c, c)
	case "accepted_values":
		vals := make([]string, len(dt.Values))
		for i, v := range dt.Values {
			vals[i] = quoteString(v)
		}
		return fmt.Sprintf("SELECT %s, count(*) AS n FROM %s WHERE %s IS NOT NULL AND CAST(%s AS VARCHAR) NOT IN (%s) GROUP BY %s", c, m, c, c, strings.Join(vals, ", "), c)
	case "relationships":
		to := MartsNamespace + "." + quoteIdent(dt.To)
		return fmt.Sprintf("SELECT c.%s FROM %s AS c LEFT JOIN %s AS p ON c.%s = p.%s WHERE c.%s IS NOT NULL AND p.%s IS NULL", c, m, to, c, quoteIdent(dt.Field), c, quoteIdent(dt.Field))
	}
	return ""
}

// Test runs the data tests of the selected models (and the tests/*.sql
// tests that read only selected models) against the lake's current
// snapshots. It returns every result; the error wraps ErrTestFailed and
// names each failed test and its model.
func (r *Runner) Test(ctx context.Context, selectors []string, vars map[string]any) ([]TestResult, error) {
	names, err := r.Project.Select(selectors)
	if err != nil {
		return nil, err
	}
	s, err := r.open(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer s.close()
	return r.runTests(ctx, s, names, r.vars(vars))
}

func (r *Runner) runTests(ctx context.Context, s *session, names []string, vars map[string]any) ([]TestResult, error) {
	selected := map[string]bool{}
	for _, n := range names {
		selected[n] = true
	}
	ensure := func(model string) error { return r.ensureInput(ctx, s, model, vars) }
	var out []TestResult
	var failed []string
	run := func(tr TestResult) {
		var n int64
		err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM ("+tr.SQL+") AS failing").Scan(&n)
		tr.Failing = n
		switch {
		case err != nil:
			tr.Status, tr.Err = "error", err
		case n == 0:
			tr.Status = "pass"
		case tr.Severity == "warn":
			tr.Status = "warn"
		default:
			tr.Status = "fail"
		}
		if tr.Status == "fail" || tr.Status == "error" {
			failed = append(failed, tr.Message())
		}
		if r.Progress != nil {
			fmt.Fprintf(r.Progress, "%-6s %s\n", strings.ToUpper(tr.Status), tr.Message())
		}
		out = append(out, tr)
	}
	for _, n := range names {
		m := r.Project.Models[n]
		if err := ensure(n); err != nil {
			run(TestResult{Name: "model_exists_" + n, Model: n, Kind: "exists", Severity: "error", SQL: "SELECT 1", Err: err})
			out[len(out)-1].Status = "error"
			continue
		}
		for _, c := range m.Columns {
			for _, dt := range c.Tests {
				if dt.Kind == "relationships" {
					if err := ensure(dt.To); err != nil {
						run(TestResult{Name: dt.Kind + "_" + n + "_" + c.Name, Model: n, Column: c.Name, Kind: dt.Kind, Severity: dt.Severity, SQL: "SELECT 1", Err: err})
						continue
					}
				}
				run(TestResult{Name: dt.Kind + "_" + n + "_" + c.Name, Model: n, Column: c.Name, Kind: dt.Kind, Severity: dt.Severity, SQL: testSQL(n, c, dt)})
			}
		}
	}
	for _, name := range sortedKeys(r.Project.Singular) {
		t := r.Project.Singular[name]
		all := len(t.Refs) > 0
		for _, ref := range t.Refs {
			all = all && selected[ref]
		}
		if !all {
			continue
		}
		var err error
		for _, ref := range t.Refs {
			if err == nil {
				err = ensure(ref)
			}
		}
		for _, src := range t.SourceRefs {
			if err == nil {
				err = s.lakeView(ctx, src, r.Project.Sources[src].Columns)
			}
		}
		q := "SELECT 1"
		if err == nil {
			q, err = r.render(t, vars, false)
		}
		run(TestResult{Name: name, Model: strings.Join(t.Refs, ","), Kind: "sql", Severity: "error", SQL: q, Err: err})
	}
	if len(failed) > 0 {
		return out, fmt.Errorf("%w: %d of %d: %s", ErrTestFailed, len(failed), len(out), strings.Join(failed, "; "))
	}
	return out, nil
}

// Freshness is one source table's age against its policy.
type Freshness struct {
	Source string
	// Latest is the newest loaded_at_field value (zero: no rows / no table).
	Latest time.Time
	Age    time.Duration
	// Status is pass, warn, error, or unchecked (no loaded_at_field or policy).
	Status string
}

// Freshness checks every declared source with a loaded_at_field.
func (r *Runner) Freshness(ctx context.Context) ([]Freshness, error) {
	s, err := r.open(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer s.close()
	now := r.now()
	var out []Freshness
	for _, name := range sortedKeys(r.Project.Sources) {
		src := r.Project.Sources[name]
		f := Freshness{Source: name, Status: "unchecked"}
		if src.LoadedAt == "" || (src.WarnAfter == 0 && src.ErrorAfter == 0) {
			out = append(out, f)
			continue
		}
		if err := s.lakeView(ctx, name, src.Columns); err != nil {
			return nil, err
		}
		var latest *time.Time
		if err := s.db.QueryRowContext(ctx, fmt.Sprintf("SELECT max(%s)::TIMESTAMPTZ FROM %s", quoteIdent(src.LoadedAt), name)).Scan(&latest); err != nil {
			return nil, fmt.Errorf("freshness of %s: %w", name, err)
		}
		f.Status = "pass"
		if latest == nil {
			f.Status = "error"
			if src.ErrorAfter == 0 {
				f.Status = "warn"
			}
		} else {
			f.Latest = *latest
			f.Age = now.Sub(*latest)
			h := f.Age.Hours()
			switch {
			case src.ErrorAfter > 0 && h > src.ErrorAfter:
				f.Status = "error"
			case src.WarnAfter > 0 && h > src.WarnAfter:
				f.Status = "warn"
			}
		}
		out = append(out, f)
	}
	return out, nil
}

// ReproduceResult compares one model recomputed from a recorded run's
// inputs with what that run stored.
type ReproduceResult struct {
	Model    string
	Snapshot int64
	Rows     int64
	// Diff is the number of rows in one and not the other (0: identical).
	Diff int64
}

// ErrNoRun: the run id is not in marts.model_runs.
var ErrNoRun = errors.New("no such run")

// Reproduce recomputes the table and incremental models of a recorded run
// from the snapshots that run read (sources and its own previous state),
// with the same vars, without committing, and compares each with the
// snapshot the run committed.
func (r *Runner) Reproduce(ctx context.Context, runID string) ([]ReproduceResult, error) {
	s, err := r.open(ctx, nil)
	if err != nil {
		return nil, err
	}
	if err := s.lakeView(ctx, RunsTable, nil); err != nil {
		s.close()
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, "SELECT model, snapshot_id, inputs, vars FROM "+RunsTable+" WHERE run_id = ? AND status = 'ok' ORDER BY model", runID)
	if err != nil {
		s.close()
		return nil, err
	}
	type rec struct {
		model string
		snap  int64
	}
	var recs []rec
	var inputsJSON, varsJSON string
	for rows.Next() {
		var x rec
		if err := rows.Scan(&x.model, &x.snap, &inputsJSON, &varsJSON); err != nil {
			rows.Close()
			s.close()
			return nil, err
		}
		recs = append(recs, x)
	}
	rows.Close()
	s.close()
	if len(recs) == 0 {
		return nil, fmt.Errorf("%w: %s (see `citybrain sql \"select distinct run_id from marts.model_runs\"`) / 没有该运行记录", ErrNoRun, runID)
	}
	var pins map[string]int64
	if err := json.Unmarshal([]byte(inputsJSON), &pins); err != nil {
		return nil, fmt.Errorf("run %s: inputs: %w", runID, err)
	}
	var vars map[string]any
	dec := json.NewDecoder(strings.NewReader(varsJSON))
	dec.UseNumber() // 2 stays "2", not 2.0: vars render as they were written
	if err := dec.Decode(&vars); err != nil {
		return nil, fmt.Errorf("run %s: vars: %w", runID, err)
	}
	// A model's own previous state ("this:marts.m") pins marts.m while it runs.
	for k, v := range pins {
		if strings.HasPrefix(k, "this:") {
			pins[strings.TrimPrefix(k, "this:")] = v
			delete(pins, k)
		}
	}
	var sel []string
	for _, x := range recs {
		if _, ok := r.Project.Models[x.model]; ok {
			sel = append(sel, x.model)
		}
	}
	s, err = r.open(ctx, pins)
	if err != nil {
		return nil, err
	}
	defer s.close()
	rep := &RunReport{RunID: runID, Vars: vars}
	names, err := r.Project.Select(sel)
	if err != nil {
		return nil, err
	}
	if err := r.runModels(ctx, s, names, RunOptions{DryRun: true, Inputs: pins, reproduce: true}, rep); err != nil {
		return nil, err
	}
	if err := rep.Err(); err != nil {
		return nil, err
	}
	var out []ReproduceResult
	for _, x := range recs {
		m, ok := r.Project.Models[x.model]
		if !ok || m.Config.Materialized == "view" || x.snap == 0 {
			continue
		}
		full := MartsNamespace + "." + x.model
		t, err := r.Lake.Load(ctx, full)
		if err != nil {
			return nil, err
		}
		snap := t.SnapshotByID(x.snap)
		if snap == nil {
			return nil, fmt.Errorf("%s has no snapshot %d any more (expired?); 快照已过期", full, x.snap)
		}
		stored, err := r.Lake.SnapshotSQL(ctx, t, snap)
		if err != nil {
			return nil, err
		}
		cur := MartsNamespace + "." + quoteIdent(x.model)
		cols, err := s.columns(ctx, cur)
		if err != nil {
			return nil, err
		}
		stored = "SELECT " + strings.Join(cols, ", ") + " FROM (" + stored + ")"
		var rowsN, diff int64
		q := fmt.Sprintf("WITH a AS (SELECT * FROM %s), b AS (%s) SELECT (SELECT count(*) FROM b), (SELECT count(*) FROM ((SELECT * FROM a EXCEPT ALL SELECT * FROM b) UNION ALL (SELECT * FROM b EXCEPT ALL SELECT * FROM a)))", cur, stored)
		if err := s.db.QueryRowContext(ctx, q).Scan(&rowsN, &diff); err != nil {
			return nil, fmt.Errorf("compare %s: %w", full, err)
		}
		out = append(out, ReproduceResult{Model: x.model, Snapshot: x.snap, Rows: rowsN, Diff: diff})
	}
	return out, nil
}

// columns lists a session table's quoted column names in order.
func (s *session) columns(ctx context.Context, table string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT column_name FROM (DESCRIBE "+table+")")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, quoteIdent(c))
	}
	return out, rows.Err()
}
