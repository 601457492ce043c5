package warehouse

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/aws/aws-sdk-go-v2/aws"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/catalog/hadoop"
	"github.com/apache/iceberg-go/catalog/rest"
	sqlcat "github.com/apache/iceberg-go/catalog/sql"
	icebergio "github.com/apache/iceberg-go/io"
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // s3:// file IO for metadata on an object store
	"github.com/apache/iceberg-go/table"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for the PostgreSQL catalog

	"citybrain/schemas"
	"citybrain/warehouse/objstore"
)

// Errors of the lake; match with errors.Is.
var (
	// ErrNoTable: the table does not exist in the catalog.
	ErrNoTable = errors.New("no such table")
	// ErrConflict: another writer committed first; reload State and retry.
	ErrConflict = errors.New("commit conflict")
)

// Summary keys under which writers keep their stream position.
const (
	summaryCluster = "citybrain.kafka.cluster"
	summaryOffsets = "citybrain.kafka.offsets"
	summaryCursors = "citybrain.cursors"
	summaryBatch   = "citybrain.batch"
	summaryTokens  = "citybrain.tokens"
	// summaryStateFile names the state file holding the cursors and tokens
	// when they are too large to repeat in every snapshot's summary.
	summaryStateFile = "citybrain.state-file"
	// positionPrefix prefixes the table properties of a position-only
	// commit (CommitPosition); positionSnapshot names the snapshot they
	// extend.
	positionPrefix   = "citybrain.position."
	positionSnapshot = positionPrefix + "snapshot"
)

// stateInlineMax is how many bytes of cursors and tokens (JSON) a snapshot
// summary carries itself. A file connector keeps a cursor and a token per
// file it has read, so its state grows with every file; repeated in every
// snapshot summary it made a busy table's metadata file megabytes (rewritten
// at each commit, ~1 GB of metadata per table in a 30-minute soak). Larger
// states go to a state file beside the metadata (see writeStateFile), and
// the summary names it.
const stateInlineMax = 2048

// tableProps are the properties every table is created with (and existing
// tables are given, see EnsureTable).
var tableProps = iceberg.Properties{
	"format-version":                  "2",
	"write.parquet.compression-codec": "zstd",
	// Every commit writes a new metadata file; keep the last few, delete
	// older ones (the views read data files, never old metadata).
	table.MetadataDeleteAfterCommitEnabledKey: "true",
	table.MetadataPreviousVersionsMaxKey:      "10",
	// Merge the one-manifest-per-commit of streaming appends once there are
	// this many, so planning a scan reads a bounded number of manifests.
	table.ManifestMergeEnabledKey: "true",
}

// Lake is the set of Iceberg tables behind one catalog.
type Lake struct {
	cat  catalog.Catalog
	dir  string
	cfg  Config
	log  *slog.Logger
	db   *sql.DB // sql catalog's connection, closed with the lake
	mu   sync.Mutex
	tbls map[string]*sync.Mutex // per-table commit lock within this process
	// yield is called before each background maintenance pass (SetYield).
	yield func(ctx context.Context) time.Duration

	// loaded caches the local catalog's tables by their metadata directory's
	// modification time (see Load).
	lmu    sync.Mutex
	loaded map[string]loadedTable
	infos  map[string]cachedInfo // Info by metadata location
	// index holds the live data files of keyed tables (see CommitKeyed).
	index map[string]fileIndex

	// store, cache and stage are set for a lake on an object store
	// (warehouse.location s3://…; see files.go).
	store    objstore.Store
	cache    *objstore.Cache
	stage    string
	cacheDir string // this lake's own directory under warehouse.s3.cache_dir

	// planned remembers snapshots' data files (see snapshotFiles).
	pmu     sync.Mutex
	planned map[string][]iceberg.DataFile
	// prunedFiles counts the data files statements did not read because
	// their filters ruled them out (prune.go).
	prunedFiles atomic.Int64
	// awsCfg is the AWS configuration iceberg-go's S3 IO shares (ioCtx).
	awsCfg *aws.Config
}

// PrunedFiles is how many data files statements skipped by their filters
// (the manifests' bounds and partitions; see prune.go).
func (l *Lake) PrunedFiles() int64 { return l.prunedFiles.Load() }

