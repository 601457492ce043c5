package pgwire

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"citybrain/internal/testenv"
	"citybrain/warehouse/sqlaccess"
	"citybrain/warehouse/sqlaccess/sqltest"
)

// What analysts' tools send beyond plain queries: catalog introspection
// (SQLAlchemy's PostgreSQL dialect, which Superset uses; pgJDBC's
// DatabaseMetaData, which DBeaver's navigator and Metabase's sync use)
// and statements whose result shape DuckDB learns only from the
// parameters' values.

func TestCompatRewrites(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// PostgreSQL's ~ matches anywhere; DuckDB's the whole string.
		{"select nspname from pg_catalog.pg_namespace n where n.nspname !~ '^pg_'",
			"select nspname from pgcompat.pg_namespace n where (NOT regexp_matches(n.nspname, '^pg_'))"},
		{"where c.relname OPERATOR(pg_catalog.~) '^(weather)$' COLLATE pg_catalog.default",
			"where (regexp_matches(c.relname, '^(weather)$'))"},
		{"select 'abc' ~* 'B'", "select (regexp_matches('abc', 'B', 'i'))"},
		{"select 'x ~ ''y''' as lit", "select 'x ~ ''y''' as lit"},           // inside a literal: data
		{"select kind::text ~ 'a' from t", "select kind::text ~ 'a' from t"}, // a cast's type name: left as DuckDB reads it
		// A relation named by a string or a parameter is its oid.
		{"d.classoid = 'pg_class'::regclass", "d.classoid = regclass_oid('pg_class')"},
		{"d.classoid = CAST($3 AS REGCLASS)", "d.classoid = regclass_oid($3)"},
		{"d.classoid = CAST('pg_catalog.pg_class' AS REGCLASS)", "d.classoid = regclass_oid('pgcompat.pg_class')"}, // psycopg2 interpolates
		{"typinput = 'pg_catalog.array_in'::regproc", "typinput = 'array_in'"},
		{"col_description(CAST(CAST(format('%I.%I', CAST(c.table_schema AS TEXT), c.table_name) AS REGCLASS) AS OID), 1)",
			"col_description(CAST(regclass_oid(printf('%s.%s', CAST(c.table_schema AS TEXT), c.table_name)) AS BIGINT), 1)"},
		{"LEFT JOIN pg_stat_user_tables AS stat ON n.nspname = stat.schemaname", "LEFT JOIN pgcompat.pg_stat_user_tables AS stat ON n.nspname = stat.schemaname"},
		{"FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typname = 'pg_type'",
			"FROM pgcompat.pg_type t JOIN pgcompat.pg_namespace n ON n.oid = t.typnamespace WHERE t.typname = 'pg_type'"},
		{"select udt_name from information_schema.columns", "select udt_name from pgcompat.information_schema_columns"},
		{"(information_schema._pg_expandarray(i.indkey)).n", "(_pg_expandarray(i.indkey)).n"},
		// Catalogs DuckDB lacks or answers differently come from pgcompat.
		{"select * from pg_catalog.pg_attribute a join pg_catalog.pg_type t on a.atttypid = t.oid",
			"select * from pgcompat.pg_attribute a join pgcompat.pg_type t on a.atttypid = t.oid"},
		{"select pg_catalog.format_type(a.atttypid, a.atttypmod)", "select format_type(a.atttypid, a.atttypmod)"},
		// Plain queries pass untouched.
		{"select count(*) from raw.weather where rain_mm > $1", "select count(*) from raw.weather where rain_mm > $1"},
	} {
		if got := compat(tc.in); got != tc.want {
			t.Errorf("compat(%q)\n got %q\nwant %q", tc.in, got, tc.want)
		}
	}
}

