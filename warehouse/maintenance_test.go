package warehouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"citybrain/schemas"
)

// testLake opens a local lake in a temporary directory with small
// maintenance thresholds and creates the weather table.
func testLake(t testing.TB, m MaintenanceConfig) (*Lake, *schemas.Schema) {
	t.Helper()
	ctx := context.Background()
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Query.MemoryLimit = "512MB"
	cfg.Query.Threads = 2
	cfg.Maintenance = m
	lake, err := Open(ctx, cfg, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lake.Close() })
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.Get("weather")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lake.EnsureTable(ctx, s); err != nil {
		t.Fatal(err)
	}
	return lake, s
}

func smallMaintenance() MaintenanceConfig {
	return MaintenanceConfig{
		CompactMinFiles: 4,
		SmallFileBytes:  1 << 20,
		ExpireOlderThan: 0,
		RetainLast:      2,
		OrphanGrace:     time.Hour,
	}
}

var day0 = time.Date(2013, 3, 1, 0, 0, 0, 0, time.UTC)

// writeBatch commits one small data file per day in days, rows records
// each, as writer batch st.Batch+1, and returns the new state.
func writeBatch(t testing.TB, lake *Lake, s *schemas.Schema, st State, days []int, rows int) State {
	t.Helper()
	next, files := batchFiles(t, lake, s, st, days, rows)
	id, err := lake.Commit(context.Background(), s.Table, files, next)
	if err != nil {
		t.Fatal(err)
	}
	next.SnapshotID = id
	return next
}

// batchFiles writes the files of writeBatch and returns them uncommitted
// with the state to commit them with.
func batchFiles(t testing.TB, lake *Lake, s *schemas.Schema, st State, days []int, rows int) (State, []iceberg.DataFile) {
	t.Helper()
	next, files, err := batchFilesErr(lake, s, st, days, rows)
	if err != nil {
		t.Fatal(err)
	}
	return next, files
}

// batchFilesErr is batchFiles returning its error.
func batchFilesErr(lake *Lake, s *schemas.Schema, st State, days []int, rows int) (State, []iceberg.DataFile, error) {
	ctx := context.Background()
	tbl, err := lake.Load(ctx, s.Table)
	if err != nil {
		return st, nil, err
	}
	next := st.Clone()
	next.Batch++
	var files []iceberg.DataFile
	for _, d := range days {
		var fw *FileWriter
		for i := range rows {
			at := day0.AddDate(0, 0, d).Add(time.Duration(next.Batch)*time.Hour + time.Duration(i)*time.Minute)
			r := make(schemas.Record, len(s.Fields))
			r[s.Index("station")] = "Guanyuan"
			r[s.Index("observed_at")] = at
			r[s.Index("rain_mm")] = float64(next.Batch) + float64(i)/10
			r[s.Index("temperature_c")] = float64(d)
			r[s.Index("wind_direction")] = "NE"
			if i%3 == 0 {
				r[s.Index("pm25")] = nil
			} else {
				r[s.Index("pm25")] = float64(i)
			}
			if fw == nil {
				pv, dir := PartitionKey(s, r)
				fw, err = lake.NewFileWriter(tbl, s, fmt.Sprintf("%s/%010d-%d.parquet", dir, next.Batch, d), pv)
				if err != nil {
					return st, nil, err
				}
			}
			if err := fw.Write(r, fmt.Sprintf("file.csv:%d", next.Batch*1000+int64(i))); err != nil {
				return st, nil, err
			}
		}
		df, err := fw.Close()
		if err != nil {
			return st, nil, err
		}
		files = append(files, df)
	}
	next.Cursors["file.csv"] = next.Batch * 1000
	next.Offsets["weather"] = map[int]int64{0: next.Batch * 10, 1: next.Batch * 7}
	return next, files, nil
}

