package warehouse

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/apache/iceberg-go/table"
)

// Moving or restoring a local lake (citybrain lake relocate).
//
// Iceberg metadata holds absolute locations: the table's, each snapshot's
// manifest list, each manifest's, each data file's. A copy of the data
// directory restored elsewhere therefore still names (and, if it is still
// there, reads) the original's files. Relocate makes each table of this
// lake whose recorded location is not its directory here read its own
// files: it reads the newest metadata with every path mapped from the old
// location to the new one, moves the old metadata directory aside
// (metadata.before-relocate-<time>), creates the table anew here with the
// same schema, partitioning and properties, and commits the current
// snapshot's data files — at their new paths, with their counts and
// bounds — together with the snapshot's stream position, in one snapshot.
// Data files are not copied or rewritten. The snapshots before the move
// are not carried over (time travel starts at the relocation).

// RelocateResult says what relocation did to one table.
type RelocateResult struct {
	Table    string `json:"table"`
	From     string `json:"from,omitempty"`
	To       string `json:"to"`
	Files    int    `json:"files"`
	Rows     int64  `json:"rows"`
	Snapshot int64  `json:"snapshot,omitempty"`
	// Moved is false for a table already at home.
	Moved bool `json:"moved"`
}

// Relocate relocates every table whose metadata names another directory.
// Local catalog only; no other process may use the lake meanwhile.
func (l *Lake) Relocate(ctx context.Context) ([]RelocateResult, error) {
	if l.cfg.Catalog != "local" {
		return nil, fmt.Errorf("lake relocate works on the local catalog; with %s, register the tables' new locations in the catalog", l.cfg.Catalog)
	}
	nss, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, err
	}
	var out []RelocateResult
	for _, ns := range nss {
		if !ns.IsDir() {
			continue
		}
		tbls, err := os.ReadDir(filepath.Join(l.dir, ns.Name()))
		if err != nil {
			return out, err
		}
		for _, tb := range tbls {
			if _, err := os.Stat(filepath.Join(l.dir, ns.Name(), tb.Name(), "metadata")); err != nil {
				continue
			}
			r, err := l.relocateTable(ctx, ns.Name()+"."+tb.Name())
			if err != nil {
				return out, fmt.Errorf("relocate %s.%s: %w", ns.Name(), tb.Name(), err)
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// mappedIO reads files under an old location from the new one.
type mappedIO struct {
	icebergio.LocalFS
	from, to string
}

func (m mappedIO) path(name string) string {
	name = strings.TrimPrefix(name, "file://")
	if strings.HasPrefix(name, m.from) {
		return m.to + strings.TrimPrefix(name, m.from)
	}
	return name
}

func (m mappedIO) Open(name string) (icebergio.File, error) { return m.LocalFS.Open(m.path(name)) }
func (m mappedIO) ReadFile(name string) ([]byte, error)     { return m.LocalFS.ReadFile(m.path(name)) }

func (l *Lake) relocateTable(ctx context.Context, name string) (RelocateResult, error) {
	id := Ident(name)
	home := filepath.Join(l.dir, id[0], id[1])
	res := RelocateResult{Table: name, To: home}
	vs, err := l.metadataVersions(name)
	if err != nil || len(vs) == 0 {
		return res, fmt.Errorf("no metadata file: %v", err)
	}
	b, err := os.ReadFile(vs[0])
	if err != nil {
		return res, err
	}
	var head struct {
		Location string `json:"location"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return res, fmt.Errorf("%s: %w", vs[0], err)
	}
	old := strings.TrimSuffix(strings.TrimPrefix(head.Location, "file://"), "/")
	res.From = old
	if filepath.Clean(old) == filepath.Clean(home) {
		return res, nil
	}
	mio := mappedIO{from: old, to: home}
	t, err := table.NewFromLocation(ctx, id, vs[0], func(context.Context) (icebergio.IO, error) { return mio, nil }, l.cat)
	if err != nil {
		return res, fmt.Errorf("%s: %w", vs[0], err)
	}
	var files []iceberg.DataFile
	if snap := t.CurrentSnapshot(); snap != nil {
		if files, err = snapshotDataFiles(ctx, t, snap); err != nil {
			return res, err
		}
	}
	props := stateSummary(t)
	if sf := props[summaryStateFile]; sf != "" {
		props[summaryStateFile] = mio.path(sf)
	}
	moved := make([]iceberg.DataFile, 0, len(files))
	for _, f := range files {
		nf, err := withPath(t, f, "file://"+mio.path(f.FilePath()))
		if err != nil {
			return res, err
		}
		if _, err := os.Stat(LocalPath(nf.FilePath())); err != nil {
			return res, fmt.Errorf("data file of the current snapshot missing here: %w", err)
		}
		moved = append(moved, nf)
		res.Rows += f.Count()
	}
	res.Files = len(moved)

	// The old metadata is kept aside, not deleted.
	meta := filepath.Join(home, "metadata")
	aside := meta + ".before-relocate-" + time.Now().UTC().Format("20060102T150405")
	if err := os.Rename(meta, aside); err != nil {
		return res, err
	}
	restore := func(err error) (RelocateResult, error) {
		os.RemoveAll(meta)
		if rerr := os.Rename(aside, meta); rerr != nil {
			return res, fmt.Errorf("%v; and restoring the metadata from %s failed: %v", err, aside, rerr)
		}
		return res, err
	}
	tblProps := iceberg.Properties{}
	for k, v := range t.Properties() {
		if !strings.HasPrefix(k, positionPrefix) {
			tblProps[k] = v
		}
	}
	spec := t.Spec()
	nt, err := l.cat.CreateTable(ctx, id, t.Schema(), catalog.WithPartitionSpec(&spec), catalog.WithSortOrder(t.SortOrder()), catalog.WithProperties(tblProps))
	if err != nil {
		return restore(fmt.Errorf("create table: %w", err))
	}
	if !sameFieldIDs(nt.Schema(), t.Schema()) {
		return restore(fmt.Errorf("the new table's field ids differ from the files' (%v, was %v)", nt.Schema(), t.Schema()))
	}
	if len(moved) > 0 {
		// The state file (large cursors) is read before the commit names
		// it again, so copy its content into this commit's summary.
		if props[summaryStateFile] != "" {
			st, err := parseState(mio, State{Offsets: map[string]map[int]int64{}, Cursors: map[string]int64{}, Tokens: map[string]string{}}, props)
			if err != nil {
				return restore(err)
			}
			if props, err = l.stateProps(ctx, nt, st); err != nil {
				return restore(err)
			}
		}
		tx := nt.NewTransaction()
		if err := tx.AddDataFiles(ctx, moved, props, table.WithoutDuplicateCheck()); err != nil {
			return restore(err)
		}
		if nt, err = tx.Commit(ctx); err != nil {
			return restore(err)
		}
		res.Snapshot = nt.CurrentSnapshot().SnapshotID
	}
	res.Moved = true
	l.log.Info("table relocated 数据表已迁移", "table", name, "from", old, "to", home, "files", res.Files, "rows", res.Rows, "old_metadata", aside)
	return res, nil
}

func sameFieldIDs(a, b *iceberg.Schema) bool {
	fa, fb := a.Fields(), b.Fields()
	if len(fa) != len(fb) {
		return false
	}
	for i := range fa {
		if fa[i].ID != fb[i].ID || fa[i].Name != fb[i].Name {
			return false
		}
	}
	return true
}

// withPath is f at another path, with its partition, counts and bounds.
func withPath(t *table.Table, f iceberg.DataFile, path string) (iceberg.DataFile, error) {
	spec := t.Spec()
	for _, s := range t.Metadata().PartitionSpecs() {
		if s.ID() == int(f.SpecID()) {
			spec = s
		}
	}
	part := f.Partition()
	logical := map[int]string{}
	for id, v := range part {
		if _, ok := v.(iceberg.Date); ok {
			logical[id] = "date"
		}
	}
	b, err := iceberg.NewDataFileBuilder(spec, iceberg.EntryContentData, path, f.FileFormat(), part, logical, nil, f.Count(), f.FileSizeBytes())
	if err != nil {
		return nil, err
	}
	if v := f.ValueCounts(); v != nil {
		b.ValueCounts(v)
	}
	if v := f.NullValueCounts(); v != nil {
		b.NullValueCounts(v)
	}
	if v := f.LowerBoundValues(); v != nil {
		b.LowerBoundValues(v)
	}
	if v := f.UpperBoundValues(); v != nil {
		b.UpperBoundValues(v)
	}
	return b.Build(), nil
}
