package pgwire

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"citybrain/warehouse/sqlaccess"
)

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

// localResult is a session command answered by the server itself.
type localResult struct {
	tag   string // command tag; "" sends EmptyQueryResponse
	cols  []string
	rows  [][]string
	apply func(c *conn) error
	err   error
}

// settable are the session parameters clients set on their own; they
// change what this server reports (or nothing), never DuckDB's settings.
var settable = map[string]bool{
	"application_name": true, "extra_float_digits": true, "datestyle": true, "client_encoding": true,
	"search_path": true, "statement_timeout": true, "timezone": true, "intervalstyle": true,
	"client_min_messages": true, "bytea_output": true, "lc_messages": true, "lc_monetary": true,
	"lc_numeric": true, "lc_time": true, "standard_conforming_strings": true, "default_transaction_read_only": true,
	"default_transaction_isolation": true, "transaction_isolation": true, "jit": true, "lock_timeout": true,
	"idle_in_transaction_session_timeout": true, "geqo": true, "join_collapse_limit": true, "from_collapse_limit": true,
	"row_security": true, "synchronous_commit": true, "transaction_read_only": true, "default_with_oids": true,
	"escape_string_warning": true, "work_mem": true, "enable_seqscan": true, "plan_cache_mode": true,
}

var (
	setRE        = regexp.MustCompile(`(?is)^\s*SET\s+(?:SESSION\s+|LOCAL\s+)?([a-z_][a-z0-9_.]*)\s*(?:=|\bTO\b)\s*(.*?)\s*;?\s*$`)
	setTZRE      = regexp.MustCompile(`(?is)^\s*SET\s+(?:SESSION\s+|LOCAL\s+)?TIME\s+ZONE\s+(.*?)\s*;?\s*$`)
	setTxRE      = regexp.MustCompile(`(?is)^\s*SET\s+(?:SESSION\s+CHARACTERISTICS\s+AS\s+)?TRANSACTION\b`)
	showIsoRE    = regexp.MustCompile(`(?is)^\s*SHOW\s+TRANSACTION\s+ISOLATION\s+LEVEL\s*;?\s*$`)
	showTZRE     = regexp.MustCompile(`(?is)^\s*SHOW\s+TIME\s+ZONE\s*;?\s*$`)
	showRE       = regexp.MustCompile(`(?is)^\s*SHOW\s+([a-z_][a-z0-9_.]*)\s*;?\s*$`)
	resetRE      = regexp.MustCompile(`(?is)^\s*RESET\s+([a-z_][a-z0-9_.]*|ALL)\s*;?\s*$`)
	copyOutRE    = regexp.MustCompile(`(?is)^\s*COPY\s*\((.*)\)\s*TO\s+STDOUT\b\s*(.*?)\s*;?\s*$`)
	deallocRE    = regexp.MustCompile(`(?is)^\s*DEALLOCATE\s+(?:PREPARE\s+)?("?[a-z0-9_]+"?|ALL)\s*;?\s*$`)
	beginRE      = regexp.MustCompile(`(?is)^\s*(BEGIN|START\s+TRANSACTION)\b`)
	commitRE     = regexp.MustCompile(`(?is)^\s*(COMMIT|END)\b`)
	rollbackToRE = regexp.MustCompile(`(?is)^\s*ROLLBACK\s+(WORK\s+|TRANSACTION\s+)?TO\b`)
	savepointRE  = regexp.MustCompile(`(?is)^\s*SAVEPOINT\b`)
	releaseRE    = regexp.MustCompile(`(?is)^\s*RELEASE\b`)
	rollbackRE   = regexp.MustCompile(`(?is)^\s*(ROLLBACK|ABORT)\b`)
	discardRE    = regexp.MustCompile(`(?is)^\s*(DISCARD|LISTEN|UNLISTEN)\b`)
)

func unquote(v string) string {
	v = strings.TrimSpace(v)
	if len(v) >= 2 && (v[0] == '\'' && v[len(v)-1] == '\'' || v[0] == '"' && v[len(v)-1] == '"') {
		return v[1 : len(v)-1]
	}
	return v
}

