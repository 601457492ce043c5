package testenv

import (
	"os"
	"path/filepath"
)

// CacheDir returns the directory in which testenv keeps everything it fetches
// from package registries (jars, packages, virtualenvs), shared by all test
// binaries and by the Makefile's dependency step.
//
// It is $CITYBRAIN_CACHE if that is set and non-empty, otherwise
// $HOME/.cache/citybrain (falling back to os.TempDir()/citybrain-cache when no
// home directory is known). The directory is created (mode 0755) if missing;
// CacheDir panics if it cannot be created, since no service can be started
// without it.
func CacheDir() string {
	dir := os.Getenv("CITYBRAIN_CACHE")
	if dir == "" {
		if home, err := os.UserHomeDir(); err == nil && home != "" {
			dir = filepath.Join(home, ".cache", "citybrain")
		} else {
			dir = filepath.Join(os.TempDir(), "citybrain-cache")
		}
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		panic("testenv: cannot create cache directory: " + err.Error())
	}
	return dir
}

// MavenRepo is the Maven local repository inside CacheDir, so that every
// jar the tests fetch lives under the one cache directory.
func MavenRepo() string {
	return filepath.Join(CacheDir(), "m2")
}
