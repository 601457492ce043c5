package warehouse

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"citybrain/internal/testenv"
	"citybrain/schemas"
	"citybrain/warehouse/objstore"
)

// s3Services are the servers a lake on an object store needs: SeaweedFS
// (S3) and PostgreSQL (the SQL catalog), started once for the package's
// tests that use them.
var s3Services struct {
	once sync.Once
	err  error
	sw   *testenv.SeaweedFS
	pg   *testenv.Postgres
	dir  string
}

func TestMain(m *testing.M) {
	code := m.Run()
	s := &s3Services
	if s.sw != nil {
		s.sw.Stop()
	}
	if s.pg != nil {
		s.pg.Stop()
	}
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
	os.Exit(code)
}

func startS3Services(t *testing.T) (*testenv.SeaweedFS, *testenv.Postgres) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts SeaweedFS and PostgreSQL")
	}
	s := &s3Services
	s.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		if s.dir, s.err = os.MkdirTemp("", "citybrain-s3lake-"); s.err != nil {
			return
		}
		if s.sw, s.err = testenv.StartSeaweedFS(ctx, filepath.Join(s.dir, "weed")); s.err != nil {
			return
		}
		s.pg, s.err = testenv.StartPostgres(ctx, filepath.Join(s.dir, "pg"))
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	t.Setenv("AWS_ACCESS_KEY_ID", testenv.SeaweedAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.SeaweedSecretKey)
	return s.sw, s.pg
}

// s3Config is a lake on SeaweedFS under s3://bucket/prefix with the SQL
// catalog in schema-less PostgreSQL (each test its own prefix and catalog
// name space via the prefix), its cache in a temporary directory.
func s3Config(t *testing.T, sw *testenv.SeaweedFS, pg *testenv.Postgres, location string) Config {
	cfg := DefaultConfig()
	cfg.Catalog = "sql"
	cfg.SQL.DSN = pg.DSN()
	cfg.Dir = t.TempDir()
	cfg.Location = location
	cfg.S3.Endpoint = sw.Endpoint()
	cfg.S3.PathStyle = true
	cfg.S3.CacheDir = t.TempDir()
	cfg.S3.CacheBytes = 64 << 20
	cfg.Query.MemoryLimit = "512MB"
	cfg.Query.Threads = 2
	cfg.Maintenance = smallMaintenance()
	return cfg
}

func listKeys(t *testing.T, st objstore.Store, prefix, suffix string) []string {
	t.Helper()
	objs, err := st.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		if strings.HasSuffix(o.Key, suffix) {
			out = append(out, o.Key)
		}
	}
	return out
}