// loadedTable is a table as parsed, and the metadata directory's
// modification time it was parsed at.
type loadedTable struct {
	mtime int64
	hint  string
	t     *table.Table
}

// Open connects to the configured catalog. dataDir anchors a relative
// warehouse directory.
func Open(ctx context.Context, cfg Config, dataDir string, log *slog.Logger) (*Lake, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir := cfg.Dir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(dataDir, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("warehouse dir: %w", err)
	}
	l := &Lake{dir: dir, cfg: cfg, log: log, tbls: map[string]*sync.Mutex{}}
	if cfg.Remote() {
		if err := l.openStore(ctx, dataDir); err != nil {
			return nil, err
		}
	}
	opened := false
	defer func() {
		if !opened {
			l.closeStore()
		}
	}()
	var err error
	switch cfg.Catalog {
	case "local":
		l.cat, err = hadoop.NewCatalog("citybrain", dir, iceberg.Properties{})
	case "sql":
		dsn := cfg.SQL.DSN
		if v := os.Getenv("CITYBRAIN_CATALOG_DSN"); v != "" {
			dsn = v
		}
		driver, dialect := "pgx", sqlcat.Postgres
		if cfg.SQL.Driver == "sqlite" {
			return nil, errors.New("warehouse.sql.driver sqlite: not built into this binary; use the local catalog or postgres")
		}
		if dsn == "" {
			return nil, errors.New("warehouse.sql.dsn is empty: set it or CITYBRAIN_CATALOG_DSN")
		}
		l.db, err = sql.Open(driver, dsn)
		if err != nil {
			return nil, fmt.Errorf("open sql catalog: %w", err)
		}
		if err = l.db.PingContext(ctx); err != nil {
			l.db.Close()
			return nil, fmt.Errorf("connect to sql catalog: %w", err)
		}
		props := l.catalogProps()
		props["init_catalog_tables"] = "true"
		props["warehouse"] = l.Location()
		// Instances starting together on a new catalog database race to create
		// its tables: PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe
		// against a concurrent one (SQLSTATE 23505 on pg_type, 42P07 or 42710).
		// The loser finds them made at its next try.
		for attempt := 1; ; attempt++ {
			l.cat, err = sqlcat.NewCatalog("citybrain", l.db, dialect, props)
			if err == nil || attempt == 5 || !createRace(err) {
				break
			}
			select {
			case <-ctx.Done():
				l.db.Close()
				return nil, ctx.Err()
			case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
			}
		}
	case "rest":
		opts := []rest.Option{}
		if v := firstNonEmpty(os.Getenv("CITYBRAIN_CATALOG_CREDENTIAL"), cfg.REST.Credential); v != "" {
			opts = append(opts, rest.WithCredential(v))
		}
		if v := firstNonEmpty(os.Getenv("CITYBRAIN_CATALOG_TOKEN"), cfg.REST.Token); v != "" {
			opts = append(opts, rest.WithOAuthToken(v))
		}
		if cfg.REST.Warehouse != "" {
			opts = append(opts, rest.WithWarehouseLocation(cfg.REST.Warehouse))
		}
		if l.store != nil {
			opts = append(opts, rest.WithAdditionalProps(l.catalogProps()))
		}
		l.cat, err = rest.NewCatalog(ctx, "citybrain", cfg.REST.URI, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s catalog: %w", cfg.Catalog, err)
	}
	opened = true
	return l, nil
}

// createRace tells PostgreSQL's answers to two sessions creating the same
// table at once.
func createRace(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "SQLSTATE 23505") && strings.Contains(msg, "\"pg_") || // a catalog row of the table's type
		strings.Contains(msg, "SQLSTATE 42P07") || strings.Contains(msg, "SQLSTATE 42710") // duplicate table, duplicate type
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}

// Close releases the catalog (and removes the lake's cache directory).
func (l *Lake) Close() error {
	l.closeStore()
	if l.db != nil {
		return l.db.Close()
	}
	return nil
}

// Dir is the warehouse directory.
func (l *Lake) Dir() string { return l.dir }

// Ident parses "ns.table".
func Ident(name string) table.Identifier { return strings.Split(name, ".") }

