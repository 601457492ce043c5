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
	// dead letters) are reused before they are read again (lake answers are
	// recomputed on each commit of a table they read: cache.go).
	StatusMaxAge time.Duration `yaml:"status_max_age"`
	// StaleAfter is how far the warnings path may lag (wall time behind its
	// input, or data time behind the newest event) before the cockpit says
	// so in a red banner; a warning whose event time is this much older than
	// the data's newest event time is not shown as live (实时).
	StaleAfter time.Duration `yaml:"stale_after"`
	// StaleWait is how long a request waits for an answer a commit made
	// stale to be recomputed before it is served the previous answer
	// (answers are recomputed in the background on every commit).
	StaleWait time.Duration `yaml:"stale_wait"`
}

// DefaultConfig: on, 30 days, health figures at most 5 s old, warnings
// stale after a minute (the warning path's goal is 10 s), a request waits
// up to 100 ms for an answer being recomputed.
func DefaultConfig() Config {
	return Config{Enabled: true, DefaultDays: 30, StatusMaxAge: 5 * time.Second, StaleAfter: time.Minute, StaleWait: 100 * time.Millisecond}
}

// Validate checks the section.
func (c Config) Validate() error {
	if c.DefaultDays < 1 || c.DefaultDays > 3660 {
		return errors.New("dashboards.default_days must be between 1 and 3660")
	}
	if c.StatusMaxAge < 0 {
		return errors.New("dashboards.status_max_age must be ≥ 0")
	}
	if c.StaleWait < 0 {
		return errors.New("dashboards.stale_wait must be ≥ 0 (0: never wait)")
	}
	if c.StaleAfter <= 0 {
		return errors.New("dashboards.stale_after must be > 0 (e.g. 60s)")
	}
	return nil
}