// TestLakeOnObjectStore: the lake on a real S3 server (SeaweedFS) behind the
// SQL catalog on PostgreSQL. Writers' files land in the bucket, not on the
// local disk; the query engine reads them through the read-through cache
// (time travel included); maintenance compacts, expires (deleting from the
// bucket) and removes an orphan it finds by listing the bucket; lake check
// reads the files back; a model materialises; a second process with a cold
// cache sees the same table; and the server restarted in the middle of
// commits loses and duplicates nothing.
func TestLakeOnObjectStore(t *testing.T) {
	sw, pg := startS3Services(t)
	ctx := context.Background()
	cfg := s3Config(t, sw, pg, "s3://citybrain-lake/objstore-test")
	lake, err := Open(ctx, cfg, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	if !lake.Remote() || lake.Location() != "s3://citybrain-lake/objstore-test" {
		t.Fatalf("lake at %s (remote %v)", lake.Location(), lake.Remote())
	}
	reg, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	s, err := reg.Get("weather")
	if err != nil {
		t.Fatal(err)
	}
	tbl, err := lake.EnsureTable(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if want := "s3://citybrain-lake/objstore-test/raw/weather"; tbl.Location() != want {
		t.Errorf("table location %s, want %s", tbl.Location(), want)
	}
	first := writeBatch(t, lake, s, State{Offsets: map[string]map[int]int64{}, Cursors: map[string]int64{}, Tokens: map[string]string{}}, []int{0, 1}, 3)
	fill(t, lake, s, 5, []int{0, 1}, 3)

	store := lake.store
	if got := listKeys(t, store, "raw/weather/data/", ".parquet"); len(got) != 12 {
		t.Errorf("data objects in the bucket: %d, want 12: %v", len(got), got)
	}
	if got := listKeys(t, store, "raw/weather/metadata/", ".metadata.json"); len(got) == 0 {
		t.Error("no metadata files in the bucket")
	}
	// Nothing of the table on the local disk but the cache's copies.
	filepath.WalkDir(cfg.Dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("local file in the warehouse dir of a remote lake: %s", p)
		}
		return nil
	})

	e, err := NewEngine(ctx, lake)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	all := queryTotals(t, e, "raw.weather")
	if all.rows != 36 {
		t.Fatalf("rows = %d, want 36", all.rows)
	}
	if got := queryString(t, e, "SELECT count(*) FROM raw.weather AT (VERSION => "+strconv.FormatInt(first.SnapshotID, 10)+")"); got != "6" {
		t.Errorf("time travel to the first snapshot: %s rows, want 6", got)
	}

	// An orphan (a writer that crashed after its upload) and maintenance
	// two hours on: 12 small files compacted into 2, old snapshots expired
	// (their files deleted from the bucket), the orphan found by listing.
	orphan := "raw/weather/data/observed_at_day=2013-03-02/leftover.parquet"
	if err := store.Put(ctx, orphan, []byte("PAR1")); err != nil {
		t.Fatal(err)
	}
	rep, err := lake.Maintain(ctx, time.Now().Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tables) != 1 || rep.Tables[0].Compact.FilesRemoved != 12 || rep.Tables[0].Orphans != 1 || rep.Tables[0].Err != nil {
		t.Fatalf("maintenance: %+v", rep.Tables)
	}
	// The small files stay while a retained snapshot (the last write's)
	// names them; the orphan is gone.
	if got := listKeys(t, store, "raw/weather/data/", ".parquet"); len(got) != 14 || strings.Contains(strings.Join(got, " "), "leftover") {
		t.Errorf("data objects after maintenance: %v, want the 12 small files and 2 compacted ones", got)
	}
	if got := queryTotals(t, e, "raw.weather"); got != all {
		t.Errorf("after maintenance %+v, before %+v", got, all)
	}
	if c := lake.CheckTable(ctx, "raw.weather"); len(c.Problems) > 0 || c.Files != 2 {
		t.Errorf("lake check: %+v", c)
	}

	// A model's table is written to the bucket too.
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := lake.Materialize(ctx, db, MaterializeSpec{Table: "marts.s3_model", Mode: MaterializeReplace,
		Query: "SELECT i AS id, i * 2 AS twice FROM range(100) t(i)"}); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, e, "SELECT sum(twice)::VARCHAR FROM marts.s3_model"); got != "9900" {
		t.Errorf("model sum = %s, want 9900", got)
	}
	if got := listKeys(t, store, "marts/s3_model/data/", ".parquet"); len(got) != 1 {
		t.Errorf("model data objects: %v", got)
	}

	// A second process (its own, cold cache) sees the same tables.
	cfg2 := cfg
	cfg2.S3.CacheDir = t.TempDir()
	lake2, err := Open(ctx, cfg2, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer lake2.Close()
	e2, err := NewEngine(ctx, lake2)
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close()
	if got := queryTotals(t, e2, "raw.weather"); got != all {
		t.Errorf("second process %+v, first %+v", got, all)
	}
	if st := lake2.CacheStats(); st.Misses < 2 || st.FetchedBytes == 0 {
		t.Errorf("second process fetched nothing: %+v", st)
	}

	// A command beside it (an OnDemand engine, its own cold cache) fetches
	// only what its statements read: a filter on one day, that day's file;
	// then the whole table, the other; never the model's table.
	cfg3 := cfg
	cfg3.S3.CacheDir = t.TempDir()
	lake3, err := Open(ctx, cfg3, "", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer lake3.Close()
	e3, err := NewEngine(ctx, lake3, OnDemand())
	if err != nil {
		t.Fatal(err)
	}
	defer e3.Close()
	if st := lake3.CacheStats(); st.Misses != 0 {
		t.Errorf("an OnDemand engine fetched %d files at open", st.Misses)
	}
	day1 := queryString(t, e3, "SELECT count(*) FROM raw.weather WHERE observed_at >= '2013-03-02 08:00:00'") // 00:00 UTC
	if want := queryString(t, e, "SELECT count(*) FROM raw.weather WHERE observed_at >= '2013-03-02 08:00:00'"); day1 != want || day1 == "0" {
		t.Errorf("filtered count %s, the first process %s", day1, want)
	}
	if st := lake3.CacheStats(); st.Misses != 1 {
		t.Errorf("a statement filtered to one day fetched %d files, want that day's 1", st.Misses)
	}
	if got := queryTotals(t, e3, "raw.weather"); got != all {
		t.Errorf("on demand %+v, first %+v", got, all)
	}
	if st := lake3.CacheStats(); st.Misses != 2 {
		t.Errorf("the whole table fetched %d files in all, want 2", st.Misses)
	}

	// The server restarted while batches commit: every commit either
	// lands whole or fails and is written again (as the lake writer
	// replays from Kafka), and nothing is lost or doubled.
	restarted := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		restarted <- sw.Restart(ctx)
	}()
	st, err := lake.State(ctx, s.Table)
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for done := false; !done; {
		next, files, err := batchFilesErr(lake, s, st, []int{2}, 4)
		var id int64
		if err == nil {
			id, err = lake.Commit(ctx, s.Table, files, next)
		}
		if err != nil {
			failed++
			t.Logf("attempt failed (written again): %v", err)
			if cur, lerr := lake.State(ctx, s.Table); lerr == nil {
				st = cur // a commit that landed although its answer was lost
			}
		} else {
			next.SnapshotID = id
			st = next
		}
		select {
		case err := <-restarted:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		default:
		}
	}
	for range 2 {
		st = writeBatch(t, lake, s, st, []int{2}, 4)
	}
	committed := st.Batch - first.Batch - 5
	if err := e.Refresh(ctx, "raw.weather"); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, e, "SELECT count(*) FROM raw.weather WHERE observed_at >= TIMESTAMPTZ '2013-03-03 00:00:00+00'"); got != strconv.FormatInt(committed*4, 10) {
		t.Errorf("rows of day 2: %s, want %d (%d batches committed, %d attempts failed)", got, committed*4, committed, failed)
	}
	t.Logf("around the restart: %d batches committed, %d attempts failed and were written again", committed, failed)
}