// TestDeferredShape: DuckDB cannot bind "select $1 …" before it sees the
// parameter, so it prepares it with one placeholder column. Every way a
// client learns the shape must agree with the rows it then gets.
func TestDeferredShape(t *testing.T) {
	e := start(t, sqlaccess.DefaultConfig(), nil)
	c := e.connect(t, "analyst")
	ctx := context.Background()
	q := "select $1 as a, 2 as b, [3, 4] as l, TIMESTAMPTZ '2026-11-28 02:00:00Z' as t"

	// Parse, Bind, Describe portal, Execute (libpq, psycopg, pgJDBC's
	// first runs): the portal runs, and its description is what it returned.
	var a string
	var b int32
	var l []int32
	var ts time.Time
	if err := c.QueryRow(ctx, q, pgx.QueryExecModeExec, "x").Scan(&a, &b, &l, &ts); err != nil {
		t.Fatalf("portal describe: %v", err)
	}
	if a != "x" || b != 2 || len(l) != 2 || l[1] != 4 || !ts.Equal(time.Date(2026, 11, 28, 2, 0, 0, 0, time.UTC)) {
		t.Errorf("portal describe: %q %d %v %v", a, b, l, ts)
	}
	rows, err := c.Query(ctx, q, pgx.QueryExecModeExec, "y")
	if err != nil {
		t.Fatal(err)
	}
	fds := rows.FieldDescriptions()
	rows.Close()
	if len(fds) != 4 || fds[1].DataTypeOID != oidInt4 || fds[2].DataTypeOID != oidInt4Arr || fds[3].DataTypeOID != oidTimestamptz {
		t.Errorf("portal description: %+v", fds)
	}

	// Parse, Describe statement, then Bind/Execute without describing the
	// portal (pgx's cached statements, pgJDBC past prepareThreshold): the
	// columns are known from a LIMIT 0 probe, their types only with the
	// values, so they are described as text and sent as text.
	sd, err := c.Prepare(ctx, "deferred", q)
	if err != nil {
		t.Fatalf("prepare: %v", err)
	}
	if len(sd.Fields) != 4 || string(sd.Fields[0].Name) != "a" || sd.Fields[1].DataTypeOID != oidText {
		t.Errorf("statement description: %+v", sd.Fields)
	}
	for _, arg := range []string{"first", "second"} {
		var a, b, l, ts string
		if err := c.QueryRow(ctx, "deferred", arg).Scan(&a, &b, &l, &ts); err != nil {
			t.Fatalf("execute described statement: %v", err)
		}
		if a != arg || b != "2" || l != "{3,4}" || ts != "2026-11-28 10:00:00+08" {
			t.Errorf("described statement: %q %q %q %q", a, b, l, ts)
		}
	}

	// SQLAlchemy's get_columns statement (parameters inside json_build_object
	// and ANY(ARRAY[…]) make DuckDB defer it): all nine columns, every row.
	catalogQ := `select a.attname, json_build_object($1::VARCHAR, a.attnotnull) as j
		from pg_catalog.pg_attribute a join pg_catalog.pg_class c on c.oid = a.attrelid
		join pg_catalog.pg_namespace n on n.oid = c.relnamespace
		where c.relkind = ANY (ARRAY[$2::VARCHAR, $3::VARCHAR]) and n.nspname = $4::VARCHAR and c.relname in ($5::VARCHAR)
		order by a.attnum`
	args := []any{"nn", "r", "v", "raw", "weather"}
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeExec, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeDescribeExec} {
		rows, err := c.Query(ctx, catalogQ, append([]any{mode}, args...)...)
		if err != nil {
			t.Fatalf("catalog query (mode %v): %v", mode, err)
		}
		var names []string
		var j string
		for rows.Next() {
			var name string
			if err := rows.Scan(&name, &j); err != nil {
				t.Fatalf("mode %v: %v", mode, err)
			}
			names = append(names, name)
		}
		if rows.Err() != nil || len(names) != 15 || names[1] != "observed_at" || j != `{"nn":false}` {
			t.Errorf("catalog query with parameters (mode %v): %v %q %v", mode, names, j, rows.Err())
		}
	}
}

