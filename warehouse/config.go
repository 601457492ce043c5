package warehouse

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is the lake's configuration (citybrain.yaml, key "warehouse").
type Config struct {
	// Catalog is local (Iceberg tables in a directory, no server), sql
	// (PostgreSQL or SQLite holding the catalog) or rest (Iceberg REST catalog).
	Catalog string `yaml:"catalog"`
	// Dir is the warehouse directory: table data and metadata for the local
	// and sql catalogs. Relative paths are below the data directory.
	Dir string `yaml:"dir"`
	// Location puts the tables on an S3-compatible object store instead of
	// Dir: s3://bucket/prefix (sql and rest catalogs only; see
	// docs/scale-out.md). Empty: the local directory Dir.
	Location string `yaml:"location"`
	// S3 configures the object store of an s3:// Location.
	S3 S3Config `yaml:"s3"`
	// SQL configures the sql catalog.
	SQL SQLConfig `yaml:"sql"`
	// REST configures the rest catalog.
	REST RESTConfig `yaml:"rest"`
	// Maintenance configures background compaction, snapshot expiry and orphan cleanup.
	Maintenance MaintenanceConfig `yaml:"maintenance"`
	// Query configures the DuckDB query engine.
	Query QueryConfig `yaml:"query"`
}

// SQLConfig is the SQL catalog's database.
type SQLConfig struct {
	// Driver is postgres or sqlite.
	Driver string `yaml:"driver"`
	// DSN is the database URL; the environment variable CITYBRAIN_CATALOG_DSN
	// overrides it so passwords stay out of the file.
	DSN string `yaml:"dsn"`
}

// RESTConfig is the REST catalog's endpoint.
type RESTConfig struct {
	// URI of the catalog, e.g. http://127.0.0.1:8181.
	URI string `yaml:"uri"`
	// Warehouse is the warehouse name or location passed to the catalog.
	Warehouse string `yaml:"warehouse"`
	// Credential is client_id:client_secret for OAuth2; the environment
	// variable CITYBRAIN_CATALOG_CREDENTIAL overrides it.
	Credential string `yaml:"credential"`
	// Token is a bearer token; CITYBRAIN_CATALOG_TOKEN overrides it.
	Token string `yaml:"token"`
}

// S3Config is the object store behind an s3:// warehouse location.
// Credentials come from the environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), never from this file.
type S3Config struct {
	// Endpoint of an S3-compatible server, e.g. http://10.0.0.5:8333
	// (empty: AWS). AWS_ENDPOINT_URL_S3 overrides it.
	Endpoint string `yaml:"endpoint"`
	// Region of the bucket (empty: AWS_REGION, else us-east-1).
	Region string `yaml:"region"`
	// PathStyle addresses the bucket in the path (SeaweedFS, MinIO, most
	// on-premises servers), not in the host name.
	PathStyle bool `yaml:"path_style"`
	// CacheDir holds local copies of data files for the query engine and
	// the writers' staging files (relative: below the data directory).
	CacheDir string `yaml:"cache_dir"`
	// CacheBytes bounds the copies not in use (the current snapshots'
	// files that the views read are kept whatever the bound).
	CacheBytes int64 `yaml:"cache_bytes"`
}

// Remote reports whether the tables are on an object store.
func (c Config) Remote() bool {
	return strings.HasPrefix(c.Location, "s3://") || strings.HasPrefix(c.Location, "s3a://")
}

// MaintenanceConfig says how the lake is kept tidy.
type MaintenanceConfig struct {
	// Interval between maintenance passes; 0 disables background maintenance.
	Interval time.Duration `yaml:"interval"`
	// CompactMinFiles is how many small files a partition must have before
	// they are rewritten as one.
	CompactMinFiles int `yaml:"compact_min_files"`
	// SmallFileBytes: files below this size are candidates for compaction.
	SmallFileBytes int64 `yaml:"small_file_bytes"`
	// TargetFileBytes bounds what compaction writes per file: a
	// partition's small files are merged into files of up to this many
	// bytes (of input), so every file it writes but a partition's last one
	// is above half of it. 0: twice SmallFileBytes.
	TargetFileBytes int64 `yaml:"target_file_bytes"`
	// ExpireOlderThan: snapshots older than this are expired (the newest
	// RetainLast are always kept). Time travel reaches back this far.
	ExpireOlderThan time.Duration `yaml:"expire_older_than"`
	// RetainLast snapshots are kept whatever their age.
	RetainLast int `yaml:"retain_last"`
	// MaxSnapshots caps the snapshots kept per table (0: no cap): beyond the
	// newest MaxSnapshots, snapshots older than minExpireAge are expired
	// whatever ExpireOlderThan says. A streaming table commits every few
	// seconds; without a cap a week of snapshots is ~100,000, every commit
	// rewrites them all into the metadata file, and compacted files stay on
	// disk for as long as an old snapshot names them.
	MaxSnapshots int `yaml:"max_snapshots"`
	// OrphanGrace: unreferenced files younger than this are left alone
	// (a writer may be about to commit them).
	OrphanGrace time.Duration `yaml:"orphan_grace"`
}

