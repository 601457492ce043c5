package warehouse

// Statement file pruning: a statement reads only the data files its
// filters can match.
//
// A view reads every data file of its table's current snapshot; DuckDB
// then skips row groups by their Parquet statistics, but it still opens
// every file — and on an object store every file must first be fetched into
// the cache. Iceberg's manifests already say, per file, its partition and
// its columns' lower and upper bounds, so a statement that filters a table
// (`WHERE observed_at >= '2026-11-28 10:00'`) need not touch files whose
// bounds exclude the filter.
//
// The engine parses each statement with DuckDB's own parser
// (json_serialize_sql), and for each reference to a lake table (raw.* or
// marts.*, not time travel, not sampled) takes the conditions of the
// WHERE of the SELECT that reads it that compare one of the table's columns
// with constants: =, <, <=, >, >=, BETWEEN, IN, joined by AND and OR.
// Unqualified columns count when the table is the SELECT's only FROM item;
// in a join, only columns qualified by the table's alias. Every other
// condition is left out, which only keeps more files: pruning never drops a
// file whose rows the statement could return. The conditions are evaluated
// against the snapshot's remembered manifest entries (snapshotDataFiles: no
// manifest is read again per statement):
//
//   - a column's lower/upper bounds (those Iceberg writers record: the event
//     time, for citybrain's own writers; every column for Spark's), missing
//     bounds meaning "may match";
//   - else a day or identity partition of that column;
//   - a file whose column is all null matches no comparison;
//   - floating-point bounds are used only when the file records no NaN
//     (DuckDB orders NaN above every number, Iceberg's bounds leave it out).
//
// When the files that may match are fewer than all of them, the reference
// is replaced in the statement's text, at the position DuckDB's parser gave
// (checked against the text), by a SELECT over those files — the view's own
// SELECT over fewer files, with the same columns and types. Constants are
// read as DuckDB reads them: strings compared with a TIMESTAMPTZ column in
// the engine's zone (Asia/Shanghai).

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/big"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
)

// tableRef is one reference to a lake table in a statement, with the
// conditions on it that its SELECT's WHERE states.
type tableRef struct {
	at     int    // byte offset of the reference in the statement
	name   string // schema.table, lower case
	alias  string // as written, "" when none
	where  any    // the WHERE clause of the SELECT that reads it (AST)
	single bool   // the table is that SELECT's only FROM item
}

// cond is a condition a file's manifest entry can answer: a leaf compares
// a column with constants, and/or combine conditions.
type cond struct {
	and, or []cond
	field   iceberg.NestedField
	op      string // = < <= > >= in
	vals    []any  // int64 | float64 | string, as the column's bounds decode
}

