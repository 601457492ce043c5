package warehouse

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
	"github.com/parquet-go/parquet-go"
)

// Checking and repairing damaged tables (citybrain lake check / rollback).
//
// A table is damaged when its current metadata file cannot be read, or a
// data file of its current snapshot is missing, of another size than the
// manifest says, or not a readable Parquet file with the manifest's row
// count (a truncated newest file after a crash of the disk, a copy that
// stopped half way). The query engine isolates such a table (its view
// raises the error; see Engine.Damaged) and the others keep serving.
//
// CheckTable names every damaged file and the newest snapshot whose files
// are all sound. Rollback makes that snapshot current: a damaged newest
// metadata file is moved aside (renamed *.damaged; the local catalog reads
// the highest version present), then the table's main branch is rolled
// back. The rolled-back snapshot carries the Kafka offsets it had covered,
// so the lake writer re-reads from Kafka what the later snapshots held.

// TableCheck is the outcome of checking one table.
type TableCheck struct {
	Table string `json:"table"`
	// Snapshot is the current snapshot (0: none, or unreadable metadata).
	Snapshot int64 `json:"snapshot"`
	// Problems name the damaged files and what is wrong with them.
	Problems []string `json:"problems,omitempty"`
	// Sound is the newest snapshot whose files are all sound (0: none found).
	Sound int64 `json:"sound,omitempty"`
	// Files is how many data files of the current snapshot were checked.
	Files int `json:"files"`
}

// OK reports whether the table has no problem.
func (c TableCheck) OK() bool { return len(c.Problems) == 0 }

// Check checks every table of the lake.
func (l *Lake) Check(ctx context.Context) ([]TableCheck, error) {
	names, err := l.tableNames(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]TableCheck, 0, len(names))
	for _, n := range names {
		out = append(out, l.CheckTable(ctx, n))
	}
	return out, nil
}

// CheckTable checks one table's metadata and the data files of its current
// snapshot; if damaged, it looks back for the newest sound snapshot.
func (l *Lake) CheckTable(ctx context.Context, name string) TableCheck {
	c := TableCheck{Table: name}
	t, err := l.load(ctx, name)
	if err != nil {
		c.Problems = append(c.Problems, fmt.Sprintf("metadata 元数据 %s: %v", l.newestMetadata(name), err))
		if older, err := l.olderMetadata(ctx, name); err == nil && older != nil {
			if s := older.CurrentSnapshot(); s != nil {
				c.Sound = l.soundSnapshot(ctx, older, s, map[string]string{})
			}
		}
		return c
	}
	if l.cfg.Catalog == "local" {
		id := Ident(name)
		home := filepath.Join(l.dir, id[0], id[1])
		if loc := strings.TrimSuffix(LocalPath(t.Location()), "/"); filepath.Clean(loc) != filepath.Clean(home) {
			c.Problems = append(c.Problems, fmt.Sprintf("the table's metadata names %s, not %s: the lake was copied or moved; run `citybrain lake relocate` / 数据湖已被复制或移动，请运行 citybrain lake relocate", loc, home))
			return c
		}
	}
	snap := t.CurrentSnapshot()
	if snap == nil {
		return c
	}
	c.Snapshot = snap.SnapshotID
	seen := map[string]string{}
	files, err := snapshotDataFiles(ctx, t, snap)
	if err != nil {
		c.Problems = append(c.Problems, fmt.Sprintf("manifests 清单 of snapshot %d: %v", snap.SnapshotID, err))
	} else {
		c.Files = len(files)
		for _, f := range files {
			if p := l.checkDataFile(ctx, f, seen); p != "" {
				c.Problems = append(c.Problems, p)
			}
		}
	}
	if !c.OK() {
		if p := snap.ParentSnapshotID; p != nil {
			if ps := t.Metadata().SnapshotByID(*p); ps != nil {
				c.Sound = l.soundSnapshot(ctx, t, ps, seen)
			}
		}
	} else {
		c.Sound = snap.SnapshotID
	}
	return c
}

// soundSnapshot walks back from s to the newest snapshot whose data files
// are all sound (0 if none is).
func (l *Lake) soundSnapshot(ctx context.Context, t *table.Table, s *table.Snapshot, seen map[string]string) int64 {
	for s != nil {
		files, err := snapshotDataFiles(ctx, t, s)
		if err == nil {
			ok := true
			for _, f := range files {
				if l.checkDataFile(ctx, f, seen) != "" {
					ok = false
					break
				}
			}
			if ok {
				return s.SnapshotID
			}
		}
		if s.ParentSnapshotID == nil {
			return 0
		}
		s = t.Metadata().SnapshotByID(*s.ParentSnapshotID)
	}
	return 0
}

func snapshotDataFiles(ctx context.Context, t *table.Table, s *table.Snapshot) ([]iceberg.DataFile, error) {
	tasks, err := t.Scan(table.WithSnapshotID(s.SnapshotID)).PlanFiles(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]iceberg.DataFile, len(tasks))
	for i, task := range tasks {
		out[i] = task.File
	}
	return out, nil
}

// checkDataFile returns what is wrong with a data file ("" if sound);
// results are remembered in seen by path.
func (l *Lake) checkDataFile(ctx context.Context, f iceberg.DataFile, seen map[string]string) string {
	if p, ok := seen[f.FilePath()]; ok {
		return p
	}
	p := l.checkParquet(ctx, f)
	seen[f.FilePath()] = p
	return p
}

