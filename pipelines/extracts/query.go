package extracts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"citybrain/internal/auth"
	"citybrain/warehouse"
)

// ErrScope: an extract reads a table its department may not see.
var ErrScope = errors.New("超出部门数据范围 outside the department's scope")

// suppressedCounts are the people counts of mobile signalling (and the
// crowd counts derived from it) that are blanked below the k-threshold.
var suppressedCounts = map[string][]string{
	"raw.mobile_signal": {"people_count", "inflow", "outflow"},
	"raw.crowd_counts":  {"people"},
}

// Plan is an extract's query, pinned to snapshots and confined to the
// department's scope.
type Plan struct {
	// SQL is what runs on the engine (time travel to Inputs).
	SQL string
	// Inputs is table → snapshot id.
	Inputs map[string]int64
	// PeriodStart, PeriodEnd are what :period_start and :period_end meant.
	PeriodStart, PeriodEnd time.Time
}

// planQuery builds the query of d for period, reading each input table at
// the snapshot asOf names (or its current one).
func planQuery(ctx context.Context, eng *warehouse.Engine, lake *warehouse.Lake, d Definition, sc auth.Scope, periodStart, period time.Time, asOf map[string]int64) (*Plan, error) {
	p := &Plan{Inputs: map[string]int64{}, PeriodStart: periodStart, PeriodEnd: period}
	params := func(s string) string {
		return strings.NewReplacer(
			":period_start", tsLiteral(periodStart),
			":period_end", tsLiteral(period),
		).Replace(s)
	}
	var tables []string
	if d.Source.Table != "" {
		tables = []string{strings.ToLower(d.Source.Table)}
	} else {
		// Parsed with the period filled in (":period_start" is not SQL).
		refs, err := referencedTables(ctx, eng, params(d.Source.SQL))
		if err != nil {
			return nil, err
		}
		tables = refs
	}
	if id, ok := asOf[""]; ok {
		if len(tables) != 1 {
			return nil, fmt.Errorf("extract %q 读取 %d 张表，请逐表指定快照 reads %d tables (%s); name them: --as-of %s=ID,…", d.Name, len(tables), len(tables), strings.Join(tables, ", "), tables[0])
		}
		asOf = map[string]int64{tables[0]: id}
	}
	for _, t := range tables {
		if _, ok := sc.Allows(t); !ok {
			return nil, fmt.Errorf("%w: 提取任务 %q 读取表 %s，部门 %s 无权访问 (extract %q reads %s, which department %s may not see; add it to auth.departments[%s].tables or change the extract)",
				ErrScope, d.Name, t, d.Department, d.Name, t, d.Department, d.Department)
		}
		if id, ok := asOf[t]; ok {
			p.Inputs[t] = id
			continue
		}
		tb, err := lake.Load(ctx, t)
		if err != nil {
			return nil, fmt.Errorf("extract %q: table %s: %w", d.Name, t, err)
		}
		snap := tb.CurrentSnapshot()
		if snap == nil {
			return nil, fmt.Errorf("extract %q: 表 %s 还没有数据 table %s has no snapshot yet; ingest it first", d.Name, t, t)
		}
		p.Inputs[t] = snap.SnapshotID
	}
	for t := range asOf {
		if _, ok := p.Inputs[t]; !ok {
			return nil, fmt.Errorf("extract %q: --as-of names %s, which the extract does not read (it reads %s)", d.Name, t, strings.Join(tables, ", "))
		}
	}
	scoped := func(t string) string {
		filter, _ := sc.Allows(t)
		sel := "*"
		if cols := suppressedCounts[t]; len(cols) > 0 && sc.Suppress > 0 {
			var rep []string
			for _, c := range cols {
				rep = append(rep, fmt.Sprintf("CASE WHEN %s < %d THEN NULL ELSE %s END AS %s", quoteIdent(c), sc.Suppress, quoteIdent(c), quoteIdent(c)))
			}
			sel = "* REPLACE (" + strings.Join(rep, ", ") + ")"
		}
		q := fmt.Sprintf("SELECT %s FROM %s AT (VERSION => %d)", sel, t, p.Inputs[t])
		if strings.TrimSpace(filter) != "" {
			q += " WHERE (" + filter + ")"
		}
		return "(" + q + ")"
	}
	if d.Source.Table != "" {
		t := tables[0]
		// Every column but the lake's own bookkeeping (_cursor: where a
		// record came from, for exactly-once writing).
		cols := "COLUMNS(c -> NOT starts_with(c, '_'))"
		if len(d.Columns) > 0 {
			qs := make([]string, len(d.Columns))
			for i, c := range d.Columns {
				qs[i] = quoteIdent(c)
			}
			cols = strings.Join(qs, ", ")
		}
		q := fmt.Sprintf("SELECT %s FROM %s AS %s", cols, scoped(t), quoteIdent(strings.SplitN(t, ".", 2)[1]))
		if d.Source.Where != "" {
			q += " WHERE (" + params(d.Source.Where) + ")"
		}
		order := d.OrderBy
		if len(order) == 0 {
			order = d.Columns
		}
		if len(order) == 0 {
			q += " ORDER BY ALL"
		} else {
			q += " ORDER BY " + strings.Join(order, ", ")
		}
		p.SQL = q
	} else {
		if !orderByRE.MatchString(d.Source.SQL) {
			return nil, fmt.Errorf("%w %q: SQL 来源需要 ORDER BY，以保证每次输出的字节相同 (a SQL source needs an ORDER BY so that re-runs are byte-identical)", ErrDefinition, d.Name)
		}
		p.SQL = replaceTableRefs(params(d.Source.SQL), scoped)
	}
	// Whatever the text looked like, what runs may read nothing but the
	// pinned, filtered snapshots: check the statement DuckDB will execute.
	final, err := eng.Rewrite(ctx, p.SQL)
	if err != nil {
		return nil, fmt.Errorf("extract %q: %w", d.Name, err)
	}
	if err := checkOnlySnapshots(ctx, eng, final); err != nil {
		return nil, fmt.Errorf("extract %q: %w", d.Name, err)
	}
	return p, nil
}

