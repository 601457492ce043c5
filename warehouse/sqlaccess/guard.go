package sqlaccess

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrRefused: the sandbox refused a statement (match with errors.Is).
var ErrRefused = errors.New("refused by the SQL sandbox")

// Error is a statement error with its PostgreSQL SQLSTATE, so the wire
// server reports the same class of error PostgreSQL would.
type Error struct {
	// Code is the SQLSTATE: 42501 refused, 42601 syntax, 42P01 no table,
	// 57014 cancelled or timed out, 53200 out of memory, XX000 other.
	Code string
	Msg  string
	err  error
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.err }

// SQLState is the error's SQLSTATE.
func (e *Error) SQLState() string { return e.Code }

func refused(format string, a ...any) error {
	return &Error{Code: "42501", Msg: "拒绝执行 refused: " + fmt.Sprintf(format, a...), err: ErrRefused}
}

// refusedKeywords say why a statement kind is refused.
var refusedKeywords = map[string]string{
	"COPY":              "COPY 导出/导入文件不允许 (COPY … TO/FROM files is not allowed; use /api/sql?format=csv or \\copy on the client side)",
	"ATTACH":            "ATTACH 其他数据库不允许 (attaching databases is not allowed)",
	"DETACH":            "DETACH 不允许 (not allowed)",
	"INSTALL":           "INSTALL 扩展不允许 (installing extensions is not allowed)",
	"LOAD":              "LOAD 扩展不允许 (loading extensions is not allowed)",
	"FORCE":             "INSTALL 扩展不允许 (installing extensions is not allowed)",
	"SET":               "SET 修改设置不允许 (changing settings is not allowed)",
	"RESET":             "RESET 修改设置不允许 (changing settings is not allowed)",
	"PRAGMA":            "PRAGMA 不允许 (PRAGMA statements are not allowed)",
	"EXPORT":            "EXPORT DATABASE 不允许 (exporting is not allowed)",
	"IMPORT":            "IMPORT DATABASE 不允许 (importing is not allowed)",
	"CALL":              "CALL 不允许 (CALL is not allowed)",
	"CREATE":            "只读：不能创建对象 (read-only: CREATE is not allowed)",
	"INSERT":            "只读：不能写入 (read-only: INSERT is not allowed)",
	"UPDATE":            "只读：不能修改 (read-only: UPDATE is not allowed)",
	"DELETE":            "只读：不能删除 (read-only: DELETE is not allowed)",
	"DROP":              "只读：不能删除对象 (read-only: DROP is not allowed)",
	"ALTER":             "只读：不能修改对象 (read-only: ALTER is not allowed)",
	"TRUNCATE":          "只读：不能清空 (read-only: TRUNCATE is not allowed)",
	"MERGE":             "只读：不能写入 (read-only: MERGE is not allowed)",
	"USE":               "USE 不允许 (switching databases is not allowed)",
	"CHECKPOINT":        "CHECKPOINT 不允许 (not allowed)",
	"VACUUM":            "VACUUM 不允许 (not allowed)",
	"ANALYZE":           "ANALYZE 不允许 (not allowed)",
	"PREPARE":           "SQL 级 PREPARE 不允许 (use your driver's prepared statements)",
	"EXECUTE":           "SQL 级 EXECUTE 不允许 (use your driver's prepared statements)",
	"DEALLOCATE":        "SQL 级 DEALLOCATE 不允许",
	"UPDATE_EXTENSIONS": "不允许 (not allowed)",
	"DO":                "DO 不允许 (not allowed)",
	"GRANT":             "GRANT 不允许 (not allowed)",
	"REVOKE":            "REVOKE 不允许 (not allowed)",
	"COMMENT":           "只读：COMMENT 不允许 (read-only)",
}

// allowedTableFunctions are the only table functions analyst SQL may call:
// they compute, they do not read files or the database's internals.
var allowedTableFunctions = map[string]bool{
	"range": true, "generate_series": true, "unnest": true, "json_each": true, "json_tree": true,
	"generate_subscripts": true,
}

// deniedFunctions are scalar functions refused outright (environment,
// dynamic SQL, file reads).
var deniedFunctions = map[string]bool{
	"getenv": true, "query": true, "query_table": true, "read_text": true, "read_blob": true, "glob": true,
}

var leadingRE = regexp.MustCompile(`(?s)^(\s+|--[^\n]*\n?|/\*.*?\*/)+`)

// FirstKeyword is the statement's first word in upper case ("(" for a
// parenthesised query), after comments and blanks.
func FirstKeyword(q string) string {
	q = leadingRE.ReplaceAllString(q, "")
	if strings.HasPrefix(q, "(") {
		return "("
	}
	end := strings.IndexFunc(q, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z')
	})
	if end < 0 {
		end = len(q)
	}
	return strings.ToUpper(q[:end])
}

