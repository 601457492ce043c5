package warehouse

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"citybrain/schemas"
)

// Natural keys: copy-on-write de-duplication at commit.
//
// A schema with a key (schemas.Schema.Key) keeps one row per key. The lake
// writer commits a keyed batch with CommitKeyed, which, under the table's
// commit lock and in the same snapshot as the batch's stream position:
//
//  1. finds the committed files that could hold a key of the batch: the
//     files of the same partition whose event-time bounds overlap the new
//     file's (a key includes the partition field, and in the built-in
//     schemas the event time). A stream that moves forward in time finds
//     none and commits a plain append, with no file read;
//  2. reads only the key columns of those files and keeps the ones that
//     really hold a key of the batch;
//  3. drops those whose every row has a new version (a second copy of a
//     file: no rewrite at all), rewrites the others without those keys
//     (copy-on-write), and rewrites a new file that repeats a key within
//     the batch keeping the key's last row;
//  4. commits an "overwrite" snapshot that deletes the old files and adds
//     the rewritten and new ones, with the new offsets and cursors.
//
// So later versions replace earlier ones, and a crash at any point leaves
// either the old snapshot (the batch is re-read and the rewrite redone;
// its files are orphans that maintenance removes) or the new one.
// Copy-on-write and not Iceberg delete files: every reader here (the
// engine's views, Spark, extracts) reads plain data files, and compaction
// stays a byte-exact rewrite.

// DedupStats says what a keyed commit replaced.
type DedupStats struct {
	// Candidates is how many committed files could hold a key of the batch
	// (by partition and bounds); Rewritten how many did and were rewritten.
	Candidates, Rewritten int
	// Replaced counts the earlier rows replaced by rows of the batch;
	// InBatch the rows of the batch replaced by later rows of the batch.
	Replaced, InBatch int64
}

// fileIndex is the data files of a table's current snapshot, kept by the
// lake between keyed commits so that finding candidates reads no manifest.
type fileIndex struct {
	snap  int64
	files []iceberg.DataFile
}

// liveFiles returns the data files of t's current snapshot, from the index
// when it is of that snapshot.
func (l *Lake) liveFiles(ctx context.Context, name string, t *table.Table) ([]iceberg.DataFile, error) {
	snap := t.CurrentSnapshot()
	if snap == nil {
		return nil, nil
	}
	l.lmu.Lock()
	ix, ok := l.index[name]
	l.lmu.Unlock()
	if ok && ix.snap == snap.SnapshotID {
		return ix.files, nil
	}
	tasks, err := t.Scan().PlanFiles(ctx)
	if err != nil {
		return nil, fmt.Errorf("plan files of %s: %w", name, err)
	}
	files := make([]iceberg.DataFile, 0, len(tasks))
	for _, task := range tasks {
		files = append(files, task.File)
	}
	l.setIndex(name, snap.SnapshotID, files)
	return files, nil
}

func (l *Lake) setIndex(name string, snap int64, files []iceberg.DataFile) {
	l.lmu.Lock()
	defer l.lmu.Unlock()
	if l.index == nil {
		l.index = map[string]fileIndex{}
	}
	l.index[name] = fileIndex{snap: snap, files: files}
}

