package extracts

import (
	"context"
	"testing"
)

// DuckDB's streaming reader gives the bytes that database/sql gives: every
// format, PII rules, nulls, and the column types the streaming reader
// handles (the others fall back to database/sql).
func TestReadersAgree(t *testing.T) {
	e := newEnv(t)
	var defs []Definition
	for _, f := range [][2]string{{"csv", ""}, {"csv", "gb18030"}, {"parquet", ""}, {"xlsx", ""}} {
		d := incidentsDef("agree-"+f[0]+f[1], "east", f[0], f[1])
		d.PII = []PIIRule{{Column: "address", Action: "mask"}, {Column: "title", Action: "hash"}, {Column: "category", Action: "drop"}}
		defs = append(defs, d)
		typed := Definition{Name: "agree-types-" + f[0] + f[1], Department: "east", Format: f[0], Encoding: f[1],
			Source: Source{SQL: `SELECT id, CAST(received_at AS DATE) AS day, CAST(received_at AS TIMESTAMP) AS ts,
				CAST(received_at AS TIMESTAMP_NS) AS ts_ns, latitude IS NULL AS no_lat, CAST(length(title) AS INTEGER) AS n,
				CAST(longitude AS FLOAT) AS lon32, CAST(7 AS TINYINT) AS t8, CAST(200 AS UTINYINT) AS u8,
				CAST(latitude * 1000 AS BIGINT) AS lat_milli
				FROM raw.incidents ORDER BY id`},
			PII: []PIIRule{{Column: "lat_milli", Action: "mask"}, {Column: "day", Action: "hash"}}}
		defs = append(defs, typed)
	}
	// A DECIMAL or HUGEINT column: read with database/sql by both.
	defs = append(defs, Definition{Name: "agree-decimal", Department: "east", Format: "csv",
		Source: Source{SQL: "SELECT id, CAST(latitude AS DECIMAL(9,4)) AS lat, CAST(length(id) AS HUGEINT) AS h FROM raw.incidents ORDER BY id"}})
	r := e.runner(t, defs...)
	ctx := context.Background()
	t.Logf("reader: %s", Reader)
	for _, d := range defs {
		built, err := r.Run(ctx, d.Name, RunOptions{Period: period, NoDeliver: true})
		if err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		saved := readRows
		readRows = readSQL
		viaSQL, err := r.Run(ctx, d.Name, RunOptions{Period: period, NoDeliver: true})
		readRows = saved
		if err != nil {
			t.Fatalf("%s (database/sql): %v", d.Name, err)
		}
		if built.SHA256 != viaSQL.SHA256 || built.Rows != viaSQL.Rows || built.Rows != 250 {
			t.Errorf("%s: %s gave %s (%d rows), database/sql %s (%d rows)", d.Name, Reader, built.SHA256, built.Rows, viaSQL.SHA256, viaSQL.Rows)
		}
		for i, c := range built.Columns {
			if c != viaSQL.Columns[i] {
				t.Errorf("%s: column %d is %v, database/sql says %v", d.Name, i, c, viaSQL.Columns[i])
			}
		}
	}
}
