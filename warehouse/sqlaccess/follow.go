package sqlaccess

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"citybrain/internal/freshness"
	"citybrain/warehouse"
)

// Following commits. Every sandbox's view of a table lists the data files
// of one snapshot, so a view must be rebuilt after each commit or the
// analysts go on reading the old snapshot. The views once stopped following
// commits under load (marts.warnings showed 12 rows while the lake held
// 10,514): each commit's refresh rebuilt every sandbox's catalog by loading
// the metadata of every table twice, so refreshes fell behind the commits,
// and the lossy commit bus dropped the oldest notifications — a table
// committed once in a while (marts.warnings, audit.queries) kept its stale
// view until its next commit. Commits made outside serve (citybrain ingest,
// maintenance's compactions) were never announced at all.
//
// Now a commit marks its table pending (Notify: never blocks, never lost,
// repeated commits of one table coalesce), one goroutine refreshes the
// pending tables in rounds (Follow), the catalogs are rebuilt from cached
// table figures, and every reconcile interval the lake's snapshots are
// compared with what the views show, so a missed or unannounced commit is
// picked up within that interval. Each table's query path reports its
// freshness (component "query", name "sql").

// QueryPath is the freshness path of a table as the SQL interfaces
// (pgwire, /api/sql, the web console) show it.
func QueryPath(table string) freshness.Path {
	return freshness.Path{Component: "query", Name: "sql", Table: table}
}

// follower is the state of Follow.
type follower struct {
	mu      sync.Mutex
	pending map[string]time.Time // table → commit time of its oldest commit not yet shown
	shown   map[string]int64     // table → snapshot the views show
	wake    chan struct{}
	// info and docs cache the catalog's figures and descriptions per table,
	// updated when the table is refreshed.
	info map[string]warehouse.TableInfo
	docs map[string]tableDoc
}

func (a *Access) follow() *follower {
	a.fonce.Do(func() {
		a.fol = &follower{pending: map[string]time.Time{}, shown: map[string]int64{}, wake: make(chan struct{}, 1),
			info: map[string]warehouse.TableInfo{}, docs: map[string]tableDoc{}}
	})
	return a.fol
}

// Notify says table was committed at at (zero: now). It returns at once;
// Follow refreshes the views.
func (a *Access) Notify(table string, at time.Time) {
	if at.IsZero() {
		at = time.Now()
	}
	table = strings.ToLower(table)
	f := a.follow()
	f.mu.Lock()
	if cur, ok := f.pending[table]; !ok || at.Before(cur) {
		f.pending[table] = at
	}
	f.mu.Unlock()
	a.Fresh.Pending(QueryPath(table), at)
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Follow refreshes the views of notified tables as notifications come, and
// every reconcile compares the lake's snapshots with the views' (0: 10 s),
// until ctx is done.
func (a *Access) Follow(ctx context.Context, reconcile time.Duration) {
	if reconcile <= 0 {
		reconcile = 10 * time.Second
	}
	f := a.follow()
	tick := time.NewTicker(reconcile)
	defer tick.Stop()
	a.reconcile(ctx)
	for {
		a.refreshPending(ctx)
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		case <-tick.C:
			a.reconcile(ctx)
		}
	}
}

// reconcile marks pending every table whose current snapshot the views do not show.
func (a *Access) reconcile(ctx context.Context) {
	tables, err := a.lake.Tables(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("查询层核对快照失败 query layer could not list the lake's tables; will retry", "err", err)
		}
		return
	}
	f := a.follow()
	f.mu.Lock()
	var stale []warehouse.TableInfo
	for _, t := range tables {
		if f.shown[t.Name] != t.SnapshotID {
			stale = append(stale, t)
		}
	}
	f.mu.Unlock()
	for _, t := range stale {
		a.Notify(t.Name, t.Committed)
	}
}