// CommitKeyed is Commit for a table with a natural key: rows of files
// replace the committed rows of the same key, and within files the last
// row of a key wins. repeats names (by path) the new files that hold a key
// more than once; the lake writer knows them from its key hashes, so a
// file without repeats is not read. See the comment at the top of dedup.go.
func (l *Lake) CommitKeyed(ctx context.Context, name string, s *schemas.Schema, files []iceberg.DataFile, repeats map[string]bool, next State) (int64, DedupStats, error) {
	var st DedupStats
	if len(s.Key) == 0 {
		id, err := l.Commit(ctx, name, files, next)
		return id, st, err
	}
	unlock := l.lock(name)
	defer unlock()
	t, err := l.Load(ctx, name)
	if err != nil {
		return 0, st, err
	}
	cur := int64(0)
	if snap := t.CurrentSnapshot(); snap != nil {
		cur = snap.SnapshotID
	}
	if cur != next.SnapshotID {
		return 0, st, fmt.Errorf("%w: %s moved from snapshot %d to %d", ErrConflict, name, next.SnapshotID, cur)
	}
	if len(files) == 0 {
		return cur, st, nil
	}
	live, err := l.liveFiles(ctx, name, t)
	if err != nil {
		return 0, st, err
	}
	etID := -1
	if f, ok := t.Schema().FindFieldByName(s.EventTime); ok && s.KeyHasEventTime() {
		etID = f.ID
	}
	var cands []iceberg.DataFile
	seen := map[string]bool{}
	for _, nf := range files {
		for _, old := range live {
			if !seen[old.FilePath()] && mayShareKeys(nf, old, etID) {
				seen[old.FilePath()] = true
				cands = append(cands, old)
			}
		}
	}
	st.Candidates = len(cands)
	anyRepeat := false
	for _, nf := range files {
		anyRepeat = anyRepeat || repeats[nf.FilePath()]
	}

	adds, dels := files, []iceberg.DataFile(nil)
	var written []string // rewritten files, removed if the commit fails
	if len(cands) > 0 || anyRepeat {
		adds, dels, written, err = l.dedupFiles(ctx, t, s, files, repeats, cands, &st)
		if err != nil {
			return 0, st, fmt.Errorf("commit %s: %w", name, err)
		}
	}
	props, err := l.stateProps(ctx, t, next)
	if err != nil {
		l.removeAll(ctx, written)
		return 0, st, fmt.Errorf("commit %s: %w", name, err)
	}
	tx := t.NewTransaction()
	if err := tx.AssertRefSnapshotID(table.MainBranch); err != nil {
		l.removeAll(ctx, written)
		return 0, st, fmt.Errorf("commit %s: %w", name, err)
	}
	if len(dels) == 0 {
		err = tx.AddDataFiles(ctx, adds, props, table.WithoutDuplicateCheck())
	} else {
		err = tx.ReplaceDataFilesWithDataFiles(ctx, dels, adds, props, table.WithoutDuplicateCheck())
	}
	if err != nil {
		l.removeAll(ctx, written)
		return 0, st, fmt.Errorf("commit %s: %w", name, err)
	}
	nt, err := tx.Commit(l.ioCtx(ctx))
	if err != nil {
		l.removeAll(ctx, written)
		if errors.Is(err, table.ErrCommitFailed) || l.moved(ctx, name, cur) {
			return 0, st, fmt.Errorf("%w: %s: %v", ErrConflict, name, err)
		}
		return 0, st, fmt.Errorf("commit %s: %w", name, err)
	}
	id := nt.CurrentSnapshot().SnapshotID
	// The index follows the commit: the live files less the deleted, plus
	// the added.
	gone := map[string]bool{}
	for _, d := range dels {
		gone[d.FilePath()] = true
	}
	nextLive := make([]iceberg.DataFile, 0, len(live)+len(adds))
	for _, f := range live {
		if !gone[f.FilePath()] {
			nextLive = append(nextLive, f)
		}
	}
	l.setIndex(name, id, append(nextLive, adds...))
	// New files that were rewritten are not in the snapshot: remove them.
	kept := map[string]bool{}
	for _, a := range adds {
		kept[a.FilePath()] = true
	}
	for _, nf := range files {
		if !kept[nf.FilePath()] {
			l.removeFile(context.WithoutCancel(ctx), nf.FilePath())
		}
	}
	if st.Rewritten > 0 || st.InBatch > 0 {
		l.log.Info("rows replaced by later versions of their key", "table", name, "snapshot", id,
			"replaced", st.Replaced, "repeated_in_batch", st.InBatch, "files_rewritten", st.Rewritten)
	}
	return id, st, nil
}

// mayShareKeys tells whether the committed file old could hold a key of
// the new file nf: same partition, and (when the event time is part of the
// key, etID ≥ 0) overlapping event-time bounds. Missing bounds mean maybe.
func mayShareKeys(nf, old iceberg.DataFile, etID int) bool {
	if uriDir(nf.FilePath()) != uriDir(old.FilePath()) {
		return false
	}
	if etID < 0 {
		return true
	}
	nlo, ok1 := nf.LowerBoundValues()[etID]
	nhi, ok2 := nf.UpperBoundValues()[etID]
	olo, ok3 := old.LowerBoundValues()[etID]
	ohi, ok4 := old.UpperBoundValues()[etID]
	if !ok1 || !ok2 || !ok3 || !ok4 || len(nlo) != 8 || len(nhi) != 8 || len(olo) != 8 || len(ohi) != 8 {
		return true
	}
	le := binary.LittleEndian
	return int64(le.Uint64(nlo)) <= int64(le.Uint64(ohi)) && int64(le.Uint64(olo)) <= int64(le.Uint64(nhi))
}

