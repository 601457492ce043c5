package testenv

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SeaweedFSVersion is the SeaweedFS (Apache-2.0) module version the tests
// build: a pseudo-version the Go module proxy serves (issue #22).
const SeaweedFSVersion = "v0.0.0-20261109003541-7506e5f91cd6"

// The static S3 identity of the test server.
const (
	SeaweedAccessKey = "citybrain"
	SeaweedSecretKey = "citybrain-test-secret"
)

// SeaweedFS is a throwaway SeaweedFS server (master, volume, filer and S3
// gateway in one process) started by StartSeaweedFS, on loopback ports,
// with its data in its directory (kept across Restart).
type SeaweedFS struct {
	bin, dir, logFile string
	ports             map[string]int // master, volume, filer, s3 and their gRPC ports

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// SeaweedFSBin returns the weed binary, building it into
// CacheDir()/seaweedfs-<SeaweedFSVersion>/weed on first use: `go install` of
// SeaweedFS is refused (its go.mod has replace directives), so the module is
// downloaded from the proxy, copied writable and built in place (minutes, once;
// an exclusive lock keeps two test binaries from building it together).
func SeaweedFSBin(ctx context.Context) (string, error) {
	home := filepath.Join(CacheDir(), "seaweedfs-"+SeaweedFSVersion)
	bin := filepath.Join(home, "weed")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	unlock, err := flockWait(ctx, home+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("testenv: SeaweedFS is built with the go tool, not on PATH: %w", err)
	}
	out, err := exec.CommandContext(ctx, goBin, "mod", "download", "-json", "github.com/seaweedfs/seaweedfs@"+SeaweedFSVersion).Output()
	if err != nil {
		return "", fmt.Errorf("testenv: go mod download seaweedfs: %w", err)
	}
	var mod struct{ Dir, Error string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("testenv: go mod download seaweedfs: %s %v", mod.Error, err)
	}
	src := filepath.Join(home, "src")
	os.RemoveAll(src)
	if err := os.MkdirAll(home, 0o755); err != nil {
		return "", err
	}
	if b, err := exec.CommandContext(ctx, "cp", "-r", mod.Dir, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("testenv: copying %s: %v: %s", mod.Dir, err, b)
	}
	if b, err := exec.CommandContext(ctx, "chmod", "-R", "u+w", src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("testenv: chmod %s: %v: %s", src, err, b)
	}
	build := exec.CommandContext(ctx, goBin, "build", "-o", bin+".tmp", "./weed")
	build.Dir = src
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testenv: building SeaweedFS %s: %v\n%s", SeaweedFSVersion, err, tailOfString(string(b), 30))
	}
	if err := os.Rename(bin+".tmp", bin); err != nil {
		return "", err
	}
	os.RemoveAll(src)
	return bin, nil
}

// StartSeaweedFS starts `weed server` with the S3 gateway on loopback ports,
// its data and log (weed.log) in dir, one S3 identity (SeaweedAccessKey /
// SeaweedSecretKey) with every permission. The caller must Stop it.
func StartSeaweedFS(ctx context.Context, dir string) (*SeaweedFS, error) {
	bin, err := SeaweedFSBin(ctx)
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if strings.Contains(dir, ",") {
		// weed reads -dir as a comma-separated list of volume directories.
		return nil, fmt.Errorf("testenv: SeaweedFS directory %q contains a comma, which weed server takes as a list of directories; use another directory (a subtest name with a comma gives one through t.TempDir)", dir)
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	s := &SeaweedFS{bin: bin, dir: dir, logFile: filepath.Join(dir, "weed.log"), ports: map[string]int{}}
	conf := fmt.Sprintf(`{"identities":[{"name":"citybrain","credentials":[{"accessKey":%q,"secretKey":%q}],"actions":["Admin","Read","Write","List","Tagging"]}]}`,
		SeaweedAccessKey, SeaweedSecretKey)
	if err := os.WriteFile(filepath.Join(dir, "s3.json"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	for _, p := range []string{"master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3"} {
		if s.ports[p], err = pickLoopbackPort(); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.startLocked(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Endpoint is the S3 endpoint, http://127.0.0.1:PORT (path-style).
func (s *SeaweedFS) Endpoint() string {
	return "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(s.ports["s3"]))
}

func (s *SeaweedFS) startLocked(ctx context.Context) error {
	logf, err := os.OpenFile(s.logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	p := func(k string) string { return strconv.Itoa(s.ports[k]) }
	args := []string{"server", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir=" + filepath.Join(s.dir, "data"),
		"-master.port=" + p("master"), "-master.port.grpc=" + p("master.grpc"),
		"-volume.port=" + p("volume"), "-volume.port.grpc=" + p("volume.grpc"),
		"-filer", "-filer.port=" + p("filer"), "-filer.port.grpc=" + p("filer.grpc"),
		"-s3", "-s3.port=" + p("s3"), "-s3.config=" + filepath.Join(s.dir, "s3.json"),
		"-master.volumeSizeLimitMB=64", "-volume.max=0", "-master.telemetry=false"}
	fmt.Fprintf(logf, "--- testenv: %s %s at %s ---\n", s.bin, strings.Join(args, " "), time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(s.bin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = s.dir, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testenv: starting %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	// Ready when the S3 gateway answers a request (403 or 200: it is up and
	// has its identities) and can list (the filer behind it is up).
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		if resp, err := hc.Get(s.Endpoint() + "/"); err == nil {
			resp.Body.Close()
			if resp.StatusCode < 500 {
				return nil
			}
		}
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("testenv: SeaweedFS exited during start-up (%v)\n--- %s (tail) ---\n%s", cmd.ProcessState, s.logFile, logTailLines(s.logFile, 40))
		case <-ctx.Done():
			s.stopLocked()
			return fmt.Errorf("testenv: SeaweedFS S3 did not answer on %s: %w\n--- %s (tail) ---\n%s", s.Endpoint(), ctx.Err(), s.logFile, logTailLines(s.logFile, 40))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Stop stops the server (SIGINT, SIGKILL after 5 s). Harmless twice.
func (s *SeaweedFS) Stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopLocked()
}

func (s *SeaweedFS) stopLocked() error {
	if s.cmd == nil {
		return nil
	}
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second): // weed waits on its shutdown hooks
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
	s.cmd = nil
	return nil
}

// Restart stops the server and starts it again on the same ports and data.
func (s *SeaweedFS) Restart(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.stopLocked(); err != nil {
		return err
	}
	return s.startLocked(ctx)
}