// local answers session commands; nil means the statement goes to the
// sandbox.
func (c *conn) local(q string) *localResult {
	body := strings.TrimSpace(q)
	if strings.Trim(body, "; \t\r\n") == "" {
		return &localResult{}
	}
	switch {
	case beginRE.MatchString(body):
		return &localResult{tag: "BEGIN", apply: func(c *conn) error {
			if c.tx == 'I' {
				c.tx = 'T'
			}
			return nil
		}}
	case commitRE.MatchString(body):
		return &localResult{tag: "COMMIT", apply: func(c *conn) error {
			c.endTransaction()
			if c.tx == 'E' {
				c.tx = 'I'
				return nil
			}
			c.tx = 'I'
			return nil
		}}
	case rollbackToRE.MatchString(body):
		return &localResult{tag: "ROLLBACK", apply: func(c *conn) error {
			if c.tx == 'E' {
				c.tx = 'T'
			}
			return nil
		}}
	case savepointRE.MatchString(body):
		return &localResult{tag: "SAVEPOINT"}
	case releaseRE.MatchString(body):
		return &localResult{tag: "RELEASE"}
	case rollbackRE.MatchString(body):
		return &localResult{tag: "ROLLBACK", apply: func(c *conn) error { c.endTransaction(); c.tx = 'I'; return nil }}
	case discardRE.MatchString(body):
		kw := strings.ToUpper(sqlaccess.FirstKeyword(body))
		if kw == "DISCARD" {
			kw = "DISCARD ALL"
		}
		return &localResult{tag: kw}
	case setTxRE.MatchString(body):
		return &localResult{tag: "SET"}
	}
	if m := deallocRE.FindStringSubmatch(body); m != nil {
		name := unquote(m[1])
		return &localResult{tag: "DEALLOCATE", apply: func(c *conn) error {
			if strings.EqualFold(name, "all") {
				for k, p := range c.stmts {
					p.close()
					delete(c.stmts, k)
				}
			} else if p := c.stmts[name]; p != nil {
				p.close()
				delete(c.stmts, name)
			}
			return nil
		}}
	}
	if m := setTZRE.FindStringSubmatch(body); m != nil {
		return c.setParam("timezone", unquote(m[1]))
	}
	if m := setRE.FindStringSubmatch(body); m != nil {
		name := strings.ToLower(m[1])
		if !settable[name] {
			return nil // the sandbox refuses it with its own message
		}
		return c.setParam(name, unquote(m[2]))
	}
	if m := resetRE.FindStringSubmatch(body); m != nil {
		name := strings.ToLower(m[1])
		if name != "all" && !settable[name] {
			return nil
		}
		return &localResult{tag: "RESET", apply: func(c *conn) error {
			def := defaultParams()
			if name == "all" {
				for k := range settable {
					if v, ok := def[k]; ok {
						c.params[k] = v
					}
				}
				c.timeout = 0
				return nil
			}
			c.params[name] = def[name]
			if name == "statement_timeout" {
				c.timeout = 0
			}
			return nil
		}}
	}
	if showIsoRE.MatchString(body) {
		return &localResult{tag: "SHOW", cols: []string{"transaction_isolation"}, rows: [][]string{{c.params["transaction_isolation"]}}}
	}
	if showTZRE.MatchString(body) {
		return &localResult{tag: "SHOW", cols: []string{"TimeZone"}, rows: [][]string{{c.params["timezone"]}}}
	}
	if m := showRE.FindStringSubmatch(body); m != nil {
		name := strings.ToLower(m[1])
		if v, ok := c.params[name]; ok {
			return &localResult{tag: "SHOW", cols: []string{name}, rows: [][]string{{v}}}
		}
	}
	return nil
}

