package sqlaccess

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"citybrain/internal/auth"
	"citybrain/schemas"
)

// splitDoc splits a "中文 / English" or "中文 (English)" label.
func splitDoc(s string) schemas.Text { return schemas.SplitBilingual(s) }

type tableDoc struct {
	doc  schemas.Text
	cols map[string]schemas.Text
	unit map[string]string
}

// docs collects descriptions: canonical schemas for raw.* (and
// audit.queries), the Iceberg table comment and column docs for the rest
// (the models set them on marts.*).
// They are cached per table and read again when the table is refreshed.
func (a *Access) docs(ctx context.Context, table string) tableDoc {
	f := a.follow()
	f.mu.Lock()
	d, ok := f.docs[table]
	f.mu.Unlock()
	if ok {
		return d
	}
	d = a.loadDocs(ctx, table)
	f.mu.Lock()
	f.docs[table] = d
	f.mu.Unlock()
	return d
}

// loadDocs reads a table's descriptions.
func (a *Access) loadDocs(ctx context.Context, table string) tableDoc {
	d := tableDoc{cols: map[string]schemas.Text{}, unit: map[string]string{}}
	var sch *schemas.Schema
	t, terr := a.lake.Load(ctx, table)
	switch {
	case table == AuditTable:
		sch, _ = AuditSchema()
	case terr == nil && t.Properties()["citybrain.schema"] != "":
		// The canonical schema the table was created from.
		if a.reg != nil {
			sch, _ = a.reg.Get(t.Properties()["citybrain.schema"])
		}
	case a.reg != nil:
		for _, n := range a.reg.Names() {
			if s, err := a.reg.Get(n); err == nil && s.Table == table {
				sch = s
			}
		}
	}
	if sch != nil {
		d.doc = sch.Doc
		for _, f := range sch.Fields {
			d.cols[f.Name] = f.Doc
			d.unit[f.Name] = f.Unit
		}
	}
	if terr == nil {
		if c := t.Properties()["comment"]; c != "" && sch == nil {
			d.doc = splitDoc(c)
		}
		for _, f := range t.Schema().Fields() {
			if _, ok := d.cols[f.Name]; !ok && f.Doc != "" {
				d.cols[f.Name] = splitDoc(f.Doc)
			}
		}
	}
	d.cols[schemas.CursorField] = schemas.Text{ZH: "来源游标（文件与行号、页码或水位）", EN: "Source cursor the record came from (file and line, page token or watermark)"}
	return d
}

// catalogRE finds a statement that reads the catalog schema (catalog.x or
// "catalog".x, not pg_catalog.x).
var catalogRE = regexp.MustCompile(`(?i)(^|[^a-z0-9_"])"?catalog"?\s*\.`)

// ensureCatalog rebuilds the catalog tables before q runs when views changed
// since they were built and q reads them ("" for every caller that reads them).
func (b *sandbox) ensureCatalog(ctx context.Context, q string) error {
	if !b.catalogStale.Load() || (q != "" && !catalogRE.MatchString(q)) {
		return nil
	}
	return b.buildCatalog(ctx)
}

// buildCatalog (re)creates catalog.tables and catalog.columns with the
// tables this sandbox shows.
func (b *sandbox) buildCatalog(ctx context.Context) error {
	b.catalogMu.Lock()
	defer b.catalogMu.Unlock()
	// Cleared before reading the views: a refresh from now on marks it again.
	b.catalogStale.Store(false)
	if err := b.writeCatalog(ctx); err != nil {
		b.catalogStale.Store(true)
		return err
	}
	return nil
}

