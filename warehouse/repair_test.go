package warehouse

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"citybrain/schemas"
)

// TestDamagedTableIsolatedAndRolledBack: a truncated newest data file, then
// a truncated newest metadata file, of raw.weather: the engine still opens,
// `select 1` and the other tables answer, a query of raw.weather fails with
// an error naming the file; CheckTable names it and the newest sound
// snapshot, and Rollback to that snapshot makes the table readable again.
func TestDamagedTableIsolatedAndRolledBack(t *testing.T) {
	ctx := context.Background()
	lake, s := testLake(t, smallMaintenance())
	other, err := lake.EnsureTable(ctx, mustSchema(t, "crowd_counts"))
	if err != nil {
		t.Fatal(err)
	}
	_ = other
	st, err := lake.State(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	s1 := writeBatch(t, lake, s, st, []int{0}, 10)
	s2 := writeBatch(t, lake, s, s1, []int{1}, 10)
	tbl, err := lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	files, err := SnapshotFiles(ctx, tbl, nil)
	if err != nil {
		t.Fatal(err)
	}
	var newest string
	for _, f := range files {
		if strings.Contains(f, "0000000002-") {
			newest = LocalPath(f)
		}
	}
	if newest == "" {
		t.Fatalf("test setup: no file of batch 2 in %v", files)
	}
	truncate(t, newest)

	eng, err := NewEngine(ctx, lake)
	if err != nil {
		t.Fatalf("the engine refused to open beside one damaged table: %v", err)
	}
	defer eng.Close()
	var one int
	if err := eng.DB().QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("select 1: %v", err)
	}
	var n int64
	if err := eng.DB().QueryRowContext(ctx, "SELECT count(*) FROM raw.crowd_counts").Scan(&n); err != nil {
		t.Fatalf("the other table: %v", err)
	}
	err = eng.DB().QueryRowContext(ctx, "SELECT count(*) FROM raw.weather").Scan(&n)
	if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), filepath.Base(newest)) || !strings.Contains(err.Error(), "lake check") {
		t.Fatalf("query of the damaged table: err = %v; want it damaged, naming %s and what to do", err, filepath.Base(newest))
	}
	if d := eng.Damaged(); d[s.Table] == "" || len(d) != 1 {
		t.Fatalf("Damaged = %v", d)
	}
	c := lake.CheckTable(ctx, s.Table)
	if c.OK() || !strings.Contains(strings.Join(c.Problems, "\n"), filepath.Base(newest)) || c.Sound != s1.SnapshotID || c.Snapshot != s2.SnapshotID {
		t.Fatalf("check: %+v; want the file named, sound snapshot %d", c, s1.SnapshotID)
	}
	if c := lake.CheckTable(ctx, "raw.crowd_counts"); !c.OK() {
		t.Fatalf("the other table checks damaged: %+v", c)
	}
	res, err := lake.Rollback(ctx, s.Table, c.Sound)
	if err != nil {
		t.Fatal(err)
	}
	if res.From != s2.SnapshotID || res.To != s1.SnapshotID || len(res.Offsets) == 0 && len(s1.Offsets) > 0 {
		t.Fatalf("rollback: %+v", res)
	}
	if err := eng.Refresh(ctx, s.Table); err != nil {
		t.Fatalf("refresh after rollback: %v", err)
	}
	if err := eng.DB().QueryRowContext(ctx, "SELECT count(*) FROM raw.weather").Scan(&n); err != nil || n != 10 {
		t.Fatalf("after rollback: %d rows (%v), want batch 1's 10", n, err)
	}
	if d := eng.Damaged(); len(d) != 0 {
		t.Fatalf("still damaged after rollback: %v", d)
	}
	if c := lake.CheckTable(ctx, s.Table); !c.OK() {
		t.Fatalf("check after rollback: %+v", c)
	}

	// The newest metadata file truncated.
	cur, err := lake.State(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	writeBatch(t, lake, s, cur, []int{2}, 10)
	vs, err := lake.metadataVersions(s.Table)
	if err != nil || len(vs) < 2 {
		t.Fatalf("metadata versions %v: %v", vs, err)
	}
	truncate(t, vs[0])
	eng2, err := NewEngine(ctx, lake)
	if err != nil {
		t.Fatalf("the engine refused to open beside damaged metadata: %v", err)
	}
	defer eng2.Close()
	if err := eng2.DB().QueryRowContext(ctx, "SELECT count(*) FROM raw.crowd_counts").Scan(&n); err != nil {
		t.Fatalf("the other table beside damaged metadata: %v", err)
	}
	if err := eng2.DB().QueryRowContext(ctx, "SELECT count(*) FROM raw.weather").Scan(&n); err == nil || !strings.Contains(err.Error(), filepath.Base(vs[0])) {
		t.Fatalf("query beside damaged metadata: err = %v, want it to name %s", err, filepath.Base(vs[0]))
	}
	c = lake.CheckTable(ctx, s.Table)
	if c.OK() || !strings.Contains(strings.Join(c.Problems, "\n"), filepath.Base(vs[0])) || c.Sound != s1.SnapshotID {
		t.Fatalf("check of damaged metadata: %+v; want %s named and sound snapshot %d", c, filepath.Base(vs[0]), s1.SnapshotID)
	}
	res, err = lake.Rollback(ctx, s.Table, c.Sound)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.MovedAside) != 1 || res.MovedAside[0] != vs[0] {
		t.Fatalf("rollback moved aside %v, want %s", res.MovedAside, vs[0])
	}
	if err := eng2.Refresh(ctx, s.Table); err != nil {
		t.Fatalf("refresh after metadata rollback: %v", err)
	}
	if err := eng2.DB().QueryRowContext(ctx, "SELECT count(*) FROM raw.weather").Scan(&n); err != nil || n != 10 {
		t.Fatalf("after metadata rollback: %d rows (%v), want 10", n, err)
	}
	// And the table takes commits again.
	cur, err = lake.State(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	writeBatch(t, lake, s, cur, []int{3}, 10)
}

func truncate(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

func mustSchema(t *testing.T, name string) *schemas.Schema {
	t.Helper()
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