func (c *conn) setParam(name, value string) *localResult {
	l := &localResult{tag: "SET"}
	switch name {
	case "client_encoding":
		if v := strings.ToUpper(strings.ReplaceAll(value, "-", "")); v != "UTF8" && v != "UNICODE" {
			l.err = &sqlaccess.Error{Code: "22023", Msg: fmt.Sprintf("client_encoding %q: only UTF8 is supported / 只支持 UTF8 (set PGCLIENTENCODING=UTF8)", value)}
			return l
		}
		value = "UTF8"
	case "timezone":
		loc, err := time.LoadLocation(value)
		if err != nil {
			l.err = &sqlaccess.Error{Code: "22023", Msg: fmt.Sprintf("invalid value for parameter \"TimeZone\": %q", value)}
			return l
		}
		l.apply = func(c *conn) error { c.enc.loc = loc; c.params[name] = value; return nil }
		return l
	case "statement_timeout":
		d, err := parseTimeout(value)
		if err != nil {
			l.err = &sqlaccess.Error{Code: "22023", Msg: fmt.Sprintf("statement_timeout %q: %v", value, err)}
			return l
		}
		if max := c.srv.Access.StatementTimeout(); d < 0 || d > max {
			// 0 ("no limit" in PostgreSQL, which some tools send) leaves the server's limit.
			l.err = &sqlaccess.Error{Code: "22023", Msg: fmt.Sprintf("statement_timeout %q: a session can only lower the server's limit of %s (sql_access.statement_timeout) / 会话只能调低语句超时，上限 %s", value, max, max)}
			return l
		}
		l.apply = func(c *conn) error { c.timeout = d; c.params[name] = value; return nil }
		return l
	}
	l.apply = func(c *conn) error {
		c.params[name] = value
		return nil
	}
	return l
}

// parseTimeout reads a PostgreSQL duration setting ("5s", "1500", "1min").
func parseTimeout(v string) (time.Duration, error) {
	v = strings.TrimSpace(strings.ToLower(v))
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Duration(n) * time.Millisecond, nil
	}
	v = strings.ReplaceAll(strings.ReplaceAll(v, "min", "m"), " ", "")
	return time.ParseDuration(v)
}

// splitStatements splits a simple-query string at top-level semicolons
// (outside quotes, dollar quotes and comments).
func splitStatements(q string) []string {
	var out []string
	start := 0
	for i := 0; i < len(q); i++ {
		switch q[i] {
		case '\'', '"':
			quote := q[i]
			for i++; i < len(q); i++ {
				if q[i] == quote {
					if i+1 < len(q) && q[i+1] == quote {
						i++
						continue
					}
					break
				}
			}
		case '-':
			if i+1 < len(q) && q[i+1] == '-' {
				for i < len(q) && q[i] != '\n' {
					i++
				}
			}
		case '/':
			if i+1 < len(q) && q[i+1] == '*' {
				if j := strings.Index(q[i+2:], "*/"); j >= 0 {
					i += j + 3
				} else {
					i = len(q)
				}
			}
		case '$':
			if m := dollarRE.FindString(q[i:]); m != "" {
				if j := strings.Index(q[i+len(m):], m); j >= 0 {
					i += len(m) + j + len(m) - 1
				} else {
					i = len(q)
				}
			}
		case ';':
			if s := strings.TrimSpace(q[start:i]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(q[start:]); s != "" && !onlyComments(s) {
		out = append(out, s)
	}
	return out
}

var dollarRE = regexp.MustCompile(`^\$[A-Za-z_]*\$`)

// onlyComments tells a piece with nothing but blanks and comments (a
// statement in full-width letters is not one: the sandbox explains it).
func onlyComments(s string) bool {
	return strings.TrimSpace(leadingRE.ReplaceAllString(s, "")) == ""
}

var leadingRE = regexp.MustCompile(`(?s)^(\s+|--[^\n]*\n?|/\*.*?\*/)+`)

// compatRules rewrite the PostgreSQL-only spellings that catalog queries
// of psql, DBeaver and SQLAlchemy use into what DuckDB understands.
var compatRules = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`(?i)OPERATOR\s*\(\s*pg_catalog\.([~!=<>]+\*?)\s*\)`), " $1 "},
	{regexp.MustCompile(`(?i)\s+COLLATE\s+pg_catalog\."?default"?`), ""},
	{regexp.MustCompile(`(?i)\b(pg_catalog\.)?version\s*\(\s*\)`), "'PostgreSQL 15.0 (CityBrain Lakehouse; DuckDB " + duckVersion + ") on x86_64-pc-linux-gnu'"},
	// A relation named by a string or a parameter: its oid (what
	// pg_description.classoid and the like are compared with).
	{regexp.MustCompile(`(?i)('(?:[^']|'')*'|\$\d+)\s*::\s*(?:pg_catalog\.)?regclass\b`), "regclass_oid($1)"},
	{regexp.MustCompile(`(?i)'(?:pg_catalog\.)?array_in'\s*::\s*(?:pg_catalog\.)?regproc\b`), "'array_in'"},
	{regexp.MustCompile(`(?i)\binformation_schema\._pg_expandarray\s*\(`), "_pg_expandarray("},
	{regexp.MustCompile(`(?i)::\s*pg_catalog\.regclass`), "::VARCHAR"},
	{regexp.MustCompile(`(?i)::\s*regclass`), "::VARCHAR"},
	{regexp.MustCompile(`(?i)\bAS\s+(pg_catalog\.)?regclass\b`), "AS VARCHAR"},
	{regexp.MustCompile(`(?i)\bAS\s+(pg_catalog\.)?(regtype|regproc|regnamespace|oid)\s*\)`), "AS BIGINT)"},
	{regexp.MustCompile(`(?i)::\s*(pg_catalog\.)?(regtype|regproc|regprocedure|regoper|regnamespace|regrole|oid)\b`), "::BIGINT"},
	{regexp.MustCompile(`(?i)::\s*pg_catalog\.`), "::"},
	{regexp.MustCompile(`(?i)\b(pg_catalog\.)?json_build_object\s*\(`), "json_object("},
	{regexp.MustCompile(`(?i)\bprattrs\[s\]`), "prattrs[1]"}, // psql's publication query (an empty catalog here)
	{regexp.MustCompile(`(?i)\bpg_catalog\.([a-z_0-9]+)\s*\(`), "$1("},
	// PostgreSQL's settings, by a name that may be a parameter (DuckDB's
	// current_setting takes only a constant, and has its own settings).
	{regexp.MustCompile(`(?i)\bcurrent_setting\s*\(`), "pg_setting("},
	{regexp.MustCompile(`(?i)\bpg_catalog\.(pg_class|pg_database|pg_inherits|pg_policy|pg_statistic_ext|pg_publication|pg_publication_rel|pg_publication_namespace|pg_trigger|pg_rewrite|pg_foreign_table|pg_partitioned_table|pg_roles|pg_user|pg_auth_members|pg_event_trigger|pg_extension|pg_foreign_server|pg_foreign_data_wrapper|pg_range|pg_matviews|pg_stat_activity|pg_collation|pg_attribute|pg_type|pg_namespace|pg_description|pg_index|pg_opclass|pg_settings|pg_stat_user_tables)\b`), "pgcompat.$1"},
	{regexp.MustCompile(`(?i)\binformation_schema\.(columns|tables)\b`), "pgcompat.information_schema_$1"},
}

