package warehouse

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
)

// manyFiles adds a file connector's per-file cursors and tokens to st: n
// files, as a connector that has read n files has.
func manyFiles(st State, n int) State {
	for i := range n {
		name := fmt.Sprintf("ms_2026%04d.csv", i)
		st.Cursors[name] = int64(1000 + i)
		st.Tokens[name] = fmt.Sprintf("size=%d", 11234611+i)
	}
	return st
}

// metadataDir lists the table's metadata directory: the current metadata
// file's size and the number of metadata files (*.metadata.json) and state
// files.
func metadataDir(t *testing.T, tbl *table.Table) (curBytes int64, metas, states int) {
	t.Helper()
	dir := filepath.Join(strings.TrimPrefix(tbl.Location(), "file://"), "metadata")
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		switch {
		case strings.HasSuffix(e.Name(), ".metadata.json"):
			metas++
		case strings.HasPrefix(e.Name(), stateFilePrefix):
			states++
		}
	}
	fi, err := os.Stat(strings.TrimPrefix(tbl.MetadataLocation(), "file://"))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size(), metas, states
}

// A file connector's state (a cursor and token per file) is kept in a state
// file, not in every snapshot summary: the metadata stays small however many
// files were read, the state reads back whole, compaction carries it, and
// maintenance deletes the state files no snapshot names any more.
func TestStateFileBoundsMetadata(t *testing.T) {
	ctx := context.Background()
	m := smallMaintenance()
	m.RetainLast = 3
	lake, s := testLake(t, m)
	st, err := lake.State(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	st.Cluster = "test-cluster"
	st = manyFiles(st, 400) // ≈ 20 KB of cursors and tokens
	const commits = 30
	for i := range commits {
		st.Cursors[fmt.Sprintf("ms_new_%d.csv", i)] = int64(i)
		st = writeBatch(t, lake, s, st, []int{0}, 2)
	}
	tbl, err := lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	for _, snap := range tbl.Metadata().Snapshots() {
		p := snap.Summary.Properties
		if p[summaryStateFile] == "" || p[summaryCursors] != "" || p[summaryTokens] != "" {
			t.Fatalf("snapshot %d summary carries the state inline (%d bytes of cursors) or names no state file", snap.SnapshotID, len(p[summaryCursors]))
		}
	}
	got, err := StateOf(tbl)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("state read back differs: %d cursors, %d tokens; want %d, %d", len(got.Cursors), len(got.Tokens), len(st.Cursors), len(st.Tokens))
	}
	// Each commit changed one cursor: after the first (full) state file,
	// each is a delta naming it.
	last := tbl.CurrentSnapshot().Summary.Properties[summaryStateFile]
	sf, err := readStateFile(nil, last)
	if err != nil {
		t.Fatal(err)
	}
	first := tbl.Metadata().Snapshots()[0].Summary.Properties[summaryStateFile]
	if sf.Base != first || len(sf.Cursors) > commits || len(sf.Tokens) != 0 {
		t.Errorf("last state file: base %q (want the first, %q), %d cursors, %d tokens; want a delta of ≤ %d cursors", sf.Base, first, len(sf.Cursors), len(sf.Tokens), commits)
	}
	if fi, err := os.Stat(strings.TrimPrefix(last, "file://")); err != nil || fi.Size() > 2048 {
		t.Errorf("last state file: %v bytes (%v), want a small delta", fi.Size(), err)
	}
	cur, metas, states := metadataDir(t, tbl)
	// Inline, 30 snapshots × ≈ 20 KB each would be ≈ 600 KB.
	if cur > 64<<10 {
		t.Errorf("metadata file is %d bytes after %d commits of a 400-file state", cur, commits)
	}
	// write.metadata.delete-after-commit: the current file and at most 10 earlier ones.
	if metas > 11 {
		t.Errorf("%d metadata files kept, want ≤ 11 (previous-versions-max 10)", metas)
	}
	if states != commits {
		t.Errorf("%d state files, want %d (one per commit)", states, commits)
	}

	// Compaction names the current state file again.
	res, err := lake.Compact(ctx, s.Table)
	if err != nil || res.SnapshotID == 0 {
		t.Fatalf("compact: %+v, %v", res, err)
	}
	tbl, err = lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := StateOf(tbl); err != nil || !reflect.DeepEqual(got.Cursors, st.Cursors) {
		t.Fatalf("state after compaction: %d cursors, %v", len(got.Cursors), err)
	}
	if _, _, n := metadataDir(t, tbl); n != commits {
		t.Errorf("compaction wrote a state file: %d, want %d", n, commits)
	}

	// A maintenance pass (an hour on) expires all but RetainLast snapshots
	// and deletes the state files only expired snapshots named.
	rep, err := lake.Maintain(ctx, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err = lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, snap := range tbl.Metadata().Snapshots() {
		loc := snap.Summary.Properties[summaryStateFile]
		named[filepath.Base(loc)] = true
		sf, err := readStateFile(nil, loc)
		if err != nil {
			t.Fatal(err)
		}
		if sf.Base != "" {
			named[filepath.Base(sf.Base)] = true
		}
	}
	if _, _, n := metadataDir(t, tbl); n != len(named) {
		t.Errorf("%d state files after maintenance (%+v), want %d: the ones the %d retained snapshots name", n, rep, len(named), len(tbl.Metadata().Snapshots()))
	}
	if got, err := StateOf(tbl); err != nil || !reflect.DeepEqual(got.Cursors, st.Cursors) {
		t.Fatalf("state after maintenance: %d cursors, %v", len(got.Cursors), err)
	}

	// A state file of the next batch (a writer about to commit) is kept.
	next := filepath.Join(strings.TrimPrefix(tbl.Location(), "file://"), "metadata", fmt.Sprintf("%s%012d-abc.json", stateFilePrefix, st.Batch+1))
	if err := os.WriteFile(next, []byte(`{"cursors":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(next, old, old)
	if n, err := removeStaleStates(tbl, time.Now()); err != nil || n != 0 {
		t.Errorf("removeStaleStates removed %d (%v), want the next batch's file kept", n, err)
	}
}

// A small state stays in the summary: no state file.
func TestSmallStateInline(t *testing.T) {
	ctx := context.Background()
	lake, s := testLake(t, smallMaintenance())
	st := fill(t, lake, s, 3, []int{0}, 2)
	tbl, err := lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	p := tbl.CurrentSnapshot().Summary.Properties
	if p[summaryStateFile] != "" || p[summaryCursors] == "" {
		t.Fatalf("small state: summary %v", p)
	}
	if got, err := StateOf(tbl); err != nil || !reflect.DeepEqual(got, st) {
		t.Fatalf("state %+v, %v; want %+v", got, err, st)
	}
}

// MaxSnapshots caps a busy table's snapshots: past the newest MaxSnapshots,
// snapshots older than minExpireAge are expired though ExpireOlderThan
// (a week) keeps them; younger ones never are.
func TestExpireCapsSnapshots(t *testing.T) {
	ctx := context.Background()
	m := DefaultConfig().Maintenance
	m.MaxSnapshots, m.RetainLast = 25, 5
	lake, s := testLake(t, m)
	fill(t, lake, s, 120, []int{0}, 1)
	if n, err := lake.Expire(ctx, s.Table, time.Now()); err != nil || n != 0 {
		t.Fatalf("expired %d (%v) snapshots younger than %v, want 0", n, err, minExpireAge)
	}
	n, err := lake.Expire(ctx, s.Table, time.Now().Add(minExpireAge+time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	if left := len(tbl.Metadata().Snapshots()); left != 25 || n != 95 {
		t.Fatalf("expired %d, %d left; want 95 expired, 25 left", n, left)
	}
	// One manifest per append, merged past commit.manifest.min-count-to-merge
	// (100): planning reads a bounded number of manifests.
	fsys, err := tbl.FS(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mans, err := tbl.CurrentSnapshot().Manifests(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if len(mans) > 100 {
		t.Errorf("%d manifests after 120 appends, want ≤ 100 (merged)", len(mans))
	}
	if files, err := SnapshotFiles(ctx, tbl, nil); err != nil || len(files) != 120 {
		t.Errorf("%d data files in the current snapshot (%v), want 120", len(files), err)
	}
	// The cap is off with 0: the week holds.
	m.MaxSnapshots = 0
	lake.cfg.Maintenance = m
	fill(t, lake, s, 10, []int{0}, 1)
	if n, err := lake.Expire(ctx, s.Table, time.Now().Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("without a cap expired %d (%v), want 0", n, err)
	}
}

// A table created before the metadata properties existed gets them.
func TestEnsureTableUpgradesProperties(t *testing.T) {
	ctx := context.Background()
	lake, s := testLake(t, smallMaintenance())
	tbl, err := lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	tx := tbl.NewTransaction()
	if err := tx.RemoveProperties([]string{table.MetadataDeleteAfterCommitEnabledKey, table.ManifestMergeEnabledKey}); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	tbl, err = lake.EnsureTable(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range tableProps {
		if k != "format-version" && tbl.Properties()[k] != v {
			t.Errorf("property %s = %q after EnsureTable, want %q", k, tbl.Properties()[k], v)
		}
	}
}

// A commit that changes more than a quarter of the state writes a full
// state file again; one that changes little writes a delta of it.
func TestStateDeltaOrFull(t *testing.T) {
	ctx := context.Background()
	lake, s := testLake(t, smallMaintenance())
	st, err := lake.State(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	st = manyFiles(st, 60)
	kind := func() (base string) {
		t.Helper()
		st = writeBatch(t, lake, s, st, []int{0}, 1)
		tbl, err := lake.Load(ctx, s.Table)
		if err != nil {
			t.Fatal(err)
		}
		sf, err := readStateFile(nil, tbl.CurrentSnapshot().Summary.Properties[summaryStateFile])
		if err != nil {
			t.Fatal(err)
		}
		if got, err := StateOf(tbl); err != nil || !reflect.DeepEqual(got, st) {
			t.Fatalf("state read back: %v, differs: %v", err, !reflect.DeepEqual(got, st))
		}
		return sf.Base
	}
	if b := kind(); b != "" {
		t.Fatalf("first state file is a delta of %s", b)
	}
	if b := kind(); b == "" {
		t.Fatal("one changed cursor: full state file, want a delta")
	}
	for k := range st.Cursors {
		st.Cursors[k]++
	}
	if b := kind(); b != "" {
		t.Fatal("every cursor changed: a delta, want a full state file")
	}
}
