package dashboards

import (
	"errors"
	"time"
)

// Config is the dashboards section of citybrain.yaml.
type Config struct {
	// Enabled serves the dashboards at / of citybrain serve's HTTP address.
	Enabled bool `yaml:"enabled"`
	// DefaultDays is the time range pages open with (the last N days).
	DefaultDays int `yaml:"default_days"`
	// StatusMaxAge is how long the data-health figures (broker offsets,
	// dead letters) are reused before they are read again; lake queries are
	// cached until the next commit of a table they read.
	StatusMaxAge time.Duration `yaml:"status_max_age"`
}

// DefaultConfig: on, 30 days, health figures at most 5 s old.
func DefaultConfig() Config {
	return Config{Enabled: true, DefaultDays: 30, StatusMaxAge: 5 * time.Second}
}

// Validate checks the section.
func (c Config) Validate() error {
	if c.DefaultDays < 1 || c.DefaultDays > 3660 {
		return errors.New("dashboards.default_days must be between 1 and 3660")
	}
	if c.StatusMaxAge < 0 {
		return errors.New("dashboards.status_max_age must be ≥ 0")
	}
	return nil
}
