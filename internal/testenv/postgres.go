package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Credentials and database of clusters started by StartPostgres.
const (
	// PostgresDatabase is the database StartPostgres creates.
	PostgresDatabase = "citybrain"
	// PostgresUser is the superuser role of clusters started by StartPostgres.
	PostgresUser = "citybrain"
	// PostgresPassword is the password of PostgresUser. The cluster also
	// trusts 127.0.0.1, so clients that send no password connect as well.
	PostgresPassword = "citybrain"
)

// Postgres is a throwaway PostgreSQL cluster started by StartPostgres. It
// listens on 127.0.0.1 only and on a Unix socket in its directory. Its
// methods are safe for concurrent use.
type Postgres struct {
	bin     string // directory holding initdb, pg_ctl, postgres
	dir     string // root directory given to StartPostgres
	data    string // cluster data directory (PGDATA)
	port    int
	runAs   *syscall.Credential // nil when not running as root
	logFile string

	mu      sync.Mutex
	stopped bool
}

// StartPostgres initialises a new PostgreSQL cluster under dir (which is
// created if needed; dir/data holds PGDATA, dir/postgres.log the server log),
// starts it on a free loopback port with its Unix socket in dir, and creates
// the database PostgresDatabase owned by the superuser PostgresUser (password
// PostgresPassword; 127.0.0.1 is trusted too). When the process runs as root,
// initdb and the server run as the `postgres` OS user and dir is chowned to it,
// since PostgreSQL refuses to run as root. The server binaries are taken from
// `pg_config --bindir`, /usr/lib/postgresql/*/bin (newest first) or $PATH; if
// none is found the error says to run `make test-deps`. ctx bounds only the
// start-up. The caller must call Stop (e.g. via t.Cleanup); on error nothing
// is left running. Errors include the tail of the server log.
func StartPostgres(ctx context.Context, dir string) (*Postgres, error) {
	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	// The Unix socket path (dir/.s.PGSQL.PORT) must fit in sun_path (107 bytes).
	if len(dir) > 90 {
		return nil, fmt.Errorf("testenv: postgres dir %q is too long for a Unix socket path (max 90 bytes)", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &Postgres{
		bin:     bin,
		dir:     dir,
		data:    filepath.Join(dir, "data"),
		logFile: filepath.Join(dir, "postgres.log"),
	}
	if os.Geteuid() == 0 {
		cred, err := postgresCredential()
		if err != nil {
			return nil, err
		}
		p.runAs = cred
		if err := pgChownTree(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return nil, err
		}
		// The postgres user must be able to reach dir through its ancestors.
		if err := pgEnsureTraversable(filepath.Dir(dir)); err != nil {
			return nil, err
		}
	}

	pwFile := filepath.Join(dir, "pwfile")
	if err := p.writeOwned(pwFile, PostgresPassword+"\n", 0o600); err != nil {
		return nil, err
	}
	if out, err := p.run(ctx, "initdb",
		"-D", p.data, "-U", PostgresUser, "--pwfile", pwFile,
		"-A", "scram-sha-256", "--auth-local=trust", "-E", "UTF8",
		"--locale=C", "--no-sync"); err != nil {
		return nil, fmt.Errorf("testenv: initdb: %v\n%s", err, out)
	}
	os.Remove(pwFile)
	// Trust TCP connections from 127.0.0.1 (throwaway test cluster); everything
	// else falls through to the scram-sha-256 lines written by initdb.
	hba := filepath.Join(p.data, "pg_hba.conf")
	old, err := os.ReadFile(hba)
	if err != nil {
		return nil, err
	}
	if err := p.writeOwned(hba, "host all all 127.0.0.1/32 trust\n"+string(old), 0o600); err != nil {
		return nil, err
	}

	const attempts = 5
	for i := 0; ; i++ {
		p.port, err = pickLoopbackPort()
		if err != nil {
			return nil, err
		}
		out, err := p.run(ctx, "pg_ctl", "start", "-w", "-t", "60",
			"-D", p.data, "-l", p.logFile,
			"-o", fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", p.port, dir))
		if err == nil {
			break
		}
		logTail := logTailLines(p.logFile, 40)
		p.forceStop()
		if i+1 < attempts && strings.Contains(logTail, "could not bind") {
			continue // lost the race for the port
		}
		return nil, fmt.Errorf("testenv: pg_ctl start: %v\n%s\n--- %s (tail) ---\n%s", err, out, p.logFile, logTail)
	}
	if out, err := p.run(ctx, "createdb", "-h", dir, "-p", strconv.Itoa(p.port),
		"-U", PostgresUser, "-O", PostgresUser, PostgresDatabase); err != nil {
		logTail := logTailLines(p.logFile, 40)
		p.forceStop()
		return nil, fmt.Errorf("testenv: createdb: %v\n%s\n--- %s (tail) ---\n%s", err, out, p.logFile, logTail)
	}
	return p, nil
}

// DSN returns a libpq/pgx URL for the database PostgresDatabase, e.g.
// postgres://citybrain:citybrain@127.0.0.1:PORT/citybrain?sslmode=disable.
func (p *Postgres) DSN() string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(PostgresUser, PostgresPassword),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)),
		Path:     "/" + PostgresDatabase,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on (127.0.0.1 only).
func (p *Postgres) Port() int { return p.port }

// Dir returns the directory given to StartPostgres; it holds the cluster's
// data directory, its Unix socket and postgres.log.
func (p *Postgres) Dir() string { return p.dir }

// Stop shuts the server down with `pg_ctl stop -m fast` and waits for it to
// exit. The data directory is left in place (remove it or use t.TempDir).
// Calling Stop more than once is harmless; later calls return nil.
func (p *Postgres) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	p.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := p.run(ctx, "pg_ctl", "stop", "-m", "fast", "-w", "-t", "55", "-D", p.data)
	if err != nil {
		p.forceStop()
		return fmt.Errorf("testenv: pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// forceStop makes a best effort to stop a server that may be running.
func (p *Postgres) forceStop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p.run(ctx, "pg_ctl", "stop", "-m", "immediate", "-w", "-D", p.data)
}

// run executes one of the server binaries, as the postgres user when root.
func (p *Postgres) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, name), args...)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "PGTZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.runAs}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return out.Bytes(), err
}