// fill writes n batches of rows records to each of days.
func fill(t testing.TB, lake *Lake, s *schemas.Schema, n int, days []int, rows int) State {
	t.Helper()
	st, err := lake.State(context.Background(), s.Table)
	if err != nil {
		t.Fatal(err)
	}
	st.Cluster = "test-cluster"
	for range n {
		st = writeBatch(t, lake, s, st, days, rows)
	}
	return st
}

// filesPerPartition counts the current snapshot's data files by directory.
func filesPerPartition(t *testing.T, lake *Lake, name string) map[string]int {
	t.Helper()
	tbl, err := lake.Load(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	files, err := SnapshotFiles(context.Background(), tbl, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, f := range files {
		out[filepath.Base(filepath.Dir(LocalPath(f)))]++
	}
	return out
}

type totals struct {
	rows    int64
	rain    float64
	nulls   int64
	minTime time.Time
	digest  string
}

func queryTotals(t *testing.T, e *Engine, from string) totals {
	t.Helper()
	ctx := context.Background()
	rows, err := e.Query(ctx, "select count(*), round(sum(rain_mm), 6), count(*) - count(pm25), min(observed_at), "+
		"md5(string_agg(station || observed_at::varchar || coalesce(pm25::varchar, '-') || rain_mm::varchar || _cursor, '|' order by _cursor, observed_at)) from "+from)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tt totals
	if !rows.Next() {
		t.Fatalf("no rows: %v", rows.Err())
	}
	if err := rows.Scan(&tt.rows, &tt.rain, &tt.nulls, &tt.minTime, &tt.digest); err != nil {
		t.Fatal(err)
	}
	return tt
}

func TestCompactPreservesRowsAndState(t *testing.T) {
	ctx := context.Background()
	lake, s := testLake(t, smallMaintenance())
	before := fill(t, lake, s, 12, []int{0, 1}, 5)
	if got := filesPerPartition(t, lake, s.Table); len(got) != 2 || got["observed_at_day=2013-03-01"] != 12 {
		t.Fatalf("files before compaction: %v", got)
	}
	e, err := NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	want := queryTotals(t, e, "raw.weather")
	if want.rows != 12*2*5 {
		t.Fatalf("rows before compaction = %d", want.rows)
	}
	stBefore, err := lake.State(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	tbl0, err := lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	filesBefore, err := SnapshotFiles(ctx, tbl0, nil)
	if err != nil {
		t.Fatal(err)
	}

	res, err := lake.Compact(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	if res.Partitions != 2 || res.FilesRemoved != 24 || res.FilesAdded != 2 || res.Rows != 120 || res.SnapshotID == 0 {
		t.Fatalf("compact result: %+v", res)
	}
	got := filesPerPartition(t, lake, s.Table)
	for dir, n := range got {
		if n != 1 {
			t.Errorf("%s has %d files after compaction, want 1", dir, n)
		}
		if !strings.HasPrefix(dir, "observed_at_day=") {
			t.Errorf("compacted file outside its partition directory: %s", dir)
		}
	}
	if len(got) != 2 {
		t.Errorf("partitions after compaction: %v", got)
	}
	if have := queryTotals(t, e, "raw.weather"); have != want {
		t.Errorf("after compaction %+v, before %+v", have, want)
	}

	tbl, err := lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	snap := tbl.CurrentSnapshot()
	if snap.SnapshotID != res.SnapshotID || snap.Summary.Operation != table.OpReplace {
		t.Errorf("current snapshot %d op %s, want %d replace", snap.SnapshotID, snap.Summary.Operation, res.SnapshotID)
	}
	stAfter, err := StateOf(tbl)
	if err != nil {
		t.Fatal(err)
	}
	if stAfter.SnapshotID != res.SnapshotID {
		t.Errorf("state snapshot %d, want %d", stAfter.SnapshotID, res.SnapshotID)
	}
	stAfter.SnapshotID = stBefore.SnapshotID
	if !reflect.DeepEqual(stAfter, stBefore) {
		t.Errorf("state after compaction %+v, before %+v", stAfter, stBefore)
	}
	if stBefore.Cursors["file.csv"] != before.Cursors["file.csv"] || stBefore.Offsets["weather"][1] != 12*7 || stBefore.Batch != 12 {
		t.Errorf("state not as written: %+v", stBefore)
	}

	// The compacted files keep the table's field ids, partition and event-time bounds.
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		f := task.File
		if !strings.Contains(f.FilePath(), "/compact-") {
			t.Errorf("uncompacted file %s", f.FilePath())
		}
		if _, ok := f.Partition()[schemas.PartitionFieldID].(iceberg.Date); !ok {
			t.Errorf("%s partition %v", f.FilePath(), f.Partition())
		}
		et := schemas.FieldID(s.EventTimeIndex())
		if len(f.LowerBoundValues()[et]) != 8 || len(f.UpperBoundValues()[et]) != 8 {
			t.Errorf("%s has no event-time bounds", f.FilePath())
		}
		if f.NullValueCounts()[schemas.FieldID(s.Index("pm25"))] != 24 {
			t.Errorf("%s pm25 nulls = %d, want 24", f.FilePath(), f.NullValueCounts()[schemas.FieldID(s.Index("pm25"))])
		}
	}
	// Same columns and physical types as the writer's files, timestamps
	// still µs since the epoch in UTC, strings UTF-8, and the field ids of
	// the Iceberg table schema.
	type col struct{ typ, fid, conv, logical string }
	schemaOf := func(file string) map[string]col {
		t.Helper()
		rows, err := e.DB().QueryContext(ctx, "select name, type, coalesce(field_id::varchar, ''), coalesce(converted_type::varchar, ''), coalesce(logical_type::varchar, '') from parquet_schema(?) where coalesce(num_children, 0) = 0", LocalPath(file))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]col{}
		for rows.Next() {
			var n string
			var c col
			if err := rows.Scan(&n, &c.typ, &c.fid, &c.conv, &c.logical); err != nil {
				t.Fatal(err)
			}
			out[n] = c
		}
		return out
	}
	orig := schemaOf(filesBefore[0])
	for _, task := range tasks {
		got := schemaOf(task.File.FilePath())
		if len(got) != len(orig) || len(got) != len(tbl.Schema().Fields()) {
			t.Fatalf("compacted file has columns %v, writer's %v", got, orig)
		}
		for _, f := range tbl.Schema().Fields() {
			g, o := got[f.Name], orig[f.Name]
			if g.typ != o.typ || g.fid != fmt.Sprint(f.ID) {
				t.Errorf("column %s: compacted %+v, writer %+v, table field id %d", f.Name, g, o, f.ID)
			}
			if g.typ == "BYTE_ARRAY" && g.conv != "UTF8" {
				t.Errorf("column %s not UTF-8: %+v", f.Name, g)
			}
		}
		if g, o := got["observed_at"], orig["observed_at"]; g.logical != o.logical || !strings.Contains(g.logical, "isAdjustedToUTC=1") || !strings.Contains(g.logical, "MICROS=MicroSeconds()") {
			t.Errorf("observed_at: compacted %+v, writer %+v", g, o)
		}
	}

	// Partition pruning on the event time still selects one day.
	pruned, err := tbl.Scan(table.WithRowFilter(iceberg.GreaterThanEqual(iceberg.Reference("observed_at"), day0.AddDate(0, 0, 1).UnixMicro()))).PlanFiles(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pruned) != 1 {
		t.Errorf("filtered scan plans %d files, want 1", len(pruned))
	}

	// A writer holding the pre-compaction state loses and reloads.
	if _, err := lake.Commit(ctx, s.Table, nil, before); !errors.Is(err, ErrConflict) {
		t.Errorf("stale writer commit: %v, want ErrConflict", err)
	}
	cur, err := lake.State(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	writeBatch(t, lake, s, cur, []int{0}, 5)

	// Nothing left to compact.
	res, err = lake.Compact(ctx, s.Table)
	if err != nil || res.FilesRemoved != 0 {
		t.Errorf("second compaction: %+v, %v", res, err)
	}
}

func TestCompactBelowMinFiles(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		min       int
		small     int64
		batches   int
		wantFiles int
	}{
		{"below min", 4, 1 << 20, 3, 0},
		{"at min", 4, 1 << 20, 4, 8},
		{"files not small", 2, 100, 5, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := smallMaintenance()
			m.CompactMinFiles, m.SmallFileBytes = tc.min, tc.small
			lake, s := testLake(t, m)
			fill(t, lake, s, tc.batches, []int{0, 1}, 3)
			tbl, err := lake.Load(ctx, s.Table)
			if err != nil {
				t.Fatal(err)
			}
			snap := tbl.CurrentSnapshot().SnapshotID
			res, err := lake.Compact(ctx, s.Table)
			if err != nil {
				t.Fatal(err)
			}
			if res.FilesRemoved != tc.wantFiles {
				t.Errorf("compacted %d files, want %d", res.FilesRemoved, tc.wantFiles)
			}
			tbl, err = lake.Load(ctx, s.Table)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantFiles == 0 && tbl.CurrentSnapshot().SnapshotID != snap {
				t.Errorf("compaction with nothing to do committed snapshot %d", tbl.CurrentSnapshot().SnapshotID)
			}
		})
	}
}

func TestCompactEmptyTable(t *testing.T) {
	lake, s := testLake(t, smallMaintenance())
	res, err := lake.Compact(context.Background(), s.Table)
	if err != nil || res != (CompactResult{}) {
		t.Fatalf("compact empty table: %+v, %v", res, err)
	}
}

func TestCompactConflict(t *testing.T) {
	ctx := context.Background()
	lake, s := testLake(t, smallMaintenance())
	st := fill(t, lake, s, 5, []int{0}, 3)
	plan := func() (*table.Table, []iceberg.DataFile, iceberg.Properties) {
		t.Helper()
		tbl, err := lake.Load(ctx, s.Table)
		if err != nil {
			t.Fatal(err)
		}
		groups, err := lake.compactionGroups(ctx, tbl, lake.cfg.Maintenance.CompactMinFiles)
		if err != nil || len(groups) != 1 {
			t.Fatalf("groups: %v, %v", groups, err)
		}
		return tbl, groups[0].files, stateSummary(tbl)
	}

	// Another compaction commits between planning and committing: conflict.
	tbl, olds, props := plan()
	if _, err := lake.Compact(ctx, s.Table); err != nil {
		t.Fatal(err)
	}
	if _, err := lake.commitRewrite(ctx, s.Table, tbl, olds, nil, props); !errors.Is(err, ErrConflict) {
		t.Fatalf("compaction after another compaction: %v, want ErrConflict", err)
	}

	// Writers append between planning and committing: the rewrite goes on
	// top of their snapshots and keeps their state and files.
	st, err := lake.State(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	st.Cluster = "test-cluster"
	for range 4 {
		st = writeBatch(t, lake, s, st, []int{0}, 3)
	}
	tbl, olds, props = plan()
	st = writeBatch(t, lake, s, st, []int{0}, 3)
	st = writeBatch(t, lake, s, st, []int{1}, 3)
	if _, err := lake.commitRewrite(ctx, s.Table, tbl, olds, nil, props); err != nil {
		t.Fatalf("compaction after writer appends: %v", err)
	}
	got, err := lake.State(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	if got.Batch != st.Batch || !reflect.DeepEqual(got.Offsets, st.Offsets) || !reflect.DeepEqual(got.Cursors, st.Cursors) {
		t.Errorf("state after rebased compaction: %+v, want the last writer's %+v", got, st)
	}
	if files := filesPerPartition(t, lake, s.Table); files["observed_at_day=2013-03-01"] != 1 || files["observed_at_day=2013-03-02"] != 1 {
		// olds were dropped (nothing added in their place here); the
		// writers' two new files stay.
		t.Errorf("files after rebased compaction: %v", files)
	}
}

func TestExpireAfterCompaction(t *testing.T) {
	ctx := context.Background()
	lake, s := testLake(t, smallMaintenance())
	fill(t, lake, s, 12, []int{0, 1}, 5)
	tbl, err := lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	small, err := SnapshotFiles(ctx, tbl, nil)
	if err != nil {
		t.Fatal(err)
	}
	firstSnap := tbl.Metadata().Snapshots()[0].SnapshotID
	res, err := lake.Compact(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	st, err := lake.State(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	atCompaction := queryTotals(t, e, "raw.weather")
	st = writeBatch(t, lake, s, st, []int{1}, 5)
	want := queryTotals(t, e, "raw.weather")
	if want.rows != atCompaction.rows+5 {
		t.Fatalf("rows %d after one more batch, %d before", want.rows, atCompaction.rows)
	}

	time.Sleep(5 * time.Millisecond) // snapshots must be strictly older than 0s
	n, err := lake.Expire(ctx, s.Table, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if n != 12 {
		t.Errorf("expired %d snapshots, want 12", n)
	}
	tbl, err = lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(tbl.Metadata().Snapshots()); got != 2 {
		t.Errorf("%d snapshots left, want 2", got)
	}
	for _, f := range small {
		if _, err := os.Stat(LocalPath(f)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("compacted-away file %s still there (%v)", f, err)
		}
	}
	if have := queryTotals(t, e, "raw.weather"); have != want {
		t.Errorf("after expiry %+v, before %+v", have, want)
	}
	got, err := lake.State(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("state after expiry %+v, want %+v", got, st)
	}

	// Time travel to the retained compaction snapshot.
	rows, err := e.Query(ctx, fmt.Sprintf("select count(*) from raw.weather AT (VERSION => %d)", res.SnapshotID))
	if err != nil {
		t.Fatal(err)
	}
	var cnt int64
	for rows.Next() {
		if err := rows.Scan(&cnt); err != nil {
			t.Fatal(err)
		}
	}
	rows.Close()
	if cnt != atCompaction.rows {
		t.Errorf("rows at compaction snapshot = %d, want %d", cnt, atCompaction.rows)
	}
	if have := queryTotals(t, e, fmt.Sprintf("raw.weather AT (VERSION => %d)", res.SnapshotID)); have != atCompaction {
		t.Errorf("time travel %+v, want %+v", have, atCompaction)
	}
	// An expired snapshot is gone.
	if _, err := e.Query(ctx, fmt.Sprintf("select count(*) from raw.weather AT (VERSION => %d)", firstSnap)); !errors.Is(err, ErrTimeTravel) {
		t.Errorf("time travel to expired snapshot: %v, want ErrTimeTravel", err)
	}

	// Nothing more to expire.
	if n, err := lake.Expire(ctx, s.Table, time.Now()); err != nil || n != 0 {
		t.Errorf("second expiry: %d, %v", n, err)
	}
}

func TestExpireKeepsRecentSnapshots(t *testing.T) {
	ctx := context.Background()
	m := smallMaintenance()
	m.ExpireOlderThan = time.Hour
	lake, s := testLake(t, m)
	fill(t, lake, s, 5, []int{0}, 2)
	n, err := lake.Expire(ctx, s.Table, time.Now())
	if err != nil || n != 0 {
		t.Fatalf("expire young snapshots: %d, %v", n, err)
	}
	// An hour and a bit later they are old enough; RetainLast still holds.
	n, err = lake.Expire(ctx, s.Table, time.Now().Add(time.Hour+time.Minute))
	if err != nil || n != 3 {
		t.Fatalf("expire old snapshots: %d, %v; want 3", n, err)
	}
}

func TestRemoveOrphans(t *testing.T) {
	ctx := context.Background()
	lake, s := testLake(t, smallMaintenance())
	fill(t, lake, s, 3, []int{0, 1}, 2)
	tbl, err := lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(DataPath(tbl), "observed_at_day=2013-03-01")
	stale := filepath.Join(dir, "0000000099-crashed.parquet")
	fresh := filepath.Join(dir, "0000000100-inflight.parquet")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("PAR1"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	// Committed files are older than the grace period too.
	live, err := SnapshotFiles(ctx, tbl, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range live {
		if err := os.Chtimes(LocalPath(f), old, old); err != nil {
			t.Fatal(err)
		}
	}

	n, err := lake.RemoveOrphans(ctx, s.Table, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("removed %d orphans, want 1", n)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale orphan still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh file removed: %v", err)
	}
	for _, f := range live {
		if _, err := os.Stat(LocalPath(f)); err != nil {
			t.Errorf("live file removed: %v", err)
		}
	}
	e, err := NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := queryTotals(t, e, "raw.weather"); got.rows != 3*2*2 {
		t.Errorf("rows after orphan cleanup = %d", got.rows)
	}
}

func TestMaintain(t *testing.T) {
	ctx := context.Background()
	lake, s := testLake(t, smallMaintenance())
	fill(t, lake, s, 6, []int{0, 1}, 3)
	tbl, err := lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(DataPath(tbl), "observed_at_day=2013-03-02", "leftover.parquet")
	if err := os.WriteFile(stray, []byte("PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-3 * time.Hour)
	if err := os.Chtimes(stray, old, old); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	rep, err := lake.Maintain(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tables) != 1 {
		t.Fatalf("report: %+v", rep)
	}
	tm := rep.Tables[0]
	if tm.Table != s.Table || tm.Compact.FilesRemoved != 12 || tm.Orphans != 1 || tm.Err != nil {
		t.Errorf("maintenance: %+v", tm)
	}
	// The compaction snapshot and the last write are kept.
	if tm.Expired != 5 {
		t.Errorf("expired %d snapshots, want 5", tm.Expired)
	}
	e, err := NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := queryTotals(t, e, "raw.weather"); got.rows != 6*2*3 {
		t.Errorf("rows after maintenance = %d", got.rows)
	}
}

func TestRunMaintenanceStops(t *testing.T) {
	m := smallMaintenance()
	m.Interval = 10 * time.Millisecond
	lake, s := testLake(t, m)
	fill(t, lake, s, 4, []int{0}, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { lake.RunMaintenance(ctx); close(done) }()
	deadline := time.After(2 * time.Second)
	for {
		if got := filesPerPartition(t, lake, s.Table); got["observed_at_day=2013-03-01"] == 1 {
			break
		}
		select {
		case <-deadline:
			t.Fatal("background maintenance did not compact")
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	<-done

	// Interval 0: returns at once.
	lake.cfg.Maintenance.Interval = 0
	lake.RunMaintenance(context.Background())
}

// TestMaintainerNoopPass: a pass over a table with nothing to do reads no
// manifest list or manifest and writes no metadata; the memory it keeps
// does not hide work that shows up later.
func TestMaintainerNoopPass(t *testing.T) {
	ctx := context.Background()
	m := smallMaintenance()
	m.ExpireOlderThan = time.Hour
	m.RetainLast = 2
	lake, s := testLake(t, m)
	st := fill(t, lake, s, 3, []int{0, 1}, 2) // 3 files per partition < 4
	mt := lake.newMaintainer()
	metaFiles := func() int {
		tbl, err := lake.Load(ctx, s.Table)
		if err != nil {
			t.Fatal(err)
		}
		ents, err := os.ReadDir(filepath.Join(LocalPath(tbl.Location()), "metadata"))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	pass := func() TableMaintenance {
		t.Helper()
		rep, err := mt.pass(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return rep.Tables[0]
	}
	if tm := pass(); tm.Compact.FilesRemoved+tm.Expired+tm.Orphans != 0 {
		t.Fatalf("first pass did something: %+v", tm)
	}
	before, reads := metaFiles(), mt.reads
	for i := range 3 {
		rep, err := mt.pass(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if tm := rep.Tables[0]; tm.Compact.FilesRemoved+tm.Expired+tm.Orphans != 0 || tm.Conflict {
			t.Fatalf("pass %d did something: %+v", i, tm)
		}
		if rep.Skipped != 2 {
			t.Errorf("pass %d skipped %d steps, want 2 (compaction, expiry)", i, rep.Skipped)
		}
		if tm := rep.Tables[0]; tm.Took <= 0 || tm.Took > rep.Took {
			t.Errorf("pass %d: table took %s, pass %s", i, tm.Took, rep.Took)
		}
	}
	if mt.reads != reads {
		t.Errorf("no-op passes read %d manifest lists and manifests, want 0", mt.reads-reads)
	}
	if n := metaFiles(); n != before {
		t.Errorf("no-op passes wrote %d metadata files", n-before)
	}

	// A new write brings day 0 to the threshold: the next pass compacts
	// it, reading only the new manifest (and the manifest list).
	reads = mt.reads
	writeBatch(t, lake, s, st, []int{0}, 2)
	if tm := pass(); tm.Compact.FilesRemoved != 4 {
		t.Errorf("after a write: %+v, want 4 files compacted", tm)
	}
	if got := mt.reads - reads; got > 4 {
		t.Errorf("planning after one write read %d manifest lists and manifests", got)
	}

	// An old stray file is an orphan, memory or not.
	tbl, err := lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(DataPath(tbl), "observed_at_day=2013-03-02", "leftover.parquet")
	if err := os.WriteFile(stray, []byte("PAR1"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-3 * time.Hour)
	if err := os.Chtimes(stray, old, old); err != nil {
		t.Fatal(err)
	}
	if tm := pass(); tm.Orphans != 1 {
		t.Errorf("stray file: %+v, want 1 orphan removed", tm)
	}
	// Snapshots grow old: expiry is not skipped.
	rep, err := mt.pass(ctx, time.Now().Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if tm := rep.Tables[0]; tm.Expired == 0 {
		t.Errorf("two hours later: %+v, want snapshots expired", tm)
	}
	e, err := NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := queryTotals(t, e, "raw.weather"); got.rows != (3*2+1)*2 {
		t.Errorf("rows after maintenance = %d, want %d", got.rows, (3*2+1)*2)
	}
}

// TestEngineKeepsNoFileCache: reading the lake's Parquet files leaves no
// copy of them in the engine's memory (DuckDB's external file cache is off:
// the OS caches local files), and jemalloc purges in the background.
func TestEngineKeepsNoFileCache(t *testing.T) {
	ctx := context.Background()
	lake, s := testLake(t, smallMaintenance())
	fill(t, lake, s, 12, []int{0, 1}, 50)
	e, err := NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for range 3 {
		queryTotals(t, e, "raw.weather")
	}
	var cached int64
	if err := e.DB().QueryRowContext(ctx, "SELECT coalesce(sum(memory_usage_bytes), 0)::BIGINT FROM duckdb_memory() WHERE tag = 'EXTERNAL_FILE_CACHE'").Scan(&cached); err != nil {
		t.Fatal(err)
	}
	var purge string
	if err := e.DB().QueryRowContext(ctx, "SELECT current_setting('allocator_background_threads')::VARCHAR").Scan(&purge); err != nil {
		t.Fatal(err)
	}
	if cached != 0 || purge != "true" {
		t.Errorf("file cache %d bytes (want 0), allocator_background_threads %s (want true)", cached, purge)
	}
}

// TestCompactBackfillTargetSize: a backfill's partition larger than
// target_file_bytes is not merged into one ever-growing file but into files
// of up to the target, each above half of it but the last (the sizes scaled
// down from 64/128 MiB to the test's files).
func TestCompactBackfillTargetSize(t *testing.T) {
	ctx := context.Background()
	lake, s := testLake(t, smallMaintenance())
	fill(t, lake, s, 12, []int{0}, 50)
	tbl, err := lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := tbl.Scan().PlanFiles(ctx)
	if err != nil || len(tasks) != 12 {
		t.Fatalf("%d files (%v), want 12", len(tasks), err)
	}
	var biggest int64
	for _, task := range tasks {
		biggest = max(biggest, task.File.FileSizeBytes())
	}
	// Every file is small; four of them (at most) fit the target.
	lake.cfg.Maintenance.SmallFileBytes = biggest + 1
	lake.cfg.Maintenance.TargetFileBytes = 4 * (biggest + 1)
	e, err := NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	want := queryTotals(t, e, "raw.weather")
	res, err := lake.CompactBackfill(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	got := filesPerPartition(t, lake, s.Table)
	if n := got["observed_at_day=2013-03-01"]; n < 3 || n > 4 {
		t.Fatalf("after compaction: %v (%+v); want 12 files of ≤ 1/4 of the target merged into 3 or 4", got, res)
	}
	if err := e.Refresh(ctx, s.Table); err != nil {
		t.Fatal(err)
	}
	if after := queryTotals(t, e, "raw.weather"); after != want {
		t.Fatalf("rows changed: %+v → %+v", want, after)
	}
}

// TestBinFiles: files are packed in order into bins of at most the target;
// with files below the small size and a target of at least twice it, every
// bin but the last holds more than target − small.
func TestBinFiles(t *testing.T) {
	const small, target = 64, 128
	for seed := range 50 {
		var fs []iceberg.DataFile
		n := 1 + seed%17
		for i := range n {
			fs = append(fs, sizedFile{size: int64(1 + (seed*31+i*17)%(small-1))})
		}
		bins := binFiles(fs, target)
		total := 0
		for i, b := range bins {
			var sum int64
			for _, f := range b {
				sum += f.FileSizeBytes()
			}
			total += len(b)
			if sum > target {
				t.Fatalf("seed %d bin %d: %d bytes > target %d", seed, i, sum, target)
			}
			if i < len(bins)-1 && sum <= target-small {
				t.Fatalf("seed %d bin %d: %d bytes, want > %d", seed, i, sum, target-small)
			}
		}
		if total != n {
			t.Fatalf("seed %d: %d files binned, want %d", seed, total, n)
		}
	}
}

// sizedFile is a data file that only knows its size.
type sizedFile struct {
	iceberg.DataFile
	size int64
}

func (f sizedFile) FileSizeBytes() int64 { return f.size }

// TestDataFileEncodings: the writer's data files use only encodings that
// every engine sharing the lake reads — Apache Iceberg's vectorized Parquet
// reader (Spark) refuses DELTA_LENGTH_BYTE_ARRAY, parquet-go's default for
// strings (found by TestSparkSharesTheLake).
func TestDataFileEncodings(t *testing.T) {
	lake, s := testLake(t, smallMaintenance())
	_, files := batchFiles(t, lake, s, State{Offsets: map[string]map[int]int64{}, Cursors: map[string]int64{}}, []int{0}, 50)
	f, err := os.Open(LocalPath(files[0].FilePath()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, rg := range pf.Metadata().RowGroups {
		for _, cc := range rg.Columns {
			for _, enc := range cc.MetaData.Encoding {
				switch enc {
				case format.Plain, format.RLE, format.RLEDictionary, format.PlainDictionary:
				default:
					t.Errorf("column %v uses encoding %v", cc.MetaData.PathInSchema, enc)
				}
			}
			seen++
		}
	}
	if seen != len(s.Fields)+1 {
		t.Errorf("%d column chunks, want %d", seen, len(s.Fields)+1)
	}
}