// statementRefs parses a statement and lists its references to lake
// tables. ok is false when DuckDB cannot parse it as one statement.
func (e *Engine) statementRefs(ctx context.Context, query string) (refs []tableRef, ok bool) {
	var js string
	if err := e.db.QueryRowContext(ctx, "SELECT CAST(json_serialize_sql("+quoteString(query)+") AS VARCHAR)").Scan(&js); err != nil {
		return nil, false
	}
	var parsed struct {
		Error      bool            `json:"error"`
		Statements json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal([]byte(js), &parsed); err != nil || parsed.Error {
		return nil, false
	}
	var stmts []any
	if err := json.Unmarshal(parsed.Statements, &stmts); err != nil || len(stmts) != 1 {
		return nil, false
	}
	walkSelects(stmts[0], &refs)
	return refs, true
}

// walkSelects finds every SELECT node and the lake tables its FROM reads
// directly (or through joins).
func walkSelects(n any, refs *[]tableRef) {
	switch x := n.(type) {
	case map[string]any:
		if x["type"] == "SELECT_NODE" {
			var bases []map[string]any
			from, _ := x["from_table"].(map[string]any)
			fromBases(from, &bases)
			single := from != nil && from["type"] == "BASE_TABLE"
			for _, b := range bases {
				schema, _ := b["schema_name"].(string)
				name, _ := b["table_name"].(string)
				cat, _ := b["catalog_name"].(string)
				loc, okLoc := b["query_location"].(float64)
				schema = strings.ToLower(schema)
				if cat != "" || (schema != "raw" && schema != "marts") || b["at_clause"] != nil || b["sample"] != nil || !okLoc {
					continue
				}
				alias, _ := b["alias"].(string)
				*refs = append(*refs, tableRef{at: int(loc), name: schema + "." + strings.ToLower(name), alias: alias, where: x["where_clause"], single: single})
			}
		}
		for _, v := range x {
			walkSelects(v, refs)
		}
	case []any:
		for _, v := range x {
			walkSelects(v, refs)
		}
	}
}

func fromBases(n map[string]any, out *[]map[string]any) {
	if n == nil {
		return
	}
	switch n["type"] {
	case "BASE_TABLE":
		*out = append(*out, n)
	case "JOIN":
		l, _ := n["left"].(map[string]any)
		r, _ := n["right"].(map[string]any)
		fromBases(l, out)
		fromBases(r, out)
	}
}

// condOf turns a WHERE clause into the condition it implies on one table
// reference (ok false: nothing usable).
func condOf(n any, ref tableRef, sc *iceberg.Schema) (cond, bool) {
	x, _ := n.(map[string]any)
	if x == nil {
		return cond{}, false
	}
	children, _ := x["children"].([]any)
	switch x["type"] {
	case "CONJUNCTION_AND":
		var c cond
		for _, ch := range children {
			if cc, ok := condOf(ch, ref, sc); ok {
				c.and = append(c.and, cc)
			}
		}
		return c, len(c.and) > 0
	case "CONJUNCTION_OR":
		var c cond
		for _, ch := range children {
			cc, ok := condOf(ch, ref, sc)
			if !ok {
				return cond{}, false // one unknown branch: anything may match
			}
			c.or = append(c.or, cc)
		}
		return c, len(c.or) > 0
	case "COMPARE_EQUAL", "COMPARE_LESSTHAN", "COMPARE_LESSTHANOREQUALTO", "COMPARE_GREATERTHAN", "COMPARE_GREATERTHANOREQUALTO":
		op := map[any]string{"COMPARE_EQUAL": "=", "COMPARE_LESSTHAN": "<", "COMPARE_LESSTHANOREQUALTO": "<=", "COMPARE_GREATERTHAN": ">", "COMPARE_GREATERTHANOREQUALTO": ">="}[x["type"]]
		col, cst := x["left"], x["right"]
		f, ok := refColumn(col, ref, sc)
		if !ok {
			// constant on the left: flip the comparison
			if f, ok = refColumn(cst, ref, sc); !ok {
				return cond{}, false
			}
			col, cst = cst, col
			op = map[string]string{"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
		}
		v, ok := constOf(cst, f.Type)
		if !ok {
			return cond{}, false
		}
		return cond{field: f, op: op, vals: []any{v}}, true
	case "COMPARE_BETWEEN":
		f, ok := refColumn(x["input"], ref, sc)
		if !ok {
			return cond{}, false
		}
		lo, ok1 := constOf(x["lower"], f.Type)
		hi, ok2 := constOf(x["upper"], f.Type)
		if !ok1 || !ok2 {
			return cond{}, false
		}
		return cond{and: []cond{{field: f, op: ">=", vals: []any{lo}}, {field: f, op: "<=", vals: []any{hi}}}}, true
	case "COMPARE_IN":
		if len(children) < 2 {
			return cond{}, false
		}
		f, ok := refColumn(children[0], ref, sc)
		if !ok {
			return cond{}, false
		}
		c := cond{field: f, op: "in"}
		for _, ch := range children[1:] {
			v, ok := constOf(ch, f.Type)
			if !ok {
				return cond{}, false
			}
			c.vals = append(c.vals, v)
		}
		return c, true
	}
	return cond{}, false
}

// refColumn: n is a column of the referenced table.
func refColumn(n any, ref tableRef, sc *iceberg.Schema) (iceberg.NestedField, bool) {
	x, _ := n.(map[string]any)
	if x == nil || x["class"] != "COLUMN_REF" {
		return iceberg.NestedField{}, false
	}
	parts, _ := x["column_names"].([]any)
	names := make([]string, 0, len(parts))
	for _, p := range parts {
		s, _ := p.(string)
		names = append(names, strings.ToLower(s))
	}
	schema, table, _ := strings.Cut(ref.name, ".")
	switch len(names) {
	case 1:
		if !ref.single {
			return iceberg.NestedField{}, false
		}
	case 2:
		if q := strings.ToLower(ref.alias); names[0] != q && (q != "" || names[0] != table) {
			return iceberg.NestedField{}, false
		}
	case 3:
		if ref.alias != "" || names[0] != schema || names[1] != table {
			return iceberg.NestedField{}, false
		}
	default:
		return iceberg.NestedField{}, false
	}
	f, ok := sc.FindFieldByNameCaseInsensitive(names[len(names)-1])
	return f, ok
}

// constOf reads a constant (or a cast of one) as a value of the column's
// type, the way DuckDB would compare it; ok false when unsure.
func constOf(n any, t iceberg.Type) (any, bool) {
	x, _ := n.(map[string]any)
	if x == nil {
		return nil, false
	}
	if x["class"] == "CAST" {
		ct, _ := x["cast_type"].(map[string]any)
		switch id, _ := ct["id"].(string); id {
		case "TIMESTAMP WITH TIME ZONE", "TIMESTAMP", "DATE", "VARCHAR":
			switch t.(type) {
			case iceberg.TimestampTzType, iceberg.TimestampType, iceberg.DateType:
				if c, ok := x["child"].(map[string]any); ok && c["class"] == "CONSTANT" {
					v, ok := constValue(c)
					if s, isStr := v.(string); ok && isStr {
						return timeConst(s, id, t)
					}
				}
			}
		}
		return nil, false
	}
	if x["class"] != "CONSTANT" {
		return nil, false
	}
	v, ok := constValue(x)
	if !ok {
		return nil, false
	}
	switch t.(type) {
	case iceberg.StringType:
		s, ok := v.(string)
		return s, ok
	case iceberg.Int32Type, iceberg.Int64Type:
		r, ok := v.(*big.Rat)
		if !ok || !r.IsInt() || !r.Num().IsInt64() {
			return nil, false
		}
		return r.Num().Int64(), true
	case iceberg.Float64Type, iceberg.Float32Type:
		r, ok := v.(*big.Rat)
		if !ok {
			return nil, false
		}
		f, _ := r.Float64()
		return f, true
	case iceberg.TimestampTzType, iceberg.TimestampType, iceberg.DateType:
		if s, ok := v.(string); ok {
			return timeConst(s, "VARCHAR", t)
		}
	}
	return nil, false
}

// constValue is a CONSTANT's value: a string, or a number as an exact
// rational (DECIMAL constants carry their scale).
func constValue(x map[string]any) (any, bool) {
	val, _ := x["value"].(map[string]any)
	if val == nil || val["is_null"] == true {
		return nil, false
	}
	typ, _ := val["type"].(map[string]any)
	id, _ := typ["id"].(string)
	switch id {
	case "VARCHAR":
		s, ok := val["value"].(string)
		return s, ok
	case "INTEGER", "BIGINT", "SMALLINT", "TINYINT", "UINTEGER", "UBIGINT", "USMALLINT", "UTINYINT", "HUGEINT", "DOUBLE", "FLOAT":
		return ratOf(val["value"], 0)
	case "DECIMAL":
		info, _ := typ["type_info"].(map[string]any)
		scale, _ := info["scale"].(float64)
		return ratOf(val["value"], int(scale))
	}
	return nil, false
}

func ratOf(v any, scale int) (any, bool) {
	var r big.Rat
	switch n := v.(type) {
	case float64:
		if math.IsNaN(n) || math.IsInf(n, 0) {
			return nil, false
		}
		r.SetFloat64(n)
	case string:
		if _, ok := r.SetString(n); !ok {
			return nil, false
		}
	default:
		return nil, false
	}
	if scale > 0 {
		r.Quo(&r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
	}
	return &r, true
}

// timeConst reads a date/time string cast to (or compared with) a
// time-typed column: µs since the epoch for timestamps, days for dates.
func timeConst(s, castTo string, t iceberg.Type) (any, bool) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return nil, false
	}
	var ts time.Time
	switch castTo {
	case "DATE":
		d, err := time.ParseInLocation("2006-01-02", strings.TrimSpace(s), time.UTC)
		if err != nil {
			return nil, false
		}
		ts = d
		if _, tz := t.(iceberg.TimestampTzType); tz {
			// a date compared with a TIMESTAMPTZ is its midnight in the engine's zone
			ts = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, shanghai)
		}
	default:
		loc := shanghai
		if _, naive := t.(iceberg.TimestampTzType); !naive {
			loc = time.UTC
		}
		parsed, ok := parseDuckTime(strings.TrimSpace(s), loc)
		if !ok {
			return nil, false
		}
		if _, naive := t.(iceberg.TimestampTzType); !naive && parsed.hasZone {
			return nil, false // DuckDB's reading of an offset into a naive type: not ours to guess
		}
		ts = parsed.t
	}
	switch t.(type) {
	case iceberg.DateType:
		if castTo != "DATE" && (ts.Hour() != 0 || ts.Minute() != 0 || ts.Second() != 0 || ts.Nanosecond() != 0) {
			return nil, false
		}
		return int64(time.Date(ts.Year(), ts.Month(), ts.Day(), 0, 0, 0, 0, time.UTC).Unix() / 86400), true
	default:
		return ts.UnixMicro(), true
	}
}