var explainRE = regexp.MustCompile(`(?is)^\s*EXPLAIN\s+(ANALYZE\s+)?`)

// visibility answers whether a lake table may be read, and whether it is
// read through a row filter.
type visibility interface {
	visible(table string) bool
	filtered(table string) bool
}

// hiddenCatalog are the system views refused to analyst SQL: they show
// the sandbox's own view SQL (the lake's file paths and the department's
// row filter), settings (server paths) or the database files.
var hiddenCatalog = map[string]bool{
	"sqlite_master": true, "sqlite_schema": true, "sqlite_temp_master": true, "sqlite_temp_schema": true,
	"duckdb_views": true, "duckdb_tables": true, "duckdb_indexes": true, "duckdb_settings": true, "duckdb_logs": true,
	"duckdb_databases": true, "duckdb_secrets": true, "duckdb_extensions": true, "duckdb_memory": true,
	"duckdb_temporary_files": true, "pragma_database_list": true,
	"information_schema.views": true, "pg_catalog.pg_views": true, "pg_catalog.pg_settings": true,
	"pg_views": true, "pg_settings": true,
}

// readableSettings are the settings current_setting may read: the ones
// clients ask for. Others (allowed_directories, temp_directory …) name the
// server's paths.
var readableSettings = map[string]bool{
	"timezone": true, "statement_timeout": true, "search_path": true, "server_version": true, "server_version_num": true,
	"client_encoding": true, "datestyle": true, "standard_conforming_strings": true, "application_name": true,
	"integer_datetimes": true, "max_identifier_length": true, "default_transaction_read_only": true,
	"transaction_isolation": true, "intervalstyle": true, "is_superuser": true, "lc_collate": true, "lc_ctype": true,
}

// guard checks that q is one read-only statement that reads only visible
// tables and no files. conn parses with DuckDB's own parser
// (json_serialize_sql), so what is checked is what DuckDB will run.
func guard(ctx context.Context, conn *sql.Conn, vis visibility, q string) error {
	body := leadingRE.ReplaceAllString(q, "")
	if strings.TrimSpace(strings.Trim(body, "; \t\r\n")) == "" {
		return nil
	}
	kw := FirstKeyword(body)
	explain := kw == "EXPLAIN"
	if explain {
		body = explainRE.ReplaceAllString(body, "")
		kw = FirstKeyword(body)
	}
	if why, ok := refusedKeywords[kw]; ok {
		return refused("%s", why)
	}
	var raw string
	if err := conn.QueryRowContext(ctx, "SELECT CAST(json_serialize_sql(CAST($1 AS VARCHAR)) AS VARCHAR)", body).Scan(&raw); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	var tree struct {
		Error      bool              `json:"error"`
		ErrorType  string            `json:"error_type"`
		ErrorMsg   string            `json:"error_message"`
		Statements []json.RawMessage `json:"statements"`
	}
	if err := json.Unmarshal([]byte(raw), &tree); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	if tree.Error {
		if strings.Contains(tree.ErrorMsg, "Only SELECT") {
			return refused("只允许只读查询 SELECT / SHOW / DESCRIBE / EXPLAIN (only read-only queries are allowed, not %s)", kw)
		}
		return &Error{Code: "42601", Msg: "语法错误 syntax error: " + tree.ErrorMsg}
	}
	if len(tree.Statements) != 1 {
		return refused("一次只能执行一条语句 (one statement at a time, got %d)", len(tree.Statements))
	}
	var node any
	if err := json.Unmarshal(tree.Statements[0], &node); err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	w := &walker{vis: vis}
	if err := w.walk(node); err != nil {
		return err
	}
	if explain {
		for _, t := range w.tables {
			if vis.filtered(t) {
				return refused("EXPLAIN 不能用于按行过滤的表 %s：执行计划会显示整表行数 (EXPLAIN of %s is not allowed: it is read through your row filter, and a plan shows the whole table's row counts)", t, t)
			}
		}
	}
	return nil
}

// walker checks a parsed statement and notes the lake tables it reads.
type walker struct {
	vis    visibility
	tables []string
}

