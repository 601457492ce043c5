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