type duckTime struct {
	t       time.Time
	hasZone bool
}

var zoneSuffixRE = regexp.MustCompile(`([+-]\d{2}(:?\d{2})?|Z)$`)

// parseDuckTime reads the timestamp forms analysts write: date, date and
// time (space or T, optional fraction), optional offset.
func parseDuckTime(s string, loc *time.Location) (duckTime, bool) {
	zone := zoneSuffixRE.MatchString(s) && strings.ContainsAny(s, ": T")
	layouts := []string{"2006-01-02 15:04:05.999999", "2006-01-02T15:04:05.999999", "2006-01-02 15:04", "2006-01-02"}
	if zone {
		layouts = []string{"2006-01-02 15:04:05.999999Z07", "2006-01-02 15:04:05.999999Z07:00", "2006-01-02T15:04:05.999999Z07:00", "2006-01-02T15:04:05.999999Z07", "2006-01-02 15:04Z07", "2006-01-02 15:04Z07:00"}
	}
	for _, l := range layouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return duckTime{t: t, hasZone: zone}, true
		}
	}
	return duckTime{}, false
}

// mayMatch: the file's manifest entry does not rule the condition out.
func (c cond) mayMatch(f iceberg.DataFile, parts map[int]partBound) bool {
	switch {
	case len(c.and) > 0:
		for _, a := range c.and {
			if !a.mayMatch(f, parts) {
				return false
			}
		}
		return true
	case len(c.or) > 0:
		for _, o := range c.or {
			if o.mayMatch(f, parts) {
				return true
			}
		}
		return false
	}
	id := c.field.ID
	if n, ok := f.NullValueCounts()[id]; ok {
		if v, ok := f.ValueCounts()[id]; ok && v > 0 && n == v {
			return false // every value is null: no comparison holds
		}
	}
	lo, hi, ok := fileBounds(f, c.field, parts)
	if !ok {
		return true
	}
	for _, v := range c.vals {
		clo, chi := compareBound(v, lo), compareBound(v, hi)
		switch c.op {
		case "=", "in":
			if clo >= 0 && chi <= 0 {
				return true
			}
		case "<":
			if clo > 0 {
				return true
			}
		case "<=":
			if clo >= 0 {
				return true
			}
		case ">":
			if chi < 0 {
				return true
			}
		case ">=":
			if chi <= 0 {
				return true
			}
		}
	}
	return false
}

