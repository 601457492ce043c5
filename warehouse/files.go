package warehouse

import (
	"context"
	"errors"
	"fmt"
	icebergutils "github.com/apache/iceberg-go/utils"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"

	"citybrain/warehouse/objstore"
)

// Where a table's files are. A local lake (warehouse.location empty) keeps
// every file under the warehouse directory and reads and writes them in
// place. A remote lake (warehouse.location s3://bucket/prefix) keeps them in
// an object store:
//
//   - a new data file is written to a local staging path, uploaded whole when
//     finished (publish) and only then named in a commit, so a snapshot never
//     names an object that is not there; the staged file becomes the cache's
//     copy (the writer's own file is not downloaded again);
//   - a reader (the query views, compaction, dedup) opens a data file through
//     the read-through cache (openFile), which fetches it once;
//   - maintenance deletes through the store and lists the bucket for orphans.
//
// Metadata files (and state files) go through iceberg-go's S3 file IO, with
// the same endpoint and credentials (catalogProps).

// Remote reports whether the lake's files are on an object store.
func (l *Lake) Remote() bool { return l.store != nil }

// Location is where the tables are: s3://bucket/prefix, or the warehouse
// directory as file:///….
func (l *Lake) Location() string {
	if l.store != nil {
		return l.store.URL()
	}
	return "file://" + l.dir
}

// CacheStats are the read-through cache's counts (zero for a local lake).
func (l *Lake) CacheStats() objstore.CacheStats {
	if l.cache == nil {
		return objstore.CacheStats{}
	}
	return l.cache.Stats()
}

// openStore opens the object store, its bucket and the cache of an s3://
// location.
func (l *Lake) openStore(ctx context.Context, dataDir string) error {
	s3cfg := l.cfg.S3
	if v := os.Getenv("AWS_ENDPOINT_URL_S3"); v != "" {
		s3cfg.Endpoint = v
	}
	l.cfg.S3 = s3cfg
	st, err := objstore.Open(strings.TrimSuffix(l.cfg.Location, "/"), objstore.Options{Endpoint: s3cfg.Endpoint, Region: s3cfg.Region, PathStyle: s3cfg.PathStyle})
	if err != nil {
		return err
	}
	if s3, ok := st.(*objstore.S3); ok {
		if err := s3.EnsureBucket(ctx); err != nil {
			return fmt.Errorf("对象存储桶不可用 bucket of %s: %w (check warehouse.s3.endpoint and the credentials)", l.cfg.Location, err)
		}
	}
	root := s3cfg.CacheDir
	if !filepath.IsAbs(root) {
		root = filepath.Join(dataDir, root)
	}
	// Each open lake (serve, and every CLI command beside it) has its own
	// directory under cache_dir: one process must never empty or stage into
	// another's. Directories of processes that are gone (a kill -9) are
	// removed here.
	if err := os.MkdirAll(root, 0o755); err != nil {
		return fmt.Errorf("lake cache: %w", err)
	}
	removeDeadCacheDirs(root)
	dir, err := os.MkdirTemp(root, fmt.Sprintf("p%d-", os.Getpid()))
	if err != nil {
		return fmt.Errorf("lake cache: %w", err)
	}
	cache, err := objstore.NewCache(st, filepath.Join(dir, "files"), s3cfg.CacheBytes)
	if err != nil {
		return fmt.Errorf("lake cache: %w", err)
	}
	l.stage = filepath.Join(dir, "staging")
	if err := os.MkdirAll(l.stage, 0o755); err != nil {
		return fmt.Errorf("lake staging: %w", err)
	}
	l.cacheDir = dir
	l.store, l.cache = st, cache
	// One AWS configuration and HTTP client for iceberg-go's S3 IO (see
	// ioCtx); without it iceberg-go loads the SDK's configuration and opens
	// a new connection at every metadata load and manifest read.
	awscfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(firstNonEmpty(s3cfg.Region, os.Getenv("AWS_REGION"), "us-east-1")))
	if err != nil {
		return fmt.Errorf("aws configuration: %w", err)
	}
	awscfg.HTTPClient = awshttp.NewBuildableClient()
	l.awsCfg = &awscfg
	return nil
}

// ioCtx carries the lake's AWS configuration to iceberg-go's S3 IO, which
// builds its client from it (with the lake's endpoint, region and keys
// from catalogProps on top) instead of loading the SDK's configuration and
// opening a new connection for every metadata file and manifest it reads
// (~2.5 ms each in the lake-s3 bench).
func (l *Lake) ioCtx(ctx context.Context) context.Context { return l.IOContext(ctx) }