func (b *sandbox) writeCatalog(ctx context.Context) error {
	b.mu.Lock()
	var names []string
	for t := range b.views {
		names = append(names, t)
	}
	b.mu.Unlock()
	info := b.a.cachedInfo(ctx, names)
	type colType struct{ name, typ string }
	cols := map[string][]colType{}
	rows, err := b.db.QueryContext(ctx, `SELECT table_schema || '.' || table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema NOT IN ('main', 'catalog', 'information_schema', 'pg_catalog') ORDER BY table_schema, table_name, ordinal_position`)
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	for rows.Next() {
		var t, c, ty string
		if err := rows.Scan(&t, &c, &ty); err != nil {
			rows.Close()
			return err
		}
		cols[t] = append(cols[t], colType{c, ty})
	}
	rows.Close()
	var tv, cv []string
	for _, t := range names {
		d := b.a.docs(ctx, t)
		ns, name, _ := strings.Cut(t, ".")
		rowsN, snap, committed := "NULL", "NULL", "NULL"
		if in, ok := info[t]; ok {
			// Under a row filter the table's row count would count the rows the
			// filter hides: NULL (count(*) the view instead).
			if f, _ := b.scope.Allows(t); f == "" {
				rowsN = fmt.Sprint(in.Rows)
			}
			if in.SnapshotID != 0 {
				snap = fmt.Sprint(in.SnapshotID)
				committed = "TIMESTAMPTZ " + quoteString(in.Committed.Format(time.RFC3339Nano))
			}
		}
		tv = append(tv, fmt.Sprintf("(%s, %s, %s, %s, %s, %s, %s, %s)", quoteString(t), quoteString(ns), quoteString(name),
			quoteString(d.doc.ZH), quoteString(d.doc.EN), rowsN, snap, committed))
		for i, c := range cols[t] {
			cd := d.cols[c.name]
			cv = append(cv, fmt.Sprintf("(%s, %s, %d, %s, %s, %s, %s)", quoteString(t), quoteString(c.name), i+1, quoteString(c.typ),
				quoteString(cd.ZH), quoteString(cd.EN), quoteString(d.unit[c.name])))
		}
	}
	stmts := []string{
		`CREATE OR REPLACE TABLE catalog.tables (table_name VARCHAR, namespace VARCHAR, name VARCHAR, description_zh VARCHAR, description_en VARCHAR, "rows" BIGINT, snapshot_id BIGINT, last_commit TIMESTAMPTZ)`,
		`CREATE OR REPLACE TABLE catalog.columns (table_name VARCHAR, column_name VARCHAR, ordinal INTEGER, data_type VARCHAR, description_zh VARCHAR, description_en VARCHAR, unit VARCHAR)`,
		`COMMENT ON TABLE catalog.tables IS '可查询的表及其说明 (tables you may query, with descriptions)'`,
		`COMMENT ON TABLE catalog.columns IS '各表字段说明 (columns of the tables you may query, with descriptions)'`,
	}
	if len(tv) > 0 {
		stmts = append(stmts, "INSERT INTO catalog.tables VALUES "+strings.Join(tv, ", "))
	}
	if len(cv) > 0 {
		stmts = append(stmts, "INSERT INTO catalog.columns VALUES "+strings.Join(cv, ", "))
	}
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, s := range stmts {
		if _, err := tx.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
	}
	return tx.Commit()
}

// CatalogTable is one row of catalog.tables.
type CatalogTable struct {
	Table         string     `json:"table"`
	Namespace     string     `json:"namespace"`
	Name          string     `json:"name"`
	DescriptionZH string     `json:"description_zh"`
	DescriptionEN string     `json:"description_en"`
	Rows          *int64     `json:"rows"`
	SnapshotID    *int64     `json:"snapshot_id"`
	LastCommit    *time.Time `json:"last_commit"`
}

// CatalogColumn is one row of catalog.columns.
type CatalogColumn struct {
	Table         string `json:"table"`
	Column        string `json:"column"`
	Ordinal       int    `json:"ordinal"`
	DataType      string `json:"type"`
	DescriptionZH string `json:"description_zh"`
	DescriptionEN string `json:"description_en"`
	Unit          string `json:"unit,omitempty"`
}

// Catalog is what a user may query, with descriptions.
type Catalog struct {
	Tables  []CatalogTable  `json:"tables"`
	Columns []CatalogColumn `json:"columns"`
}

// Catalog reads catalog.tables and catalog.columns of the user's sandbox
// (not audited: it is the console's table list).
func (a *Access) Catalog(ctx context.Context, u auth.User) (Catalog, error) {
	b, err := a.box(ctx, u)
	if err != nil {
		return Catalog{}, err
	}
	if err := b.ensureCatalog(ctx, ""); err != nil {
		return Catalog{}, err
	}
	cat := Catalog{Tables: []CatalogTable{}, Columns: []CatalogColumn{}}
	rows, err := b.db.QueryContext(ctx, `SELECT table_name, namespace, name, description_zh, description_en, "rows", snapshot_id, last_commit FROM catalog.tables ORDER BY table_name`)
	if err != nil {
		return cat, err
	}
	for rows.Next() {
		var t CatalogTable
		if err := rows.Scan(&t.Table, &t.Namespace, &t.Name, &t.DescriptionZH, &t.DescriptionEN, &t.Rows, &t.SnapshotID, &t.LastCommit); err != nil {
			rows.Close()
			return cat, err
		}
		cat.Tables = append(cat.Tables, t)
	}
	rows.Close()
	rows, err = b.db.QueryContext(ctx, `SELECT table_name, column_name, ordinal, data_type, description_zh, description_en, unit FROM catalog.columns ORDER BY table_name, ordinal`)
	if err != nil {
		return cat, err
	}
	defer rows.Close()
	for rows.Next() {
		var c CatalogColumn
		if err := rows.Scan(&c.Table, &c.Column, &c.Ordinal, &c.DataType, &c.DescriptionZH, &c.DescriptionEN, &c.Unit); err != nil {
			return cat, err
		}
		cat.Columns = append(cat.Columns, c)
	}
	return cat, rows.Err()
}