const duckVersion = "v1.5"

// regexOpRE finds PostgreSQL's regular-expression operators with a
// column or a literal on the left and a literal pattern on the right (psql's
// "n.nspname !~ '^pg_'"). PostgreSQL's ~ matches anywhere in the string,
// DuckDB's only the whole string, so they become regexp_matches.
var regexOpRE = regexp.MustCompile(`('(?:[^']|'')*'|\b[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*(!?)~(\*?)\s*('(?:[^']|'')*')`)

// unqualifiedRE finds the catalogs served from pgcompat when a client
// names them without pg_catalog (Metabase: "FROM pg_stat_user_tables").
var unqualifiedRE = regexp.MustCompile(`(?i)(^|[^.\w"$])(pg_class|pg_attribute|pg_type|pg_namespace|pg_description|pg_index|pg_opclass|pg_settings|pg_stat_user_tables|pg_database|pg_roles|pg_user|pg_inherits|pg_trigger|pg_rewrite|pg_collation|pg_extension|pg_matviews|pg_stat_activity)\b`)

// pgFormatRE finds PostgreSQL's format() with a %-style template (%s,
// %I, %L); DuckDB's format takes {} and its printf takes %s.
var pgFormatRE = regexp.MustCompile(`(?i)\bformat\s*\(\s*('(?:[^']|'')*%(?:[^']|'')*')`)

// regclassCastRE ends a CAST(… AS regclass).
var regclassCastRE = regexp.MustCompile(`(?i)\bAS\s+(?:pg_catalog\.)?regclass\s*\)`)

