package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// mavenJars is a set of jars fetched from Maven Central: the dependencies
// of an embedded pom, copied by `mvn dependency:copy-dependencies` into
// CacheDir()/<dir>/libs (artifacts are cached in MavenRepo()).
type mavenJars struct {
	dir    string   // under CacheDir()
	what   string   // for messages: "Kafka 4.4.0 jars"
	pom    []byte   // the pom whose dependencies are the jars
	key    string   // also part of the marker's hash (besides the pom); "" for none
	args   []string // more arguments of mvn (properties, scope)
	expect []string // globs that must match a jar of the result
}

// fetch makes sure the jars are in place and returns their directory,
// suitable for `java -cp '<libs>/*'`. The first call runs Maven (which must
// be on PATH and reach Maven Central); later calls return at once. It is
// safe from several processes at once: an exclusive flock on
// CacheDir()/<dir>.lock serialises fetches, the jars are copied into a
// temporary directory renamed into place, and a marker file holds the hash
// of the pom (and key), so a changed pom fetches afresh. ctx bounds the wait
// for the lock and the Maven run.
func (m mavenJars) fetch(ctx context.Context) (string, error) {
	base := filepath.Join(CacheDir(), m.dir)
	libs := filepath.Join(base, "libs")
	marker := filepath.Join(base, "libs.complete")
	h := sha256.New()
	h.Write(m.pom)
	if m.key != "" {
		h.Write([]byte("\x00" + m.key))
	}
	want := hex.EncodeToString(h.Sum(nil))
	fresh := func() bool {
		b, err := os.ReadFile(marker)
		return err == nil && strings.TrimSpace(string(b)) == want
	}
	if fresh() {
		return libs, nil
	}
	unlock, err := flockWait(ctx, base+".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if fresh() { // another process finished the fetch while we waited
		return libs, nil
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return "", fmt.Errorf("testenv: Maven (mvn) is needed to fetch the %s (%v); run make test-deps", m.what, err)
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	_ = os.Remove(marker)
	pom := filepath.Join(base, "pom.xml")
	if err := os.WriteFile(pom, m.pom, 0o644); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	tmp := libs + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	args := append([]string{"-q", "-B", "-Dmaven.repo.local=" + MavenRepo(), "-f", pom}, m.args...)
	out, err := runCombined(ctx, nil, mvn, append(args, "dependency:copy-dependencies", "-DoutputDirectory="+tmp)...)
	if err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("testenv: fetching the %s with Maven: %w\n%s", m.what, err, tailOfString(out, 40))
	}
	for _, glob := range m.expect {
		if found, _ := filepath.Glob(filepath.Join(tmp, glob)); len(found) == 0 {
			_ = os.RemoveAll(tmp)
			return "", fmt.Errorf("testenv: Maven ran but no %s in %s\n%s", glob, tmp, tailOfString(out, 40))
		}
	}
	if err := os.RemoveAll(libs); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	if err := os.Rename(tmp, libs); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	if err := os.WriteFile(marker, []byte(want+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("testenv: %w", err)
	}
	return libs, nil
}