// TestCatalogTypesMatchWire: a column's type in pg_attribute/pg_type (what
// introspection shows) is the type its values come with (RowDescription).
func TestCatalogTypesMatchWire(t *testing.T) {
	e := start(t, sqlaccess.DefaultConfig(), nil)
	c := e.connect(t, "admin")
	ctx := context.Background()
	for _, table := range []string{"raw.weather", "raw.mobile_signal", "marts.warnings", "catalog.columns"} {
		ns, name, _ := strings.Cut(table, ".")
		rows, err := c.Query(ctx, `select a.attname, a.atttypid, t.typname, pg_catalog.format_type(a.atttypid, a.atttypmod)
			from pg_catalog.pg_attribute a join pg_catalog.pg_class c on c.oid = a.attrelid
			join pg_catalog.pg_namespace n on n.oid = c.relnamespace join pg_catalog.pg_type t on t.oid = a.atttypid
			where n.nspname = $1 and c.relname = $2 and a.attnum > 0 order by a.attnum`, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		type col struct {
			name, typname, format string
			oid                   uint32
		}
		var cat []col
		for rows.Next() {
			var k col
			var oid int64
			if err := rows.Scan(&k.name, &oid, &k.typname, &k.format); err != nil {
				t.Fatal(err)
			}
			k.oid = uint32(oid)
			cat = append(cat, k)
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		res, err := c.Query(ctx, "select * from "+table+" limit 0")
		if err != nil {
			t.Fatal(err)
		}
		fds := res.FieldDescriptions()
		res.Close()
		if len(cat) != len(fds) || len(cat) == 0 {
			t.Fatalf("%s: %d columns in pg_attribute (joined to pg_type), %d in a result", table, len(cat), len(fds))
		}
		for i, fd := range fds {
			if cat[i].name != fd.Name || cat[i].oid != fd.DataTypeOID || cat[i].format == "???" {
				t.Errorf("%s.%s: catalog %+v, wire type %d", table, fd.Name, cat[i], fd.DataTypeOID)
			}
		}
	}
}

// TestSQLAlchemyInspector runs what Superset runs when a dataset is added:
// SQLAlchemy 2's PostgreSQL dialect over psycopg 3, its Inspector's calls,
// then a query with bound parameters.
func TestSQLAlchemyInspector(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Python venv with psycopg and SQLAlchemy")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	py := pythonVenv(t, ctx)
	e := start(t, sqlaccess.DefaultConfig(), nil)
	host, port, _ := net.SplitHostPort(e.addr)
	script := `
import sys, sqlalchemy as sa, warnings
warnings.simplefilter("error")  # an unrecognised type is a failure, not a warning
eng = sa.create_engine(sys.argv[1])
insp = sa.inspect(eng)
print("default_schema", insp.default_schema_name)
print("schemas", insp.get_schema_names())
print("raw_tables", sorted(insp.get_table_names(schema="raw")))
print("marts_tables", sorted(insp.get_table_names(schema="marts")))
print("raw_views", insp.get_view_names(schema="raw"))
for schema, table in (("raw", "weather"), ("marts", "warnings")):
    for c in insp.get_columns(table, schema=schema):
        t = c["type"]
        print("column", schema + "." + table, c["name"], type(t).__name__, getattr(t, "timezone", ""), c["nullable"], c.get("comment"))
    print("pk", table, insp.get_pk_constraint(table, schema=schema)["constrained_columns"])
    print("fks", table, insp.get_foreign_keys(table, schema=schema))
    print("indexes", table, insp.get_indexes(table, schema=schema))
    print("unique", table, insp.get_unique_constraints(table, schema=schema))
    print("comment", table, insp.get_table_comment(table, schema=schema)["text"])
    print("has_table", table, insp.has_table(table, schema=schema))
with eng.connect() as c:
    r = c.execute(sa.text("select station, observed_at, cast(rain_mm as decimal(6,2)) as rain from raw.weather"
        " where station = :s and rain_mm > :r and observed_at >= :t order by observed_at limit 3"),
        {"s": "station-1", "r": 10, "t": "2026-11-28 12:00:00+00"})
    for row in r:
        print("row", row.station, row.observed_at.isoformat(), row.rain)
    # SQLAlchemy Core as Superset's explore builds it: a table reflected,
    # then a grouped select with a bound limit.
    w = sa.Table("warnings", sa.MetaData(), schema="marts", autoload_with=eng)
    q = sa.select(w.c.kind, sa.func.count().label("n")).group_by(w.c.kind).order_by(sa.desc("n"), w.c.kind).limit(2)
    print("grouped", [tuple(x) for x in c.execute(q)])
`
	// psycopg 3 sends parameters server-side (extended protocol); psycopg2
	// interpolates them and sends simple queries. The dialect's
	// statements are the same.
	for _, driver := range []string{"psycopg", "psycopg2"} {
		t.Run(driver, func(t *testing.T) {
			cmd := exec.CommandContext(ctx, py, "-c", script, "postgresql+"+driver+"://analyst:"+sqltest.Password+"@"+host+":"+port+"/citybrain")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("sqlalchemy: %v\n%s", err, out)
			}
			checkInspector(t, string(out))
		})
	}
}

func checkInspector(t *testing.T, out string) {
	for _, w := range []string{
		"schemas ['catalog', 'marts', 'raw']",
		"raw_tables ['mobile_signal', 'weather']",
		"marts_tables ['warnings']",
		"raw_views []",
		"column raw.weather station TEXT  True 观测站点 (Station name)",
		"column raw.weather observed_at TIMESTAMP True True 观测时间",
		"column raw.weather rain_mm DOUBLE_PRECISION  True 小时降水量",
		"column marts.warnings level INTEGER  True 等级 (Level)",
		"column marts.warnings raised_at TIMESTAMP True True 发布时间",
		"pk weather []", "fks weather []", "indexes weather []", "unique weather []",
		"pk warnings []", "fks warnings []", "indexes warnings []",
		"comment weather 气象与空气质量逐小时观测 (Hourly weather and air-quality observations)",
		"comment warnings 预警 (Warnings)",
		"has_table weather True",
		"row station-1 2026-11-28T21:00:00+08:00 13.50",
		"row station-1 2026-11-29T03:00:00+08:00 19.50",
		"grouped [('crowd', 2), ('lifeline', 1)]",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("sqlalchemy output lacks %q:\n%s", w, out)
		}
	}
	if n := strings.Count(out, "column raw.weather "); n != 15 {
		t.Errorf("raw.weather has %d columns in get_columns, want 15:\n%s", n, out)
	}
}

