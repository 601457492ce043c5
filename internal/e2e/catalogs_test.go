package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"citybrain/internal/config"
	"citybrain/internal/testenv"
	"citybrain/warehouse"
)

const pyReadTable = `
import json, sys
import pyarrow.compute as pc
mode, arg = sys.argv[1], sys.argv[2]
if mode == "static":
    from pyiceberg.table import StaticTable
    t = StaticTable.from_metadata(arg)
else:
    from pyiceberg.catalog.rest import RestCatalog
    t = RestCatalog("rest", uri=arg).load_table("raw.weather")
tbl = t.scan().to_arrow()
print(json.dumps({
    "rows": tbl.num_rows,
    "rain": pc.sum(tbl["rain_mm"]).as_py(),
    "pm25": pc.sum(tbl["pm25"]).as_py(),
    "cursor_nulls": tbl["_cursor"].null_count,
    "first": pc.min(tbl["observed_at"]).as_py().isoformat(),
}))
`

type pyFigures struct {
	Rows        int64   `json:"rows"`
	Rain        float64 `json:"rain"`
	PM25        float64 `json:"pm25"`
	CursorNulls int64   `json:"cursor_nulls"`
	First       string  `json:"first"`
}

func pyiceberg(t *testing.T, args ...string) pyFigures {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	py, err := testenv.PythonVenv(ctx, "pyiceberg", testenv.PyIcebergRequirements...)
	if err != nil {
		t.Fatalf("python venv with pyiceberg: %v", err)
	}
	out, err := exec.CommandContext(ctx, py, append([]string{"-c", pyReadTable}, args...)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("pyiceberg: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var f pyFigures
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("pyiceberg output %q: %v", out, err)
	}
	return f
}

// duckFigures are the same figures from citybrain sql.
func duckFigures(t *testing.T, e *env) pyFigures {
	rows := e.sqlRows("select count(*), sum(rain_mm), sum(pm25), count(*) - count(_cursor) from raw.weather")
	var f pyFigures
	f.Rows, _ = strconv.ParseInt(rows[0][0], 10, 64)
	f.Rain, _ = strconv.ParseFloat(rows[0][1], 64)
	f.PM25, _ = strconv.ParseFloat(rows[0][2], 64)
	f.CursorNulls, _ = strconv.ParseInt(rows[0][3], 10, 64)
	return f
}

func sameFigures(t *testing.T, who string, py, duck pyFigures) {
	t.Helper()
	if py.Rows != duck.Rows || math.Abs(py.Rain-duck.Rain) > 1e-6 || math.Abs(py.PM25-duck.PM25) > 1e-3 || py.CursorNulls != 0 || duck.CursorNulls != 0 {
		t.Fatalf("%s read %+v; DuckDB read %+v", who, py, duck)
	}
	if py.First != "2013-02-28T16:00:00+00:00" {
		t.Errorf("%s: first observation %s, want 2013-02-28T16:00:00+00:00 (2013-03-01 00:00 Beijing)", who, py.First)
	}
	t.Logf("%s and DuckDB agree: %d rows, rain %.1f mm, PM2.5 sum %.0f", who, py.Rows, py.Rain, py.PM25)
}

func metadataLocation(t *testing.T, e *env) string {
	t.Helper()
	cfg, err := config.Load(e.config, false)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	lake, err := warehouse.Open(ctx, cfg.Warehouse, cfg.DataDir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	tbl, err := lake.Load(ctx, "raw.weather")
	if err != nil {
		t.Fatal(err)
	}
	return tbl.MetadataLocation()
}

// TestPyIcebergReadsTheLake: pyiceberg (PyPI) reads the weather table the
// platform wrote on the local catalog and gets the same rows and sums as
// DuckDB — and every column, _cursor included, by Iceberg field id.
func TestPyIcebergReadsTheLake(t *testing.T) {
	if testing.Short() {
		t.Skip("pyiceberg venv: skipped with -short")
	}
	e := newEnv(t, weatherSourceYAML(t, "weather", weatherCSV()))
	e.run("ingest", "weather", "--no-progress")
	sameFigures(t, "pyiceberg", pyiceberg(t, "static", metadataLocation(t, e)), duckFigures(t, e))
}

// TestSQLCatalogPostgres runs the spine with the Iceberg SQL catalog in a
// real PostgreSQL (Debian's server, started for the test).
func TestSQLCatalogPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("PostgreSQL: skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pgDir, err := os.MkdirTemp("", "cbpg-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(pgDir)
	pg, err := testenv.StartPostgres(ctx, pgDir)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Stop()
	e := newEnv(t, weatherSourceYAML(t, "weather", weatherCSV()))
	e.replace("warehouse:\n", "warehouse:\n  catalog: sql\n  sql: {driver: postgres}\n")
	t.Setenv("CITYBRAIN_CATALOG_DSN", pg.DSN())
	e.run("ingest", "weather", "--no-progress")
	duck := duckFigures(t, e)
	if duck.Rows != 35064 {
		t.Fatalf("rows = %d, want 35064", duck.Rows)
	}
	out := e.run("tables")
	t.Logf("tables on the PostgreSQL catalog:\n%s", out)
	// The catalog rows are really in PostgreSQL.
	psql, err := exec.LookPath("psql")
	if err == nil {
		got, err := exec.Command(psql, pg.DSN(), "-Atc", "select table_namespace || '.' || table_name from iceberg_tables").CombinedOutput()
		if err != nil || string(got) != "raw.weather\n" {
			t.Errorf("iceberg_tables in PostgreSQL: %q (%v)", got, err)
		}
	}
	sameFigures(t, "pyiceberg", pyiceberg(t, "static", metadataLocation(t, e)), duck)
}

// TestRESTCatalog runs the spine against Apache Iceberg's REST catalog
// server (the iceberg-open-api test fixture from Maven Central), and reads
// the table back through the same REST catalog with pyiceberg.
func TestRESTCatalog(t *testing.T) {
	if testing.Short() {
		t.Skip("REST catalog: skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rest, err := testenv.StartRESTCatalog(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer rest.Stop()
	e := newEnv(t, weatherSourceYAML(t, "weather", weatherCSV()))
	e.replace("warehouse:\n", fmt.Sprintf("warehouse:\n  catalog: rest\n  rest: {uri: %q}\n", rest.URI()))
	e.run("ingest", "weather", "--no-progress")
	duck := duckFigures(t, e)
	if duck.Rows != 35064 {
		t.Fatalf("rows = %d, want 35064", duck.Rows)
	}
	if _, err := os.Stat(filepath.Join(rest.Warehouse())); err != nil {
		t.Fatal(err)
	}
	sameFigures(t, "pyiceberg via REST", pyiceberg(t, "rest", rest.URI()), duck)
}
