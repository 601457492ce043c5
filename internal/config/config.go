// Package config is citybrain.yaml: one file for the whole system, each
// component's section decoded into that component's own Config (with its
// defaults and Validate). Secrets come from environment variables, never
// from the file; docs/config.md documents every key.
package config

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"citybrain/connectors/sources"
	"citybrain/dashboards"
	"citybrain/internal/auth"
	"citybrain/internal/broker"
	"citybrain/internal/sim"
	"citybrain/models"
	"citybrain/pipelines/extracts"
	"citybrain/pipelines/inspection"
	"citybrain/pipelines/lakewriter"
	"citybrain/pipelines/response"
	"citybrain/pipelines/warnings"
	"citybrain/schemas"
	"citybrain/warehouse"
	"citybrain/warehouse/sqlaccess"
)

// Config is the whole system's configuration.
type Config struct {
	// DataDir holds the embedded broker's log, connector checkpoints and
	// (by default) the lake. CITYBRAIN_DATA_DIR overrides it.
	DataDir string `yaml:"data_dir"`
	// Log configures logging.
	Log LogConfig `yaml:"log"`
	// HTTP configures the query layer's HTTP endpoint of citybrain serve.
	HTTP HTTPConfig `yaml:"http"`
	// Broker is the Kafka cluster, or the embedded broker when empty.
	Broker broker.Config `yaml:"broker"`
	// Warehouse is the lake: catalog, storage, maintenance, query engine.
	Warehouse warehouse.Config `yaml:"warehouse"`
	// LakeWriter tunes the topic → table pipelines.
	LakeWriter lakewriter.Config `yaml:"lake_writer"`
	// Auth is users, roles, departments and their scopes, sessions.
	Auth auth.Config `yaml:"auth"`
	// Extracts are the departments' scheduled data extracts and their scheduler.
	Extracts extracts.Config `yaml:"extracts"`
	// Warnings is the warning engine (crowd, rainstorm, waterlogging, lifelines, traffic).
	Warnings warnings.Config `yaml:"warnings"`
	// Response is the emergency response service: plans activated by
	// warnings, tasks to the responsible people, escalation (docs/response.md).
	Response response.Config `yaml:"response"`
	// Inspection is the inspectors' phone app and its result spool
	// (docs/inspection.md).
	Inspection inspection.AppConfig `yaml:"inspection"`
	// Dashboards is the leaders' web app served by citybrain serve.
	Dashboards dashboards.Config `yaml:"dashboards"`
	// Sim is the simulator of Xicheng that feeds the connectors in the
	// embedded demo (disabled by default).
	Sim sim.Config `yaml:"sim"`
	// SQLAccess is the analysts' SQL: the PostgreSQL wire server, /api/sql,
	// the sandbox, the catalog and the audit log.
	SQLAccess sqlaccess.Config `yaml:"sql_access"`
	// Models is the model runner (marts.*: risk portraits, plan KPIs).
	Models models.Config `yaml:"models"`
	// Sources lists the feeds; an entry named like a built-in source
	// overrides only the keys it sets.
	Sources []yaml.Node `yaml:"sources"`

	// Resolved source definitions (from Sources).
	Defs []sources.Definition `yaml:"-"`
}

// LogConfig configures slog.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// HTTPConfig configures citybrain serve's HTTP listener.
type HTTPConfig struct {
	// Addr is host:port; default 127.0.0.1:8080.
	Addr string `yaml:"addr"`
}

// Default is the embedded configuration `make run` uses.
func Default() Config {
	return Config{
		DataDir:    "data",
		Log:        LogConfig{Level: "info", Format: "text"},
		HTTP:       HTTPConfig{Addr: "127.0.0.1:8080"},
		Broker:     broker.DefaultConfig(),
		Warehouse:  warehouse.DefaultConfig(),
		LakeWriter: lakewriter.DefaultConfig(),
		Auth:       auth.DefaultConfig(),
		Models:     models.DefaultConfig(),
		Sim:        sim.DefaultConfig(),
		SQLAccess:  sqlaccess.DefaultConfig(),
		Extracts:   extracts.DefaultConfig(),
		Warnings:   warnings.DefaultConfig(),
		Response:   response.DefaultConfig(),
		Inspection: inspection.DefaultAppConfig(),
		Dashboards: dashboards.DefaultConfig(),
	}
}

// Load reads path over the defaults. A missing file is an error unless
// optional is true (the default path may be absent).
func Load(path string, optional bool) (Config, error) {
	c := Default()
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist) && optional:
	case err != nil:
		return c, fmt.Errorf("read config: %w", err)
	default:
		dec := yaml.NewDecoder(strings.NewReader(string(b)))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, errEOF) && err.Error() != "EOF" {
			return c, fmt.Errorf("config %s: %w (see docs/config.md for every key)", path, err)
		}
	}
	if v := os.Getenv("CITYBRAIN_DATA_DIR"); v != "" {
		c.DataDir = v
	}
	if v := os.Getenv("CITYBRAIN_KAFKA_BOOTSTRAP"); v != "" {
		c.Broker.Bootstrap = strings.Split(v, ",")
	}
	if err := c.resolve(); err != nil {
		return c, err
	}
	return c, c.Validate()
}

var errEOF = errors.New("EOF")

func (c *Config) resolve() error {
	builtin, err := sources.Builtin()
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for i := range c.Sources {
		d, err := sources.Override(&c.Sources[i])
		if err != nil {
			return err
		}
		seen[d.Name] = true
		c.Defs = append(c.Defs, d)
	}
	for _, name := range sources.Names() {
		if !seen[name] {
			c.Defs = append(c.Defs, builtin[name])
		}
	}
	return nil
}

// Validate checks every section.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data_dir is required"))
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level %q: want debug, info, warn or error", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format %q: want text or json", c.Log.Format))
	}
	errs = append(errs, c.Broker.Validate(), c.Warehouse.Validate(), c.LakeWriter.Validate(), c.Auth.Validate(), c.Sim.Validate())
	errs = append(errs, c.Warnings.Validate())
	errs = append(errs, c.Response.Validate())
	errs = append(errs, c.Models.Validate())
	errs = append(errs, c.Extracts.Validate())
	errs = append(errs, c.SQLAccess.Validate())
	errs = append(errs, c.Dashboards.Validate())
	reg, err := schemas.Builtin()
	if err != nil {
		errs = append(errs, err)
	} else {
		for _, d := range c.Defs {
			errs = append(errs, d.Validate(reg))
		}
	}
	return errors.Join(errs...)
}

// Source returns the resolved definition of a source.
func (c Config) Source(name string) (sources.Definition, error) {
	var names []string
	for _, d := range c.Defs {
		if d.Name == name {
			return d, nil
		}
		names = append(names, d.Name)
	}
	return sources.Definition{}, fmt.Errorf("no source %q (configured: %s)", name, strings.Join(names, ", "))
}
