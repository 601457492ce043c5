package warehouse

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	_ "github.com/duckdb/duckdb-go/v2" // database/sql driver "duckdb" for rewriting files

	"citybrain/schemas"
)

// CompactResult says what one compaction of a table did.
type CompactResult struct {
	// SnapshotID is the "replace" snapshot committed; 0 if nothing was compacted.
	SnapshotID int64
	// Partitions is how many partitions had their small files rewritten.
	Partitions int
	// FilesRemoved is how many small files were replaced.
	FilesRemoved int
	// FilesAdded is how many compacted files replaced them (one per partition).
	FilesAdded int
	// Rows is the number of records rewritten.
	Rows int64
	// BytesBefore and BytesAfter are the sizes of the replaced and new files.
	BytesBefore, BytesAfter int64
}

// TableMaintenance is the outcome of one maintenance pass over one table.
type TableMaintenance struct {
	Table   string
	Compact CompactResult
	// Conflict: a writer committed while compacting, so compaction gave up
	// for this pass.
	Conflict bool
	// Expired is the number of snapshots expired.
	Expired int
	// Orphans is the number of unreferenced data files deleted.
	Orphans int
	// Err joins the errors of the steps that failed.
	Err error
	// Took is how long the table's maintenance took.
	Took time.Duration
}

// MaintenanceReport is the outcome of one maintenance pass over the lake.
type MaintenanceReport struct {
	Started time.Time
	Tables  []TableMaintenance
	// Took is how long the pass took.
	Took time.Duration
	// Skipped counts the steps (compaction, expiry, orphan cleanup of a
	// table) that an earlier pass's memory showed had nothing to do.
	Skipped int
}

// Maintain runs one full pass over every table: compaction, snapshot
// expiry, orphan cleanup, each planned from scratch. Errors on one table are
// logged and the pass goes on; the joined error is returned. A compaction
// that loses the race against a writer (ErrConflict) is not an error: it is
// retried next pass. RunMaintenance does the same with a memory of earlier
// passes, so that a pass over a table with nothing to do reads almost nothing.
func (l *Lake) Maintain(ctx context.Context, now time.Time) (MaintenanceReport, error) {
	return l.newMaintainer().pass(ctx, now)
}

// SetYield makes each maintenance pass of RunMaintenance first call yield,
// which returns when background work may go on (serve: when the warning
// engine is caught up, freshness.Registry.Yield) and how long it waited.
func (l *Lake) SetYield(yield func(ctx context.Context) time.Duration) { l.yield = yield }

// RunMaintenance runs a maintenance pass every cfg.Maintenance.Interval
// until ctx is done (an interval of 0 disables it). It logs a line per table
// that had something done or failed, and one per pass with its duration.
// Passes remember what they planned (see maintainer), so a pass that finds
// nothing to do costs a metadata read and a directory listing per table.
func (l *Lake) RunMaintenance(ctx context.Context) {
	iv := l.cfg.Maintenance.Interval
	if iv <= 0 {
		return
	}
	m := l.newMaintainer()
	tick := time.NewTicker(iv)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if l.yield != nil {
				if w := l.yield(ctx); w > time.Second {
					l.log.Info("maintenance pass waited for the live path", "waited", w.Round(time.Second))
				}
				now = time.Now()
			}
			rep, err := m.pass(ctx, now)
			busy := 0
			for _, tm := range rep.Tables {
				if tm.Compact.FilesRemoved == 0 && tm.Expired == 0 && tm.Orphans == 0 && !tm.Conflict && tm.Err == nil {
					continue
				}
				busy++
				l.log.Info("maintenance", "table", tm.Table,
					"files_compacted", tm.Compact.FilesRemoved, "files_added", tm.Compact.FilesAdded,
					"snapshots_expired", tm.Expired, "orphans_removed", tm.Orphans,
					"conflict", tm.Conflict, "took", tm.Took.Round(time.Millisecond))
			}
			l.log.Info("maintenance pass", "tables", len(rep.Tables), "tables_changed", busy,
				"skipped", rep.Skipped, "took", rep.Took.Round(time.Millisecond))
			if err != nil && ctx.Err() == nil {
				l.log.Error("maintenance pass", "err", err)
			}
		}
	}
}