// compat rewrites a statement for DuckDB.
func compat(q string) string {
	lq := strings.ToLower(q)
	if strings.Contains(lq, "regclass") {
		q = castRegclass(q)
	}
	if strings.Contains(lq, "pg_") || strings.Contains(lq, "version") || strings.Contains(lq, "regclass") ||
		strings.Contains(lq, "information_schema") || strings.Contains(q, "::") {
		for _, r := range compatRules {
			q = r.re.ReplaceAllString(q, r.repl)
		}
		q = outsideLiterals(q, func(s string) string { return unqualifiedRE.ReplaceAllString(s, "${1}pgcompat.$2") })
	}
	if strings.Contains(lq, "format") {
		q = pgFormatRE.ReplaceAllStringFunc(q, func(m string) string {
			g := pgFormatRE.FindStringSubmatch(m)
			return "printf(" + strings.NewReplacer("%I", "%s", "%L", "'%s'").Replace(g[1])
		})
	}
	if strings.Contains(q, "~") {
		q = rewriteRegexOps(q)
	}
	return q
}

// literalMask tells which bytes of q are inside a string literal (the
// opening quote excluded, the closing one included).
func literalMask(q string) []bool {
	in := make([]bool, len(q))
	open := false
	for i := 0; i < len(q); i++ {
		if q[i] == '\'' {
			if open && i+1 < len(q) && q[i+1] == '\'' {
				in[i], in[i+1] = true, true
				i++
				continue
			}
			in[i] = open
			open = !open
			continue
		}
		in[i] = open
	}
	return in
}

// outsideLiterals applies f to the parts of q outside string literals.
func outsideLiterals(q string, f func(string) string) string {
	in := literalMask(q)
	var b strings.Builder
	start := 0
	for i := 0; i <= len(q); i++ {
		if i == len(q) || (i > start && in[i] != in[start]) {
			part := q[start:i]
			if !in[start] {
				// A literal's opening quote belongs to the outside part.
				part = f(part)
			}
			b.WriteString(part)
			start = i
		}
	}
	return b.String()
}

// castRegclass turns CAST(expr AS regclass) into regclass_oid(expr): the
// relation's oid, as PostgreSQL compares it (SQLAlchemy's classoid
// filter, Metabase's CAST(format('%I.%I', …) AS regclass)).
func castRegclass(q string) string {
	for {
		in := literalMask(q)
		loc := regclassCastRE.FindStringIndex(q)
		for loc != nil && in[loc[0]] {
			next := regclassCastRE.FindStringIndex(q[loc[1]:])
			if next == nil {
				loc = nil
				break
			}
			loc = []int{loc[1] + next[0], loc[1] + next[1]}
		}
		if loc == nil {
			return q
		}
		// Walk back to the parenthesis this CAST opened.
		depth, open := 0, -1
		for i := loc[0] - 1; i >= 0; i-- {
			if in[i] || q[i] == '\'' {
				continue
			}
			if q[i] == ')' {
				depth++
			} else if q[i] == '(' {
				if depth == 0 {
					open = i
					break
				}
				depth--
			}
		}
		kw := strings.TrimRight(q[:max(open, 0)], " \t\r\n")
		if open < 0 || len(kw) < 4 || !strings.EqualFold(kw[len(kw)-4:], "CAST") {
			return q // not a CAST(…): left to the rules below
		}
		q = kw[:len(kw)-4] + "regclass_oid(" + strings.TrimSpace(q[open+1:loc[0]]) + ")" + q[loc[1]:]
	}
}

// rewriteRegexOps applies regexOpRE where a match starts outside string
// literals (a ~ inside a literal is data).
func rewriteRegexOps(q string) string {
	ms := regexOpRE.FindAllStringSubmatchIndex(q, -1)
	if ms == nil {
		return q
	}
	inLit := literalMask(q)
	var b strings.Builder
	last := 0
	for _, m := range ms {
		if inLit[m[0]] || m[0] > 0 && (q[m[0]-1] == ':' || q[m[0]-1] == '.') {
			continue // data, or a cast's type name (x::text ~ 'a')
		}
		g := func(k int) string { return q[m[2*k]:m[2*k+1]] }
		call := "regexp_matches(" + g(1) + ", " + g(4)
		if g(3) == "*" {
			call += ", 'i'"
		}
		call += ")"
		if g(2) == "!" {
			call = "NOT " + call
		}
		b.WriteString(q[last:m[0]])
		b.WriteString("(" + call + ")")
		last = m[1]
	}
	b.WriteString(q[last:])
	return b.String()
}
