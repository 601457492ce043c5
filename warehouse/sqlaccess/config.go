package sqlaccess

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// Config is the sql_access section of citybrain.yaml.
type Config struct {
	// Enabled turns on the sandboxed SQL access (HTTP /api/sql and, when
	// PGWire.Listen is set, the PostgreSQL wire server) in citybrain serve.
	Enabled bool `yaml:"enabled"`
	// PGWire is the PostgreSQL wire-protocol listener.
	PGWire PGWireConfig `yaml:"pgwire"`
	// StatementTimeout bounds every analyst statement.
	StatementTimeout time.Duration `yaml:"statement_timeout"`
	// MemoryLimit caps each sandbox database (DuckDB memory_limit).
	MemoryLimit string `yaml:"memory_limit"`
	// Threads per sandbox database (0: DuckDB's default, the number of cores).
	Threads int `yaml:"threads"`
	// ConsoleRowCap is the most rows /api/sql returns as JSON (the web
	// console); CSV and Arrow stream every row.
	ConsoleRowCap int `yaml:"console_row_cap"`
	// Audit tunes the audit log (audit.queries).
	Audit AuditConfig `yaml:"audit"`
	// Reconcile is how often the views are compared with the lake's current
	// snapshots, to pick up commits nobody announced (citybrain ingest run
	// beside serve, maintenance's compactions). Announced commits are shown
	// at once.
	Reconcile time.Duration `yaml:"reconcile"`
	// Backstop ends what the statement timeout and memory limit cannot.
	Backstop BackstopConfig `yaml:"backstop"`
}

// BackstopConfig tunes the SQL backstop (backstop.go): a DuckDB call that
// runs Grace past its statement timeout, or grows serve's resident memory
// more than the running statements' memory limits and MemorySlack, is
// ended by restarting serve in place.
type BackstopConfig struct {
	// Enabled turns the backstop on (default true).
	Enabled bool `yaml:"enabled"`
	// Grace is how long past its timeout a DuckDB call may still run.
	Grace time.Duration `yaml:"grace"`
	// MemorySlack is the resident memory serve may gain beyond the running
	// statements' memory_limit each (other work: ingest, models, Go).
	MemorySlack string `yaml:"memory_slack"`
}

// PGWireConfig configures the PostgreSQL wire server.
type PGWireConfig struct {
	// Listen is host:port; empty disables the wire server.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are PEM files; both set enables TLS (sslmode=require).
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}

// AuditConfig tunes how audit entries reach the lake.
type AuditConfig struct {
	// FlushInterval is the longest an entry waits before it is committed.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// FlushRows commits as soon as this many entries are waiting.
	FlushRows int `yaml:"flush_rows"`
}

// DefaultConfig: on, wire server on 127.0.0.1:5433, 5 min statements,
// 2 GB per sandbox, 10,000 console rows, audit flushed every 10 s (a
// client polling every second otherwise made audit.queries the lake's
// busiest table: a commit, a view refresh and a compaction share per second).
func DefaultConfig() Config {
	return Config{
		Enabled:          true,
		PGWire:           PGWireConfig{Listen: "127.0.0.1:5433"},
		StatementTimeout: 5 * time.Minute,
		MemoryLimit:      "2GB",
		ConsoleRowCap:    10000,
		Audit:            AuditConfig{FlushInterval: 10 * time.Second, FlushRows: 1000},
		Reconcile:        10 * time.Second,
		Backstop:         BackstopConfig{Enabled: true, Grace: 30 * time.Second, MemorySlack: "2GB"},
	}
}

// Validate checks the section.
func (c Config) Validate() error {
	var errs []error
	if c.PGWire.Listen != "" {
		if _, _, err := net.SplitHostPort(c.PGWire.Listen); err != nil {
			errs = append(errs, fmt.Errorf("sql_access.pgwire.listen %q: want host:port", c.PGWire.Listen))
		}
	}
	if (c.PGWire.TLSCert == "") != (c.PGWire.TLSKey == "") {
		errs = append(errs, errors.New("sql_access.pgwire: set both tls_cert and tls_key, or neither"))
	}
	if c.StatementTimeout <= 0 {
		errs = append(errs, errors.New("sql_access.statement_timeout must be positive"))
	}
	if c.ConsoleRowCap <= 0 {
		errs = append(errs, errors.New("sql_access.console_row_cap must be positive"))
	}
	if c.Threads < 0 {
		errs = append(errs, errors.New("sql_access.threads must be ≥ 0"))
	}
	if c.Reconcile < 0 {
		errs = append(errs, errors.New("sql_access.reconcile must be ≥ 0 (0: 10s)"))
	}
	if c.Audit.FlushInterval <= 0 || c.Audit.FlushRows <= 0 {
		errs = append(errs, errors.New("sql_access.audit: flush_interval and flush_rows must be positive"))
	}
	if c.Backstop.Enabled {
		if c.Backstop.Grace <= 0 {
			errs = append(errs, errors.New("sql_access.backstop.grace must be positive"))
		}
		if _, err := ParseBytes(c.Backstop.MemorySlack); err != nil {
			errs = append(errs, fmt.Errorf("sql_access.backstop.memory_slack: %w", err))
		}
		if _, err := ParseBytes(c.MemoryLimit); err != nil {
			errs = append(errs, fmt.Errorf("sql_access.memory_limit: %w", err))
		}
	}
	return errors.Join(errs...)
}