// IOContext is ctx carrying the lake's shared AWS configuration for
// iceberg-go calls made outside the lake (Table.FS, Scan.PlanFiles): see
// ioCtx. On a local lake it is ctx.
func (l *Lake) IOContext(ctx context.Context) context.Context {
	if l.awsCfg == nil {
		return ctx
	}
	return icebergutils.WithAwsConfig(ctx, l.awsCfg)
}

// removeDeadCacheDirs removes the per-process directories under root whose
// process no longer runs.
func removeDeadCacheDirs(root string) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range ents {
		var pid int
		if !e.IsDir() {
			continue
		}
		if _, err := fmt.Sscanf(e.Name(), "p%d-", &pid); err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

// closeStore removes the lake's own cache directory.
func (l *Lake) closeStore() {
	if l.cacheDir != "" {
		os.RemoveAll(l.cacheDir)
	}
}

// catalogProps are the file IO properties of an s3:// location, for
// iceberg-go's S3 IO (metadata, manifests, state files).
func (l *Lake) catalogProps() iceberg.Properties {
	p := iceberg.Properties{}
	if l.store == nil {
		return p
	}
	c := l.cfg.S3
	if c.Endpoint != "" {
		p["s3.endpoint"] = c.Endpoint
	}
	region := firstNonEmpty(c.Region, os.Getenv("AWS_REGION"), "us-east-1")
	p["s3.region"] = region
	p["client.region"] = region
	p["s3.force-virtual-addressing"] = fmt.Sprint(!c.PathStyle)
	p["s3.path-style-access"] = fmt.Sprint(c.PathStyle)
	if ak, sk := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"); ak != "" && sk != "" {
		p["s3.access-key-id"] = ak
		p["s3.secret-access-key"] = sk
		if tok := os.Getenv("AWS_SESSION_TOKEN"); tok != "" {
			p["s3.session-token"] = tok
		}
	}
	return p
}

// tableLocation is where a new table of the sql catalog (and of a remote
// rest catalog) lives.
func (l *Lake) tableLocation(ident table.Identifier) string {
	return strings.TrimSuffix(l.Location(), "/") + "/" + ident[0] + "/" + ident[1]
}

// key is the object key of a file URI of a remote lake.
func (l *Lake) key(uri string) (string, error) {
	base := strings.TrimSuffix(l.store.URL(), "/") + "/"
	u := uri
	if strings.HasPrefix(u, "s3a://") {
		u = "s3://" + strings.TrimPrefix(u, "s3a://")
	}
	if !strings.HasPrefix(u, base) {
		return "", fmt.Errorf("文件不在数据湖位置下 %s is not under the lake's location %s", uri, base)
	}
	return strings.TrimPrefix(u, base), nil
}

// stagePath is the local path a new file of uri is written to: the file
// itself on a local lake, a staging file on a remote one.
func (l *Lake) stagePath(uri string) string {
	if l.store == nil {
		return filepath.FromSlash(LocalPath(uri))
	}
	k, err := l.key(uri)
	if err != nil {
		// Not under the location (a table created elsewhere): staged by
		// its full path, published to where it names.
		k = strings.NewReplacer("://", "/", ":", "_").Replace(uri)
	}
	return filepath.Join(l.stage, filepath.FromSlash(k))
}

// publishTimeout bounds one upload, retries included.
const publishTimeout = 10 * time.Minute

// publish makes the finished file staged for uri durable where readers find
// it: a no-op on a local lake (the file is in place); an upload on a remote
// one, after which the staged file becomes the cache's copy.
func (l *Lake) publish(ctx context.Context, uri string) error {
	if l.store == nil {
		return nil
	}
	local := l.stagePath(uri)
	k, err := l.key(uri)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if err := l.store.PutFile(ctx, k, local); err != nil {
		return err
	}
	l.cache.Adopt(k, local)
	return nil
}

// openFile returns a local path holding the data file uri, and the function
// that releases it.
func (l *Lake) openFile(ctx context.Context, uri string) (string, func(), error) {
	if l.store == nil {
		return filepath.FromSlash(LocalPath(uri)), func() {}, nil
	}
	k, err := l.key(uri)
	if err != nil {
		return "", nil, err
	}
	return l.cache.Open(ctx, k)
}