func (l *Lake) lock(name string) func() {
	l.mu.Lock()
	m, ok := l.tbls[name]
	if !ok {
		m = &sync.Mutex{}
		l.tbls[name] = m
	}
	l.mu.Unlock()
	m.Lock()
	return m.Unlock
}

// EnsureTable creates the schema's table (and namespace) if missing, and
// returns it. An existing table is returned as it is.
func (l *Lake) EnsureTable(ctx context.Context, s *schemas.Schema) (*table.Table, error) {
	ident := Ident(s.Table)
	if t, err := l.Load(ctx, s.Table); err == nil {
		return l.upgradeProps(ctx, s.Table, t), nil
	} else if !errors.Is(err, ErrNoTable) {
		return nil, err
	}
	if t, err := l.cat.LoadTable(ctx, ident); err == nil {
		return t, nil
	} else if !errors.Is(err, catalog.ErrNoSuchTable) {
		return nil, fmt.Errorf("load table %s: %w", s.Table, err)
	}
	ns := ident[:1]
	if err := l.cat.CreateNamespace(ctx, ns, iceberg.Properties{}); err != nil && !errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
		return nil, fmt.Errorf("create namespace %s: %w", ns, err)
	}
	opts := []catalog.CreateTableOpt{
		catalog.WithPartitionSpec(ptr(s.PartitionSpec())),
		catalog.WithProperties(createProps(s)),
	}
	if l.cfg.Catalog == "sql" || l.store != nil {
		opts = append(opts, catalog.WithLocation(l.tableLocation(ident)))
	}
	t, err := l.cat.CreateTable(ctx, ident, s.IcebergSchema(), opts...)
	if errors.Is(err, catalog.ErrTableAlreadyExists) {
		return l.cat.LoadTable(ctx, ident)
	}
	if err != nil {
		return nil, fmt.Errorf("create table %s: %w", s.Table, err)
	}
	l.log.Info("table created", "table", s.Table, "location", t.Location())
	return t, nil
}

func ptr[T any](v T) *T { return &v }

// createProps are a new table's properties.
func createProps(s *schemas.Schema) iceberg.Properties {
	p := iceberg.Properties{
		"comment":                  s.Doc.String(),
		"citybrain.schema":         s.Name,
		"citybrain.schema.version": strconv.Itoa(s.Version),
	}
	for k, v := range tableProps {
		p[k] = v
	}
	return p
}

// upgradeProps gives a table created by an older version the properties of
// tableProps it lacks (format-version aside, which is not a property one
// sets). It returns the table as committed, or t when nothing was needed or
// the commit gave way to a writer (the next call tries again).
func (l *Lake) upgradeProps(ctx context.Context, name string, t *table.Table) *table.Table {
	want := iceberg.Properties{}
	for k, v := range tableProps {
		if k != "format-version" && t.Properties()[k] != v {
			want[k] = v
		}
	}
	if len(want) == 0 {
		return t
	}
	unlock := l.lock(name)
	defer unlock()
	tx := t.NewTransaction()
	if err := tx.SetProperties(want); err != nil {
		l.log.Warn("table properties not upgraded", "table", name, "err", err)
		return t
	}
	nt, err := tx.Commit(l.ioCtx(ctx))
	if err != nil {
		l.log.Info("table properties not upgraded yet (a writer committed first)", "table", name, "err", err)
		return t
	}
	l.log.Info("table properties upgraded", "table", name, "set", want)
	return nt
}

// Load returns the table's current metadata.
//
// With the local catalog, a table whose metadata directory has not changed
// since it was last loaded is not parsed again: every commit adds a
// metadata file there (and expiry removes some), so an unchanged directory
// means an unchanged current metadata file. Parsing was two thirds of an
// idle serve's CPU time — a busy raw table's metadata file reaches megabytes,
// and each commit was parsed again by the views, the catalogs, the
// reconcile and maintenance. A table is immutable once parsed, so the cached
// one is shared.
func (l *Lake) Load(ctx context.Context, name string) (*table.Table, error) {
	var mtime int64
	var hint string
	if l.cfg.Catalog == "local" {
		if id := Ident(name); len(id) == 2 {
			dir := filepath.Join(l.dir, id[0], id[1], "metadata")
			if fi, err := os.Stat(dir); err == nil {
				// The version hint too: a file system's time stamps are coarse
				// (a few ms), and every commit writes a new version number there.
				b, _ := os.ReadFile(filepath.Join(dir, "version-hint.text"))
				mtime, hint = fi.ModTime().UnixNano(), string(b)
				l.lmu.Lock()
				c, ok := l.loaded[name]
				l.lmu.Unlock()
				if ok && c.mtime == mtime && c.hint == hint {
					return c.t, nil
				}
			}
		}
	}
	t, err := l.load(ctx, name)
	if err == nil && mtime != 0 {
		// Keyed by the time read before loading: a commit in between makes the
		// next Load see a newer time and load again, never an older table.
		l.lmu.Lock()
		if l.loaded == nil {
			l.loaded = map[string]loadedTable{}
		}
		l.loaded[name] = loadedTable{mtime: mtime, hint: hint, t: t}
		l.lmu.Unlock()
	}
	return t, err
}

