package testenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPythonVenvPyIceberg(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Python venv with pip; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	start := time.Now()
	python, err := PythonVenv(ctx, "pyiceberg", PyIcebergRequirements...)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("venv ready in %v: %s", time.Since(start).Round(time.Millisecond), python)
	if want := filepath.Join(CacheDir(), "venv-pyiceberg", "bin", "python"); python != want {
		t.Errorf("python = %q, want %q", python, want)
	}

	out, err := exec.CommandContext(ctx, python, "-c",
		"import pyiceberg, pyarrow, sqlalchemy; print(pyiceberg.__version__)").CombinedOutput()
	if err != nil {
		t.Fatalf("import check: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	want := strings.SplitN(PyIcebergRequirements[0], "==", 2)[1]
	if got != want {
		t.Fatalf("pyiceberg.__version__ = %q, want %q", got, want)
	}

	// A second call with the same requirements reuses the venv.
	start = time.Now()
	again, err := PythonVenv(ctx, "pyiceberg", PyIcebergRequirements...)
	if err != nil || again != python {
		t.Fatalf("second PythonVenv = %q, %v", again, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("warm PythonVenv took %v, want it to reuse the venv", d)
	}
}

func TestPythonVenvStamp(t *testing.T) {
	if testing.Short() {
		t.Skip("creates Python venvs; skipped with -short")
	}
	t.Setenv("CITYBRAIN_CACHE", t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	python, err := PythonVenv(ctx, "empty")
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(filepath.Dir(filepath.Dir(python)), "marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Same (empty) requirement list: reused, marker survives.
	if _, err := PythonVenv(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("venv was rebuilt although requirements did not change: %v", err)
	}
	// A different stamp (as left by another requirement list or interpreter)
	// forces a rebuild.
	stamp := filepath.Join(filepath.Dir(filepath.Dir(python)), venvStampName)
	if err := os.WriteFile(stamp, []byte("other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := PythonVenv(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("venv was not rebuilt after its stamp changed (marker: %v)", err)
	}
	if _, err := PythonVenv(ctx, "../x"); err == nil {
		t.Fatal("PythonVenv accepted a name with a path separator")
	}
}
