package warehouse

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"

	"citybrain/schemas"
)

// noopFixture builds a table shaped like marts.warnings after days of
// serve: one small commit per snapshot (so as many snapshots, manifests and
// data files as commits), every partition below compact_min_files, nothing
// old enough to expire, no orphans; then runs the maintainer's first pass.
// The commits skip iceberg-go's duplicate check (it reads every manifest)
// and are staged 50 to a metadata write, which only makes building the
// fixture faster.
func noopFixture(tb testing.TB, commits int) (*maintainer, *schemas.Schema) {
	tb.Helper()
	ctx := context.Background()
	mc := DefaultConfig().Maintenance
	mc.MaxSnapshots = 0 // nothing to expire: the fixture's snapshots are all recent
	lake, s := testLake(tb, mc)
	st, err := lake.State(ctx, s.Table)
	if err != nil {
		tb.Fatal(err)
	}
	st.Cluster = "bench"
	days := commits/6 + 1 // at most 6 files per partition, below compact_min_files (8)
	const perTx = 50      // snapshots staged per metadata write
	for i := 0; i < commits; i += perTx {
		t, err := lake.Load(ctx, s.Table)
		if err != nil {
			tb.Fatal(err)
		}
		tx := t.NewTransaction()
		for j := i; j < min(i+perTx, commits); j++ {
			next, files := batchFiles(tb, lake, s, st, []int{j % days}, 2)
			props, err := lake.stateProps(ctx, t, next)
			if err != nil {
				tb.Fatal(err)
			}
			if err := tx.AddDataFiles(ctx, files, props, table.WithoutDuplicateCheck()); err != nil {
				tb.Fatal(err)
			}
			st = next
		}
		nt, err := tx.Commit(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		st.SnapshotID = nt.CurrentSnapshot().SnapshotID
		if n := len(nt.Metadata().Snapshots()); n != min(i+perTx, commits) {
			tb.Fatalf("%d snapshots after %d commits", n, min(i+perTx, commits))
		}
	}
	m := lake.newMaintainer()
	if _, err := m.pass(ctx, time.Now()); err != nil {
		tb.Fatal(err)
	}
	return m, s
}

// BenchmarkMaintenanceNoop is the time of a maintenance pass (as
// RunMaintenance runs them) that finds nothing to do, on tables of 500 and
// 2000 snapshots; memory=false is the same work done by Compact, Expire and
// RemoveOrphans without the maintainer's memory, which is what every pass
// cost before.
//
//	go test ./warehouse -run '^$' -bench BenchmarkMaintenanceNoop -benchtime 10x
func BenchmarkMaintenanceNoop(b *testing.B) {
	for _, n := range []int{500, 2000} {
		b.Run(fmt.Sprintf("snapshots=%d", n), func(b *testing.B) {
			benchNoop(b, n)
		})
	}
}

func benchNoop(b *testing.B, n int) {
	start := time.Now()
	m, s := noopFixture(b, n)
	b.Logf("fixture of %d snapshots built in %s", n, time.Since(start).Round(time.Millisecond))
	{
		for _, memory := range []bool{true, false} {
			b.Run(fmt.Sprintf("memory=%t", memory), func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				b.ResetTimer()
				reads := m.reads
				for range b.N {
					if !memory {
						noMemoryPass(b, m.l, s.Table)
						continue
					}
					rep, err := m.pass(ctx, time.Now())
					if err != nil {
						b.Fatal(err)
					}
					if tm := rep.Tables[0]; tm.Compact.FilesRemoved+tm.Expired+tm.Orphans != 0 {
						b.Fatalf("pass did something: %+v", tm)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/pass")
				if memory {
					b.ReportMetric(float64(m.reads-reads)/float64(b.N), "avro-reads/pass")
				}
			})
		}
	}
}

// noMemoryPass is a pass over name as Maintain did it before maintainer.
func noMemoryPass(b *testing.B, l *Lake, name string) {
	ctx, now := context.Background(), time.Now()
	res, err := l.Compact(ctx, name)
	if err != nil || res.FilesRemoved != 0 {
		b.Fatalf("compact: %+v, %v", res, err)
	}
	if n, err := l.Expire(ctx, name, now); err != nil || n != 0 {
		b.Fatalf("expire: %d, %v", n, err)
	}
	if n, err := l.RemoveOrphans(ctx, name, now); err != nil || n != 0 {
		b.Fatalf("remove orphans: %d, %v", n, err)
	}
}
