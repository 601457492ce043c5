// Package dbt runs the model project under dbt-duckdb, the reference
// implementation of the dbt dialect the project is written in: the
// benchmark anchor of `make bench` (same SQL, same data) and the
// compatibility test that compares its marts with the runner's. It needs a
// Python venv with Requirements (internal/testenv.PythonVenv).
package dbt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Requirements pins dbt: dbt-core 1.11 (1.12 pulls a parser wheel from
// outside PyPI), dbt-duckdb 1.11.1, and the DuckDB release duckdb-go
// v2.10506 embeds (1.5.6), so both engines are the same DuckDB.
var Requirements = []string{"dbt-core==1.11.16", "dbt-duckdb==1.11.1", "duckdb==1.5.6"}

// Workspace is a dbt project directory, its profiles.yml and its DuckDB
// database.
type Workspace struct {
	Python string // the venv's python
	Dir    string
	// DB is the DuckDB file dbt builds into (database "dbt").
	DB string
	// Threads of the dbt profile.
	Threads int
}

// Prepare copies the project into dir/project, writes dir/profiles.yml and
// creates dir/dbt.duckdb with a view per entry of sources (qualified
// table, e.g. raw.weather or marts.responses → a DuckDB SELECT, e.g. over
// the lake's Parquet files).
func Prepare(ctx context.Context, python, dir string, project fs.FS, sources map[string]string, threads int) (*Workspace, error) {
	w := &Workspace{Python: python, Dir: dir, DB: filepath.Join(dir, "dbt.duckdb"), Threads: threads}
	proj := filepath.Join(dir, "project")
	if err := os.RemoveAll(proj); err != nil {
		return nil, err
	}
	err := fs.WalkDir(project, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out := filepath.Join(proj, filepath.FromSlash(p))
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		b, err := fs.ReadFile(project, p)
		if err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		return nil, fmt.Errorf("copy project: %w", err)
	}
	profile := map[string]any{"citybrain": map[string]any{"target": "bench", "outputs": map[string]any{"bench": map[string]any{
		"type": "duckdb", "path": w.DB, "schema": "marts", "threads": threads,
	}}}}
	pb, _ := yaml.Marshal(profile)
	if err := os.WriteFile(filepath.Join(dir, "profiles.yml"), pb, 0o644); err != nil {
		return nil, err
	}
	os.Remove(w.DB)
	sb, _ := json.Marshal(sources)
	script := `import duckdb, json, sys
con = duckdb.connect(sys.argv[1])
for t, q in json.loads(sys.argv[2]).items():
    schema, name = t.split(".", 1)
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    con.execute(f'CREATE OR REPLACE VIEW "{schema}"."{name}" AS {q}')
con.close()
`
	if out, err := w.python(ctx, script, w.DB, string(sb)); err != nil {
		return nil, fmt.Errorf("create dbt database: %v\n%s", err, out)
	}
	return w, nil
}

func (w *Workspace) python(ctx context.Context, script string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, w.Python, append([]string{"-c", script}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Timing is how long a dbt process took: wall clock and CPU (user + system,
// DuckDB's threads included: they run inside the dbt process).
type Timing struct {
	Wall, CPU time.Duration
}

// Run runs `dbt run` with the vars (YAML) and extra arguments
// (--full-refresh, --select …) and returns its timing and output.
func (w *Workspace) Run(ctx context.Context, vars map[string]any, extra ...string) (Timing, string, error) {
	dbtBin := filepath.Join(filepath.Dir(w.Python), "dbt")
	vb, err := json.Marshal(vars)
	if err != nil {
		return Timing{}, "", err
	}
	args := append([]string{"run", "--project-dir", filepath.Join(w.Dir, "project"), "--profiles-dir", w.Dir, "--vars", string(vb)}, extra...)
	cmd := exec.CommandContext(ctx, dbtBin, args...)
	cmd.Dir = w.Dir
	cmd.Env = append(os.Environ(), "DBT_SEND_ANONYMOUS_USAGE_STATS=false", "DBT_LOG_PATH="+filepath.Join(w.Dir, "logs"),
		"DBT_TARGET_PATH="+filepath.Join(w.Dir, "target"), "DO_NOT_TRACK=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	took := Timing{Wall: time.Since(start)}
	if cmd.ProcessState != nil {
		took.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return took, out.String(), fmt.Errorf("dbt run: %v\n%s", err, tail(out.String(), 30))
	}
	return took, out.String(), nil
}

// Export writes a table of the dbt database (e.g. "marts.enterprise_risk")
// to a Parquet file.
func (w *Workspace) Export(ctx context.Context, table, out string) error {
	script := `import duckdb, sys
con = duckdb.connect(sys.argv[1], read_only=True)
con.execute(f"COPY (SELECT * FROM {sys.argv[2]}) TO '{sys.argv[3]}' (FORMAT parquet)")
`
	if o, err := w.python(ctx, script, w.DB, table, out); err != nil {
		return fmt.Errorf("export %s: %v\n%s", table, err, o)
	}
	return nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