// tableNames lists every table of the catalog as "ns.table".
func (l *Lake) tableNames(ctx context.Context) ([]string, error) {
	nss, err := l.cat.ListNamespaces(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var out []string
	for _, ns := range nss {
		for ident, err := range l.cat.ListTables(ctx, ns) {
			if err != nil {
				return nil, fmt.Errorf("list tables in %s: %w", strings.Join(ns, "."), err)
			}
			out = append(out, strings.Join(ident, "."))
		}
	}
	sort.Strings(out)
	return out, nil
}

// compactGroup is the small files of one partition.
type compactGroup struct {
	files []iceberg.DataFile
	out   string // local path the compacted file is written to (l.stagePath(uri))
	uri   string // its location as recorded in the manifest
}

// Compact rewrites, per partition, the data files smaller than
// cfg.Maintenance.SmallFileBytes into files of up to TargetFileBytes (see
// binFiles) when there are at least CompactMinFiles of them, and commits the lot as one "replace" snapshot
// whose summary carries the table's State unchanged. Writers' appends
// meanwhile are fine (the commit goes on top of them, see commitRewrite);
// any other commit meanwhile makes Compact fail with ErrConflict, remove
// what it wrote and leave the table alone. Rows are rewritten exactly (same records, sorted by event
// time) with the table's Iceberg field ids.
func (l *Lake) Compact(ctx context.Context, name string) (CompactResult, error) {
	res, _, err := l.compact(ctx, name, l.cfg.Maintenance.CompactMinFiles)
	return res, err
}

// CompactBackfill compacts every partition of a table that has two or more
// small files: after a backfill that swept the partitions several times (a
// file ordered by station, then time), each partition it wrote is left as
// one file, or, when it holds more than TargetFileBytes, as files above
// half of it and at most one smaller.
func (l *Lake) CompactBackfill(ctx context.Context, name string) (CompactResult, error) {
	res, _, err := l.compact(ctx, name, 2)
	return res, err
}

// compact is Compact that also returns the files it replaced.
func (l *Lake) compact(ctx context.Context, name string, minFiles int) (CompactResult, []iceberg.DataFile, error) {
	var res CompactResult
	t, err := l.Load(ctx, name)
	if err != nil {
		return res, nil, err
	}
	snap := t.CurrentSnapshot()
	if snap == nil {
		return res, nil, nil
	}
	groups, err := l.compactionGroups(ctx, t, minFiles)
	if err != nil || len(groups) == 0 {
		return res, nil, err
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		return res, nil, fmt.Errorf("compact %s: open duckdb: %w", name, err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if q := l.cfg.Query; q.MemoryLimit != "" {
		if _, err := db.ExecContext(ctx, fmt.Sprintf("SET memory_limit = %s", quoteString(q.MemoryLimit))); err != nil {
			return res, nil, fmt.Errorf("compact %s: %w", name, err)
		}
	}
	// Compaction is background work: half the cores at most (the query
	// threads when fewer), so the live path keeps the rest.
	threads := max(1, runtime.NumCPU()/2)
	if q := l.cfg.Query.Threads; q > 0 {
		threads = min(threads, q)
	}
	if _, err := db.ExecContext(ctx, fmt.Sprintf("SET threads = %d", threads)); err != nil {
		return res, nil, fmt.Errorf("compact %s: %w", name, err)
	}

	var inputs []iceberg.DataFile
	for _, g := range groups {
		inputs = append(inputs, g.files...)
	}
	rd, err := l.openInputs(ctx, inputs)
	if err != nil {
		return res, nil, fmt.Errorf("compact %s: %w", name, err)
	}
	defer rd.release()
	var written []string
	cleanup := func() { l.removeAll(ctx, written) }
	var olds, news []iceberg.DataFile
	for _, g := range groups {
		df, err := l.rewriteGroup(ctx, db, t, rd, g)
		if err != nil {
			cleanup()
			return CompactResult{}, nil, fmt.Errorf("compact %s: %w", name, err)
		}
		written = append(written, g.uri)
		var rows int64
		for _, f := range g.files {
			rows += f.Count()
			res.BytesBefore += f.FileSizeBytes()
		}
		if rows != df.Count() {
			cleanup()
			return CompactResult{}, nil, fmt.Errorf("compact %s: %s has %d rows, its inputs %d", name, g.out, df.Count(), rows)
		}
		res.Rows += rows
		res.BytesAfter += df.FileSizeBytes()
		res.FilesRemoved += len(g.files)
		olds = append(olds, g.files...)
		news = append(news, df)
	}
	res.Partitions, res.FilesAdded = len(groups), len(news)

	id, err := l.commitRewrite(ctx, name, t, olds, news, stateSummary(t))
	if err != nil {
		if errors.Is(err, ErrConflict) {
			cleanup()
		}
		return CompactResult{}, nil, err
	}
	res.SnapshotID = id
	l.log.Info("table compacted", "table", name, "snapshot", id, "partitions", res.Partitions,
		"files", res.FilesRemoved, "rows", res.Rows, "bytes_before", res.BytesBefore, "bytes_after", res.BytesAfter)
	return res, olds, nil
}

// commitRewrite commits the replacement of olds by news under the table's
// commit lock. The transaction starts from t, the metadata the files were
// planned from, and pins its main branch there. If writers only appended
// since t (the lake writers commit every few seconds, faster than a busy
// table compacts), the rewrite is still exact: it is rebased onto the
// current snapshot, carrying that snapshot's State. Any other commit since
// (a compaction, an overwrite, an expiry of t's snapshot) gives ErrConflict,
// as does a commit from another process that lands first.
func (l *Lake) commitRewrite(ctx context.Context, name string, t *table.Table, olds, news []iceberg.DataFile, props iceberg.Properties) (int64, error) {
	unlock := l.lock(name)
	defer unlock()
	if cur, err := l.Load(ctx, name); err == nil && appendedSince(cur, t) {
		props, t = stateSummary(cur), cur
	}
	tx := t.NewTransaction()
	if err := tx.AssertRefSnapshotID(table.MainBranch); err != nil {
		return 0, fmt.Errorf("compact %s: %w", name, err)
	}
	// NewRewrite stages ReplaceDataFilesWithDataFiles with rewrite
	// semantics, so the snapshot's operation is "replace".
	rw := tx.NewRewrite(props)
	for _, df := range olds {
		rw.DeleteFile(df)
	}
	for _, df := range news {
		rw.AddDataFile(df)
	}
	if err := rw.Commit(ctx); err != nil {
		return 0, fmt.Errorf("compact %s: %w", name, err)
	}
	nt, err := tx.Commit(l.ioCtx(ctx))
	if err != nil {
		if l.lostRace(ctx, name, t, err) {
			return 0, fmt.Errorf("%w: %s: %v", ErrConflict, name, err)
		}
		return 0, fmt.Errorf("compact %s: %w", name, err)
	}
	return nt.CurrentSnapshot().SnapshotID, nil
}

// appendedSince tells whether cur's main branch descends from base's
// current snapshot through appends only (and is not that snapshot).
func appendedSince(cur, base *table.Table) bool {
	from, s := base.CurrentSnapshot(), cur.CurrentSnapshot()
	if from == nil || s == nil || s.SnapshotID == from.SnapshotID {
		return false
	}
	meta := cur.Metadata()
	for s.SnapshotID != from.SnapshotID {
		if s.Summary == nil || s.Summary.Operation != table.OpAppend || s.ParentSnapshotID == nil {
			return false
		}
		p := meta.SnapshotByID(*s.ParentSnapshotID)
		if p == nil {
			return false
		}
		s = p
	}
	return true
}

// lostRace tells whether a failed commit from base failed because another
// commit moved the table's main branch. The REST catalog says so with
// table.ErrCommitFailed, but the local (hadoop) catalog returns its
// "requirement failed" error unwrapped, so the table is reloaded to see.
func (l *Lake) lostRace(ctx context.Context, name string, base *table.Table, err error) bool {
	if errors.Is(err, table.ErrCommitFailed) {
		return true
	}
	cur, lerr := l.Load(ctx, name)
	if lerr != nil {
		return false
	}
	var was, is int64
	if s := base.CurrentSnapshot(); s != nil {
		was = s.SnapshotID
	}
	if s := cur.CurrentSnapshot(); s != nil {
		is = s.SnapshotID
	}
	return was != is
}

// compactionGroups finds, per partition, the small files of the current
// snapshot, keeping partitions with at least CompactMinFiles of them.
func (l *Lake) compactionGroups(ctx context.Context, t *table.Table, minFiles int) ([]compactGroup, error) {
	m := l.cfg.Maintenance
	tasks, err := t.Scan().PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan files of %s: %w", strings.Join(t.Identifier(), "."), err)
	}
	byPart := map[string][]iceberg.DataFile{}
	for _, task := range tasks {
		f := task.File
		if len(task.DeleteFiles)+len(task.EqualityDeleteFiles)+len(task.DeletionVectorFiles) > 0 {
			continue // rewriting would have to apply the deletes
		}
		if !compactable(f, m.SmallFileBytes) {
			continue
		}
		key := compactKey(f)
		byPart[key] = append(byPart[key], f)
	}
	keys := make([]string, 0, len(byPart))
	for k, fs := range byPart {
		if len(fs) >= minFiles {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	target := m.TargetFileBytes
	if target <= 0 {
		target = 2 * m.SmallFileBytes
	}
	groups := make([]compactGroup, 0, len(keys))
	for _, k := range keys {
		fs := byPart[k]
		sort.Slice(fs, func(i, j int) bool { return fs[i].FilePath() < fs[j].FilePath() })
		for _, bin := range binFiles(fs, target) {
			if len(bin) >= 2 {
				groups = append(groups, l.newCompactGroup(bin))
			}
		}
	}
	return groups, nil
}

// binFiles packs files, in order, into bins of at most target bytes (a
// file larger than target alone). Each file is below the small size and
// target is at least twice it, so every bin but the last holds more than
// target − small bytes: a backfill's partition ends as files above half the
// target and at most one smaller one.
func binFiles(fs []iceberg.DataFile, target int64) [][]iceberg.DataFile {
	var bins [][]iceberg.DataFile
	var cur []iceberg.DataFile
	var size int64
	for _, f := range fs {
		if len(cur) > 0 && size+f.FileSizeBytes() > target {
			bins = append(bins, cur)
			cur, size = nil, 0
		}
		cur = append(cur, f)
		size += f.FileSizeBytes()
	}
	if len(cur) > 0 {
		bins = append(bins, cur)
	}
	return bins
}

// newCompactGroup names the file a group is rewritten into after its files.
func (l *Lake) newCompactGroup(fs []iceberg.DataFile) compactGroup {
	h := sha256.New()
	for _, f := range fs {
		h.Write([]byte(f.FilePath()))
		h.Write([]byte{0})
	}
	base := "compact-" + hex.EncodeToString(h.Sum(nil)[:8]) + ".parquet"
	uri := uriDir(fs[0].FilePath()) + "/" + base
	return compactGroup{files: fs, uri: uri, out: l.stagePath(uri)}
}

// uriDir is the directory part of a file URI (path.Dir would fold the
// "//" of "file:///").
func uriDir(uri string) string {
	if i := strings.LastIndex(uri, "/"); i >= 0 {
		return uri[:i]
	}
	return "."
}

// rewriteGroup writes the rows of a group's files into g.out and describes
// the new file for the manifest.
func (l *Lake) rewriteGroup(ctx context.Context, db *sql.DB, t *table.Table, rd *inputFiles, g compactGroup) (iceberg.DataFile, error) {
	return l.rewriteRows(ctx, db, t, g, "SELECT * FROM "+rd.read(g.files))
}

// inputFiles are data files opened for a DuckDB statement (fetched into the
// cache and pinned, on an object store), by URI.
type inputFiles struct {
	paths   map[string]string // uri → local path
	uris    map[string]string // local path → uri
	release func()
}

// openInputs opens files for reading (see inputFiles).
func (l *Lake) openInputs(ctx context.Context, files []iceberg.DataFile) (*inputFiles, error) {
	uris := make([]string, 0, len(files))
	seen := map[string]bool{}
	for _, f := range files {
		if !seen[f.FilePath()] {
			seen[f.FilePath()] = true
			uris = append(uris, f.FilePath())
		}
	}
	paths, release, err := l.openFiles(ctx, uris)
	if err != nil {
		return nil, err
	}
	rd := &inputFiles{paths: make(map[string]string, len(uris)), uris: make(map[string]string, len(uris)), release: release}
	for i, u := range uris {
		rd.paths[u] = paths[i]
		rd.uris[paths[i]] = u
	}
	return rd, nil
}

// read is a read_parquet over the local copies of files (each opened by
// openInputs).
func (rd *inputFiles) read(files []iceberg.DataFile, opts ...string) string {
	inputs := make([]string, len(files))
	for i, f := range files {
		inputs[i] = quoteString(rd.paths[f.FilePath()])
	}
	return fmt.Sprintf("read_parquet([%s], %s)", strings.Join(inputs, ", "), strings.Join(append([]string{"union_by_name = true"}, opts...), ", "))
}

// removeAll deletes files a rewrite wrote but did not commit.
func (l *Lake) removeAll(ctx context.Context, uris []string) {
	for _, u := range uris {
		l.removeFile(context.WithoutCancel(ctx), u)
	}
}

// rewriteRows writes the rows of the query src (every table column, by
// name) into g.out, sorted by event time, describes the new file as one of
// g's partition, and publishes it (an upload, on an object store).
func (l *Lake) rewriteRows(ctx context.Context, db *sql.DB, t *table.Table, g compactGroup, src string) (iceberg.DataFile, error) {
	fields := t.Schema().Fields()
	cols := make([]string, len(fields))
	ids := make([]string, len(fields))
	for i, f := range fields {
		cols[i] = fmt.Sprintf("CAST(%s AS %s) AS %s", quoteIdent(f.Name), duckType(f.Type), quoteIdent(f.Name))
		ids[i] = fmt.Sprintf("%s: %d", quoteIdent(f.Name), f.ID)
	}
	order := ""
	if et := eventTimeField(t); et != "" {
		order = " ORDER BY " + quoteIdent(et)
		if _, ok := t.Schema().FindFieldByName(schemas.CursorField); ok {
			order += ", " + quoteIdent(schemas.CursorField)
		}
	}
	tmp := g.out + ".tmp"
	if err := os.MkdirAll(filepath.Dir(g.out), 0o755); err != nil {
		return nil, err
	}
	os.Remove(tmp)
	q := fmt.Sprintf("COPY (SELECT %s FROM (%s)%s) TO %s (FORMAT parquet, COMPRESSION zstd, FIELD_IDS {%s})",
		strings.Join(cols, ", "), src, order, quoteString(tmp), strings.Join(ids, ", "))
	if _, err := db.ExecContext(ctx, q); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("rewrite %s: %w", g.out, err)
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, g.out); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	df, err := describeCompacted(ctx, db, t, g)
	if err != nil {
		os.Remove(g.out)
		return nil, err
	}
	if err := l.publish(ctx, g.uri); err != nil {
		os.Remove(g.out)
		return nil, fmt.Errorf("upload %s: %w", g.uri, err)
	}
	return df, nil
}

func syncFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// eventTimeField is the column compacted files are sorted by: the event
// time of the table's citybrain schema, else its first timestamp column.
func eventTimeField(t *table.Table) string {
	if n := t.Properties()["citybrain.schema"]; n != "" {
		if reg, err := schemas.Builtin(); err == nil {
			if s, err := reg.Get(n); err == nil {
				if _, ok := t.Schema().FindFieldByName(s.EventTime); ok {
					return s.EventTime
				}
			}
		}
	}
	for _, f := range t.Schema().Fields() {
		switch f.Type.(type) {
		case iceberg.TimestampTzType, iceberg.TimestampType:
			return f.Name
		}
	}
	return ""
}

// describeCompacted builds the manifest entry of a compacted file: the
// inputs' partition, and counts and bounds read back from the file itself.
func describeCompacted(ctx context.Context, db *sql.DB, t *table.Table, g compactGroup) (iceberg.DataFile, error) {
	fi, err := os.Stat(g.out)
	if err != nil {
		return nil, err
	}
	fields := t.Schema().Fields()
	// Bounds are kept for the integer and time columns every input has
	// bounds for (the writer records them for the event time).
	var bounded []iceberg.NestedField
	for _, f := range fields {
		switch f.Type.(type) {
		case iceberg.Int32Type, iceberg.Int64Type, iceberg.DateType, iceberg.TimestampTzType, iceberg.TimestampType:
		default:
			continue
		}
		all := true
		for _, in := range g.files {
			_, lo := in.LowerBoundValues()[f.ID]
			_, hi := in.UpperBoundValues()[f.ID]
			all = all && lo && hi
		}
		if all {
			bounded = append(bounded, f)
		}
	}
	exprs := []string{"count(*)"}
	for _, f := range fields {
		exprs = append(exprs, "count("+quoteIdent(f.Name)+")")
	}
	for _, f := range bounded {
		var v string
		switch f.Type.(type) {
		case iceberg.DateType:
			v = "date_diff('day', DATE '1970-01-01', " + quoteIdent(f.Name) + ")"
		case iceberg.TimestampTzType, iceberg.TimestampType:
			v = "epoch_us(" + quoteIdent(f.Name) + ")"
		default:
			v = "CAST(" + quoteIdent(f.Name) + " AS BIGINT)"
		}
		exprs = append(exprs, "min("+v+")", "max("+v+")")
	}
	q := fmt.Sprintf("SELECT %s FROM read_parquet(%s)", strings.Join(exprs, ", "), quoteString(g.out))
	var rows int64
	counts := make([]int64, len(fields))
	bounds := make([]sql.NullInt64, 2*len(bounded))
	dest := []any{&rows}
	for i := range counts {
		dest = append(dest, &counts[i])
	}
	for i := range bounds {
		dest = append(dest, &bounds[i])
	}
	if err := db.QueryRowContext(ctx, q).Scan(dest...); err != nil {
		return nil, fmt.Errorf("read back %s: %w", g.out, err)
	}

	part := g.files[0].Partition()
	logical := map[int]string{}
	for id, v := range part {
		if _, ok := v.(iceberg.Date); ok {
			logical[id] = "date"
		}
	}
	spec := t.Spec()
	if sid := g.files[0].SpecID(); int(sid) != spec.ID() {
		found := false
		for _, s := range t.Metadata().PartitionSpecs() {
			if s.ID() == int(sid) {
				spec, found = s, true
			}
		}
		if !found {
			return nil, fmt.Errorf("%s: partition spec %d not in table metadata", g.out, sid)
		}
	}
	b, err := iceberg.NewDataFileBuilder(spec, iceberg.EntryContentData, g.uri, iceberg.ParquetFile,
		part, logical, nil, rows, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("describe %s: %w", g.out, err)
	}
	values, nulls := map[int]int64{}, map[int]int64{}
	for i, f := range fields {
		values[f.ID] = rows
		nulls[f.ID] = rows - counts[i]
	}
	b.ValueCounts(values).NullValueCounts(nulls)
	lo, hi := map[int][]byte{}, map[int][]byte{}
	for i, f := range bounded {
		mn, mx := bounds[2*i], bounds[2*i+1]
		if !mn.Valid || !mx.Valid {
			continue
		}
		lo[f.ID], hi[f.ID] = encodeBound(f.Type, mn.Int64), encodeBound(f.Type, mx.Int64)
	}
	if len(lo) > 0 {
		b.LowerBoundValues(lo).UpperBoundValues(hi)
	}
	return b.Build(), nil
}

// encodeBound is Iceberg's single-value binary form of an integer-backed value.
func encodeBound(t iceberg.Type, v int64) []byte {
	switch t.(type) {
	case iceberg.Int32Type, iceberg.DateType:
		b := make([]byte, 4)
		binary.LittleEndian.PutUint32(b, uint32(int32(v)))
		return b
	}
	b := make([]byte, 8)
	binary.LittleEndian.PutUint64(b, uint64(v))
	return b
}

// Expire expires the table's snapshots older than ExpireOlderThan before
// now, always keeping the newest RetainLast, and deletes the manifests and
// data files only expired snapshots referenced. It returns how many
// snapshots were expired.
func (l *Lake) Expire(ctx context.Context, name string, now time.Time) (int, error) {
	unlock := l.lock(name)
	defer unlock()
	t, err := l.Load(ctx, name)
	if err != nil {
		return 0, err
	}
	before := len(t.Metadata().Snapshots())
	if before == 0 {
		return 0, nil
	}
	tx := t.NewTransaction()
	if err := tx.ExpireSnapshots(l.expireOpts(t, now)...); err != nil {
		return 0, fmt.Errorf("expire %s: %w", name, err)
	}
	nt, err := tx.Commit(l.ioCtx(ctx))
	if err != nil {
		if l.lostRace(ctx, name, t, err) {
			return 0, fmt.Errorf("%w: expire %s: %v", ErrConflict, name, err)
		}
		return 0, fmt.Errorf("expire %s: %w", name, err)
	}
	n := before - len(nt.Metadata().Snapshots())
	if n > 0 {
		l.log.Info("snapshots expired", "table", name, "expired", n, "kept", len(nt.Metadata().Snapshots()))
	}
	return n, nil
}

// minExpireAge: the snapshot cap (MaxSnapshots) never expires a snapshot
// younger than this. Expiry deletes the data files only expired snapshots
// name; the query layer's views follow each commit within seconds, and a
// query that planned an older snapshot has this long to read it.
const minExpireAge = 5 * time.Minute

// expireOpts are the options of the expiry Expire commits at now on t:
// snapshots older than ExpireOlderThan go, and, past the newest
// MaxSnapshots, those older than minExpireAge.
func (l *Lake) expireOpts(t *table.Table, now time.Time) []table.ExpireSnapshotsOpt {
	m := l.cfg.Maintenance
	keep := m.ExpireOlderThan
	if snaps := t.Metadata().Snapshots(); m.MaxSnapshots > 0 && len(snaps) > m.MaxSnapshots {
		ts := make([]int64, len(snaps))
		for i, s := range snaps {
			ts[i] = s.TimestampMs
		}
		sort.Slice(ts, func(i, j int) bool { return ts[i] > ts[j] })
		// The newest MaxSnapshots are at or after ts[MaxSnapshots-1]: keep
		// what is newer than that, and never less than minExpireAge.
		capAge := max(now.Sub(time.UnixMilli(ts[m.MaxSnapshots-1])), minExpireAge)
		keep = min(keep, capAge)
	}
	// iceberg-go measures age from the wall clock; shift the cut-off so it
	// is now - keep.
	age := keep + time.Since(now)
	if age < 0 {
		age = 0
	}
	return []table.ExpireSnapshotsOpt{table.WithOlderThan(age), table.WithRetainLast(max(m.RetainLast, 1)), table.WithPostCommit(true)}
}

// RemoveOrphans deletes the files under the table's data directory that no
// snapshot of the table references and that were last modified more than
// OrphanGrace before now: leftovers of writers and compactions that crashed
// before committing. It returns how many files were deleted.
func (l *Lake) RemoveOrphans(ctx context.Context, name string, now time.Time) (int, error) {
	// Read the metadata before listing the directory: a file committed
	// after this point was written less than OrphanGrace ago.
	t, err := l.Load(ctx, name)
	if err != nil {
		return 0, err
	}
	live, _, err := l.referencedFiles(ctx, t)
	if err != nil {
		return 0, fmt.Errorf("remove orphans of %s: %w", name, err)
	}
	cutoff := now.Add(-l.cfg.Maintenance.OrphanGrace)
	objs, err := l.listData(ctx, t)
	if err != nil {
		return 0, fmt.Errorf("remove orphans of %s: %w", name, err)
	}
	removed := 0
	var errs []error
	for _, o := range objs {
		if _, ok := live[l.fileKey(o.uri)]; ok || !o.modTime.Before(cutoff) {
			continue
		}
		if err := l.removeFile(ctx, o.uri); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
		l.log.Info("orphan removed", "table", name, "file", o.uri, "modified", o.modTime)
	}
	return removed, errors.Join(errs...)
}

// referencedFiles is the set of the live data and delete files of every
// snapshot of the table (by fileKey), and how many manifest lists and
// manifests it read.
func (l *Lake) referencedFiles(ctx context.Context, t *table.Table) (map[string]struct{}, int, error) {
	fsys, err := t.FS(l.ioCtx(ctx))
	if err != nil {
		return nil, 0, err
	}
	reads := 0
	live := map[string]struct{}{}
	seen := map[string]bool{}
	for _, snap := range t.Metadata().Snapshots() {
		mans, err := snap.Manifests(fsys)
		reads++
		if err != nil {
			return nil, reads, fmt.Errorf("snapshot %d: %w", snap.SnapshotID, err)
		}
		for _, man := range mans {
			if seen[man.FilePath()] {
				continue
			}
			seen[man.FilePath()] = true
			reads++
			for entry, err := range man.Entries(fsys, true) {
				if err != nil {
					return nil, reads, fmt.Errorf("manifest %s: %w", man.FilePath(), err)
				}
				live[l.fileKey(entry.DataFile().FilePath())] = struct{}{}
			}
		}
	}
	return live, reads, nil
}