func (l *Lake) checkParquet(ctx context.Context, f iceberg.DataFile) string {
	path, release, err := l.openFile(ctx, f.FilePath())
	if err != nil {
		return fmt.Sprintf("data file 数据文件 %s: %v", f.FilePath(), err)
	}
	defer release()
	fh, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("data file 数据文件 %s: %v", path, err)
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return fmt.Sprintf("data file 数据文件 %s: %v", path, err)
	}
	if fi.Size() != f.FileSizeBytes() {
		return fmt.Sprintf("data file 数据文件 %s: %d bytes, the manifest says %d (truncated or replaced) / 文件大小与清单不符", path, fi.Size(), f.FileSizeBytes())
	}
	pf, err := parquet.OpenFile(fh, fi.Size(), parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true))
	if err != nil {
		return fmt.Sprintf("data file 数据文件 %s: not a readable Parquet file / 不是可读的 Parquet 文件: %v", path, err)
	}
	if pf.NumRows() != f.Count() {
		return fmt.Sprintf("data file 数据文件 %s: %d rows, the manifest says %d / 行数与清单不符", path, pf.NumRows(), f.Count())
	}
	return ""
}

var metadataVersionRE = regexp.MustCompile(`^v([0-9]+)\.metadata\.json$`)

// metadataVersions lists a local-catalog table's metadata files, newest
// first.
func (l *Lake) metadataVersions(name string) ([]string, error) {
	if l.cfg.Catalog != "local" {
		return nil, fmt.Errorf("repairing metadata is supported for the local catalog; for %s, repair the catalog's entry of %s", l.cfg.Catalog, name)
	}
	id := Ident(name)
	dir := filepath.Join(l.dir, id[0], id[1], "metadata")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	type v struct {
		n    int
		path string
	}
	var vs []v
	for _, e := range entries {
		if m := metadataVersionRE.FindStringSubmatch(e.Name()); m != nil {
			n, _ := strconv.Atoi(m[1])
			vs = append(vs, v{n, filepath.Join(dir, e.Name())})
		}
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].n > vs[j].n })
	out := make([]string, len(vs))
	for i, x := range vs {
		out[i] = x.path
	}
	return out, nil
}

func (l *Lake) newestMetadata(name string) string {
	if vs, err := l.metadataVersions(name); err == nil && len(vs) > 0 {
		return vs[0]
	}
	return "(catalog entry)"
}

// olderMetadata reads the newest metadata file older than the current one
// that parses (nil if none).
func (l *Lake) olderMetadata(ctx context.Context, name string) (*table.Table, error) {
	vs, err := l.metadataVersions(name)
	if err != nil {
		return nil, err
	}
	for _, p := range vs[min(1, len(vs)):] {
		if t, err := table.NewFromLocation(ctx, Ident(name), p, icebergio.LoadFSFunc(nil, p), l.cat); err == nil {
			return t, nil
		}
	}
	return nil, nil
}

// RollbackResult says what a rollback did.
type RollbackResult struct {
	From, To int64
	// MovedAside are the damaged metadata files renamed *.damaged.
	MovedAside []string
	// Offsets is the Kafka position the table now covers: the lake writer
	// re-reads from there.
	Offsets map[string]map[int]int64
}

// Rollback makes snapshot to the table's current one (see the comment at
// the top of this file). The lake writer must not be committing to the
// table meanwhile from another process; within serve, its next commit
// finds the table moved and starts again from the rolled-back position.
func (l *Lake) Rollback(ctx context.Context, name string, to int64) (RollbackResult, error) {
	res := RollbackResult{To: to}
	unlock := l.lock(name)
	defer unlock()
	t, err := l.load(ctx, name)
	for err != nil {
		// The newest metadata file is damaged: move it aside, if an older one
		// holds the snapshot.
		vs, verr := l.metadataVersions(name)
		if verr != nil {
			return res, fmt.Errorf("%v (and: %w)", err, verr)
		}
		if len(vs) < 2 {
			return res, fmt.Errorf("load %s: %w; no older metadata file to roll back to", name, err)
		}
		older, oerr := table.NewFromLocation(ctx, Ident(name), vs[1], icebergio.LoadFSFunc(nil, vs[1]), l.cat)
		if oerr == nil {
			if s := older.Metadata().SnapshotByID(to); s == nil {
				return res, fmt.Errorf("snapshot %d is not in %s (the newest readable metadata); run citybrain lake check for the snapshot to use", to, vs[1])
			}
		}
		if rerr := os.Rename(vs[0], vs[0]+".damaged"); rerr != nil {
			return res, rerr
		}
		res.MovedAside = append(res.MovedAside, vs[0])
		t, err = l.load(ctx, name)
	}
	if s := t.CurrentSnapshot(); s != nil {
		res.From = s.SnapshotID
	}
	if res.From != to {
		if s := t.Metadata().SnapshotByID(to); s == nil {
			return res, fmt.Errorf("table %s has no snapshot %d; `citybrain lake check` names the newest sound one", name, to)
		}
		tx := t.NewTransaction()
		if err := tx.RollbackToSnapshot(to); err != nil {
			return res, fmt.Errorf("roll back %s to %d: %w", name, to, err)
		}
		if t, err = tx.Commit(ctx); err != nil {
			return res, fmt.Errorf("roll back %s to %d: %w", name, to, err)
		}
	}
	st, err := StateOf(t)
	if err != nil {
		return res, err
	}
	res.Offsets = st.Offsets
	l.log.Warn("table rolled back 数据表已回滚", "table", name, "from", res.From, "to", to,
		"moved_aside", strings.Join(res.MovedAside, ", "))
	return res, nil
}
