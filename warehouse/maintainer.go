package warehouse

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// liveMaxAge bounds how long a maintainer trusts the data files it has seen
// referenced. A file stays referenced until a snapshot expiry deletes it, so
// the memory only goes stale when such a delete fails (or another process
// expires snapshots); after liveMaxAge the next orphan check reads every
// snapshot again and finds those files.
const liveMaxAge = 12 * time.Hour

// maintainer runs maintenance passes and remembers, per table, what the
// last passes planned, so that a pass over a table with nothing to do reads
// one metadata file and lists the data directory, instead of every manifest
// list and manifest of every snapshot (which took minutes on tables with
// thousands of snapshots). What it remembers never decides that a file may
// be deleted or rewritten: that is always planned from the table as loaded.
//
// A maintainer is used by one goroutine at a time.
type maintainer struct {
	l      *Lake
	tables map[string]*tableMemo
	// reads counts the manifest lists and manifests read (tests and the
	// benchmark check that a no-op pass reads none).
	reads int
}

// tableMemo is what the maintainer remembers of one table.
type tableMemo struct {
	// noCompact is the snapshot whose plan found nothing to compact.
	noCompact int64
	// manifests: data manifest path → partition key → small files, for the
	// manifests of the current snapshot (manifests are immutable).
	manifests map[string]map[string]int
	// live: local paths of data files known to be referenced by some
	// snapshot (files of current snapshots seen while planning, files a
	// compaction replaced, the result of a full scan), since liveSince.
	live      map[string]struct{}
	liveSince time.Time
}

func (l *Lake) newMaintainer() *maintainer {
	return &maintainer{l: l, tables: map[string]*tableMemo{}}
}

// pass runs compaction, snapshot expiry and orphan cleanup over every table.
func (m *maintainer) pass(ctx context.Context, now time.Time) (MaintenanceReport, error) {
	start := time.Now()
	rep := MaintenanceReport{Started: now}
	names, err := m.l.tableNames(ctx)
	if err != nil {
		return rep, err
	}
	var errs []error
	seen := map[string]bool{}
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		seen[name] = true
		tm := m.table(ctx, name, now, &rep)
		if tm.Err != nil {
			m.l.log.Error("maintenance failed", "table", name, "err", tm.Err)
			errs = append(errs, fmt.Errorf("maintain %s: %w", name, tm.Err))
		}
		rep.Tables = append(rep.Tables, tm)
	}
	for name := range m.tables {
		if !seen[name] {
			delete(m.tables, name) // dropped
		}
	}
	rep.Took = time.Since(start)
	return rep, errors.Join(errs...)
}

// table maintains one table, loading its metadata once for the three
// steps' planning.
func (m *maintainer) table(ctx context.Context, name string, now time.Time, rep *MaintenanceReport) (tm TableMaintenance) {
	start := time.Now()
	tm.Table = name
	defer func() { tm.Took = time.Since(start) }()
	memo := m.tables[name]
	if memo == nil {
		memo = &tableMemo{}
		m.tables[name] = memo
	}
	if memo.live == nil || now.Sub(memo.liveSince) > liveMaxAge {
		// Start over: the manifests are read again, adding the current
		// snapshot's files to live.
		*memo = tableMemo{live: map[string]struct{}{}, liveSince: now}
	}
	t, err := m.l.Load(ctx, name)
	if err != nil {
		tm.Err = err
		return tm
	}
	var errs []error

	need, err := m.needsCompaction(ctx, t, memo)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("compact: %w", err))
	case !need:
		rep.Skipped++
	default:
		res, olds, err := m.l.compact(ctx, name, m.l.cfg.Maintenance.CompactMinFiles)
		switch {
		case errors.Is(err, ErrConflict):
			tm.Conflict = true
			m.l.log.Info("compaction gave way to a writer", "table", name, "err", err)
		case err != nil:
			errs = append(errs, fmt.Errorf("compact: %w", err))
		default:
			tm.Compact = res
			if res.SnapshotID == 0 {
				// The full plan disagreed with the count (delete files):
				// it is the same next pass unless the table changes.
				if s := t.CurrentSnapshot(); s != nil {
					memo.noCompact = s.SnapshotID
				}
			}
			// Older snapshots still reference the replaced files.
			for _, f := range olds {
				memo.remember(m.l.fileKey(f.FilePath()))
			}
		}
	}

	expire, err := m.l.wouldExpire(t, now)
	if tm.Compact.SnapshotID != 0 {
		expire, err = true, nil // t is out of date: let Expire see
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("expire: %w", err))
	} else if !expire {
		rep.Skipped++
	} else if tm.Expired, err = m.l.Expire(ctx, name, now); errors.Is(err, ErrConflict) {
		m.l.log.Info("snapshot expiry gave way to a writer", "table", name, "err", err)
	} else if err != nil {
		errs = append(errs, fmt.Errorf("expire: %w", err))
	}

	if tm.Compact.SnapshotID != 0 || tm.Expired > 0 {
		// The expired snapshots' manifests are gone: read the metadata
		// again (before listing the directory).
		if t, err = m.l.Load(ctx, name); err != nil {
			errs = append(errs, err)
			tm.Err = errors.Join(errs...)
			return tm
		}
	}
	if tm.Orphans, err = m.removeOrphans(ctx, name, t, now, memo); err != nil {
		errs = append(errs, fmt.Errorf("remove orphans: %w", err))
	}
	if n, err := removeStaleStates(t, now); err != nil {
		errs = append(errs, fmt.Errorf("remove state files: %w", err))
	} else {
		tm.Orphans += n
	}
	tm.Err = errors.Join(errs...)
	return tm
}

