package warehouse

import (
	"errors"
	"fmt"
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