// partBound is what a file's partition value says of a source column:
// every value lies in [lo, hi].
type partBound struct {
	transform string // identity | day
	fieldID   int    // partition field id
}

// fileBounds are the file's lower and upper bounds of a column, decoded
// (int64, float64 or []byte); from its partition when the manifest entry
// records none.
func fileBounds(f iceberg.DataFile, field iceberg.NestedField, parts map[int]partBound) (lo, hi any, ok bool) {
	id := field.ID
	if _, isFloat := field.Type.(iceberg.Float64Type); isFloat || field.Type.Equals(iceberg.PrimitiveTypes.Float32) {
		if n, known := f.NaNValueCounts()[id]; !known || n > 0 {
			return nil, nil, false
		}
	}
	lb, okl := f.LowerBoundValues()[id]
	ub, oku := f.UpperBoundValues()[id]
	if okl && oku {
		lo, ok1 := decodeBound(lb, field.Type)
		hi, ok2 := decodeBound(ub, field.Type)
		if ok1 && ok2 {
			return lo, hi, true
		}
	}
	p, ok := parts[id]
	if !ok {
		return nil, nil, false
	}
	v, ok := f.Partition()[p.fieldID]
	if !ok || v == nil {
		return nil, nil, false
	}
	switch p.transform {
	case "day":
		var days int64
		switch d := v.(type) {
		case iceberg.Date:
			days = int64(d)
		case int32:
			days = int64(d)
		case int64:
			days = d
		case int:
			days = int64(d)
		case time.Time:
			days = d.Unix() / 86400
		default:
			return nil, nil, false
		}
		switch field.Type.(type) {
		case iceberg.TimestampTzType, iceberg.TimestampType:
			return days * 86_400_000_000, (days+1)*86_400_000_000 - 1, true
		case iceberg.DateType:
			return days, days, true
		}
	case "identity":
		switch x := v.(type) {
		case string:
			return []byte(x), []byte(x), true
		case int32:
			return int64(x), int64(x), true
		case int64:
			return x, x, true
		}
	}
	return nil, nil, false
}