func (l *Lake) load(ctx context.Context, name string) (*table.Table, error) {
	t, err := l.cat.LoadTable(l.ioCtx(ctx), Ident(name))
	if errors.Is(err, catalog.ErrNoSuchTable) {
		return nil, fmt.Errorf("%w: %s", ErrNoTable, name)
	}
	if err != nil {
		return nil, fmt.Errorf("load table %s: %w", name, err)
	}
	return t, nil
}

// State is the stream position a table's current snapshot covers.
type State struct {
	// Cluster is the Kafka cluster id the offsets belong to.
	Cluster string
	// Offsets is topic → partition → next offset to read.
	Offsets map[string]map[int]int64
	// Cursors is source stream → highest position committed.
	Cursors map[string]int64
	// Tokens is source stream → the transport's resume token at that
	// position (only for transports that have one).
	Tokens map[string]string
	// Batch counts writer commits; it names data files deterministically.
	Batch int64
	// SnapshotID is the snapshot the state was read from (0: empty table).
	SnapshotID int64
}

// Clone deep-copies the state.
func (s State) Clone() State {
	c := State{Cluster: s.Cluster, Batch: s.Batch, SnapshotID: s.SnapshotID,
		Offsets: map[string]map[int]int64{}, Cursors: make(map[string]int64, len(s.Cursors)), Tokens: make(map[string]string, len(s.Tokens))}
	for t, ps := range s.Offsets {
		c.Offsets[t] = make(map[int]int64, len(ps))
		for p, o := range ps {
			c.Offsets[t][p] = o
		}
	}
	for k, v := range s.Cursors {
		c.Cursors[k] = v
	}
	for k, v := range s.Tokens {
		c.Tokens[k] = v
	}
	return c
}

// stateProps are the snapshot summary properties that carry s. Cursors and
// tokens larger than stateInlineMax go to a new state file beside t's
// metadata, written (and synced) before the commit that names it, so a
// snapshot never names a file that is not there.
func (l *Lake) stateProps(ctx context.Context, t *table.Table, s State) (iceberg.Properties, error) {
	offs := map[string]map[string]int64{}
	for t, ps := range s.Offsets {
		offs[t] = map[string]int64{}
		for p, o := range ps {
			offs[t][strconv.Itoa(p)] = o
		}
	}
	ob, err := json.Marshal(offs)
	if err != nil {
		return nil, err
	}
	cb, err := json.Marshal(s.Cursors)
	if err != nil {
		return nil, err
	}
	var tb []byte
	if len(s.Tokens) > 0 {
		if tb, err = json.Marshal(s.Tokens); err != nil {
			return nil, err
		}
	}
	props := iceberg.Properties{
		summaryCluster: s.Cluster,
		summaryOffsets: string(ob),
		summaryBatch:   strconv.FormatInt(s.Batch, 10),
	}
	if len(cb)+len(tb) > stateInlineMax {
		path, err := writeState(ctx, t, s)
		if err != nil {
			return nil, err
		}
		props[summaryStateFile] = path
		return props, nil
	}
	props[summaryCursors] = string(cb)
	if len(tb) > 0 {
		props[summaryTokens] = string(tb)
	}
	return props, nil
}

// stateKeys are the summary properties a State is carried in.
var stateKeys = []string{summaryCluster, summaryOffsets, summaryCursors, summaryBatch, summaryTokens, summaryStateFile}