func (w *walker) walk(n any) error {
	switch x := n.(type) {
	case []any:
		for _, e := range x {
			if err := w.walk(e); err != nil {
				return err
			}
		}
	case map[string]any:
		typ, _ := x["type"].(string)
		switch typ {
		case "BASE_TABLE":
			if err := w.checkTable(x); err != nil {
				return err
			}
		case "TABLE_FUNCTION":
			name := ""
			if f, ok := x["function"].(map[string]any); ok {
				name, _ = f["function_name"].(string)
			}
			if !allowedTableFunctions[strings.ToLower(name)] {
				return refused("表函数 %s 不允许；只能查询数据湖中的表 (table function %s is not allowed: query the lake's tables, e.g. select * from raw.weather)", name, name)
			}
		}
		if cls, _ := x["class"].(string); cls == "FUNCTION" {
			name, _ := x["function_name"].(string)
			ln := strings.ToLower(name)
			if deniedFunctions[ln] || strings.HasPrefix(ln, "read_") {
				return refused("函数 %s 不允许 (function %s is not allowed)", name, name)
			}
			if formatFunctions[ln] {
				if err := checkFormat(name, x); err != nil {
					return err
				}
			}
			if ln == "current_setting" {
				if err := checkSetting(x); err != nil {
					return err
				}
			}
			schema, _ := x["schema"].(string)
			catalog, _ := x["catalog"].(string)
			if err := qualifiedBounded(name, schema, catalog); err != nil {
				return err
			}
		}
		for _, v := range x {
			if err := w.walk(v); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkSetting allows current_setting of a constant name in
// readableSettings only.
func checkSetting(x map[string]any) error {
	name := ""
	if ch, ok := x["children"].([]any); ok && len(ch) > 0 {
		if c, ok := ch[0].(map[string]any); ok && c["class"] == "CONSTANT" {
			if v, ok := c["value"].(map[string]any); ok {
				name, _ = v["value"].(string)
			}
		}
	}
	if !readableSettings[strings.ToLower(name)] {
		return refused("不能读取设置 %q (current_setting(%q) is not available: it may show server paths; readable: TimeZone, statement_timeout, search_path …)", name, name)
	}
	return nil
}

func (w *walker) checkTable(x map[string]any) error {
	vis := w.vis
	catalog, _ := x["catalog_name"].(string)
	schema, _ := x["schema_name"].(string)
	name, _ := x["table_name"].(string)
	ln, ls := strings.ToLower(name), strings.ToLower(schema)
	if hiddenCatalog[ln] && (ls == "" || ls == "main") || hiddenCatalog[ls+"."+ln] {
		return refused("系统视图 %s 不可查询：它会显示服务器路径、视图定义或行过滤条件 (%s is not available: it shows server paths, view definitions or row filters; list your tables with select * from catalog.tables)", name, name)
	}
	switch strings.ToLower(catalog) {
	case "", "memory":
	case "system", "temp":
		if schema == "" {
			return nil
		}
	default:
		return refused("不能访问数据库 %s (database %q is not available: query raw.*, marts.*, catalog.*)", catalog, catalog)
	}
	if schema == "" {
		// A CTE, a system view (pg_class …) or a bare name. A file path
		// here would be a replacement scan reading the file: refused.
		if strings.ContainsAny(name, "/\\.:*?$~") {
			return refused("不能直接读取文件 %q，只能查询数据湖中的表 (reading files is not allowed: query the lake's tables)", name)
		}
		return nil
	}
	switch ls {
	case "pg_catalog", "information_schema", "main", "pgcompat":
		return nil
	}
	full := ls + "." + ln
	w.tables = append(w.tables, full)
	if !vis.visible(full) {
		return &Error{Code: "42501", err: ErrRefused,
			Msg: fmt.Sprintf("无权访问表 %s，或该表不存在 (table %s does not exist or is outside your scope; list yours with: select * from catalog.tables)", full, full)}
	}
	return nil
}

// fullWidth finds a full-width character (U+FF01–U+FF5E, or the
// ideographic space U+3000) outside string literals, quoted identifiers and
// comments: SQL typed with a Chinese keyboard in 全角 mode (ＳＥＬＥＣＴ,
// １, ；, （）) that DuckDB would read as names or ignore. It returns the
// character and its 1-based character position, or ok false.
func fullWidth(q string) (r rune, pos int, ok bool) {
	rs := []rune(q)
	for i := 0; i < len(rs); i++ {
		switch c := rs[i]; {
		case c == '\'' || c == '"':
			for i++; i < len(rs) && rs[i] != c; i++ {
			}
		case c == '-' && i+1 < len(rs) && rs[i+1] == '-':
			for i++; i < len(rs) && rs[i] != '\n'; i++ {
			}
		case c == '/' && i+1 < len(rs) && rs[i+1] == '*':
			for i += 2; i+1 < len(rs) && !(rs[i] == '*' && rs[i+1] == '/'); i++ {
			}
			i++
		case c == '\u3000' || c >= '\uFF01' && c <= '\uFF5E':
			return c, i + 1, true
		}
	}
	return 0, 0, false
}

// fullWidthError says what to do about a full-width character.
func fullWidthError(r rune, pos int) error {
	half := " "
	if r != '\u3000' {
		half = string(r - 0xFEE0)
	}
	return &Error{Code: "42601", Msg: fmt.Sprintf("语法错误：第 %d 个字符 %q 是全角字符，请切换到半角输入（应为 %q） / syntax error: character %d, %q, is a full-width character (a Chinese keyboard's 全角 mode): type it half-width, as %q",
		pos, string(r), half, pos, string(r), half)}
}