// openFiles opens every file (see openFile), fetchConcurrency at a time;
// release releases them all.
func (l *Lake) openFiles(ctx context.Context, uris []string) (paths []string, release func(), err error) {
	paths = make([]string, len(uris))
	rels := make([]func(), len(uris))
	release = func() {
		for _, r := range rels {
			if r != nil {
				r()
			}
		}
	}
	errs := make([]error, len(uris))
	sem := make(chan struct{}, fetchConcurrency)
	var wg sync.WaitGroup
	for i, u := range uris {
		if l.store == nil {
			paths[i], rels[i], errs[i] = l.openFile(ctx, u)
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			paths[i], rels[i], errs[i] = l.openFile(ctx, u)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		release()
		return nil, nil, err
	}
	return paths, release, nil
}

// fetchConcurrency is how many files a cold view fetches at once (one
// stream reached ~50 MB/s from SeaweedFS on loopback in the lake-s3 bench).
const fetchConcurrency = 4

// removeFile deletes a data file (and its staged file and cached copy).
func (l *Lake) removeFile(ctx context.Context, uri string) error {
	if l.store == nil {
		if err := os.Remove(filepath.FromSlash(LocalPath(uri))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	os.Remove(l.stagePath(uri))
	k, err := l.key(uri)
	if err != nil {
		return err
	}
	l.cache.Drop(k)
	return l.store.Delete(ctx, k)
}

// RemoveFile deletes a data file a writer made but did not commit.
func (l *Lake) RemoveFile(ctx context.Context, uri string) error { return l.removeFile(ctx, uri) }

// dataObject is a file found under a table's data directory.
type dataObject struct {
	uri     string
	modTime time.Time
}

// listData lists the files under the table's data directory (the local
// directory, or the bucket under the table's prefix).
func (l *Lake) listData(ctx context.Context, t *table.Table) ([]dataObject, error) {
	if l.store == nil {
		root := DataPath(t)
		var out []dataObject
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			fi, err := d.Info()
			if err != nil {
				return nil // removed meanwhile
			}
			out = append(out, dataObject{uri: "file://" + filepath.ToSlash(p), modTime: fi.ModTime()})
			return nil
		})
		return out, err
	}
	prefix, err := l.key(strings.TrimSuffix(t.Location(), "/") + "/data/")
	if err != nil {
		return nil, err
	}
	objs, err := l.store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(l.store.URL(), "/") + "/"
	out := make([]dataObject, len(objs))
	for i, o := range objs {
		out[i] = dataObject{uri: base + o.Key, modTime: o.ModTime}
	}
	return out, nil
}

// fileKey is how a data file's URI is compared with listed files: its local
// path on a local lake, its URI (s3a:// as s3://) on a remote one.
func (l *Lake) fileKey(uri string) string {
	if l.store == nil {
		return filepath.Clean(filepath.FromSlash(LocalPath(uri)))
	}
	if strings.HasPrefix(uri, "s3a://") {
		return "s3://" + strings.TrimPrefix(uri, "s3a://")
	}
	return uri
}

// dataURI is the URI of a new data file rel (relative to the table's data
// directory).
func dataURI(t *table.Table, rel string) string {
	loc := t.Location()
	if !strings.Contains(loc, "://") {
		loc = "file://" + loc
	}
	return strings.TrimSuffix(loc, "/") + "/data/" + strings.TrimPrefix(filepath.ToSlash(filepath.Clean(rel)), "/")
}

// LocalRoot is the local directory under which the query engine reads the
// lake's data files: the warehouse directory, or the cache's copies of a
// lake on an object store (laid out by key, so a table's copies are under
// LocalDir of its location).
func (l *Lake) LocalRoot() string {
	if l.cache == nil {
		return l.dir
	}
	return l.cache.Dir("")
}

// LocalDir is the local directory holding the files the engine reads of
// the table at location loc.
func (l *Lake) LocalDir(loc string) string {
	if l.cache == nil {
		return LocalPath(loc)
	}
	k, err := l.key(strings.TrimSuffix(loc, "/") + "/")
	if err != nil {
		return filepath.Join(l.cache.Dir(""), ".not-in-lake") // nothing to read
	}
	return l.cache.Dir(k)
}

// CacheSize is the bytes of the local copies held now (0 for a local lake).
func (l *Lake) CacheSize() int64 {
	if l.cache == nil {
		return 0
	}
	return l.cache.Size()
}

// SideStore is where services keep their own files beside the tables (the
// partitioned warning engine's checkpoints, under keys of their own): the
// lake's object store, or the warehouse directory of a local lake.
func (l *Lake) SideStore() (objstore.Store, error) {
	if l.store != nil {
		return l.store, nil
	}
	return objstore.NewLocal(l.dir)
}