// writeOwned writes a file and hands it to the postgres user when root.
func (p *Postgres) writeOwned(path, content string, mode os.FileMode) error {
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		return err
	}
	if p.runAs != nil {
		return os.Chown(path, int(p.runAs.Uid), int(p.runAs.Gid))
	}
	return nil
}

var errPostgresMissing = errors.New("testenv: PostgreSQL server binaries (initdb, pg_ctl) not found; run make test-deps (apt-get install postgresql)")

// postgresBinDir locates the directory holding initdb, pg_ctl and postgres.
func postgresBinDir() (string, error) {
	ok := func(d string) bool {
		for _, n := range []string{"initdb", "pg_ctl", "postgres", "createdb"} {
			if fi, err := os.Stat(filepath.Join(d, n)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	var cands []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		cands = append(cands, strings.TrimSpace(string(out)))
	}
	globbed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(globbed, func(i, j int) bool { return pgMajor(globbed[i]) > pgMajor(globbed[j]) })
	cands = append(cands, globbed...)
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			cands = append(cands, filepath.Dir(r))
		}
		cands = append(cands, filepath.Dir(p))
	}
	for _, d := range cands {
		if d != "" && ok(d) {
			return d, nil
		}
	}
	return "", errPostgresMissing
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

// postgresCredential returns the credential of the `postgres` OS user.
func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("testenv: running as root but there is no postgres OS user to run the server as (%v); run make test-deps (apt-get install postgresql)", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("testenv: bad uid/gid for postgres user: %q/%q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func pgChownTree(root string, uid, gid int) error {
	return filepath.Walk(root, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
}

// pgEnsureTraversable adds o+x to dir and its ancestors where missing, so that
// an unprivileged user can reach a directory below it (t.TempDir() parents
// are created 0700).
func pgEnsureTraversable(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o001); err != nil {
				return err
			}
		}
		if parent := filepath.Dir(d); parent == d {
			return nil
		}
	}
}

// pickLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment ago.
func pickLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// logTailLines returns the last n lines of a file, or a note why it can't.
func logTailLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
