package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDiskFull: the data directory on a 600 KB file system, too small for
// the embedded broker's log of the weather file. The ingest fails with "no
// space left on device" and what to do, in a few lines (it printed 5,000
// "[-1] Unknown" errors before). Needs root to mount a tmpfs; skipped
// otherwise.
func TestDiskFull(t *testing.T) {
	e := newEnv(t, weatherSourceYAML(t, "weather", weatherCSV()))
	if err := os.MkdirAll(e.dataDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", e.dataDir()).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs (needs root): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", e.dataDir()).Run() })
	_, errOut, err := e.try("ingest", "weather", "--no-progress", "--log-level", "error")
	if err == nil {
		t.Fatalf("ingest into a full disk succeeded:\n%s", errOut)
	}
	if !strings.Contains(errOut, "no space left on device") || !strings.Contains(errOut, "磁盘空间已满") {
		t.Errorf("the error does not say the disk is full:\n%.3000s", errOut)
	}
	t.Logf("stderr: %s", errOut)
	if len(errOut) > 3000 {
		t.Errorf("the error is %d bytes long:\n%.3000s", len(errOut), errOut)
	}
}