// refreshPending refreshes every pending table in the engine and every
// open sandbox, then each sandbox's catalog once.
func (a *Access) refreshPending(ctx context.Context) {
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	f := a.follow()
	f.mu.Lock()
	todo := f.pending
	f.pending = map[string]time.Time{}
	f.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	a.mu.Lock()
	boxes := make([]*sandbox, 0, len(a.boxes))
	for _, b := range a.boxes {
		boxes = append(boxes, b)
	}
	a.mu.Unlock()
	done := map[string]warehouse.TableInfo{}
	failed := map[string]error{}
	for table := range todo {
		info, err := a.refreshTable(ctx, table)
		if errors.Is(err, warehouse.ErrNoTable) {
			a.forget(table)
			continue
		}
		if err != nil {
			failed[table] = err
			continue
		}
		done[table] = info
	}
	bodies := map[string]string{} // the engine's SELECT of each table, read once for every sandbox
	for table := range done {
		body, err := a.engineBody(ctx, table)
		if err != nil {
			failed[table] = err
			continue
		}
		bodies[table] = body
	}
	for _, b := range boxes {
		changed := false
		for table, body := range bodies {
			if !b.mayRead(table) {
				continue
			}
			if err := b.refreshBody(ctx, table, body, false); err != nil {
				failed[table] = err
				continue
			}
			changed = true
		}
		if changed {
			// Rebuilt when a statement next reads catalog.* (ensureCatalog), not
			// at every commit: a busy lake commits every second, a catalog is read rarely.
			b.catalogStale.Store(true)
		}
	}
	if ctx.Err() != nil {
		return
	}
	f.mu.Lock()
	for table, info := range done {
		if _, bad := failed[table]; bad {
			continue
		}
		f.shown[table] = info.SnapshotID
		again, renotified := f.pending[table]
		a.Fresh.Update(QueryPath(table), func(s *freshness.State) {
			s.Snapshot, s.Committed, s.Err = info.SnapshotID, info.Committed, ""
			s.PendingSince = time.Time{}
			if renotified {
				s.PendingSince = again
			}
		})
	}
	for table, err := range failed {
		// Tried again at the next round (a file removed under a view, a busy catalog).
		if at, ok := todo[table]; ok {
			if cur, ok := f.pending[table]; !ok || at.Before(cur) {
				f.pending[table] = at
			}
		}
		a.log.Warn("查询层视图刷新失败，稍后重试 refreshing a table's SQL view failed; will retry", "table", table, "err", err)
		a.Fresh.Update(QueryPath(table), func(s *freshness.State) { s.Err = err.Error() })
		a.Fresh.Count("citybrain_query_refresh_errors", "SQL view refreshes that failed / 查询视图刷新失败次数", 1, "table", table)
	}
	f.mu.Unlock()
	if len(failed) > 0 {
		// Back off a little so a persistent failure does not spin.
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// refreshTable rebuilds the engine's view of one table and caches its
// figures and descriptions for the catalogs.
func (a *Access) refreshTable(ctx context.Context, table string) (warehouse.TableInfo, error) {
	if err := a.eng.Refresh(ctx, table); err != nil {
		return warehouse.TableInfo{}, err
	}
	info, err := a.lake.Info(ctx, table)
	if err != nil {
		return warehouse.TableInfo{}, err
	}
	d := a.loadDocs(ctx, table)
	f := a.follow()
	f.mu.Lock()
	f.info[table], f.docs[table] = info, d
	f.mu.Unlock()
	return info, nil
}

// forget drops a table that no longer exists.
func (a *Access) forget(table string) {
	f := a.follow()
	f.mu.Lock()
	delete(f.info, table)
	delete(f.docs, table)
	delete(f.shown, table)
	f.mu.Unlock()
	a.Fresh.Remove(QueryPath(table))
}

// cachedInfo returns the catalog figures of tables (loaded once if not cached).
func (a *Access) cachedInfo(ctx context.Context, tables []string) map[string]warehouse.TableInfo {
	f := a.follow()
	out := make(map[string]warehouse.TableInfo, len(tables))
	var missing []string
	f.mu.Lock()
	for _, t := range tables {
		if in, ok := f.info[t]; ok {
			out[t] = in
		} else {
			missing = append(missing, t)
		}
	}
	f.mu.Unlock()
	for _, t := range missing {
		if in, err := a.lake.Info(ctx, t); err == nil {
			out[t] = in
			f.mu.Lock()
			f.info[t] = in
			f.mu.Unlock()
		}
	}
	return out
}
