package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/jackc/pgx/v5"

	"citybrain/internal/testenv"
	"citybrain/schemas"
	"citybrain/warehouse"
)

// The lake on an object store (issue #22) against the same lake on local
// disk: the same table written to both, the same queries through the same
// engine, warm and cold.
func init() {
	registerSuite(Suite{
		Name: "lake-s3",
		Doc: `The Iceberg lake on an S3-compatible object store (SeaweedFS on loopback, s3://citybrain-bench/lake, path-style,
read by DuckDB through the read-through cache on local disk) against the same lake on local disk. Both sides use the sql catalog
on the same PostgreSQL (one database each), so only where the files live differs. The same table (raw.bench_lake: id,
observed_at, cell of 5,000, value + _cursor; 2M rows over 30 UTC day partitions, 4 files a day = 120 Parquet files, one
commit a day = 30 snapshots) is written identically to both with lake.NewFileWriter + lake.Commit. Five analyst queries
run through warehouse.Engine.Query, every result row scanned: a full count/sum/avg/min/max; a group by day
(Asia/Shanghai, the engine's zone: 31 days); a one-hour filter on one day (2,778 rows returned); the top 10 cells by sum;
a time-travel count/sum AT (VERSION => the 15th day's snapshot).
Warm (lake-s3/warm/*): engines whose cache already holds the files (one untimed run first), median of 11 runs per query,
S3 and local runs interleaved; ratio = S3 / local; goal ≤ 1.5× (the issue); all_queries is the sum of the medians. The
notes split a run into the engine's per-statement work (Query's refresh check loads the table's metadata through the
catalog; a time travel's rewrite loads it again and plans the snapshot's files from its manifests) and DuckDB's run of the
same SQL alone; catalog_load, plan_time_travel, new_file_io and read_manifest_list measure those pieces.
Cold (lake-s3/cold/*): a fresh process state — warehouse.Open with an empty cache directory, NewEngine as serve opens it
(its view refresh fetches every file of the current snapshot into the cache) and the query's first run: time to first
answer, median of 5 fresh opens, S3 vs local (the local files are in the OS page cache: the local cold is the engine's,
not the disk's); fetched = the bytes one cold open fetched. lake-s3/cold-command/*: the same with the engine a command
opens (warehouse.OnDemand: no view built at open; the statement fetches only the files its filter can match by the
manifests' bounds, or the whole table). Reported, no goal.
Write (information): MB of Parquet / wall time of writing the 120 files and 30 commits (the S3 side uploads each file
when it is closed, before its commit), S3 vs local; the table's creation before it is not counted.`,
		Reproduce: "go run ./internal/benchrun -suite lake-s3",
		Run:       runLakeS3,
	})
}

const (
	lakeS3Rows      = 2_000_000
	lakeS3Days      = 30
	lakeS3FilesDay  = 4
	lakeS3Cells     = 5_000
	lakeS3WarmRuns  = 11
	lakeS3ColdRuns  = 5
	lakeS3Location  = "s3://citybrain-bench/lake"
	lakeS3TravelDay = 15 // time travel to the snapshot committed with this day
)

const lakeS3Schema = `
name: bench_lake
version: 1
table: raw.bench_lake
doc: {zh: 对象存储基准表, en: Object store benchmark table}
event_time: observed_at
partition: {field: observed_at, transform: day}
fields:
  - {name: id, type: long, required: true, doc: {zh: 编号, en: Id}}
  - {name: observed_at, type: timestamp, required: true, doc: {zh: 时间, en: Time}}
  - {name: cell, type: string, required: true, doc: {zh: 网格, en: Grid cell}}
  - {name: value, type: double, doc: {zh: 数值, en: Value}}
`

// lakeS3Base is the first row's time; day d covers [base+d, base+d+1).
var lakeS3Base = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// lakeS3Query is one analyst query; sql may hold one %d, the time-travel
// snapshot id of the side it runs on.
type lakeS3Query struct {
	name, sql string
	rows      int64 // result rows expected
}

