//go:build !duckdb_arrow

package extracts

// readRows is database/sql: this binary is built without the duckdb_arrow
// tag, so DuckDB's Arrow interface is not compiled in.
var readRows source = readSQL

// Reader names how this binary reads query results.
const Reader = "database/sql (built without the duckdb_arrow tag)"