// decodeBound reads a bound in Iceberg's single-value binary form.
func decodeBound(b []byte, t iceberg.Type) (any, bool) {
	switch t.(type) {
	case iceberg.Int32Type, iceberg.DateType:
		if len(b) != 4 {
			return nil, false
		}
		return int64(int32(binary.LittleEndian.Uint32(b))), true
	case iceberg.Int64Type, iceberg.TimestampTzType, iceberg.TimestampType:
		if len(b) != 8 {
			return nil, false
		}
		return int64(binary.LittleEndian.Uint64(b)), true
	case iceberg.Float64Type:
		if len(b) != 8 {
			return nil, false
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), true
	case iceberg.Float32Type:
		if len(b) != 4 {
			return nil, false
		}
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), true
	case iceberg.StringType:
		return b, true // UTF-8; a truncated upper bound is rounded up by the writer
	}
	return nil, false
}

// compareBound compares a condition's value with a decoded bound.
func compareBound(v, b any) int {
	switch x := v.(type) {
	case int64:
		return cmp.Compare(x, b.(int64))
	case float64:
		return cmp.Compare(x, b.(float64))
	case string:
		return bytes.Compare([]byte(x), b.([]byte))
	}
	return 0
}

// partitionBounds maps source column ids to the partition fields that
// bound them, for one partition spec.
func partitionBounds(spec iceberg.PartitionSpec) map[int]partBound {
	out := map[int]partBound{}
	for _, f := range spec.Fields() {
		switch f.Transform.(type) {
		case iceberg.DayTransform:
			out[f.SourceID()] = partBound{transform: "day", fieldID: f.FieldID}
		case iceberg.IdentityTransform:
			out[f.SourceID()] = partBound{transform: "identity", fieldID: f.FieldID}
		}
	}
	return out
}

