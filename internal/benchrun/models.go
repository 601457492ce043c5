package main

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"citybrain/internal/testenv"
	"citybrain/models"
	"citybrain/models/dbt"
	"citybrain/warehouse"
)

// modelsRuns is how many full refreshes each side runs at scale 1 (the
// median counts); scale 10 runs once each.
const modelsRuns = 3

func init() {
	registerSuite(Suite{
		Name: "models",
		Doc: `Full refresh of every model of models/project (14 models: LEC levels, inherent levels, daily risk
portraits, current portraits, roll-ups per street / community / industry, watch list, overdue hazards, plan KPIs)
on deterministic synthetic data (models.GenerateSynthetic): scale 1 = 24,000 units, 20,759 risk sources and one
year of events (30k hazards, 48k inspections, 146k calls, 110k police cases, 365k 12345 events, 8.76M hourly
people counts); scale 10 = 240,000 units and ten times the events (people counts unchanged). The data is loaded
into a local-catalog Iceberg lake; ours = citybrain's runner (models.Runner.Run, FullRefresh), wall time
including the Iceberg commits and the run record. Anchor = dbt-duckdb 1.11.1 (dbt-core 1.11.16, DuckDB 1.5.6,
profile threads 2) running the same project files unmodified (` + "`dbt run --full-refresh`" + `, same vars) over the same
Parquet files of the lake's snapshots, wall time of the dbt process, in the same run. What each side writes: ours,
Iceberg tables (zstd Parquet by DuckDB's COPY into the table's data directory, one Iceberg commit per model) and the
run record; dbt, DuckDB tables in its database file. Both use 2 threads (ours: DuckDB's default on 2 cores). Scale 1:
median of 3 runs each. ratio = ours / dbt (time). Targets: ours ≤ 3 s at scale 1, ratio ≤ 0.5. Both results of
marts.enterprise_risk are compared row for row; a difference fails the benchmark.`,
		Reproduce: "go run ./internal/benchrun -suite models",
		Run:       runModelsBench,
	})
}

func runModelsBench(ctx context.Context, tmp string) []Result {
	var out []Result
	python, perr := testenv.PythonVenv(ctx, "dbt", dbt.Requirements...)
	for _, scale := range []int{1, 10} {
		out = append(out, modelsBenchScale(ctx, filepath.Join(tmp, fmt.Sprintf("scale%d", scale)), scale, python, perr))
	}
	return out
}