// pgJDBCVersion is the PostgreSQL JDBC driver the test fetches from Maven
// Central: the driver DBeaver and Metabase bundle.
const pgJDBCVersion = "42.7.14"

// pgJDBCJar fetches org.postgresql:postgresql into the test cache's Maven
// repository (testenv.MavenRepo) once and returns the jar's path.
func pgJDBCJar(t *testing.T, ctx context.Context) string {
	t.Helper()
	jar := filepath.Join(testenv.MavenRepo(), "org", "postgresql", "postgresql", pgJDBCVersion, "postgresql-"+pgJDBCVersion+".jar")
	if _, err := os.Stat(jar); err == nil {
		return jar
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		t.Fatal("Maven (mvn) is needed to fetch pgJDBC: apt-get install maven")
	}
	cmd := exec.CommandContext(ctx, mvn, "-q", "-B", "-Dmaven.repo.local="+testenv.MavenRepo(),
		"dependency:get", "-Dartifact=org.postgresql:postgresql:"+pgJDBCVersion, "-Dtransitive=false")
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("fetch pgJDBC %s with Maven: %v\n%s", pgJDBCVersion, err, out.String())
	}
	if _, err := os.Stat(jar); err != nil {
		t.Fatalf("Maven ran but %s is missing:\n%s", jar, out.String())
	}
	return jar
}