// stateSummary is the State of t's current snapshot as summary properties,
// as they were committed (a state file is named again, not copied): a
// rewrite carries the position unchanged.
func stateSummary(t *table.Table) iceberg.Properties {
	if p, ok := positionProps(t); ok {
		return p
	}
	props := iceberg.Properties{}
	meta := t.Metadata()
	for s := meta.CurrentSnapshot(); s != nil; {
		if s.Summary != nil {
			if _, ok := s.Summary.Properties[summaryOffsets]; ok {
				for _, k := range stateKeys {
					if v, ok := s.Summary.Properties[k]; ok {
						props[k] = v
					}
				}
				return props
			}
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	return props
}

// StateOf reads the stream position stored in the table's current
// snapshot, walking back past snapshots that carry none (written by other
// engines).
func StateOf(t *table.Table) (State, error) {
	st := State{Offsets: map[string]map[int]int64{}, Cursors: map[string]int64{}, Tokens: map[string]string{}}
	meta := t.Metadata()
	snap := meta.CurrentSnapshot()
	if snap != nil {
		st.SnapshotID = snap.SnapshotID
	}
	if p, ok := positionProps(t); ok {
		var fsys icebergio.IO
		if p[summaryStateFile] != "" {
			var err error
			if fsys, err = t.FS(context.Background()); err != nil {
				return st, fmt.Errorf("snapshot %d: %w", st.SnapshotID, err)
			}
		}
		return parseState(fsys, st, p)
	}
	if snap == nil {
		return st, nil
	}
	for s := snap; s != nil; {
		if s.Summary != nil {
			if _, ok := s.Summary.Properties[summaryOffsets]; ok {
				var fsys icebergio.IO
				if s.Summary.Properties[summaryStateFile] != "" {
					var err error
					if fsys, err = t.FS(context.Background()); err != nil {
						return st, fmt.Errorf("snapshot %d: %w", st.SnapshotID, err)
					}
				}
				return parseState(fsys, st, s.Summary.Properties)
			}
		}
		if s.ParentSnapshotID == nil {
			break
		}
		s = meta.SnapshotByID(*s.ParentSnapshotID)
	}
	return st, nil
}

func parseState(fsys icebergio.IO, st State, p iceberg.Properties) (State, error) {
	st.Cluster = p[summaryCluster]
	var offs map[string]map[string]int64
	if err := json.Unmarshal([]byte(p[summaryOffsets]), &offs); err != nil {
		return st, fmt.Errorf("snapshot %d: bad %s: %w", st.SnapshotID, summaryOffsets, err)
	}
	for t, ps := range offs {
		st.Offsets[t] = map[int]int64{}
		for ps2, o := range ps {
			p, err := strconv.Atoi(ps2)
			if err != nil {
				return st, fmt.Errorf("snapshot %d: bad partition %q", st.SnapshotID, ps2)
			}
			st.Offsets[t][p] = o
		}
	}
	if f := p[summaryStateFile]; f != "" {
		sf, err := readState(fsys, f)
		if err != nil {
			return st, fmt.Errorf("snapshot %d: %w", st.SnapshotID, err)
		}
		for k, v := range sf.Cursors {
			st.Cursors[k] = v
		}
		for k, v := range sf.Tokens {
			st.Tokens[k] = v
		}
	}
	if c := p[summaryCursors]; c != "" {
		if err := json.Unmarshal([]byte(c), &st.Cursors); err != nil {
			return st, fmt.Errorf("snapshot %d: bad %s: %w", st.SnapshotID, summaryCursors, err)
		}
	}
	if tk := p[summaryTokens]; tk != "" {
		if err := json.Unmarshal([]byte(tk), &st.Tokens); err != nil {
			return st, fmt.Errorf("snapshot %d: bad %s: %w", st.SnapshotID, summaryTokens, err)
		}
	}
	st.Batch, _ = strconv.ParseInt(p[summaryBatch], 10, 64)
	return st, nil
}

// positionProps returns the state of a position-only commit that extends
// t's current snapshot, as summary properties.
func positionProps(t *table.Table) (iceberg.Properties, bool) {
	tp := t.Properties()
	at, ok := tp[positionSnapshot]
	if !ok {
		return nil, false
	}
	cur := int64(0)
	if s := t.CurrentSnapshot(); s != nil {
		cur = s.SnapshotID
	}
	if at != strconv.FormatInt(cur, 10) {
		return nil, false // a later snapshot carries its own state
	}
	props := iceberg.Properties{}
	for _, k := range stateKeys {
		if v, ok := tp[positionPrefix+k]; ok {
			props[k] = v
		}
	}
	return props, true
}

// CommitPosition records a new stream position without data: a batch that
// held only rejects and duplicates (a replay of rows already in, a broken
// feed). Iceberg has no snapshot without files, so the position goes into
// table properties naming the current snapshot; StateOf prefers them while
// that snapshot is current, and the next data commit carries the position
// in its own summary. Without it the position of such a batch was only
// carried by the next batch with data, so `status` showed a lag that never
// cleared and a restart read (and dead-lettered) those records again.
func (l *Lake) CommitPosition(ctx context.Context, name string, next State) error {
	unlock := l.lock(name)
	defer unlock()
	t, err := l.Load(ctx, name)
	if err != nil {
		return err
	}
	cur := int64(0)
	if s := t.CurrentSnapshot(); s != nil {
		cur = s.SnapshotID
	}
	if cur != next.SnapshotID {
		return fmt.Errorf("%w: %s moved from snapshot %d to %d", ErrConflict, name, next.SnapshotID, cur)
	}
	props, err := l.stateProps(ctx, t, next)
	if err != nil {
		return fmt.Errorf("commit position of %s: %w", name, err)
	}
	set := iceberg.Properties{positionSnapshot: strconv.FormatInt(cur, 10)}
	var drop []string
	for _, k := range stateKeys {
		if v, ok := props[k]; ok {
			set[positionPrefix+k] = v
		} else if _, had := t.Properties()[positionPrefix+k]; had {
			drop = append(drop, positionPrefix+k)
		}
	}
	tx := t.NewTransaction()
	if err := tx.AssertRefSnapshotID(table.MainBranch); err != nil {
		return fmt.Errorf("commit position of %s: %w", name, err)
	}
	if len(drop) > 0 {
		if err := tx.RemoveProperties(drop); err != nil {
			return fmt.Errorf("commit position of %s: %w", name, err)
		}
	}
	if err := tx.SetProperties(set); err != nil {
		return fmt.Errorf("commit position of %s: %w", name, err)
	}
	if _, err := tx.Commit(l.ioCtx(ctx)); err != nil {
		if errors.Is(err, table.ErrCommitFailed) || l.moved(ctx, name, cur) {
			return fmt.Errorf("%w: %s: %v", ErrConflict, name, err)
		}
		return fmt.Errorf("commit position of %s: %w", name, err)
	}
	return nil
}

// State loads the table and reads its State.
func (l *Lake) State(ctx context.Context, name string) (State, error) {
	t, err := l.Load(ctx, name)
	if err != nil {
		return State{}, err
	}
	return StateOf(t)
}

// Commit appends data files and the new stream position in one snapshot.
// It fails with ErrConflict if the table's current snapshot is no longer
// next.SnapshotID (another writer won); nothing is committed then.
func (l *Lake) Commit(ctx context.Context, name string, files []iceberg.DataFile, next State) (int64, error) {
	unlock := l.lock(name)
	defer unlock()
	t, err := l.Load(ctx, name)
	if err != nil {
		return 0, err
	}
	cur := int64(0)
	if s := t.CurrentSnapshot(); s != nil {
		cur = s.SnapshotID
	}
	if cur != next.SnapshotID {
		return 0, fmt.Errorf("%w: %s moved from snapshot %d to %d", ErrConflict, name, next.SnapshotID, cur)
	}
	if len(files) == 0 {
		// Iceberg has no snapshot without files; the position is carried by
		// the next commit that has data. Callers skip empty commits.
		return cur, nil
	}
	props, err := l.stateProps(ctx, t, next)
	if err != nil {
		return 0, fmt.Errorf("commit %s: %w", name, err)
	}
	tx := t.NewTransaction()
	if err := tx.AssertRefSnapshotID(table.MainBranch); err != nil {
		return 0, fmt.Errorf("commit %s: %w", name, err)
	}
	// No duplicate check (it read every manifest of the table at every
	// commit): the files were just written under new names, and a retry of
	// a commit that did land finds the table moved (ErrConflict above).
	if err := tx.AddDataFiles(ctx, files, props, table.WithoutDuplicateCheck()); err != nil {
		return 0, fmt.Errorf("commit %s: %w", name, err)
	}
	nt, err := tx.Commit(l.ioCtx(ctx))
	if err != nil {
		if errors.Is(err, table.ErrCommitFailed) || l.moved(ctx, name, cur) {
			return 0, fmt.Errorf("%w: %s: %v", ErrConflict, name, err)
		}
		return 0, fmt.Errorf("commit %s: %w", name, err)
	}
	return nt.CurrentSnapshot().SnapshotID, nil
}

// moved reports whether the table's current snapshot is no longer was:
// catalogs differ in how they report a lost compare-and-swap, so after a
// failed commit the table itself is asked.
func (l *Lake) moved(ctx context.Context, name string, was int64) bool {
	t, err := l.Load(ctx, name)
	if err != nil {
		return false
	}
	s := t.CurrentSnapshot()
	return s != nil && s.SnapshotID != was
}

// TableInfo summarises one table for `citybrain tables` and status pages.
type TableInfo struct {
	Name       string
	Snapshots  int
	SnapshotID int64
	Committed  time.Time
	Rows       int64
	Files      int64
	Bytes      int64
	State      State
	// Err is why the table could not be read (a damaged table: see
	// CheckTable); the other fields are then empty.
	Err string
}

// Info is one table's current snapshot's figures. Its State is shared with
// other callers: read it, do not modify it.
func (l *Lake) Info(ctx context.Context, name string) (TableInfo, error) {
	t, err := l.Load(ctx, name)
	if err != nil {
		return TableInfo{}, err
	}
	// A table is immutable at a metadata location: its figures are worked
	// out once (Snapshots() deep-copies every snapshot's summary, and the
	// SQL layer's reconcile asks for every table every 10 s).
	loc := t.MetadataLocation()
	l.lmu.Lock()
	c, ok := l.infos[name]
	l.lmu.Unlock()
	if ok && c.loc == loc {
		return c.info, nil
	}
	info, err := tableInfo(name, t)
	if err != nil {
		return TableInfo{}, err
	}
	l.lmu.Lock()
	if l.infos == nil {
		l.infos = map[string]cachedInfo{}
	}
	l.infos[name] = cachedInfo{loc: loc, info: info}
	l.lmu.Unlock()
	return info, nil
}

// cachedInfo is a table's TableInfo at one metadata location.
type cachedInfo struct {
	loc  string
	info TableInfo
}

func tableInfo(name string, t *table.Table) (TableInfo, error) {
	var err error
	info := TableInfo{Name: name, Snapshots: len(t.Metadata().Snapshots())}
	if s := t.CurrentSnapshot(); s != nil {
		info.SnapshotID = s.SnapshotID
		info.Committed = time.UnixMilli(s.TimestampMs)
		if s.Summary != nil {
			info.Rows, _ = strconv.ParseInt(s.Summary.Properties["total-records"], 10, 64)
			info.Files, _ = strconv.ParseInt(s.Summary.Properties["total-data-files"], 10, 64)
			info.Bytes, _ = strconv.ParseInt(s.Summary.Properties["total-files-size"], 10, 64)
		}
	}
	if info.State, err = StateOf(t); err != nil {
		return TableInfo{}, err
	}
	return info, nil
}

// Tables lists every table with its current snapshot's figures; a table
// that cannot be read is listed with Err.
func (l *Lake) Tables(ctx context.Context) ([]TableInfo, error) {
	nss, err := l.cat.ListNamespaces(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("list namespaces: %w", err)
	}
	var out []TableInfo
	for _, ns := range nss {
		for ident, err := range l.cat.ListTables(ctx, ns) {
			if err != nil {
				return nil, fmt.Errorf("list tables in %s: %w", strings.Join(ns, "."), err)
			}
			name := strings.Join(ident, ".")
			info, err := l.Info(ctx, name)
			if err != nil {
				// One damaged table does not hide the others.
				info = TableInfo{Name: name, Err: err.Error()}
			}
			out = append(out, info)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