// dedupFiles works out the files of a keyed commit (see CommitKeyed): the
// new files, each rewritten with one row per key if it repeats a key, and
// the candidates that hold a key of the new files, rewritten without them.
func (l *Lake) dedupFiles(ctx context.Context, t *table.Table, s *schemas.Schema, files []iceberg.DataFile, repeats map[string]bool, cands []iceberg.DataFile, st *DedupStats) (adds, dels []iceberg.DataFile, written []string, err error) {
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open duckdb: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{"SET threads = 1", noFileCache} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, nil, nil, err
		}
	}
	fail := func(err error) ([]iceberg.DataFile, []iceberg.DataFile, []string, error) {
		l.removeAll(ctx, written)
		return nil, nil, nil, err
	}
	rd, err := l.openInputs(ctx, append(append([]iceberg.DataFile{}, files...), cands...))
	if err != nil {
		return nil, nil, nil, err
	}
	defer rd.release()
	keys := make([]string, len(s.Key))
	for i, k := range s.Key {
		keys[i] = quoteIdent(k)
	}
	keyList := strings.Join(keys, ", ")
	match := make([]string, len(s.Key))
	for i, k := range keys {
		match[i] = "o." + k + " = n." + k
	}
	on := strings.Join(match, " AND ")

	// The new files, one row per key (the last one written).
	for _, nf := range files {
		if !repeats[nf.FilePath()] {
			adds = append(adds, nf)
			continue
		}
		g := l.rewriteTarget([]iceberg.DataFile{nf}, "k")
		src := fmt.Sprintf("SELECT * EXCLUDE (file_row_number) FROM %s QUALIFY row_number() OVER (PARTITION BY %s ORDER BY file_row_number DESC) = 1",
			rd.read([]iceberg.DataFile{nf}, "file_row_number = true"), keyList)
		df, err := l.rewriteRows(ctx, db, t, g, src)
		if err != nil {
			return fail(err)
		}
		written = append(written, g.uri)
		st.InBatch += nf.Count() - df.Count()
		adds = append(adds, df)
	}
	if len(cands) == 0 {
		return adds, nil, written, nil
	}
	// Which candidates hold a key of the batch: key columns only.
	newKeys := fmt.Sprintf("(SELECT DISTINCT %s FROM %s)", keyList, rd.read(files))
	q := fmt.Sprintf("SELECT o.filename, count(*) FROM (SELECT %s, filename FROM %s) o JOIN %s n ON %s GROUP BY o.filename",
		keyList, rd.read(cands, "filename = true"), newKeys, on)
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return fail(fmt.Errorf("find earlier versions: %w", err))
	}
	hit := map[string]int64{} // file → its rows whose key the batch has
	for rows.Next() {
		var f string
		var n int64
		if err := rows.Scan(&f, &n); err != nil {
			rows.Close()
			return fail(err)
		}
		hit[rd.uris[f]] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fail(fmt.Errorf("find earlier versions: %w", err))
	}
	for _, old := range cands {
		n := hit[old.FilePath()]
		if n == 0 {
			continue
		}
		dels = append(dels, old)
		if n >= old.Count() {
			// Every row replaced (a second copy of a file): the old file
			// goes, nothing to rewrite.
			st.Replaced += old.Count()
			continue
		}
		st.Rewritten++
		g := l.rewriteTarget(append([]iceberg.DataFile{old}, files...), "r")
		g.files = []iceberg.DataFile{old}
		src := fmt.Sprintf("SELECT * FROM %s o WHERE NOT EXISTS (SELECT 1 FROM %s n WHERE %s)", rd.read(g.files), newKeys, on)
		df, err := l.rewriteRows(ctx, db, t, g, src)
		if err != nil {
			return fail(err)
		}
		written = append(written, g.uri)
		st.Replaced += old.Count() - df.Count()
		if df.Count() == 0 {
			l.removeFile(context.WithoutCancel(ctx), g.uri)
			written = written[:len(written)-1]
			continue
		}
		adds = append(adds, df)
	}
	return adds, dels, written, nil
}

// rewriteTarget names the rewrite of files[0] after all of files, so a
// retried commit writes the same name, beside files[0].
func (l *Lake) rewriteTarget(files []iceberg.DataFile, tag string) compactGroup {
	h := sha256.New()
	for _, f := range files {
		h.Write([]byte(f.FilePath()))
		h.Write([]byte{0})
	}
	dir := uriDir(files[0].FilePath())
	base := strings.TrimSuffix(files[0].FilePath()[len(dir)+1:], ".parquet")
	if i := strings.Index(base, "."); i >= 0 {
		base = base[:i]
	}
	name := base + "." + tag + hex.EncodeToString(h.Sum(nil)[:6]) + ".parquet"
	uri := dir + "/" + name
	return compactGroup{files: files[:1], uri: uri, out: l.stagePath(uri)}
}
