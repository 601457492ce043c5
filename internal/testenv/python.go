package testenv

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// PyIcebergRequirements are the pinned pip requirements the Python interop
// tests need: pyiceberg with its pyarrow and SQLite (SqlCatalog) extras.
// pyiceberg 0.12.0 is the newest release on PyPI at the time of pinning and
// supports Python 3.9-3.13 (the machines run 3.11).
var PyIcebergRequirements = []string{
	"pyiceberg[pyarrow,sql-sqlite]==0.12.0",
	"pyarrow==26.0.1",
}

// venvStampName is the file inside a venv recording what it was built from.
const venvStampName = ".citybrain-requirements"

var venvNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// PythonVenv returns the path of the python interpreter of the virtualenv
// CacheDir()/venv-<name>, building it first when it is missing or was built
// from a different requirement list or base interpreter: the venv is removed,
// recreated with `python3 -m venv` and filled with `pip install
// requirements...` using the pip cache CacheDir()/pip (PIP_CACHE_DIR); with no
// requirements the venv is made --without-pip (fast, no pip inside). The
// requirement list (in the given order) and `python3 --version` are recorded
// in a stamp file written only after a successful install, so an interrupted
// build is redone next time. An exclusive flock on CacheDir()/venv-<name>.lock
// serialises concurrent callers, including other test binaries. name must
// match [A-Za-z0-9][A-Za-z0-9._-]*. ctx bounds the whole call (waiting for
// the lock included); errors include the tail of pip's output. python3 is
// taken from $PATH, or from $CITYBRAIN_PYTHON when that is set.
func PythonVenv(ctx context.Context, name string, requirements ...string) (python string, err error) {
	if !venvNameRE.MatchString(name) {
		return "", fmt.Errorf("testenv: bad venv name %q", name)
	}
	base := os.Getenv("CITYBRAIN_PYTHON")
	if base == "" {
		base = "python3"
	}
	basePath, err := exec.LookPath(base)
	if err != nil {
		return "", fmt.Errorf("testenv: %s not found (%v); install Python 3 with venv support (apt-get install python3 python3-venv)", base, err)
	}
	verOut, err := exec.CommandContext(ctx, basePath, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("testenv: %s --version: %v\n%s", basePath, err, verOut)
	}

	cache := CacheDir()
	venv := filepath.Join(cache, "venv-"+name)
	python = filepath.Join(venv, "bin", "python")
	stamp := fmt.Sprintf("# %s\n%s\n", strings.TrimSpace(string(verOut)), strings.Join(stampRequirements(requirements), "\n"))

	unlock, err := flockWait(ctx, filepath.Join(cache, "venv-"+name+".lock"))
	if err != nil {
		return "", err
	}
	defer unlock()

	if got, err := os.ReadFile(filepath.Join(venv, venvStampName)); err == nil && string(got) == stamp {
		if _, err := os.Stat(python); err == nil {
			return python, nil
		}
	}

	if err := os.RemoveAll(venv); err != nil {
		return "", err
	}
	venvArgs := []string{"-m", "venv", venv}
	if len(requirements) == 0 {
		venvArgs = []string{"-m", "venv", "--without-pip", venv}
	}
	if out, err := runCombined(ctx, nil, basePath, venvArgs...); err != nil {
		return "", fmt.Errorf("testenv: %s -m venv %s: %v\n%s\n(on Debian: apt-get install python3-venv)", basePath, venv, err, out)
	}
	if len(requirements) > 0 {
		env := append(os.Environ(),
			"PIP_CACHE_DIR="+filepath.Join(cache, "pip"),
			"PIP_DISABLE_PIP_VERSION_CHECK=1",
			"PIP_NO_INPUT=1",
			"PYTHONDONTWRITEBYTECODE=",
		)
		args := append([]string{"-m", "pip", "install", "--progress-bar", "off"}, requirements...)
		if out, err := runCombined(ctx, env, python, args...); err != nil {
			return "", fmt.Errorf("testenv: pip install %s into %s: %v\n%s", strings.Join(requirements, " "), venv, err, tailOfString(out, 40))
		}
	}
	if err := os.WriteFile(filepath.Join(venv, venvStampName), []byte(stamp), 0o644); err != nil {
		return "", err
	}
	return python, nil
}

// runCombined runs a command and returns its combined output.
func runCombined(ctx context.Context, env []string, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if env != nil {
		cmd.Env = env
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.String(), err
}

// flockWait takes an exclusive flock on path (created if needed), polling so
// that ctx can cancel the wait. The returned func releases it.
func flockWait(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("testenv: flock %s: %v", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("testenv: waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tailOfString returns the last n lines of s.
func tailOfString(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// stampRequirements names a constraint or requirement file by its content
// rather than its path, so checkouts in different directories (a CI clone,
// the working tree) share one venv.
func stampRequirements(reqs []string) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r
		for _, flag := range []string{"--constraint=", "--requirement=", "-c", "-r"} {
			path, ok := strings.CutPrefix(r, flag)
			if !ok || path == "" {
				continue
			}
			if b, err := os.ReadFile(path); err == nil {
				sum := sha256.Sum256(b)
				out[i] = flag + filepath.Base(path) + "@sha256:" + hex.EncodeToString(sum[:])
			}
			break
		}
	}
	return out
}