// QueryConfig configures DuckDB.
type QueryConfig struct {
	// MemoryLimit for DuckDB, e.g. "4GB": for the engine's instance and
	// again for its streaming one (Engine.Stream).
	MemoryLimit string `yaml:"memory_limit"`
	// Threads DuckDB may use; 0 means all cores.
	Threads int `yaml:"threads"`
}

// DefaultConfig is a local catalog in <data>/lake, maintained every two minutes.
func DefaultConfig() Config {
	return Config{
		Catalog: "local",
		Dir:     "lake",
		SQL:     SQLConfig{Driver: "postgres"},
		S3:      S3Config{CacheDir: "lake-cache", CacheBytes: 8 << 30},
		Maintenance: MaintenanceConfig{
			Interval:        2 * time.Minute,
			CompactMinFiles: 8,
			SmallFileBytes:  64 << 20,
			TargetFileBytes: 128 << 20,
			ExpireOlderThan: 7 * 24 * time.Hour,
			RetainLast:      20,
			MaxSnapshots:    200,
			OrphanGrace:     2 * time.Hour,
		},
		Query: QueryConfig{MemoryLimit: "4GB"},
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	switch c.Catalog {
	case "local":
	case "sql":
		if c.SQL.Driver != "postgres" && c.SQL.Driver != "sqlite" {
			errs = append(errs, fmt.Errorf("warehouse.sql.driver %q: want postgres or sqlite", c.SQL.Driver))
		}
	case "rest":
		if c.REST.URI == "" {
			errs = append(errs, errors.New("warehouse.rest.uri is required for the rest catalog"))
		}
	default:
		errs = append(errs, fmt.Errorf("warehouse.catalog %q: want local, sql or rest", c.Catalog))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("warehouse.dir is required"))
	}
	switch {
	case c.Location == "":
	case c.Remote():
		if c.Catalog == "local" {
			errs = append(errs, errors.New("warehouse.location s3://…: the local catalog cannot keep tables on an object store (an object store has no atomic rename for its metadata pointer); use catalog sql or rest / 对象存储需要 sql 或 rest 目录"))
		}
		if c.S3.CacheDir == "" || c.S3.CacheBytes < 1 {
			errs = append(errs, errors.New("warehouse.s3.cache_dir and a positive warehouse.s3.cache_bytes are required for an s3:// location"))
		}
	default:
		errs = append(errs, fmt.Errorf("warehouse.location %q: want s3://bucket/prefix, or empty for the local directory warehouse.dir", c.Location))
	}
	m := c.Maintenance
	if m.MaxSnapshots < 0 {
		errs = append(errs, errors.New("warehouse.maintenance.max_snapshots must not be negative (0: no cap)"))
	} else if m.MaxSnapshots > 0 && m.MaxSnapshots < m.RetainLast {
		errs = append(errs, fmt.Errorf("warehouse.maintenance.max_snapshots %d is below retain_last %d", m.MaxSnapshots, m.RetainLast))
	}
	if m.Interval < 0 || m.ExpireOlderThan < 0 || m.OrphanGrace < 0 {
		errs = append(errs, errors.New("warehouse.maintenance durations must not be negative"))
	}
	if m.SmallFileBytes < 1 {
		errs = append(errs, errors.New("warehouse.maintenance.small_file_bytes must be positive"))
	} else if m.TargetFileBytes != 0 && m.TargetFileBytes < 2*m.SmallFileBytes {
		errs = append(errs, fmt.Errorf("warehouse.maintenance.target_file_bytes %d is below twice small_file_bytes (%d): two small files must fit in one", m.TargetFileBytes, 2*m.SmallFileBytes))
	}
	if m.CompactMinFiles < 2 {
		errs = append(errs, errors.New("warehouse.maintenance.compact_min_files must be at least 2"))
	}
	if m.RetainLast < 1 {
		errs = append(errs, errors.New("warehouse.maintenance.retain_last must be at least 1"))
	}
	return errors.Join(errs...)
}