var orderByRE = regexp.MustCompile(`(?is)\border\s+by\b`)

func tsLiteral(t time.Time) string {
	return "TIMESTAMPTZ '" + t.Format("2006-01-02 15:04:05.000000-07:00") + "'"
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

var tableRefRE = regexp.MustCompile(`(?i)(^|[^A-Za-z0-9_."])(raw|marts)\.([a-z_][a-z0-9_]*)\b`)

// words after a table reference that are not an alias.
var notAlias = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`where join on group order limit left right inner full cross union except
		intersect having window qualify using natural lateral positional asof anti semi outer sample tablesample
		returning offset at`) {
		notAlias[w] = true
	}
}

var identRE = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*)`)

// replaceTableRefs replaces each raw.x / marts.x reference with sub(x),
// aliased as x unless the query gives its own alias.
func replaceTableRefs(q string, sub func(table string) string) string {
	var b strings.Builder
	last := 0
	for _, m := range tableRefRE.FindAllStringSubmatchIndex(q, -1) {
		start := m[4] // the schema group
		end := m[1]
		table := strings.ToLower(q[m[4]:m[5]] + "." + q[m[6]:m[7]])
		b.WriteString(q[last:start])
		b.WriteString(sub(table))
		rest := q[end:]
		alias := true
		if g := identRE.FindStringSubmatch(rest); g != nil {
			w := strings.ToLower(g[1])
			if w == "as" || !notAlias[w] {
				alias = false
			}
		}
		if strings.HasPrefix(strings.TrimSpace(rest), ".") {
			alias = false // a qualified column raw.t.c: leave it to fail loudly
		}
		if alias {
			b.WriteString(" AS " + quoteIdent(q[m[6]:m[7]]))
		}
		last = end
	}
	b.WriteString(q[last:])
	return b.String()
}

// serialized is the part of DuckDB's json_serialize_sql output we read.
type serialized struct {
	Error        bool            `json:"error"`
	ErrorMessage string          `json:"error_message"`
	Statements   json.RawMessage `json:"statements"`
}

// scanRefs walks a json_serialize_sql tree for table references, table
// functions and CTE names.
func scanRefs(v any, base map[string]bool, funcs map[string]bool, ctes map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		if typ, _ := x["type"].(string); typ == "BASE_TABLE" {
			cat, _ := x["catalog_name"].(string)
			sch, _ := x["schema_name"].(string)
			tbl, _ := x["table_name"].(string)
			name := strings.ToLower(tbl)
			if sch != "" {
				name = strings.ToLower(sch) + "." + name
			}
			if cat != "" {
				name = strings.ToLower(cat) + "." + name
			}
			base[name] = true
		} else if typ == "TABLE_FUNCTION" {
			if fn, ok := x["function"].(map[string]any); ok {
				n, _ := fn["function_name"].(string)
				funcs[strings.ToLower(n)] = true
			} else {
				funcs["?"] = true
			}
		}
		if cm, ok := x["cte_map"].(map[string]any); ok {
			if m, ok := cm["map"].([]any); ok {
				for _, e := range m {
					if em, ok := e.(map[string]any); ok {
						if k, ok := em["key"].(string); ok {
							ctes[strings.ToLower(k)] = true
						}
					}
				}
			}
		}
		for _, c := range x {
			scanRefs(c, base, funcs, ctes)
		}
	case []any:
		for _, c := range x {
			scanRefs(c, base, funcs, ctes)
		}
	}
}

func serialize(ctx context.Context, eng *warehouse.Engine, q string) (map[string]bool, map[string]bool, map[string]bool, error) {
	var js string
	if err := eng.DB().QueryRowContext(ctx, "SELECT CAST(json_serialize_sql('"+strings.ReplaceAll(q, "'", "''")+"') AS VARCHAR)").Scan(&js); err != nil {
		return nil, nil, nil, fmt.Errorf("parse SQL: %w", err)
	}
	var s serialized
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		return nil, nil, nil, fmt.Errorf("parse SQL: %w", err)
	}
	if s.Error {
		return nil, nil, nil, fmt.Errorf("%w: SQL 无法解析或不是单条 SELECT (the source must be one SELECT statement): %s", ErrDefinition, s.ErrorMessage)
	}
	var tree any
	if err := json.Unmarshal(s.Statements, &tree); err != nil {
		return nil, nil, nil, err
	}
	if l, ok := tree.([]any); !ok || len(l) != 1 {
		return nil, nil, nil, fmt.Errorf("%w: SQL 来源只能是一条 SELECT (the source must be exactly one SELECT statement)", ErrDefinition)
	}
	base, funcs, ctes := map[string]bool{}, map[string]bool{}, map[string]bool{}
	scanRefs(tree, base, funcs, ctes)
	return base, funcs, ctes, nil
}

// referencedTables lists the lake tables a SELECT reads; anything else it
// reads (files through table functions, other catalogs) is refused.
func referencedTables(ctx context.Context, eng *warehouse.Engine, q string) ([]string, error) {
	base, funcs, ctes, err := serialize(ctx, eng, q)
	if err != nil {
		return nil, err
	}
	if len(funcs) > 0 {
		return nil, fmt.Errorf("%w: SQL 来源不能调用表函数 (the source may read lake tables only, not table functions such as %s)", ErrScope, strings.Join(keys(funcs), ", "))
	}
	var out []string
	for t := range base {
		if ctes[t] {
			continue
		}
		parts := strings.Split(t, ".")
		if len(parts) != 2 || (parts[0] != "raw" && parts[0] != "marts") {
			return nil, fmt.Errorf("%w: 只能读取 raw.* 或 marts.* 表 (the source may read raw.* and marts.* tables only, named schema.table without quotes; got %s)", ErrScope, t)
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: SQL 来源没有读取任何表 (the source reads no raw.* or marts.* table)", ErrDefinition)
	}
	sort.Strings(out)
	return out, nil
}

// checkOnlySnapshots verifies that a rewritten statement reads only
// Parquet files (the pinned snapshots) and its own CTEs.
func checkOnlySnapshots(ctx context.Context, eng *warehouse.Engine, q string) error {
	base, funcs, ctes, err := serialize(ctx, eng, q)
	if err != nil {
		return err
	}
	for f := range funcs {
		if f != "read_parquet" {
			return fmt.Errorf("%w: table function %s", ErrScope, f)
		}
	}
	for t := range base {
		if !ctes[t] {
			return fmt.Errorf("%w: 引用 %s 未能限定到部门范围与快照 (the reference %s could not be confined to the department's rows and snapshot; write it as schema.table without quotes)", ErrScope, t, t)
		}
	}
	return nil
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ParseAsOf reads a snapshot pin: a snapshot id (for an extract reading one
// table) or table=id pairs separated by commas.
func ParseAsOf(s string, d Definition) (map[string]int64, error) {
	out := map[string]int64{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		t, v, named := strings.Cut(part, "=")
		if !named {
			t, v = "", part
		}
		id, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--as-of %q: 需要快照编号 want a snapshot id or table=id,… (see `citybrain tables --snapshots TABLE` or a delivery's manifest)", s)
		}
		out[strings.ToLower(strings.TrimSpace(t))] = id
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--as-of is empty")
	}
	return out, nil
}