func lakeS3Queries() []lakeS3Query {
	day := lakeS3Base.AddDate(0, 0, 12)
	ts := func(t time.Time) string { return "TIMESTAMPTZ '" + t.Format("2006-01-02 15:04:05") + "+00'" }
	return []lakeS3Query{
		{"full_aggregate", "SELECT count(*), sum(value), avg(value), min(observed_at), max(observed_at) FROM raw.bench_lake", 1},
		// Days of the engine's time zone (Asia/Shanghai): 30 UTC days touch 31.
		{"group_by_day", "SELECT date_trunc('day', observed_at) AS day, count(*), sum(value) FROM raw.bench_lake GROUP BY day ORDER BY day", lakeS3Days + 1},
		{"one_hour_filter", fmt.Sprintf("SELECT id, observed_at, cell, value FROM raw.bench_lake WHERE observed_at >= %s AND observed_at < %s ORDER BY observed_at",
			ts(day.Add(10*time.Hour)), ts(day.Add(11*time.Hour))), -1},
		{"top10_cells", "SELECT cell, count(*) AS n, sum(value) AS s FROM raw.bench_lake GROUP BY cell ORDER BY s DESC, cell LIMIT 10", 10},
		{"time_travel", "SELECT count(*), sum(value) FROM raw.bench_lake AT (VERSION => %d)", 1},
	}
}

// lakeS3Side is one of the two lakes: its config (the cache directory is
// replaced per open) and the time-travel snapshot written to it.
type lakeS3Side struct {
	name    string
	cfg     warehouse.Config
	dataDir string
	travel  int64
	// write figures
	writeWall  time.Duration
	createWall time.Duration // EnsureTable: the new table's first metadata (not in writeWall)
	closeWall  time.Duration // in FileWriter.Close: the file's footer, and its upload on S3
	commitWall time.Duration // in Lake.Commit: manifests, metadata, the catalog's pointer
	writeBytes int64
	files      int
}

func (s *lakeS3Side) remote() bool { return s.cfg.Remote() }

// open opens the side's lake with the cache in cacheDir (S3 side).
func (s *lakeS3Side) open(ctx context.Context, cacheDir string) (*warehouse.Lake, error) {
	cfg := s.cfg
	if cfg.Remote() {
		cfg.S3.CacheDir = cacheDir
	}
	return warehouse.Open(ctx, cfg, s.dataDir, slog.New(slog.DiscardHandler))
}

func (s *lakeS3Side) sql(q lakeS3Query) string {
	if strings.Contains(q.sql, "%d") {
		return fmt.Sprintf(q.sql, s.travel)
	}
	return q.sql
}