func modelsBenchScale(ctx context.Context, dir string, scale int, python string, perr error) Result {
	name := fmt.Sprintf("models/full-refresh scale=%d (%dk units)", scale, 24*scale)
	res := Result{Name: name, Unit: "s", Status: "failed"}
	fail := func(err error) Result {
		res.Reason = err.Error()
		return res
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	rawDir := filepath.Join(dir, "parquet")
	if err := models.GenerateSynthetic(ctx, db, rawDir, scale); err != nil {
		return fail(err)
	}
	wcfg := warehouse.DefaultConfig()
	lake, err := warehouse.Open(ctx, wcfg, filepath.Join(dir, "data"), slog.New(slog.DiscardHandler))
	if err != nil {
		return fail(err)
	}
	defer lake.Close()
	var rows int64
	for _, table := range models.SyntheticTables() {
		file := filepath.Join(rawDir, strings.TrimPrefix(table, "raw.")+".parquet")
		if err := models.LoadRaw(ctx, lake, db, table, "SELECT * FROM read_parquet('"+file+"')"); err != nil {
			return fail(fmt.Errorf("load %s: %w", table, err))
		}
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM read_parquet('"+file+"')").Scan(&n); err != nil {
			return fail(err)
		}
		rows += n
	}
	res.Rows = rows
	os.RemoveAll(rawDir) // both sides read the lake's files

	p, err := models.Load(models.Embedded(), "risk_config.v1.yaml")
	if err != nil {
		return fail(err)
	}
	runner := &models.Runner{Lake: lake, Project: p, Log: slog.New(slog.DiscardHandler)}
	vars := map[string]any{"as_of_date": models.SyntheticEnd}
	runs := 1
	if scale == 1 {
		runs = modelsRuns
	}
	var ours, oursCPU []float64
	var rep *models.RunReport
	for range runs {
		start, cpu0 := time.Now(), selfCPU()
		rep, err = runner.Run(ctx, models.RunOptions{FullRefresh: true, Vars: vars})
		if err != nil {
			return fail(err)
		}
		ours = append(ours, time.Since(start).Seconds())
		oursCPU = append(oursCPU, (selfCPU() - cpu0).Seconds())
	}
	res.Figure = median(ours)
	res.WallS = res.Figure
	res.CPUS = median(oursCPU)
	res.Status = "ok"
	notes := []string{fmt.Sprintf("%d raw rows; load average %s at start; ours: wall %s s, CPU %s s", rows, loadAvg(), joinSeconds(ours), joinSeconds(oursCPU))}
	if scale == 1 {
		notes = append(notes, targetNote(res.Figure <= 3, "≤ 3 s"))
	}

	if perr != nil {
		res.Reason = strings.Join(append(notes, "dbt anchor skipped: "+firstLine(perr.Error())), "; ")
		return res
	}
	srcs := map[string]string{}
	for n := range p.Sources {
		t, err := lake.Load(ctx, n)
		if err != nil {
			continue // dbt reads only what the lake has; the models read the rest as empty
		}
		q, err := lake.SnapshotSQL(ctx, t, nil)
		if err != nil {
			return fail(err)
		}
		srcs[n] = q
	}
	// Sources the synthetic data lacks are empty in both engines: give dbt
	// an empty table of the runner's view.
	for n := range p.Sources {
		if _, ok := srcs[n]; !ok {
			q, err := emptySource(ctx, runner, n)
			if err != nil {
				return fail(err)
			}
			srcs[n] = q
		}
	}
	ws, err := dbt.Prepare(ctx, python, filepath.Join(dir, "dbt"), models.Embedded(), srcs, 2)
	if err != nil {
		res.Reason = strings.Join(append(notes, "dbt anchor failed: "+firstLine(err.Error())), "; ")
		return res
	}
	var theirs, theirsCPU []float64
	for range runs {
		took, _, err := ws.Run(ctx, rep.Vars, "--full-refresh")
		if err != nil {
			res.Status = "failed"
			res.Reason = strings.Join(append(notes, "dbt run failed: "+err.Error()), "; ")
			return res
		}
		theirs = append(theirs, took.Wall.Seconds())
		theirsCPU = append(theirsCPU, took.CPU.Seconds())
	}
	anchor := median(theirs)
	res.Anchor = &Anchor{Name: "dbt-duckdb 1.11.1 (dbt run --full-refresh), same SQL and Parquet", Figure: anchor, Unit: "s", Ratio: res.Figure / anchor}
	notes = append(notes, fmt.Sprintf("dbt: wall %s s, CPU %s s (CPU ratio %.2f)", joinSeconds(theirs), joinSeconds(theirsCPU), res.CPUS/median(theirsCPU)),
		targetNote(res.Anchor.Ratio <= 0.5, "ratio ≤ 0.5"))
	// Same answer: marts.enterprise_risk row for row.
	exp := filepath.Join(dir, "dbt", "enterprise_risk.parquet")
	if err := ws.Export(ctx, "marts.enterprise_risk", exp); err != nil {
		return fail(err)
	}
	t, err := lake.Load(ctx, "marts.enterprise_risk")
	if err != nil {
		return fail(err)
	}
	oursQ, err := lake.SnapshotSQL(ctx, t, nil)
	if err != nil {
		return fail(err)
	}
	var n, diff int64
	q := fmt.Sprintf(`WITH a AS (%s), b AS (SELECT * FROM read_parquet('%s'))
		SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM ((SELECT * FROM a EXCEPT ALL SELECT * FROM b) UNION ALL (SELECT * FROM b EXCEPT ALL SELECT * FROM a)))`, oursQ, exp)
	if err := db.QueryRowContext(ctx, q).Scan(&n, &diff); err != nil {
		return fail(err)
	}
	if diff != 0 || n != int64(24000*scale) {
		res.Status = "failed"
		notes = append(notes, fmt.Sprintf("marts.enterprise_risk differs from dbt's: %d rows (of %d)", diff, n))
	} else {
		notes = append(notes, fmt.Sprintf("marts.enterprise_risk identical to dbt's (%d rows)", n))
	}
	res.Reason = strings.Join(notes, "; ")
	return res
}

// emptySource is the SELECT of an empty table shaped like the runner's
// stand-in for a source the lake lacks.
func emptySource(ctx context.Context, r *models.Runner, name string) (string, error) {
	return models.EmptySourceSQL(name, r.Project.Sources[name].Columns)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return s[len(s)/2]
}

func joinSeconds(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, ", ")
}

func targetNote(ok bool, target string) string {
	if ok {
		return "target " + target + " met"
	}
	return "target " + target + " NOT met"
}

// selfCPU is this process's user + system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAvg is the 1-minute load average (the machine may be shared).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}