// needsCompaction tells whether some partition of the current snapshot has
// CompactMinFiles small files, counting from the manifests it has not read
// before only. A snapshot already planned with nothing to do is not looked
// at again. Along the way it remembers the current snapshot's files as live.
func (m *maintainer) needsCompaction(ctx context.Context, t *table.Table, memo *tableMemo) (bool, error) {
	snap := t.CurrentSnapshot()
	if snap == nil || snap.SnapshotID == memo.noCompact {
		return false, nil
	}
	fsys, err := t.FS(m.l.ioCtx(ctx))
	if err != nil {
		return false, err
	}
	mans, err := snap.Manifests(fsys)
	if err != nil {
		return false, fmt.Errorf("snapshot %d: %w", snap.SnapshotID, err)
	}
	m.reads++
	cfg := m.l.cfg.Maintenance
	need := false
	counts := map[string]int{}
	keep := make(map[string]map[string]int, len(mans))
	for _, man := range mans {
		if man.ManifestContent() != iceberg.ManifestContentData {
			need = true // delete files: the full planner decides
			continue
		}
		c, ok := memo.manifests[man.FilePath()]
		if !ok {
			c = map[string]int{}
			for entry, err := range man.Entries(fsys, true) {
				if err != nil {
					return false, fmt.Errorf("manifest %s: %w", man.FilePath(), err)
				}
				f := entry.DataFile()
				memo.remember(m.l.fileKey(f.FilePath()))
				if compactable(f, cfg.SmallFileBytes) {
					c[compactKey(f)]++
				}
			}
			m.reads++
		}
		keep[man.FilePath()] = c
		for k, n := range c {
			counts[k] += n
			need = need || counts[k] >= cfg.CompactMinFiles
		}
	}
	memo.manifests = keep
	if !need {
		memo.noCompact = snap.SnapshotID
	}
	return need, nil
}

// wouldExpire tells, from the metadata alone, whether Expire would expire
// any snapshot of t at now.
func (l *Lake) wouldExpire(t *table.Table, now time.Time) (bool, error) {
	snaps := t.Metadata().Snapshots()
	m := l.cfg.Maintenance
	if len(snaps) <= max(m.RetainLast, 1) {
		return false, nil
	}
	cutoff := now.Add(-m.ExpireOlderThan).UnixMilli()
	if m.MaxSnapshots > 0 && len(snaps) > m.MaxSnapshots {
		cutoff = max(cutoff, now.Add(-minExpireAge).UnixMilli()) // the cap may apply
	}
	old := false
	for _, s := range snaps {
		old = old || s.TimestampMs < cutoff
	}
	if !old {
		return false, nil
	}
	tx := t.NewTransaction()
	if err := tx.ExpireSnapshots(l.expireOpts(t, now)...); err != nil {
		return false, err
	}
	st, err := tx.StagedTable()
	if err != nil {
		return false, err
	}
	return len(st.Metadata().Snapshots()) < len(snaps), nil
}

// removeOrphans is RemoveOrphans with a memory: files the maintainer knows
// are referenced are not looked at, and the snapshots are only read (all of
// them, as RemoveOrphans does) when some other file is older than the grace
// period, or the memory is older than liveMaxAge. t is the table as loaded
// before the directory is listed.
func (m *maintainer) removeOrphans(ctx context.Context, name string, t *table.Table, now time.Time, memo *tableMemo) (int, error) {
	cutoff := now.Add(-m.l.cfg.Maintenance.OrphanGrace)
	present := make(map[string]struct{}, len(memo.live))
	objs, err := m.l.listData(ctx, t)
	if err != nil {
		return 0, fmt.Errorf("remove orphans of %s: %w", name, err)
	}
	var old []dataObject
	for _, o := range objs {
		k := m.l.fileKey(o.uri)
		if _, ok := memo.live[k]; ok {
			present[k] = struct{}{}
			continue
		}
		if o.modTime.Before(cutoff) {
			old = append(old, o)
		}
	}
	memo.live = present // forget files that are gone
	if len(old) == 0 {
		return 0, nil
	}
	live, reads, err := m.l.referencedFiles(ctx, t)
	m.reads += reads
	if err != nil {
		return 0, fmt.Errorf("remove orphans of %s: %w", name, err)
	}
	removed := 0
	var errs []error
	for _, o := range old {
		k := m.l.fileKey(o.uri)
		if _, ok := live[k]; ok {
			memo.live[k] = struct{}{}
			continue
		}
		// Stat again (a local file): the listing may be a while ago.
		if !m.l.Remote() {
			fi, err := os.Stat(k)
			if err != nil || !fi.ModTime().Before(cutoff) {
				continue
			}
		}
		if err := m.l.removeFile(ctx, o.uri); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
		m.l.log.Info("orphan removed", "table", name, "file", o.uri, "modified", o.modTime)
	}
	return removed, errors.Join(errs...)
}

func (memo *tableMemo) remember(p string) { memo.live[p] = struct{}{} }

// compactable tells whether f is a candidate for compaction.
func compactable(f iceberg.DataFile, small int64) bool {
	return f.ContentType() == iceberg.EntryContentData && f.FileFormat() == iceberg.ParquetFile && f.FileSizeBytes() < small
}

// compactKey groups the files compaction may rewrite together: same
// partition spec, partition and directory.
func compactKey(f iceberg.DataFile) string {
	return fmt.Sprintf("%d/%v/%s", f.SpecID(), f.Partition(), uriDir(f.FilePath()))
}