// pruneFiles keeps the data files that may hold rows matching c.
func pruneFiles(t *table.Table, files []iceberg.DataFile, c cond) []string {
	specs := map[int32]map[int]partBound{}
	for _, s := range t.Metadata().PartitionSpecs() {
		specs[int32(s.ID())] = partitionBounds(s)
	}
	var keep []string
	for _, f := range files {
		if c.mayMatch(f, specs[f.SpecID()]) {
			keep = append(keep, f.FilePath())
		}
	}
	return keep
}

// refTextRE matches a table reference as written at its position.
var refTextRE = regexp.MustCompile(`^(?i)("[^"]+"|[a-z_][a-z0-9_]*)\s*\.\s*("[^"]+"|[a-z_][a-z0-9_]*)`)

// pruneStatement replaces the statement's references to lake tables whose
// filters rule out some of the current snapshot's files by a SELECT over
// the files that remain. scope, when set, wraps that SELECT (a FROM item
// with the table's alias) in a user's scope, and says whether the user may
// read the table at all (false: the reference is left as written). tables
// are the tables as the caller loaded them (loaded again when missing).
// A statement DuckDB cannot parse is returned unchanged.
func (e *Engine) pruneStatement(ctx context.Context, query string, loaded map[string]*table.Table, scope func(table, from string) (string, bool)) (string, error) {
	if !tableRefRE.MatchString(query) {
		return query, nil
	}
	refs, ok := e.statementRefs(ctx, query)
	if !ok || len(refs) == 0 {
		return query, nil
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].at > refs[j].at }) // replace from the end
	out := query
	for _, ref := range refs {
		if ref.where == nil || ref.at < 0 || ref.at >= len(query) {
			continue
		}
		m := refTextRE.FindStringSubmatch(query[ref.at:])
		if m == nil || strings.ToLower(strings.Trim(m[1], `"`)+"."+strings.Trim(m[2], `"`)) != ref.name {
			continue // the parser's position does not point at the name: leave it
		}
		t := loaded[ref.name]
		if t == nil {
			var err error
			if t, err = e.lake.Load(ctx, ref.name); err != nil {
				continue // the view reports it
			}
		}
		c, ok := condOf(ref.where, ref, t.Schema())
		if !ok || (ref.alias == "" && threePart(query, ref.name)) {
			continue // a column written raw.t.col would not bind to the replacement
		}
		all, err := e.lake.snapshotDataFiles(ctx, t, nil)
		if err != nil {
			return "", err
		}
		keep := pruneFiles(t, all, c)
		if len(keep) == len(all) {
			continue
		}
		src, release, err := e.lake.filesSource(ctx, t.Schema(), keep)
		if err != nil {
			return "", err
		}
		if e.lake.Remote() {
			time.AfterFunc(pinGrace, release) // local files need no pin
		}
		e.lake.prunedFiles.Add(int64(len(all) - len(keep)))
		_, name, _ := strings.Cut(ref.name, ".")
		from := "(" + src + ")"
		if scope != nil {
			wrapped, ok := scope(ref.name, from+" AS "+quoteIdent(name))
			if !ok {
				continue
			}
			from = "(" + wrapped + ")"
		}
		if ref.alias == "" {
			from += " AS " + quoteIdent(name)
		}
		out = out[:ref.at] + from + out[ref.at+len(m[0]):]
	}
	return out, nil
}

// threePart: the statement names a column as schema.table.column.
func threePart(query, name string) bool {
	schema, table, _ := strings.Cut(name, ".")
	re := regexp.MustCompile(`(?i)\b"?` + regexp.QuoteMeta(schema) + `"?\s*\.\s*"?` + regexp.QuoteMeta(table) + `"?\s*\.`)
	return re.MatchString(query)
}

// PruneStatement is pruneStatement for the SQL layer's sandboxes (see
// the package's statement pruning): scope wraps the pruned SELECT of a
// table in the user's scope.
func (e *Engine) PruneStatement(ctx context.Context, query string, scope func(table, from string) (string, bool)) (string, error) {
	return e.pruneStatement(ctx, query, nil, scope)
}
