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

func (l *localResult) columns() []string {
	if l == nil {
		return nil
	}
	return l.cols
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
	discardRE    = regexp.MustCompile(`(?is)^\s*(DISCARD|LISTEN|UNLISTEN|CLOSE)\b`)
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
		return &localResult{tag: "ROLLBACK", apply: func(c *conn) error { c.tx = 'I'; return nil }}
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

func onlyComments(s string) bool {
	return sqlaccess.FirstKeyword(s) == "" && !strings.HasPrefix(strings.TrimSpace(s), "(")
}

// compatRules rewrite the PostgreSQL-only spellings that catalog queries
// of psql, DBeaver and SQLAlchemy use into what DuckDB understands.
var compatRules = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`(?i)OPERATOR\s*\(\s*pg_catalog\.([~!=<>]+\*?)\s*\)`), " $1 "},
	{regexp.MustCompile(`(?i)\s+COLLATE\s+pg_catalog\."?default"?`), ""},
	{regexp.MustCompile(`(?i)\b(pg_catalog\.)?version\s*\(\s*\)`), "'PostgreSQL 15.0 (CityBrain Lakehouse; DuckDB " + duckVersion + ") on x86_64-pc-linux-gnu'"},
	{regexp.MustCompile(`(?i)::\s*pg_catalog\.regclass`), "::VARCHAR"},
	{regexp.MustCompile(`(?i)::\s*regclass`), "::VARCHAR"},
	{regexp.MustCompile(`(?i)\bAS\s+(pg_catalog\.)?regclass\b`), "AS VARCHAR"},
	{regexp.MustCompile(`(?i)\bAS\s+(pg_catalog\.)?(regtype|regproc|regnamespace|oid)\s*\)`), "AS BIGINT)"},
	{regexp.MustCompile(`(?i)::\s*(pg_catalog\.)?(regtype|regproc|regprocedure|regoper|regnamespace|regrole|oid)\b`), "::BIGINT"},
	{regexp.MustCompile(`(?i)::\s*pg_catalog\.`), "::"},
	{regexp.MustCompile(`(?i)\b(pg_catalog\.)?json_build_object\s*\(`), "json_object("},
	{regexp.MustCompile(`(?i)\bprattrs\[s\]`), "prattrs[1]"}, // psql's publication query (an empty catalog here)
	{regexp.MustCompile(`(?i)\bpg_catalog\.([a-z_0-9]+)\s*\(`), "$1("},
	{regexp.MustCompile(`(?i)\bpg_catalog\.(pg_class|pg_database|pg_inherits|pg_policy|pg_statistic_ext|pg_publication|pg_publication_rel|pg_publication_namespace|pg_trigger|pg_rewrite|pg_foreign_table|pg_partitioned_table|pg_roles|pg_user|pg_auth_members|pg_event_trigger|pg_extension|pg_foreign_server|pg_foreign_data_wrapper|pg_range|pg_matviews|pg_stat_activity|pg_collation)\b`), "pgcompat.$1"},
}

const duckVersion = "v1.5"

// compat rewrites a statement for DuckDB.
func compat(q string) string {
	if !strings.Contains(strings.ToLower(q), "pg_") && !strings.Contains(strings.ToLower(q), "version") && !strings.Contains(q, "::") {
		return q
	}
	for _, r := range compatRules {
		q = r.re.ReplaceAllString(q, r.repl)
	}
	return q
}