// TestPgJDBC runs testdata/Probe.java with pgJDBC: SCRAM login,
// DatabaseMetaData (schemas, tables, columns, keys, indexes: what generic
// JDBC tools read), pg_catalog statements of the kind DBeaver's navigator
// sends itself, the pg_catalog/information_schema statements of Metabase's
// sync (tables, fields, foreign keys, enums), and a prepared statement with
// string, int and timestamp parameters, read back as timestamptz and
// numeric, past the driver's prepareThreshold.
func TestPgJDBC(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Java with pgJDBC from Maven Central")
	}
	java, err := exec.LookPath("java")
	if err != nil {
		t.Fatal("java not found: apt-get install default-jdk-headless (Java 17+; internal/testenv/setup.sh checks for it)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	jar := pgJDBCJar(t, ctx)
	e := start(t, sqlaccess.DefaultConfig(), nil)
	run := func(user string, extra ...string) string {
		args := append([]string{"-cp", jar, "Probe.java", fmt.Sprintf("jdbc:postgresql://%s/citybrain", e.addr), user, sqltest.Password}, extra...)
		cmd := exec.CommandContext(ctx, java, args...)
		cmd.Dir = "testdata"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("pgJDBC probe as %s: %v\n%s", user, err, out)
		}
		return string(out)
	}
	out := run("analyst")
	for _, w := range []string{
		"product PostgreSQL 15",
		"schemas [catalog, marts, pg_catalog, raw]",
		"catalog citybrain",
		"table raw.weather TABLE remarks=气象与空气质量逐小时观测 (Hourly weather and air-quality observations)",
		"table raw.mobile_signal TABLE",
		"table marts.warnings TABLE remarks=预警 (Warnings)",
		"column raw.weather.station type=text sqltype=12 pos=1 remarks=观测站点 (Station name)",
		"column raw.weather.observed_at type=timestamptz sqltype=93 pos=2",
		"column raw.weather.rain_mm type=float8 sqltype=8 pos=12 remarks=小时降水量",
		"column raw.weather._cursor type=text sqltype=12 pos=15",
		"column marts.warnings.level type=int4 sqltype=4 pos=4 remarks=等级 (Level)",
		"column marts.warnings.raised_at type=timestamptz sqltype=93 pos=3",
		"primarykeys weather 0", "importedkeys weather 0", "exportedkeys weather 0", "indexes weather 0",
		"primarykeys warnings 0", "indexes warnings 0",
		"navigator schemas [catalog, marts, pg_catalog, raw]",
		"navigator table raw.weather kind=r description=气象与空气质量逐小时观测 (Hourly weather and air-quality observations) parents=null",
		"navigator column weather.observed_at typid=1184 typname=timestamptz description=观测时间",
		"navigator column weather.rain_mm typid=701 typname=float8 description=小时降水量 (Precipitation in the hour)",
		"navigator column weather.station typid=25 typname=text",
		"navigator constraints 0", "navigator indexes 0",
		"metabase table raw.weather TABLE description=气象与空气质量逐小时观测 (Hourly weather and air-quality observations)",
		"metabase table marts.warnings TABLE description=预警 (Warnings)",
		"metabase field warnings.raised_at type=timestamptz position=2 pk=false required=false comment=发布时间 (Raised at)",
		"metabase field warnings.level type=int4 position=3 pk=false required=false comment=等级 (Level)",
		"metabase field warnings.kind type=text position=1",
		"metabase fks 0", "metabase enums 0", "metabase timezone Asia/Shanghai",
		"resultmeta warning_id:text kind:text raised_at:timestamptz level:int4 _cursor:text",
		"literals 2026-11-28T02:00:00Z 12345.678 北京!",
		"refused 42501",
		"failures 0",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("pgJDBC output lacks %q:\n%s", w, out)
		}
	}
	want := "[station-1@2026-11-28T21:00+08:00=13.50, station-1@2026-11-29T00:00+08:00=16.50, station-1@2026-11-29T03:00+08:00=19.50]"
	for run := 1; run <= 7; run++ {
		if l := fmt.Sprintf("prepared run %d %s", run, want); !strings.Contains(out, l) {
			t.Errorf("pgJDBC output lacks %q:\n%s", l, out)
		}
	}
	// A department user's navigator shows only its scope.
	out = run("dept_water", "tables")
	if strings.Contains(out, "mobile_signal") || !strings.Contains(out, "table marts.warnings TABLE") || !strings.Contains(out, "failures 0") {
		t.Errorf("dept_water's metadata shows other tables or lacks its own:\n%s", out)
	}
}
