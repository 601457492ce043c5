package models

import (
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// Config is the `models` section of citybrain.yaml.
type Config struct {
	// Enabled runs the models inside citybrain serve (at start, on a
	// schedule and after commits to their sources).
	Enabled bool `yaml:"enabled"`
	// Interval between scheduled runs; 0 runs only at start and on commits.
	Interval time.Duration `yaml:"interval"`
	// OnCommit runs the models when a source table they read is committed.
	OnCommit bool `yaml:"on_commit"`
	// Debounce waits this long after a source commit for more before running.
	Debounce time.Duration `yaml:"debounce"`
	// ProjectDir is a project directory on disk used instead of the
	// embedded one (analysts' changes); empty: the embedded project.
	ProjectDir string `yaml:"project_dir"`
	// VarsFiles are files of vars beside dbt_project.yml merged into the
	// project's vars (the versioned weights and thresholds).
	VarsFiles []string `yaml:"vars_files"`
	// Vars override single vars (e.g. lookback_days).
	Vars map[string]any `yaml:"vars"`
	// Test runs the data tests after each run in serve.
	Test bool `yaml:"test"`
	// Threads and MemoryLimit tune the runner's DuckDB.
	Threads     int    `yaml:"threads"`
	MemoryLimit string `yaml:"memory_limit"`
}

// DefaultConfig is on, hourly and after commits, with the embedded project
// and risk_config.v1.yaml.
func DefaultConfig() Config {
	return Config{
		Enabled:     true,
		Interval:    time.Hour,
		OnCommit:    true,
		Debounce:    3 * time.Minute,
		VarsFiles:   []string{"risk_config.v1.yaml"},
		Test:        true,
		MemoryLimit: "2GB",
	}
}

// Validate checks the section.
func (c Config) Validate() error {
	var errs []error
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("models.interval %v: must be ≥ 0 / 不能为负", c.Interval))
	}
	if c.Debounce < 0 {
		errs = append(errs, fmt.Errorf("models.debounce %v: must be ≥ 0 / 不能为负", c.Debounce))
	}
	if c.Threads < 0 {
		errs = append(errs, fmt.Errorf("models.threads %d: must be ≥ 0 / 不能为负", c.Threads))
	}
	return errors.Join(errs...)
}

// LoadProject loads the configured project: ProjectDir, or the embedded one.
func (c Config) LoadProject() (*Project, error) {
	var fsys fs.FS = Embedded()
	p, err := func() (*Project, error) {
		if c.ProjectDir != "" {
			return LoadDir(c.ProjectDir, c.VarsFiles...)
		}
		return Load(fsys, c.VarsFiles...)
	}()
	if err != nil {
		return nil, err
	}
	for k, v := range c.Vars {
		p.Vars[k] = v
	}
	return p, nil
}
