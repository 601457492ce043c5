package warehouse

import (
	"context"
	"testing"
)

// TestLoadCache: an unchanged table is not parsed again (the same table is
// returned), and every commit — in quick succession too — is seen at once.
func TestLoadCache(t *testing.T) {
	ctx := context.Background()
	lake, s := testLake(t, smallMaintenance())
	a, err := lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := lake.Load(ctx, s.Table)
	if a != b {
		t.Fatal("an unchanged table was parsed again")
	}
	var st State
	for i := 0; i < 20; i++ { // commits back to back, within the file system's time-stamp granularity
		st = writeBatch(t, lake, s, st, []int{i % 3}, 2)
		got, err := lake.Load(ctx, s.Table)
		if err != nil {
			t.Fatal(err)
		}
		if cur := got.CurrentSnapshot(); cur == nil || cur.SnapshotID != st.SnapshotID {
			t.Fatalf("commit %d: Load shows snapshot %v, want %d", i, cur, st.SnapshotID)
		}
	}
}

// TestLoadAfterOwnCommit: a table this process has just committed is not
// parsed again by Load (the commit's table is returned), and a commit by
// another process (another Lake on the same directory) is still seen.
func TestLoadAfterOwnCommit(t *testing.T) {
	ctx := context.Background()
	lake, s := testLake(t, smallMaintenance())
	st := writeBatch(t, lake, s, State{}, []int{0}, 2)
	lake.lmu.Lock()
	c, ok := lake.loaded[s.Table]
	lake.lmu.Unlock()
	if !ok || c.t.CurrentSnapshot() == nil || c.t.CurrentSnapshot().SnapshotID != st.SnapshotID {
		t.Fatalf("the commit did not seed Load's cache: %v %+v", ok, c)
	}
	got, err := lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	if got != c.t {
		t.Fatal("the table just committed was parsed again")
	}

	other, err := Open(ctx, lake.cfg, "", lake.log)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	st2 := writeBatch(t, other, s, st, []int{1}, 2)
	got, err = lake.Load(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	if cur := got.CurrentSnapshot(); cur == nil || cur.SnapshotID != st2.SnapshotID {
		t.Fatalf("another process's commit not seen: snapshot %v, want %d", cur, st2.SnapshotID)
	}
}
