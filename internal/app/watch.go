package app

import (
	"context"
	"time"

	"citybrain/warehouse"
)

// WatchCommits publishes on bus the commits other instances make to the
// lake: serve's lake writers announce their own commits, but an instance
// without the lakewriter role (docs/roles.md) learns of new snapshots only
// by looking. Every interval it reads each table's current snapshot (the
// catalog and the table's metadata: Lake.Tables) and publishes a Commit for
// each table whose snapshot changed, so models run on new data, the views
// refresh and the dashboards push, as in the one-process platform.
func WatchCommits(ctx context.Context, lake *warehouse.Lake, bus *CommitBus, interval time.Duration) {
	seen := map[string]int64{}
	first := true
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if ts, err := lake.Tables(ctx); err == nil {
			for _, ti := range ts {
				if ti.Err != "" || ti.SnapshotID == 0 {
					continue
				}
				if old, ok := seen[ti.Name]; (ok && old != ti.SnapshotID) || (!ok && !first) {
					bus.Publish(Commit{Table: ti.Name, Snapshot: ti.SnapshotID, At: ti.Committed})
				}
				seen[ti.Name] = ti.SnapshotID
			}
			first = false
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
