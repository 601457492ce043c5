package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"citybrain/internal/config"
	"citybrain/internal/testenv"
	"citybrain/warehouse"
	"citybrain/warehouse/objstore"
)

// sparkFigures reads every table of the raw and marts namespaces (and the
// namespaces named in argv) and prints, per table, its row count, its
// numeric columns' sums and its columns.
const sparkFigures = `
import json, sys
from pyspark.sql import functions as F
from pyspark.sql.types import NumericType
out = {}
for ns in ["raw", "marts"]:
    for row in spark.sql("SHOW TABLES IN " + ns).collect():
        name = ns + "." + row.tableName
        df = spark.table(name)
        nums = [f.name for f in df.schema.fields if isinstance(f.dataType, NumericType)]
        aggs = [F.count(F.lit(1)).alias("n")] + [F.sum(F.col(c).cast("double")).alias(c) for c in nums]
        r = df.agg(*aggs).collect()[0]
        out[name] = {"rows": r["n"], "sums": {c: r[c] for c in nums}, "columns": [f.name for f in df.schema.fields]}
print(json.dumps(out))
`

type sparkTable struct {
	Rows    int64               `json:"rows"`
	Sums    map[string]*float64 `json:"sums"`
	Columns []string            `json:"columns"`
}

// TestSparkSharesTheLake: the lake on an object store (SeaweedFS) behind
// Apache Iceberg's REST catalog is shared with Apache Spark (pyspark +
// iceberg-spark-runtime from PyPI and Maven Central), both ways. citybrain
// ingests the seven real sample files through their shipped sources and
// runs every model; Spark reads every
// raw.* and marts.* table and gets citybrain's counts and sums. Spark
// writes a table of its own, then adds a column to it; citybrain reads both
// versions and joins it with raw.weather. citybrain evolves a marts table
// (a model's new column); Spark reads the new column.
func TestSparkSharesTheLake(t *testing.T) {
	if testing.Short() {
		t.Skip("SeaweedFS, the REST catalog and Spark: skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	e := newEnv(t, "") // the shipped sources (connectors/sources)
	_, rest, s3o := lakeOnS3(t, e)
	for _, src := range []string{"weather", "emergency", "planning", "traffic", "police", "city_management", "crowd"} {
		e.run("ingest", src, "--no-progress")
	}
	if out := e.run("models", "run", "--as-of", "2026-06-30"); !strings.Contains(out, "models ok") {
		t.Fatalf("models run:\n%s", out)
	}
	// A department's extract reads the lake on the object store (one day of
	// raw.weather: its filter prunes the files to that day's).
	b, _ := os.ReadFile(e.config)
	os.WriteFile(e.config, append(b, []byte(`extracts:
  definitions:
    - name: weather_s3
      department: water
      source: {table: raw.weather, where: "observed_at >= :period_start AND observed_at < :period_end"}
      columns: [station, observed_at, rain_mm]
      format: csv
      schedule: {cron: "0 6 * * *"}
`)...), 0o644)
	var m struct {
		Rows        int64     `json:"rows"`
		Period      time.Time `json:"period"`
		PeriodStart time.Time `json:"period_start"`
	}
	if err := json.Unmarshal([]byte(e.run("extracts", "run", "weather_s3", "--period", "2014-03-02 06:00", "--json")), &m); err != nil {
		t.Fatal(err)
	}
	want := e.sqlInt(fmt.Sprintf("select count(*) from raw.weather where observed_at >= '%s' and observed_at < '%s'", m.PeriodStart.Format(time.RFC3339), m.Period.Format(time.RFC3339)))
	if m.Rows != 24 || m.Rows != want {
		t.Fatalf("extract on the object store: %d rows for %s – %s, the lake holds %d (want 24)", m.Rows, m.PeriodStart, m.Period, want)
	}
	// citybrain evolves a table (a model's result gains a column).
	wcfg, dataDir := configFor(t, e)
	lake, err := warehouse.Open(ctx, wcfg, dataDir, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer lake.Close()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"SELECT i AS id, i * 1.5 AS score FROM range(10) t(i)",
		"SELECT i AS id, i * 1.5 AS score, '等级 level ' || (i % 3) AS grade FROM range(12) t(i)",
	} {
		if _, err := lake.Materialize(ctx, db, warehouse.MaterializeSpec{Table: "marts.shared_scores", Mode: warehouse.MaterializeReplace, Query: q}); err != nil {
			t.Fatal(err)
		}
	}
	spark := testenv.SparkConfig{CatalogURI: rest.URI(), S3: s3o}

	// One Spark run (a JVM start is ~5 s): it reads what citybrain wrote —
	// every table's figures, the evolved table's new column — and writes a
	// table of its own.
	out, err := testenv.RunSpark(ctx, spark, sparkFigures+`
r = spark.sql("SELECT count(*) AS n, count(grade) AS g, max(grade) AS top, sum(score) AS s FROM marts.shared_scores").collect()[0]
print(json.dumps({"n": r["n"], "g": r["g"], "top": r["top"], "s": r["s"]}))
spark.sql("CREATE NAMESPACE IF NOT EXISTS enrich")
spark.sql("CREATE TABLE enrich.stations (station STRING, district STRING, elevation_m DOUBLE) USING iceberg")
spark.sql("INSERT INTO enrich.stations SELECT DISTINCT station, '西城区 Xicheng', 50.0 FROM raw.weather")
`)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 2 {
		t.Fatalf("spark output %q", out)
	}
	var ev struct {
		N, G int
		Top  string
		S    float64
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &ev); err != nil || ev.N != 12 || ev.G != 12 || ev.Top != "等级 level 2" || ev.S != 99 {
		t.Fatalf("Spark read citybrain's evolved table: %+v (%v) from %q", ev, err, out)
	}
	out = lines[len(lines)-2]
	var figs map[string]sparkTable
	if err := json.Unmarshal([]byte(out), &figs); err != nil {
		t.Fatalf("spark output %q: %v", out, err)
	}
	if figs["raw.weather"].Rows != 35064 {
		t.Fatalf("Spark read raw.weather: %+v", figs["raw.weather"])
	}
	names := make([]string, 0, len(figs))
	for n := range figs {
		names = append(names, n)
	}
	sort.Strings(names)
	marts, raws := 0, 0
	for _, name := range names {
		f := figs[name]
		if strings.HasPrefix(name, "marts.") {
			marts++
		} else {
			raws++
		}
		cols := make([]string, 0, len(f.Sums))
		for c := range f.Sums {
			cols = append(cols, c)
		}
		sort.Strings(cols)
		exprs := []string{"count(*)"}
		for _, c := range cols {
			exprs = append(exprs, fmt.Sprintf(`sum(CAST("%s" AS DOUBLE))`, c))
		}
		rows := e.sqlRows("SELECT " + strings.Join(exprs, ", ") + " FROM " + name)
		if n, _ := strconv.ParseInt(rows[0][0], 10, 64); n != f.Rows {
			t.Errorf("%s: citybrain counts %d rows, Spark %d", name, n, f.Rows)
		}
		for i, c := range cols {
			ours := rows[0][i+1]
			if ours == "NULL" {
				ours = ""
			}
			theirs := f.Sums[c]
			if theirs == nil || ours == "" {
				if (theirs == nil) != (ours == "") {
					t.Errorf("%s.%s: citybrain sum %q, Spark %v", name, c, ours, theirs)
				}
				continue
			}
			v, _ := strconv.ParseFloat(ours, 64)
			if math.Abs(v-*theirs) > 1e-9*math.Max(1, math.Abs(v)) {
				t.Errorf("%s.%s: citybrain sum %v, Spark %v", name, c, v, *theirs)
			}
		}
	}
	if marts < 5 || raws < 7 {
		t.Errorf("Spark saw %d raw and %d marts tables: %v", raws, marts, names)
	}
	t.Logf("Spark and citybrain agree on %d tables (%d raw, %d marts): counts and the sums of every numeric column", len(names), raws, marts)

	// citybrain reads Spark's table and joins it with its own; Spark adds a
	// column, citybrain reads it.
	joined := e.sqlRows("SELECT s.district, count(*), sum(s.elevation_m) FROM raw.weather w JOIN enrich.stations s USING (station) GROUP BY ALL")
	if len(joined) != 1 || joined[0][0] != "西城区 Xicheng" || joined[0][1] != "35064" {
		t.Fatalf("citybrain joined Spark's table: %v", joined)
	}
	if _, err := testenv.RunSpark(ctx, spark, `
spark.sql("ALTER TABLE enrich.stations ADD COLUMN operator STRING")
spark.sql("INSERT INTO enrich.stations VALUES ('Nowhere', '外区 elsewhere', 10.0, '气象局 CMA')")
`); err != nil {
		t.Fatal(err)
	}
	evolved := e.sqlRows("SELECT count(*), count(operator), max(operator) FROM enrich.stations")
	if len(evolved) != 1 || evolved[0][1] != "1" || evolved[0][2] != "气象局 CMA" {
		t.Fatalf("citybrain read Spark's new column: %v", evolved)
	}

	t.Logf("citybrain evolved marts.shared_scores, Spark read it (%+v); Spark wrote and evolved enrich.stations, citybrain joined and read it", ev)
}

// lakeOnS3 starts SeaweedFS and an Iceberg REST catalog whose warehouse is
// in its bucket, and points e's lake at them (the local catalog refused on
// the way, with its reason). Both stop when the test ends.
func lakeOnS3(t *testing.T, e *env) (*testenv.SeaweedFS, *testenv.RESTCatalog, testenv.RESTS3Options) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	sw, err := testenv.StartSeaweedFS(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sw.Stop() })
	s3o := testenv.RESTS3Options{Endpoint: sw.Endpoint(), Bucket: "citybrain", Prefix: "lake",
		AccessKey: testenv.SeaweedAccessKey, SecretKey: testenv.SeaweedSecretKey}
	t.Setenv("AWS_ACCESS_KEY_ID", testenv.SeaweedAccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", testenv.SeaweedSecretKey)
	e.replace("warehouse:\n", fmt.Sprintf("warehouse:\n  location: %s\n  s3: {endpoint: %q, path_style: true}\n", s3o.Warehouse(), sw.Endpoint()))
	if out, errOut, err := e.try("tables"); err == nil || !strings.Contains(errOut, "local catalog cannot") {
		t.Fatalf("local catalog on s3://: %v\n%s%s", err, out, errOut)
	}
	// The REST server writes a table's first metadata itself: the bucket
	// must exist before citybrain's first create.
	ensureBucket(t, sw, s3o.Bucket)
	rest, err := testenv.StartRESTCatalogS3(ctx, t.TempDir(), s3o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rest.Stop() })
	e.replace("warehouse:\n", fmt.Sprintf("warehouse:\n  catalog: rest\n  rest: {uri: %q}\n", rest.URI()))
	return sw, rest, s3o
}

// ensureBucket creates the bucket on the server.
func ensureBucket(t *testing.T, sw *testenv.SeaweedFS, bucket string) {
	t.Helper()
	st, err := objstore.NewS3(bucket, "", objstore.Options{Endpoint: sw.Endpoint(), PathStyle: true,
		AccessKey: testenv.SeaweedAccessKey, SecretKey: testenv.SeaweedSecretKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.EnsureBucket(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// configFor is the warehouse config and data directory of e's citybrain.yaml.
func configFor(t *testing.T, e *env) (warehouse.Config, string) {
	t.Helper()
	cfg, err := config.Load(e.config, false)
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(cfg.Warehouse.S3.CacheDir) {
		// Its own cache: another process's copies are not shared.
		cfg.Warehouse.S3.CacheDir = filepath.Join(t.TempDir(), "cache")
	}
	return cfg.Warehouse, cfg.DataDir
}
