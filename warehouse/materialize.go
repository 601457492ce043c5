package warehouse

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	"github.com/apache/iceberg-go/table"
)

// MaterializeMode says how a query's result replaces what a table holds.
type MaterializeMode int

const (
	// MaterializeReplace overwrites the whole table (a full refresh).
	MaterializeReplace MaterializeMode = iota
	// MaterializeAppend adds the rows to what the table holds.
	MaterializeAppend
	// MaterializeOverwritePartitions replaces the partitions (values of
	// PartitionBy) that the result has rows for and keeps the others: an
	// incremental run by date, or a backfill of some days.
	MaterializeOverwritePartitions
)

func (m MaterializeMode) String() string {
	switch m {
	case MaterializeReplace:
		return "replace"
	case MaterializeAppend:
		return "append"
	case MaterializeOverwritePartitions:
		return "overwrite-partitions"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// MaterializeSpec is one materialisation of a DuckDB query as an Iceberg table.
type MaterializeSpec struct {
	// Table is "ns.name", e.g. "marts.enterprise_risk". It is created (with
	// its namespace) when missing.
	Table string
	// Query is a DuckDB SELECT run on the caller's database.
	Query string
	Mode  MaterializeMode
	// PartitionBy is a DATE column the table is partitioned by (identity);
	// required for MaterializeOverwritePartitions, optional otherwise. It
	// applies when the table is created.
	PartitionBy string
	// Doc is the table's comment (zh / en), set on every commit.
	Doc string
	// Reread says Query only reads a stored DuckDB table, so it is read
	// again for each step instead of being copied into a temporary table
	// first (the copy pays off only for queries that compute).
	Reread bool
	// Summary is added to the snapshot summary (model name, the snapshot
	// ids of the inputs …), so a snapshot says what produced it.
	Summary map[string]string
}

// MaterializeResult is what one Materialize committed.
type MaterializeResult struct {
	// SnapshotID is the new snapshot (0 when nothing changed: an empty
	// result into an empty table, or an append of no rows).
	SnapshotID int64
	Rows       int64
	Files      int
	Bytes      int64
	// Removed is how many data files the snapshot replaced.
	Removed int
	// Write is the time spent running the query and writing the data
	// files (with their statistics); Commit the time spent planning the
	// replaced files and committing the snapshot.
	Write, Commit time.Duration
}

// ErrMaterialize: a query result cannot be stored in the table (bad spec,
// or a column type change Iceberg cannot evolve).
var ErrMaterialize = errors.New("materialize")

// column is one result column: its name, the DuckDB type it is written as
// and the Iceberg type it is stored as.
type column struct {
	name string
	cast string
	typ  iceberg.Type
}

// Materialize runs spec.Query on db, writes the result as Parquet data files
// into the table's data directory, evolves the table's schema to the
// result's columns (new columns are added; a full replace drops columns the
// result no longer has) and commits one snapshot: overwrite, append or
// partition overwrite. The commit holds the table's lock; files written for
// a failed commit are removed.
func (l *Lake) Materialize(ctx context.Context, db *sql.DB, spec MaterializeSpec) (MaterializeResult, error) {
	var res MaterializeResult
	if spec.Mode == MaterializeOverwritePartitions && spec.PartitionBy == "" {
		return res, fmt.Errorf("%w %s: overwrite-partitions needs PartitionBy (a DATE column)", ErrMaterialize, spec.Table)
	}
	ident := Ident(spec.Table)
	if len(ident) != 2 {
		return res, fmt.Errorf("%w: table %q: want ns.name", ErrMaterialize, spec.Table)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	cols, err := describeQuery(ctx, conn, spec.Query)
	if err != nil {
		return res, fmt.Errorf("materialize %s: %w", spec.Table, err)
	}
	if spec.PartitionBy != "" {
		found := false
		for _, c := range cols {
			if c.name == spec.PartitionBy {
				if _, ok := c.typ.(iceberg.DateType); !ok {
					return res, fmt.Errorf("%w %s: partition column %s must be a DATE, is %s", ErrMaterialize, spec.Table, c.name, c.typ)
				}
				found = true
			}
		}
		if !found {
			return res, fmt.Errorf("%w %s: the result has no partition column %s", ErrMaterialize, spec.Table, spec.PartitionBy)
		}
	}

	unlock := l.lock(spec.Table)
	defer unlock()
	t, err := l.ensureDerived(ctx, spec, cols)
	if err != nil {
		return res, err
	}

	tx := t.NewTransaction()
	if err := tx.AssertRefSnapshotID(table.MainBranch); err != nil {
		return res, fmt.Errorf("materialize %s: %w", spec.Table, err)
	}
	sc, err := evolveSchema(tx, t.Schema(), cols, spec.Mode == MaterializeReplace)
	if err != nil {
		return res, fmt.Errorf("%w %s: %v (run a full refresh to rebuild it)", ErrMaterialize, spec.Table, err)
	}
	if spec.Doc != "" && t.Properties()["comment"] != spec.Doc {
		if err := tx.SetProperties(iceberg.Properties{"comment": spec.Doc}); err != nil {
			return res, err
		}
	}

	// The result is computed once into a temporary table: partitioned
	// writes read it once per partition, and the row count comes free.
	tmp := "__materialize_" + randHex(6)
	kind := "TABLE"
	if spec.Reread {
		kind = "VIEW"
	}
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("CREATE TEMP %s %s AS SELECT %s FROM (%s) AS q", kind, tmp, castList(cols), spec.Query)); err != nil {
		return res, fmt.Errorf("materialize %s: run query: %w", spec.Table, err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DROP "+kind+" IF EXISTS "+tmp)

	var parts []sql.NullTime
	if spec.PartitionBy != "" {
		rows, err := conn.QueryContext(ctx, fmt.Sprintf("SELECT DISTINCT %s FROM %s ORDER BY 1", quoteIdent(spec.PartitionBy), tmp))
		if err != nil {
			return res, err
		}
		for rows.Next() {
			var d sql.NullTime
			if err := rows.Scan(&d); err != nil {
				rows.Close()
				return res, err
			}
			parts = append(parts, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, err
		}
	} else {
		parts = []sql.NullTime{{}}
	}

	writeStart := time.Now()
	var written []string
	cleanup := func() {
		for _, u := range written {
			l.removeFile(context.WithoutCancel(ctx), u)
		}
	}
	var news []iceberg.DataFile
	batch := time.Now().UTC().Format("20060102T150405") + "-" + randHex(4)
	for i, p := range parts {
		where, rel := "", ""
		var partVal any
		if spec.PartitionBy != "" {
			if p.Valid {
				day := p.Time.UTC().Format(time.DateOnly)
				where = fmt.Sprintf(" WHERE %s = DATE '%s'", quoteIdent(spec.PartitionBy), day)
				rel = spec.PartitionBy + "=" + day + "/"
				partVal = iceberg.Date(int32(p.Time.UTC().Unix() / 86400))
			} else {
				where = fmt.Sprintf(" WHERE %s IS NULL", quoteIdent(spec.PartitionBy))
				rel = spec.PartitionBy + "=null/"
			}
		}
		rel += fmt.Sprintf("%s-%05d.parquet", batch, i)
		df, n, err := l.writeDataFile(ctx, conn, t, sc, spec, tmp+where, rel, partVal)
		if err != nil {
			cleanup()
			return res, fmt.Errorf("materialize %s: %w", spec.Table, err)
		}
		if df == nil {
			continue
		}
		written = append(written, df.FilePath())
		news = append(news, df)
		res.Rows += n
		res.Bytes += df.FileSizeBytes()
	}
	res.Files = len(news)
	commitStart := time.Now()
	res.Write = commitStart.Sub(writeStart)

	var olds []iceberg.DataFile
	if spec.Mode != MaterializeAppend && t.CurrentSnapshot() != nil {
		tasks, err := t.Scan().PlanFiles(ctx)
		if err != nil {
			cleanup()
			return res, fmt.Errorf("materialize %s: plan files: %w", spec.Table, err)
		}
		replaced := map[string]bool{}
		for _, p := range parts {
			if p.Valid {
				replaced[p.Time.UTC().Format(time.DateOnly)] = true
			}
		}
		for _, task := range tasks {
			if spec.Mode == MaterializeOverwritePartitions && !replaced[partitionDay(task.File)] {
				continue
			}
			olds = append(olds, task.File)
		}
	}
	res.Removed = len(olds)
	if len(olds) == 0 && len(news) == 0 {
		// Nothing to change; a schema or comment change is still committed.
		if _, err := tx.Commit(l.ioCtx(ctx)); err != nil {
			return res, fmt.Errorf("materialize %s: %w", spec.Table, err)
		}
		res.Commit = time.Since(commitStart)
		return res, nil
	}
	props := iceberg.Properties{"citybrain.materialize": spec.Mode.String()}
	for k, v := range spec.Summary {
		props[k] = v
	}
	if len(olds) == 0 {
		err = tx.AddDataFiles(ctx, news, props)
	} else {
		err = tx.ReplaceDataFilesWithDataFiles(ctx, olds, news, props)
	}
	if err != nil {
		cleanup()
		return res, fmt.Errorf("materialize %s: %w", spec.Table, err)
	}
	nt, err := tx.Commit(l.ioCtx(ctx))
	if err != nil {
		cleanup()
		if l.lostRace(ctx, spec.Table, t, err) {
			return res, fmt.Errorf("%w: %s: %v", ErrConflict, spec.Table, err)
		}
		return res, fmt.Errorf("materialize %s: %w", spec.Table, err)
	}
	res.SnapshotID = nt.CurrentSnapshot().SnapshotID
	res.Commit = time.Since(commitStart)
	l.log.Debug("table materialized", "table", spec.Table, "snapshot", res.SnapshotID, "rows", res.Rows,
		"files", res.Files, "replaced", res.Removed, "mode", spec.Mode.String())
	return res, nil
}

// partitionDay is a data file's identity-date partition value as
// YYYY-MM-DD ("" when unpartitioned).
func partitionDay(f iceberg.DataFile) string {
	for _, v := range f.Partition() {
		switch d := v.(type) {
		case iceberg.Date:
			return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
		case int32:
			return time.Unix(int64(d)*86400, 0).UTC().Format(time.DateOnly)
		}
	}
	return ""
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// describeQuery asks DuckDB for the result columns of query.
func describeQuery(ctx context.Context, conn *sql.Conn, query string) ([]column, error) {
	rows, err := conn.QueryContext(ctx, "DESCRIBE "+query)
	if err != nil {
		return nil, fmt.Errorf("describe query: %w", err)
	}
	defer rows.Close()
	names, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var cols []column
	seen := map[string]bool{}
	for rows.Next() {
		vals := make([]any, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		name, _ := vals[0].(string)
		typ, _ := vals[1].(string)
		if seen[strings.ToLower(name)] {
			return nil, fmt.Errorf("%w: column %q appears twice in the result", ErrMaterialize, name)
		}
		seen[strings.ToLower(name)] = true
		cols = append(cols, mapDuckType(name, typ))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("%w: the query returns no columns", ErrMaterialize)
	}
	return cols, nil
}

// mapDuckType maps a DuckDB result type onto the Iceberg type it is stored
// as; types Iceberg (or the query layer) has no use for are widened
// (DECIMAL → DOUBLE, small ints → INTEGER) or written as text (lists,
// structs, maps, intervals …).
func mapDuckType(name, t string) column {
	u := strings.ToUpper(t)
	switch {
	case u == "VARCHAR":
		return column{name, "VARCHAR", iceberg.PrimitiveTypes.String}
	case u == "BOOLEAN":
		return column{name, "BOOLEAN", iceberg.PrimitiveTypes.Bool}
	case u == "TINYINT" || u == "SMALLINT" || u == "INTEGER" || u == "UTINYINT" || u == "USMALLINT":
		return column{name, "INTEGER", iceberg.PrimitiveTypes.Int32}
	case u == "BIGINT" || u == "UINTEGER" || u == "UBIGINT" || u == "HUGEINT" || u == "UHUGEINT":
		return column{name, "BIGINT", iceberg.PrimitiveTypes.Int64}
	case u == "FLOAT":
		return column{name, "FLOAT", iceberg.PrimitiveTypes.Float32}
	case u == "DOUBLE" || strings.HasPrefix(u, "DECIMAL"):
		return column{name, "DOUBLE", iceberg.PrimitiveTypes.Float64}
	case u == "DATE":
		return column{name, "DATE", iceberg.PrimitiveTypes.Date}
	case u == "TIMESTAMP WITH TIME ZONE":
		return column{name, "TIMESTAMPTZ", iceberg.PrimitiveTypes.TimestampTz}
	case strings.HasPrefix(u, "TIMESTAMP"):
		return column{name, "TIMESTAMP", iceberg.PrimitiveTypes.Timestamp}
	}
	return column{name, "VARCHAR", iceberg.PrimitiveTypes.String}
}

func castList(cols []column) string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = fmt.Sprintf("CAST(%s AS %s) AS %s", quoteIdent(c.name), c.cast, quoteIdent(c.name))
	}
	return strings.Join(out, ", ")
}

func derivedSchema(cols []column) *iceberg.Schema {
	fields := make([]iceberg.NestedField, len(cols))
	for i, c := range cols {
		fields[i] = iceberg.NestedField{ID: i + 1, Name: c.name, Type: c.typ}
	}
	return iceberg.NewSchema(0, fields...)
}

// ensureDerived loads the table, creating it (and its namespace) from the
// result's columns when missing.
func (l *Lake) ensureDerived(ctx context.Context, spec MaterializeSpec, cols []column) (*table.Table, error) {
	ident := Ident(spec.Table)
	if t, err := l.cat.LoadTable(ctx, ident); err == nil {
		return t, nil
	} else if !errors.Is(err, catalog.ErrNoSuchTable) {
		return nil, fmt.Errorf("load table %s: %w", spec.Table, err)
	}
	if err := l.cat.CreateNamespace(ctx, ident[:1], iceberg.Properties{}); err != nil && !errors.Is(err, catalog.ErrNamespaceAlreadyExists) {
		return nil, fmt.Errorf("create namespace %s: %w", ident[0], err)
	}
	sc := derivedSchema(cols)
	spc := *iceberg.UnpartitionedSpec
	if spec.PartitionBy != "" {
		f, _ := sc.FindFieldByName(spec.PartitionBy)
		spc = iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{f.ID}, FieldID: 1000, Name: spec.PartitionBy, Transform: iceberg.IdentityTransform{}})
	}
	props := iceberg.Properties{
		"format-version":                  "2",
		"write.parquet.compression-codec": "zstd",
		"citybrain.materialized":          "true",
	}
	if spec.Doc != "" {
		props["comment"] = spec.Doc
	}
	opts := []catalog.CreateTableOpt{catalog.WithPartitionSpec(&spc), catalog.WithProperties(props)}
	if l.cfg.Catalog == "sql" || l.store != nil {
		opts = append(opts, catalog.WithLocation(l.tableLocation(ident)))
	}
	t, err := l.cat.CreateTable(ctx, ident, sc, opts...)
	if errors.Is(err, catalog.ErrTableAlreadyExists) {
		return l.cat.LoadTable(ctx, ident)
	}
	if err != nil {
		return nil, fmt.Errorf("create table %s: %w", spec.Table, err)
	}
	l.log.Info("table created", "table", spec.Table, "location", t.Location())
	return t, nil
}

// evolveSchema stages, in tx, the schema changes that make cur hold cols:
// new columns are added, widened types promoted, and (when drop) columns
// the result no longer has are deleted. It returns the schema the data
// files are written with.
func evolveSchema(tx *table.Transaction, cur *iceberg.Schema, cols []column, drop bool) (*iceberg.Schema, error) {
	// A narrower result type is written as the table's wider one.
	for i, c := range cols {
		f, ok := cur.FindFieldByName(c.name)
		if !ok {
			continue
		}
		switch {
		case f.Type.Equals(iceberg.PrimitiveTypes.Int64) && c.typ.Equals(iceberg.PrimitiveTypes.Int32):
			cols[i] = column{c.name, "BIGINT", f.Type}
		case f.Type.Equals(iceberg.PrimitiveTypes.Float64) && c.typ.Equals(iceberg.PrimitiveTypes.Float32):
			cols[i] = column{c.name, "DOUBLE", f.Type}
		}
	}
	want := derivedSchema(cols)
	same := len(cur.Fields()) == len(cols)
	for i, c := range cols {
		if !same {
			break
		}
		f := cur.Fields()[i]
		same = f.Name == c.name && f.Type.Equals(c.typ)
	}
	if same {
		return cur, nil
	}
	us := tx.UpdateSchema(true, false).UnionByNameWith(want)
	if drop {
		for _, f := range cur.Fields() {
			if _, ok := want.FindFieldByName(f.Name); !ok {
				us = us.DeleteColumn([]string{f.Name})
			}
		}
	}
	if err := us.Commit(); err != nil {
		return nil, err
	}
	st, err := tx.StagedTable()
	if err != nil {
		return nil, err
	}
	sc := st.Schema()
	for _, c := range cols {
		f, ok := sc.FindFieldByName(c.name)
		if !ok || !f.Type.Equals(c.typ) {
			return nil, fmt.Errorf("column %s is %v in the table and %v in the result", c.name, f.Type, c.typ)
		}
	}
	return sc, nil
}

// writeDataFile copies the rows of from (a table name with an optional
// WHERE) into the data file rel and describes it for the manifest; it
// returns nil when there are no rows.
func (l *Lake) writeDataFile(ctx context.Context, conn *sql.Conn, t *table.Table, sc *iceberg.Schema, spec MaterializeSpec, from, rel string, partVal any) (iceberg.DataFile, int64, error) {
	fields := sc.Fields()
	var sel, ids []string
	var kept []iceberg.NestedField
	for _, f := range fields {
		ids = append(ids, fmt.Sprintf("%s: %d", quoteIdent(f.Name), f.ID))
		kept = append(kept, f)
		sel = append(sel, quoteIdent(f.Name))
	}
	// Columns the table keeps but the result lacks (append / partition
	// overwrite after a column was dropped from the model) are NULL.
	have, err := tableColumns(ctx, conn, strings.Fields(from)[0])
	if err != nil {
		return nil, 0, err
	}
	for i, f := range kept {
		if !have[f.Name] {
			sel[i] = fmt.Sprintf("CAST(NULL AS %s) AS %s", duckType(f.Type), quoteIdent(f.Name))
		}
	}
	uri := dataURI(t, rel)
	local := l.stagePath(uri)
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return nil, 0, err
	}
	tmp := local + ".tmp"
	q := fmt.Sprintf("COPY (SELECT %s FROM %s) TO %s (FORMAT parquet, COMPRESSION zstd, FIELD_IDS {%s})",
		strings.Join(sel, ", "), from, quoteString(tmp), strings.Join(ids, ", "))
	if _, err := conn.ExecContext(ctx, q); err != nil {
		os.Remove(tmp)
		return nil, 0, fmt.Errorf("write %s: %w", rel, err)
	}
	exprs := []string{"count(*)"}
	for _, f := range kept {
		if have[f.Name] {
			exprs = append(exprs, "count("+quoteIdent(f.Name)+")")
		} else {
			exprs = append(exprs, "0")
		}
	}
	var bounded []iceberg.NestedField
	for _, f := range kept {
		switch f.Type.(type) {
		case iceberg.Int32Type, iceberg.Int64Type, iceberg.DateType, iceberg.TimestampTzType, iceberg.TimestampType:
			if have[f.Name] {
				bounded = append(bounded, f)
			}
		}
	}
	for _, f := range bounded {
		var v string
		switch f.Type.(type) {
		case iceberg.DateType:
			v = "date_diff('day', DATE '1970-01-01', " + quoteIdent(f.Name) + ")"
		case iceberg.TimestampTzType, iceberg.TimestampType:
			v = "epoch_us(" + quoteIdent(f.Name) + ")"
		default:
			v = "CAST(" + quoteIdent(f.Name) + " AS BIGINT)"
		}
		exprs = append(exprs, "min("+v+")", "max("+v+")")
	}
	var rows int64
	counts := make([]int64, len(kept))
	bounds := make([]sql.NullInt64, 2*len(bounded))
	dest := []any{&rows}
	for i := range counts {
		dest = append(dest, &counts[i])
	}
	for i := range bounds {
		dest = append(dest, &bounds[i])
	}
	// Counts and bounds come from the rows just written (the temp table,
	// not the file: cheaper, and the same rows).
	if err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT %s FROM %s", strings.Join(exprs, ", "), from)).Scan(dest...); err != nil {
		os.Remove(tmp)
		return nil, 0, fmt.Errorf("describe %s: %w", rel, err)
	}
	if rows == 0 {
		os.Remove(tmp)
		return nil, 0, nil
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return nil, 0, err
	}
	if err := os.Rename(tmp, local); err != nil {
		os.Remove(tmp)
		return nil, 0, err
	}
	fi, err := os.Stat(local)
	if err != nil {
		return nil, 0, err
	}
	if err := l.publish(ctx, uri); err != nil {
		os.Remove(local)
		return nil, 0, fmt.Errorf("upload %s: %w", uri, err)
	}
	part, logical := map[int]any{}, map[int]string{}
	spc := t.Spec()
	if partVal != nil && spc.NumFields() > 0 {
		pf := spc.Field(0)
		part[pf.FieldID] = partVal
		logical[pf.FieldID] = "date"
	} else if spc.NumFields() > 0 {
		part[spc.Field(0).FieldID] = nil
	}
	b, err := iceberg.NewDataFileBuilder(spc, iceberg.EntryContentData, uri, iceberg.ParquetFile, part, logical, nil, rows, fi.Size())
	if err != nil {
		l.removeFile(context.WithoutCancel(ctx), uri)
		return nil, 0, fmt.Errorf("describe %s: %w", rel, err)
	}
	values, nulls := map[int]int64{}, map[int]int64{}
	for i, f := range kept {
		values[f.ID] = rows
		nulls[f.ID] = rows - counts[i]
	}
	b.ValueCounts(values).NullValueCounts(nulls)
	lo, hi := map[int][]byte{}, map[int][]byte{}
	for i, f := range bounded {
		mn, mx := bounds[2*i], bounds[2*i+1]
		if mn.Valid && mx.Valid {
			lo[f.ID], hi[f.ID] = encodeBound(f.Type, mn.Int64), encodeBound(f.Type, mx.Int64)
		}
	}
	if len(lo) > 0 {
		b.LowerBoundValues(lo).UpperBoundValues(hi)
	}
	return b.Build(), rows, nil
}

// tableColumns is the set of column names of a DuckDB table.
func tableColumns(ctx context.Context, conn *sql.Conn, name string) (map[string]bool, error) {
	rows, err := conn.QueryContext(ctx, "SELECT column_name FROM (DESCRIBE "+name+")")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out[n] = true
	}
	return out, rows.Err()
}

// SnapshotSQL is the SELECT that reads one snapshot (nil: the current one)
// of a table with the table's column types: what the query layer's views
// and time travel read. Callers that pin inputs (the model runner) build
// their own views from it. On an object store the files are fetched into
// the cache and stay pinned there for pinGrace.
func (l *Lake) SnapshotSQL(ctx context.Context, t *table.Table, snap *table.Snapshot) (string, error) {
	src, release, err := l.snapshotSource(ctx, t, snap)
	if err != nil {
		return "", err
	}
	time.AfterFunc(pinGrace, release)
	return src, nil
}

// SortedSummary renders summary properties in a stable order (for logs).
func SortedSummary(p map[string]string) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s ", k, p[k])
	}
	return strings.TrimSpace(b.String())
}
