package warehouse

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestRelocate: a lake copied to another directory (and the original
// removed) reads nothing until relocated; after Relocate it holds the same
// rows and stream position, reads its own files, and takes commits.
func TestRelocate(t *testing.T) {
	ctx := context.Background()
	lake, s := testLake(t, smallMaintenance())
	st, err := lake.State(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	st.Offsets["raw.weather"] = map[int]int64{0: 20}
	st.Cursors["file.csv"] = 20
	s1 := writeBatch(t, lake, s, st, []int{0, 1}, 10)
	s2 := writeBatch(t, lake, s, s1, []int{2}, 10)
	lake.Close()

	// Copy the lake elsewhere and remove the original.
	dst := filepath.Join(t.TempDir(), "restored")
	if out, err := exec.Command("cp", "-a", lake.Dir(), dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if err := os.RemoveAll(lake.Dir()); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Dir = dst
	moved, err := Open(ctx, cfg, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer moved.Close()
	if c := moved.CheckTable(ctx, s.Table); c.OK() {
		t.Fatalf("the copy reads fine before relocation: %+v", c)
	}
	res, err := moved.Relocate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || !res[0].Moved || res[0].Rows != 30 || res[0].Files != 3 {
		t.Fatalf("relocate: %+v", res)
	}
	if c := moved.CheckTable(ctx, s.Table); !c.OK() {
		t.Fatalf("check after relocation: %+v", c)
	}
	eng, err := NewEngine(ctx, moved)
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	var n int64
	var rain float64
	if err := eng.DB().QueryRowContext(ctx, "SELECT count(*), sum(rain_mm) FROM raw.weather").Scan(&n, &rain); err != nil || n != 30 {
		t.Fatalf("after relocation: %d rows (%v)", n, err)
	}
	got, err := moved.State(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Offsets, got.Cursors, got.Batch) != fmt.Sprint(s2.Offsets, s2.Cursors, s2.Batch) {
		t.Fatalf("stream position after relocation: %+v, was %+v", got, s2)
	}
	// Relocating again does nothing; the table takes commits.
	if res, err := moved.Relocate(ctx); err != nil || res[0].Moved {
		t.Fatalf("second relocate: %+v %v", res, err)
	}
	writeBatch(t, moved, s, got, []int{3}, 10)
	if err := eng.Refresh(ctx, s.Table); err != nil {
		t.Fatal(err)
	}
	if err := eng.DB().QueryRowContext(ctx, "SELECT count(*) FROM raw.weather").Scan(&n); err != nil || n != 40 {
		t.Fatalf("after a commit: %d rows (%v)", n, err)
	}
}