func runLakeS3(ctx context.Context, tmp string) []Result {
	fail := func(err error) []Result {
		return []Result{{Name: "lake-s3/warm", Status: "failed", Reason: err.Error(), Unit: "ms"}}
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	logf("starting SeaweedFS and PostgreSQL")
	sw, err := testenv.StartSeaweedFS(sctx, filepath.Join(tmp, "weed"))
	if err != nil {
		return []Result{{Name: "lake-s3/warm", Status: "skipped", Reason: "SeaweedFS did not start: " + err.Error(), Unit: "ms"}}
	}
	defer sw.Stop()
	pg, err := testenv.StartPostgres(sctx, filepath.Join(tmp, "pg"))
	if err != nil {
		return []Result{{Name: "lake-s3/warm", Status: "skipped", Reason: "PostgreSQL did not start (make test-deps): " + err.Error(), Unit: "ms"}}
	}
	defer pg.Stop()
	// benchrun is its own process: the S3 credentials go where the lake
	// reads them, and are put back after.
	for k, v := range map[string]string{"AWS_ACCESS_KEY_ID": testenv.SeaweedAccessKey, "AWS_SECRET_ACCESS_KEY": testenv.SeaweedSecretKey} {
		old, had := os.LookupEnv(k)
		os.Setenv(k, v)
		defer func() {
			if had {
				os.Setenv(k, old)
			} else {
				os.Unsetenv(k)
			}
		}()
	}
	// One catalog database per side: the sql catalog's name space is fixed
	// ("citybrain"), and both lakes hold a raw.bench_lake.
	localDSN, err := createDatabase(sctx, pg.DSN(), "citybrain_local")
	if err != nil {
		return fail(err)
	}

	base := warehouse.DefaultConfig()
	base.Catalog = "sql"
	base.Maintenance.Interval = 0
	local := &lakeS3Side{name: "local", cfg: base, dataDir: filepath.Join(tmp, "local")}
	local.cfg.SQL.DSN = localDSN
	remote := &lakeS3Side{name: "s3", cfg: base, dataDir: filepath.Join(tmp, "s3")}
	remote.cfg.SQL.DSN = pg.DSN()
	remote.cfg.Location = lakeS3Location
	remote.cfg.S3.Endpoint = sw.Endpoint()
	remote.cfg.S3.PathStyle = true
	remote.cfg.S3.CacheBytes = 4 << 30
	sides := []*lakeS3Side{local, remote}

	s, err := schemas.Parse([]byte(lakeS3Schema))
	if err != nil {
		return fail(err)
	}
	for _, side := range sides {
		logf("=== lake-s3/%s: writing %d rows (%d days × %d files)", side.name, lakeS3Rows, lakeS3Days, lakeS3FilesDay)
		if err := writeLakeS3Table(ctx, side, s); err != nil {
			return fail(fmt.Errorf("write %s lake: %w", side.name, err))
		}
		logf("    %d files, %.1f MB in %.1fs (%.1f MB/s; closing files %.1fs, commits %.1fs; creating the table %.1fs before)", side.files, float64(side.writeBytes)/1e6, side.writeWall.Seconds(),
			float64(side.writeBytes)/1e6/side.writeWall.Seconds(), side.closeWall.Seconds(), side.commitWall.Seconds(), side.createWall.Seconds())
	}
	queries := lakeS3Queries()

	var out []Result
	warm, err := lakeS3Warm(ctx, tmp, sides, queries)
	if err != nil {
		return fail(fmt.Errorf("warm: %w", err))
	}
	out = append(out, warm...)
	cold, err := lakeS3Cold(ctx, tmp, sides, queries)
	if err != nil {
		return append(out, Result{Name: "lake-s3/cold", Status: "failed", Reason: err.Error(), Unit: "ms"})
	}
	out = append(out, cold...)

	lmb, smb := float64(local.writeBytes)/1e6/local.writeWall.Seconds(), float64(remote.writeBytes)/1e6/remote.writeWall.Seconds()
	out = append(out, Result{Name: "lake-s3/write", Status: "ok", Rows: lakeS3Rows, Figure: smb, Unit: "MB/s", MBPerS: smb,
		WallS: remote.writeWall.Seconds(), EncodedBytes: remote.writeBytes, Commits: lakeS3Days,
		RowsPerS: lakeS3Rows / remote.writeWall.Seconds(),
		Reason: fmt.Sprintf("information: %d Parquet files, %.1f MB, %d commits, written and committed in %.2f s on S3 (of which closing the files, each uploaded, %.2f s; the commits %.2f s) vs %.2f s on local disk (closing %.2f s, commits %.2f s); rows generated in the same loop on both sides; creating the table before (not counted: the first write to a just-started SeaweedFS waits for its filer to join) %.2f s on S3, %.2f s local",
			remote.files, float64(remote.writeBytes)/1e6, lakeS3Days, remote.writeWall.Seconds(), remote.closeWall.Seconds(), remote.commitWall.Seconds(),
			local.writeWall.Seconds(), local.closeWall.Seconds(), local.commitWall.Seconds(), remote.createWall.Seconds(), local.createWall.Seconds()),
		Anchor: &Anchor{Name: "same table on local disk", Figure: lmb, Unit: "MB/s", Ratio: smb / lmb}})
	return out
}

// createDatabase creates database name on the server of dsn and returns
// its DSN.
func createDatabase(ctx context.Context, dsn, name string) (string, error) {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// writeLakeS3Table writes the table to side's lake: day by day, each day's
// rows into lakeS3FilesDay files (consecutive quarters of the day, as a
// streaming writer leaves them) and one commit.
func writeLakeS3Table(ctx context.Context, side *lakeS3Side, s *schemas.Schema) error {
	lake, err := side.open(ctx, "cache-writer")
	if err != nil {
		return err
	}
	defer lake.Close()
	start := time.Now()
	t, err := lake.EnsureTable(ctx, s)
	if err != nil {
		return err
	}
	side.createWall = time.Since(start)
	start = time.Now()
	st, err := lake.State(ctx, s.Table)
	if err != nil {
		return err
	}
	step := time.Duration(lakeS3Days) * 24 * time.Hour / lakeS3Rows
	perFile := lakeS3Rows / (lakeS3Days * lakeS3FilesDay)
	i := 0
	for day := 0; day < lakeS3Days; day++ {
		next := st.Clone()
		next.Batch++
		var files []iceberg.DataFile
		for f := 0; f < lakeS3FilesDay; f++ {
			end := i + perFile
			if day == lakeS3Days-1 && f == lakeS3FilesDay-1 {
				end = lakeS3Rows
			}
			rec := func(i int) schemas.Record {
				// Cells and values pseudo-random from the row number (fixed:
				// both sides get the same bytes): nothing in a file is sorted
				// but time, and values compress like measurements (2 decimals).
				h := splitmix64(uint64(i))
				return schemas.Record{int64(i), lakeS3Base.Add(time.Duration(i) * step), fmt.Sprintf("cell-%04d", h%lakeS3Cells), float64((h>>20)%100_000) / 100}
			}
			pv, dir := warehouse.PartitionKey(s, rec(i))
			w, err := lake.NewFileWriter(t, s, fmt.Sprintf("%s/%010d-%d.parquet", dir, next.Batch, f), pv)
			if err != nil {
				return err
			}
			for ; i < end; i++ {
				if err := w.Write(rec(i), fmt.Sprintf("bench:%d", i)); err != nil {
					w.Abort()
					return err
				}
			}
			cs := time.Now()
			df, err := w.Close()
			if err != nil {
				return err
			}
			side.closeWall += time.Since(cs)
			files = append(files, df)
			side.writeBytes += df.FileSizeBytes()
			side.files++
		}
		cs := time.Now()
		id, err := lake.Commit(ctx, s.Table, files, next)
		if err != nil {
			return err
		}
		side.commitWall += time.Since(cs)
		next.SnapshotID = id
		st = next
		if day+1 == lakeS3TravelDay {
			side.travel = id
		}
	}
	side.writeWall = time.Since(start)
	return nil
}

// splitmix64 is a fixed pseudo-random function of x.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// scanAll runs one statement through run and scans every row; want < 0
// accepts any number of rows.
func scanAll(run func() (rowsLike, error), want int64) (int64, error) {
	rows, err := run()
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return 0, err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var n int64
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return n, err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return n, err
	}
	if want >= 0 && n != want {
		return n, fmt.Errorf("%d result rows, want %d", n, want)
	}
	return n, nil
}

// rowsLike is what scanAll needs of *sql.Rows.
type rowsLike interface {
	Columns() ([]string, error)
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}

func medianDur(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func msOf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// lakeS3Warm measures the queries on engines whose caches hold the files.
func lakeS3Warm(ctx context.Context, tmp string, sides []*lakeS3Side, queries []lakeS3Query) ([]Result, error) {
	type engine struct {
		lake *warehouse.Lake
		eng  *warehouse.Engine
	}
	engs := make([]engine, len(sides))
	for i, side := range sides {
		lake, err := side.open(ctx, filepath.Join(tmp, side.name+"-cache-warm"))
		if err != nil {
			return nil, err
		}
		defer lake.Close()
		eng, err := warehouse.NewEngine(ctx, lake)
		if err != nil {
			return nil, err
		}
		defer eng.Close()
		if d := eng.Damaged(); len(d) > 0 {
			return nil, fmt.Errorf("%s: damaged tables %v", side.name, d)
		}
		engs[i] = engine{lake, eng}
	}
	var out []Result
	var sumS3, sumLocal time.Duration
	worst := 0.0
	for _, q := range queries {
		// Per side: Engine.Query (refresh check, rewrite, DuckDB) and DuckDB
		// alone on the statement as rewritten once (the view, or the time
		// travel's snapshot files).
		full := make([][]time.Duration, len(sides))
		duck := make([][]time.Duration, len(sides))
		over := make([][]time.Duration, len(sides)) // full − DuckDB alone, run by run
		direct := make([]string, len(sides))
		counts := make([]int64, len(sides))
		for i, side := range sides {
			e := engs[i].eng
			sqlText := side.sql(q)
			var err error
			if direct[i], err = e.Rewrite(ctx, sqlText); err != nil {
				return nil, fmt.Errorf("%s %s: %w", side.name, q.name, err)
			}
			// The untimed first run.
			if counts[i], err = scanAll(func() (rowsLike, error) { return e.Query(ctx, sqlText) }, q.rows); err != nil {
				return nil, fmt.Errorf("%s %s: %w", side.name, q.name, err)
			}
		}
		if counts[0] != counts[1] {
			return nil, fmt.Errorf("%s: %d rows on %s, %d on %s", q.name, counts[0], sides[0].name, counts[1], sides[1].name)
		}
		for run := 0; run < lakeS3WarmRuns; run++ {
			for i, side := range sides {
				e := engs[i].eng
				sqlText := side.sql(q)
				start := time.Now()
				if _, err := scanAll(func() (rowsLike, error) { return e.Query(ctx, sqlText) }, q.rows); err != nil {
					return nil, fmt.Errorf("%s %s: %w", side.name, q.name, err)
				}
				full[i] = append(full[i], time.Since(start))
				start = time.Now()
				if _, err := scanAll(func() (rowsLike, error) { return e.DB().QueryContext(ctx, direct[i]) }, q.rows); err != nil {
					return nil, fmt.Errorf("%s %s (DuckDB alone): %w", side.name, q.name, err)
				}
				duck[i] = append(duck[i], time.Since(start))
				over[i] = append(over[i], full[i][run]-duck[i][run])
			}
		}
		l, s := medianDur(full[0]), medianDur(full[1])
		ld, sd := medianDur(duck[0]), medianDur(duck[1])
		lo, so := medianDur(over[0]), medianDur(over[1])
		ratio := float64(s) / float64(l)
		worst = math.Max(worst, ratio)
		sumS3 += s
		sumLocal += l
		logf("    warm %-16s s3 %7.1f ms  local %7.1f ms  %.2f×  (engine work s3 %.1f ms, local %.1f ms; DuckDB alone s3 %.1f ms, local %.1f ms)", q.name, msOf(s), msOf(l), ratio, msOf(so), msOf(lo), msOf(sd), msOf(ld))
		out = append(out, Result{Name: "lake-s3/warm/" + q.name, Status: "ok", Rows: counts[1], Figure: msOf(s), Unit: "ms", WallS: s.Seconds(),
			Reason: fmt.Sprintf("median of %d, %d result rows; S3 runs %s; local runs %s; engine work per statement (refresh check%s; median of each run's Engine.Query minus the same SQL on DuckDB alone) s3 %.1f ms, local %.1f ms; DuckDB alone s3 %.1f ms, local %.1f ms; goal ≤ 1.5×",
				lakeS3WarmRuns, counts[1], msList(full[1]), msList(full[0]), travelNote(q), msOf(so), msOf(lo), msOf(sd), msOf(ld)),
			Anchor: &Anchor{Name: "same table on local disk", Figure: msOf(l), Unit: "ms", Ratio: ratio}})
	}
	total := float64(sumS3) / float64(sumLocal)
	out = append(out, Result{Name: "lake-s3/warm/all_queries", Status: "ok", Figure: msOf(sumS3), Unit: "ms",
		Reason: fmt.Sprintf("sum of the %d queries' medians; worst query %.2f×; goal ≤ 1.5×; load average %s", len(queries), worst, loadAverage()),
		Anchor: &Anchor{Name: "same table on local disk", Figure: msOf(sumLocal), Unit: "ms", Ratio: total}})
	diag, err := lakeS3Overhead(ctx, sides, engs[0].lake, engs[1].lake)
	if err != nil {
		return nil, err
	}
	out = append(out, diag...)
	for i, side := range sides {
		if side.remote() {
			st := engs[i].lake.CacheStats()
			logf("    warm cache: %d hits, %d misses, %.1f MB fetched", st.Hits, st.Misses, float64(st.FetchedBytes)/1e6)
		}
	}
	return out, nil
}

// lakeS3Overhead measures, on each side, the per-statement work of the
// engine outside DuckDB: loading the table's metadata through the catalog
// (Engine.Query's refresh check, and again the time travel's rewrite) and
// planning the time-travel snapshot's files (manifest list and manifests).
func lakeS3Overhead(ctx context.Context, sides []*lakeS3Side, lakes ...*warehouse.Lake) ([]Result, error) {
	const name = "raw.bench_lake"
	load := make([][]time.Duration, len(sides))
	newIO := make([][]time.Duration, len(sides))
	readList := make([][]time.Duration, len(sides))
	plan := make([][]time.Duration, len(sides))
	manifests := make([]int, len(sides))
	for run := 0; run < lakeS3WarmRuns; run++ {
		for i, side := range sides {
			start := time.Now()
			t, err := lakes[i].Load(ctx, name)
			if err != nil {
				return nil, err
			}
			load[i] = append(load[i], time.Since(start))
			snap := t.SnapshotByID(side.travel)
			if snap == nil {
				return nil, fmt.Errorf("%s: no snapshot %d", side.name, side.travel)
			}
			start = time.Now()
			if _, err := warehouse.SnapshotFiles(lakes[i].IOContext(ctx), t, snap); err != nil {
				return nil, err
			}
			plan[i] = append(plan[i], time.Since(start))
			// What planning is made of: a new file IO (iceberg-go makes one
			// per metadata load, and per two manifests a scan reads), and one
			// metadata object read through it (the manifest list).
			start = time.Now()
			fs, err := t.FS(lakes[i].IOContext(ctx))
			if err != nil {
				return nil, err
			}
			newIO[i] = append(newIO[i], time.Since(start))
			start = time.Now()
			f, err := fs.Open(snap.ManifestList)
			if err != nil {
				return nil, err
			}
			_, err = io.Copy(io.Discard, f)
			f.Close()
			if err != nil {
				return nil, err
			}
			readList[i] = append(readList[i], time.Since(start))
			if run == 0 {
				if err != nil {
					return nil, err
				}
				ms, err := snap.Manifests(fs)
				if err != nil {
					return nil, err
				}
				manifests[i] = len(ms)
			}
		}
	}
	ll, sl := medianDur(load[0]), medianDur(load[1])
	lp, sp := medianDur(plan[0]), medianDur(plan[1])
	li, si := medianDur(newIO[0]), medianDur(newIO[1])
	lr, sr := medianDur(readList[0]), medianDur(readList[1])
	logf("    catalog load s3 %.1f ms local %.1f ms; plan of the time travel's snapshot (%d manifests) s3 %.1f ms local %.1f ms; new file IO s3 %.2f ms local %.2f ms; manifest list read s3 %.2f ms local %.2f ms",
		msOf(sl), msOf(ll), manifests[1], msOf(sp), msOf(lp), msOf(si), msOf(li), msOf(sr), msOf(lr))
	return []Result{
		{Name: "lake-s3/warm/catalog_load", Status: "ok", Figure: msOf(sl), Unit: "ms",
			Reason: fmt.Sprintf("diagnostic: Lake.Load of the table (the sql catalog's row in PostgreSQL, then the metadata file read through iceberg-go's IO), median of %d; Engine.Query does it once per table a statement names, a time travel's rewrite once more; S3 runs %s, local %s",
				lakeS3WarmRuns, msList(load[1]), msList(load[0])),
			Anchor: &Anchor{Name: "same table on local disk", Figure: msOf(ll), Unit: "ms", Ratio: float64(sl) / float64(ll)}},
		{Name: "lake-s3/warm/plan_time_travel", Status: "ok", Figure: msOf(sp), Unit: "ms",
			Reason: fmt.Sprintf("diagnostic: warehouse.SnapshotFiles of the time travel's snapshot (iceberg-go Scan.PlanFiles: its manifest list and %d manifests read), median of %d; S3 runs %s, local %s",
				manifests[1], lakeS3WarmRuns, msList(plan[1]), msList(plan[0])),
			Anchor: &Anchor{Name: "same table on local disk", Figure: msOf(lp), Unit: "ms", Ratio: float64(sp) / float64(lp)}},
		{Name: "lake-s3/warm/new_file_io", Status: "ok", Figure: msOf(si), Unit: "ms",
			Reason: fmt.Sprintf("diagnostic: Table.FS, the file IO iceberg-go builds afresh for every metadata load and for every GOMAXPROCS manifests a scan plans (two here), given the lake's shared AWS configuration and HTTP client (Lake.IOContext; without it each one loaded the SDK's configuration and opened a new connection: 2.5 ms), median of %d; S3 runs %s; local %.3f ms (LocalFS)",
				lakeS3WarmRuns, msList(newIO[1]), msOf(li))},
		{Name: "lake-s3/warm/read_manifest_list", Status: "ok", Figure: msOf(sr), Unit: "ms",
			Reason: fmt.Sprintf("diagnostic: one metadata object (the time travel snapshot's manifest list) read whole through a new file IO, median of %d; S3 runs %s; local %.3f ms",
				lakeS3WarmRuns, msList(readList[1]), msOf(lr))},
	}, nil
}

func travelNote(q lakeS3Query) string {
	if strings.Contains(q.sql, "AT (VERSION") {
		return " and the time travel's rewrite: load, plan the snapshot's files, open them in the cache"
	}
	return ": the table's metadata loaded through the catalog"
}

func msList(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		if ms := msOf(d); ms < 10 {
			parts[i] = fmt.Sprintf("%.2f", ms)
		} else {
			parts[i] = fmt.Sprintf("%.0f", ms)
		}
	}
	return strings.Join(parts, " ") + " ms"
}

// lakeS3Cold measures time to first answer of a fresh process state: a
// new warehouse.Open with an empty cache directory, NewEngine and the
// query's first run.
func lakeS3Cold(ctx context.Context, tmp string, sides []*lakeS3Side, queries []lakeS3Query) ([]Result, error) {
	type sample struct {
		open, engine, query, total time.Duration
		fetched                    int64
		misses                     int64
	}
	var out []Result
	var fetched int64
	var misses int64
	n := 0
	for _, q := range queries {
		// sides[0] is local, sides[1] S3 with serve's engine (every view built at open),
		// variant 2 S3 with a command's engine (warehouse.OnDemand: only what the statement reads).
		type variant struct {
			side     *lakeS3Side
			onDemand bool
		}
		variants := []variant{{sides[0], false}, {sides[1], false}, {sides[1], true}}
		samples := make([][]sample, len(variants))
		for run := 0; run < lakeS3ColdRuns; run++ {
			for i, v := range variants {
				side := v.side
				n++
				cache := filepath.Join(tmp, fmt.Sprintf("%s-cache-cold-%d", side.name, n))
				var sm sample
				start := time.Now()
				lake, err := side.open(ctx, cache)
				if err != nil {
					return nil, err
				}
				sm.open = time.Since(start)
				var opts []warehouse.EngineOption
				if v.onDemand {
					opts = append(opts, warehouse.OnDemand())
				}
				eng, err := warehouse.NewEngine(ctx, lake, opts...)
				if err != nil {
					lake.Close()
					return nil, err
				}
				sm.engine = time.Since(start) - sm.open
				sqlText := side.sql(q)
				_, err = scanAll(func() (rowsLike, error) { return eng.Query(ctx, sqlText) }, q.rows)
				sm.total = time.Since(start)
				sm.query = sm.total - sm.open - sm.engine
				st := lake.CacheStats()
				sm.fetched, sm.misses = st.FetchedBytes, st.Misses
				eng.Close()
				lake.Close()
				os.RemoveAll(cache)
				if err != nil {
					return nil, fmt.Errorf("%s %s: %w", side.name, q.name, err)
				}
				samples[i] = append(samples[i], sm)
			}
		}
		med := func(ss []sample) sample {
			sort.Slice(ss, func(a, b int) bool { return ss[a].total < ss[b].total })
			return ss[len(ss)/2]
		}
		l, s := med(samples[0]), med(samples[1])
		fetched, misses = s.fetched, s.misses
		ratio := float64(s.total) / float64(l.total)
		logf("    cold %-16s s3 %7.1f ms  local %7.1f ms  %.2f×  (s3 open %.0f, engine %.0f, query %.0f ms; %.1f MB fetched)", q.name, msOf(s.total), msOf(l.total), ratio,
			msOf(s.open), msOf(s.engine), msOf(s.query), float64(s.fetched)/1e6)
		out = append(out, Result{Name: "lake-s3/cold/" + q.name, Status: "ok", Figure: msOf(s.total), Unit: "ms", WallS: s.total.Seconds(), InputBytes: s.fetched,
			Reason: fmt.Sprintf("serve's engine: time to first answer, median of %d fresh opens: S3 open %.0f ms + NewEngine (view refresh, fetching %d files, %.1f MB) %.0f ms + first run %.0f ms; local open %.0f ms + NewEngine %.0f ms + first run %.0f ms; reported, no goal",
				lakeS3ColdRuns, msOf(s.open), s.misses, float64(s.fetched)/1e6, msOf(s.engine), msOf(s.query), msOf(l.open), msOf(l.engine), msOf(l.query)),
			Anchor: &Anchor{Name: "same table on local disk", Figure: msOf(l.total), Unit: "ms", Ratio: ratio}})
		od := med(samples[2])
		odRatio := float64(od.total) / float64(l.total)
		logf("    cold %-16s s3 on demand %7.1f ms  %.2f×  (%d files, %.1f MB fetched)", q.name, msOf(od.total), odRatio, od.misses, float64(od.fetched)/1e6)
		out = append(out, Result{Name: "lake-s3/cold-command/" + q.name, Status: "ok", Figure: msOf(od.total), Unit: "ms", WallS: od.total.Seconds(), InputBytes: od.fetched,
			Reason: fmt.Sprintf("a command's engine (warehouse.OnDemand, as citybrain sql opens it): time to first answer, median of %d fresh opens: S3 open %.0f ms + NewEngine %.0f ms + first run %.0f ms (fetching the %d files, %.1f MB, the statement reads after pruning by the manifests); reported, no goal",
				lakeS3ColdRuns, msOf(od.open), msOf(od.engine), msOf(od.query), od.misses, float64(od.fetched)/1e6),
			Anchor: &Anchor{Name: "same table on local disk", Figure: msOf(l.total), Unit: "ms", Ratio: odRatio}})
	}
	if fetched == 0 {
		return out, errors.New("the S3 side's cold opens fetched nothing: the cache was not empty")
	}
	out = append(out, Result{Name: "lake-s3/cold/fetched", Status: "ok", Figure: float64(fetched) / 1e6, Unit: "MB", InputBytes: fetched,
		Reason: fmt.Sprintf("bytes the read-through cache fetched from the bucket in one cold open (%d files: every file of the current snapshot, fetched at the view's refresh whatever the query reads); load average %s", misses, loadAverage())})
	return out, nil
}
